"""Read and edit a raw EXIF block without moving a single byte of it.

Cameras write MakerNotes whose internal offsets point into the EXIF block; re-serialising the
block (as piexif does) moves them and breaks the notes. So a HyperThumbnail carries the source's
EXIF byte for byte, and the few edits it needs are made in place:

- ``strip_gps``: the GPS pointer entry is removed from IFD0 (the entries after it move up
  12 bytes inside IFD0's own table; no value moves) and every byte the GPS IFD owned is zeroed;
- ``set_pixel_dimensions``: Exif PixelX/YDimension patched in their inline value fields, and
  ``set_image_size`` / ``set_ycbcr_subsampling`` IFD0's ImageWidth/Length and YCbCrSubSampling;
- ``drop_thumbnail``: the embedded preview unlinked, and cut off when it is the block's tail;
- ``set_orientation``: IFD0's Orientation patched in its inline value field (the viewer's rotate),
  or, where IFD0 has none, IFD0's table copied to the block's end with the entry added.

Every read is bounds-checked against the block: a count larger than the data is an
``ExifError``, never an allocation, so a 1 kB file cannot ask for gigabytes. No edit zeroes or
cuts a byte that another structure uses (``used_ranges``: the TIFF header, the IFD tables and
their values, the MakerNote among them): a hostile block whose preview or GPS data overlaps them
is unlinked only, or refused (``ExifError``), and ``tag_values`` lets a caller check afterwards
that every tag it did not mean to change still reads the same.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EXIF_HEADER = b"Exif\x00\x00"
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TAG_EXIF_IFD, TAG_GPS_IFD, TAG_INTEROP_IFD = 0x8769, 0x8825, 0xA005
TAG_USER_COMMENT, TAG_PIXEL_X, TAG_PIXEL_Y = 0x9286, 0xA002, 0xA003
TAG_ORIENTATION = 0x0112
TAG_IMAGE_WIDTH, TAG_IMAGE_LENGTH, TAG_YCBCR_SUBSAMPLING = 0x0100, 0x0101, 0x0212
TAG_JPEG_OFFSET, TAG_JPEG_LENGTH = 0x0201, 0x0202  # IFD1's embedded preview
MAX_ENTRIES = 1000  # per IFD; real ones have tens


# (IFD, tag) of the tags that describe the image's size and sampling: what a HyperThumbnail (the
# thumbnail's) and a decoded photo (its own) set in a carried block, and nothing else.
SIZE_TAGS = frozenset(
    {
        ("0th", TAG_IMAGE_WIDTH),
        ("0th", TAG_IMAGE_LENGTH),
        ("0th", TAG_YCBCR_SUBSAMPLING),
        ("Exif", TAG_PIXEL_X),
        ("Exif", TAG_PIXEL_Y),
    }
)


class ExifError(ValueError):
    """The EXIF block is malformed (a bound or an offset is outside the data)."""


@dataclass(frozen=True)
class Entry:
    tag: int
    type: int
    count: int
    at: int  # offset of the 12-byte entry in the TIFF data
    value_at: int  # offset of the value (inline in the entry, or where its offset points)

    @property
    def size(self) -> int:
        return TYPE_SIZES.get(self.type, 1) * self.count


class TiffData:
    """The TIFF structure inside an EXIF block (``Exif\\0\\0`` + TIFF header + IFDs)."""

    def __init__(self, block: bytes):
        self.prefix = len(EXIF_HEADER) if block.startswith(EXIF_HEADER) else 0
        self.data = bytearray(block[self.prefix :])
        order = bytes(self.data[:4])
        if order == b"II*\x00":
            self.endian = "<"
        elif order == b"MM\x00*":
            self.endian = ">"
        else:
            raise ExifError("not a TIFF header")
        self.ifd0 = self._u32(4)

    def block(self) -> bytes:
        return (EXIF_HEADER if self.prefix else b"") + bytes(self.data)

    def _u16(self, at: int) -> int:
        self._need(at, 2)
        return struct.unpack_from(self.endian + "H", self.data, at)[0]

    def _u32(self, at: int) -> int:
        self._need(at, 4)
        return struct.unpack_from(self.endian + "I", self.data, at)[0]

    def _need(self, at: int, size: int) -> None:
        if at < 0 or size < 0 or at + size > len(self.data):
            raise ExifError(f"offset {at} + {size} lies outside the {len(self.data)}-byte EXIF data")

    def entries(self, ifd: int) -> list[Entry]:
        count = self._u16(ifd)
        if count > MAX_ENTRIES:
            raise ExifError(f"an IFD claims {count} entries")
        self._need(ifd + 2, 12 * count)  # the next-IFD link after it is read (bounded) only where it is used
        out = []
        for i in range(count):
            at = ifd + 2 + 12 * i
            tag, typ = struct.unpack_from(self.endian + "HH", self.data, at)
            n = self._u32(at + 4)
            size = TYPE_SIZES.get(typ, 1) * n
            if size > len(self.data):
                raise ExifError(f"tag 0x{tag:04x} claims {n} values, more than the block holds")
            value_at = at + 8 if size <= 4 else self._u32(at + 8)
            if size > 4:
                self._need(value_at, size)
            out.append(Entry(tag, typ, n, at, value_at))
        return out

    def find(self, ifd: int, tag: int) -> Entry | None:
        return next((e for e in self.entries(ifd) if e.tag == tag), None)

    def sub_ifd(self, tag: int) -> int | None:
        """Offset of the Exif (0x8769) or GPS (0x8825) IFD that IFD0 points to, or None."""
        entry = self.find(self.ifd0, tag)
        if entry is None or entry.count != 1 or entry.type not in (4, 13):
            return None
        offset = self._u32(entry.value_at)
        self._u16(offset)  # it must lie inside the block
        return offset

    def value(self, entry: Entry) -> bytes:
        return bytes(self.data[entry.value_at : entry.value_at + entry.size])

    def validate(self) -> None:
        """Walk IFD0, the Exif and GPS IFDs (``ExifError`` if any is out of bounds), then IFD1 and
        the Interop IFD, whose damage only clears ``complete``: the block is still carried byte
        for byte, but never handed to a parser that trusts counts (piexif)."""
        entries = self.entries(self.ifd0)
        subs = [self.entries(o) for o in (self.sub_ifd(TAG_EXIF_IFD), self.sub_ifd(TAG_GPS_IFD)) if o is not None]
        self.complete = True
        try:
            next_ifd = self._u32(self.ifd0 + 2 + 12 * len(entries))
            if next_ifd:
                self.entries(next_ifd)
            for sub in subs:
                interop = next((e for e in sub if e.tag == TAG_INTEROP_IFD and e.count == 1), None)
                if interop is not None:
                    self.entries(self._u32(interop.value_at))
        except (ExifError, struct.error):
            self.complete = False


def parse(block: bytes | None) -> TiffData | None:
    """The block's TIFF structure, checked; None when there is no block or it is malformed."""
    if not block:
        return None
    try:
        tiff = TiffData(block)
        tiff.validate()
        return tiff
    except (ExifError, struct.error):
        return None


def user_comment(block: bytes | None) -> bytes | None:
    """The Exif IFD's UserComment bytes (where format v1 kept its marker), or None."""
    tiff = parse(block)
    if tiff is None:
        return None
    exif_ifd = tiff.sub_ifd(TAG_EXIF_IFD)
    entry = tiff.find(exif_ifd, TAG_USER_COMMENT) if exif_ifd is not None else None
    return tiff.value(entry) if entry is not None else None


def strip_gps(block: bytes) -> bytes:
    """The block without GPS: IFD0's pointer entry removed in place, the GPS IFD zeroed."""
    tiff = TiffData(block)
    gps = tiff.sub_ifd(TAG_GPS_IFD)
    if gps is not None:
        owned = _ifd_ranges(tiff, gps, link=False)
        if _overlaps(owned, used_ranges(tiff, gps=False)):
            raise ExifError("the GPS data shares bytes with other EXIF data, so it cannot be removed alone")
        for start, end in owned:
            tiff.data[start:end] = bytes(end - start)
    entries = tiff.entries(tiff.ifd0)
    pointer = next((e for e in entries if e.tag == TAG_GPS_IFD), None)
    if pointer is not None:
        start, end = pointer.at, tiff.ifd0 + 2 + 12 * len(entries) + 4  # through the next-IFD offset
        tiff.data[start : end - 12] = tiff.data[start + 12 : end]
        tiff.data[end - 12 : end] = bytes(12)
        struct.pack_into(tiff.endian + "H", tiff.data, tiff.ifd0, len(entries) - 1)
    return tiff.block()


def set_pixel_dimensions(block: bytes, width: int, height: int) -> bytes:
    """PixelX/YDimension set to ``width`` x ``height`` where they exist and the value fits in
    place (SHORT <= 65535 or LONG); everything else unchanged."""
    tiff = TiffData(block)
    exif_ifd = tiff.sub_ifd(TAG_EXIF_IFD)
    if exif_ifd is None:
        return block
    _patch_inline(tiff, exif_ifd, TAG_PIXEL_X, [width])
    _patch_inline(tiff, exif_ifd, TAG_PIXEL_Y, [height])
    return tiff.block()


def set_image_size(block: bytes, width: int, height: int) -> bytes:
    """IFD0's ImageWidth/ImageLength (which some cameras write into a JPEG's EXIF too) set to
    ``width`` x ``height`` where they exist and the value fits in place; nothing is added."""
    tiff = TiffData(block)
    _patch_inline(tiff, tiff.ifd0, TAG_IMAGE_WIDTH, [width])
    _patch_inline(tiff, tiff.ifd0, TAG_IMAGE_LENGTH, [height])
    return tiff.block()


def set_ycbcr_subsampling(block: bytes, horizontal: int, vertical: int) -> bytes:
    """IFD0's YCbCrSubSampling (two SHORTs, inline) set where it exists: a HyperThumbnail is
    4:4:4 (1, 1) whatever the source's JPEG was; nothing is added."""
    tiff = TiffData(block)
    _patch_inline(tiff, tiff.ifd0, TAG_YCBCR_SUBSAMPLING, [horizontal, vertical])
    return tiff.block()


def _patch_inline(tiff: TiffData, ifd: int, tag: int, values: list[int]) -> None:
    """Write ``values`` into the entry's own value field (SHORT or LONG, the entry's count, inline
    only): no byte outside IFD ``ifd``'s table changes. Skipped when the value does not fit."""
    entry = tiff.find(ifd, tag)
    if entry is None or entry.count != len(values) or entry.size > 4:
        return
    if entry.type == 4:
        struct.pack_into(tiff.endian + "I" * len(values), tiff.data, entry.value_at, *values)
    elif entry.type == 3 and max(values) <= 0xFFFF:
        struct.pack_into(tiff.endian + "H" * len(values), tiff.data, entry.value_at, *values)


def set_orientation(block: bytes, orientation: int) -> bytes:
    """The block with IFD0's Orientation set to ``orientation`` (1..8).

    Where IFD0 has a SHORT Orientation, its inline value field is patched. Otherwise IFD0's
    table is written again at the end of the block with the entry added (tags kept in order) and
    the TIFF header pointed to the copy: no value moves, so every offset into the block (a
    MakerNote's included) still holds; the old table stays behind as unused bytes."""
    tiff = TiffData(block)
    entries = tiff.entries(tiff.ifd0)
    entry = next((e for e in entries if e.tag == TAG_ORIENTATION), None)
    if entry is not None and entry.count == 1 and entry.type == 3:
        struct.pack_into(tiff.endian + "H", tiff.data, entry.value_at, orientation)
        return tiff.block()
    next_ifd = tiff._u32(tiff.ifd0 + 2 + 12 * len(entries))
    rows = [bytes(tiff.data[e.at : e.at + 12]) for e in entries if e.tag != TAG_ORIENTATION]
    rows.append(struct.pack(tiff.endian + "HHIH2x", TAG_ORIENTATION, 3, 1, orientation))
    rows.sort(key=lambda row: struct.unpack_from(tiff.endian + "H", row)[0])
    if len(tiff.data) % 2:
        tiff.data += b"\x00"  # IFDs start on a word boundary
    table_at = len(tiff.data)
    tiff.data += struct.pack(tiff.endian + "H", len(rows)) + b"".join(rows) + struct.pack(tiff.endian + "I", next_ifd)
    struct.pack_into(tiff.endian + "I", tiff.data, 4, table_at)
    return tiff.block()


def drop_thumbnail(block: bytes) -> bytes:
    """The block without its embedded preview (IFD1 and its JPEG): unlinked from IFD0, and cut
    off when it is the block's tail (where cameras put it), so it costs no bytes; otherwise
    zeroed in place. A preview of the original is often as big as the whole HyperThumbnail.

    Only bytes no other structure uses are zeroed or cut: a preview that is damaged, or whose
    table, values or JPEG range overlap the TIFF header, another IFD or its values (a hostile
    block's, or a MakerNote's), is unlinked only."""
    tiff = TiffData(block)
    entries = tiff.entries(tiff.ifd0)
    link = tiff.ifd0 + 2 + 12 * len(entries)
    ifd1 = tiff._u32(link)
    if not ifd1:
        return block
    struct.pack_into(tiff.endian + "I", tiff.data, link, 0)
    try:
        owned = _ifd_ranges(tiff, ifd1)
        values = {e.tag: e for e in tiff.entries(ifd1)}
        if TAG_JPEG_OFFSET in values and TAG_JPEG_LENGTH in values:
            start, length = tiff._u32(values[TAG_JPEG_OFFSET].value_at), tiff._u32(values[TAG_JPEG_LENGTH].value_at)
            tiff._need(start, length)
            owned.append((start, start + length))
        used = used_ranges(tiff)
    except (ExifError, struct.error):
        return tiff.block()  # a damaged preview, or structures that cannot all be walked: unlinked only
    if _overlaps(owned, used):
        return tiff.block()
    for a, b in owned:
        tiff.data[a:b] = bytes(b - a)
    # Cut when the preview is the tail, leaving 4 (zero) bytes after the last other structure:
    # a reader may look for a next-IFD link after an Exif, GPS or Interop table written without one.
    region_start, region_end = min(a for a, _ in owned), max(b for _, b in owned)
    cut = max(region_start, max(b for _, b in used) + 4)
    if region_end >= len(tiff.data) - 16 and cut < len(tiff.data):
        del tiff.data[cut:]
    return tiff.block()


def _ifd_ranges(tiff: TiffData, ifd: int, *, link: bool = True) -> list[tuple[int, int]]:
    """The bytes IFD ``ifd`` owns: its table (count, entries and, with ``link``, the next-IFD
    link) and its values stored outside the table. Only IFD0's and IFD1's links are read: some
    writers (piexif) leave the Exif, GPS and Interop IFDs without one, their values right after."""
    entries = tiff.entries(ifd)
    ranges = [(ifd, ifd + 2 + 12 * len(entries) + (4 if link else 0))]
    return ranges + [(e.value_at, e.value_at + e.size) for e in entries if e.size > 4]


def used_ranges(tiff: TiffData, *, gps: bool = True) -> list[tuple[int, int]]:
    """Every byte range that the TIFF header, IFD0, the Exif, GPS (unless ``gps`` is false) and
    Interop IFDs use, tables and values (the MakerNote is one of the Exif IFD's values). An
    Interop IFD that cannot be walked keeps everything from its offset on; ``ExifError`` when
    IFD0, Exif or GPS cannot be walked."""
    ranges = [(0, 8)] + _ifd_ranges(tiff, tiff.ifd0)
    subs = [tiff.sub_ifd(TAG_EXIF_IFD)] + ([tiff.sub_ifd(TAG_GPS_IFD)] if gps else [])
    for sub in (o for o in subs if o is not None):
        ranges += _ifd_ranges(tiff, sub, link=False)
        interop = tiff.find(sub, TAG_INTEROP_IFD)
        if interop is None or interop.count != 1 or interop.size != 4:
            continue
        offset = tiff._u32(interop.value_at)
        try:
            ranges += _ifd_ranges(tiff, offset, link=False)
        except (ExifError, struct.error):
            if offset < len(tiff.data):
                ranges.append((offset, len(tiff.data)))  # unreadable, but inside: keep it all
    return ranges


def _overlaps(ranges: list[tuple[int, int]], others: list[tuple[int, int]]) -> bool:
    return any(a < d and c < b for a, b in ranges for c, d in others if a < b and c < d)


def tag_values(block: bytes) -> dict[tuple[str, int], tuple[int, int, bytes]]:
    """(IFD name, tag) -> (type, count, value bytes) for IFD0, the Exif, GPS and (readable)
    Interop IFDs: what an in-place edit must leave as it was, apart from the tags it sets."""
    tiff = TiffData(block)
    found: dict[tuple[str, int], tuple[int, int, bytes]] = {}
    ifds = [("0th", tiff.ifd0), ("Exif", tiff.sub_ifd(TAG_EXIF_IFD)), ("GPS", tiff.sub_ifd(TAG_GPS_IFD))]
    exif_ifd = ifds[1][1]
    interop = tiff.find(exif_ifd, TAG_INTEROP_IFD) if exif_ifd is not None else None
    if interop is not None and interop.count == 1 and interop.size == 4:
        try:
            offset = tiff._u32(interop.value_at)
            tiff.entries(offset)
            ifds.append(("Interop", offset))
        except (ExifError, struct.error):
            pass
    for name, ifd in ifds:
        if ifd is not None:
            for e in tiff.entries(ifd):
                found[(name, e.tag)] = (e.type, e.count, tiff.value(e))
    return found


def check_unchanged(
    before: dict[tuple[str, int], tuple[int, int, bytes]], block: bytes, changed: set[tuple[str, int]]
) -> None:
    """``ExifError`` unless ``block``'s tags (``tag_values``) are ``before``'s, apart from the
    (IFD name, tag) pairs in ``changed``, which may differ or be gone (and an IFD name alone, as
    ("GPS", -1), stands for all its tags): whatever way a hostile layout made an edit reach
    another tag's bytes, it is found here."""

    def kept(values: dict) -> dict:
        return {k: v for k, v in values.items() if k not in changed and (k[0], -1) not in changed}

    expected, after = kept(before), kept(tag_values(block))
    if after != expected:
        differ = {k for k in expected.keys() | after.keys() if expected.get(k) != after.get(k)}
        names = sorted(f"{ifd} 0x{tag:04x}" for ifd, tag in differ)
        raise ExifError(f"editing it would change {', '.join(names[:3])}")
