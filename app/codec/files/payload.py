"""The per-file binary payload of format v2, in APP11 segments that every JPEG reader skips.

Written as one JUMBF box (ISO/IEC 19566-5), the way JPEG XT, JPEG 360 and C2PA carry boxes in
a JPEG: a ``jumb`` superbox holding a description box (``jumd``: our type UUID, toggles, the
label ``org.hyperthumbnail.payload``) and a binary data box (``bidb``) with the payload bytes::

    jumb box = u32 LBox  "jumb"
               u32 LBox  "jumd"  16-byte TYPE_UUID  u8 toggles (0x03)  "org.hyperthumbnail.payload\\0"
               u32 LBox  "bidb"  payload bytes

The box is split over APP11 segments as ISO/IEC 18477-3 (JPEG XT) / 19566-5 describe; every
segment repeats the box's LBox and TBox, and carries the next bytes of the box after them::

    "JP"  u16 En (box instance, ``BOX_INSTANCE``)  u32 Z (packet sequence, 1..n)  u32 LBox  "jumb"  bytes

Files written before the JUMBF form carry "legacy" segments, still read::

    "HyperThumbnail-payload\\0"  u8 version  u16 index  u16 count  chunk bytes

All integers are big-endian. The XMP marker records the payload's total length and SHA-256 (of
the payload, not the box), so a reader knows when a tool dropped or damaged segments.

Inside, the payload is a list of records, one per kind of data (``pack_records``)::

    "HTR1"  then per record: 4-byte kind, u32 length, bytes      (big-endian)

Kinds today: ``HTA1`` (decoder adaptation, ``adaptation``) and ``HTD1`` (the detail layer,
``detail_coding``). Files of format v2 before the detail layer carry a bare ``HTA1`` payload,
read as that one record. Readers skip kinds they do not know.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

# A JPEG marker segment holds at most 65,535 - 2 (its length field) data bytes.
SEGMENT_DATA_BYTES = 65533
# 64 MiB: a detail layer at 1 bpp on the largest photo the pixel budget admits needs ~32 MB. A
# bound for hostile files; Pillow keeps APP segments as a list, so reading them stays linear.
MAX_PAYLOAD = 64 << 20

# --- the JUMBF form (written) ---
# uuid5(NAMESPACE_URL, "https://hyperthumbnail.org/ns/1.0/payload"): 7c99110f-9b9c-5bc3-bc62-dd80bcfaf87f
TYPE_UUID = uuid.UUID("7c99110f-9b9c-5bc3-bc62-dd80bcfaf87f").bytes
LABEL = b"org.hyperthumbnail.payload"
TOGGLES = 0x03  # requestable, label present (no ID, no signature)
BOX_INSTANCE = 0x4854  # En, "HT": any number no other JUMBF box of the file uses (C2PA writes 0x0211)
_XT = struct.Struct(">2sHII4s")  # CI "JP", En, Z, LBox, TBox: the JPEG XT header of every segment
_BOX = struct.Struct(">I4s")  # LBox, TBox
PACKET_BYTES = SEGMENT_DATA_BYTES - _XT.size  # 65,517 box bytes after the header per segment
_DESCRIPTION = _BOX.pack(_BOX.size + 16 + 1 + len(LABEL) + 1, b"jumd") + TYPE_UUID + bytes([TOGGLES]) + LABEL + b"\0"
BOX_OVERHEAD = _BOX.size + len(_DESCRIPTION) + _BOX.size  # jumb, jumd and bidb headers: 68 bytes
# Bounds a reader accepts: jumb, a jumd without label (25 bytes) and a bidb header; 4 KiB of room
# for another writer's longer label or extra content boxes.
_MIN_BOX, _MAX_BOX = _BOX.size + 25 + _BOX.size, MAX_PAYLOAD + 4096

# --- the legacy form (read only) ---
SEGMENT_ID = b"HyperThumbnail-payload\x00"
PAYLOAD_VERSION = 1
_HEADER = struct.Struct(">BHH")
CHUNK_BYTES = SEGMENT_DATA_BYTES - len(SEGMENT_ID) - _HEADER.size  # 65,505

RECORDS_MAGIC = b"HTR1"
_RECORD = struct.Struct(">4sI")
ADAPTATION_KIND, DETAIL_KIND = b"HTA1", b"HTD1"


class PayloadError(ValueError):
    """The payload segments are missing, incomplete or do not match the marker."""


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def box(payload: bytes) -> bytes:
    """The payload as a JUMBF superbox: ``jumb`` with our ``jumd`` description and a ``bidb``."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return b"".join(
        (
            _BOX.pack(BOX_OVERHEAD + len(payload), b"jumb"),
            _DESCRIPTION,
            _BOX.pack(_BOX.size + len(payload), b"bidb"),
            payload,
        )
    )


def segments(payload: bytes) -> bytes:
    """The payload as APP11 marker segments (one JUMBF box, JPEG XT packets), ready to append to a
    JPEG header."""
    data = memoryview(box(payload))
    header, content = data[: _BOX.size], data[_BOX.size :]
    length, kind = _BOX.unpack(header)
    out = bytearray()
    for z, at in enumerate(range(0, len(content), PACKET_BYTES), start=1):
        packet = content[at : at + PACKET_BYTES]
        out += struct.pack(">2sH", b"\xff\xeb", 2 + _XT.size + len(packet))
        out += _XT.pack(b"JP", BOX_INSTANCE, z, length, kind) + packet
    return bytes(out)


def segments_size(length: int) -> int:
    """Bytes the APP11 segments of a ``length``-byte payload take in the file, headers included."""
    content = BOX_OVERHEAD - _BOX.size + length
    packets = -(-content // PACKET_BYTES)
    return content + packets * (4 + _XT.size)


def assemble(app_segments: list[tuple[str, bytes]], length: int, sha256: str) -> bytes:
    """The payload from a JPEG's APP segments (Pillow's ``applist``), checked against the
    marker's ``length`` and ``sha256``; ``PayloadError`` saying what is wrong otherwise. The JUMBF
    box when the file has one, else the legacy segments."""
    if not 0 <= length <= MAX_PAYLOAD:
        raise PayloadError(f"the marker declares a {length}-byte payload (at most {MAX_PAYLOAD})")
    app11 = [data for name, data in app_segments if name == "APP11"]
    payload = _from_jumbf(app11)
    if payload is None:
        payload = _from_legacy(app11)
    if payload is None:
        raise PayloadError("the payload segments are missing (another program may have removed them)")
    if len(payload) != length or digest(payload) != sha256.lower():
        raise PayloadError("the payload does not match the marker's length and checksum")
    return payload


def file_bytes(app_segments: list[tuple[str, bytes]]) -> int:
    """Bytes the payload's APP11 segments take in a file (marker and length included), either
    form: what ``info`` subtracts from the file to give the thumbnail's own bytes."""
    return sum(
        len(data) + 4
        for name, data in app_segments
        if name == "APP11"
        and (data.startswith(SEGMENT_ID) or (data[:2] == b"JP" and data[2:4] == BOX_INSTANCE.to_bytes(2, "big")))
    )


def _is_ours(data: bytes) -> bool:
    """Whether an APP11 segment is the first packet (Z = 1) of a HyperThumbnail payload box."""
    return (
        len(data) >= _XT.size + _BOX.size + 16
        and data[:2] == b"JP"
        and data[12:16] == b"jumb"
        and data[4:8] == b"\x00\x00\x00\x01"
        and data[20:24] == b"jumd"
        and data[24:40] == TYPE_UUID
    )


def _from_jumbf(app11: list[bytes]) -> bytes | None:
    """The payload of the file's JUMBF box, None when it has none. Its packets are the "JP"
    segments with the En, LBox and TBox of its first packet, Z = 1..N each once, their bytes
    totalling LBox - 8; other JUMBF boxes are left alone."""
    firsts = [data for data in app11 if _is_ours(data)]
    if not firsts:
        return None
    if len(firsts) > 1:
        raise PayloadError("the file holds more than one payload box")
    _, instance, _, box_length, _ = _XT.unpack_from(firsts[0])
    if box_length == 1:
        raise PayloadError("the payload box has an extended (XLBox) length, which this reader does not read")
    if not _MIN_BOX <= box_length <= _MAX_BOX:
        raise PayloadError(f"the payload box declares {box_length} bytes ({_MIN_BOX}..{_MAX_BOX})")
    packets: dict[int, bytes] = {}
    total = _BOX.size
    for data in app11:
        if len(data) < _XT.size or data[:2] != b"JP":
            continue
        _, en, z, lbox, tbox = _XT.unpack_from(data)
        if en != instance or lbox != box_length or tbox != b"jumb":
            continue  # another box
        if z in packets:
            raise PayloadError(f"payload packet {z} appears twice")
        packets[z] = data[_XT.size :]
        total += len(data) - _XT.size
        if total > box_length:
            raise PayloadError("the payload packets hold more bytes than their box")
    if total != box_length or any(z not in packets for z in range(1, len(packets) + 1)):
        raise PayloadError("payload packets are missing or inconsistent")
    return _box_payload(b"".join(packets[z] for z in range(1, len(packets) + 1)))


def _box_payload(content: bytes) -> bytes:
    """The ``bidb`` box's bytes from a payload box's content (after its ``jumb`` header): the
    description box first, then content boxes; unknown ones are skipped."""
    described, _ = _BOX.unpack_from(content)  # _is_ours checked the jumd header and type
    if not _BOX.size + 17 <= described <= len(content):
        raise PayloadError("the payload box's description is malformed")
    found, at = None, described
    while at < len(content):
        if at + _BOX.size > len(content):
            raise PayloadError("a box in the payload box is truncated")
        size, kind = _BOX.unpack_from(content, at)
        if size < _BOX.size or at + size > len(content):
            raise PayloadError("a box in the payload box is malformed")
        if kind == b"bidb":
            if found is not None:
                raise PayloadError("the payload box holds two data boxes")
            found = content[at + _BOX.size : at + size]
        at += size
    if found is None:
        raise PayloadError("the payload box holds no data box")
    return found


def _from_legacy(app11: list[bytes]) -> bytes | None:
    """The payload of legacy "HyperThumbnail-payload" segments, None when the file has none."""
    chunks: dict[int, bytes] = {}
    counts, total = set(), 0
    for data in app11:
        if not data.startswith(SEGMENT_ID):
            continue
        header = data[len(SEGMENT_ID) : len(SEGMENT_ID) + _HEADER.size]
        if len(header) < _HEADER.size:
            raise PayloadError("a payload segment is truncated")
        version, index, count = _HEADER.unpack(header)
        if version != PAYLOAD_VERSION:
            raise PayloadError(f"payload segment version {version} is not {PAYLOAD_VERSION}")
        if index in chunks:
            raise PayloadError(f"payload segment {index} appears twice")
        chunks[index] = data[len(SEGMENT_ID) + _HEADER.size :]
        counts.add(count)
        total += len(chunks[index])
        if total > MAX_PAYLOAD:
            raise PayloadError(f"the payload segments hold more than {MAX_PAYLOAD} bytes")
    if not chunks:
        return None
    count = counts.pop() if len(counts) == 1 else -1
    if len(chunks) != count or any(i not in chunks for i in range(count)):
        raise PayloadError("payload segments are missing or inconsistent")
    return b"".join(chunks[i] for i in range(count))


def pack_records(records: dict[bytes, bytes]) -> bytes:
    """{kind: bytes} -> one payload (kinds are 4 ASCII bytes, each once)."""
    out = bytearray(RECORDS_MAGIC)
    for kind, data in records.items():
        if len(kind) != 4:
            raise ValueError(f"record kind {kind!r} is not 4 bytes")
        out += _RECORD.pack(kind, len(data)) + data
    return bytes(out)


def unpack_records(payload: bytes) -> dict[bytes, bytes]:
    """A payload -> {kind: bytes}; a bare adaptation payload (format v2 before the detail layer)
    is one ``HTA1`` record. ``PayloadError`` when the list is malformed or repeats a kind."""
    if payload.startswith(ADAPTATION_KIND):
        return {ADAPTATION_KIND: payload}
    if not payload.startswith(RECORDS_MAGIC):
        raise PayloadError("the payload is of an unknown kind")
    records, at = {}, len(RECORDS_MAGIC)
    while at < len(payload):
        if at + _RECORD.size > len(payload):
            raise PayloadError("a payload record header is truncated")
        kind, length = _RECORD.unpack_from(payload, at)
        at += _RECORD.size
        if at + length > len(payload):
            raise PayloadError("a payload record is truncated")
        if kind in records:
            raise PayloadError(f"payload record {kind!r} appears twice")
        records[kind] = payload[at : at + length]
        at += length
    return records


RECORD_NAMES = {ADAPTATION_KIND: "adaptation", DETAIL_KIND: "detail"}


def record_sizes(payload: bytes) -> dict[str, int]:
    """{record name: bytes} of a payload, for ``info`` (unknown kinds by their 4-character tag)."""
    return {
        RECORD_NAMES.get(kind, kind.decode("ascii", "replace")): len(data)
        for kind, data in unpack_records(payload).items()
    }
