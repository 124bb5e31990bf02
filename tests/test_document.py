"""What the viewer opens: HyperThumbnails with their original's size, anything else as is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import piexif
import pytest
from codec_fixtures import make_weights
from PIL import Image

from app.codec.api import Codec
from app.codec.errors import ImageLoadError, NotHyperThumbnailError
from app.codec.files import xmp
from app.codec.files.document import open_image
from app.codec.files.marker import FORMAT_VERSION, Marker, tables_digest
from app.codec.files.reader import libjpeg_rgb, read_thumbnail
from app.codec.files.writer import write_hyperthumbnail
from app.synthetic import photo_like

LUMA = [8] * 64
CHROMA = [12] * 64


def _marker() -> Marker:
    return Marker(width=1001, height=667, scale=4, model_id="ht-test", weights_sha256="0" * 64)


def _hyperthumbnail(path: Path) -> np.ndarray:
    thumb = np.random.default_rng(0).integers(0, 256, (167, 251, 3), dtype=np.uint8)
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 8}})
    write_hyperthumbnail(path, thumb, LUMA, CHROMA, _marker(), source_exif=exif)
    return thumb


def test_open_hyperthumbnail(tmp_path: Path) -> None:
    path = tmp_path / "h.jpg"
    _hyperthumbnail(path)
    doc = open_image(path)
    assert doc.is_hyperthumbnail and doc.marker == dataclasses.replace(
        _marker(), tables_sha256=tables_digest(LUMA, CHROMA)
    )
    assert doc.full_size == (1001, 667)
    assert doc.preview.shape == (167, 251, 3)
    assert np.array_equal(doc.preview, read_thumbnail(path).rgb)
    assert doc.orientation == 8
    assert doc.file_size == path.stat().st_size
    assert doc.bits_per_pixel == pytest.approx(path.stat().st_size * 8 / (1001 * 667))


def test_open_plain_png(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.new("RGBA", (30, 20), (0, 0, 255, 255)).save(path)
    doc = open_image(path)
    assert not doc.is_hyperthumbnail and doc.marker is None and doc.bits_per_pixel is None
    assert doc.full_size == (30, 20) and doc.preview.shape == (20, 30, 3)
    assert doc.orientation == 1 and doc.notes  # RGBA was flattened


def test_newer_version_opens_as_plain_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "new.jpg"
    _hyperthumbnail(path)
    im = Image.open(path)
    props = {**xmp.read_properties(im.info["xmp"]), "Version": str(FORMAT_VERSION + 1)}
    Image.fromarray(np.asarray(im)).save(path, "JPEG", subsampling=0, xmp=xmp.build_packet(props)[0])
    doc = open_image(path)
    assert not doc.is_hyperthumbnail
    assert doc.full_size == (251, 167)
    assert any("newer" in n for n in doc.notes)


def test_bad_input_raises_image_load_error(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError):
        open_image(tmp_path / "missing.png")
    text = tmp_path / "t.txt"
    text.write_text("nope")
    with pytest.raises(ImageLoadError):
        open_image(text)


def test_hyperthumbnail_document_keeps_its_decoded_thumbnail_for_reconstruction(tmp_path):
    make_weights(tmp_path / "w")
    Image.fromarray(photo_like(90, 70, seed=1)).save(tmp_path / "p.png")
    codec = Codec(tmp_path / "w", "cpu")
    codec.encode_file(tmp_path / "p.png", tmp_path / "t.jpg")
    doc = open_image(tmp_path / "t.jpg")
    assert doc.thumbnail is not None and doc.thumbnail.ycbcr.shape == (18, 23, 3)
    from_doc = codec.reconstructor(doc).decode()
    from_path = codec.reconstructor(tmp_path / "t.jpg").decode()
    assert from_doc.shape == (70, 90, 3) and np.array_equal(from_doc, from_path)
    with pytest.raises(NotHyperThumbnailError):
        codec.reconstructor(open_image(tmp_path / "p.png"))


@pytest.mark.parametrize("quality", [5, 50, 95, 100])
def test_rgb_made_from_ycbcr_matches_libjpegs_own_rgb_decode(tmp_path, quality):
    """The preview is made from the decoder's YCbCr samples: it must be the RGB every other
    application shows, bit for bit (saturated colours and every Y/Cb/Cr extreme included)."""
    rng = np.random.default_rng(quality)
    pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    pixels[:32] = photo_like(128, 32, seed=quality)
    pixels[32:48, :, :] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]] * 32
    path = tmp_path / "h.jpg"
    write_hyperthumbnail(path, pixels, LUMA, CHROMA, Marker(width=512, height=384, scale=4,
                         model_id="ht-test", weights_sha256="0" * 64))  # fmt: skip
    Image.open(path).save(tmp_path / "q.jpg", quality=quality, subsampling=0)
    for file in (path, tmp_path / "q.jpg"):
        with Image.open(file) as im:
            im.draft("YCbCr", im.size)
            ycbcr = np.asarray(im)
        with Image.open(file) as im:
            expected = np.asarray(im.convert("RGB"))
        assert np.array_equal(libjpeg_rgb(ycbcr), expected)
    assert np.array_equal(open_image(path).preview, np.asarray(Image.open(path).convert("RGB")))


def test_an_open_parses_and_decodes_the_file_once(tmp_path, monkeypatch):
    path = tmp_path / "h.jpg"
    _hyperthumbnail(path)
    opened, decoded = [], []
    real_open, real_load = Image.open, Image.Image.load
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.mode) or real_load(self))
    doc = open_image(path)
    assert doc.thumbnail is not None and doc.thumbnail.ycbcr.shape == doc.preview.shape
    assert len(opened) == 1 and decoded.count("YCbCr") >= 1 and "RGB" not in decoded
    opened.clear(), decoded.clear()
    png = tmp_path / "p.png"
    Image.fromarray(photo_like(60, 40)).save(png)
    open_image(png)
    assert len(opened) == 1


@pytest.mark.parametrize("kind", ["png-1bit", "png-rgb", "jpeg"])
def test_a_plain_image_over_the_display_budget_opens_as_a_bounded_preview(tmp_path, monkeypatch, kind):
    """Issue 23: a 46 kB 15000x15000 1-bit PNG took the viewer to 3.9 GB. Over the display budget a
    plain image is decoded reduced by a whole factor (a JPEG in libjpeg's IDCT), its real size kept,
    and the view scales the preview up to it like a HyperThumbnail's."""
    import app.codec.files.document as document

    monkeypatch.setattr(document, "MAX_DISPLAY_PIXELS", 40_000)
    path = tmp_path / ("big.jpg" if kind == "jpeg" else "big.png")
    rgb = photo_like(640, 480, seed=2)
    if kind == "png-1bit":
        Image.fromarray(rgb).convert("1").save(path)
    else:
        Image.fromarray(rgb).save(path, quality=95)
    doc = open_image(path)
    height, width = doc.preview.shape[:2]
    assert doc.full_size == (640, 480) and width * height <= 40_000
    factor = 4 if kind == "jpeg" else 3  # ceil(sqrt(307200 / 40000)) = 3; libjpeg scales by 1/4 at most that
    assert (width, height) == (-(-640 // factor), -(-480 // factor))
    assert any("display budget" in note for note in doc.notes)
    source = Image.fromarray(rgb).convert("1").convert("L") if kind == "png-1bit" else Image.open(path)
    small = np.asarray(source.convert("RGB").reduce(factor), np.float64)
    assert np.abs(doc.preview.astype(np.float64) - small).mean() < 6  # the same picture, averaged down
    monkeypatch.setattr(document, "MAX_DISPLAY_PIXELS", 10**9)
    assert open_image(path).preview.shape[:2] == (480, 640)  # within the budget: every pixel
