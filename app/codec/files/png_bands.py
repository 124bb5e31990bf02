"""A big PNG decoded reduced, a band of rows at a time, never whole.

Why: Pillow decodes a PNG whole (4 bytes a pixel for RGB), so a 16000x16000 photo took the
viewer over 1 GB before it could be reduced to its display budget, twice over when the strip
made its picture at the same time. JPEG has libjpeg's DCT scaling for this; PNG has nothing.

How, without a PNG decoder of our own: PNG's filters reach back one row only. The image data is
inflated as a stream (zlib), cut into bands of whole scanlines, and each band is handed to
Pillow as a small PNG of its own: the same header with the band's height, and before the band's
first row the previous band's last row, unfiltered (filter type 0), which that row's filter
refers to. Pillow decodes the band exactly as it would have inside the whole image; the band is
reduced and pasted, then dropped. Peak memory is one band plus the reduced image.

Only what this can do exactly: non-interlaced 8-bit greyscale, RGB, palette, grey+alpha and RGBA
(the modes whose raw bytes Pillow writes back as the PNG stored them). Anything else, or any
problem in the data (a truncated or damaged stream), answers None and the caller decodes the
image the usual way, with its usual messages.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
BAND_BYTES = 16 * 2**20  # raw bytes per band: ~16 MB whatever the width
READ_CHUNK = 1 << 20
# colour type -> (Pillow mode, channels) for 8-bit samples
_MODES = {0: ("L", 1), 2: ("RGB", 3), 3: ("P", 1), 4: ("LA", 2), 6: ("RGBA", 4)}
_KEEP = {b"PLTE", b"tRNS"}  # header chunks a band needs to decode the same colours


class _Unsupported(Exception):
    pass


def decode_reduced(im: Image.Image, factor: int, reduce) -> Image.Image | None:
    """``im`` (a PNG opened by Pillow, pixels not read) decoded band by band, each band made
    ``reduce(band, factor)``, pasted into one image; None where this cannot be done exactly."""
    fp = getattr(im, "fp", None)
    if im.format != "PNG" or fp is None or factor < 2 or getattr(im, "n_frames", 1) > 1:
        return None
    try:
        fp.seek(0)
        out, trailing = _decode(fp, factor, reduce)
    except (_Unsupported, zlib.error, struct.error, OSError, ValueError, SyntaxError):
        return None
    out.info = {**im.info, **trailing}  # what Pillow's whole decode would have found after the pixels
    return out


def _chunks(fp):
    """(type, data) of each chunk after the signature, up to IEND."""
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise _Unsupported("the data ends before IEND")
        length, kind = struct.unpack(">I4s", head)
        data = fp.read(length)
        if len(data) < length:
            raise _Unsupported("the data ends inside a chunk")
        fp.read(4)  # CRC: Pillow does not check it for image data either
        yield kind, data
        if kind == b"IEND":
            return


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _decode(fp, factor: int, reduce) -> tuple[Image.Image, dict]:
    if fp.read(8) != SIGNATURE:
        raise _Unsupported("not a PNG")
    chunks = _chunks(fp)
    kind, ihdr = next(chunks)
    if kind != b"IHDR" or len(ihdr) != 13:
        raise _Unsupported("no header")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if depth != 8 or interlace or colour not in _MODES:
        raise _Unsupported("not an 8-bit, non-interlaced PNG")
    mode, channels = _MODES[colour]
    stride = width * channels
    kept: list[bytes] = []
    first = None
    for kind, data in chunks:
        if kind == b"IDAT":
            first = data
            break
        if kind in _KEEP:
            kept.append(_chunk(kind, data))
    if first is None:
        raise _Unsupported("no image data")
    rows_per_band = max(factor, BAND_BYTES // (stride + 1) // factor * factor)
    out_width, out_height = -(-width // factor), -(-height // factor)
    out = None
    inflate = zlib.decompressobj()
    pending = bytearray()
    compressed = first  # not yet inflated; inflated at most READ_CHUNK at a time (one IDAT may hold it all)
    previous = None  # the last row of the band before, unfiltered
    after: list[tuple[bytes, bytes]] = []  # the first chunk after the image data
    stream = _image_data(chunks, after)
    top = 0
    while top < height:
        rows = min(rows_per_band, height - top)
        need = rows * (stride + 1)
        while len(pending) < need:
            if not compressed:
                compressed = next(stream, None)
                if compressed is None or inflate.eof:
                    raise _Unsupported("the image data ends early")
            pending += inflate.decompress(compressed, READ_CHUNK)
            compressed = inflate.unconsumed_tail
        band_data = bytes(pending[:need])
        del pending[:need]
        band = _band_image(ihdr, kept, band_data, previous, width, rows, stride)
        previous = band.crop((0, rows - 1, width, rows)).tobytes("raw", mode)
        small = reduce(band, factor)
        if out is None:
            out = Image.new(small.mode, (out_width, out_height))
        out.paste(small, (0, top // factor))
        top += rows
    for _ in stream:  # IDAT chunks the rows did not need (Pillow ignores them too)
        pass
    return out, _trailing_info(after, chunks)


def _image_data(chunks, after: list):
    """The data of the IDAT chunks that follow the first (consecutive, as PNG requires); the
    chunk that ends them is put in ``after``."""
    for kind, data in chunks:
        if kind != b"IDAT":
            after.append((kind, data))
            return
        yield data


def _trailing_info(after: list, chunks) -> dict:
    """EXIF and XMP that a PNG stores after its pixels, as Pillow's ``info`` names them (Pillow
    reads them when it finishes a whole decode); whatever cannot be read is left out."""
    info: dict = {}
    try:
        for kind, data in [*after, *chunks]:
            if kind == b"eXIf":
                info["exif"] = b"Exif\x00\x00" + data
            elif kind == b"iTXt" and data.startswith(b"XML:com.adobe.xmp\x00"):
                flag, text = data[18], data[20:].split(b"\x00", 2)[2]
                info["xmp"] = zlib.decompress(text) if flag else text
    except (_Unsupported, zlib.error, IndexError, struct.error, OSError):
        pass
    return info


def _band_image(ihdr: bytes, kept: list[bytes], band: bytes, previous: bytes | None, width, rows, stride):
    """One band as Pillow decodes it: a PNG of ``rows`` rows (+ the previous row, unfiltered)."""
    if previous is not None:
        band = b"\x00" + previous + band
    height = rows + (previous is not None)
    header = struct.pack(">II", width, height) + ihdr[8:]
    png = b"".join(
        [SIGNATURE, _chunk(b"IHDR", header), *kept, _chunk(b"IDAT", zlib.compress(band, 0)), _chunk(b"IEND", b"")]
    )
    image = Image.open(io.BytesIO(png))
    image.load()
    if previous is not None:
        image = image.crop((0, 1, width, height))
    return image
