"""The HyperThumbnail marker: what a file says about the photo it carries, and how that reads.

A HyperThumbnail is a 4:4:4 JPEG thumbnail (1/4 of the original's size per side) whose two
quantization tables (luma, chroma) are predicted per image, plus this marker: the original's
size and the model that reconstructs it. Format v2 keeps it as XMP properties of our own
namespace (``xmp``), with an optional binary payload in APP11 segments (``payload``); format
v1 kept it as JSON in the EXIF UserComment, and v1 files are still read.

Geometry: an original of W x H has a ceil(W/4) x ceil(H/4) thumbnail; the reconstruction
is 4x the thumbnail, cropped to W x H at the top-left. The full specification is docs/FORMAT.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
from dataclasses import dataclass
from typing import Any

from app import __version__
from app.codec.errors import FormatError
from app.codec.files import exif_edit, xmp

FORMAT_NAME = "HyperThumbnail"
FORMAT_VERSION = 2
SCALE = 4
SUPPORTED_SCALES = (SCALE,)  # the only scale a decoder exists for; a file claiming another is plain
SOFTWARE = f"HyperThumbnail Viewer {__version__}"

# EXIF UserComment = 8-byte character-code header, then our tag, then compact JSON.
_COMMENT_PREFIX = b"ASCII\x00\x00\x00" + FORMAT_NAME.encode("ascii") + b" "
_MAX_EXIF_BYTES = 65533  # what one JPEG APP1 segment can hold (Pillow refuses more)
_MAX_MARKER_JSON = 4096  # a v1 marker is ~250 bytes; anything far larger is hostile
_MAX_JSON_NESTING = 4
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")  # no "nan", "1_0", "١"


@dataclass(frozen=True)
class Marker:
    """What the EXIF marker records: the original's size and the model that decodes it.

    ``width``/``height`` are the ORIGINAL full-resolution size in stored orientation.
    """

    width: int
    height: int
    scale: int
    model_id: str
    weights_sha256: str
    rate: float | None = None
    version: int = FORMAT_VERSION
    payload_length: int | None = None  # v2: the APP11 payload's size and SHA-256, when there is one
    payload_sha256: str | None = None
    tables_sha256: str | None = None  # v2: SHA-256 of the encoder's quantization tables (``tables_digest``)

    def __post_init__(self) -> None:
        for name in ("width", "height", "scale", "version"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"marker {name} must be a positive integer, got {_short(value)}")
        if not isinstance(self.model_id, str) or not self.model_id:
            raise ValueError(f"marker model_id must be a non-empty string, got {_short(self.model_id)}")
        if len(self.model_id) > 200:
            raise ValueError("marker model_id is longer than 200 characters")
        if self.scale not in SUPPORTED_SCALES:
            raise ValueError(f"marker scale {_short(self.scale)} is not supported (only {SCALE})")
        for name in ("weights_sha256", "payload_sha256", "tables_sha256"):
            sha = getattr(self, name)
            if sha is None and name != "weights_sha256":
                continue
            if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= set(string.hexdigits):
                raise ValueError(f"marker {name} must be 64 hex digits, got {_short(sha)}")
            object.__setattr__(self, name, sha.lower())  # hashes compare in one case
        if (self.payload_length is None) != (self.payload_sha256 is None) or (
            self.payload_length is not None and (not _is_int(self.payload_length) or self.payload_length < 0)
        ):
            raise ValueError("marker payload length and checksum must both be given, the length >= 0")
        if self.rate is not None and (
            isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not math.isfinite(self.rate)
        ):
            raise ValueError(f"marker rate must be a finite number or None, got {_short(self.rate)}")

    def to_json(self) -> str:
        """Compact JSON, fields in a fixed order."""
        fields = {
            "format": FORMAT_NAME,
            "version": self.version,
            "scale": self.scale,
            "width": self.width,
            "height": self.height,
            "model_id": self.model_id,
            "weights_sha256": self.weights_sha256,
            "rate": None if self.rate is None else float(self.rate),
        }
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Marker:
        """Parse and validate; FormatError on damage or a version newer than we know.

        Unknown extra fields are ignored, so a same-version writer may add fields. Size and
        nesting are bounded before parsing (a marker is one flat object).
        """
        if len(text) > _MAX_MARKER_JSON:
            raise FormatError(f"damaged HyperThumbnail marker: {len(text)} bytes of JSON (at most {_MAX_MARKER_JSON})")
        raw = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
        if _nesting(raw) > _MAX_JSON_NESTING:
            raise FormatError("damaged HyperThumbnail marker: JSON nested too deeply")
        try:
            fields = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise FormatError("damaged HyperThumbnail marker: not valid JSON") from exc
        if not isinstance(fields, dict) or fields.get("format") != FORMAT_NAME:
            raise FormatError("damaged HyperThumbnail marker: missing format name")
        version = fields.get("version")
        if not _is_int(version) or version < 1:
            raise FormatError(f"damaged HyperThumbnail marker: bad version {version!r}")
        if version > FORMAT_VERSION:
            raise FormatError(
                f"HyperThumbnail format version {version} is newer than this app reads "
                f"(version {FORMAT_VERSION}); update HyperThumbnail Viewer to decode it"
            )
        required = ("width", "height", "scale", "model_id", "weights_sha256")
        missing = [name for name in required if name not in fields]
        if missing:
            raise FormatError(f"damaged HyperThumbnail marker: missing {', '.join(missing)}")
        return cls._checked(fields, version)

    @classmethod
    def _checked(cls, fields: dict, version: int) -> Marker:
        rate = fields.get("rate")
        try:
            return cls(
                width=fields["width"],
                height=fields["height"],
                scale=fields["scale"],
                model_id=fields["model_id"],
                weights_sha256=fields["weights_sha256"],
                rate=None if rate is None else _as_float(rate),
                version=version,
                payload_length=fields.get("payload_length"),
                payload_sha256=fields.get("payload_sha256"),
                tables_sha256=fields.get("tables_sha256"),
            )
        except ValueError as exc:
            raise FormatError(f"damaged HyperThumbnail marker: {exc}") from exc

    def to_xmp(self) -> dict[str, str]:
        """The v2 marker as XMP properties (``hyperthumb:Version`` ...), text values."""
        props = {
            "Version": str(self.version), "Scale": str(self.scale), "Width": str(self.width),
            "Height": str(self.height), "ModelId": self.model_id, "WeightsSha256": self.weights_sha256,
            "Rate": "" if self.rate is None else repr(float(self.rate)), "CreatorTool": SOFTWARE,
        }  # fmt: skip
        if self.payload_length is not None:
            props |= {"PayloadLength": str(self.payload_length), "PayloadSha256": self.payload_sha256}
        if self.tables_sha256 is not None:
            props["QuantTablesSha256"] = self.tables_sha256
        return props

    @classmethod
    def from_xmp(cls, props: dict[str, str]) -> Marker:
        """Parse and validate the XMP properties; FormatError on damage or a newer version."""
        version = _xmp_int(props.get("Version"), "version")
        if version > FORMAT_VERSION:
            raise FormatError(
                f"HyperThumbnail format version {version} is newer than this app reads "
                f"(version {FORMAT_VERSION}); update HyperThumbnail Viewer to decode it"
            )
        missing = [k for k in ("Scale", "Width", "Height", "ModelId", "WeightsSha256") if k not in props]
        if missing:
            raise FormatError(f"damaged HyperThumbnail marker: missing {', '.join(missing)}")
        rate = props.get("Rate", "")
        if rate and not _ASCII_NUMBER.fullmatch(rate.strip(" \t\r\n")):
            raise FormatError(f"damaged HyperThumbnail marker: rate {_short(rate)} is not a number")
        rate_value = float(rate) if rate else None
        fields = {
            "width": _xmp_int(props["Width"], "width"), "height": _xmp_int(props["Height"], "height"),
            "scale": _xmp_int(props["Scale"], "scale"), "model_id": props["ModelId"],
            "weights_sha256": props["WeightsSha256"], "rate": rate_value,
        }  # fmt: skip
        if "PayloadLength" in props or "PayloadSha256" in props:
            fields["payload_length"] = _xmp_int(props.get("PayloadLength"), "payload length", minimum=0)
            fields["payload_sha256"] = props.get("PayloadSha256")
        if "QuantTablesSha256" in props:
            fields["tables_sha256"] = props["QuantTablesSha256"]
        return cls._checked(fields, version)

    @property
    def thumbnail_size(self) -> tuple[int, int]:
        """(width, height) the thumbnail must have for this original."""
        return thumbnail_size(self.width, self.height, self.scale)


def _short(value: Any, limit: int = 40) -> str:
    """A value for an error message, never echoed whole when huge (a 4000-digit width)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 12]}... ({len(text)} chars)"


def _nesting(raw: bytes) -> int:
    """Deepest bracket nesting in JSON text (strings are not parsed: an upper bound suffices)."""
    depth = deepest = 0
    for byte in raw:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _xmp_int(text: str | None, what: str, minimum: int = 1) -> int:
    """A whole number written in ASCII digits (``str.isdigit`` also takes superscripts and other
    scripts' digits, which ``int`` refuses or reads as other values)."""
    digits = text.strip(" \t\r\n") if isinstance(text, str) else ""
    if not digits or len(digits) > 12 or not (digits.isascii() and digits.isdigit()):
        raise FormatError(f"damaged HyperThumbnail marker: {what} {_short(text)} is not a positive integer")
    value = int(digits)
    if value < minimum:
        raise FormatError(f"damaged HyperThumbnail marker: {what} {value} is out of range")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"marker rate must be a number or null, got {value!r}")
    return float(value)


def tables_digest(luma: Any, chroma: Any) -> str:
    """SHA-256 of the two quantization tables as 128 bytes (luma then chroma, natural row-major
    order, one byte per value): the fingerprint ``hyperthumb:QuantTablesSha256`` records, so a
    reader knows when another program re-encoded the thumbnail (FORMAT.md)."""
    values = [int(v) for v in list(luma) + list(chroma)]
    if len(values) != 128 or min(values) < 1 or max(values) > 255:
        raise ValueError("tables must be two lists of 64 values in 1..255")
    return hashlib.sha256(bytes(values)).hexdigest()


def thumbnail_size(width: int, height: int, scale: int = SCALE) -> tuple[int, int]:
    """The geometry rule: ceil(W/scale) x ceil(H/scale)."""
    return -(-width // scale), -(-height // scale)


def marker_from_metadata(exif: bytes | None, packet: bytes | None) -> Marker | None:
    """The marker: v2 in XMP, else v1 in the EXIF UserComment; None if there is none, FormatError
    (saying why) if one is there but damaged or newer than this reader."""
    try:
        props = xmp.read_properties(packet)
    except xmp.XmpError as exc:
        if packet and xmp.NAMESPACE.encode() in packet:
            raise FormatError(f"damaged HyperThumbnail marker: {exc}") from None
        props = None
    if props is not None:
        return Marker.from_xmp(props)
    if not exif or _COMMENT_PREFIX not in exif:
        return None
    comment = exif_edit.user_comment(exif)
    if comment is None:
        raise FormatError("damaged HyperThumbnail marker: EXIF block is unreadable")
    if comment.startswith(_COMMENT_PREFIX):
        return Marker.from_json(comment[len(_COMMENT_PREFIX) :])
    return None  # our prefix appears, but in some other tag
