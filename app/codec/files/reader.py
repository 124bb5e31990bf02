"""Reading a HyperThumbnail: the marker from the header, the container's rules, the pixels.

The decoder's input is the YCbCr samples libjpeg decodes before colour conversion
(``draft('YCbCr')``), so block-DCT(ycbcr - 128) / table recovers the file's quantized
coefficients exactly up to IDCT rounding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.codec.errors import FormatError, ImageLoadError, NotHyperThumbnailError, ReencodedError
from app.codec.files import iptc, jpeg_segments
from app.codec.files.imageio import (
    Source,
    decode_pixels,
    layout_of,
    open_pil,
    orientation_of,
    source_name,
)
from app.codec.files.limits import check_pixel_budget
from app.codec.files.marker import Marker, marker_from_metadata, tables_digest
from app.codec.files.payload import PayloadError
from app.codec.files.payload import assemble as assemble_payload
from app.codec.files.payload import file_bytes as payload_file_bytes


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
    payload_file_bytes: int = 0  # what the payload's segments take in the file, headers included
    iptc: bytes | None = None  # the IPTC APP13 segment's data, carried from the source


def read_marker(source: Source) -> Marker | None:
    """The marker of any image, reading only its header; None if it has none."""
    with open_pil(source) as im:
        return marker_of(im, source_name(source))


def marker_of(im: Image.Image, name: str) -> Marker | None:
    """The marker of an image opened with ``open_pil`` (its header is parsed; no pixels decoded)."""
    try:
        marker = marker_from_metadata(im.info.get("exif"), im.info.get("xmp"))
        if marker is not None:
            check_pixel_budget(marker.width, marker.height, "the photo this HyperThumbnail reconstructs")
        return marker
    except ImageLoadError as exc:  # over the pixel budget: a plain image to show, never a photo to decode
        raise FormatError(f"{name}: {exc}") from exc
    except FormatError as exc:
        raise FormatError(f"{name}: {exc}") from exc


def _check_container(
    im: Image.Image, marker: Marker, name: str, reencoded_ok: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Check the JPEG is what the format requires; return its (luma, chroma) tables."""
    if im.format != "JPEG":
        raise FormatError(f"{name}: has a HyperThumbnail marker but is a {im.format}, not a JPEG")
    layers = getattr(im, "layer", [])
    if (im.info.get("progressive") and marker.version < 2) or len(layers) != 3:
        raise FormatError(
            f"{name}: not a baseline 3-component JPEG" if len(layers) == 3 else f"{name}: not a 3-component JPEG"
        )
    if any((h, v) != (1, 1) for _, h, v, _ in layers) or [t for *_, t in layers] != [0, 1, 1]:
        raise FormatError(f"{name}: not 4:4:4 with luma table 0 and chroma table 1")
    _check_coding(layout_of(im), name)  # after the shape: its restart count assumes 4:4:4's MCUs
    tables = getattr(im, "quantization", {})
    if sorted(tables) != [0, 1]:
        raise FormatError(f"{name}: expected exactly 2 quantization tables, found {len(tables)}")
    luma, chroma = (np.asarray(tables[i], dtype=np.int32) for i in (0, 1))
    if min(luma.min(), chroma.min()) < 1 or max(luma.max(), chroma.max()) > 255:
        raise FormatError(f"{name}: quantization tables are not 8-bit")
    if marker.tables_sha256 is not None and tables_digest(luma, chroma) != marker.tables_sha256 and not reencoded_ok:
        raise ReencodedError(
            f"{name} was saved again by another program: its quantization tables are not the ones the "
            "HyperThumbnail encoder chose, so a reconstruction would be worse than the thumbnail itself"
        )
    if im.size != marker.thumbnail_size:
        raise FormatError(
            f"{name}: thumbnail is {im.width}x{im.height} but the marker's "
            f"{marker.width}x{marker.height} original needs "
            f"{marker.thumbnail_size[0]}x{marker.thumbnail_size[1]}"
        )
    return luma, chroma


def _check_coding(layout: jpeg_segments.Layout | None, name: str) -> None:
    """The container's coding rules (FORMAT.md): Huffman coding, and restart markers where a
    restart interval says they are. libjpeg decodes either breach without an error (arithmetic
    coding as another JPEG; missing restarts by resynchronising into flat grey), and the decoder
    would rebuild a photo from garbage."""
    if layout is None or layout.frame is None:
        return
    if layout.frame not in jpeg_segments.BASELINE_OR_PROGRESSIVE:
        coding = "arithmetic-coded" if layout.frame in jpeg_segments.ARITHMETIC_SOF else "not baseline or progressive"
        raise FormatError(f"{name}: the JPEG is {coding} (SOF 0x{layout.frame:02X}); a HyperThumbnail is Huffman-coded")
    for number, scan in enumerate(layout.scans, 1):
        if scan.restart_interval:
            expected = -(-layout.blocks_per_component // scan.restart_interval) - 1
            if scan.restarts != expected and (layout.complete or scan.restarts > expected):
                raise FormatError(
                    f"{name}: scan {number} has {scan.restarts} restart markers where its restart interval of "
                    f"{scan.restart_interval} needs {expected}: the image data is damaged"
                )


def decoded_ycbcr(jpeg: bytes) -> np.ndarray:
    """A JPEG's YCbCr samples as libjpeg decodes them (no colour conversion): the decoder's input."""
    with Image.open(io.BytesIO(jpeg)) as im:
        im.draft("YCbCr", im.size)
        return np.array(im, dtype=np.uint8)


def read_thumbnail(source: Source, *, reencoded_ok: bool = False) -> Thumbnail:
    """Decode a HyperThumbnail, both as raw YCbCr (for the decoder) and as RGB (to show);
    ``reencoded_ok``: also one another program saved again (``ReencodedError`` otherwise)."""
    name = source_name(source)
    with open_pil(source) as im:
        marker = marker_of(im, name)
        if marker is None:
            raise NotHyperThumbnailError(f"not a HyperThumbnail: {name} is a plain {im.format}")
        return thumbnail_from(im, marker, name, reencoded_ok=reencoded_ok)


def thumbnail_from(im: Image.Image, marker: Marker, name: str, *, reencoded_ok: bool = False) -> Thumbnail:
    """The thumbnail of an image opened with ``open_pil`` whose ``marker`` was read: one decode.

    The YCbCr pixels come from asking Pillow for libjpeg's output before colour conversion
    (``draft('YCbCr')``), so block-DCT(ycbcr - 128) / table recovers the quantized coefficients
    exactly up to IDCT rounding; the RGB any viewer shows is then made from them with libjpeg's
    own arithmetic (``libjpeg_rgb``) instead of decoding the file a second time.
    """
    luma, chroma = _check_container(im, marker, name, reencoded_ok)
    exif = im.info.get("exif") or None
    icc = im.info.get("icc_profile") or None
    packet = im.info.get("xmp") or None
    payload, problem = _payload(im, marker)
    im.draft("YCbCr", im.size)
    decode_pixels(im, name)
    if im.mode != "YCbCr":
        raise FormatError(f"{name}: JPEG colour space is not YCbCr")
    ycbcr = np.array(im, dtype=np.uint8)  # a writable copy, not a view of Pillow's buffer
    return Thumbnail(
        ycbcr=ycbcr,
        rgb=libjpeg_rgb(ycbcr),
        luma_table=luma,
        chroma_table=chroma,
        marker=marker,
        exif=exif,
        icc_profile=icc,
        orientation=orientation_of(exif),
        xmp=packet,
        iptc=iptc.joined([data for kind, data in getattr(im, "applist", []) if kind == "APP13"]),
        payload=payload,
        payload_problem=problem,
        payload_file_bytes=payload_file_bytes(getattr(im, "applist", [])),
    )


def _libjpeg_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """jdcolor.c's build_ycc_rgb_table: 16-bit fixed point, rounded as libjpeg(-turbo) rounds."""
    bits, half = 16, 1 << 15
    x = np.arange(256, dtype=np.int32) - 128

    def fix(value: float) -> int:
        return int(value * (1 << bits) + 0.5)

    cr_r = (fix(1.40200) * x + half) >> bits
    cb_b = (fix(1.77200) * x + half) >> bits
    cr_g = -fix(0.71414) * x
    cb_g = -fix(0.34414) * x + half
    return cr_r, cb_b, cr_g, cb_g


_CR_R, _CB_B, _CR_G, _CB_G = _libjpeg_tables()


def libjpeg_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """The RGB libjpeg makes from these (4:4:4) YCbCr samples, bit for bit (tests compare it with
    Pillow's own RGB decode): what every other application shows of the file."""
    y = ycbcr[..., 0].astype(np.int32)
    cb, cr = ycbcr[..., 1], ycbcr[..., 2]
    rgb = np.empty(ycbcr.shape, np.uint8)
    np.clip(y + _CR_R[cr], 0, 255, out=rgb[..., 0], casting="unsafe")
    np.clip(y + ((_CB_G[cb] + _CR_G[cr]) >> 16), 0, 255, out=rgb[..., 1], casting="unsafe")
    np.clip(y + _CB_B[cb], 0, 255, out=rgb[..., 2], casting="unsafe")
    return rgb


def _payload(im: Image.Image, marker: Marker) -> tuple[bytes | None, str | None]:
    """(payload, None) when the marker declares one and it is intact; (None, why) when it is not."""
    if marker.payload_length is None:
        return None, None
    try:
        return assemble_payload(getattr(im, "applist", []), marker.payload_length, marker.payload_sha256), None
    except PayloadError as exc:
        return None, str(exc)
