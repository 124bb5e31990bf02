"""How much work any input may ask for: one pixel budget for every image the codec touches.

A 1 kB file can claim a 100000 x 100000 image in its header (a JPEG's SOF, a PNG's IHDR, a
HyperThumbnail marker's full size), and decoding it would allocate tens of gigabytes before
anything else goes wrong. So every size a file claims is checked here, from the header alone,
before a single pixel buffer exists: the photo an encode loads, the thumbnail a decode reads,
the reconstruction a marker asks for, and whatever the viewer opens.

The limit is ``DEFAULT_MAX_PIXELS`` (256 megapixels: a 16000 x 16000 photo, above any camera's
sensor), or ``HYPERTHUMB_MAX_PIXELS`` (a whole number of pixels) where set. It is read at every
check, so a test or a long-running viewer sees a changed value at once.

A JPEG's structure is bounded too, before Pillow parses it (``check_jpeg_layout``, on the
summary ``jpeg_segments.layout`` makes in one linear pass), so that a file of any content opens
in time and memory proportional to its size:

- its frame against its own length: with Huffman coding (every baseline or progressive JPEG)
  each 8x8 block of the first component costs at least one bit, so a file cannot hold more
  blocks than it has bits; arithmetic coding can code a flat block in far less (cjpeg
  -arithmetic wrote a flat 4000x4000 grey image in 125 bytes: 2,000 blocks per byte), so such a
  frame may have at most ``ARITHMETIC_BLOCKS_PER_BYTE`` blocks per byte. A tiny file claiming a
  large frame is damaged or hostile, and libjpeg would otherwise "decode" it by filling every
  missing block with grey (a 170-byte arithmetic frame claiming 16000x16000 took 2.5 GB);
- its scans: each is a pass of libjpeg over every block, so their number is bounded
  (``MAX_SCANS``; encoders write 1 to about 12) and so is scans x blocks per byte of file
  (50,000 empty scans in 700 kB kept a decode busy for a minute);
- repeated EXIF segments (Pillow joins them by repeated concatenation: 1,000 of them took 77 s;
  a photo has one), and segments in all (``MAX_SEGMENTS``: a 64 MiB payload needs 1,025).
"""

from __future__ import annotations

import os

from app.codec.errors import CodecError, ImageLoadError, ImageTooLargeError, shorten
from app.codec.files import jpeg_segments

DEFAULT_MAX_PIXELS = 256_000_000
ENV_MAX_PIXELS = "HYPERTHUMB_MAX_PIXELS"
ARITHMETIC_BLOCKS_PER_BYTE = 4096  # twice the flattest image measured (see above)
MAX_SCANS = 256
SCAN_WORK_PER_BYTE = 256  # scans x blocks per byte: a flat 2048x2048 progressive JPEG needs 40, a photo ~10
SCAN_WORK_FREE = 1 << 20  # ... and any small image's scans are cheap whatever their number
MAX_EXIF_SEGMENTS = 8
MAX_SEGMENTS = 8192


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


def check_jpeg_layout(layout: jpeg_segments.Layout, file_size: int, what: str) -> None:
    """Refuse, before Pillow parses it, a JPEG whose structure asks for more work than any real
    file of its size (see above); ``ImageLoadError`` with a sentence saying what is wrong."""
    if layout.problem and layout.problem.startswith("more than"):
        raise ImageLoadError(f"{what} has {layout.problem} (at most {MAX_SEGMENTS}): the file is damaged or hostile")
    if layout.exif_segments > MAX_EXIF_SEGMENTS:
        raise ImageLoadError(
            f"{what} has {layout.exif_segments} EXIF segments (a photo has one; at most {MAX_EXIF_SEGMENTS} are "
            "read): the file is damaged or hostile"
        )
    if layout.frame is None or not layout.width or not layout.height:
        return  # no frame header: the decoder says what is wrong
    check_pixel_budget(layout.width, layout.height, what)
    blocks = layout.blocks_per_component
    arithmetic = layout.frame in jpeg_segments.ARITHMETIC_SOF
    capacity = file_size * (ARITHMETIC_BLOCKS_PER_BYTE if arithmetic else 8)
    if blocks > capacity:
        coding = "an arithmetic-coded" if arithmetic else "any"
        raise ImageLoadError(
            f"{what} claims {layout.width}x{layout.height} pixels but is only {file_size} bytes, too short for "
            f"{coding} JPEG that size (at least {-(-blocks // (capacity // file_size))} bytes): the file is damaged"
        )
    scans = len(layout.scans)
    if scans > MAX_SCANS or (scans * layout.blocks > SCAN_WORK_FREE + SCAN_WORK_PER_BYTE * file_size):
        raise ImageLoadError(
            f"{what} has {scans} scans for its {file_size} bytes (encoders write 1 to about 12; at most "
            f"{MAX_SCANS}, and fewer for a small file): the file is damaged or hostile"
        )
