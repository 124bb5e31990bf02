"""The HyperThumbnail container: table order, marker, EXIF/ICC carry-over, strict reading."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image, ImageCms

from app import __version__
from app.codec.atomic import atomic_output, atomic_write_bytes
from app.codec.errors import (
    FormatError,
    ImageLoadError,
    NotHyperThumbnailError,
    OutputExistsError,
)
from app.codec.fileformat import (
    FORMAT_VERSION,
    Marker,
    build_exif,
    encode_jpeg,
    read_marker,
    read_thumbnail,
    thumbnail_size,
    write_hyperthumbnail,
)

# Standard JPEG zig-zag scan: ZIGZAG[k] is the natural (8*row + col) index of the k-th entry.
ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]
LUMA = list(range(1, 65))
CHROMA = list(range(100, 164))
SHA = "ab" * 32


def _photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.BILINEAR))


def _marker(w: int = 1001, h: int = 667, **kw) -> Marker:
    return Marker(width=w, height=h, scale=4, model_id="ht-test", weights_sha256=SHA, rate=0.5, **kw)


def _source_exif() -> bytes:
    return piexif.dump({
        "0th": {
            piexif.ImageIFD.Make: b"Acme",
            piexif.ImageIFD.Model: b"Cam 9",
            piexif.ImageIFD.Orientation: 6,
        },
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2024:05:06 07:08:09"},
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((52, 1), (30, 1), (0, 1)),
        },
        "1st": {piexif.ImageIFD.Compression: 6},
        "thumbnail": _jpeg_bytes(_photo(16, 16)),
    })


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    return buf.getvalue()


def _dqt_tables(data: bytes) -> dict[int, list[int]]:
    """Parse the DQT segments of a JPEG by hand: {table id: 64 values in file (zig-zag) order}."""
    tables, pos = {}, 2
    while pos < len(data):
        assert data[pos] == 0xFF
        kind, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if kind == 0xDA:
            break
        if kind == 0xDB:
            seg = data[pos + 4:pos + 2 + length]
            while seg:
                assert seg[0] >> 4 == 0  # 8-bit precision
                tables[seg[0] & 15] = list(seg[1:65])
                seg = seg[65:]
        pos += 2 + length
    return tables


def _write(tmp_path: Path, name: str = "t.jpg", w: int = 1001, h: int = 667, **kw) -> Path:
    path = tmp_path / name
    tw, th = thumbnail_size(w, h)
    write_hyperthumbnail(path, _photo(tw, th), LUMA, CHROMA, _marker(w, h), **kw)
    return path


# ----------------------------------------------------------------------------- tables


def test_table_order_natural_in_pillow_zigzag_in_file() -> None:
    data = encode_jpeg(_photo(40, 24), LUMA, CHROMA)
    im = Image.open(io.BytesIO(data))
    assert list(im.quantization[0]) == LUMA and list(im.quantization[1]) == CHROMA
    dqt = _dqt_tables(data)
    assert dqt[0] == [LUMA[i] for i in ZIGZAG]
    assert dqt[1] == [CHROMA[i] for i in ZIGZAG]


def test_tables_as_8x8_arrays_are_row_major() -> None:
    data = encode_jpeg(_photo(8, 8), np.array(LUMA).reshape(8, 8), np.array(CHROMA, np.uint8))
    assert list(Image.open(io.BytesIO(data)).quantization[0]) == LUMA


@pytest.mark.parametrize("bad", [[0] + LUMA[1:], [256] + LUMA[1:], LUMA[:63], [1.5] * 64])
def test_bad_tables_are_refused(bad: list) -> None:
    with pytest.raises(ValueError):
        encode_jpeg(_photo(8, 8), bad, CHROMA)


def test_bad_thumbnail_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_jpeg(np.zeros((8, 8, 3), np.float32), LUMA, CHROMA)


# ----------------------------------------------------------------------------- marker


def test_marker_json_round_trip() -> None:
    m = _marker()
    assert Marker.from_json(m.to_json()) == m
    fields = json.loads(m.to_json())
    assert fields["format"] == "HyperThumbnail" and fields["version"] == FORMAT_VERSION
    assert Marker.from_json(json.dumps({**fields, "rate": None, "extra": 1})).rate is None


@pytest.mark.parametrize("change", [
    {"width": None}, {"width": 0}, {"height": "7"}, {"scale": True}, {"model_id": 3},
    {"weights_sha256": "xyz"}, {"rate": "fast"}, {"format": "Other"}, {"version": 0},
])
def test_marker_damage_is_a_format_error(change: dict) -> None:
    fields = {**json.loads(_marker().to_json()), **change}
    with pytest.raises(FormatError):
        Marker.from_json(json.dumps(fields))


def test_marker_missing_field_and_bad_json() -> None:
    fields = json.loads(_marker().to_json())
    del fields["weights_sha256"]
    with pytest.raises(FormatError, match="missing"):
        Marker.from_json(json.dumps(fields))
    with pytest.raises(FormatError):
        Marker.from_json("{not json")


def test_newer_version_is_refused() -> None:
    fields = {**json.loads(_marker().to_json()), "version": FORMAT_VERSION + 1}
    with pytest.raises(FormatError, match="newer"):
        Marker.from_json(json.dumps(fields))


def test_thumbnail_size_rule() -> None:
    assert thumbnail_size(1001, 667) == (251, 167)
    assert thumbnail_size(1000, 668) == (250, 167)
    assert _marker(1001, 667).thumbnail_size == (251, 167)


# ----------------------------------------------------------------------------- round trip


def test_round_trip(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "t.jpg"
    thumb = _photo(251, 167)
    n = write_hyperthumbnail(path, thumb, LUMA, CHROMA, _marker(), source_exif=_source_exif(), icc_profile=icc)
    assert n == path.stat().st_size

    assert read_marker(path) == _marker()
    t = read_thumbnail(path)
    assert t.marker == _marker()
    assert t.rgb.shape == t.ycbcr.shape == (167, 251, 3)
    assert t.luma_table.tolist() == LUMA and t.chroma_table.tolist() == CHROMA
    assert t.icc_profile == icc
    assert t.orientation == 6
    assert np.abs(t.rgb.astype(int) - thumb.astype(int)).mean() < 20  # it is that picture

    exif = piexif.load(t.exif)
    assert exif["0th"][piexif.ImageIFD.Make] == b"Acme"
    assert exif["0th"][piexif.ImageIFD.Model] == b"Cam 9"
    assert exif["0th"][piexif.ImageIFD.Orientation] == 6
    assert exif["0th"][piexif.ImageIFD.Software] == f"HyperThumbnail Viewer {__version__}".encode()
    assert exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"2024:05:06 07:08:09"
    assert exif["Exif"][piexif.ExifIFD.PixelXDimension] == 251
    assert exif["Exif"][piexif.ExifIFD.PixelYDimension] == 167
    assert exif["Exif"][piexif.ExifIFD.UserComment].startswith(b"ASCII\x00\x00\x00HyperThumbnail {")
    assert exif["GPS"][piexif.GPSIFD.GPSLatitudeRef] == b"N"  # kept by default
    assert exif["thumbnail"] is None and not exif["1st"]  # source's EXIF thumbnail dropped


def test_container_is_baseline_444(tmp_path: Path) -> None:
    data = _write(tmp_path).read_bytes()
    im = Image.open(io.BytesIO(data))
    assert b"\xff\xc0" in data[: data.index(b"\xff\xda")]  # SOF0: baseline
    assert not im.info.get("progressive")
    assert [(h, v) for _, h, v, _ in im.layer] == [(1, 1)] * 3
    assert sorted(im.quantization) == [0, 1]


def test_strip_gps(tmp_path: Path) -> None:
    path = _write(tmp_path, source_exif=_source_exif(), strip_gps=True)
    exif = piexif.load(read_thumbnail(path).exif)
    assert not exif["GPS"] and piexif.ImageIFD.GPSTag not in exif["0th"]
    assert exif["0th"][piexif.ImageIFD.Make] == b"Acme"


def test_build_exif_survives_garbage_source() -> None:
    for source in (b"Exif\x00\x00garbage", b"\x00" * 40, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"):
        exif = build_exif(source, _marker(), (251, 167), strip_gps=False)
        assert piexif.load(exif)["Exif"][piexif.ExifIFD.PixelXDimension] == 251


def test_build_exif_drops_tags_piexif_cannot_write() -> None:
    source = Image.Exif()
    source[0x010F] = "Acme"  # Make
    exif_ifd = source.get_ifd(0x8769)
    exif_ifd[0xA301] = 1  # SceneType written as SHORT: piexif loads an int it cannot dump
    exif_ifd[0x9003] = "2024:01:01 00:00:00"  # DateTimeOriginal
    with pytest.raises(ValueError):
        piexif.dump(piexif.load(source.tobytes()))
    loaded = piexif.load(build_exif(source.tobytes(), _marker(), (251, 167), strip_gps=False))
    assert loaded["0th"][piexif.ImageIFD.Make] == b"Acme"
    assert loaded["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"2024:01:01 00:00:00"
    assert piexif.ExifIFD.SceneType not in loaded["Exif"]
    assert loaded["Exif"][piexif.ExifIFD.PixelXDimension] == 251


def test_build_exif_drops_oversized_makernote() -> None:
    source = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Acme"},
                          "Exif": {piexif.ExifIFD.MakerNote: b"x" * 65400}})
    exif = build_exif(source, _marker(), (251, 167), strip_gps=False)
    assert len(exif) <= 65533
    loaded = piexif.load(exif)
    assert loaded["0th"][piexif.ImageIFD.Make] == b"Acme"
    assert piexif.ExifIFD.MakerNote not in loaded["Exif"]


def test_marker_from_bytes() -> None:
    data = encode_jpeg(_photo(251, 167), LUMA, CHROMA,
                       exif=build_exif(None, _marker(), (251, 167), strip_gps=False))
    assert read_marker(data) == _marker()
    assert read_thumbnail(data).marker == _marker()


def test_write_refuses_wrong_geometry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="251x167"):
        write_hyperthumbnail(tmp_path / "x.jpg", _photo(250, 167), LUMA, CHROMA, _marker())
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- reading


def test_ycbcr_is_the_raw_decode(tmp_path: Path) -> None:
    t = read_thumbnail(_write(tmp_path))
    y, cb, cr = (t.ycbcr[..., i].astype(np.float64) for i in range(3))
    rgb = np.stack([
        y + 1.402 * (cr - 128),
        y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
        y + 1.772 * (cb - 128),
    ], axis=-1)
    rgb = np.clip(np.round(rgb), 0, 255)
    assert np.abs(rgb - t.rgb.astype(np.float64)).max() <= 2


def test_plain_images_have_no_marker(tmp_path: Path) -> None:
    jpg, png = tmp_path / "plain.jpg", tmp_path / "plain.png"
    jpg.write_bytes(_jpeg_bytes(_photo(32, 32)))
    Image.fromarray(_photo(32, 32)).save(png)
    for path, fmt in ((jpg, "JPEG"), (png, "PNG")):
        assert read_marker(path) is None
        with pytest.raises(NotHyperThumbnailError, match=f"not a HyperThumbnail: .*plain {fmt}"):
            read_thumbnail(path)


def test_truncated_hyperthumbnail(tmp_path: Path) -> None:
    path = _write(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        read_thumbnail(path)


def _rewrite_comment(path: Path, comment: bytes) -> None:
    exif = piexif.load(str(path))
    exif["Exif"][piexif.ExifIFD.UserComment] = comment
    piexif.insert(piexif.dump(exif), str(path))


def test_damaged_marker_json(tmp_path: Path) -> None:
    path = _write(tmp_path)
    _rewrite_comment(path, b"ASCII\x00\x00\x00HyperThumbnail {\"format\":\"HyperThumb")
    with pytest.raises(FormatError, match="damaged"):
        read_marker(path)
    with pytest.raises(FormatError, match="damaged"):
        read_thumbnail(path)


def test_newer_version_file(tmp_path: Path) -> None:
    path = _write(tmp_path)
    fields = {**json.loads(_marker().to_json()), "version": FORMAT_VERSION + 1}
    _rewrite_comment(path, b"ASCII\x00\x00\x00HyperThumbnail " + json.dumps(fields).encode())
    with pytest.raises(FormatError, match="newer"):
        read_thumbnail(path)
    assert Image.open(path).size == (251, 167)  # still an ordinary JPEG


def test_wrong_geometry_file(tmp_path: Path) -> None:
    path = tmp_path / "g.jpg"
    data = encode_jpeg(_photo(250, 167), LUMA, CHROMA,
                       exif=build_exif(None, _marker(), (250, 167), strip_gps=False))
    path.write_bytes(data)
    with pytest.raises(FormatError, match="251x167"):
        read_thumbnail(path)


def test_subsampled_jpeg_with_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.jpg"
    exif = build_exif(None, _marker(), (251, 167), strip_gps=False)
    Image.fromarray(_photo(251, 167)).save(path, "JPEG", subsampling=2, exif=exif)
    with pytest.raises(FormatError, match="4:4:4"):
        read_thumbnail(path)


def test_progressive_jpeg_with_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    exif = build_exif(None, _marker(), (251, 167), strip_gps=False)
    Image.fromarray(_photo(251, 167)).save(path, "JPEG", subsampling=0, progressive=True, exif=exif)
    with pytest.raises(FormatError, match="baseline"):
        read_thumbnail(path)


# ----------------------------------------------------------------------------- atomic


def test_existing_output_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jpg"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--force"):
        atomic_write_bytes(path, b"new")
    with pytest.raises(OutputExistsError):
        _write(tmp_path, "out.jpg")
    assert path.read_bytes() == b"precious"
    atomic_write_bytes(path, b"new", force=True)
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]


def test_force_overwrites_hyperthumbnail(tmp_path: Path) -> None:
    path = tmp_path / "out.jpg"
    path.write_bytes(b"old")
    _write(tmp_path, "out.jpg", force=True)
    assert read_marker(path) == _marker()


def test_failure_inside_atomic_output_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.jpg"
    with pytest.raises(RuntimeError):
        with atomic_output(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.name.endswith(".part")
            tmp.write_bytes(b"half")
            raise RuntimeError("cancelled")
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not exist") as info:
        atomic_write_bytes(tmp_path / "no" / "out.jpg", b"x")
    assert not isinstance(info.value, OutputExistsError)
