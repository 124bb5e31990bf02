"""IPTC-IIM metadata (caption, keywords, city...) as a JPEG carries it: one APP13 segment,
``Photoshop 3.0\\0`` then Photoshop image resources (``8BIM``, id, Pascal name, size, data),
the IIM datasets in resource 0x0404.

A HyperThumbnail carries the source's segment byte for byte; ``--strip-gps`` rebuilds resource
0x0404 without the location datasets (other resources kept, the IPTC digest 0x0425 updated).
Every read is bounded by the segment (at most 65,533 bytes): a length that does not fit is an
``IptcError``, never an allocation.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

PHOTOSHOP = b"Photoshop 3.0\x00"
MAX_SEGMENT = 65533  # the data of one APP13 segment (its length field counts itself)
IIM_RESOURCE, DIGEST_RESOURCE = 0x0404, 0x0425
SIGNATURES = (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa")  # Photoshop's, and older programs'
# Record 2 datasets that say where the photo was taken: content location code and name,
# city, sub-location, province/state, country code, country name.
LOCATION_DATASETS = frozenset({(2, 26), (2, 27), (2, 90), (2, 92), (2, 95), (2, 100), (2, 101)})


class IptcError(ValueError):
    """An APP13 segment whose resources or datasets do not fit in it."""


@dataclass(frozen=True)
class Resource:
    signature: bytes
    id: int
    name: bytes  # the Pascal string as stored: length byte, name, padding to an even size
    data: bytes


def resources(segment: bytes) -> list[Resource]:
    """The image resources of an APP13 segment's data (``Photoshop 3.0\\0`` first); trailing
    zero padding is allowed, anything else that does not parse is an ``IptcError``."""
    if not segment.startswith(PHOTOSHOP):
        raise IptcError("not a Photoshop APP13 segment")
    if len(segment) > MAX_SEGMENT:
        raise IptcError("larger than one APP13 segment")
    out, at = [], len(PHOTOSHOP)
    while at < len(segment):
        if not any(segment[at:]):  # padding some writers leave at the end
            break
        signature = segment[at : at + 4]
        if signature not in SIGNATURES or at + 7 > len(segment):
            raise IptcError(f"no image resource at byte {at}")
        (rid,) = struct.unpack_from(">H", segment, at + 4)
        name_size = segment[at + 6] + 1
        name_size += name_size % 2
        size_at = at + 6 + name_size
        if size_at + 4 > len(segment):
            raise IptcError(f"resource 0x{rid:04x} is cut off")
        (size,) = struct.unpack_from(">I", segment, size_at)
        data_at = size_at + 4
        if data_at + size > len(segment):
            raise IptcError(f"resource 0x{rid:04x} claims {size} bytes, more than the segment holds")
        out.append(Resource(signature, rid, segment[at + 6 : size_at], segment[data_at : data_at + size]))
        at = data_at + size + size % 2
    return out


def build(items: list[Resource]) -> bytes:
    """APP13 segment data for these resources (each padded to an even size, as Photoshop does)."""
    parts = [PHOTOSHOP]
    for r in items:
        parts += [r.signature, struct.pack(">H", r.id), r.name, struct.pack(">I", len(r.data)), r.data]
        parts += [b"\x00"] if len(r.data) % 2 else []
    return b"".join(parts)


def datasets(iim: bytes) -> list[tuple[int, int, bytes]]:
    """(record, dataset, the dataset's bytes as stored, header included) for IIM data;
    trailing zero padding allowed; ``IptcError`` for anything that does not fit."""
    out, at = [], 0
    while at < len(iim):
        if not any(iim[at:]):
            break
        if iim[at] != 0x1C or at + 5 > len(iim):
            raise IptcError(f"no IIM dataset at byte {at}")
        record, number, (length,) = iim[at + 1], iim[at + 2], struct.unpack_from(">H", iim, at + 3)
        header = 5
        if length & 0x8000:  # extended dataset: the next (length & 0x7fff) bytes hold the length
            size = length & 0x7FFF
            if not 1 <= size <= 4 or at + 5 + size > len(iim):
                raise IptcError(f"IIM dataset {record}:{number} has a bad extended length")
            length, header = int.from_bytes(iim[at + 5 : at + 5 + size], "big"), 5 + size
        end = at + header + length
        if end > len(iim):
            raise IptcError(f"IIM dataset {record}:{number} claims {length} bytes, more than there are")
        out.append((record, number, iim[at:end]))
        at = end
    return out


def iim_data(segment: bytes) -> bytes | None:
    """The IIM datasets (resource 0x0404) of an APP13 segment's data, or None."""
    found = next((r for r in resources(segment) if r.signature == b"8BIM" and r.id == IIM_RESOURCE), None)
    return found.data if found is not None else None


def from_iim(iim: bytes) -> bytes:
    """APP13 segment data holding these IIM datasets (a TIFF's IPTC-NAA tag) as resource 0x0404."""
    return build([Resource(b"8BIM", IIM_RESOURCE, b"\x00\x00", iim)])


def strip_location(segment: bytes) -> bytes:
    """The segment without the location datasets (``LOCATION_DATASETS``) in resource 0x0404;
    every other resource and dataset kept as it was, the IPTC digest (0x0425) made to match."""
    items = resources(segment)
    changed = False
    for i, r in enumerate(items):
        if r.signature == b"8BIM" and r.id == IIM_RESOURCE:
            kept = [raw for record, number, raw in datasets(r.data) if (record, number) not in LOCATION_DATASETS]
            data = b"".join(kept)
            changed |= data != r.data
            items[i] = Resource(r.signature, r.id, r.name, data)
    if not changed:
        return segment
    iim = next(r.data for r in items if r.signature == b"8BIM" and r.id == IIM_RESOURCE)
    items = [
        Resource(r.signature, r.id, r.name, hashlib.md5(iim).digest())
        if r.signature == b"8BIM" and r.id == DIGEST_RESOURCE
        else r
        for r in items
    ]
    return build(items)


def joined(segments: list[bytes]) -> bytes | None:
    """The Photoshop APP13 segments of a JPEG (data only) as one, the later ones' resources
    following the first's (a writer may split them); None when there is none."""
    parts = [s for s in segments if s.startswith(PHOTOSHOP)]
    if not parts:
        return None
    return parts[0] + b"".join(p[len(PHOTOSHOP) :] for p in parts[1:])


def carry(segment: bytes | None, *, strip_location_data: bool = False) -> tuple[bytes | None, str | None]:
    """(APP13 segment data to write, note): the source's segment byte for byte (without its
    location datasets on request), or (None, why) when it cannot be carried."""
    if not segment:
        return None, None
    try:
        if len(segment) > MAX_SEGMENT:
            raise IptcError("it is larger than one APP13 segment")
        iim = iim_data(segment)  # it must parse, datasets too: a damaged one is not passed on
        if iim:
            datasets(iim)
        return (strip_location(segment) if strip_location_data else segment), None
    except IptcError as exc:
        return None, f"the source's IPTC was dropped: {exc}"


def app13(segment: bytes) -> bytes:
    """The APP13 marker segment (marker, length, data) for ``segment``'s data."""
    return b"\xff\xed" + struct.pack(">H", len(segment) + 2) + segment
