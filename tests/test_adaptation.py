"""Per-image decoder adaptation: fitted offsets help, travel in the payload, and every runtime applies them."""

import numpy as np
import pytest
from codec_fixtures import make_weights
from PIL import Image

from app.codec.api import Codec
from app.codec.engine import adaptation
from app.codec.engine.inference import Reconstructor, encode_thumbnail
from app.codec.engine.runtime import build_runtime
from app.codec.engine.weights import load_model
from app.codec.files.reader import decoded_ycbcr, read_thumbnail
from app.codec.files.writer import encode_jpeg
from app.synthetic import photo_like


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_weights(tmp_path_factory.mktemp("weights"), onnx=True)


def test_quantised_offsets_round_trip_and_damage_is_refused(weights):
    sizes = adaptation.layer_sizes(load_model(weights))
    offsets = np.random.default_rng(0).normal(0, 0.01, sum(sizes)).astype(np.float32)
    payload = adaptation.quantize(offsets, sizes)
    restored = adaptation.dequantize(payload, sizes)
    assert np.abs(restored - offsets).max() <= np.abs(offsets).max() / adaptation.LEVELS  # per layer
    fine = adaptation.quantize(offsets, sizes, levels=127)
    assert np.abs(adaptation.dequantize(fine, sizes) - offsets).max() <= np.abs(offsets).max() / 127
    assert len(payload) < len(fine)  # fewer levels, fewer bytes
    with pytest.raises(ValueError):
        adaptation.dequantize(payload, sizes[:-1])
    with pytest.raises(ValueError):
        adaptation.dequantize(b"HTA1" + b"\x00" * 20, sizes)


def test_fitting_raises_psnr_on_held_out_crops(weights):
    model = load_model(weights)
    photo = photo_like(256, 192, seed=4)
    thumb, luma, chroma = encode_thumbnail(model, photo, 0.5)
    result = adaptation.fit(
        model, photo, decoded_ycbcr(encode_jpeg(thumb, luma, chroma)), luma, chroma, steps=30, side=32, lr=5e-3
    )
    assert result.gain_db > 0.05 and result.payload_bytes < 4000
    offsets = adaptation.dequantize(result.payload, adaptation.layer_sizes(model))
    at = 0
    for name, layer in model.decoder.adaptable_layers():  # only the pixel branch is fitted
        size = layer.bias.numel()
        assert (np.abs(offsets[at : at + size]).max() > 0) == (name.split(".")[0] in adaptation.ADAPTED_LAYERS), name
        at += size


def test_rd_price_and_small_photos_skip_the_fit():
    assert adaptation.db_per_bpp(0.0) > adaptation.db_per_bpp(0.5) > adaptation.db_per_bpp(1.0) > 0
    assert not adaptation.worth_trying(256 * 192, 0.5)  # 300 bytes would cost more than any gain seen
    assert adaptation.worth_trying(1920 * 1280, 0.5)


def test_export_progress_is_one_rising_bar(weights, tmp_path, monkeypatch):
    monkeypatch.setattr(adaptation, "worth_trying", lambda pixels, rate: True)
    source = tmp_path / "p.png"
    Image.fromarray(photo_like(128, 96, seed=3)).save(source)
    seen = []
    Codec(weights.path.parent, runtime="torch-fp32").encode_file(
        source, tmp_path / "t.jpg", progress=lambda d, t: seen.append(d / t)
    )
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len([f for f in seen if f > 0.15]) == adaptation.EFFORT_STEPS["default"]  # the fit's steps


def test_cli_offers_the_codecs_efforts():
    from app.cli import build_parser

    action = next(
        a for a in build_parser()._subparsers._group_actions[0].choices["encode"]._actions if a.dest == "effort"
    )
    assert tuple(action.choices) == tuple(adaptation.EFFORT_STEPS) and action.default == "default"


def test_best_effort_file_carries_offsets_that_every_runtime_applies(weights, tmp_path, monkeypatch):
    monkeypatch.setattr(adaptation, "RD_SLOPES", {0.0: -1e9, 1.0: -1e9})  # keep the payload whatever it buys
    monkeypatch.setattr(adaptation, "worth_trying", lambda pixels, rate: True)
    source = tmp_path / "p.png"
    Image.fromarray(photo_like(160, 96, seed=2)).save(source)
    codec = Codec(weights.path.parent, runtime="torch-fp32")
    result = codec.encode_file(source, tmp_path / "t.jpg", effort="best")
    assert any("decoder adapted" in n for n in result.notes)
    thumbnail = read_thumbnail(tmp_path / "t.jpg")
    assert thumbnail.payload is not None
    model = load_model(weights)
    rec = codec.reconstructor(thumbnail)
    assert rec.offsets is not None
    adapted = rec.decode().astype(int)
    plain = Reconstructor(model, thumbnail.ycbcr, thumbnail.luma_table, thumbnail.chroma_table, (160, 96)).decode()
    assert np.abs(adapted - plain).max() > 0  # the offsets change the picture
    onnx = Reconstructor(
        model,
        thumbnail.ycbcr,
        thumbnail.luma_table,
        thumbnail.chroma_table,
        (160, 96),
        build_runtime("onnx-fp32", model, weights),
        rec.offsets.numpy(),
    )
    assert np.abs(onnx.decode().astype(int) - adapted).max() <= 1
    with pytest.raises(Exception, match="effort"):
        codec.encode_file(source, tmp_path / "u.jpg", effort="huge")


def test_adapter_study_prices_every_kind(weights, tmp_path, capsys):
    from app.training.__main__ import main as training_main
    from app.training.adapters import KINDS

    source = tmp_path / "p.png"
    Image.fromarray(photo_like(128, 96, seed=5)).save(source)
    assert training_main(["adapters", str(source), "--weights", str(weights.path.parent), "--steps", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == list(KINDS) * 2  # the photo's rows, then the means
    sizes = {line.split()[1]: int(line.split()[5]) for line in lines[:3]}
    assert 0 < sizes["bias-pixel"] < sizes["bias-all"]  # the frequency branch's offsets cost bytes
