"""Everything a HyperThumbnail's JPEG header carries besides the image: the source's EXIF
carried over (byte for byte where it is safe, ``exif_edit``), the XMP marker and the payload
segments. Carrying metadata is its own concern: a photographer's EXIF matters more than ours.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import Any

import piexif

from app.codec.files import exif_edit, iptc, xmp
from app.codec.files.marker import _MAX_EXIF_BYTES, Marker
from app.codec.files.payload import digest as payload_digest
from app.codec.files.payload import segments as payload_segments


def _source_ifds(source_exif: bytes | None) -> dict[str, dict[int, Any]]:
    """The source's 0th/Exif/GPS/Interop IFDs; its embedded thumbnail (1st IFD) is dropped.

    EXIF piexif cannot parse yields empty IFDs: the photo matters more than its metadata.
    """
    empty: dict[str, dict[int, Any]] = {"0th": {}, "Exif": {}, "GPS": {}, "Interop": {}}
    if not source_exif:
        return empty
    data = source_exif if source_exif[:4] == b"Exif" else b"Exif\x00\x00" + source_exif
    if data[6:10] not in (b"II*\x00", b"MM\x00*"):
        return empty  # piexif would take anything else for a file name
    try:
        loaded = piexif.load(data)
    except Exception:  # piexif raises arbitrary exception types on malformed input
        return empty
    return {name: dict(loaded.get(name) or {}) for name in empty}


def _known_tags_only(ifds: dict[str, dict[int, Any]]) -> dict[str, dict[int, Any]]:
    """Drop MakerNote (large, vendor-specific, often breaks piexif) and tags piexif lacks."""
    kept = {name: {t: v for t, v in tags.items() if t in piexif.TAGS[name]} for name, tags in ifds.items()}
    kept["Exif"].pop(piexif.ExifIFD.MakerNote, None)
    return kept


def _dumpable_tags(ifds: dict[str, dict[int, Any]]) -> dict[str, dict[int, Any]]:
    """Keep only the tags piexif can write, testing each on its own."""
    kept: dict[str, dict[int, Any]] = {name: {} for name in ifds}
    for name, tags in _known_tags_only(ifds).items():
        for tag, value in tags.items():
            if _try_dump({name: {tag: value}}) is not None:
                kept[name][tag] = value
    return kept


def _try_dump(ifds: dict[str, dict[int, Any]]) -> bytes | None:
    try:
        data = piexif.dump(ifds)
    except Exception:  # piexif raises ValueError, TypeError, struct.error... on odd values
        return None
    return data if len(data) <= _MAX_EXIF_BYTES else None


def _rewritten_exif(source_exif: bytes) -> bytes | None:
    """Last resort for an EXIF block too big for one JPEG segment: re-written by piexif without
    its MakerNote and embedded thumbnail (only after the bounded walk found it sound)."""
    source = _source_ifds(source_exif)
    for base in (_known_tags_only(source), _dumpable_tags(source)):
        data = _try_dump(base)
        if data is not None:
            return data
    return None


def minimal_exif(orientation: int) -> bytes | None:
    """EXIF holding only an orientation (and the IFD0 tags a JPEG's EXIF requires), or None for 1."""
    if orientation == 1:
        return None
    return piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Orientation: orientation,
                piexif.ImageIFD.XResolution: (72, 1),
                piexif.ImageIFD.YResolution: (72, 1),
                piexif.ImageIFD.ResolutionUnit: 2,
                piexif.ImageIFD.YCbCrPositioning: 1,
            }
        }
    )


def carry_exif(
    source_exif: bytes | None, thumb_size: tuple[int, int], *, strip_gps: bool, orientation: int = 1
) -> tuple[bytes | None, list[str]]:
    """(EXIF for the HyperThumbnail, notes): the source's block byte for byte (MakerNotes keep
    their offsets), with GPS removed in place on request, the embedded preview dropped, and
    PixelX/YDimension, IFD0's ImageWidth/Length (set to the thumbnail's size) and
    YCbCrSubSampling (1, 1: the thumbnail is 4:4:4) patched where they exist. A malformed block,
    or one whose edits would touch bytes another of its structures uses, is not carried (a
    minimal EXIF keeps the orientation, and a note says so); one too big for a JPEG segment is
    re-written without its MakerNote and thumbnail."""
    if not source_exif:
        return None, []
    block = source_exif if source_exif.startswith(exif_edit.EXIF_HEADER) else exif_edit.EXIF_HEADER + source_exif
    tiff = exif_edit.parse(block)
    if tiff is None:
        return minimal_exif(orientation), ["the source's EXIF is damaged and was not carried over"]
    notes = []
    if len(block) > _MAX_EXIF_BYTES:
        block = _rewritten_exif(block) if tiff.complete else None
        notes.append("the source's EXIF is larger than a JPEG segment: re-written without its MakerNote")
        if block is None:
            return minimal_exif(orientation), ["the source's EXIF could not be carried over"]
    try:
        return _edited_exif(block, thumb_size, strip_gps), notes
    except (exif_edit.ExifError, struct.error) as exc:
        why = f"the source's EXIF could not be carried over safely ({exc})"
        return minimal_exif(orientation), [why + (": only its orientation was kept" if orientation != 1 else "")]


# What ``_edited_exif`` may change: every other tag must read the same afterwards.
_SET_TAGS = exif_edit.SIZE_TAGS


def _edited_exif(block: bytes, thumb_size: tuple[int, int], strip_gps: bool) -> bytes:
    """The in-place edits of ``carry_exif``, then a check that they changed nothing else (no tag
    of IFD0, Exif, GPS or Interop lost or altered, the orientation and MakerNote included):
    ``ExifError`` when they did, whatever way a hostile layout found."""
    before = exif_edit.tag_values(block)
    if strip_gps:
        block = exif_edit.strip_gps(block)
    block = exif_edit.drop_thumbnail(block)
    block = exif_edit.set_pixel_dimensions(block, *thumb_size)
    block = exif_edit.set_image_size(block, *thumb_size)
    block = exif_edit.set_ycbcr_subsampling(block, 1, 1)
    dropped = {("0th", exif_edit.TAG_GPS_IFD), ("GPS", -1)} if strip_gps else set()
    exif_edit.check_unchanged(before, block, _SET_TAGS | dropped)
    return block


@dataclass
class HeaderMetadata:
    """Everything a HyperThumbnail's JPEG header carries besides the image itself."""

    exif: bytes | None
    xmp: bytes
    extra: bytes  # raw segments: the source's IPTC (APP13), then the payload's APP11 segments
    notes: list[str]
    iptc: bytes | None = None  # the APP13 segment's data, as carried (also at the start of ``extra``)


def build_metadata(
    marker: Marker,
    thumb_size: tuple[int, int],
    *,
    source_exif: bytes | None = None,
    source_xmp: bytes | None = None,
    source_iptc: bytes | None = None,
    strip_gps: bool = False,
    orientation: int = 1,
    payload: bytes | None = None,
) -> HeaderMetadata:
    """The header of a HyperThumbnail for ``marker``: carried EXIF, XMP (the source's, with our
    marker), the source's IPTC and the payload segments. ``strip_gps`` removes the position from
    the EXIF and the location properties from the XMP and IPTC (``xmp.LOCATION_PROPERTIES``,
    ``iptc.LOCATION_DATASETS``)."""
    if payload is not None:
        marker = dataclasses.replace(marker, payload_length=len(payload), payload_sha256=payload_digest(payload))
    exif, notes = carry_exif(source_exif, thumb_size, strip_gps=strip_gps, orientation=orientation)
    packet, note = xmp.build_packet(marker.to_xmp(), source_xmp, strip_location=strip_gps, image_size=thumb_size)
    carried_iptc, iptc_note = iptc.carry(source_iptc, strip_location_data=strip_gps)
    notes += [n for n in (note, iptc_note) if n]
    extra = (iptc.app13(carried_iptc) if carried_iptc else b"") + (
        payload_segments(payload) if payload is not None else b""
    )
    return HeaderMetadata(exif, packet, extra, notes, carried_iptc)
