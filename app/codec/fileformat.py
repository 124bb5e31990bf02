"""The HyperThumbnail file format: a plain baseline JPEG that also carries a full-res photo.

A HyperThumbnail is a 4:4:4 JPEG thumbnail (1/4 of the original's size per side) whose two
quantization tables (luma, chroma) are predicted per image, plus a marker that says how large
the original was and which model reconstructs it: in format v2 XMP properties of our own
namespace (``xmp``), with an optional binary payload in APP11 segments (``payload``), so the
source's EXIF is carried byte for byte (``exif_edit``); format v1 kept the marker as JSON in the
EXIF UserComment, and v1 files are still read.
Any viewer shows the thumbnail; the decoder rebuilds the photo from the thumbnail's DCT
coefficients, which it recovers exactly from the decoded YCbCr pixels and the file's tables.

Geometry: an original of W x H has a ceil(W/4) x ceil(H/4) thumbnail; the reconstruction
is 4x the thumbnail, cropped to W x H at the top-left.

Table order: every quantization table in this module is 64 ints in NATURAL row-major order
(index = 8*row + col). Pillow's ``qtables=`` takes that order and ``Image.quantization``
returns it; only the DQT segment inside the file stores tables in zig-zag order.

The full specification is docs/FORMAT.md.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import piexif
from PIL import Image

from app import __version__
from app.codec import exif_edit, xmp
from app.codec.atomic import atomic_write_bytes
from app.codec.errors import FormatError, ImageLoadError, NotHyperThumbnailError
from app.codec.imageio import (
    Source,
    decode_pixels,
    open_pil,
    orientation_of,
    source_name,
)
from app.codec.limits import check_pixel_budget
from app.codec.payload import PayloadError
from app.codec.payload import assemble as assemble_payload
from app.codec.payload import digest as payload_digest
from app.codec.payload import segments as payload_segments

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
        for name in ("weights_sha256", "payload_sha256"):
            sha = getattr(self, name)
            if sha is None and name == "payload_sha256":
                continue
            if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= set(string.hexdigits):
                raise ValueError(f"marker {name} must be 64 hex digits, got {_short(sha)}")
            object.__setattr__(self, name, sha.lower())  # hashes compare in one case
        if (self.payload_length is None) != (self.payload_sha256 is None) or (
            self.payload_length is not None and (not _is_int(self.payload_length) or self.payload_length < 0)
        ):
            raise ValueError("marker payload length and checksum must both be given, the length >= 0")
        if self.rate is not None and (
            isinstance(self.rate, bool)
            or not isinstance(self.rate, (int, float))
            or not math.isfinite(self.rate)
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
        try:
            rate_value = float(rate) if rate else None
        except ValueError:
            raise FormatError(f"damaged HyperThumbnail marker: rate {_short(rate)} is not a number") from None
        fields = {
            "width": _xmp_int(props["Width"], "width"), "height": _xmp_int(props["Height"], "height"),
            "scale": _xmp_int(props["Scale"], "scale"), "model_id": props["ModelId"],
            "weights_sha256": props["WeightsSha256"], "rate": rate_value,
        }  # fmt: skip
        if "PayloadLength" in props or "PayloadSha256" in props:
            fields["payload_length"] = _xmp_int(props.get("PayloadLength"), "payload length", minimum=0)
            fields["payload_sha256"] = props.get("PayloadSha256")
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
    if text is None or len(text) > 12 or not text.strip().isdigit():
        raise FormatError(f"damaged HyperThumbnail marker: {what} {_short(text)} is not a positive integer")
    value = int(text)
    if value < minimum:
        raise FormatError(f"damaged HyperThumbnail marker: {what} {value} is out of range")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"marker rate must be a number or null, got {value!r}")
    return float(value)


def thumbnail_size(width: int, height: int, scale: int = SCALE) -> tuple[int, int]:
    """The geometry rule: ceil(W/scale) x ceil(H/scale)."""
    return -(-width // scale), -(-height // scale)


# ----------------------------------------------------------------------------- EXIF


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
    return piexif.dump({"0th": {
        piexif.ImageIFD.Orientation: orientation, piexif.ImageIFD.XResolution: (72, 1),
        piexif.ImageIFD.YResolution: (72, 1), piexif.ImageIFD.ResolutionUnit: 2,
        piexif.ImageIFD.YCbCrPositioning: 1,
    }})  # fmt: skip


def carry_exif(
    source_exif: bytes | None, thumb_size: tuple[int, int], *, strip_gps: bool, orientation: int = 1
) -> tuple[bytes | None, list[str]]:
    """(EXIF for the HyperThumbnail, notes): the source's block byte for byte (MakerNotes keep
    their offsets), with GPS removed in place on request, the embedded preview dropped and
    PixelX/YDimension set to the thumbnail where they exist. A malformed block is dropped (the orientation kept); one too big
    for a JPEG segment is re-written without its MakerNote and thumbnail."""
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
    if strip_gps:
        block = exif_edit.strip_gps(block)
    block = exif_edit.drop_thumbnail(block)
    return exif_edit.set_pixel_dimensions(block, *thumb_size), notes


@dataclass
class HeaderMetadata:
    """Everything a HyperThumbnail's JPEG header carries besides the image itself."""

    exif: bytes | None
    xmp: bytes
    extra: bytes  # the payload's APP11 segments
    notes: list[str]


def build_metadata(
    marker: Marker,
    thumb_size: tuple[int, int],
    *,
    source_exif: bytes | None = None,
    source_xmp: bytes | None = None,
    strip_gps: bool = False,
    orientation: int = 1,
    payload: bytes | None = None,
) -> HeaderMetadata:
    """The header of a HyperThumbnail for ``marker``: carried EXIF, XMP marker, payload segments."""
    if payload is not None:
        marker = dataclasses.replace(marker, payload_length=len(payload), payload_sha256=payload_digest(payload))
    exif, notes = carry_exif(source_exif, thumb_size, strip_gps=strip_gps, orientation=orientation)
    packet, note = xmp.build_packet(marker.to_xmp(), source_xmp)
    if strip_gps and b"GPS" in packet:
        packet, note = xmp.build_packet(marker.to_xmp()), "the source's XMP was dropped: it may hold a GPS position"
    notes += [note] if note else []
    return HeaderMetadata(exif, packet, payload_segments(payload) if payload is not None else b"", notes)


def _marker_from_metadata(exif: bytes | None, packet: bytes | None) -> Marker | None:
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


# ----------------------------------------------------------------------------- writing


def _table(values: Any, what: str) -> list[int]:
    """Validate a quantization table: 64 integers in 1..255, natural row-major order."""
    arr = np.asarray(values)
    if arr.size != 64:
        raise ValueError(f"{what} table must have 64 entries, got {arr.size}")
    flat = arr.reshape(64)
    if not np.issubdtype(flat.dtype, np.number) or np.any(flat != np.round(flat)):
        raise ValueError(f"{what} table must hold integers")
    if flat.min() < 1 or flat.max() > 255:
        raise ValueError(f"{what} table values must be in 1..255, got {flat.min()}..{flat.max()}")
    return [int(v) for v in flat]


def encode_jpeg(
    thumbnail: np.ndarray,
    luma_table: Any,
    chroma_table: Any,
    *,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    xmp_packet: bytes | None = None,
    extra: bytes = b"",
    dpi: tuple[float, float] | None = None,
) -> bytes:
    """Encode uint8 HxWx3 RGB as a baseline 4:4:4 JPEG with the given tables (natural order);
    ``extra``: raw marker segments (the payload's APP11) for the header."""
    if not isinstance(thumbnail, np.ndarray) or thumbnail.dtype != np.uint8 or thumbnail.ndim != 3 \
            or thumbnail.shape[2] != 3 or thumbnail.shape[0] == 0 or thumbnail.shape[1] == 0:
        raise ValueError("thumbnail must be a non-empty uint8 HxWx3 RGB array")
    options: dict[str, Any] = {
        "qtables": [_table(luma_table, "luma"), _table(chroma_table, "chroma")],
        "subsampling": 0,
        "optimize": True,
    }
    if exif:
        options["exif"] = exif
    if icc_profile:
        options["icc_profile"] = icc_profile
    if xmp_packet:
        options["xmp"] = xmp_packet
    if extra:
        options["extra"] = extra
    if dpi:
        options["dpi"] = dpi
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(thumbnail), "RGB").save(out, "JPEG", **options)
    return out.getvalue()


def write_hyperthumbnail(
    path: str | os.PathLike[str],
    thumbnail: np.ndarray,
    luma_table: Any,
    chroma_table: Any,
    marker: Marker,
    *,
    source_exif: bytes | None = None,
    icc_profile: bytes | None = None,
    strip_gps: bool = False,
    force: bool = False,
    source_xmp: bytes | None = None,
    orientation: int = 1,
    dpi: tuple[float, float] | None = None,
    payload: bytes | None = None,
    notes: list[str] | None = None,
    optimize_entropy: bool = True,
) -> int:
    """Write a HyperThumbnail atomically; returns the number of bytes written. What could not be
    carried over from the source is appended to ``notes``. ``optimize_entropy``: losslessly
    re-code with mozjpeg (``optimize_entropy_coding``)."""
    size = (thumbnail.shape[1], thumbnail.shape[0])
    if size != marker.thumbnail_size:
        raise ValueError(
            f"thumbnail is {size[0]}x{size[1]} but a {marker.width}x{marker.height} original "
            f"needs {marker.thumbnail_size[0]}x{marker.thumbnail_size[1]}"
        )
    meta = build_metadata(marker, size, source_exif=source_exif, source_xmp=source_xmp, strip_gps=strip_gps,
                          orientation=orientation or orientation_of(source_exif), payload=payload)  # fmt: skip
    data = encode_jpeg(thumbnail, luma_table, chroma_table, exif=meta.exif, icc_profile=icc_profile,
                       xmp_packet=meta.xmp, extra=meta.extra, dpi=dpi)  # fmt: skip
    if notes is not None:
        notes.extend(meta.notes)
    if optimize_entropy:
        data = optimize_entropy_coding(data)
    atomic_write_bytes(Path(path), data, force=force)
    return len(data)


def optimize_entropy_coding(jpeg: bytes) -> bytes:
    """The same JPEG, losslessly re-coded by mozjpeg (progressive, optimised scans): the same
    coefficients and header segments in fewer bytes. Kept only when smaller and when it decodes
    to exactly the same pixels; without the package the input is returned unchanged."""
    try:
        import mozjpeg_lossless_optimization as mozjpeg
    except ImportError:
        return jpeg
    try:
        optimized = mozjpeg.optimize(jpeg, copy=mozjpeg.COPY_MARKERS.ALL)
    except Exception:  # noqa: BLE001 -- an optimiser failure only costs the saving
        return jpeg
    if len(optimized) >= len(jpeg):
        return jpeg
    with Image.open(io.BytesIO(jpeg)) as a, Image.open(io.BytesIO(optimized)) as b:
        same = a.info.get("xmp") == b.info.get("xmp") and a.info.get("exif") == b.info.get("exif") \
            and [x for x in a.applist if x[0] == "APP11"] == [x for x in b.applist if x[0] == "APP11"] \
            and np.array_equal(np.asarray(a), np.asarray(b))
    return optimized if same else jpeg


# ----------------------------------------------------------------------------- reading


@dataclass
class Thumbnail:
    """A decoded HyperThumbnail: what the decoder needs to rebuild the original."""

    ycbcr: np.ndarray  # uint8 HxWx3 straight from libjpeg's IDCT, no colour conversion
    rgb: np.ndarray  # uint8 HxWx3, the ordinary decode any viewer shows
    luma_table: np.ndarray  # int32 (64,), natural row-major order
    chroma_table: np.ndarray  # int32 (64,), natural row-major order
    marker: Marker  # always present: read_thumbnail refuses files without one
    exif: bytes | None
    icc_profile: bytes | None
    orientation: int
    xmp: bytes | None = None
    payload: bytes | None = None  # v2: the checked APP11 payload, when the marker declares one
    payload_problem: str | None = None  # why a declared payload could not be used


def read_marker(source: Source) -> Marker | None:
    """The marker of any image, reading only its header; None if it has none."""
    with open_pil(source) as im:
        return _image_marker(im, source_name(source))


def _image_marker(im: Image.Image, name: str) -> Marker | None:
    try:
        marker = _marker_from_metadata(im.info.get("exif"), im.info.get("xmp"))
        if marker is not None:
            check_pixel_budget(marker.width, marker.height, "the photo this HyperThumbnail reconstructs")
        return marker
    except ImageLoadError as exc:  # over the pixel budget: a plain image to show, never a photo to decode
        raise FormatError(f"{name}: {exc}") from exc
    except FormatError as exc:
        raise FormatError(f"{name}: {exc}") from exc


def _check_container(im: Image.Image, marker: Marker, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check the JPEG is what the format requires; return its (luma, chroma) tables."""
    if im.format != "JPEG":
        raise FormatError(f"{name}: has a HyperThumbnail marker but is a {im.format}, not a JPEG")
    layers = getattr(im, "layer", [])
    if (im.info.get("progressive") and marker.version < 2) or len(layers) != 3:
        raise FormatError(f"{name}: not a baseline 3-component JPEG" if len(layers) == 3 else f"{name}: not a 3-component JPEG")
    if any((h, v) != (1, 1) for _, h, v, _ in layers) or [t for *_, t in layers] != [0, 1, 1]:
        raise FormatError(f"{name}: not 4:4:4 with luma table 0 and chroma table 1")
    tables = getattr(im, "quantization", {})
    if sorted(tables) != [0, 1]:
        raise FormatError(f"{name}: expected exactly 2 quantization tables, found {len(tables)}")
    luma, chroma = (np.asarray(tables[i], dtype=np.int32) for i in (0, 1))
    if min(luma.min(), chroma.min()) < 1 or max(luma.max(), chroma.max()) > 255:
        raise FormatError(f"{name}: quantization tables are not 8-bit")
    if im.size != marker.thumbnail_size:
        raise FormatError(
            f"{name}: thumbnail is {im.width}x{im.height} but the marker's "
            f"{marker.width}x{marker.height} original needs "
            f"{marker.thumbnail_size[0]}x{marker.thumbnail_size[1]}"
        )
    return luma, chroma


def decoded_ycbcr(jpeg: bytes) -> np.ndarray:
    """A JPEG's YCbCr samples as libjpeg decodes them (no colour conversion): the decoder's input."""
    with Image.open(io.BytesIO(jpeg)) as im:
        im.draft("YCbCr", im.size)
        return np.array(im, dtype=np.uint8)


def read_thumbnail(source: Source) -> Thumbnail:
    """Decode a HyperThumbnail, both as raw YCbCr (for the decoder) and as RGB (to show).

    The YCbCr pixels come from asking Pillow for libjpeg's output before colour conversion
    (``draft('YCbCr')``), so block-DCT(ycbcr - 128) / table recovers the quantized
    coefficients exactly up to IDCT rounding.
    """
    name = source_name(source)
    with open_pil(source) as im:
        marker = _image_marker(im, name)
        if marker is None:
            raise NotHyperThumbnailError(f"not a HyperThumbnail: {name} is a plain {im.format}")
        luma, chroma = _check_container(im, marker, name)
        exif = im.info.get("exif") or None
        icc = im.info.get("icc_profile") or None
        packet = im.info.get("xmp") or None
        payload, problem = _payload(im, marker)
        im.draft("YCbCr", im.size)
        decode_pixels(im, name)
        if im.mode != "YCbCr":
            raise FormatError(f"{name}: JPEG colour space is not YCbCr")
        ycbcr = np.array(im, dtype=np.uint8)  # writable copies, not views of Pillow's buffer
    with open_pil(source) as im:
        decode_pixels(im, name)
        rgb = np.array(im.convert("RGB"), dtype=np.uint8)
    return Thumbnail(
        ycbcr=ycbcr,
        rgb=rgb,
        luma_table=luma,
        chroma_table=chroma,
        marker=marker,
        exif=exif,
        icc_profile=icc,
        orientation=orientation_of(exif),
        xmp=packet,
        payload=payload,
        payload_problem=problem,
    )


def _payload(im: Image.Image, marker: Marker) -> tuple[bytes | None, str | None]:
    """(payload, None) when the marker declares one and it is intact; (None, why) when it is not."""
    if marker.payload_length is None:
        return None, None
    try:
        return assemble_payload(getattr(im, "applist", []), marker.payload_length, marker.payload_sha256), None
    except PayloadError as exc:
        return None, str(exc)
