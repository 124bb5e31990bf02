"""The JPEG segment walker and the EXIF orientation edit built on it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.codec.errors import CodecError
from app.codec.files import exif_edit, jpeg_segments
from app.codec.files.estimate import scans_length
from app.codec.files.imageio import _huffman_coded
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


def test_the_frame_type_is_read_from_headers_only():
    assert _huffman_coded(_jpeg()) and _huffman_coded(_jpeg(progressive=True))
    data = bytearray(_jpeg())
    sof = next(s for s in segments_of(bytes(data)) if s.marker == 0xC0)
    data[sof.start + 1] = 0xC9  # now it claims arithmetic coding
    assert not _huffman_coded(bytes(data))
    assert not _huffman_coded(bytes(data[:20]))  # cut before any frame header: libjpeg will say why


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
