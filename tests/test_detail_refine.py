"""Export-time refinement of the detail latent: it lowers the rate-distortion objective the layer
is judged by, never raises it, leaves the model alone, and its files decode like any other."""

import copy

import numpy as np
import pytest
import torch
from codec_fixtures import SMALL_CONTEXT_CONFIG, SMALL_DETAIL_CONFIG, random_model
from PIL import Image

from app.codec.api import Codec
from app.codec.engine import detail_layer, detail_refine
from app.codec.engine.detail_layer import DetailCoder, pad_samples
from app.codec.engine.detail_prior_int import MEAN_DIV
from app.codec.engine.inference import decoder_inputs, encode_thumbnail
from app.codec.engine.weights import save_weights
from app.codec.files.imageio import load_image
from app.codec.files.reader import decoded_ycbcr
from app.codec.files.writer import encode_jpeg
from app.codec.nets.detail import LATENT_STRIDE, latent_bits, rate_level


def _photo(seed=0, size=(256, 320)) -> np.ndarray:
    """Smooth shapes plus fine texture: something for a detail layer to carry."""
    g = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 23.0)[..., None] * np.cos(yy / 31.0)[..., None] * np.array([1.0, 0.6, -0.4])
    texture = 25 * np.sin(xx * 1.7 + yy * 0.9)[..., None] + g.normal(0, 6, (h, w, 3))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def problem():
    """A small model with a working detail layer (random weights, a latent worth coding) and
    everything ``refine_latent`` takes for one photo."""
    model = random_model(SMALL_DETAIL_CONFIG, seed=11)
    photo = _photo()
    rate = 0.8
    thumb, luma, chroma = encode_thumbnail(model, photo, rate, tile=64)
    ycbcr = decoded_ycbcr(encode_jpeg(thumb, luma, chroma))
    ycc = pad_samples(ycbcr)
    inputs = decoder_inputs(ycbcr, luma, chroma, torch.device("cpu"))
    coder = DetailCoder(model)
    level = rate_level(rate)
    grid = (ycc.shape[0] // LATENT_STRIDE, ycc.shape[1] // LATENT_STRIDE)
    mean_q, index = coder.prior(ycc, level, (0, grid[0], 0, grid[1]))
    mean = torch.from_numpy(mean_q.astype(np.float32) / MEAN_DIV)
    position = torch.from_numpy(index.astype(np.float32))
    g = torch.Generator().manual_seed(0)
    latent = mean + torch.randn(mean.shape, generator=g) * 3  # an analysis' guess: not tuned to this photo
    pad = ((0, ycc.shape[0] * 4 - photo.shape[0]), (0, ycc.shape[1] * 4 - photo.shape[1]), (0, 0))
    padded = np.pad(photo, pad, mode="edge")
    inverse = coder.inverse_gain(level)[0]
    lam = detail_refine.rd_lambda(rate)
    return model, latent, mean, position, inverse, padded, inputs, lam


def _objective(model, latent, mean, position, inverse, photo, inputs, lam) -> float:
    """The file's bits per pixel + MSE / lambda for the rounded latent, over the whole photo."""
    q = torch.round(latent - mean) + mean
    lr, dq, tables = inputs
    with torch.no_grad():
        out = model.decoder(lr, dq, tables, detail=(q * inverse)[None]).clamp(0, 1)
    target = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
    pixels = photo.shape[0] * photo.shape[1]
    bits = float(latent_bits(q, mean, position).sum())
    return bits / pixels + float(((out - target) ** 2).mean()) / lam


def test_refinement_lowers_the_objective_and_leaves_the_model_alone(problem):
    model, latent, mean, position, inverse, photo, inputs, lam = problem
    before_state = copy.deepcopy(model.decoder.state_dict())
    margin = model.config.decoder.margin()
    args = (model.decoder, latent, mean, position, inverse, photo, inputs, lam)
    refined = detail_refine.refine_latent(*args, 12, margin)
    assert refined.shape == latent.shape and torch.isfinite(refined).all()
    start = _objective(model, latent, mean, position, inverse, photo, inputs, lam)
    end = _objective(model, refined, mean, position, inverse, photo, inputs, lam)
    assert end < 0.97 * start, (start, end)
    # the model is untouched: same weights, no gradients left on it
    for name, value in model.decoder.state_dict().items():
        assert torch.equal(value, before_state[name]), name
    assert all(p.grad is None for p in model.decoder.parameters())
    # deterministic (the same photo gives the same file), and 0 steps is the identity
    assert torch.equal(detail_refine.refine_latent(*args, 12, margin), refined)
    assert torch.equal(detail_refine.refine_latent(*args, 0, margin), latent)


def test_a_tiled_refinement_still_lowers_the_objective(problem, monkeypatch):
    """Tiles see their neighbours: a photo refined in many tiles gains as one refined whole does."""
    model, latent, mean, position, inverse, photo, inputs, lam = problem
    monkeypatch.setattr(detail_refine, "REFINE_TILE", 8)
    refined = detail_refine.refine_latent(
        model.decoder, latent, mean, position, inverse, photo, inputs, lam, 12, model.config.decoder.margin()
    )
    start = _objective(model, latent, mean, position, inverse, photo, inputs, lam)
    end = _objective(model, refined, mean, position, inverse, photo, inputs, lam)
    assert end < 0.97 * start, (start, end)


def test_rd_lambda_follows_the_recipe():
    assert detail_refine.rd_lambda(0.0) == pytest.approx(detail_refine.LAMBDA_AT_RATE0)
    assert detail_refine.rd_lambda(1.0) == pytest.approx(detail_refine.LAMBDA_AT_RATE1)
    assert detail_refine.rd_lambda(0.5, {"lambda_at_rate0": 0.04, "lambda_at_rate1": 0.01}) == pytest.approx(0.02)
    assert detail_refine.rd_lambda(7.0) == pytest.approx(detail_refine.LAMBDA_AT_RATE1)  # the knob is clamped
    # a recipe with the layer's own schedule (--detail-lambda-edge): TrainConfig.detail_lambda's numbers
    from app.training.train import TrainConfig

    config = TrainConfig(lambda_at_rate0=0.016, lambda_at_rate1=1.24e-4, detail_lambda_at_edge=0.016)
    recipe = {"lambda_at_rate0": 0.016, "lambda_at_rate1": 1.24e-4, "detail_lambda_at_edge": 0.016}
    for rate in (0.5, 0.7, 1.0):
        trained = float(config.detail_lambda(torch.tensor(rate), 0.4))
        assert detail_refine.rd_lambda(rate, recipe, 0.4) == pytest.approx(trained, rel=1e-6)
    assert detail_refine.rd_lambda(0.7, recipe, 0.4) != pytest.approx(
        detail_refine.rd_lambda(0.7, recipe | {"detail_lambda_at_edge": None})
    )


def test_the_padding_around_a_photo_is_not_fitted_and_progress_moves_every_step(problem):
    """Only the photo's own pixels count: with the photo declared smaller than its padded array,
    what lies outside it cannot change the refined latent; progress reports each Adam step."""
    model, latent, mean, position, inverse, photo, inputs, lam = problem
    margin = model.config.decoder.margin()
    h, w = 200, 260  # the photo inside the padded array (256 x 320)
    other = photo.copy()
    other[h:], other[:, w:] = 0, 255  # garbage where there is no photo
    calls = []
    args = (model.decoder, latent, mean, position, inverse)
    one = detail_refine.refine_latent(
        *args, photo, inputs, lam, 3, margin, size=(h, w), progress=lambda *a: calls.append(a)
    )
    two = detail_refine.refine_latent(*args, other, inputs, lam, 3, margin, size=(h, w))
    assert torch.equal(one, two)
    assert not torch.equal(one, detail_refine.refine_latent(*args, other, inputs, lam, 3, margin))  # it would count
    assert len(calls) >= 4 and calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == sorted({c[0] for c in calls})


@pytest.mark.parametrize("context", [False, True], ids=["record v1", "context, record v2"])
def test_refined_files_carry_a_layer_that_decodes_and_their_estimate_refines_too(tmp_path, monkeypatch, context):
    assert detail_refine.STEPS_BY_EFFORT["best"] > 0 == detail_refine.STEPS_BY_EFFORT["default"]
    model = random_model(SMALL_CONTEXT_CONFIG if context else SMALL_DETAIL_CONFIG, seed=11)
    save_weights(model, tmp_path / "weights", "test-detail", trained=False, training={"note": "test"})
    codec = Codec(tmp_path / "weights")
    src = tmp_path / "photo.png"
    photo = _photo(3)
    Image.fromarray(photo).save(src)
    plain = codec.encode_file(src, tmp_path / "plain.jpg", rate=1.0, effort="fast")
    steps = []
    real = detail_layer.refine_latent

    def spy(*args, **kwargs):
        steps.append(args[8])
        return real(*args, **kwargs)

    monkeypatch.setattr(detail_layer, "refine_latent", spy)
    # effort "fast" keeps a random model's layer unmeasured (at "best" the export would measure
    # it, find that it does not pay and leave it out); here it refines as "best" does
    monkeypatch.setitem(detail_refine.STEPS_BY_EFFORT, "fast", 12)
    ticks = []
    refined = codec.encode_file(
        src, tmp_path / "refined.jpg", rate=1.0, effort="fast", progress=lambda d, t: ticks.append(d / t)
    )
    assert ticks == sorted(ticks) and ticks[-1] == 1.0  # the refinement has its share of the bar
    estimate = codec.estimate_size(load_image(src), rate=1.0, effort="fast")
    assert steps == [12, 12]  # the export and its estimate
    assert plain.detail_bytes > 0 and refined.detail_bytes > 0
    reconstructor = codec.reconstructor(tmp_path / "refined.jpg")
    assert reconstructor.decode().shape == photo.shape and reconstructor.notes == []
    assert (tmp_path / "refined.jpg").read_bytes() != (tmp_path / "plain.jpg").read_bytes()
    size = (tmp_path / "refined.jpg").stat().st_size
    assert abs(estimate.bytes - size) <= 0.1 * size  # the estimate refines too, so it still fits
