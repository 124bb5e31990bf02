"""Load any image Pillow reads as 8-bit RGB, keeping its EXIF and (usable) ICC profile.

The codec works on uint8 RGB only, so every other pixel format is converted here, once,
and each conversion is recorded in ``notes`` so the user can see what happened to their
photo. Pixels stay in STORED orientation: EXIF orientation is carried, never applied, so
that the HyperThumbnail's pixels line up with the original's and its EXIF still applies.
Every failure is an ``ImageLoadError`` with a one-line message naming the file, and every
size a header claims is checked against the pixel budget (``limits.py``) before any pixel
buffer exists.

HEIC/HEIF come through pillow-heif's Pillow plugin (registered below), so every path reads them;
libheif applies the file's own transforms (irot/imir) as it decodes and pillow-heif sets the EXIF
orientation to 1 to match, so those pixels and their EXIF still obey the rule above. Camera RAW
files come through LibRaw (``raw.py``): ``open_pil`` gives the embedded preview, ``loaded_from``
develops the sensor data.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import piexif
import pillow_heif
from PIL import Image, UnidentifiedImageError

from app.codec.errors import ImageLoadError
from app.codec.files import iptc, jpeg_segments, png_bands, raw, tiff_bands
from app.codec.files.limits import MAX_SEGMENTS, check_jpeg_layout, check_pixel_budget, max_pixels

# Pillow's own bomb check follows our budget (it refuses beyond twice it, at open); between the
# two, its DecompressionBombWarning would print raw, but ``open_pil`` refuses those sizes with a
# sentence right after the header is read. Pillow's complaints about damaged EXIF (it skips the
# tag) are silenced too: metadata never stops a photo, and a warning is not a sentence.
Image.MAX_IMAGE_PIXELS = max_pixels()
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")
warnings.filterwarnings(
    "ignore",
    message=r"(Possibly corrupt EXIF|Image appears to be a malformed MPO)",
    category=UserWarning,
    module=r"PIL\.",
)

# HEIC/HEIF (libheif, the maintained decoder) for every Image.open; its depth and auxiliary images
# and its thumbnails are never wanted here (only the primary image is read).
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

ORIENTATION_TAG = 0x0112
Source = str | os.PathLike[str] | bytes

# What a broken file can make Pillow's decoders raise; all mean "truncated or corrupt".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)


@dataclass
class LoadedImage:
    """An image as the codec needs it: uint8 RGB plus the metadata to carry over."""

    rgb: np.ndarray  # uint8 HxWx3, stored orientation (EXIF orientation NOT applied)
    exif: bytes | None  # raw EXIF block (as Pillow's im.info['exif'])
    icc_profile: bytes | None  # ICC profile that describes ``rgb``; None if none applies
    orientation: int  # EXIF orientation 1..8 (1 if none)
    source_format: str  # Pillow's format name: 'JPEG', 'PNG', ...
    notes: list[str] = field(default_factory=list)  # conversions done, for the user
    xmp: bytes | None = None  # the source's XMP packet (ratings, keywords...), carried into a HyperThumbnail
    dpi: tuple[float, float] | None = None  # the source's pixel density (JFIF), carried too
    aspect: tuple[int, int] | None = None  # or only its pixel aspect ratio (JFIF unit 0, PNG pHYs unit 0)
    iptc: bytes | None = None  # the source's IPTC as APP13 segment data ("Photoshop 3.0\0" + resources)
    full_size: tuple[int, int] | None = None  # (width, height) of the source when ``rgb`` is reduced (display)


def source_name(source: Source) -> str:
    """How a source is named in messages."""
    return "<in-memory image>" if isinstance(source, bytes) else str(source)


@contextmanager
def open_pil(source: Source, name: str | None = None) -> Iterator[Image.Image]:
    """Open lazily (header only) and close on exit; open failures become ImageLoadError.
    ``name``: how messages call it (default: the path; bytes read from a file pass its path)."""
    name = name or source_name(source)
    if isinstance(source, bytes):
        fp: io.BytesIO | Path = io.BytesIO(source)
        empty = not source
    else:
        fp = Path(source)
        if not fp.exists():
            raise ImageLoadError(f"no such file: {name}")
        if fp.is_dir():
            raise ImageLoadError(f"is a directory, not an image: {name}")
        empty = fp.stat().st_size == 0
    if empty:
        raise ImageLoadError(f"empty file (zero bytes): {name}")
    layout = jpeg_layout(source, name)  # a JPEG's structure is bounded before Pillow parses it
    try:
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels())  # the budget may have grown
        im = raw.open_raw(fp, name) if raw.is_raw_name(fp) else None  # a RAW: its preview, the RAW beside it
        im = im or Image.open(fp)
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"not an image file, or of a type this program cannot read: {name}") from exc
    except PermissionError as exc:
        raise ImageLoadError(f"permission denied: {name}") from exc
    except Image.DecompressionBombError as exc:
        limit = f"{max_pixels() / 1e6:g}"
        raise ImageLoadError(
            f"image is too large: {name} has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:g} megapixels, "
            f"over the limit of {limit} (set HYPERTHUMB_MAX_PIXELS to allow more)"
        ) from exc
    except (*_DECODE_ERRORS, RecursionError) as exc:
        raise ImageLoadError(f"image is truncated or corrupt: {name}") from exc
    source_raw = raw.raw_of(im)
    try:
        with im:
            if im.width == 0 or im.height == 0:
                raise ImageLoadError(f"image has zero size: {name}")
            check_pixel_budget(im.width, im.height, name)
            im.jpeg_layout = layout  # for the HyperThumbnail reader's container rules (``layout_of``)
            yield im
    finally:
        if source_raw is not None:
            raw.close(source_raw)


def jpeg_layout(source: Source, name: str) -> jpeg_segments.Layout | None:
    """A JPEG's structure (``jpeg_segments.layout``), checked against ``limits``' bounds; None for
    any other file. One linear pass: segment headers, and the scans' data searched for markers."""
    try:
        with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as f:
            if f.read(3) != b"\xff\xd8\xff":
                return None
            f.seek(0)
            layout = jpeg_segments.layout(f, max_segments=MAX_SEGMENTS)
            size = f.seek(0, io.SEEK_END)
    except OSError:
        return None  # Pillow's open says what is wrong with the file
    check_jpeg_layout(layout, size, name)
    return layout


def layout_of(im: Image.Image) -> jpeg_segments.Layout | None:
    """The structure ``open_pil`` found for a JPEG it opened; None for other images."""
    return getattr(im, "jpeg_layout", None)


TRUNCATED_NOTE = "the file is truncated: only the first part of the image could be read"


def decode_pixels(im: Image.Image, name: str, *, partial_ok: bool = False) -> bool:
    """Force the full decode now, so a truncated file fails here and not later.

    ``partial_ok`` (for display only, never for encoding): a file that ends early keeps what
    could be decoded (the rest as the decoder leaves it) and True is answered; False otherwise."""
    try:
        im.load()
    except _DECODE_ERRORS as exc:
        if partial_ok and _truncated(exc) and _load_readable_part(im):
            return True
        raise ImageLoadError(f"image is truncated or corrupt: {name}") from exc
    return False


def _truncated(exc: BaseException) -> bool:
    """Whether Pillow stopped because the data ended (not because it is garbled)."""
    return isinstance(exc, OSError) and str(exc).startswith("image file is truncated")


def _load_readable_part(im: Image.Image) -> bool:
    """Decode what a truncated file holds, as Pillow does with ``ImageFile.LOAD_TRUNCATED_IMAGES``,
    but for this image only: that switch is a module global, read by every thread that decodes
    (an encoding running beside the viewer must keep refusing). A failed ``load`` leaves the tiles
    and the file in place; this is its tile loop again, where the end of the data ends the tile
    (a JPEG gets the end-of-image marker its decoder needs to finish). False when the image is
    not made of plain tiles this loop knows (the error then stands)."""
    tiles, fp = list(getattr(im, "tile", None) or []), getattr(im, "fp", None)
    if not tiles or fp is None:
        return False
    read = getattr(im, "load_read", fp.read)
    seek = getattr(im, "load_seek", fp.seek)
    try:
        im.load_prepare()
        for decoder_name, extents, offset, args in sorted(tiles, key=lambda tile: tile[2]):
            seek(offset)
            decoder = Image._getdecoder(im.mode, decoder_name, args, getattr(im, "decoderconfig", ()))
            try:
                decoder.setimage(im.im, extents)
                if decoder.pulls_fd:
                    return False
                data, ended = getattr(im, "tile_prefix", b""), False
                while True:
                    try:
                        chunk = read(im.decodermaxblock)
                    except (IndexError, struct.error, EOFError, OSError):
                        chunk = b""
                    if not chunk:
                        if ended or im.format not in ("JPEG", "MPO"):
                            break
                        chunk, ended = b"\xff\xd9", True  # end of image: the decoder finishes the frame
                    data += chunk
                    consumed, _ = decoder.decode(data)
                    if consumed < 0:
                        break
                    data = data[consumed:]
            finally:
                decoder.cleanup()
        im.tile = []
        try:
            im.load_end()
        except _DECODE_ERRORS:
            pass  # what follows the pixels (a PNG's later chunks) is missing too
        Image.Image.load(im)
    except _DECODE_ERRORS:
        return False
    return True


def orientation_of(exif: bytes | None) -> int:
    """EXIF orientation 1..8 from a raw EXIF block; 1 if absent, invalid or unparseable."""
    if not exif:
        return 1
    parsed = Image.Exif()
    try:
        with warnings.catch_warnings():  # "Corrupt EXIF data": we answer 1 for that anyway
            warnings.simplefilter("ignore")
            parsed.load(exif)
            value = parsed.get(ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _is_rgb_icc(icc: bytes) -> bool:
    """True if the profile's data colour space (header bytes 16..20) is RGB."""
    return len(icc) >= 20 and icc[16:20] == b"RGB "


def _wide_tile(im: Image.Image) -> bool:
    """True if Pillow will narrow 16-bit-per-channel data to 8 bits on load (e.g. 48-bit PNG)."""
    for tile in im.tile:
        rawmode = tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _over_white(im: Image.Image) -> Image.Image:
    """Composite an image with alpha over white: the usual look of transparency in a photo."""
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _deep_grey_to_8bit(im: Image.Image) -> tuple[np.ndarray, str]:
    """Scale 16-bit, 32-bit integer or float greyscale to uint8 without clipping."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        return (a.astype(np.uint16) >> 8).astype(np.uint8), "scaled 16-bit greyscale to 8 bits"
    if im.mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535:
        # 32-bit integer pixels: read them at the smallest usual depth that holds them.
        if a.max() <= 255:
            return a.astype(np.uint8), "read 32-bit integer greyscale as 8-bit values"
        return (a >> 8).astype(np.uint8), "scaled 16-bit greyscale to 8 bits"
    a = np.nan_to_num(a.astype(np.float64))
    if im.mode == "F" and a.size and a.min() >= 0.0 and a.max() <= 1.0:
        return np.round(a * 255.0).astype(np.uint8), "scaled 0..1 float greyscale to 8 bits"
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.round(scaled).astype(np.uint8), f"stretched {im.mode} greyscale range {lo:g}..{hi:g} to 8 bits"


def to_rgb(im: Image.Image, name: str) -> tuple[np.ndarray, list[str]]:
    """Convert a decoded image of any mode to uint8 RGB, describing each conversion (the one place
    that knows the pixel modes: the codec's loading and the viewer's strip pictures both use it)."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im), []
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey, note = _deep_grey_to_8bit(im)
        return _grey_to_rgb(grey), [note, "converted greyscale to RGB"]
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in im.info):
        return np.asarray(_over_white(im)), [f"converted {mode} to RGB (alpha over white)"]
    if mode == "CMYK":
        return np.asarray(im.convert("RGB")), ["converted CMYK to RGB"]
    descriptions = {"L": "greyscale (L)", "1": "1-bit black and white", "P": "palette (P)"}
    try:
        rgb = im.convert("RGB")
    except ValueError as exc:
        raise ImageLoadError(f"unsupported pixel format {mode}: {name}") from exc
    return np.asarray(rgb), [f"converted {descriptions.get(mode, mode)} to RGB"]


def image_orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of an open image: from its EXIF block, or from a TIFF's own tags."""
    exif = im.info.get("exif") or None
    if exif is not None:
        return orientation_of(exif)
    value = im.getexif().get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _exif_and_orientation(im: Image.Image) -> tuple[bytes | None, int]:
    """The raw EXIF block and orientation; formats without an EXIF block (TIFF) get a minimal
    one holding their orientation, so the orientation survives into a HyperThumbnail."""
    exif = im.info.get("exif") or None
    orientation = image_orientation(im)
    if exif is not None or orientation == 1:
        return exif, orientation
    return piexif.dump({"0th": {piexif.ImageIFD.Orientation: orientation}}), orientation


def load_image(
    path: Source, name: str | None = None, *, partial_ok: bool = False, display_pixels: int | None = None
) -> LoadedImage:
    """Fully decode ``path`` (a file path, or bytes) to 8-bit RGB in stored orientation.
    ``partial_ok``, ``display_pixels``: see ``loaded_from``."""
    name = name or source_name(path)
    with open_pil(path, name) as im:
        return loaded_from(im, name, partial_ok=partial_ok, display_pixels=display_pixels)


# Modes Pillow's ``Image.reduce`` takes; others are converted to one of these first.
_REDUCIBLE = {"L", "LA", "La", "RGB", "RGBA", "RGBa", "I", "F"}


def loaded_from(
    im: Image.Image, name: str, *, partial_ok: bool = False, display_pixels: int | None = None
) -> LoadedImage:
    """Decode an image opened with ``open_pil`` (header parsed, pixels not yet read).

    A truncated file is refused (``ImageLoadError``): nothing is encoded from half a photo. Only
    for display, ``partial_ok`` keeps what could be read, with ``TRUNCATED_NOTE`` among the notes.
    A RAW file is developed here (``raw.develop``), not read from its preview.

    Only for display, ``display_pixels`` bounds the pixels decoded: a larger image is read reduced
    by a whole factor (a JPEG by libjpeg's DCT scaling, before any full-size buffer exists; others
    reduced right after decoding, in their own mode), ``full_size`` keeps its real size and a note
    says so. A 15000x15000 1-bit PNG took the viewer to 3.9 GB as full-size RGB and pixmaps."""
    source_raw = raw.raw_of(im)
    if source_raw is not None:
        return _developed(source_raw)
    notes: list[str] = []
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        notes.append(f"used the first of {frames} frames")
    if im.mode in ("RGB", "RGBA") and _wide_tile(im):
        notes.append("reduced 16 bits per channel to 8")
    full_size = im.size
    factor = _display_factor(full_size, display_pixels)
    if factor > 1 and im.format in ("JPEG", "MPO"):
        im.draft(im.mode, (-(-im.width // factor), -(-im.height // factor)))  # 1/2, 1/4 or 1/8 in the IDCT
    pixels, truncated = decoded_reduced(im, name, _display_factor(im.size, display_pixels), partial_ok=partial_ok)
    if truncated:
        notes.insert(0, TRUNCATED_NOTE)
    if factor > 1:
        notes.append(
            f"shown at {pixels.width}x{pixels.height}: its {full_size[0]}x{full_size[1]} pixels are over the "
            f"viewer's {display_pixels / 1e6:g}-megapixel display budget"
        )
    rgb, converted = to_rgb(pixels, name)
    source_format = im.format or "unknown"
    if pixels is not im:
        # the metadata from the reduced copy, which carries the source's info and format: a PNG's
        # source would decode itself whole to look for an EXIF stored after its pixels
        pixels.format, im = im.format, pixels
    notes += converted
    icc = im.info.get("icc_profile") or None
    if icc is not None and not _is_rgb_icc(icc):
        space = icc[16:20].decode("ascii", "replace").strip()
        notes.append(f"dropped the ICC profile ({space}): it does not describe the RGB pixels")
        icc = None
    exif, orientation = _exif_and_orientation(im)
    return LoadedImage(
        rgb=np.array(rgb, dtype=np.uint8),  # a writable copy, not a view of Pillow's buffer
        exif=exif,
        icc_profile=icc,
        orientation=orientation,
        source_format=source_format,
        notes=notes,
        xmp=im.info.get("xmp") or None,
        dpi=_dpi(im),
        aspect=_aspect(im),
        iptc=_iptc(im),
        full_size=full_size if im.size != full_size else None,
    )


def _display_factor(size: tuple[int, int], limit: int | None) -> int:
    """The smallest whole factor that brings ``size`` within ``limit`` pixels (1: it is within)."""
    if not limit or size[0] * size[1] <= limit:
        return 1
    return math.ceil(math.sqrt(size[0] * size[1] / limit))


def decoded_reduced(im: Image.Image, name: str, factor: int, *, partial_ok: bool = False) -> tuple[Image.Image, bool]:
    """``im`` (opened, pixels not read) decoded and ``reduced`` by ``factor``: (image, truncated).
    A big PNG or striped TIFF is decoded a band of rows at a time and never whole (``png_bands``,
    ``tiff_bands``); anything else whole, then reduced. ``partial_ok``: as ``decode_pixels``."""
    if factor > 1:
        banded = png_bands.decode_reduced(im, factor, reduced) or tiff_bands.decode_reduced(im, factor, reduced)
        if banded is not None:
            return banded, False
    truncated = decode_pixels(im, name, partial_ok=partial_ok)
    return reduced(im, factor), truncated


def reduced(im: Image.Image, factor: int) -> Image.Image:
    """``im`` (decoded) reduced by ``factor`` (box average) in a mode that keeps its values, so
    that ``to_rgb`` still makes the one conversion to 8-bit RGB afterwards: 1-bit as L, 16-bit
    grey as 32-bit integers (``to_rgb`` scales them), palettes and others as RGB(A)."""
    if factor <= 1:
        return im
    if im.mode not in _REDUCIBLE:
        if im.mode == "1":
            mode = "L"
        elif im.mode.startswith("I;16"):
            mode = "I"
        else:
            mode = "RGBA" if "transparency" in im.info or "A" in im.mode else "RGB"
        im = im.convert(mode)
    return im.reduce(factor)


def _developed(source: raw.RawSource) -> LoadedImage:
    """A RAW file's photo: LibRaw's development, its orientation as EXIF (``raw.py``)."""
    return LoadedImage(
        rgb=raw.develop(source),
        exif=source.exif,
        icc_profile=None,  # LibRaw's output is sRGB, what no profile means
        orientation=source.orientation,
        source_format="RAW",
        notes=[raw.DEVELOPED_NOTE],
    )


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    """The source's density when it states one in dots per inch (JFIF units 1 or 2, PNG pHYs).

    For a JPEG only what the file says: its JFIF density, or without JFIF its EXIF resolution in
    inches or centimetres. Pillow also reads a JFIF unit 0 (an aspect ratio only) or an EXIF
    ResolutionUnit 1 (no unit) as dots per inch, and invents 72 when the EXIF has no resolution."""
    if im.format in ("JPEG", "MPO"):
        if "jfif_unit" in im.info and im.info["jfif_unit"] not in (1, 2):
            return None
        if "jfif_unit" not in im.info and not _exif_states_dpi(im):
            return None
    dpi = im.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if 1 <= x <= 65535 and 1 <= y <= 65535 else None


def _exif_states_dpi(im: Image.Image) -> bool:
    try:
        exif = im.getexif()
        return exif.get(0x0128) in (2, 3) and 0x011A in exif
    except _DECODE_ERRORS:
        return False


def _aspect(im: Image.Image) -> tuple[int, int] | None:
    """The pixel aspect ratio of a source that states only that: a JFIF density of unit 0 (other
    than the 1:1 every encoder writes by default), or a PNG pHYs of unit 0."""
    if im.format in ("JPEG", "MPO") and im.info.get("jfif_unit") == 0:
        value = im.info.get("jfif_density")
    elif im.format == "PNG":
        value = im.info.get("aspect")
    else:
        return None
    try:
        x, y = int(value[0]), int(value[1])
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if 1 <= x <= 65535 and 1 <= y <= 65535 and x != y else None


def _iptc(im: Image.Image) -> bytes | None:
    """The source's IPTC as one APP13 segment's data: a JPEG's Photoshop APP13 segment(s), or a
    TIFF's Photoshop resources (tag 34377) or IPTC-NAA datasets (tag 33723). Whether it can be
    carried (size, damage) is for the header to decide, with a note."""
    if im.format in ("JPEG", "MPO"):
        return iptc.joined([data for name, data in getattr(im, "applist", []) if name == "APP13"])
    tags = getattr(im, "tag_v2", None)
    if im.format != "TIFF" or tags is None:
        return None
    try:
        for tag, wrap in ((34377, lambda value: iptc.PHOTOSHOP + value), (33723, iptc.from_iim)):
            value = _tag_bytes(tags, tag)
            if value:
                return wrap(value)
    except _DECODE_ERRORS:
        pass
    return None


def _tag_bytes(tags, tag: int) -> bytes | None:
    """A TIFF tag's value as the bytes the file stores (Photoshop writes IPTC-NAA as LONGs)."""
    value = tags.get(tag)
    if isinstance(value, bytes):
        return value
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        size = {1: "B", 7: "B", 3: "H", 4: "I"}.get(tags.tagtype.get(tag))
        return struct.pack(f"{tags._endian}{len(value)}{size}", *value) if size else None
    return None
