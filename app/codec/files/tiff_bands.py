"""A big striped TIFF decoded reduced, a band of strips at a time, never whole.

Why: Pillow (libtiff) decodes a TIFF whole, 4 bytes a pixel for RGB, so a 16000x16000
panorama took the viewer to 1.7 GB before it could be reduced to its display budget.

How, without a TIFF decoder of our own: a striped TIFF's strips are compressed independently
(a predictor works within a row). The strips of one band are copied, still compressed, into a
small TIFF of their own, with the source's pixel-format tags and the band's height, and Pillow
decodes that exactly as it would have decoded those rows inside the whole image; the band is
reduced and pasted, then dropped (an uncompressed TIFF in one strip is cut into rows). Tiled,
planar-separate, compressed single-strip or multi-page TIFFs, or any problem, answer None and
the caller decodes the image the usual way.
"""

from __future__ import annotations

import io
import math
import struct

from PIL import Image, TiffImagePlugin

BAND_BYTES = 16 * 2**20  # decoded bytes per band, about
# The tags that say how the strips' bytes become pixels: nothing else is copied into a band.
PIXEL_TAGS = (254, 256, 258, 259, 262, 266, 277, 278, 284, 317, 320, 338, 339, 347, 529, 530, 531, 532)
STRIP_OFFSETS, STRIP_COUNTS, IMAGE_LENGTH, ROWS_PER_STRIP = 273, 279, 257, 278
TILE_WIDTH, PLANAR, COMPRESSION = 322, 284, 259
LONG = 4


class _Unsupported(Exception):
    pass


def decode_reduced(im: Image.Image, factor: int, reduce) -> Image.Image | None:
    """``im`` (a TIFF opened by Pillow, pixels not read) decoded band by band, each band made
    ``reduce(band, factor)``, pasted into one image; None where this cannot be done exactly."""
    fp = getattr(im, "fp", None)
    if im.format != "TIFF" or fp is None or factor < 2 or getattr(im, "n_frames", 1) > 1:
        return None
    try:
        out = _decode(im, fp, factor, reduce)
    except (_Unsupported, OSError, ValueError, SyntaxError, struct.error, KeyError, TypeError, ZeroDivisionError):
        return None
    out.info = dict(im.info)
    return out


def _decode(im: Image.Image, fp, factor: int, reduce) -> Image.Image:
    tags = im.tag_v2
    width, height = im.size
    samples = int(tags.get(277, 1))
    if TILE_WIDTH in tags or (samples > 1 and tags.get(PLANAR, 1) != 1):
        raise _Unsupported("tiled or planar-separate")
    offsets, counts = tuple(tags.get(STRIP_OFFSETS, ())), tuple(tags.get(STRIP_COUNTS, ()))
    rows_per_strip = min(int(tags.get(ROWS_PER_STRIP, height)), height)
    per_sample = tags.get(258, 1)  # TIFF's default: 1 bit (bilevel)
    per_sample = per_sample if isinstance(per_sample, tuple) else (per_sample,)
    bits = sum(per_sample) if len(per_sample) == samples else int(per_sample[0]) * samples
    row_bytes = max(1, (width * bits + 7) // 8)  # rows start on a byte
    if tags.get(COMPRESSION, 1) == 1 and len(offsets) == 1 and counts and counts[0] >= row_bytes * height:
        # uncompressed in one strip (what Pillow writes): each row is a strip of its own
        offsets = tuple(offsets[0] + row * row_bytes for row in range(height))
        counts, rows_per_strip = (row_bytes,) * height, 1
    if not offsets or len(offsets) != len(counts) or len(offsets) != math.ceil(height / rows_per_strip):
        raise _Unsupported("strips that do not cover the image")
    step = math.lcm(rows_per_strip, factor)  # a band: whole strips, and whole boxes of the reduction
    if step >= height:
        raise _Unsupported("too few strips to band")
    band_rows = max(step, BAND_BYTES // row_bytes // step * step)
    out = None
    for top in range(0, height, band_rows):
        rows = min(band_rows, height - top)
        first, last = top // rows_per_strip, math.ceil((top + rows) / rows_per_strip)
        strips = []
        for index in range(first, last):
            fp.seek(offsets[index])
            data = fp.read(counts[index])
            if len(data) < counts[index]:
                raise _Unsupported("a strip runs past the end of the file")
            strips.append(data)
        band = Image.open(io.BytesIO(_band_tiff(tags, width, rows, rows_per_strip, strips)))
        band.load()
        if band.size != (width, rows):
            raise _Unsupported("a band decoded to another size")
        small = reduce(band, factor)
        if out is None:
            out = Image.new(small.mode, (-(-width // factor), -(-height // factor)))
        out.paste(small, (0, top // factor))
    return out


def _band_tiff(tags, width: int, rows: int, rows_per_strip: int, strips: list[bytes]) -> bytes:
    """A little-endian TIFF of ``rows`` rows made of ``strips`` (compressed as in the source)."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag in PIXEL_TAGS:
        if tag in tags:
            ifd[tag] = tags[tag]
            ifd.tagtype[tag] = tags.tagtype[tag]
    ifd[256] = width
    ifd[IMAGE_LENGTH] = rows
    ifd[ROWS_PER_STRIP] = rows_per_strip
    offsets, position = [], 0
    for strip in strips:
        offsets.append(position)  # from the end of the IFD: Pillow's ``tobytes`` adds where that is
        position += len(strip)
    ifd[STRIP_OFFSETS] = tuple(offsets)
    ifd[STRIP_COUNTS] = tuple(len(strip) for strip in strips)
    for tag in (256, IMAGE_LENGTH, ROWS_PER_STRIP, STRIP_OFFSETS, STRIP_COUNTS):
        ifd.tagtype[tag] = LONG
    header = b"II*\x00" + struct.pack("<I", 8)  # the IFD right after the header, the strips after it
    return b"".join([header, ifd.tobytes(8), *strips])
