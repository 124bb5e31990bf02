"""``hyperthumb eval``: the metrics, Bjontegaard deltas, the baselines' pieces, and the command
end to end on two small synthetic photos."""

import csv
import itertools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from codec_fixtures import make_weights, make_weights_with_jpeg_sr
from PIL import Image

from app.cli import main
from app.codec.nets.encoder import downscale_bicubic
from app.codec.nets.tables import standard_tables
from app.evaluation import metrics, standard
from app.evaluation.bjontegaard import bd_psnr
from app.evaluation.images import centre_crop, crop_side
from app.evaluation.methods import (
    AVIF_QUALITIES,
    DEFAULT_RATES,
    FULL_IMAGE_QUALITIES,
    JXL_QUALITIES,
    THUMBNAIL_QUALITIES,
)
from app.evaluation.plot import SIZE, draw_rd_plot, linear_ticks, log_ticks
from app.synthetic import photo_like

# ----------------------------------------------------------------------------- metrics


def test_psnr_of_a_known_error():
    a = np.zeros((8, 8, 3), np.uint8)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2))  # MSE 1
    assert metrics.psnr_y(a, a + 1) == pytest.approx(10 * math.log10(255**2))  # Y moves by 1 too
    blue_only = a.copy()
    blue_only[..., 2] = 10  # luma error 0.114 * 10
    assert metrics.psnr_y(a, blue_only) == pytest.approx(10 * math.log10(255**2 / 1.14**2))


def test_ssim_of_an_image_with_itself_is_one():
    image = photo_like(48, 40, seed=1)
    assert metrics.ssim_y(image, image) == pytest.approx(1.0, abs=1e-6)


def test_ssim_decreases_with_noise():
    image = photo_like(64, 64, seed=2).astype(np.float64)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=image.shape)
    scores = [
        metrics.ssim_y(image, np.clip(image + sigma * noise, 0, 255).round().astype(np.uint8))
        for sigma in (1, 4, 10, 25, 60)
    ]
    assert all(a > b for a, b in itertools.pairwise(scores)), scores
    assert 0.0 < scores[-1] < 0.5 < scores[0] < 1.0


@pytest.mark.parametrize(("a", "b"), [(100.0, 110.0), (20.0, 200.0)])
def test_ssim_of_flat_images_by_hand(a, b):
    """Flat images: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) at every window."""
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    for size in (11, 30):  # one window, and many
        x, y = np.full((size, size), a), np.full((size, size), b)
        assert metrics.ssim(x, y) == pytest.approx(expected, rel=1e-6)


def test_ssim_matches_a_direct_2d_convolution():
    """The separable valid-area filter equals a plain 2-D Gaussian window (torch conv2d)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (23, 31))
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255)
    taps = metrics.gaussian_window()
    assert taps.sum() == pytest.approx(1.0) and np.allclose(taps, taps[::-1])
    window = torch.from_numpy(np.outer(taps, taps))[None, None]

    def blur(im: np.ndarray) -> np.ndarray:
        return F.conv2d(torch.from_numpy(im)[None, None], window)[0, 0].numpy()

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim_map.shape == (13, 21)
    assert metrics.ssim(x, y) == pytest.approx(float(ssim_map.mean()), abs=1e-6)


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="SSIM"):
        metrics.ssim(np.zeros((10, 20)), np.zeros((10, 20)))


# ----------------------------------------------------------------------------- BD-PSNR

BPP = [0.1, 0.2, 0.4, 0.8, 1.6]
PSNR = [28.0, 30.5, 33.0, 35.2, 37.0]


def test_bd_psnr_of_identical_curves_is_zero():
    assert bd_psnr(BPP, PSNR, BPP, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_bd_psnr_of_a_curve_one_db_higher_is_one():
    higher = [p + 1 for p in PSNR]
    assert bd_psnr(BPP, PSNR, BPP, higher) == pytest.approx(1.0, abs=1e-6)
    assert bd_psnr(BPP, PSNR, BPP, higher, within=(0.3, 0.9)) == pytest.approx(1.0, abs=1e-6)
    assert bd_psnr(BPP[:3], PSNR[:3], BPP[:3], higher[:3]) == pytest.approx(1.0, abs=1e-6)  # quadratic fit


def test_bd_psnr_of_a_curve_at_half_the_rate_is_positive():
    assert bd_psnr(BPP, PSNR, [b / 2 for b in BPP], PSNR) > 0.5
    assert bd_psnr([b / 2 for b in BPP], PSNR, BPP, PSNR) < -0.5


def test_bd_psnr_without_overlap_is_none():
    assert bd_psnr(BPP, PSNR, [b * 100 for b in BPP], PSNR) is None
    assert bd_psnr(BPP, PSNR, BPP, PSNR, within=(5.0, 9.0)) is None
    assert bd_psnr(BPP[:1], PSNR[:1], BPP, PSNR) is None  # one point is no curve


# ----------------------------------------------------------------------------- pieces


def test_centre_crop_sizes():
    image = np.zeros((70, 100, 3), np.uint8)
    assert crop_side(70) == 64 and crop_side(64) == 64
    assert centre_crop(image, 64).shape == (64, 64, 3)
    assert centre_crop(image, 96).shape == (
        68,
        96,
        3,
    )  # short side kept whole, to a multiple of 4
    marked = np.arange(70 * 100).reshape(70, 100)
    assert centre_crop(marked[..., None], 32)[0, 0, 0] == marked[19, 34]  # centred


def test_reference_thumbnail_matches_the_encoders_bicubic_base():
    photo = photo_like(301, 203, seed=5)  # not a multiple of 4: padded like the encoder pads
    reference = standard.reference_thumbnail(photo)
    assert reference.shape == (51, 76, 3)
    padded = F.pad(
        torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255,
        (0, 3, 0, 1),
        mode="replicate",
    )
    base = (downscale_bicubic(padded, 4)[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255)
    assert metrics.psnr(reference, base) > 50


def test_jpeg_planes_give_natural_order_tables_and_ycbcr():
    thumb = photo_like(40, 24, seed=6)
    ycbcr, luma, chroma = standard.decode_jpeg_planes(standard.encode_thumbnail_jpeg(thumb, 50))
    expected_luma, expected_chroma = standard_tables(50)
    assert np.array_equal(luma, expected_luma) and np.array_equal(chroma, expected_chroma)
    assert ycbcr.shape == thumb.shape and ycbcr.dtype == np.uint8
    assert metrics.psnr(metrics.luma(thumb), ycbcr[..., 0].astype(float)) > 30


def test_plot_ticks_and_size():
    assert linear_ticks(22.3, 31.7) == [24, 26, 28, 30]
    assert linear_ticks(30.0, 32.0) == [30.0, 30.5, 31.0, 31.5, 32.0]
    assert log_ticks(0.07, 3.0) == [0.1, 0.2, 0.5, 1.0, 2.0]
    image = draw_rd_plot({"a": [(0.1, 25.0), (0.3, 29.0)], "b": [(0.2, 27.0)]}, "title")
    assert image.size == SIZE and image.mode == "RGB"


# ----------------------------------------------------------------------------- the command


@pytest.fixture
def weights(tmp_path):
    return make_weights_with_jpeg_sr(tmp_path / "w")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo_like(96, 80, seed=1)).save(folder / "a.png")
    Image.fromarray(photo_like(72, 100, seed=2)).save(folder / "b.png")
    return folder


def _rows(out) -> dict[str, list[dict]]:
    by_method: dict[str, list[dict]] = {}
    with open(out / "results.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_method.setdefault(row["method"], []).append(row)
    return by_method


def test_eval_end_to_end(tmp_path, weights, photos, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "--weights",
            str(weights),
            "eval",
            str(photos),
            "--out",
            str(out),
            "--crop",
            "64",
            "--ablation",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "[1/2] a.png 64x64" in stderr and "[2/2] b.png 64x64" in stderr and "untrained" in stderr
    assert "BD-PSNR" in stdout and "MEDIUM:" in stdout

    rows = _rows(out)
    rates = len(DEFAULT_RATES)
    expected = {
        "hyperthumbnail": rates,
        "bicubic+jpeg": 9,
        "jpeg+sr": 9,
        "jpeg-full": len(FULL_IMAGE_QUALITIES),
        "webp-full": len(FULL_IMAGE_QUALITIES),
        "avif-full": len(AVIF_QUALITIES),
        "jpegthumb+avif": len(AVIF_QUALITIES),
        "jxl-full": len(JXL_QUALITIES),
        "hyperthumbnail-no-adapt": rates,
        "hyperthumbnail-no-adapt-no-moz": rates,
        "hyperthumbnail-best": rates,
    }
    assert {method: len(r) for method, r in rows.items()} == {m: 2 * n for m, n in expected.items()}
    for fast, plain in zip(rows["hyperthumbnail-no-adapt"], rows["hyperthumbnail-no-adapt-no-moz"], strict=True):
        # the same coefficients: mozjpeg's re-coding changes bytes only, never pixels
        assert int(fast["bytes"]) <= int(plain["bytes"]) and fast["psnr_rgb"] == plain["psnr_rgb"]
        assert fast["payload_bytes"] == "0" and float(fast["encode_seconds"]) > 0
    for method_rows in rows.values():
        for row in method_rows:
            assert float(row["bpp"]) > 0 and math.isfinite(float(row["psnr_rgb"])) and row["width"] == "64"
            assert 0 < float(row["ssim_y"]) <= 1
    assert all(row["thumb_psnr"] for row in rows["hyperthumbnail"] + rows["bicubic+jpeg"])
    assert not any(row["thumb_psnr"] for row in rows["webp-full"])
    for image in ("a.png", "b.png"):
        curve = [r for r in rows["bicubic+jpeg"] if r["image"] == image]
        assert [int(r["setting"]) for r in curve] == list(THUMBNAIL_QUALITIES)
        bpp, psnr = (
            [float(r["bpp"]) for r in curve],
            [float(r["psnr_rgb"]) for r in curve],
        )
        assert bpp == sorted(bpp) and len(set(bpp)) == len(bpp)
        assert psnr == sorted(psnr)
        sr = [r for r in rows["jpeg+sr"] if r["image"] == image]
        assert [r["bytes"] for r in sr] == [r["bytes"] for r in curve]  # the same thumbnails

    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == ["a.png", "b.png"] and summary["crop"] == 64 and summary["device"] == "cpu"
    assert summary["weights"]["model_id"] == "test-untrained" and len(summary["weights"]["sha256"]) == 64
    assert summary["jpeg_sr_weights"]["model_id"] == "jpeg-sr-test" and summary["skipped_methods"] == {}
    assert set(summary["presets"]) == {"LOW", "MEDIUM", "HIGH", "FINE", "FINEST"}
    assert summary["presets"]["MEDIUM"]["bpp"] > 0 and summary["presets"]["MEDIUM"]["thumb_psnr"] > 0
    methods = summary["methods"]
    assert len(methods["webp-full"]["points"]) == len(FULL_IMAGE_QUALITIES)
    assert methods["bicubic+jpeg"]["bd_psnr_vs_anchor_db"] == pytest.approx(0.0, abs=1e-9)
    assert isinstance(methods["jpeg+sr"]["bd_psnr_vs_anchor_db"], float)  # same rates: full overlap
    assert all("bd_psnr_vs_anchor_in_preset_range_db" in m for m in methods.values())

    with Image.open(out / "rd_plot.png") as plot:
        assert plot.format == "PNG" and plot.size == SIZE
    ours = methods["hyperthumbnail"]
    assert "bd_psnr_vs_jpeg_sr_db" in ours and "bd_psnr_vs_jpeg_sr_in_preset_range_db" in ours
    per_image = summary["per_image_bd_psnr_vs_anchor_db"]
    assert set(per_image) == {"a.png", "b.png"} and set(per_image["a.png"]) == {"hyperthumbnail", "jpeg+sr"}
    preview = summary["preview_bd_psnr_vs_plain_jpeg_thumbnails"]
    assert set(preview["per_image_db"]) == {"a.png", "b.png"}
    present = [v for v in preview["per_image_db"].values() if v is not None]  # the untrained model may not overlap
    assert preview["worst_image_db"] == (min(present) if present else None)
    assert "overall_db" in preview and "preview (thumbnail) BD-PSNR" in stdout
    assert set(summary["ablation"]) == {"hyperthumbnail", "hyperthumbnail-no-adapt", "hyperthumbnail-no-adapt-no-moz",
                                        "hyperthumbnail-best"}  # fmt: skip
    assert summary["ablation"]["hyperthumbnail-no-adapt"]["medium_payload_bytes"] == 0
    markdown = (out / "summary.md").read_text()
    assert "| MEDIUM | 0.2 |" in markdown and "| jpeg+sr |" in markdown
    assert "| hyperthumbnail-no-adapt-no-moz |" in markdown and "Preview: thumbnail BD-PSNR" in markdown
    assert markdown.count("| bicubic+jpeg |") == 9  # one row per quality of the sweep


def test_eval_without_a_jpeg_sr_model_skips_that_method(tmp_path, photos, capsys):
    weights = tmp_path / "plain"
    make_weights(weights)
    out = tmp_path / "out"
    argv = [
        "eval",
        str(photos),
        "--out",
        str(out),
        "--crop",
        "32",
        "--rates",
        "LOW,HIGH",
        "--limit",
        "1",
    ]
    code = main(["--weights", str(weights), *argv])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "jpeg-sr-baseline" in summary["skipped_methods"]["jpeg+sr"] and "skipped jpeg+sr" in stdout
    assert summary["images"] == ["a.png"] and set(summary["presets"]) == {"LOW", "HIGH"}
    assert set(_rows(out)) == {
        "hyperthumbnail",
        "bicubic+jpeg",
        "jpeg-full",
        "webp-full",
        "avif-full",
        "jpegthumb+avif",
        "jxl-full",
    }


def test_eval_skips_an_unreadable_image(tmp_path, weights, photos, capsys):
    (photos / "0-broken.jpg").write_bytes(b"not a jpeg")
    argv = [
        "eval",
        str(photos),
        "--out",
        str(tmp_path / "out"),
        "--crop",
        "32",
        "--rates",
        "0.5",
        "--limit",
        "2",
    ]
    code = main(["--weights", str(weights), *argv])
    _, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "skipped" in stderr and "0-broken.jpg" in stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["images"] == ["a.png"]


@pytest.mark.parametrize(
    ("make_folder", "message"),
    [
        (lambda tmp: tmp / "missing", "no such folder"),
        (lambda tmp: tmp, "no images"),
    ],
)
def test_eval_errors_are_one_line(tmp_path, weights, capsys, make_folder, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    code = main(
        [
            "--weights",
            str(weights),
            "eval",
            str(make_folder(empty)),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    _, stderr = capsys.readouterr()
    assert code == 1 and message in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_eval_without_weights_is_an_error(tmp_path, photos, capsys):
    code = main(
        [
            "--weights",
            str(tmp_path / "none"),
            "eval",
            str(photos),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    _, stderr = capsys.readouterr()
    assert code == 1 and "No trained weights" in stderr


def test_eval_of_a_model_other_than_the_default_uses_it_and_its_own_baseline(tmp_path, weights, photos, capsys):
    """``--model``: new weights are judged before they become the default, against the jpeg+sr
    baseline trained with the same decoder (not the first baseline by name)."""
    from dataclasses import replace

    from codec_fixtures import SMALL_CONFIG, random_model

    from app.codec.engine.weights import save_weights
    from app.codec.nets.decoder import DecoderConfig

    wider = replace(
        SMALL_CONFIG, decoder=DecoderConfig(channels=24, blocks=2, freq_channels=32, freq_blocks=2, freq_out=8)
    )
    save_weights(random_model(wider, seed=3), weights, "test-wider", trained=False, make_default=False, training={})
    save_weights(
        random_model(wider, seed=4),
        weights,
        "jpeg-sr-wider",
        trained=False,
        make_default=False,
        role="jpeg-sr-baseline",
    )
    out = tmp_path / "out"
    args = [
        "--weights",
        str(weights),
        "eval",
        str(photos),
        "--out",
        str(out),
        "--crop",
        "64",
        "--rates",
        "0.5",
        "--limit",
        "1",
    ]
    assert main([*args, "--model", "test-wider"]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights"]["model_id"] == "test-wider"
    assert summary["jpeg_sr_weights"]["model_id"] == "jpeg-sr-wider"
    assert main(args) == 0, capsys.readouterr().err  # the default still pairs with its own
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["weights"]["model_id"], summary["jpeg_sr_weights"]["model_id"]) == (
        "test-untrained",
        "jpeg-sr-test",
    )
    assert main([*args, "--model", "nope"]) == 1 and "'nope' is not in" in capsys.readouterr().err


def test_eval_of_a_detail_layer_model(tmp_path, photos, capsys, monkeypatch):
    """A detail-layer model is also scored without its layer (thumbnail-only, thumbnail rates
    only), and every method is judged against full-resolution AVIF in the detail range."""
    from codec_fixtures import SMALL_DETAIL_CONFIG, random_model

    from app.codec import api
    from app.codec.engine.weights import save_weights

    real = api.Codec.encode_detail

    def helpful(self, *args, **kwargs):  # the random test layer, said to help: the encoder keeps it
        layer = real(self, *args, **kwargs)
        return api.DetailLayer(layer.record, layer.base_mse, layer.base_mse / 4 if kwargs.get("measure") else None)

    monkeypatch.setattr(api.Codec, "encode_detail", helpful)

    weights = tmp_path / "detail"
    save_weights(random_model(SMALL_DETAIL_CONFIG), weights, "test-detail", trained=False)
    out = tmp_path / "out"
    code = main(
        [
            "--weights",
            str(weights),
            "eval",
            str(photos),
            "--out",
            str(out),
            "--crop",
            "64",
            "--rates",
            "0,0.4,1",
            "--limit",
            "1",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    rows = _rows(out)
    only = rows["hyperthumbnail-thumbnail-only"]
    assert [float(r["setting"]) for r in only] == [0.0, 0.4]  # the thumbnail's own rates: no layer there
    full = {float(r["setting"]): r for r in rows["hyperthumbnail"]}
    for r in only:
        assert r["bytes"] == full[float(r["setting"])]["bytes"] and r["payload_bytes"] == "0"
    assert int(full[1.0]["payload_bytes"]) > 0  # above HIGH the file carries its detail layer
    assert all(float(r["decode_seconds"]) > 0 for r in full.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vs_avif"]["range_bpp"] == [0.05, 0.5]
    assert set(summary["vs_avif"]) >= {"hyperthumbnail", "jpegthumb+avif", "webp-full"}
    assert summary["preview_bd_psnr_vs_plain_jpeg_thumbnails"]["judged_by"] == "hyperthumbnail-thumbnail-only"
    assert "BD-PSNR vs avif-full" in stdout and "full decode time" in stdout


def test_thumbnail_plus_avif_reuses_the_avif_of_the_same_photo_only():
    """The second file of jpegthumb+avif is avif-full's, for the same photo, never another's
    (a cache keyed by id() once handed one photo's AVIF to the next)."""
    from app.evaluation.methods import FullImageMethod, Photo, ThumbnailPlusFullMethod

    calls = []

    def encode(rgb, quality):
        calls.append(int(rgb[0, 0, 0]))
        return standard.encode_full_jpeg(rgb, quality)

    full = FullImageMethod("full", encode, [50])
    both = ThumbnailPlusFullMethod("both", full)
    for value in (10, 200):  # two photos, made and dropped one after the other
        rgb = np.full((32, 32, 3), value, np.uint8)
        photo = Photo(f"p{value}.png", rgb, standard.reference_thumbnail(rgb))
        full.code(photo, 50)
        coded = both.code(photo, 50)
        assert abs(int(coded.reconstruction.mean()) - value) <= 2
        del photo, rgb
    assert calls == [10, 200]  # each photo coded once


def test_eval_exports_at_the_effort_it_is_given(tmp_path, photos, capsys, monkeypatch):
    from app.codec.api import Codec

    weights = tmp_path / "plain"
    make_weights(weights)
    efforts = []
    real = Codec.encode_photo

    def spy(self, *args, **kwargs):
        efforts.append(kwargs.get("effort"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Codec, "encode_photo", spy)
    out = tmp_path / "out"
    argv = [
        "eval",
        str(photos),
        "--out",
        str(out),
        "--crop",
        "32",
        "--rates",
        "LOW",
        "--limit",
        "1",
        "--effort",
        "fast",
    ]
    code = main(["--weights", str(weights), *argv])
    assert code == 0, capsys.readouterr().err
    assert efforts and set(efforts) == {"fast"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["effort"] == "fast"


def test_bd_psnr_stays_within_the_data_when_two_points_share_a_rate():
    """A preview curve whose LOW and MEDIUM files differ by 8 bytes and 3 dB (a smooth photo, seen
    in an eval) made the quadratic fit swing to +569 dB; the value must stay a plausible gap, and
    a well-behaved curve keeps the cubic fit's value exactly."""
    anchor_bpp = [0.012634, 0.01548, 0.017975, 0.020378, 0.022514, 0.026588, 0.034554, 0.058365, 0.099831]
    anchor_psnr = [37.08, 38.72, 39.93, 41.02, 41.41, 42.65, 43.66, 45.48, 46.92]
    test_bpp, test_psnr = [0.020309, 0.020317, 0.030891], [36.76, 39.83, 43.25]
    gap = bd_psnr(anchor_bpp, anchor_psnr, test_bpp, test_psnr)
    assert -6.0 < gap < 3.0, gap
    assert bd_psnr(BPP, PSNR, BPP, [p + 1.0 for p in PSNR]) == pytest.approx(1.0, abs=1e-6)
