"""How much work any input may ask for: one pixel budget for every image the codec touches.

A 1 kB file can claim a 100000 x 100000 image in its header (a JPEG's SOF, a PNG's IHDR, a
HyperThumbnail marker's full size), and decoding it would allocate tens of gigabytes before
anything else goes wrong. So every size a file claims is checked here, from the header alone,
before a single pixel buffer exists: the photo an encode loads, the thumbnail a decode reads,
the reconstruction a marker asks for, and whatever the viewer opens.

The limit is ``DEFAULT_MAX_PIXELS`` (256 megapixels: a 16000 x 16000 photo, above any camera's
sensor), or ``HYPERTHUMB_MAX_PIXELS`` (a whole number of pixels) where set. It is read at every
check, so a test or a long-running viewer sees a changed value at once.

A JPEG is also checked against its own length: with Huffman coding (every baseline or
progressive JPEG) each 8x8 block of the first component costs at least one bit, so a file
cannot hold more blocks than it has bits. A tiny file claiming a large frame is damaged or
hostile, and libjpeg would otherwise "decode" it by filling every missing block with grey.
"""

from __future__ import annotations

import os

from app.codec.errors import CodecError, ImageLoadError, ImageTooLargeError, shorten

DEFAULT_MAX_PIXELS = 256_000_000
ENV_MAX_PIXELS = "HYPERTHUMB_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel budget now: ``HYPERTHUMB_MAX_PIXELS`` if set, else 256 megapixels."""
    text = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise CodecError(f"{ENV_MAX_PIXELS} must be a whole number of pixels, such as 256000000, not {shorten(text)!r}")
    return value


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.2f}".rstrip("0").rstrip(".")


def check_pixel_budget(width: int, height: int, what: str) -> None:
    """Refuse, before any allocation, an image of ``width`` x ``height`` over the budget.

    ``what`` names it for the message ("photo.png", "the reconstruction of ht.jpg"). Raises
    ``ImageTooLargeError`` (an ``ImageLoadError``); sizes below 1 are the caller's to refuse.
    """
    limit = max_pixels()
    if width * height <= limit:
        return
    size = f"{shorten(width, 12)}x{shorten(height, 12)}"
    claimed = width * height
    amount = f"{_megapixels(claimed)} megapixels" if claimed < 10**15 else "far too many pixels"
    raise ImageTooLargeError(
        f"{what} is {size} ({amount}), over the limit of {_megapixels(limit)} megapixels "
        f"(set {ENV_MAX_PIXELS} to allow more)"
    )


def check_jpeg_length(width: int, height: int, file_size: int, what: str) -> None:
    """Refuse a Huffman-coded JPEG whose frame needs more bits than the file has (see above)."""
    blocks = -(-width // 8) * -(-height // 8)
    if blocks <= 8 * file_size:
        return
    raise ImageLoadError(
        f"{what} claims {width}x{height} pixels but is only {file_size} bytes, too short for any JPEG "
        f"that size (at least {-(-blocks // 8)} bytes): the file is damaged"
    )
