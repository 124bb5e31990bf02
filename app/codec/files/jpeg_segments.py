"""Walk a JPEG's marker segments: the one reader of the file's layout.

Three parts of the codec need the layout without decoding anything: the image reader asks
whether a frame is Huffman-coded (a few seeks on a file that may be huge), the size estimate
counts the bytes of every scan of a progressive file, and the orientation editor finds the EXIF
segment to patch. They share this walker, so a fill byte or a restart marker is handled once.

A file is read through a seekable binary file object; the length of each segment is skipped,
not read, so walking a 100 MB JPEG to its frame header costs a few small reads.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

SOI, EOI, SOS, APP0, APP1 = 0xD8, 0xD9, 0xDA, 0xE0, 0xE1
STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0..7, SOI: markers without a length
HUFFMAN_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})  # 0xC4 is DHT, not a frame
ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})  # 0xCC is DAC
ANY_SOF = HUFFMAN_SOF | ARITHMETIC_SOF
SCAN_DATA = -1  # the pseudo-marker of a scan's entropy-coded data in ``segments(scans=True)``


class JpegLayoutError(ValueError):
    """The bytes are not a JPEG's marker structure, or it ends too early."""


@dataclass(frozen=True)
class Segment:
    """One segment: ``marker`` (0xE1 for APP1, ... or ``SCAN_DATA``) and its bytes' span,
    ``start`` at the 0xFF of its marker (at the first data byte for ``SCAN_DATA``) and ``end``
    just past it."""

    marker: int
    start: int
    end: int


def segments(f: BinaryIO, *, scans: bool = False) -> Iterator[Segment]:
    """The segments of the JPEG in ``f`` (read from its current position, the SOI), in file order.

    Without ``scans`` the walk ends with the first SOS header: everything a reader needs before
    the image data. With it, each scan's entropy-coded data follows its header as a ``SCAN_DATA``
    segment, and the walk goes on to the EOI (a progressive file has several scans).
    Raises ``JpegLayoutError`` where the bytes stop being a JPEG."""
    base, in_scans = f.tell(), False
    if f.read(2) != b"\xff\xd8":
        raise JpegLayoutError("not a JPEG file (no start-of-image marker)")
    while True:
        start = f.tell() - base
        byte = f.read(1)
        if not byte:
            raise JpegLayoutError("the JPEG ends before its " + ("end-of-image marker" if in_scans else "image data"))
        if byte != b"\xff":
            raise JpegLayoutError("damaged JPEG: a segment does not start where the previous one ends")
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes before a marker
            start += 1
            marker = f.read(1)
        if not marker:
            raise JpegLayoutError("the JPEG ends inside a marker")
        code = marker[0]
        if code == EOI:
            yield Segment(code, start, start + 2)
            return
        if code in STANDALONE:
            yield Segment(code, start, start + 2)
            continue
        length = f.read(2)
        if len(length) < 2:
            raise JpegLayoutError("the JPEG ends inside a segment header")
        end = start + 2 + int.from_bytes(length, "big")
        f.seek(base + end)
        if _past_end(f):
            raise JpegLayoutError("damaged JPEG: a segment runs past the end of the file")
        yield Segment(code, start, end)
        if code == SOS:
            if not scans:
                return
            in_scans = True
            data_end = _scan_end(f) - base
            yield Segment(SCAN_DATA, end, data_end)
            f.seek(base + data_end)


def segments_of(data: bytes, *, scans: bool = False) -> list[Segment]:
    """``segments`` of a JPEG held in memory, as a list."""
    return list(segments(io.BytesIO(data), scans=scans))


def _past_end(f: BinaryIO) -> bool:
    """Whether ``f``'s position lies beyond its last byte (a seek there does not fail)."""
    here = f.tell()
    size = f.seek(0, io.SEEK_END)
    f.seek(here)
    return here > size


def _scan_end(f: BinaryIO, chunk: int = 1 << 16) -> int:
    """The absolute offset where the entropy-coded data starting at ``f``'s position ends: the
    next 0xFF that is neither a stuffed zero (FF 00) nor a restart marker (FF D0..D7)."""
    pos, carry = f.tell(), b""
    while True:
        block = f.read(chunk)
        if not block:
            raise JpegLayoutError("a JPEG scan without an end")
        data, offset = carry + block, pos - len(carry)
        i = 0
        while (i := data.find(b"\xff", i)) >= 0:
            if i + 1 >= len(data):
                break  # the byte after this 0xFF is in the next chunk
            follower = data[i + 1]
            if follower == 0 or 0xD0 <= follower <= 0xD7:
                i += 2
                continue
            return offset + i
        carry = data[-1:] if data.endswith(b"\xff") else b""
        pos += len(block)
