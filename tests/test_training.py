"""Training: data naming and split, the crop pack, a smoke run whose loss falls, resume, export."""

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from codec_fixtures import SMALL_CONFIG
from PIL import Image

from app.codec.engine.weights import find_weights, load_model
from app.codec.nets.model import HyperThumbnailModel, ModelConfig
from app.synthetic import photo_like
from app.training import data
from app.training.__main__ import main as training_main
from app.training.train import CropSampler, TrainConfig, train, training_loss


def synthetic_pack(count: int = 12, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    crops = np.stack([photo_like(size, size, seed=i, detail=1.0 + (i % 3) / 2) for i in range(count)])
    return crops, np.full(count, 1.0 / count)


def tiny_config(**overrides) -> TrainConfig:
    # Weaker rate weights than the recipe's: on 64-pixel synthetic crops the recipe's lambdas
    # make the rate and distortion terms trade almost evenly, so in 100 steps the total would
    # barely move even though both the model and the loop work.
    settings = {
        "steps": 60, "batch": 4, "patch": 64, "lr": 2e-3, "warmup": 5, "checkpoint_every": 20,
        "validate_every": 30, "lambda_at_rate0": 0.2, "lambda_at_rate1": 0.0125, "model": SMALL_CONFIG.to_dict(),
    }  # fmt: skip
    settings.update(overrides)
    return TrainConfig(**settings)


def fixed_batch_loss(model, config: TrainConfig, hr: torch.Tensor) -> tuple[float, float]:
    """The training loss and its reconstruction L1 on one fixed batch, same rates and noise every time."""
    torch.manual_seed(1)
    with torch.no_grad():
        loss, stats = training_loss(model.train(), config, hr, random.Random(1))
    return loss.item(), stats.get("recon", stats["loss"])


# Per mode: (steps, lr, required fall of the fixed-batch loss, of its reconstruction L1). The
# jpeg-sr decoder alone learns slowly at this scale (a zero-initialised residual on a bilinear
# upscale of smooth synthetic images): its loss falls ~1.2% in 300 steps, and not at all if the
# loop or the decoder's gradients were broken.
SMOKE = {"hyperthumb": (100, 2e-3, 0.92, 0.85), "jpeg-sr": (300, 5e-3, 0.995, 0.995)}


@pytest.mark.parametrize("mode", ["hyperthumb", "jpeg-sr"])
def test_smoke_training_lowers_the_loss(tmp_path, mode):
    crops, weights = synthetic_pack()
    steps, lr, loss_factor, l1_factor = SMOKE[mode]
    config = tiny_config(mode=mode, steps=steps, lr=lr, validate_every=steps)
    hr = torch.from_numpy(crops[:4, :64, :64]).permute(0, 3, 1, 2).float() / 255.0
    torch.manual_seed(config.seed)
    before = fixed_batch_loss(HyperThumbnailModel(ModelConfig.from_dict(config.model)), config, hr)
    validation = torch.from_numpy(crops[:2]).permute(0, 3, 1, 2).float() / 255.0
    model = train(tmp_path / mode, config, crops, weights, validation, echo=None)
    after = fixed_batch_loss(model, config, hr)
    assert after[0] < loss_factor * before[0], (before, after)
    assert after[1] < l1_factor * before[1], (before, after)  # the reconstruction itself improves
    records = [json.loads(line) for line in (tmp_path / mode / "log.jsonl").read_text().splitlines()]
    assert len([r for r in records if "loss" in r]) == steps // 25  # a mean logged every 25 steps
    val = [r["val"] for r in records if "val" in r][-1]
    if mode == "hyperthumb":
        assert set(val) == {"LOW", "MEDIUM", "HIGH"}
        assert val["LOW"]["bpp"] < val["MEDIUM"]["bpp"] < val["HIGH"]["bpp"]
        assert all(v["thumb_psnr"] > 25 for v in val.values())
    else:  # finer tables, better reconstructions, more bits
        assert val["q30"]["psnr"] < val["q60"]["psnr"] < val["q90"]["psnr"], val
        assert val["q30"]["bpp"] < val["q60"]["bpp"] < val["q90"]["bpp"], val


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    crops, weights = synthetic_pack()
    straight = train(tmp_path / "a", tiny_config(steps=40), crops, weights, echo=None)
    train(tmp_path / "b", tiny_config(steps=40), crops, weights, echo=None, stop_after_s=0.0)  # pauses after step 1
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 1
    resumed = train(tmp_path / "b", tiny_config(steps=40), crops, weights, echo=None)
    for (name, x), y in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-5), name


def test_time_limit_pauses_with_a_checkpoint(tmp_path):
    crops, weights = synthetic_pack()
    train(
        tmp_path / "r",
        tiny_config(steps=1000),
        crops,
        weights,
        echo=None,
        stop_after_s=0.0,
    )
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 1


def test_decoder_only_phase_keeps_the_files_and_improves_the_reconstruction(tmp_path):
    """``trains="decoder"`` (the MSE phase): encoder and QPM are bit-for-bit unchanged, so are the
    thumbnails and their bytes; the decoder alone gets better at the MSE it is scored by."""
    crops, weights = synthetic_pack()
    first = train(tmp_path / "l1", tiny_config(steps=40), crops, weights, echo=None)
    torch.save({"model": first.state_dict()}, tmp_path / "first.pt")
    config = tiny_config(steps=120, lr=3e-3, loss="mse", trains="decoder")
    hr = torch.from_numpy(crops[:4, :64, :64]).permute(0, 3, 1, 2).float() / 255.0
    before = fixed_batch_loss(first, config, hr)[0]
    tuned = train(tmp_path / "mse", config, crops, weights, echo=None, init_from=tmp_path / "first.pt")
    for name, value in first.state_dict().items():
        same = torch.equal(value, tuned.state_dict()[name])
        assert same == (not name.startswith("decoder.")), name  # only decoder weights moved
    assert fixed_batch_loss(tuned, config, hr)[0] < 0.995 * before  # ~1.2% here; see SMOKE on the decoder alone
    with pytest.raises(ValueError, match="trains"):
        TrainConfig(trains="encoder")


def test_sampler_patches_come_from_the_crops():
    crops, weights = synthetic_pack(count=3, size=96)
    batch = CropSampler(crops, weights, 64, seed=0).batch(5)
    assert batch.shape == (5, 3, 64, 64) and 0.0 <= batch.min() and batch.max() <= 1.0
    with pytest.raises(ValueError, match="larger"):
        CropSampler(crops, weights, 128, seed=0)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="gan")
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainConfig(patch=100)
    config = TrainConfig(steps=1000, warmup=10, lr=1e-3, lr_min=1e-5)
    assert config.learning_rate(0) == pytest.approx(1e-4)
    assert config.learning_rate(10) == pytest.approx(1e-3)
    assert config.learning_rate(1000) == pytest.approx(1e-5)
    lam = config.rate_lambda(torch.tensor([0.0, 0.5, 1.0]))
    assert lam[0] == pytest.approx(config.lambda_at_rate0) and lam[2] == pytest.approx(config.lambda_at_rate1)
    assert lam[0] > lam[1] > lam[2]
    rates = torch.tensor([0.4, 0.7, 1.0])
    assert torch.equal(config.detail_lambda(rates, 0.4), config.rate_lambda(rates))  # one schedule by default
    split = TrainConfig(lambda_at_rate0=0.016, lambda_at_rate1=1.24e-4, detail_lambda_at_edge=0.016)
    detail = split.detail_lambda(rates, 0.4)
    assert detail[0] == pytest.approx(0.016) and detail[2] == pytest.approx(1.24e-4)  # from the edge to rate 1
    assert detail[1] == pytest.approx((0.016 * 1.24e-4) ** 0.5) and detail[1] > split.rate_lambda(rates)[1]


def fake_packages(root):
    """A folder tree shaped like the unpacked Debian packages, with small images."""
    folders = {}
    for package in data.PACKAGES:
        folders[package] = root / package
    plasma = folders["plasma-workspace-wallpapers"] / "usr/share/wallpapers"
    for name, sizes in (
        ("Kite", [(1280, 1024), (1600, 1100)]),
        ("ColorfulCups", [(1400, 1050)]),
    ):
        images = plasma / name / "contents" / "images"
        images.mkdir(parents=True)
        for w, h in sizes:
            Image.fromarray(photo_like(w, h, seed=w)).save(images / f"{w}x{h}.jpg", quality=90)
        Image.fromarray(photo_like(400, 250)).save(plasma / name / "contents" / "screenshot.jpg")
    mate = folders["mate-backgrounds"] / "usr/share/backgrounds/mate/nature"
    mate.mkdir(parents=True)
    Image.fromarray(photo_like(1200, 1000, seed=3)).save(mate / "Dune.jpg", quality=90)
    Image.fromarray(photo_like(800, 600, seed=4)).save(mate / "Tiny.jpg")  # below MIN_SHORT_SIDE
    for package in ("ukui-wallpapers", "gnome-backgrounds"):
        folders[package].mkdir(parents=True)
    return folders


def test_images_are_named_stably_split_by_name_and_packed_within_budget(tmp_path, monkeypatch):
    images = data.list_images(fake_packages(tmp_path / "unpacked"))
    names = [i.name for i in images]
    assert names == ["mate/Dune", "plasma/ColorfulCups", "plasma/Kite"]
    kite = images[2]
    assert (kite.width, kite.height) == (1600, 1100)  # the largest of the sizes shipped
    assert [i.name for i in images if i.is_validation] == ["plasma/ColorfulCups"]

    monkeypatch.setattr(data, "VALIDATION", ("plasma/ColorfulCups",))
    written = data.write_validation(images, tmp_path / "validation")
    assert [p.name for p in written] == ["plasma-ColorfulCups.jpg"]
    assert written[0].read_bytes() == images[1].path.read_bytes()  # the original bytes

    monkeypatch.setattr(data, "PACK_BUDGET", 300_000)
    index = data.build_pack(images, tmp_path / "pack", log=lambda *_: None)
    assert 0 < index["bytes"] <= 300_000
    assert set(index["sources"]) <= {
        "mate/Dune",
        "plasma/Kite",
    }  # never a validation photo
    crops, weights = data.load_pack(tmp_path / "pack")
    assert crops.shape[1:] == (data.PACK_CROP, data.PACK_CROP, 3) and len(crops) == len(index["crops"])
    assert weights.sum() == pytest.approx(1.0)


def test_missing_validation_photos_are_reported(tmp_path):
    images = data.list_images(fake_packages(tmp_path / "unpacked"))
    with pytest.raises(data.DataError, match="validation photos missing"):
        data.write_validation(images, tmp_path / "validation")


def test_missing_pack_is_a_clear_error(tmp_path, capsys):
    code = training_main(["train", str(tmp_path / "run"), "--pack", str(tmp_path / "nope")])
    assert code == 1
    assert "no training pack" in capsys.readouterr().err


def test_export_installs_trained_weights_with_a_manifest(tmp_path):
    crops, weights = synthetic_pack()
    run = tmp_path / "run"
    train(run, tiny_config(steps=25), crops, weights, echo=None)
    assert training_main(["export", str(run), "--to", str(tmp_path / "w"), "--id", "smoke-x4"]) == 0
    info = find_weights(tmp_path / "w")
    assert info.model_id == "smoke-x4" and info.trained
    assert info.entry["training"]["steps"] == 25 and info.entry["training"]["mode"] == "hyperthumb"
    model = load_model(info)
    state = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_eval_results_are_recorded_without_touching_the_weights(tmp_path):
    crops, weights = synthetic_pack()
    train(tmp_path / "run", tiny_config(steps=1), crops, weights, echo=None)
    assert training_main(["export", str(tmp_path / "run"), "--to", str(tmp_path / "w"), "--id", "m"]) == 0
    before = find_weights(tmp_path / "w")
    preset = {"rate": 0.5, "bpp": 0.08, "psnr_rgb": 31.0}
    summary = {"weights": {"model_id": "m"}, "images": ["a.png"], "crop": None, "device": "cpu",
               "presets": {"MEDIUM": preset},
               "methods": {"hyperthumbnail": {"bd_psnr_vs_anchor_db": 1.5, "bd_psnr_vs_anchor_in_preset_range_db": 1.4}}}  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    args = [
        "record-results",
        str(tmp_path / "summary.json"),
        "--to",
        str(tmp_path / "w"),
        "--command",
        "hyperthumb eval x",
    ]
    assert training_main(args) == 0
    after = find_weights(tmp_path / "w")
    assert after.sha256 == before.sha256 and after.path.read_bytes() == before.path.read_bytes()
    results = after.entry["results"]
    assert results["presets"]["MEDIUM"] == preset and results["command"] == "hyperthumb eval x"
    assert results["bd_psnr_vs_bicubic_jpeg_db"]["hyperthumbnail"]["whole_overlap"] == 1.5


def test_detail_phase_warm_starts_trains_the_layer_and_keeps_the_thumbnail(tmp_path):
    """A detail model warm-started from a thumbnail-only one: the layer's linear paths start from
    the residual's principal components (so the layer helps at step 0), the encoder and QPM stay
    bit for bit (the files' thumbnails do not change), and the layer's distortion falls."""
    from codec_fixtures import SMALL_DETAIL_CONFIG

    crops, weights = synthetic_pack()
    first = train(tmp_path / "base", tiny_config(steps=30), crops, weights, echo=None)
    torch.save({"model": first.state_dict()}, tmp_path / "base.pt")
    config = tiny_config(
        steps=40,
        lr=2e-3,
        loss="mse",
        trains="detail",
        model=SMALL_DETAIL_CONFIG.to_dict(),
        lambda_at_rate0=1e-3,
        lambda_at_rate1=1e-4,
        gain_lr_scale=10.0,
    )
    events = []
    tuned = train(tmp_path / "detail", config, crops, weights, echo=events.append, init_from=tmp_path / "base.pt")
    assert any("principal components" in str(e.get("event", "")) for e in events)
    for name, value in first.state_dict().items():
        assert torch.equal(value, tuned.state_dict()[name]) == (not name.startswith("decoder.")), name
    groups = config.trainable(tuned)
    assert len(groups) == 2 and groups[1]["lr_scale"] == 10.0 and len(groups[1]["params"]) == 2  # the gains
    fresh = HyperThumbnailModel(ModelConfig.from_dict(config.model))
    assert not torch.equal(fresh.gains.log_gain, tuned.gains.log_gain)  # the layer's own parts learned
    assert not torch.equal(fresh.analysis.down2.weight, tuned.analysis.down2.weight)
    logged = [e for e in events if "detail_bpp" in e]
    assert logged and all(np.isfinite(e["detail_bpp"]) and e["detail_bpp"] > 0 for e in logged)


def test_the_linear_paths_start_as_the_residuals_principal_components():
    """Analysis projection and decoder synthesis start as a transform and its transpose: a
    residual in their span goes through the layer unchanged (rounding aside)."""
    from codec_fixtures import SMALL_DETAIL_CONFIG

    from app.codec.nets.detail import PCA_SCALE, init_from_residual_pca, residual_blocks

    torch.manual_seed(0)
    model = HyperThumbnailModel(SMALL_DETAIL_CONFIG)
    residuals = [torch.randn(4, 3, 64, 64) * torch.linspace(0.1, 1, 64)[None, None, :, None] for _ in range(3)]
    kept = init_from_residual_pca(model, residuals)
    assert 0 < kept < 1
    project = model.analysis.project.weight[:, :, 0, 0] / PCA_SCALE  # [C, 768]
    assert torch.allclose(project @ project.T, torch.eye(project.shape[0]), atol=1e-4)  # orthonormal rows
    assert torch.allclose(model.decoder.detail_linear.weight[:, :, 0, 0] * PCA_SCALE, project.T, atol=1e-5)
    x = residuals[0][:1]
    coded = model.analysis.project(residual_blocks(x))
    back = F.pixel_shuffle(F.pixel_shuffle(model.decoder.detail_linear(coded), 4), 4)
    within = F.pixel_shuffle(
        F.pixel_shuffle(torch.einsum("ck,bkhw->bchw", project.T @ project, residual_blocks(x)), 4), 4
    )
    assert torch.allclose(back, within, atol=1e-5)  # the projection onto the components, then back


def test_detail_rates_put_the_share_asked_for_above_high():
    from app.codec.nets.detail import DetailConfig
    from app.training.train import detail_rates

    u = torch.linspace(0, 1 - 1e-6, 1000)
    rates = detail_rates(u, DetailConfig(thumbnail_full_at=0.4), TrainConfig(detail_rate_share=0.75))
    above = u < 0.75
    assert (rates[above] > 0.4).all() and (rates[~above] < 0.4 + 1e-6).all()
    assert rates.min() >= 0 and rates.max() <= 1
    assert rates[above].min() < 0.41 and rates[above].max() > 0.99  # the whole layer range is drawn
    assert rates[~above].max() < 0.4 and rates[~above].min() < 0.01  # ... and the thumbnail's


def test_detail_loss_charges_a_trainable_thumbnail_for_its_bits_at_every_rate():
    """With the encoder trainable, the thumbnail's bits cost below the layer's start too, and there
    the base reconstruction (the product at those rates) has full weight; a frozen thumbnail's loss
    is what it was (its bits are fixed, the base keeps ``base_weight``)."""
    from types import SimpleNamespace

    from app.codec.nets.detail import DetailConfig
    from app.codec.nets.model import TrainOutput
    from app.training.train import detail_training_loss

    hr = torch.full((2, 3, 8, 8), 0.5)

    def loss_for(trains: str, rate: float, thumbnail_bpp: float, base_error: float) -> float:
        out = TrainOutput(
            reconstruction=hr + 0.01, thumbnail=hr[..., :2, :2], thumbnail_decoded=hr[..., :2, :2],
            bpp=torch.full((2,), thumbnail_bpp), luma_table=torch.ones(2, 64), chroma_table=torch.ones(2, 64),
            base_reconstruction=hr + base_error, detail_bpp=torch.full((2,), 0.3),
        )  # fmt: skip
        model = _Fake(SimpleNamespace(scale=4, detail=DetailConfig(thumbnail_full_at=0.4)), out)
        config = TrainConfig(trains=trains, loss="mse", model=SMALL_CONFIG.to_dict())
        with torch.no_grad():
            loss, _ = detail_training_loss(model, config, hr, torch.full((2,), rate), None)
        return loss.item()

    low, high = 0.2, 0.8
    for rate in (low, high):  # a trainable thumbnail pays for its bits at every rate
        assert loss_for("all", rate, 0.5, 0.02) > loss_for("all", rate, 0.1, 0.02)
    assert loss_for("detail", low, 0.5, 0.02) == loss_for("detail", low, 0.1, 0.02)  # frozen: fixed bits
    # below the layer's start the base is the product: full weight when trainable, base_weight when frozen
    all_gap = loss_for("all", low, 0.1, 0.04) - loss_for("all", low, 0.1, 0.02)
    frozen_gap = loss_for("detail", low, 0.1, 0.04) - loss_for("detail", low, 0.1, 0.02)
    assert all_gap == pytest.approx(frozen_gap / TrainConfig().base_weight, rel=1e-4)


def test_the_thumbnail_term_can_trade_against_bits_as_the_base_does():
    """``thumb_weight_per_rate``: the thumbnail's fidelity weighs lambda(0.5) / lambda(rate) per
    crop, so at LOW (a large lambda) a better preview is worth fewer bits than at HIGH; without it,
    the same at every rate."""
    from types import SimpleNamespace

    from app.codec.nets.detail import DetailConfig
    from app.codec.nets.model import TrainOutput
    from app.training.train import detail_training_loss

    hr = torch.full((2, 3, 8, 8), 0.5)

    def loss_for(per_rate: bool, rate: float, thumbnail_error: float) -> float:
        out = TrainOutput(
            reconstruction=hr + 0.01, thumbnail=hr[..., :2, :2], thumbnail_decoded=hr[..., :2, :2] + thumbnail_error,
            bpp=torch.full((2,), 0.1), luma_table=torch.ones(2, 64), chroma_table=torch.ones(2, 64),
            base_reconstruction=hr + 0.02, detail_bpp=torch.full((2,), 0.3),
        )  # fmt: skip
        model = _Fake(SimpleNamespace(scale=4, detail=DetailConfig(thumbnail_full_at=0.4)), out)
        config = TrainConfig(
            trains="all", loss="mse", model=SMALL_CONFIG.to_dict(), thumb_weight=1.0, thumb_weight_per_rate=per_rate,
            lambda_at_rate0=0.016, lambda_at_rate1=1.24e-4,
        )  # fmt: skip
        with torch.no_grad():
            loss, _ = detail_training_loss(model, config, hr, torch.full((2,), rate), None)
        return loss.item()

    def gap(per_rate, rate):  # what a preview error of 0.04 instead of 0.02 adds to the loss
        return loss_for(per_rate, rate, 0.04) - loss_for(per_rate, rate, 0.02)

    assert gap(False, 0.0) == pytest.approx(gap(False, 0.3), rel=1e-4)  # one weight at every rate
    config = TrainConfig(lambda_at_rate0=0.016, lambda_at_rate1=1.24e-4)
    lam = lambda r: float(config.rate_lambda(torch.tensor(r)))  # noqa: E731
    quantized = round(0.3 * 255) / 255  # the knob as files store it, which the loss sees
    assert gap(True, 0.0) / gap(True, 0.3) == pytest.approx(lam(quantized) / lam(0.0), rel=1e-3)
    assert gap(True, 0.0) < 0.2 * gap(False, 0.0)  # at LOW the preview is cheap next to its bits
    assert gap(True, 0.8) == pytest.approx(gap(True, 0.4), rel=1e-4)  # above HIGH: HIGH's thumbnail, HIGH's lambda


def test_a_new_decoders_base_can_weigh_the_same_at_every_rate_below_the_layer():
    """``base_weight_below`` (a frozen thumbnail, a leaner decoder's base to train): below the
    layer's start the base's distortion has that weight at every rate, where the default weighs
    it by 1 / lambda(rate) (~100x less at LOW than at HIGH); above the start nothing changes."""
    from types import SimpleNamespace

    from app.codec.nets.detail import DetailConfig
    from app.codec.nets.model import TrainOutput
    from app.training.train import detail_training_loss

    hr = torch.full((1, 3, 8, 8), 0.5)

    def gap(rate: float, **overrides) -> float:
        """How much the loss grows when the base's squared error grows by 0.0003."""
        losses = []
        for error in (0.01, 0.02):
            out = TrainOutput(
                reconstruction=hr + 0.01, thumbnail=hr[..., :2, :2], thumbnail_decoded=hr[..., :2, :2],
                bpp=torch.full((1,), 0.1), luma_table=torch.ones(1, 64), chroma_table=torch.ones(1, 64),
                base_reconstruction=hr + error, detail_bpp=torch.full((1,), 0.3),
            )  # fmt: skip
            model = _Fake(SimpleNamespace(scale=4, detail=DetailConfig(thumbnail_full_at=0.4)), out)
            config = TrainConfig(trains="detail", loss="mse", model=SMALL_CONFIG.to_dict(), **overrides)
            with torch.no_grad():
                losses.append(detail_training_loss(model, config, hr, torch.tensor([rate]), None)[0].item())
        return losses[1] - losses[0]

    assert gap(0.0, base_weight_below=2.0) == pytest.approx(2.0 * 0.0003, rel=1e-3)
    assert gap(0.3, base_weight_below=2.0) == pytest.approx(2.0 * 0.0003, rel=1e-3)
    assert gap(0.0) < gap(0.3) < 0.2 * 2.0 * 0.0003  # the default: little weight, less the lower the rate
    assert gap(0.8, base_weight_below=2.0) == pytest.approx(gap(0.8))  # above the start: unchanged


class _Fake:
    """A model whose forward returns a fixed ``TrainOutput`` (the loss's arithmetic alone)."""

    def __init__(self, config, out):
        self.config, self.out = config, out

    def __call__(self, *args, **kwargs):
        return self.out


def test_a_narrower_decoder_warm_starts_from_a_wider_one(tmp_path):
    """A lean student (a narrower, shallower pixel branch) starts from a wider model: every tensor
    whose shape agrees is copied (encoder, QPM, the frequency branch, the detail layer), the pixel
    branch's reshaped tensors start fresh and are named, the surplus block is dropped."""
    from dataclasses import replace

    from codec_fixtures import SMALL_DETAIL_CONFIG

    from app.training.train import warm_start

    torch.manual_seed(0)
    wide = HyperThumbnailModel(SMALL_DETAIL_CONFIG)
    lean_config = replace(SMALL_DETAIL_CONFIG, decoder=replace(SMALL_DETAIL_CONFIG.decoder, channels=8, blocks=1))
    lean = HyperThumbnailModel(lean_config)
    events = []
    fresh = warm_start(lean, wide.state_dict(), events.append)
    wide_state, lean_state = wide.state_dict(), lean.state_dict()
    copied = [name for name in lean_state if name not in fresh]
    assert "decoder.pixel_in.weight" in fresh and "decoder.body.0.conv1.weight" in fresh
    assert "decoder.detail_fuse.weight" in fresh and "decoder.tail.weight" in fresh
    assert not any(name.startswith(("encoder.", "qpm.", "analysis.", "prior.", "gains.")) for name in fresh)
    for name in (
        "decoder.freq_in.weight",
        "decoder.freq_out.weight",
        "decoder.detail_in.weight",
        "decoder.detail_linear.weight",
    ):
        assert name in copied
    for name in copied:
        assert torch.equal(lean_state[name], wide_state[name]), name
    surplus = [name for name in wide_state if name.startswith("decoder.body.1.")]
    assert surplus and not any(name in lean_state for name in surplus)
    assert f"{len(fresh)} tensors start fresh" in events[0]["event"]
    assert f"{len(surplus)} of the source's dropped" in events[0]["event"]

    with pytest.raises(ValueError, match="lacks"):  # a wider state into a model without its parts still fails
        warm_start(HyperThumbnailModel(SMALL_CONFIG), wide.state_dict())
    other_encoder = replace(
        lean_config, encoder=replace(lean_config.encoder, channels=lean_config.encoder.channels + 8)
    )
    with pytest.raises(ValueError, match="outside the decoder"):  # a frozen part must never start fresh unnoticed
        warm_start(HyperThumbnailModel(other_encoder), wide.state_dict())


def test_the_logged_psnr_with_the_layer_counts_only_crops_that_carry_it():
    """Below the layer's start its output is untrained (v5 there: 17 dB): the logged PSNR with the
    layer is over the crops above it, NaN for a batch with none, and the window's mean skips NaN."""
    from types import SimpleNamespace

    from app.codec.nets.detail import DetailConfig
    from app.codec.nets.model import TrainOutput
    from app.training.train import _mean_of_finite, detail_training_loss

    hr = torch.full((2, 3, 8, 8), 0.5)
    reconstruction = torch.stack([hr[0] + 0.01, hr[1] + 0.3])  # the second crop's layered output is garbage
    out = TrainOutput(
        reconstruction=reconstruction, thumbnail=hr[..., :2, :2], thumbnail_decoded=hr[..., :2, :2],
        bpp=torch.full((2,), 0.1), luma_table=torch.ones(2, 64), chroma_table=torch.ones(2, 64),
        base_reconstruction=hr + 0.02, detail_bpp=torch.full((2,), 0.3),
    )  # fmt: skip
    model = _Fake(SimpleNamespace(scale=4, detail=DetailConfig(thumbnail_full_at=0.4)), out)
    config = TrainConfig(trains="detail", loss="mse", model=SMALL_CONFIG.to_dict())
    with torch.no_grad():
        _, stats = detail_training_loss(model, config, hr, torch.tensor([0.8, 0.2]), None)
        assert stats["psnr"] == pytest.approx(40.0, abs=0.01)  # crop 0 alone: 0.01 off everywhere
        _, stats = detail_training_loss(model, config, hr, torch.tensor([0.1, 0.2]), None)
        assert np.isnan(stats["psnr"]) and stats["base_psnr"] == pytest.approx(33.98, abs=0.01)
    assert _mean_of_finite([30.0, float("nan"), 32.0]) == 31.0 and np.isnan(_mean_of_finite([float("nan")]))


def test_a_context_prior_trains_on_the_frozen_symbols_and_installs_as_a_new_model(tmp_path):
    """``python -m app.training context``: the base model's weights unchanged, a context that
    saves bits on the symbols it was fitted to, and a manifest entry naming the base."""
    from codec_fixtures import SMALL_DETAIL_CONFIG, random_model

    from app.codec.engine.weights import save_weights

    weights_dir = tmp_path / "weights"
    base = random_model(SMALL_DETAIL_CONFIG, seed=2)
    save_weights(base, weights_dir, "test-base", trained=True, training={"note": "test"})
    cache = tmp_path / "cache"
    (cache / "pack").mkdir(parents=True)
    (cache / "validation").mkdir()
    crops = []
    for i in range(6):
        name = f"crop-{i}.jpg"
        Image.fromarray(photo_like(96, 96, seed=i, detail=1.5)).save(cache / "pack" / name, quality=95)
        crops.append({"file": name, "source": "synthetic", "photo": True})
    (cache / "pack" / "index.json").write_text(json.dumps({"crops": crops}))
    for i in range(2):
        Image.fromarray(photo_like(512, 512, seed=10 + i, detail=1.5)).save(cache / "validation" / f"v{i}.png")
    from app.training.context import train_context

    model, results = train_context(
        "test-base", weights_dir=weights_dir, cache=cache, groups=2, width=8,
        patches=32, patch=64, steps=120, batch=8, echo=lambda text: None,
    )  # fmt: skip
    for name, value in base.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    assert results["training_bits_saved"] > 1.0  # the context learned something about these symbols
    assert set(results["validation_bits_saved"]) == {"0.55", "0.7", "0.85", "1.0"}
    assert results["base"] == "test-base" and results["recipe"]["groups"] == 2
    assert training_main(
        ["context", "--base", "test-base", "--id", "test-context", "--to", str(weights_dir), "--cache", str(cache),
         "--groups", "2", "--width", "8", "--patches", "8", "--patch", "64", "--steps", "5", "--no-default"]
    ) == 0  # fmt: skip
    info = find_weights(weights_dir, model_id="test-context")
    assert info.config.detail.context_groups == 2 and "test-base" in info.entry["training"]["note"]
    assert find_weights(weights_dir).model_id == "test-base"  # --no-default


def test_a_context_model_fine_tunes_its_layer_under_the_context(tmp_path):
    """The joint fine-tune after ``context`` (``train --trains detail`` on a model with a context):
    the thumbnail stays bit for bit, the context and the layer learn together, and the forward's
    layer bits (what the loss charges) are the context's: fewer than the same weights count without it."""
    from codec_fixtures import SMALL_CONTEXT_CONFIG, SMALL_DETAIL_CONFIG, random_model

    start = random_model(SMALL_CONTEXT_CONFIG, seed=4)
    torch.save({"model": start.state_dict()}, tmp_path / "start.pt")
    crops, weights = synthetic_pack()
    config = tiny_config(
        steps=30, lr=1e-3, loss="mse", trains="detail", model=SMALL_CONTEXT_CONFIG.to_dict(),
        lambda_at_rate0=1e-3, lambda_at_rate1=1e-4, detail_rate_share=1.0,
    )  # fmt: skip
    tuned = train(tmp_path / "joint", config, crops, weights, echo=None, init_from=tmp_path / "start.pt")
    after = tuned.state_dict()
    for name, value in start.state_dict().items():
        if name.startswith(("encoder.", "qpm.")):  # the files' thumbnails do not change
            assert torch.equal(value, after[name]), name
    assert any(not torch.equal(v, after[k]) for k, v in start.state_dict().items() if k.startswith("context."))
    assert any(not torch.equal(v, after[k]) for k, v in start.state_dict().items() if k.startswith("analysis."))
    # the same weights without their context count more bits for the same latent
    plain = HyperThumbnailModel(SMALL_DETAIL_CONFIG)
    plain.load_state_dict({k: v for k, v in after.items() if not k.startswith("context.")})
    hr = torch.from_numpy(crops[:4, :64, :64]).permute(0, 3, 1, 2).float() / 255.0
    rate = torch.full((4,), 0.8)
    bits = {}
    for name, model in (("context", tuned.eval()), ("plain", plain.eval())):
        torch.manual_seed(0)
        with torch.no_grad():
            bits[name] = model(hr, rate, frozen_thumbnail=True).detail_bpp.mean().item()
    assert bits["context"] < bits["plain"], bits


def test_a_student_decoder_learns_from_its_teachers_base(tmp_path):
    """``distill_from``: the teacher's base on the student's own thumbnails is a second target. At
    distill_weight 1 the student's base moves toward the teacher's and away from nothing else; a
    teacher with another thumbnail (encoder weights) is refused, as is a trainable thumbnail."""
    from dataclasses import replace

    from codec_fixtures import SMALL_DETAIL_CONFIG, random_model

    from app.training.train import frozen_model

    teacher = random_model(SMALL_DETAIL_CONFIG, seed=6)
    torch.save({"config": SMALL_DETAIL_CONFIG.to_dict(), "state_dict": teacher.state_dict()}, tmp_path / "teacher.pt")
    student_config = replace(SMALL_DETAIL_CONFIG, decoder=replace(SMALL_DETAIL_CONFIG.decoder, channels=8, blocks=1))
    student = HyperThumbnailModel(student_config)
    fresh = warm_start_from(student, teacher)  # the student shares the teacher's thumbnail (and what fits)
    assert fresh  # the narrower pixel branch starts fresh
    torch.save({"config": student_config.to_dict(), "model": student.state_dict()}, tmp_path / "student.pt")
    crops, weights = synthetic_pack()
    hr = torch.from_numpy(crops[:4, :64, :64]).permute(0, 3, 1, 2).float() / 255.0
    frozen_teacher = frozen_model(tmp_path / "teacher.pt", "cpu")

    def gap_to_teacher(model) -> float:
        torch.manual_seed(0)
        with torch.no_grad():
            out = model.eval()(hr, torch.full((4,), 0.2), frozen_thumbnail=True)
            taught = frozen_teacher(hr, torch.full((4,), 0.2), frozen_thumbnail=True).base_reconstruction
        return F.mse_loss(out.base_reconstruction, taught).item()

    config = tiny_config(
        steps=40, lr=2e-3, loss="mse", trains="detail", model=student_config.to_dict(), detail_rate_share=0.0,
        lambda_at_rate0=1e-3, lambda_at_rate1=1e-4, distill_from=str(tmp_path / "teacher.pt"), distill_weight=1.0,
    )  # fmt: skip
    taught = train(tmp_path / "taught", config, crops, weights, echo=None, init_from=tmp_path / "student.pt")
    untaught = train(tmp_path / "untaught", replace(config, distill_weight=0.0), crops, weights, echo=None,
                     init_from=tmp_path / "student.pt")  # fmt: skip
    assert gap_to_teacher(taught) < 0.5 * gap_to_teacher(untaught), (gap_to_teacher(taught), gap_to_teacher(untaught))
    with pytest.raises(ValueError, match="trains='detail'"):
        TrainConfig(trains="all", distill_from="teacher.pt")
    other = random_model(SMALL_DETAIL_CONFIG, seed=7)  # another encoder: other thumbnails
    torch.save({"config": SMALL_DETAIL_CONFIG.to_dict(), "state_dict": other.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not the student's"):
        train(tmp_path / "other", replace(config, distill_from=str(tmp_path / "other.pt")), crops, weights,
              echo=None, init_from=tmp_path / "student.pt")  # fmt: skip


def warm_start_from(student: HyperThumbnailModel, teacher: HyperThumbnailModel) -> list[str]:
    from app.training.train import warm_start

    return warm_start(student, teacher.state_dict(), None)
