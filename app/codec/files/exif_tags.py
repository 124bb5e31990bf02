"""Read an EXIF block's tags for showing them, with bounded work whatever the block says.

piexif trusts every count in the block: one entry claiming 0x10000000 values makes it build a
9 GB tuple from a 1 kB file. Pillow's ``Image.Exif`` checks each tag's data against the block's
length and skips what does not fit, so it is the parser here; its values are given back in
piexif's shapes (byte strings, ``(numerator, denominator)`` rationals, ints), which is what the
viewer's metadata panel reads.
"""

from __future__ import annotations

import warnings
from typing import Any

from PIL import Image, TiffImagePlugin

EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
MAX_BLOCK = 1 << 20  # a JPEG carries at most 64 kB of EXIF per segment; more is not a photo's

# "Tag data larger than file. Skipping tag": skipping is what we want, said once per tag, raw.
# A process-wide filter, as ``catch_warnings`` is not thread-safe (the viewer reads on workers).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


def _piexif_shape(value: Any) -> Any:
    """One Pillow tag value in piexif's shape."""
    if isinstance(value, TiffImagePlugin.IFDRational):
        return (int(value.numerator), int(value.denominator))
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, tuple):
        return tuple(_piexif_shape(v) for v in value)
    return value


def _plain(ifd: Any) -> dict[int, Any]:
    return {int(tag): _piexif_shape(value) for tag, value in dict(ifd).items() if not isinstance(value, dict)}


def exif_ifds(block: bytes | None) -> dict[str, dict[int, Any]]:
    """The "0th", "Exif", "GPS" and "Interop" IFDs of a raw EXIF block (``Exif\\0\\0`` optional),
    tag number -> value as piexif gives it; empty for none, or for a block that cannot be read.
    Damaged tags are skipped, never allocated: the work is bounded by the block's length."""
    if not block or len(block) > MAX_BLOCK:
        return {}
    parsed = Image.Exif()
    try:
        parsed.load(block)
        main = _plain(parsed)
        ifds = {
            "0th": {tag: value for tag, value in main.items() if tag not in (EXIF_IFD, GPS_IFD)},
            "Exif": {tag: value for tag, value in _plain(parsed.get_ifd(EXIF_IFD)).items() if tag != INTEROP_IFD},
            "GPS": _plain(parsed.get_ifd(GPS_IFD)),
            "Interop": _plain(parsed.get_ifd(INTEROP_IFD)),
        }
    except Exception:  # noqa: BLE001 -- any failure of a damaged block means "no EXIF to show"
        return {}
    return {name: tags for name, tags in ifds.items() if tags}
