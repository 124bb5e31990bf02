"""Walk a JPEG's marker segments: the one reader of the file's layout.

Three parts of the codec need the layout without decoding anything: the image reader sums up
the structure (``layout``: the frame, the scans, repeated segments) so that ``limits`` can bound
the work a file asks for before Pillow parses it, the size estimate counts the bytes of every
scan of a progressive file, and the orientation editor finds the EXIF segment to patch. They
share this walker, so a fill byte or a restart marker is handled once.

A file is read through a seekable binary file object; the length of each segment is skipped,
not read, so walking a 100 MB JPEG to its frame header costs a few small reads.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

SOI, EOI, SOS, DRI, APP0, APP1 = 0xD8, 0xD9, 0xDA, 0xDD, 0xE0, 0xE1
STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0..7, SOI: markers without a length
HUFFMAN_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})  # 0xC4 is DHT, not a frame
ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})  # 0xCC is DAC
ANY_SOF = HUFFMAN_SOF | ARITHMETIC_SOF
BASELINE_OR_PROGRESSIVE = frozenset({0xC0, 0xC1, 0xC2})  # the frames a HyperThumbnail may use
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
    restarts: int = 0  # ``SCAN_DATA`` only: the restart markers (RST0..7) inside it


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
            data_end, restarts = _scan_end(f, counted=True)
            yield Segment(SCAN_DATA, end, data_end - base, restarts)
            data_end -= base
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


def _scan_end(f: BinaryIO, chunk: int = 1 << 16, *, counted: bool = False) -> int | tuple[int, int]:
    """The absolute offset where the entropy-coded data starting at ``f``'s position ends: the
    next 0xFF that is neither a stuffed zero (FF 00) nor a restart marker (FF D0..D7); with
    ``counted``, (that offset, the restart markers passed on the way)."""
    pos, carry, restarts = f.tell(), b"", 0
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
                restarts += follower != 0
                i += 2
                continue
            return (offset + i, restarts) if counted else offset + i
        carry = data[-1:] if data.endswith(b"\xff") else b""
        pos += len(block)


@dataclass(frozen=True)
class Scan:
    """One scan: how many components it codes, the restart interval in force (0: none) and the
    restart markers its data holds."""

    components: int
    restart_interval: int
    restarts: int


@dataclass
class Layout:
    """A JPEG's structure, summed up without decoding: what bounds on its work are judged by."""

    frame: int | None = None  # the SOF marker (0xC0 baseline, 0xC2 progressive, 0xC9 arithmetic...)
    width: int = 0
    height: int = 0
    sampling: tuple[tuple[int, int], ...] = ()  # (h, v) per component
    scans: list[Scan] = field(default_factory=list)
    exif_segments: int = 0  # APP1 segments starting Exif\0\0 (Pillow joins them, quadratically)
    complete: bool = False  # the walk reached the end-of-image marker
    problem: str | None = None  # where the walk stopped early, when it did

    @property
    def blocks(self) -> int:
        """8x8 blocks of all components together: what one scan over the whole frame touches."""
        if not self.sampling:
            return 0
        hmax, vmax = max(h for h, _ in self.sampling), max(v for _, v in self.sampling)
        total = 0
        for h, v in self.sampling:
            cols, rows = -(-self.width * h // hmax), -(-self.height * v // vmax)
            total += -(-cols // 8) * -(-rows // 8)
        return total

    @property
    def blocks_per_component(self) -> int:
        """8x8 blocks of the first component: what each scan of a 4:4:4 frame has as MCUs."""
        return -(-self.width // 8) * -(-self.height // 8)


def layout(f: BinaryIO, *, max_segments: int | None = None) -> Layout:
    """Walk every segment of the JPEG in ``f`` (scans included) and sum up its structure.

    One pass over the file, reading only segment headers and scanning entropy-coded data for
    markers: linear in the file's size whatever it holds. A walk that meets damage stops there
    (``problem`` says why; the decoder will report the damage or show what it can read);
    ``max_segments`` stops it after that many segments, for the bound's caller to refuse."""
    result, restart_interval, pending, seen, base = Layout(), 0, None, 0, f.tell()
    try:
        for segment in segments(f, scans=True):
            seen += 1
            if max_segments is not None and seen > max_segments:
                result.problem = f"more than {max_segments} segments"
                return result
            if segment.marker == SCAN_DATA and pending is not None:
                result.scans.append(Scan(pending, restart_interval, segment.restarts))
                pending = None
                continue
            if segment.marker == EOI:
                result.complete = True
                break
            if segment.marker in STANDALONE or segment.end - segment.start < 4:
                continue
            body = _body(f, base + segment.start + 4, min(64, segment.end - segment.start - 4))
            if segment.marker in ANY_SOF and result.frame is None and len(body) >= 6:
                result.frame = segment.marker
                result.height, result.width = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big")
                count = body[5]
                result.sampling = tuple((b >> 4, b & 15) for b in body[7 : 6 + 3 * count : 3] if b >> 4 and b & 15)
            elif segment.marker == DRI and len(body) >= 2:
                restart_interval = int.from_bytes(body[:2], "big")
            elif segment.marker == SOS and body:
                pending = body[0]
            elif segment.marker == APP1 and body.startswith(b"Exif\x00\x00"):
                result.exif_segments += 1
    except JpegLayoutError as exc:
        result.problem = str(exc)
    return result


def _body(f: BinaryIO, at: int, size: int) -> bytes:
    """``size`` bytes of ``f`` from offset ``at``, leaving ``f``'s position where it was (the
    walk in progress goes on from there)."""
    here = f.tell()
    try:
        f.seek(at)
        return f.read(size)
    finally:
        f.seek(here)
