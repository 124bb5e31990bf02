"""The format-v2 marker as XMP properties in a namespace of ours (as Ultra HDR and Motion Photo do).

XMP lives in its own APP1 segment, so the marker never touches the source's EXIF. A source's
own XMP (ratings, keywords, edits) is kept: our ``rdf:Description`` is added to its packet, and
one of ours left by an earlier encode is replaced. Reading is bounded: a packet is at most one
APP1 segment (64 kB), and DTDs and entities are refused before parsing, so no entity expansion.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

NAMESPACE = "https://hyperthumbnail.org/ns/1.0/"
PREFIX = "hyperthumb"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X = "adobe:ns:meta/"
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
}.items():
    ET.register_namespace(_prefix, _uri)


class XmpError(ValueError):
    """An XMP packet that cannot be read safely."""


def _parse(packet: bytes) -> ET.Element:
    if len(packet) > MAX_PACKET:
        raise XmpError("XMP packet larger than one JPEG segment")
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise XmpError("XMP packet declares a DTD or entities")
    try:
        root = ET.fromstring(packet)
    except (ET.ParseError, ValueError, RecursionError) as exc:
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


def build_packet(properties: dict[str, str], source_packet: bytes | None = None) -> tuple[bytes, str | None]:
    """(packet, note): our properties in the source's XMP packet (or a new one). The note says
    why a source packet could not be kept, else None."""
    note = None
    root = None
    if source_packet:
        try:
            root = _parse(source_packet)
            rdf = _rdf(root)
            for description in list(rdf.iter(f"{{{RDF}}}Description")):
                for key in [k for k in description.attrib if k.startswith(f"{{{NAMESPACE}}}")]:
                    del description.attrib[key]
                for child in [c for c in description if c.tag.startswith(f"{{{NAMESPACE}}}")]:
                    description.remove(child)
        except XmpError as exc:
            root, note = None, f"the source's XMP was dropped: {exc}"
    if root is None:
        root = ET.Element(f"{{{X}}}xmpmeta")
        ET.SubElement(root, f"{{{RDF}}}RDF")
    rdf = _rdf(root)
    attributes = {f"{{{RDF}}}about": ""} | {f"{{{NAMESPACE}}}{k}": v for k, v in properties.items()}
    ET.SubElement(rdf, f"{{{RDF}}}Description", attributes)
    body = ET.tostring(root, encoding="unicode")
    packet = f"{_PACKET_BEGIN}\n{body}\n{_PACKET_END}".encode()
    if len(packet) > MAX_PACKET and source_packet:
        packet, _ = build_packet(properties)
        note = "the source's XMP was dropped: with the HyperThumbnail marker it no longer fits one JPEG segment"
    return packet, note
