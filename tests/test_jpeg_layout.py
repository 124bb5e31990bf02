"""The JPEG segment walker and the EXIF orientation edit built on it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.codec.errors import CodecError
from app.codec.files import exif_edit, jpeg_segments
from app.codec.files.estimate import scans_length
from app.codec.files.imageio import jpeg_layout
from app.codec.files.jpeg_orientation import with_orientation
from app.codec.files.jpeg_segments import APP1, EOI, SCAN_DATA, SOS, JpegLayoutError, segments, segments_of


def _jpeg(size=(64, 48), **options) -> bytes:
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def test_a_baseline_file_is_walked_to_its_scan_and_through_it():
    data = _jpeg()
    headers = segments_of(data)
    assert headers[0].start == 2 and headers[-1].marker == SOS
    assert all(a.end == b.start for a, b in zip(headers, headers[1:]))  # contiguous, nothing skipped
    assert 0xC0 in {s.marker for s in headers}  # the baseline frame header
    full = segments_of(data, scans=True)
    assert [s.marker for s in full[-2:]] == [SCAN_DATA, EOI] and full[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(full, full[1:]))
    assert scans_length(data) == full[-2].end - full[-2].start > len(data) // 2  # noise: the data dominates


def test_every_scan_of_a_progressive_file_is_found():
    data = _jpeg((256, 256), progressive=True, quality=95)
    full = segments_of(data, scans=True)
    scans = [s for s in full if s.marker == SCAN_DATA]
    assert len(scans) >= 5 and [s.marker for s in full].count(SOS) == len(scans)
    assert all(a.end == b.start for a, b in zip(full, full[1:])) and full[-1].end == len(data)
    f = io.BytesIO(data)
    for chunk in (1, 2, 3, 7, 4096):  # a 0xFF at every place relative to a read's end
        for scan in scans:
            f.seek(scan.start)
            assert jpeg_segments._scan_end(f, chunk) == scan.end


def test_fill_bytes_restart_markers_and_a_file_object_at_an_offset():
    data = _jpeg(quality=90)
    sos = next(s for s in segments_of(data) if s.marker == SOS)
    padded = data[: sos.start] + b"\xff\xff\xff" + data[sos.start :]  # fill bytes before the SOS marker
    assert [s.marker for s in segments_of(padded, scans=True)] == [s.marker for s in segments_of(data, scans=True)]
    restarts = _jpeg((128, 128), restart_marker_blocks=1)
    assert b"\xff\xd0" in restarts and [s.marker for s in segments_of(restarts, scans=True)][-2:] == [SCAN_DATA, EOI]
    f = io.BytesIO(b"junk" + data)
    f.seek(4)
    assert segments(f).__next__().start == 2  # offsets are relative to where the JPEG starts


@pytest.mark.parametrize("cut", [1, 3, 5, 40])
def test_a_truncated_or_foreign_file_is_a_layout_error(cut):
    data = _jpeg()
    with pytest.raises(JpegLayoutError):
        segments_of(data[:cut])
    with pytest.raises(JpegLayoutError):
        segments_of(data[: len(data) - 2 - cut], scans=True)  # no EOI after the scan
    with pytest.raises(JpegLayoutError, match="not a JPEG"):
        segments_of(b"\x89PNG" + data)


def _layout(data: bytes) -> jpeg_segments.Layout:
    return jpeg_segments.layout(io.BytesIO(data))


def test_the_layout_sums_up_frame_scans_restarts_and_exif_segments():
    baseline = _layout(_jpeg((64, 48)))
    assert (baseline.frame, baseline.width, baseline.height, baseline.complete) == (0xC0, 64, 48, True)
    assert baseline.sampling == ((2, 2), (1, 1), (1, 1)) and baseline.blocks == 48 + 2 * 12
    assert [s.components for s in baseline.scans] == [3] and baseline.exif_segments == 0
    progressive = _layout(_jpeg((256, 256), progressive=True, quality=95))
    assert progressive.frame == 0xC2 and len(progressive.scans) >= 5
    restarts = _layout(_jpeg((128, 128), restart_marker_blocks=1, subsampling=0))
    assert restarts.scans[0].restart_interval == 1 and restarts.scans[0].restarts == 16 * 16 - 1
    data = bytearray(_jpeg())
    sof = next(s for s in segments_of(bytes(data)) if s.marker == 0xC0)
    data[sof.start + 1] = 0xC9  # now it claims arithmetic coding
    assert _layout(bytes(data)).frame == 0xC9
    cut = _layout(bytes(data[:-40]))  # no end-of-image marker: summed up as far as it goes
    assert not cut.complete and cut.problem and cut.frame == 0xC9


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def _frame_only(marker: int, width: int, height: int, data: bytes = b"\x00" * 20) -> bytes:
    """A grey JPEG of ``marker``'s coding claiming ``width`` x ``height``, with ``data`` as its scan."""
    sof = _segment(marker, bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([1, 1, 0x11, 0]))
    dqt = _segment(0xDB, bytes([0]) + bytes([1] * 64))
    sos = _segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
    return b"\xff\xd8" + dqt + sof + sos + data + b"\xff\xd9"


@pytest.mark.parametrize("marker", [0xC0, 0xC1, 0xC2, 0xC9, 0xCA, 0xC3, 0xCB])
def test_every_frame_type_is_bounded_by_the_file_length_before_pillow_allocates(marker):
    # A 116-byte arithmetic-coded file claiming 16000x16000 made `info` take 2.5 GB: the bound held
    # only for Huffman frames. Every coding now has one (arithmetic: 4096 blocks per byte).
    data = _frame_only(marker, 16000, 16000)
    with pytest.raises(CodecError, match="too short for"):
        jpeg_layout(data, "bomb.jpg")
    small = _frame_only(marker, 64, 64)
    assert jpeg_layout(small, "small.jpg").width == 64  # a frame its bytes can hold passes


def test_a_flat_arithmetic_image_within_the_bound_is_not_refused():
    # cjpeg -arithmetic codes a flat 4000x4000 grey image in 125 bytes (2,000 blocks per byte)
    data = _frame_only(0xC9, 4000, 4000, b"\x00" * 60)
    assert jpeg_layout(data, "flat.jpg").blocks == 500 * 500


def _with_scans(data: bytes, copies: int) -> bytes:
    """``data`` (a progressive JPEG) with its last scan repeated ``copies`` more times."""
    parts = segments_of(data, scans=True)
    last = [s for s in parts if s.marker == SOS][-1]
    scan = data[last.start : parts[-1].start]
    return data[: parts[-1].start] + scan * copies + b"\xff\xd9"


def test_scan_floods_are_refused_in_time_proportional_to_the_size():
    import time

    data = _jpeg((256, 256), progressive=True, quality=95)
    assert jpeg_layout(_with_scans(data, 20), "ok.jpg") is not None  # a few more scans than usual
    flood = _with_scans(data, 2000)
    start = time.perf_counter()
    with pytest.raises(CodecError, match="scans"):
        jpeg_layout(flood, "flood.jpg")
    assert time.perf_counter() - start < 2.0  # the walk, not a decode
    # the bound counts work, not only scans: 200 scans of a large frame in a small file (a flat
    # 2048x2048 progressive JPEG: 10 scans of 98,304 blocks in 25 kB, 40 per byte, passes)
    buffer = io.BytesIO()
    Image.new("RGB", (2048, 2048), (90, 120, 30)).save(buffer, "JPEG", progressive=True, quality=90)
    assert jpeg_layout(buffer.getvalue(), "flat.jpg") is not None
    with pytest.raises(CodecError, match="scans"):
        jpeg_layout(_with_scans(buffer.getvalue(), 200), "heavy.jpg")


def test_repeated_exif_segments_are_refused_before_pillow_joins_them():
    data = _jpeg()
    app1 = _segment(0xE1, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + bytes(2000))
    assert jpeg_layout(data[:2] + app1 + data[2:], "one.jpg").exif_segments == 1
    with pytest.raises(CodecError, match="EXIF segments"):
        jpeg_layout(data[:2] + app1 * 100 + data[2:], "many.jpg")
    many = data[:2] + _segment(0xFE, b"x") * 9000 + data[2:]  # 9,000 comments
    with pytest.raises(CodecError, match="segments"):
        jpeg_layout(many, "comments.jpg")


def _exif_block(with_orientation_entry: bool, endian: str = "<") -> bytes:
    exif = Image.Exif()
    exif.endian = endian  # Pillow writes Intel or Motorola byte order as asked
    exif[0x010F] = "Acme"  # Make, before Orientation in tag order
    exif[0x0131] = "Firmware 1.2"  # Software, after it
    if with_orientation_entry:
        exif[0x0112] = 1
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00a long user comment that lives out of line"
    return exif.tobytes()


@pytest.mark.parametrize("endian", ["<", ">"])
def test_an_ifd0_without_orientation_gets_one_and_no_value_moves(endian):
    block = _exif_block(False, endian)
    assert block[6:8] == (b"II" if endian == "<" else b"MM")
    turned = exif_edit.set_orientation(block, 6)
    tiff, before = exif_edit.TiffData(turned), exif_edit.TiffData(block)
    assert tiff.find(tiff.ifd0, exif_edit.TAG_ORIENTATION).count == 1
    tags = [e.tag for e in tiff.entries(tiff.ifd0)]
    assert tags == sorted(tags) and set(tags) == {e.tag for e in before.entries(before.ifd0)} | {0x0112}
    assert turned[14 : len(block)] == block[14:]  # only the header's IFD0 offset changed; values stay put
    assert tiff.ifd0 >= len(block) - 6 and tiff.ifd0 % 2 == 0
    reread = Image.Exif()
    reread.load(turned)
    assert reread[0x0112] == 6 and reread[0x010F] == "Acme" and reread[0x0131] == "Firmware 1.2"
    assert reread.get_ifd(0x8769)[0x9286].endswith(b"lives out of line")
    again = exif_edit.set_orientation(turned, 3)
    assert len(again) == len(turned) and exif_edit.TiffData(again).ifd0 == tiff.ifd0  # patched in place now


def test_a_file_whose_exif_lacks_orientation_is_turned_and_keeps_its_scan():
    data = _jpeg(exif=_exif_block(False))
    turned = with_orientation(data, 8)
    scan = next(s for s in segments_of(data) if s.marker == SOS).start
    assert turned.endswith(data[scan:])
    with Image.open(io.BytesIO(turned)) as im:
        assert im.getexif()[0x0112] == 8 and im.getexif()[0x010F] == "Acme"
        assert np.array_equal(np.asarray(im), np.asarray(Image.open(io.BytesIO(data))))
    app1 = [s for s in segments_of(turned) if s.marker == APP1]
    assert len(app1) == 1  # the same EXIF segment, grown; no second one


def test_damage_is_refused_with_a_message():
    data = _jpeg()
    with pytest.raises(CodecError, match="not a JPEG"):
        with_orientation(b"GIF89a" + data, 6)
    with pytest.raises(CodecError, match="damaged JPEG|JPEG ends"):
        with_orientation(data[:30], 6)
