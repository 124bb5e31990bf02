"""Which image types a decoded photo may be written as, decided before any decoding.

A decode can take minutes; finding out only at ``save`` that Pillow reads .psd but cannot write
it (a KeyError), that BLP takes palette images only, or that WebP stops at 16383 pixels, wastes
all of it. So the output's type and size are checked first, against the types that can hold a
full-resolution 8-bit RGB photo as it is: no palette (GIF), no 1-bit or grey (XBM, PBM, PGM),
no icon resized to 256 pixels (ICO, ICNS), no page description (PDF, EPS).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from PIL import Image

from app.codec.errors import CodecError, shorten

COMMON = ".png, .tif, .jpg or .webp"
# Pillow's formats that store RGB pixels as they are (JPEG and WebP lossily, as the user chose).
RGB_FORMATS = frozenset(
    {
        "PNG",
        "TIFF",
        "JPEG",
        "MPO",
        "WEBP",
        "AVIF",
        "BMP",
        "DIB",
        "PPM",
        "TGA",
        "QOI",
        "JPEG2000",
        "SGI",
        "PCX",
        "IM",
        "DDS",
    }
)
# Extensions whose registered format is RGB-capable but whose name promises something else.
NOT_RGB_EXTENSIONS = {".pbm": "1-bit black and white", ".pgm": "greyscale", ".pfm": "floating point",
                      ".bw": "greyscale"}  # fmt: skip
WHY_NOT = {
    "GIF": "GIF keeps at most 256 colours", "ICO": "icons are resized to 256 pixels at most",
    "ICNS": "icons are resized to 1024 pixels at most", "PDF": "a PDF is a document, not an image file",
    "EPS": "PostScript is a page description, not an image file", "BLP": "BLP holds palette images only",
    "XBM": "XBM holds 1-bit images only", "PALM": "Palm bitmaps hold palette images only",
    "MSP": "MSP holds 1-bit images only", "SPIDER": "SPIDER holds greyscale floats only",
}  # fmt: skip
MAX_SIDE = {"JPEG": 65500, "MPO": 65500, "WEBP": 16383, "TGA": 65535, "PCX": 65535, "SGI": 65535}


@cache
def _saves_rgb(format_name: str) -> bool:
    """Whether this Pillow build really writes RGB in ``format_name`` (plugins may be missing)."""
    try:
        Image.new("RGB", (2, 2)).save(io.BytesIO(), format=format_name)
    except Exception:  # noqa: BLE001 -- any failure means "cannot write it here"
        return False
    return True


def output_format(path: str | Path) -> str:
    """The Pillow format to save a decoded photo as, from the output's extension; a sentence
    saying which types are allowed when this one cannot hold it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not suffix:
        raise CodecError(f"output {shorten(path.name)} has no file type: end its name with {COMMON}")
    Image.init()
    format_name = Image.registered_extensions().get(suffix)
    if format_name is None:
        raise CodecError(f"unknown output image type {shorten(suffix)!r}: use {COMMON}")
    if suffix in NOT_RGB_EXTENSIONS:
        raise CodecError(f"cannot write the photo as {suffix} ({NOT_RGB_EXTENSIONS[suffix]}): use {COMMON}")
    if format_name in WHY_NOT:
        raise CodecError(f"cannot write the photo as {suffix}: {WHY_NOT[format_name]}; use {COMMON}")
    if format_name not in Image.SAVE:
        raise CodecError(f"{suffix} files can be read but not written here: use {COMMON}")
    if format_name not in RGB_FORMATS or not _saves_rgb(format_name):
        raise CodecError(f"cannot write an RGB photo as {suffix} here: use {COMMON}")
    return format_name


def check_output_size(format_name: str, width: int, height: int, path: str | Path) -> None:
    """Refuse, before decoding, a size the format cannot store (JPEG 65500, WebP 16383 a side)."""
    limit = MAX_SIDE.get(format_name)
    if limit is not None and max(width, height) > limit:
        raise CodecError(
            f"{format_name} cannot store {width}x{height} pixels (at most {limit} a side): "
            f"write {shorten(Path(path).name)} as .png or .tif instead"
        )
