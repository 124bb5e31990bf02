"""Camera RAW files through LibRaw (``rawpy``): the embedded preview at once, the photo developed on demand.

A RAW file (``RAW_SUFFIXES``: CR2, CR3, NEF, ARW, RAF, ORF, RW2, DNG, PEF...) is recognised by its
name, and LibRaw's successful open confirms it. ``imageio.open_pil`` hands out the camera's
embedded preview as the Pillow image (a JPEG decoded by Pillow under the usual bounds, or LibRaw's
bitmap; a small development when the file has none), with the RAW kept beside it
(``raw_of``): opening for viewing costs one preview decode, and only ``imageio.loaded_from`` (an
encode, an export) develops the sensor data, with ``DEVELOP`` below.

Pixels stay in STORED orientation like every other source: LibRaw is told not to turn them
(``user_flip=0``), and its flip becomes the EXIF orientation carried with them. The sensor's size
is held to the pixel budget right after LibRaw reads the header, before any sensor data is
unpacked; the preview is bounded in bytes and by the budget like any image.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import piexif
from PIL import Image

from app.codec.errors import ImageLoadError
from app.codec.files.limits import check_pixel_budget

RAW_SUFFIXES = frozenset(
    {
        ".3fr", ".ari", ".arw", ".bay", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".fff", ".iiq", ".k25",
        ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2",
        ".srf", ".srw", ".x3f",
    }
)  # fmt: skip

# How a RAW is developed (rawpy.Params), and why: the camera's as-shot white balance (what the photographer
# saw on the camera's screen, not a guess from the pixels); LibRaw's default sRGB output, BT.709 gamma, AHD
# demosaicing and auto-brightening (without it most RAWs come out dark: LibRaw maps the sensor's white
# level, which leaves the highlight headroom, to 255); 8 bits, what the codec works on; and the sensor's
# own orientation (user_flip=0): the flip travels as EXIF orientation, like every other source's.
DEVELOP = {"use_camera_wb": True, "output_bps": 8, "user_flip": 0}
DEVELOPED_NOTE = "developed from RAW with LibRaw's defaults (camera white balance, auto brightness, sRGB)"
MAX_PREVIEW_BYTES = 64 * 2**20  # an embedded preview larger than this is not believed: the RAW is developed instead

# LibRaw's flip (dcraw's) -> EXIF orientation: dcraw reads orientation o as flip "50132467"[o].
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


def is_raw_name(source: object) -> bool:
    """Whether ``source`` is a path whose name says RAW (bytes in memory never are)."""
    return isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() in RAW_SUFFIXES


@dataclass
class RawSource:
    """An open RAW file beside the Pillow image of its preview (``imageio.open_pil`` closes it)."""

    raw: object  # rawpy.RawPy, opened (header read); the sensor data is unpacked only by ``develop``
    name: str
    full_size: tuple[int, int]  # (width, height) of the developed photo, stored (sensor) orientation
    orientation: int  # EXIF orientation 1..8, from LibRaw's flip
    exif: bytes  # a minimal EXIF block: orientation, and what LibRaw read of the shot
    preview_note: str  # what the viewer shows until the RAW is developed


def raw_of(im: Image.Image) -> RawSource | None:
    """The RAW an image opened by ``imageio.open_pil`` is the preview of; None for any other image."""
    return getattr(im, "hyperthumb_raw", None)


def _rawpy():
    try:
        import rawpy
    except ImportError as exc:  # a declared dependency; this is for a broken installation
        raise ImageLoadError("RAW files need the rawpy package (pip install rawpy)") from exc
    return rawpy


def open_raw(path: Path, name: str) -> Image.Image | None:
    """Open a RAW file: its preview as a Pillow image (pixels possibly not yet decoded), the open
    RAW beside it (``raw_of``; ``close`` it). None when LibRaw does not know the file (a TIFF or
    JPEG under a RAW name): Pillow then has its try. Raises ``ImageLoadError`` with a sentence."""
    rawpy = _rawpy()
    try:
        raw = rawpy.imread(str(path))  # reads the header only
    except rawpy.LibRawFileUnsupportedError:
        return None
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise ImageLoadError(f"RAW file is truncated or corrupt: {name}") from exc
    try:
        sizes = raw.sizes
        check_pixel_budget(sizes.raw_width, sizes.raw_height, name)  # before any sensor data is unpacked
        if sizes.width == 0 or sizes.height == 0:
            raise ImageLoadError(f"image has zero size: {name}")
        full_size = _developed_size(sizes)
        check_pixel_budget(*full_size, name)
        orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1)
        source = RawSource(raw, name, full_size, orientation, _exif(raw, orientation), "")
        preview = _preview(raw, source)
    except BaseException:
        raw.close()
        raise
    preview.hyperthumb_raw = source
    return preview


def _developed_size(sizes) -> tuple[int, int]:
    """The size ``postprocess`` makes, before any flip: LibRaw stretches non-square pixels."""
    width, height = sizes.width, sizes.height
    aspect = sizes.pixel_aspect or 1.0
    if aspect > 1.0005:
        width = round(width * aspect)
    elif aspect < 0.9995:
        height = round(height / aspect)
    return width, height


def _preview(raw, source: RawSource) -> Image.Image:
    """The camera's embedded preview (JPEG: opened by Pillow, bounded; bitmap: as it is); without
    one, the RAW developed at half size (LibRaw's quick mode: one pixel per 2x2 Bayer block)."""
    rawpy = _rawpy()
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, OSError, ValueError, MemoryError):
        thumb = None
    if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG and len(thumb.data) <= MAX_PREVIEW_BYTES:
        from app.codec.files.imageio import jpeg_layout  # a JPEG's structure is bounded before Pillow parses it

        data = bytes(thumb.data)
        try:
            jpeg_layout(data, source.name)
            im = Image.open(io.BytesIO(data))
            check_pixel_budget(im.width, im.height, source.name)
            if im.format in ("JPEG", "MPO") and im.width > 0 and im.height > 0:
                return _described(im, source, "the camera's embedded preview")
        except (ImageLoadError, OSError, SyntaxError, ValueError):
            pass  # a damaged preview: develop instead
    elif thumb is not None and thumb.format == rawpy.ThumbFormat.BITMAP:
        pixels = np.asarray(thumb.data)
        if pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8 and pixels.size:
            check_pixel_budget(pixels.shape[1], pixels.shape[0], f"the embedded preview of {source.name}")
            return _described(Image.fromarray(pixels), source, "the camera's embedded preview")
    try:
        rgb = raw.postprocess(half_size=True, **DEVELOP)
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise ImageLoadError(f"RAW file is truncated or corrupt: {source.name}") from exc
    return _described(Image.fromarray(rgb), source, "a quick half-size development")


def _described(im: Image.Image, source: RawSource, what: str) -> Image.Image:
    """The preview, told the RAW's orientation (previews are stored in the sensor's orientation)."""
    width, height = source.full_size
    source.preview_note = (
        f"RAW file: showing {what} ({im.width} x {im.height} of {width} x {height}); export develops the RAW"
    )
    im.info["exif"] = source.exif
    im.info.pop("icc_profile", None)  # the preview is shown as sRGB, as the development will be
    im.info.pop("xmp", None)  # the preview's own metadata is not the photo's (nor ever a HyperThumbnail's)
    return im


def develop(source: RawSource) -> np.ndarray:
    """The photo from the sensor data: uint8 RGB, stored orientation (``DEVELOP``)."""
    rawpy = _rawpy()
    try:
        rgb = source.raw.postprocess(**DEVELOP)
    except MemoryError as exc:
        raise ImageLoadError(f"not enough memory to develop the RAW file: {source.name}") from exc
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise ImageLoadError(f"RAW file is truncated or corrupt: {source.name}") from exc
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _exif(raw, orientation: int) -> bytes:
    """A minimal EXIF block: the orientation, and the shot's settings LibRaw read (when it did)."""
    zeroth: dict = {piexif.ImageIFD.Orientation: orientation}
    exif: dict = {}
    try:
        other = raw.other
    except (AttributeError, ValueError):
        other = None
    if other is not None:
        if other.iso_speed and other.iso_speed < 65536:
            exif[piexif.ExifIFD.ISOSpeedRatings] = int(round(other.iso_speed))
        for tag, value in (
            (piexif.ExifIFD.ExposureTime, other.shutter_speed),
            (piexif.ExifIFD.FNumber, other.aperture),
            (piexif.ExifIFD.FocalLength, other.focal_length),
        ):
            if value and 0 < value < 1e6:
                fraction = Fraction(value).limit_denominator(100000)
                exif[tag] = (fraction.numerator, fraction.denominator)
        stamp = other.timestamp
        if isinstance(stamp, datetime) and stamp.year > 1970:
            exif[piexif.ExifIFD.DateTimeOriginal] = stamp.strftime("%Y:%m:%d %H:%M:%S").encode()
        if other.artist:
            zeroth[piexif.ImageIFD.Artist] = str(other.artist).encode("utf-8", "replace")[:256]
    return piexif.dump({"0th": zeroth, "Exif": exif})


def close(source: RawSource) -> None:
    source.raw.close()
