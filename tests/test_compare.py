"""``hyperthumb compare``: the context crop's geometry, and the command end to end on a small
synthetic photo."""

import numpy as np
import pytest
from codec_fixtures import make_weights, make_weights_with_jpeg_sr
from PIL import Image, ImageOps

from app.cli import main
from app.codec.files.tiling import Box
from app.evaluation.compare import GAP, MARGIN, context_box, enlarge
from app.synthetic import photo_like

REGION = (40, 40, 64, 48)
ZOOM = 2


@pytest.fixture
def weights(tmp_path):
    return make_weights_with_jpeg_sr(tmp_path / "w")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo_like(256, 192, seed=0)).save(path)
    return path


def _compare(weights, photo, out, region="40,40,64,48", *extra) -> int:
    argv = ["--weights", str(weights), "compare", str(photo), "--region", region]
    return main([*argv, "--zoom", str(ZOOM), "--out", str(out), *extra])


def test_context_box_is_aligned_and_holds_region_and_margin():
    box = context_box(Box(40, 88, 40, 104), 256, 192)
    assert box == Box(0, 160, 0, 192)  # 104 + 64 = 168 -> 192; 88 + 64 = 152 -> 160
    inner = context_box(Box(300, 310, 500, 530), 1000, 333)
    assert inner == Box(224, 333, 416, 608)  # the image's edge ends it at 333
    assert all(v % 32 == 0 for v in (inner.y0, inner.x0, inner.x1))


def test_compare_end_to_end(tmp_path, weights, photo, capsys):
    out = tmp_path / "compare.png"
    code = _compare(weights, photo, out)
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    keys = [line.split()[0] for line in stdout.splitlines()[:5]]
    assert keys == [
        "original",
        "bicubic+jpeg",
        "jpeg+sr",
        "hyperthumbnail",
        "thumbnail",
    ]
    assert "bpp" in stdout and "dB" in stdout and f"wrote {out}" in stdout

    with Image.open(out) as im:
        assert im.format == "PNG"
        figure = np.asarray(im.convert("RGB"))
    x, y, w, h = REGION
    panel_w, panel_h = w * ZOOM, h * ZOOM
    height, width = figure.shape[:2]
    # Five panels and their gaps; a caption wider than its panel may widen a column a little.
    assert 5 * panel_w + 4 * GAP + 2 * MARGIN <= width <= 5 * panel_w + 200
    assert height >= panel_h + 2 * MARGIN

    original = np.asarray(Image.open(photo).convert("RGB"))[y : y + h, x : x + w]
    expected = enlarge(original, ZOOM)
    first = figure[MARGIN : MARGIN + panel_h, MARGIN : MARGIN + panel_w]
    for row, col in [(0, 0), (1, 1), (17, 33), (panel_h - 1, panel_w - 1)]:
        assert (first[row, col] == original[row // ZOOM, col // ZOOM]).all()
    assert np.array_equal(first, expected)


def test_compare_without_a_jpeg_sr_model_omits_that_panel(tmp_path, photo, capsys):
    weights = tmp_path / "plain"
    make_weights(weights)
    code = _compare(weights, photo, tmp_path / "c.png", "0,0,32,32", "--rate", "LOW")
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "jpeg+sr" not in stdout and "no jpeg+sr panel" in stderr
    assert len(stdout.splitlines()) == 5  # four panels and the "wrote" line


@pytest.mark.parametrize(
    ("region", "message"),
    [
        ("200,100,64,48", "outside the 256x192 image"),
        ("40,40,64", "four integers"),
        ("40,40,0,48", "w,h > 0"),
    ],
)
def test_compare_bad_regions_are_one_line_errors(tmp_path, weights, photo, capsys, region, message):
    out = tmp_path / "c.png"
    code = _compare(weights, photo, out, region)
    _, stderr = capsys.readouterr()
    assert code == 1 and message in stderr and stderr.count("\n") == 1
    assert not out.exists()


def test_compare_unreadable_photo_and_missing_weights(tmp_path, weights, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    assert _compare(weights, broken, tmp_path / "c.png") == 1
    _, stderr = capsys.readouterr()
    assert stderr.count("\n") == 1 and "broken.jpg" in stderr
    assert _compare(tmp_path / "none", broken, tmp_path / "c.png") == 1
    _, stderr = capsys.readouterr()
    assert stderr.count("\n") == 1 and "No trained weights" in stderr


def test_compare_region_is_in_displayed_pixels(tmp_path, weights, capsys):
    """A photo stored on its side (EXIF orientation 6): the region and panels are as shown."""
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(photo_like(256, 192, seed=3)).save(path, exif=exif, quality=95)
    out = tmp_path / "c.png"
    assert _compare(weights, path, out, "30,150,40,50") == 0, capsys.readouterr().err
    with Image.open(path) as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert shown.shape == (256, 192, 3)
    figure = np.asarray(Image.open(out).convert("RGB"))
    first = figure[MARGIN : MARGIN + 50 * ZOOM, MARGIN : MARGIN + 40 * ZOOM]
    assert np.array_equal(first, enlarge(shown[150:200, 30:70], ZOOM))
