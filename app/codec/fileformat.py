"""The HyperThumbnail file format: a plain baseline JPEG that also carries a full-res photo.

A HyperThumbnail is a baseline, 4:4:4 JPEG thumbnail (1/4 of the original's size per side)
whose two quantization tables (luma, chroma) are predicted per image, plus a marker in the
EXIF UserComment that says how large the original was and which model reconstructs it.
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
from app.codec.atomic import atomic_write_bytes
from app.codec.errors import FormatError, NotHyperThumbnailError
from app.codec.imageio import (
    Source,
    decode_pixels,
    open_pil,
    orientation_of,
    source_name,
)

FORMAT_NAME = "HyperThumbnail"
FORMAT_VERSION = 1
SCALE = 4
SOFTWARE = f"HyperThumbnail Viewer {__version__}"

# EXIF UserComment = 8-byte character-code header, then our tag, then compact JSON.
_COMMENT_PREFIX = b"ASCII\x00\x00\x00" + FORMAT_NAME.encode("ascii") + b" "
_MAX_EXIF_BYTES = 65533  # what one JPEG APP1 segment can hold (Pillow refuses more)


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

    def __post_init__(self) -> None:
        for name in ("width", "height", "scale", "version"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"marker {name} must be a positive integer, got {value!r}")
        if not isinstance(self.model_id, str) or not self.model_id:
            raise ValueError(f"marker model_id must be a non-empty string, got {self.model_id!r}")
        sha = self.weights_sha256
        if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= set(string.hexdigits):
            raise ValueError(f"marker weights_sha256 must be 64 hex digits, got {sha!r}")
        if self.rate is not None and (
            isinstance(self.rate, bool)
            or not isinstance(self.rate, (int, float))
            or not math.isfinite(self.rate)
        ):
            raise ValueError(f"marker rate must be a finite number or None, got {self.rate!r}")

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

        Unknown extra fields are ignored, so a same-version writer may add fields.
        """
        try:
            fields = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
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
            )
        except ValueError as exc:
            raise FormatError(f"damaged HyperThumbnail marker: {exc}") from exc

    @property
    def thumbnail_size(self) -> tuple[int, int]:
        """(width, height) the thumbnail must have for this original."""
        return thumbnail_size(self.width, self.height, self.scale)


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


def _merged(base: dict[str, dict[int, Any]], ours: dict[str, dict[int, Any]]) -> dict[str, dict[int, Any]]:
    return {name: {**base.get(name, {}), **ours.get(name, {})} for name in ("0th", "Exif", "GPS", "Interop")}


def build_exif(
    source_exif: bytes | None,
    marker: Marker,
    thumb_size: tuple[int, int],
    *,
    strip_gps: bool,
) -> bytes:
    """EXIF for a HyperThumbnail: the source's metadata, our marker, the thumbnail's size.

    Camera make/model, dates, Orientation etc. carry over; the source's embedded EXIF
    thumbnail does not (it would be stale and large). ``strip_gps`` removes the GPS IFD.
    Tags piexif cannot re-write are dropped, MakerNote first, rather than failing.
    """
    source = _source_ifds(source_exif)
    if strip_gps:
        source["GPS"] = {}
    ours: dict[str, dict[int, Any]] = {
        "0th": {piexif.ImageIFD.Software: SOFTWARE},
        "Exif": {
            piexif.ExifIFD.UserComment: _COMMENT_PREFIX + marker.to_json().encode("ascii"),
            piexif.ExifIFD.PixelXDimension: int(thumb_size[0]),
            piexif.ExifIFD.PixelYDimension: int(thumb_size[1]),
        },
    }
    orientation = orientation_of(source_exif)
    last_resort = {"0th": {piexif.ImageIFD.Orientation: orientation}} if orientation != 1 else {}
    for base in (source, _known_tags_only(source), _dumpable_tags(source)):
        data = _try_dump(_merged(base, ours))
        if data is not None:
            return data
    return piexif.dump(_merged(last_resort, ours))


def _marker_from_exif(exif: bytes | None) -> Marker | None:
    """The marker in a raw EXIF block; None if there is none, FormatError if damaged."""
    if not exif or _COMMENT_PREFIX not in exif:
        return None
    ifds = _source_ifds(exif)
    comment = ifds["Exif"].get(piexif.ExifIFD.UserComment)
    if isinstance(comment, bytes) and comment.startswith(_COMMENT_PREFIX):
        return Marker.from_json(comment[len(_COMMENT_PREFIX):])
    if not any(ifds.values()):
        raise FormatError("damaged HyperThumbnail marker: EXIF block is unreadable")
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
) -> bytes:
    """Encode uint8 HxWx3 RGB as a baseline 4:4:4 JPEG with the given tables (natural order)."""
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
) -> int:
    """Write a HyperThumbnail atomically; returns the number of bytes written."""
    size = (thumbnail.shape[1], thumbnail.shape[0])
    if size != marker.thumbnail_size:
        raise ValueError(
            f"thumbnail is {size[0]}x{size[1]} but a {marker.width}x{marker.height} original "
            f"needs {marker.thumbnail_size[0]}x{marker.thumbnail_size[1]}"
        )
    exif = build_exif(source_exif, marker, size, strip_gps=strip_gps)
    data = encode_jpeg(thumbnail, luma_table, chroma_table, exif=exif, icc_profile=icc_profile)
    atomic_write_bytes(Path(path), data, force=force)
    return len(data)


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


def read_marker(source: Source) -> Marker | None:
    """The marker of any image, reading only its header; None if it has none."""
    with open_pil(source) as im:
        return _image_marker(im, source_name(source))


def _image_marker(im: Image.Image, name: str) -> Marker | None:
    try:
        return _marker_from_exif(im.info.get("exif"))
    except FormatError as exc:
        raise FormatError(f"{name}: {exc}") from exc


def _check_container(im: Image.Image, marker: Marker, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check the JPEG is what the format requires; return its (luma, chroma) tables."""
    if im.format != "JPEG":
        raise FormatError(f"{name}: has a HyperThumbnail marker but is a {im.format}, not a JPEG")
    layers = getattr(im, "layer", [])
    if im.info.get("progressive") or len(layers) != 3:
        raise FormatError(f"{name}: not a baseline 3-component JPEG")
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
    )
