"""Star ratings and colour labels in a file's XMP, as Lightroom, darktable and digiKam write them.

``xmp:Rating`` is 1..5 stars (-1 is Lightroom's "rejected"; absent means unrated) and
``xmp:Label`` a colour's name ("Red", "Yellow", "Green", "Blue", "Purple"). A JPEG (a
HyperThumbnail is one) holds them in its XMP segment, edited in place like the rotation
(``jpeg_orientation``): the packet is parsed by ``xmp``'s bounded, defused parser, only those two
properties change (the HyperThumbnail marker's properties and everything else stay), the
entropy-coded data and every other segment (EXIF, ICC, IPTC, the APP11 payload) are kept byte for
byte, and the file is replaced atomically with its permissions. The packet must still fit one
APP1 segment. A file without XMP gets a new segment after its EXIF (or JFIF); clearing the last
property removes that segment again, so rating and unrating give back the original bytes.

Other types (PNG, TIFF, WebP...) are never rewritten: their rating goes into an XMP sidecar beside
them, ``NAME.EXT.xmp`` (darktable's and digiKam's name for it), edited the same way when it exists
(darktable's history in it is kept) and written atomically.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from app.codec.errors import CodecError, shorten
from app.codec.files import jpeg_segments, xmp
from app.codec.files.atomic import atomic_output

XMP_NS = "http://ns.adobe.com/xap/1.0/"
RATING, LABEL = f"{{{XMP_NS}}}Rating", f"{{{XMP_NS}}}Label"
COLOURS = ("Red", "Yellow", "Green", "Blue", "Purple")  # Lightroom's names and order
XMP_IDENTIFIER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")
MAX_SIDECAR = 4 << 20  # darktable keeps its whole edit history in the sidecar


@dataclass(frozen=True)
class Labels:
    """A file's rating (0: none, 1..5 stars, -1: rejected) and colour label (None: none)."""

    rating: int = 0
    label: str | None = None


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where a non-JPEG file's rating is kept: ``photo.png`` -> ``photo.png.xmp``."""
    path = Path(path)
    return path.with_name(path.name + ".xmp")


def holds_xmp(path: str | os.PathLike[str]) -> bool:
    """Whether the file itself holds the rating (a JPEG), rather than a sidecar."""
    return Path(path).suffix.lower() in JPEG_SUFFIXES


# --------------------------------------------------------------------------- the packet


def _value(root: ET.Element, name: str) -> str | None:
    """The first ``name`` property, as an attribute of an rdf:Description or a simple element."""
    for description in root.iter(f"{{{xmp.RDF}}}Description"):
        if name in description.attrib:
            return description.attrib[name].strip()
        child = description.find(name)
        if child is not None and len(child) == 0:
            return (child.text or "").strip()
    return None


def _labels_in(root: ET.Element) -> Labels:
    try:
        rating = round(float(_value(root, RATING) or 0))
    except (ValueError, OverflowError):  # not a number, or "inf" / "1e400"
        rating = 0
    label = _value(root, LABEL) or None
    return Labels(max(-1, min(5, rating)), label)


def labels_of(packet: bytes | None, limit: int = xmp.MAX_PACKET) -> Labels:
    """The rating and label an XMP packet holds; none for no packet or one that cannot be read."""
    if not packet:
        return Labels()
    try:
        return _labels_in(xmp.parse(packet, limit))
    except xmp.XmpError:
        return Labels()


def _edited(packet: bytes | None, labels: Labels, limit: int) -> bytes | None:
    """``packet`` (None: a new one) holding ``labels`` and nothing else changed; None when the
    packet is left with no property at all (it was only ever ours to hold these two)."""
    if packet:
        try:
            root = xmp.parse(packet, limit)
            rdf = xmp.rdf_of(root)
        except xmp.XmpError as exc:
            raise CodecError(f"the file's XMP cannot be read, so it is left as it is: {exc}") from None
        xmp.keep_prefixes(packet)
    else:
        root = ET.Element(f"{{{xmp.X}}}xmpmeta")
        rdf = ET.SubElement(root, f"{{{xmp.RDF}}}RDF")
    xmp.remove_properties(root, lambda name: name in (RATING, LABEL))
    values = {}
    if labels.rating:
        values[RATING] = str(labels.rating)
    if labels.label:
        values[LABEL] = labels.label
    descriptions = [d for d in rdf if d.tag == f"{{{xmp.RDF}}}Description"]
    if values:
        # the first description not holding the HyperThumbnail marker (a photographer's own), else a new one
        theirs = [d for d in descriptions if not any(k.startswith(f"{{{xmp.NAMESPACE}}}") for k in d.attrib)]
        target = theirs[0] if theirs else ET.SubElement(rdf, f"{{{xmp.RDF}}}Description", {f"{{{xmp.RDF}}}about": ""})
        target.attrib.update(values)
    for description in descriptions:  # one left empty by a cleared rating goes
        if len(description) == 0 and set(description.attrib) <= {f"{{{xmp.RDF}}}about"}:
            rdf.remove(description)
    return xmp.serialize(root) if len(rdf) else None


# --------------------------------------------------------------------------- JPEG


def _xmp_segment(data: bytes) -> tuple[list[jpeg_segments.Segment], jpeg_segments.Segment | None]:
    if data[:2] != b"\xff\xd8":
        raise CodecError("not a JPEG file")
    try:
        segments = jpeg_segments.segments_of(data)
    except jpeg_segments.JpegLayoutError as exc:
        raise CodecError(str(exc)) from None
    for segment in segments:
        body = segment.start + 4
        if segment.marker == jpeg_segments.APP1 and data[body : body + len(XMP_IDENTIFIER)] == XMP_IDENTIFIER:
            return segments, segment
    return segments, None


def jpeg_packet(data: bytes) -> bytes | None:
    """The JPEG's XMP packet (its first standard XMP segment), or None."""
    _, segment = _xmp_segment(data)
    return None if segment is None else data[segment.start + 4 + len(XMP_IDENTIFIER) : segment.end]


def jpeg_with_labels(data: bytes, labels: Labels) -> bytes:
    """The JPEG ``data`` whose XMP holds ``labels``; every other byte outside that segment kept."""
    segments, segment = _xmp_segment(data)
    packet = None if segment is None else data[segment.start + 4 + len(XMP_IDENTIFIER) : segment.end]
    if labels_of(packet) == labels and (packet is not None or labels == Labels()):
        return data
    edited = _edited(packet, labels, xmp.MAX_PACKET)
    if edited is not None and len(edited) > xmp.MAX_PACKET:
        raise CodecError("the file's XMP is full: a rating does not fit in its one segment, so it is not saved")
    new = b""
    if edited is not None:
        body = XMP_IDENTIFIER + edited
        new = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    if segment is not None:
        return data[: segment.start] + new + data[segment.end :]
    at = 2  # XMP follows the EXIF (or JFIF) segment at the head of the file
    for leading in segments:
        if leading.marker not in (jpeg_segments.APP0, jpeg_segments.APP1):
            break
        at = leading.end
    return data[:at] + new + data[at:]


# --------------------------------------------------------------------------- files


def read_labels(path: str | os.PathLike[str]) -> Labels:
    """``path``'s rating and label (from the JPEG's XMP, else from its sidecar); none when
    there are none or they cannot be read. Reads the segment headers and one packet at most."""
    path = Path(path)
    try:
        if holds_xmp(path):
            with open(path, "rb") as f:
                for segment in jpeg_segments.segments(f):
                    if segment.marker == jpeg_segments.APP1:
                        f.seek(segment.start + 4)
                        body = f.read(segment.end - segment.start - 4)
                        if body.startswith(XMP_IDENTIFIER):
                            return labels_of(body[len(XMP_IDENTIFIER) :])
                        f.seek(segment.end)
            return Labels()
        sidecar = sidecar_path(path)
        if not sidecar.is_file() or sidecar.stat().st_size > MAX_SIDECAR:
            return Labels()
        return labels_of(sidecar.read_bytes(), MAX_SIDECAR)
    except (OSError, jpeg_segments.JpegLayoutError):
        return Labels()


def write_labels(path: str | os.PathLike[str], labels: Labels) -> Path:
    """Keep ``labels`` for ``path`` (see the module docstring): the file written is returned (the
    JPEG itself or the sidecar). Raises ``CodecError`` and then leaves every file as it was."""
    if not -1 <= labels.rating <= 5:
        raise CodecError(f"a rating is 0..5 stars, not {labels.rating}")
    source = Path(path).resolve()  # a symlink stays a symlink: its target is what changes
    if labels.label is not None and labels.label not in COLOURS and labels.label != read_labels(source).label:
        # another program's label ("Select", "Approved") may stay as it is; only ours are set
        raise CodecError(f"a colour label is one of {', '.join(COLOURS)}, not {labels.label!r}")
    target = source if holds_xmp(source) else sidecar_path(source)
    try:
        if target != source and target.exists() and target.stat().st_size > MAX_SIDECAR:
            raise CodecError(f"{shorten(target.name, 80)} is larger than an XMP sidecar can be: it is left as it is")
        data = target.read_bytes() if target.exists() or target == source else None
    except OSError as exc:
        raise CodecError(f"cannot read {shorten(target.name, 80)}: {exc.strerror or exc}") from None
    if target == source:
        changed = jpeg_with_labels(data, labels)
    else:
        if data is not None and len(data) > MAX_SIDECAR:
            raise CodecError(f"{shorten(target.name, 80)} is larger than an XMP sidecar can be: it is left as it is")
        if labels_of(data, MAX_SIDECAR) == labels and (data is not None or labels == Labels()):
            return target
        changed = _edited(data, labels, MAX_SIDECAR)
        if changed is None:  # nothing left in a sidecar: an empty packet is still a valid sidecar
            changed = _empty_packet()
    if changed == data:
        return target
    try:
        with atomic_output(target, force=True) as tmp:
            tmp.write_bytes(changed)
            if target.exists():
                shutil.copymode(target, tmp)
    except OSError as exc:
        raise CodecError(f"cannot write {shorten(target.name, 80)}: {exc.strerror or exc}") from None
    return target


def _empty_packet() -> bytes:
    root = ET.Element(f"{{{xmp.X}}}xmpmeta")
    ET.SubElement(ET.SubElement(root, f"{{{xmp.RDF}}}RDF"), f"{{{xmp.RDF}}}Description", {f"{{{xmp.RDF}}}about": ""})
    return xmp.serialize(root)
