"""Loading every pixel format Pillow reads as 8-bit RGB, and failing cleanly on bad files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image, ImageCms

from app.codec.errors import ImageLoadError
from app.codec.files.imageio import TRUNCATED_NOTE, load_image, orientation_of


def _gradient(w: int = 24, h: int = 16) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None, None]
    return np.broadcast_to((x + y) / 2, (h, w, 3)).astype(np.uint8).copy()


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_rgb_jpeg_needs_no_conversion(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.fromarray(_gradient()).save(path, quality=95)
    loaded = load_image(path)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (16, 24, 3)
    assert loaded.source_format == "JPEG" and loaded.notes == [] and loaded.orientation == 1


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1"])
def test_simple_modes_become_rgb_with_a_note(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"{mode}.png"
    Image.fromarray(_gradient()).convert(mode).save(path)
    loaded = load_image(path)
    assert loaded.rgb.shape == (16, 24, 3) and loaded.rgb.dtype == np.uint8
    assert loaded.notes


def test_greyscale_values_survive(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.fromarray(np.full((4, 4), 77, np.uint8), "L").save(path)
    assert (load_image(path).rgb == 77).all()


def test_rgba_composites_over_white(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(path)
    loaded = load_image(path)
    r, g, b = loaded.rgb[0, 0]
    assert r == 255 and abs(int(g) - 127) <= 1 and abs(int(b) - 127) <= 1
    assert any("white" in n for n in loaded.notes)


def test_palette_with_transparency_composites_over_white(tmp_path: Path) -> None:
    path = tmp_path / "t.gif"
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.save(path, transparency=0)
    loaded = load_image(path)
    assert (loaded.rgb[0, 0] == 255).all()
    assert tuple(loaded.rgb[1, 1]) == (10, 200, 30)
    assert any("white" in n for n in loaded.notes)


def test_cmyk_drops_its_icc_profile(tmp_path: Path) -> None:
    path = tmp_path / "c.jpg"
    cmyk_icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    cmyk_icc[16:20] = b"CMYK"  # only the header's colour space matters to the loader
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(path, quality=95, icc_profile=bytes(cmyk_icc))
    loaded = load_image(path)
    assert loaded.icc_profile is None
    assert any("CMYK" in n for n in loaded.notes)
    r, g, b = (int(v) for v in loaded.rgb[4, 4])
    assert r > 200 and g < 60 and b > 200  # magenta


def test_rgb_icc_profile_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "icc.png"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_gradient()).save(path, icc_profile=icc)
    assert load_image(path).icc_profile == icc


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "g16.png"
    Image.fromarray(np.array([[0, 256, 32768, 65535]], np.uint16)).save(path)
    loaded = load_image(path)
    assert loaded.rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert loaded.notes


def test_float_greyscale_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "f.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F").save(path)
    loaded = load_image(path)
    assert loaded.rgb[0, :, 0].tolist() == [0, 128, 255]
    assert loaded.notes


def test_16bit_rgb_png(tmp_path: Path) -> None:
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png16_rgb(np.array([[[65535, 256, 0x8000]]], np.uint16)))
    loaded = load_image(path)
    assert loaded.rgb[0, 0].tolist() == [255, 1, 128]
    assert loaded.notes


def test_ycbcr_mode(tmp_path: Path) -> None:
    path = tmp_path / "y.tif"
    Image.fromarray(_gradient()).convert("YCbCr").save(path)
    loaded = load_image(path)
    assert loaded.rgb.shape == (16, 24, 3)


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = load_image(path)
    assert loaded.rgb[0, 0].tolist() == [255, 0, 0]
    assert any("first of 2 frames" in n for n in loaded.notes)


def test_orientation_and_exif_are_read_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "o.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    Image.fromarray(_gradient(24, 16)).save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.orientation == 6 and loaded.exif is not None
    assert loaded.rgb.shape == (16, 24, 3)  # stored orientation


def test_orientation_of() -> None:
    assert orientation_of(None) == 1
    assert orientation_of(b"garbage") == 1
    assert orientation_of(piexif.dump({"0th": {piexif.ImageIFD.Orientation: 3}})) == 3
    assert orientation_of(piexif.dump({"0th": {piexif.ImageIFD.Orientation: 42}})) == 1


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageLoadError, match="no such file") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="directory") as info:
        load_image(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not an image\n")
    with pytest.raises(ImageLoadError, match="not an image") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty") as info:
        load_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(tmp_path: Path, fmt: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt") as info:
        load_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_for_display_a_truncated_file_shows_its_readable_part_with_a_note(tmp_path: Path, fmt: str) -> None:
    """Only with ``partial_ok`` (the viewer's open): the rows the file still holds, as they were,
    and a note; the same file is still refused without it (an encoding never takes half a photo)."""
    y, x = np.mgrid[0:96, 0:128]
    ramp = np.stack([x * 2, y * 2, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    loaded = load_image(path, partial_ok=True)
    assert loaded.notes == [TRUNCATED_NOTE] == ["the file is truncated: only the first part of the image could be read"]
    assert loaded.rgb.shape == (96, 128, 3)
    error = np.abs(loaded.rgb.astype(int) - ramp).max(axis=(1, 2))
    read = int(np.argmax(error > 12))  # the first row that is not the photo's
    assert 16 <= read < 96 and error[:read].max() <= 12  # the top part, as it was
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)
    if fmt == "PNG":  # damaged data, not a short file: still an error
        damaged = bytearray(buf.getvalue())
        start = damaged.find(b"IDAT") + 8
        damaged[start : start + 200] = b"\x55" * 200
        with pytest.raises(ImageLoadError, match="truncated or corrupt"):
            load_image(bytes(damaged), partial_ok=True)


def test_32bit_integer_greyscale(tmp_path: Path) -> None:
    wide, narrow = tmp_path / "wide.tif", tmp_path / "narrow.tif"
    Image.fromarray(np.array([[0, 300, 65535]], np.int32), "I").save(wide)
    Image.fromarray(np.array([[0, 7, 255]], np.int32), "I").save(narrow)
    assert load_image(wide).rgb[0, :, 0].tolist() == [0, 1, 255]
    assert load_image(narrow).rgb[0, :, 0].tolist() == [0, 7, 255]


# ----------------------------------------------------------------------------- metadata to carry (issue 20)


def _jfif(data: bytes, unit: int, x: int, y: int) -> bytes:
    """A Pillow JPEG with its JFIF density set by hand (Pillow writes unit 0 as 1:1 only)."""
    assert data[6:11] == b"JFIF\x00"
    return data[:13] + bytes([unit]) + struct.pack(">HH", x, y) + data[18:]


def _jpeg(**options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(_gradient()).save(out, "JPEG", **options)
    return out.getvalue()


def test_density_is_what_the_file_states() -> None:
    no_unit = piexif.dump({"0th": {piexif.ImageIFD.XResolution: (1, 1), piexif.ImageIFD.ResolutionUnit: 1}})
    no_resolution = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Acme"}})
    aspect = load_image(_jfif(_jpeg(exif=no_unit), 0, 3, 2))
    assert (aspect.dpi, aspect.aspect) == (None, (3, 2))  # an aspect ratio, never "1 dpi"
    assert load_image(_jfif(_jpeg(exif=no_resolution), 0, 1, 1)).dpi is None  # nor Pillow's invented 72
    assert load_image(_jfif(_jpeg(), 1, 300, 300)).dpi == (300, 300)
    no_jfif = _jpeg(
        exif=piexif.dump({"0th": {piexif.ImageIFD.XResolution: (240, 1), piexif.ImageIFD.ResolutionUnit: 2}})
    )
    no_jfif = no_jfif[:2] + no_jfif[2 + 2 + int.from_bytes(no_jfif[4:6], "big") :]  # the APP0 segment cut out
    assert no_jfif[2:4] == b"\xff\xe1" and load_image(no_jfif).dpi == (240, 240)


def _app13(iim: bytes) -> bytes:
    return b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iim)) + iim + b"\x00" * (len(iim) % 2)


def test_iptc_is_read_raw_from_a_jpeg_and_a_tiff(tmp_path: Path) -> None:
    iim = b"\x1c\x02\x78\x00\x05Hello\x1c\x02\x5a\x00\x06Berlin"
    segment = _app13(iim)
    loaded = load_image(_jpeg(extra=b"\xff\xed" + struct.pack(">H", len(segment) + 2) + segment))
    assert loaded.iptc == segment  # the segment's data as the file has it
    assert load_image(_jpeg()).iptc is None
    path = tmp_path / "iptc.tif"
    tags = Image.Exif()
    tags[33723] = iim
    Image.fromarray(_gradient()).save(path, exif=tags)
    assert load_image(path).iptc == segment  # a TIFF's IPTC-NAA datasets as a JPEG would hold them


def test_reducing_keeps_16_bit_grey_values_for_the_one_conversion_to_rgb():
    """``imageio.reduced`` (strip pictures, huge images) must not clip 16-bit grey to white: it
    reduces in 32-bit integers and ``to_rgb`` scales them as it scales the full image."""
    from app.codec.files.imageio import reduced, to_rgb

    ramp = Image.fromarray(np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1)))
    assert ramp.mode == "I;16"
    whole, _ = to_rgb(ramp, "ramp")
    half, _ = to_rgb(reduced(ramp, 2), "ramp")
    assert abs(float(np.asarray(half).mean()) - float(np.asarray(whole).mean())) < 2


@pytest.mark.parametrize("value", ["inf", "1e400", "-inf", "nan", "4.6", "x"])
def test_a_hostile_rating_reads_as_a_number_or_none(value):
    from app.codec.files.ratings import labels_of

    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="{value}"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    assert labels_of(packet).rating == (5 if value == "4.6" else 0)
