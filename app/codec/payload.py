"""The per-file binary payload of format v2, in APP11 segments that every JPEG reader skips.

A payload (e.g. per-image decoder parameters, up to tens of kB) is split into chunks of at most
``CHUNK_BYTES``; each travels in one APP11 segment::

    "HyperThumbnail-payload\\0"  u8 version  u16 index  u16 count  chunk bytes   (big-endian)

The XMP marker records the payload's total length and SHA-256, so a reader knows when a tool
dropped or damaged segments. What the bytes mean is the decoder's business, not the container's.
"""
from __future__ import annotations

import hashlib
import struct

SEGMENT_ID = b"HyperThumbnail-payload\x00"
PAYLOAD_VERSION = 1
_HEADER = struct.Struct(">BHH")
CHUNK_BYTES = 65533 - len(SEGMENT_ID) - _HEADER.size
MAX_PAYLOAD = 1 << 20  # 1 MiB: far above what the format is for; a bound for hostile files


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
