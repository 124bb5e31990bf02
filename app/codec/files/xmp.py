"""The format-v2 marker as XMP properties in a namespace of ours (as Ultra HDR and Motion Photo do).

XMP lives in its own APP1 segment, so the marker never touches the source's EXIF. A source's
own XMP (ratings, keywords, edits) is kept: our ``rdf:Description`` is added to its packet, and
one of ours left by an earlier encode is replaced. Reading is bounded: a packet is at most one
APP1 segment (64 kB), and it is parsed by defusedxml, which refuses a DTD, entities and external
references in whatever encoding the packet is (UTF-8, UTF-16 or UTF-32 with or without a BOM, or
a declared one): a check on the raw bytes would let ``<!\0E\0N\0T...`` through and expand it.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _defused_fromstring

NAMESPACE = "https://hyperthumbnail.org/ns/1.0/"
PREFIX = "hyperthumb"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X = "adobe:ns:meta/"
TIFF, EXIF = "http://ns.adobe.com/tiff/1.0/", "http://ns.adobe.com/exif/1.0/"
MAX_PACKET = 65504  # what one APP1 segment holds after the XMP identifier
_PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
_PACKET_END = '<?xpacket end="w"?>'

ET.register_namespace("x", X)
ET.register_namespace("rdf", RDF)
ET.register_namespace(PREFIX, NAMESPACE)
for _prefix, _uri in {
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "crs": "http://ns.adobe.com/camera-raw-settings/1.0/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmpDM": "http://ns.adobe.com/xmp/1.0/DynamicMedia/",
    "exifEX": "http://cipa.jp/exif/1.0/",
}.items():
    ET.register_namespace(_prefix, _uri)

# What ``build_packet(strip_location=True)`` removes (``--strip-gps``), as attributes or elements,
# at any depth: these properties, and every property whose name starts with "GPS" (any case, any
# namespace: exif:GPSLatitude, exifEX:GPSHPositioningError, a drone maker's GpsLongitude...).
LOCATION_PROPERTIES = {
    "http://ns.adobe.com/photoshop/1.0/": {"City", "State", "Country"},
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": {"Location", "CountryCode"},
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": {
        "LocationCreated", "LocationShown", "Sublocation", "City", "ProvinceState", "CountryName",
        "CountryCode", "WorldRegion", "LocationId", "LocationName",
    },
    "http://ns.adobe.com/xmp/1.0/DynamicMedia/": {"shotLocation"},
}  # fmt: skip


class XmpError(ValueError):
    """An XMP packet that cannot be read safely."""


def _parse(packet: bytes, limit: int = MAX_PACKET) -> ET.Element:
    """``packet`` parsed (at most ``limit`` bytes: one JPEG segment unless a sidecar file's)."""
    if len(packet) > limit:
        raise XmpError("XMP packet larger than one JPEG segment" if limit == MAX_PACKET else "XMP file too large")
    try:
        root = _defused_fromstring(packet, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise XmpError("XMP packet declares a DTD or entities") from None
    except (ET.ParseError, ValueError, LookupError, RecursionError) as exc:
        raise XmpError(f"XMP packet is not well-formed XML ({exc})") from None
    return root


def _rdf(root: ET.Element) -> ET.Element:
    if root.tag == f"{{{RDF}}}RDF":
        return root
    rdf = root.find(f"{{{RDF}}}RDF")
    if rdf is None:
        raise XmpError("XMP packet has no rdf:RDF")
    return rdf


def read_properties(packet: bytes | None) -> dict[str, str] | None:
    """Our properties (local name -> text) in an XMP packet; None when it has none of ours.

    Properties may be written as attributes of an rdf:Description or as its child elements.
    """
    if not packet or NAMESPACE.encode() not in packet:
        return None
    rdf = _rdf(_parse(packet))
    found: dict[str, str] = {}
    for description in rdf.iter(f"{{{RDF}}}Description"):
        for key, value in description.attrib.items():
            if key.startswith(f"{{{NAMESPACE}}}"):
                found[key.split("}", 1)[1]] = value
        for child in description:
            if child.tag.startswith(f"{{{NAMESPACE}}}") and len(child) == 0:
                found[child.tag.split("}", 1)[1]] = (child.text or "").strip()
    return found or None


def _is_ours(name: str) -> bool:
    return name.startswith(f"{{{NAMESPACE}}}")


def _is_location(name: str) -> bool:
    namespace, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
    return local.lower().startswith("gps") or local in LOCATION_PROPERTIES.get(namespace, ())


def _remove_properties(root: ET.Element, unwanted) -> None:
    """Remove every attribute and element whose name ``unwanted`` accepts, at any depth."""
    for element in list(root.iter()):
        for key in [k for k in element.attrib if unwanted(k)]:
            del element.attrib[key]
        for child in [c for c in element if unwanted(c.tag)]:
            element.remove(child)


def _set_properties(root: ET.Element, values: dict[str, str]) -> None:
    """Give the properties named in ``values`` that exist (attributes, or simple elements) those
    values; none is added."""
    for element in root.iter():
        for key in [k for k in element.attrib if k in values]:
            element.attrib[key] = values[key]
        if element.tag in values and len(element) == 0:
            element.text = values[element.tag]


def _size_properties(size: tuple[int, int]) -> dict[str, str]:
    """The XMP twins of the EXIF size tags, for an image of ``size`` (width, height)."""
    width, height = str(size[0]), str(size[1])
    return {
        f"{{{TIFF}}}ImageWidth": width,
        f"{{{TIFF}}}ImageLength": height,
        f"{{{EXIF}}}PixelXDimension": width,
        f"{{{EXIF}}}PixelYDimension": height,
    }


def _serialize(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="unicode")
    return f"{_PACKET_BEGIN}\n{body}\n{_PACKET_END}".encode()


def build_packet(
    properties: dict[str, str],
    source_packet: bytes | None = None,
    *,
    strip_location: bool = False,
    image_size: tuple[int, int] | None = None,
) -> tuple[bytes, str | None]:
    """(packet, note): our properties in the source's XMP packet (or a new one), without the
    source's location properties when ``strip_location``, and its tiff:ImageWidth/Length and
    exif:PixelX/YDimension, where it has them, set to ``image_size``. The note says why a source
    packet could not be kept, else None."""
    note = None
    root = None
    if source_packet:
        try:
            root = _parse(source_packet)
            _rdf(root)
            _remove_properties(root, _is_ours)
            if strip_location:
                _remove_properties(root, _is_location)
            if image_size:
                _set_properties(root, _size_properties(image_size))
        except XmpError as exc:
            root, note = None, f"the source's XMP was dropped: {exc}"
    if root is None:
        root = ET.Element(f"{{{X}}}xmpmeta")
        ET.SubElement(root, f"{{{RDF}}}RDF")
    rdf = _rdf(root)
    attributes = {f"{{{RDF}}}about": ""} | {f"{{{NAMESPACE}}}{k}": v for k, v in properties.items()}
    ET.SubElement(rdf, f"{{{RDF}}}Description", attributes)
    packet = _serialize(root)
    if len(packet) > MAX_PACKET and source_packet:
        packet, _ = build_packet(properties)
        note = "the source's XMP was dropped: with the HyperThumbnail marker it no longer fits one JPEG segment"
    return packet, note


def decoded_packet(packet: bytes | None, size: tuple[int, int]) -> bytes | None:
    """A HyperThumbnail's packet for the photo decoded from it: without our properties (a decoded
    photo is not a HyperThumbnail; the descriptions they leave empty removed), its size
    properties set to ``size`` and tiff:Orientation to 1 where they exist (the decoder turns the
    pixels upright). None when nothing else is left or it cannot be read."""
    if not packet:
        return None
    try:
        root = _parse(packet)
        rdf = _rdf(root)
    except XmpError:
        return None
    _remove_properties(root, _is_ours)
    _set_properties(root, _size_properties(size) | {f"{{{TIFF}}}Orientation": "1"})
    for description in [d for d in rdf if d.tag == f"{{{RDF}}}Description"]:
        if len(description) == 0 and set(description.attrib) <= {f"{{{RDF}}}about"}:
            rdf.remove(description)
    return _serialize(root) if len(rdf) else None


# The same bounded, defused parser and serializer for the other editors of a packet (``ratings``).
parse, rdf_of, serialize, remove_properties = _parse, _rdf, _serialize, _remove_properties


_PREFIXES_LOCK = threading.Lock()
MAX_KEPT_PREFIXES = 256  # namespace prefixes ElementTree may know in all (about 30 are registered here)


def keep_prefixes(packet: bytes) -> None:
    """Register the namespace prefixes ``packet`` declares (already parsed safely by ``parse``),
    so that its edited copy writes them as the file did (``lr:``, ``darktable:``...), not ``ns0:``.
    A prefix or namespace already known keeps its registration."""
    parser = ET.XMLPullParser(events=("start-ns",))
    try:
        parser.feed(packet)
        parser.close()
        events = list(parser.read_events())
    except ET.ParseError:
        return
    with _PREFIXES_LOCK:  # ElementTree's prefix map is process-wide; the viewer edits on several threads
        known = ET._namespace_map  # uri -> prefix
        for _, (prefix, uri) in events[:MAX_KEPT_PREFIXES]:
            if len(known) >= MAX_KEPT_PREFIXES:
                break  # bounded: a hostile sidecar's thousands of declarations are not all kept forever
            if prefix and uri not in known and prefix not in known.values() and not re.match(r"ns\d+$", prefix):
                try:
                    ET.register_namespace(prefix, uri)
                except ValueError:
                    pass
