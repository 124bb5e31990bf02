"""The thumbnail size hold: a per-rate price on a trainable thumbnail's bits that follows a
reference model's sizes (``app/training/size_hold.py``)."""

import json

import numpy as np
import pytest
import torch
from codec_fixtures import SMALL_CONFIG, SMALL_DETAIL_CONFIG

from app.codec.nets.model import HyperThumbnailModel
from app.synthetic import photo_like
from app.training.size_hold import KNOTS, ThumbnailSizeHold
from app.training.train import TrainConfig, check_same_thumbnail, frozen_model, train


def small_model(seed: int = 0) -> HyperThumbnailModel:
    torch.manual_seed(seed)
    return HyperThumbnailModel(SMALL_DETAIL_CONFIG)


def test_weights_interpolate_between_knots_and_sum_to_one():
    hold = ThumbnailSizeHold(small_model())
    rates = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0, 1.7])
    weights = hold._weights(rates)
    assert torch.allclose(weights.sum(dim=1), torch.ones(len(rates)))
    assert weights[0].tolist() == [1.0, 0.0, 0.0]
    assert weights[1].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert weights[3].tolist() == pytest.approx([0.0, 0.2, 0.8])
    assert weights[5].tolist() == [0.0, 0.0, 1.0]  # above the knob: its end
    # the price is exp of the interpolated log-price
    hold.log_price = torch.tensor([0.0, 1.0, 2.0])
    assert hold.price(torch.tensor([0.25, 0.75])).tolist() == pytest.approx([np.exp(0.5), np.exp(1.5)], rel=1e-6)


def test_the_price_rises_where_bits_exceed_the_reference_and_falls_where_they_are_below():
    hold = ThumbnailSizeHold(small_model(), step_size=0.1)
    rates = torch.tensor([0.0, 0.0, 1.0, 1.0])
    bpp = torch.tensor([0.2, 0.2, 0.05, 0.05])
    reference = torch.tensor([0.1, 0.1, 0.1, 0.1])
    ratios = hold.update(rates, bpp, reference)
    assert ratios[0].item() == pytest.approx(np.log(2.0)) and ratios[2].item() == pytest.approx(-np.log(2.0))
    assert np.isnan(ratios[1].item())  # no crop reaches the middle knot
    low, middle, high = hold.log_price.tolist()
    assert low == pytest.approx(0.1 * np.log(2.0), rel=1e-5)  # too many bits at LOW: dearer
    assert middle == 0.0  # no crop near the middle knot: unchanged
    assert high == pytest.approx(-0.1 * np.log(2.0), rel=1e-5)  # too few at the top: cheaper
    # a knot that only a sliver of one crop reaches moves by the sliver, not by the crop's whole ratio
    sliver = ThumbnailSizeHold(small_model(), step_size=0.1)
    sliver.update(torch.tensor([0.02]), torch.tensor([0.2]), torch.tensor([0.1]))  # 4% of the crop at knot 0.5
    assert sliver.log_price[1].item() == pytest.approx(0.1 * 0.04 * np.log(2.0), rel=1e-4)
    assert sliver.log_price[0].item() == pytest.approx(0.1 * 0.96 * np.log(2.0), rel=1e-4)  # less than one crop too
    for _ in range(1000):  # bounded, whatever the batches say
        hold.update(rates, bpp * 100, reference)
    assert hold.log_price.abs().max().item() <= 4.0


def test_state_round_trips_and_refuses_other_knots():
    hold = ThumbnailSizeHold(small_model())
    hold.log_price = torch.tensor([0.3, -0.2, 1.1])
    other = ThumbnailSizeHold(small_model())
    other.load_state(json.loads(json.dumps(hold.state())))  # it goes through JSON-able types
    assert torch.allclose(other.log_price, hold.log_price)
    with pytest.raises(ValueError, match="knots"):
        other.load_state({"log_price": [0.0, 0.0], "knots": [0.0, 1.0]})
    assert len(KNOTS) == 3


def test_the_reference_is_the_weights_files_thumbnail_half(tmp_path):
    source = small_model(seed=3)
    # as a weights file stores it (``state_dict`` and the ModelConfig), which the real runs name
    torch.save({"config": SMALL_DETAIL_CONFIG.to_dict(), "state_dict": source.state_dict()}, tmp_path / "ref.pt")
    config = TrainConfig(model=SMALL_DETAIL_CONFIG.to_dict())
    rng = torch.get_rng_state()
    reference = frozen_model(tmp_path / "ref.pt", "cpu")
    assert torch.equal(rng, torch.get_rng_state())  # a held run draws what an unheld one does
    check_same_thumbnail(config, reference, "ref.pt")
    assert not any(p.requires_grad for p in reference.parameters())
    for name in ("encoder", "qpm"):
        for key, value in getattr(source, name).state_dict().items():
            assert torch.equal(value, getattr(reference, name).state_dict()[key]), key
    hr = torch.from_numpy(photo_like(64, 64, seed=1)).permute(2, 0, 1)[None].float() / 255.0
    hold = ThumbnailSizeHold(reference)
    rates = torch.tensor([0.2])
    torch.manual_seed(0)
    a = hold.reference_bpp(hr, rates)
    torch.manual_seed(0)
    b = source.eval().thumbnail(hr, rates, exact=True)[-1]
    assert torch.allclose(a, b) and a.item() > 0
    # a file whose thumbnail settings differ is refused, not silently a different target
    other = SMALL_DETAIL_CONFIG.to_dict()
    other["qpm"] = {**other["qpm"], "quality_at_rate0": other["qpm"]["quality_at_rate0"] + 5}  # same shapes
    torch.save({"config": other, "state_dict": source.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="qpm"):
        check_same_thumbnail(config, frozen_model(tmp_path / "other.pt", "cpu"), "other.pt")
    torch.save({"state_dict": source.state_dict()}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="no architecture"):
        frozen_model(tmp_path / "bare.pt", "cpu")


def test_a_hold_needs_a_trainable_thumbnail_and_a_detail_model(tmp_path):
    with pytest.raises(ValueError, match="freezes the thumbnail"):
        TrainConfig(trains="detail", thumb_sizes_from="x.pt")
    with pytest.raises(ValueError, match="freezes the thumbnail"):
        TrainConfig(trains="decoder", thumb_sizes_from="x.pt")
    crops = np.stack([photo_like(96, 96, seed=i) for i in range(4)])
    with pytest.raises(ValueError, match="detail models"):
        thumbnail_only = SMALL_CONFIG.to_dict()
        train(tmp_path / "r", TrainConfig(steps=1, batch=2, patch=64, thumb_sizes_from="x.pt", model=thumbnail_only),
              crops, np.full(4, 0.25), echo=None)  # fmt: skip


def test_a_held_run_keeps_the_thumbnails_sizes_that_a_free_one_inflates(tmp_path):
    """The failure it exists for: a strong thumbnail-fidelity term makes a free encoder buy bits; held
    to the starting weights' sizes, the thumbnail's bits stay near the reference's, the price is
    logged and saved with the snapshot, and a resumed run continues from the saved price."""
    crops = np.stack([photo_like(96, 96, seed=i, detail=1.0 + (i % 3) / 2) for i in range(12)])
    weights = np.full(len(crops), 1.0 / len(crops))
    start = small_model(seed=5)
    torch.save({"config": SMALL_DETAIL_CONFIG.to_dict(), "model": start.state_dict()}, tmp_path / "start.pt")

    def run(name, **overrides):
        settings = {
            "steps": 60, "batch": 4, "patch": 64, "lr": 2e-3, "warmup": 5, "checkpoint_every": 20,
            "validate_every": 1000, "loss": "mse", "trains": "all", "model": SMALL_DETAIL_CONFIG.to_dict(),
            "lambda_at_rate0": 1e-3, "lambda_at_rate1": 1e-4, "thumb_weight": 1.0, "detail_rate_share": 0.0,
        }  # fmt: skip
        settings.update(overrides)
        events = []
        train(tmp_path / name, TrainConfig(**settings), crops, weights, echo=events.append,
              init_from=tmp_path / "start.pt", snapshot=tmp_path / f"{name}.snapshot.pt")  # fmt: skip
        return [e for e in events if "bpp" in e]

    free = run("free")
    held = run("held", thumb_sizes_from=str(tmp_path / "start.pt"), thumb_size_step=0.2)
    assert "bpp_vs_ref_r0" in held[-1] and "price_r0.5" in held[-1] and "bpp_vs_ref_r0" not in free[-1]
    assert free[-1]["bpp"] > 1.3 * free[0]["bpp"]  # the free encoder bought bits ...
    assert held[-1]["bpp"] < 0.85 * free[-1]["bpp"]  # ... the held one far fewer
    assert held[-1]["price_r0"] > 1.0  # because its bits got dearer
    assert held[-1]["bpp_vs_ref_r0"] < 0.7 * free[-1]["bpp"] / free[0]["bpp"]  # nearer the reference's sizes
    saved = torch.load(tmp_path / "held.snapshot.pt", weights_only=False)
    assert saved["step"] == 60 and saved["size_hold"]["log_price"][0] > 0.5
    checkpoint = torch.load(tmp_path / "held" / "checkpoint.pt", weights_only=False)
    assert checkpoint["size_hold"] == saved["size_hold"]  # the run folder's own resume carries it too
    # resumed from the snapshot on "a new machine": the price continues, not from 1
    events = []
    config = TrainConfig(**{**saved["config"], "steps": 61})
    train(tmp_path / "moved", config, crops, weights, echo=events.append, resume_from=tmp_path / "held.snapshot.pt",
          snapshot=tmp_path / "moved.snapshot.pt")  # fmt: skip
    moved = torch.load(tmp_path / "moved.snapshot.pt", weights_only=False)
    assert moved["step"] == 61
    assert moved["size_hold"]["log_price"][0] == pytest.approx(saved["size_hold"]["log_price"][0], abs=0.2 * 1.5)
    assert abs(moved["size_hold"]["log_price"][0]) > 0.5 * abs(saved["size_hold"]["log_price"][0])
