"""A big PNG or striped TIFF decoded a band of rows at a time (``png_bands``, ``tiff_bands``): the
same pixels as Pillow's whole decode reduced, for every PNG filter and colour type and every TIFF
compression Pillow writes, without ever holding the whole image."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.codec.files import png_bands, tiff_bands
from app.codec.files.imageio import decoded_reduced, loaded_from, open_pil, reduced

COLOURS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _paeth(a, b, c):
    p = a.astype(np.int16) + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def filtered_rows(pixels: np.ndarray, channels: int, rng) -> bytes:
    """Every row filtered with a random one of PNG's five filters (numpy, from the spec), so the
    decoder meets each filter at each band's first row."""
    height = pixels.shape[0]
    rows = pixels.reshape(height, -1)
    out = bytearray()
    previous = np.zeros_like(rows[0])
    for y in range(height):
        row = rows[y]
        left = np.concatenate([np.zeros(channels, np.uint8), row[:-channels]])
        upleft = np.concatenate([np.zeros(channels, np.uint8), previous[:-channels]])
        kind = int(rng.integers(0, 5))
        if kind == 0:
            data = row
        elif kind == 1:
            data = row - left
        elif kind == 2:
            data = row - previous
        elif kind == 3:
            data = row - ((left.astype(np.uint16) + previous) // 2).astype(np.uint8)
        else:
            data = row - _paeth(left, previous, upleft)
        out += bytes([kind]) + data.astype(np.uint8).tobytes()
        previous = row
    return bytes(out)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width, height, colour, *, seed=0, idat_size=8192, extra_before=b"", extra_after=b"", interlace=0):
    rng = np.random.default_rng(seed)
    channels = COLOURS[colour]
    smooth = (np.add.outer(np.arange(height), np.arange(width)) * 3 % 256).astype(np.uint8)
    pixels = np.stack([smooth + rng.integers(0, 40, (height, width), dtype=np.uint8) * c for c in range(channels)], -1)
    if colour == 3:
        pixels = (pixels % 16).astype(np.uint8)
    raw = zlib.compress(filtered_rows(pixels, channels, rng), 6)
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, interlace)
    parts = [png_bands.SIGNATURE, chunk(b"IHDR", header), extra_before]
    if colour == 3:
        palette = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 37) % 256))
        parts += [chunk(b"PLTE", palette), chunk(b"tRNS", bytes(range(0, 256, 16)))]
    parts += [chunk(b"IDAT", raw[i : i + idat_size]) for i in range(0, len(raw), idat_size)]
    parts += [extra_after, chunk(b"IEND", b"")]
    return b"".join(parts)


@pytest.fixture
def small_bands(monkeypatch):
    monkeypatch.setattr(png_bands, "BAND_BYTES", 5000)  # many bands even for a small test image


@pytest.mark.parametrize("colour", sorted(COLOURS))
@pytest.mark.parametrize("factor", [2, 3])
def test_banded_decode_is_the_whole_decode_reduced(small_bands, colour, factor):
    data = make_png(301, 203, colour, seed=colour)
    whole = reduced(Image.open(io.BytesIO(data)), factor)
    banded = png_bands.decode_reduced(Image.open(io.BytesIO(data)), factor, reduced)
    assert banded is not None and banded.size == whole.size == (-(-301 // factor), -(-203 // factor))
    assert banded.mode == whole.mode
    assert np.array_equal(np.asarray(banded), np.asarray(whole))


def test_one_idat_holding_everything_is_inflated_a_piece_at_a_time(small_bands, monkeypatch):
    monkeypatch.setattr(png_bands, "READ_CHUNK", 1000)
    data = make_png(257, 130, 2, idat_size=10**9)
    banded = png_bands.decode_reduced(Image.open(io.BytesIO(data)), 2, reduced)
    assert np.array_equal(np.asarray(banded), np.asarray(reduced(Image.open(io.BytesIO(data)), 2)))


def test_exif_and_xmp_stored_after_the_pixels_are_kept():
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    after = chunk(b"eXIf", exif.tobytes()[6:]) + chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    data = make_png(120, 90, 2, extra_after=after)
    banded = png_bands.decode_reduced(Image.open(io.BytesIO(data)), 2, reduced)
    assert banded.info["xmp"] == xmp and banded.getexif()[0x010F] == "Camera Maker"
    whole = Image.open(io.BytesIO(data))
    whole.load()
    assert banded.info["exif"] == whole.info["exif"]


@pytest.mark.parametrize(
    "kind",
    ["16-bit", "interlaced", "truncated", "garbled", "1-bit"],
)
def test_what_it_cannot_do_exactly_is_left_to_the_whole_decode(kind, tmp_path):
    if kind == "16-bit":
        image = Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        data = buffer.getvalue()
    elif kind == "interlaced":
        data = make_png(64, 48, 2, interlace=1)  # the header says Adam7 (the rows are not: never decoded here)
    elif kind == "1-bit":
        buffer = io.BytesIO()
        Image.new("1", (64, 48), 1).save(buffer, "PNG")
        data = buffer.getvalue()
    else:
        data = make_png(200, 150, 2, idat_size=500)
        data = data[: len(data) // 2] if kind == "truncated" else data[:300] + b"\xff" * 400 + data[700:]
    assert png_bands.decode_reduced(Image.open(io.BytesIO(data)), 2, reduced) is None
    path = tmp_path / "x.png"
    path.write_bytes(data)
    if kind in ("16-bit", "1-bit"):
        with open_pil(path) as im:
            pixels, truncated = decoded_reduced(im, "x.png", 2)
        assert not truncated and pixels.size == (32, 24)


def test_a_big_png_opens_reduced_within_a_fraction_of_its_whole_size(tmp_path):
    """The viewer's open of a PNG over the display budget: the band decoder, and the note."""
    data = make_png(1200, 800, 2, idat_size=65536)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with open_pil(path) as im:
        loaded = loaded_from(im, "big.png", display_pixels=300_000)
    assert loaded.rgb.shape == (400, 600, 3) and loaded.full_size == (1200, 800)  # factor 2 -> 2x2 boxes
    whole = np.asarray(reduced(Image.open(path), 2))
    assert np.array_equal(loaded.rgb, whole) and loaded.source_format == "PNG"
    assert any("shown at 600x400" in note for note in loaded.notes)


def tall_tiff(path, mode: str, compression: str | None):
    rng = np.random.default_rng(7)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (1500, 203)).astype(np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (1500, 203, 4)).astype(np.uint8)).convert(mode)
    image.save(path, **({"compression": compression} if compression else {}))
    return path


@pytest.mark.parametrize("compression", [None, "tiff_lzw", "tiff_deflate", "packbits", "jpeg"])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "I;16", "1"])
def test_banded_tiff_is_the_whole_decode_reduced(tmp_path, monkeypatch, compression, mode):
    if compression == "jpeg" and mode not in ("RGB", "L"):
        pytest.skip("JPEG-in-TIFF holds 8-bit RGB or grey only")
    if mode == "1" and compression is not None:
        pytest.skip("Pillow writes compressed 1-bit TIFFs in one strip")
    monkeypatch.setattr(tiff_bands, "BAND_BYTES", 3000)  # many bands of several strips each
    path = tall_tiff(tmp_path / "t.tif", mode, compression)
    assert Image.open(path).tag_v2[278] < 500 or compression is None  # several strips, or raw rows
    whole = reduced(Image.open(path), 3)
    banded = tiff_bands.decode_reduced(Image.open(path), 3, reduced)
    assert banded is not None and banded.size == whole.size == (68, 500) and banded.mode == whole.mode
    assert np.array_equal(np.asarray(banded), np.asarray(whole))


def test_a_tiff_it_cannot_band_is_left_to_the_whole_decode(tmp_path):
    single = tall_tiff(tmp_path / "one-strip.tif", "1", "tiff_deflate")  # compressed in one strip
    assert Image.open(single).tag_v2[278] == 1500
    assert tiff_bands.decode_reduced(Image.open(single), 3, reduced) is None
    garbled = tmp_path / "garbled.tif"
    data = tall_tiff(tmp_path / "t.tif", "RGB", "tiff_deflate").read_bytes()
    third = len(data) // 3
    garbled.write_bytes(data[:third] + b"\x55" * third + data[2 * third :])  # strips garbled, the directory kept
    assert tiff_bands.decode_reduced(Image.open(garbled), 3, reduced) is None
    with open_pil(single) as im:
        pixels, _ = decoded_reduced(im, "one-strip.tif", 3)
    assert pixels.size == (68, 500)
