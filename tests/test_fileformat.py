"""The HyperThumbnail container: table order, marker, EXIF/ICC carry-over, strict reading."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image, ImageCms

from app import __version__
from app.codec.errors import FormatError, ImageLoadError, NotHyperThumbnailError, OutputExistsError
from app.codec.files import exif_edit, iptc, outputs, xmp
from app.codec.files.atomic import atomic_output, atomic_write_bytes
from app.codec.files.header import build_metadata, carry_exif
from app.codec.files.marker import FORMAT_VERSION, Marker, tables_digest, thumbnail_size
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


def _written(marker: Marker) -> Marker:
    """``marker`` as ``write_hyperthumbnail`` writes it: with the fingerprint of LUMA and CHROMA."""
    return dataclasses.replace(marker, tables_sha256=tables_digest(LUMA, CHROMA))


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

    assert read_marker(path) == _written(_marker())
    t = read_thumbnail(path)
    assert t.marker == _written(_marker())
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
    data[data.index(b"org.hyperthumbnail.payload\0") + 40] ^= 1  # a byte of the payload in its JUMBF box
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
    assert read_marker(path) == _written(_marker())


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


# ----------------------------------------------------------------------------- hostile EXIF (issue 20, item 5)


def _camera_exif() -> bytes:
    """A camera-like block: orientation 6, a MakerNote, Interop, GPS and an embedded preview."""
    return piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"Acme", piexif.ImageIFD.Orientation: 6},
            "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2024:05:06 07:08:09", piexif.ExifIFD.MakerNote: b"MKNT" * 20},
            "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"},
            "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (30, 1), (0, 1))},
            "1st": {piexif.ImageIFD.Compression: 6},
            "thumbnail": _jpeg_bytes(_photo(16, 16)),
        }
    )


def _patched(block: bytes, where: str, tag: int | None, value: int) -> bytes:
    """``block`` with one LONG value (an entry's, or IFD0's next-IFD link when ``tag`` is None) set."""
    tiff = exif_edit.TiffData(block)
    link = tiff.ifd0 + 2 + 12 * len(tiff.entries(tiff.ifd0))
    ifd = {"0th": tiff.ifd0, "Exif": tiff.sub_ifd(0x8769), "1st": tiff._u32(link)}[where]
    at = link if tag is None else tiff.find(ifd, tag).at + 8
    struct.pack_into(tiff.endian + "I", tiff.data, at, value)
    return tiff.block()


def _hostile(kind: str) -> bytes:
    block = _camera_exif()
    tiff = exif_edit.TiffData(block)
    makernote = tiff.find(tiff.sub_ifd(0x8769), 0x927C)
    return {
        "interop far outside": lambda: _patched(block, "Exif", 0xA005, 0x7FFFFFF0),
        "preview covers the TIFF header": lambda: _patched(block, "1st", 0x0201, 0),
        "preview covers IFD0": lambda: _patched(_patched(block, "1st", 0x0201, 8), "1st", 0x0202, 40),
        "preview covers the MakerNote": lambda: _patched(block, "1st", 0x0201, makernote.value_at),
        "IFD1 is IFD0": lambda: _patched(block, "0th", None, tiff.ifd0),
        "GPS IFD is the Exif IFD": lambda: _patched(block, "0th", 0x8825, tiff.sub_ifd(0x8769)),
    }[kind]()


@pytest.mark.parametrize(
    "kind",
    [
        "interop far outside",
        "preview covers the TIFF header",
        "preview covers IFD0",
        "preview covers the MakerNote",
        "IFD1 is IFD0",
        "GPS IFD is the Exif IFD",
    ],
)
@pytest.mark.parametrize("strip_gps", [False, True])
def test_hostile_exif_is_carried_untouched_or_minimal_never_a_crash(tmp_path: Path, kind: str, strip_gps: bool) -> None:
    source = _hostile(kind)
    exif, notes = carry_exif(source, (251, 167), strip_gps=strip_gps, orientation=6)
    carried = Image.Exif()
    carried.load(exif)
    assert carried[0x0112] == 6  # the orientation is never lost
    if notes:  # not carried safely: the minimal EXIF, and a note that says so
        assert "could not be carried over safely" in notes[0] and 0x010F not in carried
    else:  # carried: every tag as it was (the MakerNote's bytes included), GPS gone on request
        assert carried[0x010F] == "Acme"
        exif_ifd = carried.get_ifd(0x8769)
        assert exif_ifd[0x9003] == "2024:05:06 07:08:09" and exif_ifd[0x927C] == b"MKNT" * 20
        assert (0x8825 in carried) != strip_gps
    path = _write(tmp_path, source_exif=source, strip_gps=strip_gps, orientation=6)  # the encoder's own path
    assert read_thumbnail(path).orientation == 6


def test_drop_thumbnail_cuts_only_bytes_no_other_structure_uses() -> None:
    block = _camera_exif()
    cut = exif_edit.drop_thumbnail(block)
    assert len(cut) < len(block) - 500  # a preview at the tail still costs nothing
    assert exif_edit.tag_values(cut) == exif_edit.tag_values(block)
    hostile = _hostile("preview covers IFD0")
    unlinked = exif_edit.drop_thumbnail(hostile)
    assert len(unlinked) == len(hostile) and exif_edit.tag_values(unlinked) == exif_edit.tag_values(hostile)
    tiff = exif_edit.TiffData(unlinked)
    assert tiff._u32(tiff.ifd0 + 2 + 12 * len(tiff.entries(tiff.ifd0))) == 0  # no preview any more


# ----------------------------------------------------------------------------- stale size tags (item 15)


def test_ifd0_size_and_subsampling_tags_follow_the_thumbnail() -> None:
    source = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.ImageWidth: 4000,
                piexif.ImageIFD.ImageLength: 3000,
                piexif.ImageIFD.YCbCrSubSampling: (2, 1),
                piexif.ImageIFD.Orientation: 6,
            },
            "Exif": {piexif.ExifIFD.PixelXDimension: 4000, piexif.ExifIFD.PixelYDimension: 3000},
        }
    )
    exif, notes = carry_exif(source, (251, 167), strip_gps=False)
    ifd0 = piexif.load(exif)["0th"]
    assert notes == [] and len(exif) == len(source)  # patched in place
    assert (ifd0[piexif.ImageIFD.ImageWidth], ifd0[piexif.ImageIFD.ImageLength]) == (251, 167)
    assert ifd0[piexif.ImageIFD.YCbCrSubSampling] == (1, 1) and ifd0[piexif.ImageIFD.Orientation] == 6
    assert piexif.load(exif)["Exif"][piexif.ExifIFD.PixelXDimension] == 251
    short = piexif.dump({"0th": {piexif.ImageIFD.ImageWidth: 70000}})  # LONG: patched; a SHORT that cannot hold
    assert piexif.load(carry_exif(short, (251, 167), strip_gps=False)[0])["0th"][256] == 251


def test_xmp_size_properties_follow_the_thumbnail() -> None:
    source = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:PixelXDimension="4000">'
        b"<exif:PixelYDimension>3000</exif:PixelYDimension></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    packet = build_metadata(_marker(), (251, 167), source_xmp=source).xmp
    assert b'exif:PixelXDimension="251"' in packet and b"<exif:PixelYDimension>167</" in packet


def test_jfif_aspect_ratio_is_carried_as_an_aspect_ratio(tmp_path: Path) -> None:
    path = _write(tmp_path, aspect=(3, 2))
    with Image.open(path) as im:
        assert im.info["jfif_unit"] == 0 and im.info["jfif_density"] == (3, 2) and "dpi" not in im.info
    with Image.open(_write(tmp_path, "dpi.jpg", dpi=(300, 300))) as im:
        assert im.info["jfif_unit"] == 1 and im.info["jfif_density"] == (300, 300)


# ----------------------------------------------------------------------------- XMP: no DTD in any encoding (item 6)

_BOMB = (
    '<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE x [<!ENTITY a "{a}">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:hyperthumb="https://hyperthumbnail.org/ns/1.0/" hyperthumb:Version="2"><dc:title>&c;</dc:title>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


@pytest.mark.parametrize(
    "encoding, bom",
    [
        ("UTF-8", b""),
        ("UTF-8", b"\xef\xbb\xbf"),
        ("UTF-16LE", b"\xff\xfe"),
        ("UTF-16BE", b"\xfe\xff"),
        ("UTF-16LE", b""),
        ("UTF-32LE", b"\xff\xfe\x00\x00"),
    ],
)
def test_xmp_dtd_and_entities_are_refused_in_every_encoding(encoding: str, bom: bytes) -> None:
    declared = encoding[:6] if encoding.startswith("UTF-16") and bom else encoding
    packet = bom + _BOMB.replace("{encoding}", declared).replace("{a}", "x" * 100).encode(encoding.lower())
    meta = build_metadata(_marker(), (251, 167), source_xmp=packet)
    assert b"xxxxxxxxxx" not in meta.xmp and len(meta.xmp) < 2000  # never the expanded packet
    assert xmp.read_properties(meta.xmp)["Width"] == "1001"  # the marker is still written
    assert meta.notes and "the source's XMP was dropped" in meta.notes[0]
    with pytest.raises(xmp.XmpError):
        xmp.read_properties(packet + b" https://hyperthumbnail.org/ns/1.0/")  # nor read as a marker


# ----------------------------------------------------------------------------- IPTC carried, location stripped (11, 12)


def _iim(*datasets: tuple[int, int, bytes]) -> bytes:
    return b"".join(b"\x1c" + bytes([r, n]) + struct.pack(">H", len(v)) + v for r, n, v in datasets)


_CAPTION, _KEYWORD, _CITY = (2, 120, b"Boats in the harbour"), (2, 25, b"harbour"), (2, 90, b"Berlin")
_LOCATION = [_CITY, (2, 92, b"Museumsinsel"), (2, 95, b"Berlin"), (2, 100, b"DEU"), (2, 101, b"Germany"),
             (2, 26, b"XX"), (2, 27, b"Mitte")]  # fmt: skip


def _app13(iim: bytes, *, digest: bool = True) -> bytes:
    """APP13 data as Photoshop writes it: resolution info, the IIM, its MD5 digest."""
    items = [iptc.Resource(b"8BIM", 0x03ED, b"\x00\x00", bytes(16)), iptc.Resource(b"8BIM", 0x0404, b"\x00\x00", iim)]
    if digest:
        items.append(iptc.Resource(b"8BIM", 0x0425, b"\x00\x00", hashlib.md5(iim).digest()))
    return iptc.build(items)


def test_iptc_is_carried_byte_for_byte_before_the_payload(tmp_path: Path) -> None:
    segment = _app13(_iim(_CAPTION, _KEYWORD, *_LOCATION)) + b"\x00\x00"  # trailing padding kept too
    path = _write(tmp_path, source_iptc=segment, payload=b"HTA1" + bytes(100))
    with Image.open(path) as im:
        kinds = [kind for kind, _ in im.applist]
        assert [data for kind, data in im.applist if kind == "APP13"] == [segment]
        assert kinds.index("APP13") < kinds.index("APP11")
    assert read_thumbnail(path).iptc == segment


@pytest.mark.parametrize(
    "segment, why",
    [
        (iptc.PHOTOSHOP + b"8BIM\x04\x04\x00\x00\xff\xff\xff\xff", "claims"),  # a resource larger than the segment
        (_app13(b"\x1c\x02\x78\x7f\xff"), "claims"),  # a dataset larger than its resource
        (iptc.PHOTOSHOP + b"8BIM\x04\x04\x00\x00\x00\x00\xff\xf0" + bytes(65520), "larger than one APP13"),
    ],
)
@pytest.mark.parametrize("strip_gps", [False, True])
def test_damaged_or_oversized_iptc_is_dropped_with_a_note(segment: bytes, why: str, strip_gps: bool) -> None:
    meta = build_metadata(_marker(), (251, 167), source_iptc=segment, strip_gps=strip_gps)
    assert meta.iptc is None and b"\xff\xed" not in meta.extra
    assert any("IPTC was dropped" in note and why in note for note in meta.notes)


def test_strip_gps_removes_location_from_xmp_and_iptc_and_keeps_the_rest() -> None:
    source_xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
        b'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/" '
        b'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:drone="http://www.dji.com/drone-dji/1.0/" '
        b'xmp:Rating="4" photoshop:City="Berlin" photoshop:State="Berlin" exif:GPSLatitude="52,30.0N" '
        b'drone:GpsLongitude="13.4" Iptc4xmpCore:CountryCode="DEU">'
        b"<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li></rdf:Bag></dc:subject>"
        b'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">Boats</rdf:li></rdf:Alt></dc:description>'
        b"<photoshop:Country>Germany</photoshop:Country><Iptc4xmpCore:Location>Museumsinsel</Iptc4xmpCore:Location>"
        b"<exif:GPSLongitude>13,24.0E</exif:GPSLongitude>"
        b'<Iptc4xmpExt:LocationCreated><rdf:Bag><rdf:li rdf:parseType="Resource"><Iptc4xmpExt:City>Berlin'
        b"</Iptc4xmpExt:City></rdf:li></rdf:Bag></Iptc4xmpExt:LocationCreated>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    segment = _app13(_iim(_CAPTION, _KEYWORD, *_LOCATION))
    meta = build_metadata(_marker(), (251, 167), source_xmp=source_xmp, source_iptc=segment, strip_gps=True)
    assert b'xmp:Rating="4"' in meta.xmp and b">harbour<" in meta.xmp and b">Boats<" in meta.xmp
    for gone in (b"Berlin", b"Germany", b"Museumsinsel", b"DEU", b"GPS", b"Gps", b"LocationCreated"):
        assert gone not in meta.xmp
    assert xmp.read_properties(meta.xmp)["Width"] == "1001" and meta.notes == []
    kept = iptc.datasets(iptc.iim_data(meta.iptc))
    assert [(r, n, raw[5:]) for r, n, raw in kept] == [_CAPTION, _KEYWORD]
    resources = {r.id: r.data for r in iptc.resources(meta.iptc)}
    assert resources[0x03ED] == bytes(16) and resources[0x0425] == hashlib.md5(resources[0x0404]).digest()
    unstripped = build_metadata(_marker(), (251, 167), source_xmp=source_xmp, source_iptc=segment)
    assert unstripped.iptc == segment and b"Museumsinsel" in unstripped.xmp


# ----------------------------------------------------------------------------- a decoded photo's metadata (13)


def _hyperthumbnail_metadata() -> tuple[bytes, bytes, bytes]:
    """(EXIF, XMP, IPTC) as a HyperThumbnail of an orientation-6 camera photo carries them."""
    source_xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmp:Rating="4" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    meta = build_metadata(
        _marker(), (251, 167), source_exif=_camera_exif(), source_xmp=source_xmp, source_iptc=_app13(_iim(_CAPTION))
    )
    return meta.exif, meta.xmp, meta.iptc


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_decoded_outputs_carry_exif_xmp_and_iptc_without_the_marker(tmp_path: Path, suffix: str) -> None:
    exif, packet, segment = _hyperthumbnail_metadata()
    fmt = outputs.output_format(f"x{suffix}")
    options, notes = outputs.metadata_options(fmt, (667, 1001), exif=exif, xmp_packet=packet, iptc_segment=segment)
    path = tmp_path / f"decoded{suffix}"
    Image.fromarray(_photo(667, 1001)).save(path, format=fmt, **options)
    with Image.open(path) as im:
        read = im.getexif()
        assert read[0x010F] == "Acme" and read.get(0x0112, 1) == 1  # the pixels are already upright
        assert read.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        assert 0x8825 in read  # GPS as the file had it
        if fmt != "TIFF":  # a TIFF's EXIF is its own IFD0: Pillow writes ImageWidth itself
            assert read.get_ifd(0x8769).get(0xA002, 667) == 667
        got = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp", "").encode()
        assert got and b'Rating="4"' in got and xmp.NAMESPACE.encode() not in got and b"HyperThumb" not in got
        assert b'tiff:Orientation="1"' in got
        if fmt == "JPEG":
            assert [d for kind, d in im.applist if kind == "APP13"] == [segment]
        if fmt == "TIFF":  # no stale Interop offset, no MakerNote moved away from what it points at
            assert bytes(im.tag_v2[33723]) == iptc.iim_data(segment)
            assert 0xA005 not in read.get_ifd(0x8769) and 0x927C not in read.get_ifd(0x8769)
        else:
            assert read.get_ifd(0x8769)[0x927C] == b"MKNT" * 20  # byte for byte
    expected = {"PNG": ["IPTC"], "WEBP": ["IPTC"], "TIFF": ["MakerNote"], "JPEG": []}[fmt]
    assert [word for word, note in zip(expected, notes) if word in note] == expected and len(notes) == len(expected)


def test_a_decoded_photo_gets_no_damaged_exif() -> None:
    options, notes = outputs.metadata_options("PNG", (10, 10), exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    assert "exif" not in options and "EXIF was not written" in notes[0]
