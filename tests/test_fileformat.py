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
from app.codec.errors import FormatError, ImageLoadError, NotHyperThumbnailError, OutputExistsError
from app.codec.files import xmp
from app.codec.files.atomic import atomic_output, atomic_write_bytes
from app.codec.files.header import build_metadata, carry_exif
from app.codec.files.marker import FORMAT_VERSION, Marker, thumbnail_size
from app.codec.files.reader import read_marker, read_thumbnail
from app.codec.files.writer import encode_jpeg, write_hyperthumbnail

# Standard JPEG zig-zag scan: ZIGZAG[k] is the natural (8*row + col) index of the k-th entry.
ZIGZAG = [
    0,
    1,
    8,
    16,
    9,
    2,
    3,
    10,
    17,
    24,
    32,
    25,
    18,
    11,
    4,
    5,
    12,
    19,
    26,
    33,
    40,
    48,
    41,
    34,
    27,
    20,
    13,
    6,
    7,
    14,
    21,
    28,
    35,
    42,
    49,
    56,
    57,
    50,
    43,
    36,
    29,
    22,
    15,
    23,
    30,
    37,
    44,
    51,
    58,
    59,
    52,
    45,
    38,
    31,
    39,
    46,
    53,
    60,
    61,
    54,
    47,
    55,
    62,
    63,
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
    return piexif.dump(
        {
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
        }
    )


def _xmp(marker: Marker) -> bytes:
    return build_metadata(marker, marker.thumbnail_size).xmp


def _v1_exif(marker: Marker) -> bytes:
    """EXIF as format v1 wrote it: the marker as JSON in the UserComment."""
    v1 = Marker(**{**marker.__dict__, "version": 1})
    return piexif.dump(
        {"Exif": {piexif.ExifIFD.UserComment: b"ASCII\x00\x00\x00HyperThumbnail " + v1.to_json().encode()}}
    )


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    return buf.getvalue()


def _dqt_tables(data: bytes) -> dict[int, list[int]]:
    """Parse the DQT segments of a JPEG by hand: {table id: 64 values in file (zig-zag) order}."""
    tables, pos = {}, 2
    while pos < len(data):
        assert data[pos] == 0xFF
        kind, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if kind == 0xDA:
            break
        if kind == 0xDB:
            seg = data[pos + 4 : pos + 2 + length]
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


@pytest.mark.parametrize(
    "change",
    [
        {"width": None},
        {"width": 0},
        {"height": "7"},
        {"scale": True},
        {"model_id": 3},
        {"weights_sha256": "xyz"},
        {"rate": "fast"},
        {"format": "Other"},
        {"version": 0},
    ],
)
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
    assert exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"2024:05:06 07:08:09"
    assert piexif.ExifIFD.UserComment not in exif["Exif"]  # v2: the marker is in XMP, not EXIF
    assert exif["GPS"][piexif.GPSIFD.GPSLatitudeRef] == b"N"  # kept by default
    assert exif["thumbnail"] is None and not exif["1st"]  # source's EXIF thumbnail dropped
    source = _source_exif()
    assert len(t.exif) < len(source)  # the preview was the block's tail: cut off ...
    changed = [i for i, (a, b) in enumerate(zip(t.exif, source)) if a != b]
    assert len(changed) <= 4  # ... and unlinked (IFD0's next-IFD offset): every other byte as it was
    props = xmp.read_properties(t.xmp)
    assert props["Width"] == "1001" and props["WeightsSha256"] == SHA
    assert props["CreatorTool"] == f"HyperThumbnail Viewer {__version__}"


def test_container_is_444_with_two_tables_and_entropy_optimised(tmp_path: Path) -> None:
    path = _write(tmp_path)
    data = path.read_bytes()
    im = Image.open(io.BytesIO(data))
    assert [(h, v) for _, h, v, _ in im.layer] == [(1, 1)] * 3
    assert sorted(im.quantization) == [0, 1]
    plain = encode_jpeg(_photo(251, 167), LUMA, CHROMA, xmp_packet=Image.open(path).info["xmp"])
    if im.info.get("progressive"):  # mozjpeg re-coded it: fewer bytes, the very same pixels
        assert len(data) < len(plain)
        assert np.array_equal(np.asarray(im), np.asarray(Image.open(io.BytesIO(plain))))


def test_strip_gps(tmp_path: Path) -> None:
    path = _write(tmp_path, source_exif=_source_exif(), strip_gps=True)
    exif = piexif.load(read_thumbnail(path).exif)
    assert not exif["GPS"] and piexif.ImageIFD.GPSTag not in exif["0th"]
    assert exif["0th"][piexif.ImageIFD.Make] == b"Acme"


def test_damaged_source_exif_is_dropped_but_orientation_kept() -> None:
    for source in (b"Exif\x00\x00garbage", b"\x00" * 40, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"):
        exif, notes = carry_exif(source, (251, 167), strip_gps=False, orientation=6)
        assert piexif.load(exif)["0th"][piexif.ImageIFD.Orientation] == 6 and "damaged" in notes[0]
        assert carry_exif(source, (251, 167), strip_gps=False)[0] is None


def test_exif_is_carried_byte_for_byte_with_tags_piexif_cannot_write() -> None:
    source = Image.Exif()
    source[0x010F] = "Acme"  # Make
    exif_ifd = source.get_ifd(0x8769)
    exif_ifd[0xA301] = 1  # SceneType written as SHORT: piexif loads an int it cannot dump
    exif_ifd[0xA002] = 4000  # PixelXDimension: patched in place to the thumbnail's
    data = source.tobytes()
    with pytest.raises(ValueError):
        piexif.dump(piexif.load(data))
    carried, notes = carry_exif(data, (251, 167), strip_gps=False)
    assert notes == [] and len(carried) == len(data)  # Pillow's bytes already start with Exif\0\0
    reread = Image.Exif()
    reread.load(carried)
    assert reread[0x010F] == "Acme" and reread.get_ifd(0x8769)[0xA301] == 1
    assert reread.get_ifd(0x8769)[0xA002] == 251


def test_exif_too_big_for_a_segment_is_rewritten_without_makernote() -> None:
    source = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Acme"}, "Exif": {piexif.ExifIFD.MakerNote: b"x" * 65600}})
    exif, notes = carry_exif(source, (251, 167), strip_gps=False)
    assert len(exif) <= 65533 and "MakerNote" in notes[0]
    loaded = piexif.load(exif)
    assert loaded["0th"][piexif.ImageIFD.Make] == b"Acme"
    assert piexif.ExifIFD.MakerNote not in loaded["Exif"]


def test_marker_from_bytes() -> None:
    data = encode_jpeg(_photo(251, 167), LUMA, CHROMA, xmp_packet=_xmp(_marker()))
    assert read_marker(data) == _marker()
    assert read_thumbnail(data).marker == _marker()


def test_version_1_files_still_read() -> None:
    data = encode_jpeg(_photo(251, 167), LUMA, CHROMA, exif=_v1_exif(_marker()))
    assert read_marker(data) == Marker(**{**_marker().__dict__, "version": 1})
    assert read_thumbnail(data).marker.version == 1


def test_source_xmp_is_kept_and_our_old_marker_replaced() -> None:
    source = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    first = build_metadata(_marker(), (251, 167), source_xmp=source).xmp
    again = build_metadata(_marker(w=1000), (250, 167), source_xmp=first).xmp  # re-encoding a HyperThumbnail
    assert b'xmp:Rating="4"' in again and again.count(xmp.NAMESPACE.encode()) == 1
    assert xmp.read_properties(again)["Width"] == "1000"
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    meta = build_metadata(_marker(), (251, 167), source_xmp=hostile)
    assert b"ENTITY" not in meta.xmp and "dropped" in meta.notes[0]


def test_payload_round_trip_and_damage(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 400  # 100 kB: two APP11 segments
    path = _write(tmp_path, payload=payload)
    t = read_thumbnail(path)
    assert t.payload == payload and t.payload_problem is None
    assert t.marker.payload_length == len(payload)
    data = bytearray(path.read_bytes())
    data[data.index(b"HyperThumbnail-payload") + 40] ^= 1
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(bytes(data))
    t = read_thumbnail(damaged)
    assert t.payload is None and "checksum" in t.payload_problem
    assert t.marker.width == 1001  # the thumbnail itself is still usable


def test_write_refuses_wrong_geometry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="251x167"):
        write_hyperthumbnail(tmp_path / "x.jpg", _photo(250, 167), LUMA, CHROMA, _marker())
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- reading


def test_ycbcr_is_the_raw_decode(tmp_path: Path) -> None:
    t = read_thumbnail(_write(tmp_path))
    y, cb, cr = (t.ycbcr[..., i].astype(np.float64) for i in range(3))
    rgb = np.stack(
        [
            y + 1.402 * (cr - 128),
            y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
            y + 1.772 * (cb - 128),
        ],
        axis=-1,
    )
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
    """Make ``path`` a v1 file whose UserComment is ``comment`` (v2 XMP removed)."""
    im = Image.open(path)
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})
    Image.fromarray(np.asarray(im)).save(path, "JPEG", qtables=[LUMA, CHROMA], subsampling=0, exif=exif)


def _rewrite_xmp(path: Path, **changes: str) -> None:
    """Rewrite ``path``'s v2 XMP marker with some properties changed."""
    im = Image.open(path)
    props = {**xmp.read_properties(im.info["xmp"]), **changes}
    Image.fromarray(np.asarray(im)).save(
        path, "JPEG", qtables=[LUMA, CHROMA], subsampling=0, xmp=xmp.build_packet(props)[0]
    )


def test_damaged_marker_json(tmp_path: Path) -> None:
    path = _write(tmp_path)
    _rewrite_comment(path, b'ASCII\x00\x00\x00HyperThumbnail {"format":"HyperThumb')
    with pytest.raises(FormatError, match="damaged"):
        read_marker(path)
    with pytest.raises(FormatError, match="damaged"):
        read_thumbnail(path)


def test_damaged_and_newer_xmp_markers(tmp_path: Path) -> None:
    path = _write(tmp_path)
    _rewrite_xmp(path, Width="1" * 4000)
    with pytest.raises(FormatError, match="damaged") as info:
        read_marker(path)
    assert len(str(info.value)) < 200  # a 4000-digit width is not echoed whole
    _rewrite_xmp(path, Width="1001", Scale="8")
    with pytest.raises(FormatError, match="scale 8 is not supported"):
        read_marker(path)
    _rewrite_xmp(path, Scale="4", Version=str(FORMAT_VERSION + 1))
    with pytest.raises(FormatError, match="newer"):
        read_thumbnail(path)
    assert Image.open(path).size == (251, 167)  # still an ordinary JPEG


def test_deeply_nested_v1_marker_is_damaged_not_a_crash(tmp_path: Path) -> None:
    path = _write(tmp_path)
    _rewrite_comment(path, b"ASCII\x00\x00\x00HyperThumbnail " + b"[" * 5000)
    with pytest.raises(FormatError, match="damaged"):
        read_marker(path)


def test_newer_version_file(tmp_path: Path) -> None:
    path = _write(tmp_path)
    fields = {**json.loads(_marker().to_json()), "version": FORMAT_VERSION + 1}
    _rewrite_comment(path, b"ASCII\x00\x00\x00HyperThumbnail " + json.dumps(fields).encode())
    with pytest.raises(FormatError, match="newer"):
        read_thumbnail(path)
    assert Image.open(path).size == (251, 167)  # still an ordinary JPEG


def test_wrong_geometry_file(tmp_path: Path) -> None:
    path = tmp_path / "g.jpg"
    data = encode_jpeg(_photo(250, 167), LUMA, CHROMA, xmp_packet=_xmp(_marker()))
    path.write_bytes(data)
    with pytest.raises(FormatError, match="251x167"):
        read_thumbnail(path)


def test_subsampled_jpeg_with_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.jpg"
    Image.fromarray(_photo(251, 167)).save(path, "JPEG", subsampling=2, xmp=_xmp(_marker()))
    with pytest.raises(FormatError, match="4:4:4"):
        read_thumbnail(path)


def test_progressive_is_allowed_in_v2_only(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    Image.fromarray(_photo(251, 167)).save(path, "JPEG", subsampling=0, progressive=True, xmp=_xmp(_marker()))
    assert read_thumbnail(path).marker.version == 2
    Image.fromarray(_photo(251, 167)).save(path, "JPEG", subsampling=0, progressive=True, exif=_v1_exif(_marker()))
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
