"""Which image types a decoded photo may be written as, decided before any decoding.

A decode can take minutes; finding out only at ``save`` that Pillow reads .psd but cannot write
it (a KeyError), that BLP takes palette images only, or that WebP stops at 16383 pixels, wastes
all of it. So the output's type and size are checked first, against the types that can hold a
full-resolution 8-bit RGB photo as it is: no palette (GIF), no 1-bit or grey (XBM, PBM, PGM),
no icon resized to 256 pixels (ICO, ICNS), no page description (PDF, EPS).
"""

from __future__ import annotations

import io
import struct
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from app.codec.errors import CodecError, shorten
from app.codec.files import exif_edit, iptc, xmp
from app.codec.files.imageio import orientation_of

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


# How the encoder writes a decoded photo, where Pillow's defaults do it harm. PNG: zlib level 3
# instead of 6, measured on a 24 MP reconstruction and three validation photos (2-core AVX2
# EPYC): 2.3-3.7x faster (a 24 MP decode spent 15-20 s of its ~27 s writing the PNG), files
# 0-13% larger. JPEG and WebP: quality 95 instead of 75 and 80, so the detail the decoder rebuilt
# is not rounded away on the way out (JPEG stays 4:2:0, as ``decoded_exif`` records).
WRITE_OPTIONS: dict[str, dict[str, Any]] = {
    "PNG": {"compress_level": 3},
    "JPEG": {"quality": 95},
    "MPO": {"quality": 95},
    "WEBP": {"quality": 95},
}


def write_options(format_name: str) -> dict[str, Any]:
    """Pillow ``save`` keywords for writing a decoded photo as ``format_name`` (``WRITE_OPTIONS``)."""
    return dict(WRITE_OPTIONS.get(format_name, {}))


def check_output_size(format_name: str, width: int, height: int, path: str | Path) -> None:
    """Refuse, before decoding, a size the format cannot store (JPEG 65500, WebP 16383 a side)."""
    limit = MAX_SIDE.get(format_name)
    if limit is not None and max(width, height) > limit:
        raise CodecError(
            f"{format_name} cannot store {width}x{height} pixels (at most {limit} a side): "
            f"write {shorten(Path(path).name)} as .png or .tif instead"
        )


# IFD0 tags that describe a TIFF's own pixel data: Pillow writes them for the decoded pixels, and
# an EXIF block's values (a camera's, or a hostile file's) must never replace them.
TIFF_LAYOUT_TAGS = frozenset(
    {0x00FE, 0x00FF, 0x0100, 0x0101, 0x0102, 0x0103, 0x0106, 0x0107, 0x0108, 0x0109, 0x010A, 0x0111, 0x0115, 0x0116,
     0x0117, 0x0118, 0x0119, 0x011C, 0x0122, 0x0123, 0x0124, 0x0125, 0x013D, 0x0140, 0x0142, 0x0143, 0x0144, 0x0145,
     0x014A, 0x0152, 0x0153, 0x0154, 0x0155, 0x0156, 0x015B, 0x0200, 0x0201, 0x0202, 0x0211, 0x0212, 0x0213, 0x0214,
     0x02BC, 0x83BB, 0x8649, 0x8773}
)  # fmt: skip
TIFF_XMP, TIFF_IPTC = 0x02BC, 0x83BB
# Exif IFD tags a TIFF must not take over: the Interop pointer (an offset into the old block: Pillow
# would write it stale), what only a compressed JPEG has, and the MakerNote (Pillow moves it, and
# a camera's notes point at absolute offsets).
TIFF_EXIF_DROPPED = {0xA005: None, 0x9101: None, 0x9102: None, 0xA002: None, 0xA003: None, 0x927C: "MakerNote"}


def decoded_exif(exif: bytes | None, size: tuple[int, int], *, subsampling: tuple[int, int] | None = None) -> bytes:
    """A HyperThumbnail's EXIF for the photo decoded from it (``size``: the output's width and
    height): PixelX/YDimension and ImageWidth/Length set to it, Orientation 1 (the decoder turns
    the pixels upright), the embedded preview dropped, YCbCrSubSampling set to ``subsampling``
    (a JPEG output's) where it exists; every edit in place. ``ExifError`` when it cannot be done
    safely (a damaged block, or an edit that would change any other tag)."""
    tiff = exif_edit.parse(exif)
    if tiff is None:
        raise exif_edit.ExifError("the EXIF block is damaged")
    block = tiff.block()
    before = exif_edit.tag_values(block)
    block = exif_edit.drop_thumbnail(block)
    block = exif_edit.set_pixel_dimensions(block, *size)
    block = exif_edit.set_image_size(block, *size)
    if subsampling:
        block = exif_edit.set_ycbcr_subsampling(block, *subsampling)
    if orientation_of(block) != 1:
        block = exif_edit.set_orientation(block, 1)
    exif_edit.check_unchanged(before, block, exif_edit.SIZE_TAGS | {("0th", exif_edit.TAG_ORIENTATION)})
    return block


def metadata_options(
    format_name: str,
    size: tuple[int, int],
    *,
    exif: bytes | None = None,
    xmp_packet: bytes | None = None,
    iptc_segment: bytes | None = None,
    icc_profile: bytes | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """(Pillow ``save`` keywords, notes) that write a HyperThumbnail's metadata into the photo
    decoded from it: EXIF (``decoded_exif``), XMP (``xmp.decoded_packet``: without the marker, so
    the output never claims to be a HyperThumbnail) and IPTC, where the type holds them: JPEG
    (APP1, APP1, APP13), PNG (eXIf, iTXt XML:com.adobe.xmp; no IPTC), TIFF (the EXIF tags, XMP
    700, IPTC-NAA 33723; Pillow re-writes the EXIF there, so the MakerNote, whose offsets would
    break, the Interop IFD and the JPEG-only tags are left out), WebP (EXIF, XMP; no IPTC). Other
    types get the ICC profile only."""
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    notes: list[str] = []
    if format_name not in ("JPEG", "MPO", "PNG", "TIFF", "WEBP"):
        if exif or xmp_packet or iptc_segment:
            notes.append(f"{format_name} files carry no EXIF, XMP or IPTC here: the photo's metadata was not written")
        return options, notes
    jpeg = format_name in ("JPEG", "MPO")
    block = None
    if exif:
        try:
            block = decoded_exif(exif, size, subsampling=(2, 2) if jpeg else None)  # Pillow's JPEG is 4:2:0
        except (exif_edit.ExifError, struct.error) as exc:
            notes.append(f"the file's EXIF was not written: {exc}")
    packet = xmp.decoded_packet(xmp_packet, size)
    if packet and len(packet) > xmp.MAX_PACKET:
        packet = None
        notes.append("the file's XMP was not written: it no longer fits one segment")
    iim = None
    if iptc_segment:
        try:
            iptc.resources(iptc_segment)
            iim = iptc.iim_data(iptc_segment)
        except iptc.IptcError as exc:
            iptc_segment = None
            notes.append(f"the file's IPTC was not written: {exc}")
    if format_name == "TIFF":
        tags = Image.Exif()
        if block:
            tags.load(block)
            for tag in [t for t in tags if t in TIFF_LAYOUT_TAGS]:
                del tags[tag]
            exif_ifd = tags.get_ifd(0x8769)  # Pillow writes this very dict as the TIFF's Exif IFD
            for tag in [t for t in exif_ifd if t in TIFF_EXIF_DROPPED]:
                del exif_ifd[tag]
                if TIFF_EXIF_DROPPED[tag]:
                    notes.append(f"the camera's {TIFF_EXIF_DROPPED[tag]} was not written: a TIFF's EXIF is re-written")
        if packet:
            tags[TIFF_XMP] = packet
        if iim:
            tags[TIFF_IPTC] = iim
        if len(tags):
            options["exif"] = tags
        return options, notes
    if block:
        options["exif"] = block
    if packet and format_name == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8"))
        options["pnginfo"] = info
    elif packet:
        options["xmp"] = packet
    if jpeg and iptc_segment:
        options["extra"] = iptc.app13(iptc_segment)
    elif iptc_segment and iim:
        notes.append(f"{format_name} files carry no IPTC: the file's IPTC was not written (only its XMP)")
    return options, notes
