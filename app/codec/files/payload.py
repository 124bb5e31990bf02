"""The per-file binary payload of format v2, in APP11 segments that every JPEG reader skips.

A payload (e.g. per-image decoder parameters, up to tens of kB) is split into chunks of at most
``CHUNK_BYTES``; each travels in one APP11 segment::

    "HyperThumbnail-payload\\0"  u8 version  u16 index  u16 count  chunk bytes   (big-endian)

The XMP marker records the payload's total length and SHA-256, so a reader knows when a tool
dropped or damaged segments.

Inside, the payload is a list of records, one per kind of data (``pack_records``)::

    "HTR1"  then per record: 4-byte kind, u32 length, bytes      (big-endian)

Kinds today: ``HTA1`` (decoder adaptation, ``adaptation``) and ``HTD1`` (the detail layer,
``detail_coding``). Files of format v2 before the detail layer carry a bare ``HTA1`` payload,
read as that one record. Readers skip kinds they do not know.
"""

from __future__ import annotations

import hashlib
import struct

SEGMENT_ID = b"HyperThumbnail-payload\x00"
PAYLOAD_VERSION = 1
_HEADER = struct.Struct(">BHH")
CHUNK_BYTES = 65533 - len(SEGMENT_ID) - _HEADER.size
# 64 MiB: a detail layer at 1 bpp on the largest photo the pixel budget admits needs ~32 MB. A
# bound for hostile files; Pillow keeps APP segments as a list, so reading them stays linear.
MAX_PAYLOAD = 64 << 20
RECORDS_MAGIC = b"HTR1"
_RECORD = struct.Struct(">4sI")
ADAPTATION_KIND, DETAIL_KIND = b"HTA1", b"HTD1"


class PayloadError(ValueError):
    """The payload segments are missing, incomplete or do not match the marker."""


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def segments(payload: bytes) -> bytes:
    """The payload as APP11 marker segments, ready to append to a JPEG header."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    chunks = [payload[i : i + CHUNK_BYTES] for i in range(0, len(payload), CHUNK_BYTES)] or [b""]
    out = bytearray()
    for index, chunk in enumerate(chunks):
        body = SEGMENT_ID + _HEADER.pack(PAYLOAD_VERSION, index, len(chunks)) + chunk
        out += b"\xff\xeb" + struct.pack(">H", len(body) + 2) + body
    return bytes(out)


def assemble(app_segments: list[tuple[str, bytes]], length: int, sha256: str) -> bytes:
    """The payload from a JPEG's APP segments (Pillow's ``applist``), checked against the
    marker's ``length`` and ``sha256``; ``PayloadError`` saying what is wrong otherwise."""
    if not 0 <= length <= MAX_PAYLOAD:
        raise PayloadError(f"the marker declares a {length}-byte payload (at most {MAX_PAYLOAD})")
    chunks: dict[int, bytes] = {}
    counts = set()
    for name, data in app_segments:
        if name != "APP11" or not data.startswith(SEGMENT_ID):
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
    if not chunks:
        raise PayloadError("the payload segments are missing (another program may have removed them)")
    if len(counts) != 1 or sorted(chunks) != list(range(counts.pop())):
        raise PayloadError("payload segments are missing or inconsistent")
    payload = b"".join(chunks[i] for i in sorted(chunks))
    if len(payload) != length or digest(payload) != sha256.lower():
        raise PayloadError("the payload does not match the marker's length and checksum")
    return payload


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


def segments_size(length: int) -> int:
    """Bytes the APP11 segments of a ``length``-byte payload take in the file, headers included."""
    chunks = max(1, -(-length // CHUNK_BYTES))
    return length + chunks * (4 + len(SEGMENT_ID) + _HEADER.size)


def record_sizes(payload: bytes) -> dict[str, int]:
    """{record name: bytes} of a payload, for ``info`` (unknown kinds by their 4-character tag)."""
    return {
        RECORD_NAMES.get(kind, kind.decode("ascii", "replace")): len(data)
        for kind, data in unpack_records(payload).items()
    }
