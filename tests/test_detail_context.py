"""The detail layer's context prior: exact integers, the tile's coding steps, version-2 records,
files made with a context model, and what a reader without the context does with them."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from codec_fixtures import SMALL_CONTEXT_CONFIG, SMALL_DETAIL_CONFIG, random_model
from PIL import Image
from test_detail_layer import _photo, _rewrite_payload

from app.codec.api import Codec
from app.codec.engine.detail_coding import (
    CONTEXT_VERSION,
    CoderTables,
    DetailLayerError,
    DetailRecord,
    decode_context_tile,
    decode_context_tiles,
    encode_context_tile,
    symbols_checksum,
)
from app.codec.engine.detail_context_int import ACT_BITS, IntegerContext, anchors_of, tile_steps
from app.codec.engine.detail_layer import DetailCoder, DetailSource
from app.codec.engine.detail_prior_int import IntegerPrior, _weight_exponent
from app.codec.engine.runtime import available_runtimes
from app.codec.engine.weights import save_weights
from app.codec.files.payload import DETAIL_KIND, unpack_records
from app.codec.files.reader import read_thumbnail
from app.codec.nets.detail import SCALE_LEVELS
from app.codec.nets.model import ModelConfig


@pytest.fixture(scope="module")
def model():
    return random_model(SMALL_CONTEXT_CONFIG, seed=5)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, model):
    """A context model and the same weights without the context, side by side."""
    directory = tmp_path_factory.mktemp("context-weights")
    save_weights(model, directory, "test-context", trained=False, training={"note": "test"})
    plain = random_model(SMALL_DETAIL_CONFIG, seed=5)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("context.")})
    save_weights(plain, directory, "test-plain", trained=False, training={"note": "test"}, make_default=False)
    return directory


def _features(model, seed=1, size=(64, 96), level=200):
    prior = IntegerPrior(model.prior)
    return prior.with_features(_photo(seed, size), level)


def _int64_correction(model, step, hidden, symbols, where):
    """The same step as plain int64 3x3 convolutions with masked weights, converted here from the
    float network: an independent check of the float64 path and its 1x1 / 3x3 split."""
    context = model.context
    g, second = divmod(step, 2)
    n = context.group_size
    sym = symbols[: (g + 1) * n if second else g * n].astype(np.int64)
    if second:
        sym[g * n :] *= anchors_of(*symbols.shape[1:])
    x = np.concatenate([hidden.numpy().astype(np.int64), sym << ACT_BITS])
    layers = context.steps[step]
    for i, conv in enumerate(layers):
        w = (conv.weight * conv.mask if i == 0 else conv.weight).detach().double()
        e = _weight_exponent(w.float())
        w = torch.round(w * 2.0**e).numpy().astype(np.int64)
        bias = torch.round(conv.bias.detach().double() * 2.0 ** (e + ACT_BITS)).numpy().astype(np.int64)
        kernel = w.shape[-1]
        c, h, wd = x.shape
        pad = kernel // 2
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
        acc = np.zeros((w.shape[0], h, wd), np.int64)
        for dy in range(kernel):
            for dx in range(kernel):
                acc += np.einsum("oc,chw->ohw", w[:, :, dy, dx], xp[:, dy : dy + h, dx : dx + wd])
        acc += bias[:, None, None]
        if i < len(layers) - 1:
            acc = np.maximum(acc, 0)
        x = (acc + (1 << (e - 1))) >> e
    return x[:, where]


@pytest.mark.parametrize("neighbours", ["group", "all"])
def test_integer_context_is_exact(model, neighbours):
    if neighbours != model.config.detail.context_neighbours:
        detail = replace(model.config.detail, context_neighbours=neighbours)
        model = random_model(replace(model.config, detail=detail), seed=6)
    context = IntegerContext(model.context)
    _, position, hidden = _features(model)
    rng = np.random.default_rng(0)
    symbols = rng.integers(-40, 41, position.shape).astype(np.int16)
    anchors = anchors_of(*position.shape[1:])
    for step in range(context.step_count):
        where = anchors if step % 2 == 0 else ~anchors
        got = context.correction(step, hidden[None], symbols[None], where)[0]
        assert np.array_equal(got, _int64_correction(model, step, hidden, symbols, where)), step
    assert np.abs(got).max() > 2**ACT_BITS  # the test context moves scales by whole steps


def test_integer_context_follows_the_float_context(model):
    """Scale indexes from the integer steps are the float model's rounded positions, within one
    step, for nearly every element."""
    ycc = _photo(2, (64, 96))
    level = 180
    prior, context = IntegerPrior(model.prior), IntegerContext(model.context)
    _, position_fx, hidden = prior.with_features(ycc, level)
    rng = np.random.default_rng(1)
    symbols = rng.integers(-6, 7, position_fx.shape).astype(np.int16)
    got_symbols, index = tile_steps(context, hidden[None], position_fx[None], lambda t, c, w, i: symbols[c][:, w])
    got_symbols, index = got_symbols[0], index[0]
    assert np.array_equal(got_symbols, symbols)
    with torch.no_grad():
        h = model.prior.hidden(torch.from_numpy(ycc).permute(2, 0, 1)[None].float(), torch.tensor([level / 255]))
        _, base = model.prior.head(h)
        position = base + model.context(h, torch.from_numpy(symbols)[None].float())
    expected = position[0].round().clamp(0, SCALE_LEVELS - 1).numpy()
    assert np.mean(index == expected) > 0.97
    assert np.abs(index.astype(int) - expected).max() <= 1
    assert np.mean(index != np.clip(np.round(position_fx / 2**ACT_BITS), 0, SCALE_LEVELS - 1)) > 0.3  # it corrects


def test_context_tiles_round_trip_and_damage_is_caught(model):
    tables = CoderTables.from_buffers(model.prior.coder_freqs, model.prior.coder_halves)
    context = IntegerContext(model.context)
    _, position, hidden = _features(model, 3, (128, 128))
    rng = np.random.default_rng(2)
    values = np.round(rng.normal(0, 3, position.shape) * rng.choice([0.1, 1, 5], position.shape))
    stream, symbols, index = encode_context_tile(values, context, hidden, position, tables)
    assert len(np.unique(index)) > 8
    assert np.array_equal(decode_context_tile(stream, context, hidden, position, tables), symbols)
    half = tables.halves[index.astype(np.int64)]
    assert np.array_equal(symbols, np.clip(values, -half, half))  # what was coded: the values, clamped
    damaged = bytearray(stream)
    damaged[len(damaged) // 3] ^= 0x21
    try:
        wrong = decode_context_tile(bytes(damaged), context, hidden, position, tables)
    except DetailLayerError:
        wrong = None
    assert wrong is None or symbols_checksum(wrong) != symbols_checksum(symbols)


def test_tiles_decoded_together_are_the_tiles_decoded_alone(model):
    """The decoder batches a chunk's tiles through the context's steps: the same symbols as one
    by one, and a damaged tile among them fails alone."""
    tables = CoderTables.from_buffers(model.prior.coder_freqs, model.prior.coder_halves)
    context = IntegerContext(model.context)
    streams, hiddens, positions, expected = [], [], [], []
    for seed in range(3):
        _, position, hidden = _features(model, 10 + seed, (64, 64))
        values = np.round(np.random.default_rng(seed).normal(0, 4, position.shape))
        stream, symbols, _ = encode_context_tile(values, context, hidden, position, tables)
        streams.append(stream)
        hiddens.append(hidden)
        positions.append(position)
        expected.append(symbols)
    streams[1] = streams[1][: len(streams[1]) // 2] + bytes(len(streams[1]) - len(streams[1]) // 2)
    symbols, failed = decode_context_tiles(streams, context, torch.stack(hiddens), np.stack(positions), tables)
    for t in (0, 2):
        assert t not in failed and np.array_equal(symbols[t], expected[t])
        assert np.array_equal(decode_context_tile(streams[t], context, hiddens[t], positions[t], tables), expected[t])
    assert 1 in failed or symbols_checksum(symbols[1]) != symbols_checksum(expected[1])


@pytest.fixture(scope="module")
def coded(weights, tmp_path_factory):
    """One photo coded by the context model and by the same weights without the context."""
    folder = tmp_path_factory.mktemp("context-coded")
    src = folder / "photo.png"
    Image.fromarray(_photo(7)).save(src)
    out = {}
    manifest = weights / "manifest.json"
    for model_id in ("test-plain", "test-context"):  # each in turn the default, which encodes
        entries = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**entries, "default": model_id}))
        result = Codec(weights).encode_file(src, folder / f"{model_id}.jpg", rate=1.0, effort="fast")
        out[model_id] = (folder / f"{model_id}.jpg", result)
    return out


def _record(path) -> DetailRecord:
    return DetailRecord.from_bytes(unpack_records(read_thumbnail(path).payload)[DETAIL_KIND])


def test_a_context_file_decodes_to_the_same_latent_in_other_bytes(coded, weights):
    """The context changes the bits, never the decoded latent (where no symbol was clamped)."""
    context_path, context_result = coded["test-context"]
    plain_path, plain_result = coded["test-plain"]
    assert _record(context_path).version == CONTEXT_VERSION and _record(plain_path).version == 1
    assert context_result.detail_bytes > 0 and context_result.detail_bytes != plain_result.detail_bytes
    latents = {}
    for model_id, path in (("test-context", context_path), ("test-plain", plain_path)):
        reconstructor = Codec(weights).reconstructor(path)  # each file names its own weights
        reconstructor.decode()
        assert reconstructor.notes == []
        latents[model_id] = reconstructor.detail.latent.numpy().copy()
    assert np.mean(latents["test-context"] == latents["test-plain"]) > 0.95


def test_a_context_layer_decodes_identically_on_every_runtime(coded, weights):
    path, _ = coded["test-context"]
    latents = {}
    for name in available_runtimes(device_type="cpu"):
        if name.startswith("onnx"):
            continue
        reconstructor = Codec(weights, runtime=name).reconstructor(path)
        reconstructor.decode()
        latents[name] = reconstructor.detail.latent.numpy().copy()
    reference = latents.pop("torch-fp32")
    for name, latent in latents.items():
        assert np.array_equal(latent, reference), name


def test_a_context_record_without_the_context_is_refused_with_a_reason(coded, weights):
    from app.codec.engine.weights import find_weights, load_model

    path, _ = coded["test-context"]
    thumbnail = read_thumbnail(path)
    record = unpack_records(thumbnail.payload)[DETAIL_KIND]
    plain = DetailCoder(load_model(find_weights(weights, model_id="test-plain")))
    with pytest.raises(DetailLayerError, match="context prior"):
        DetailSource(plain, record, thumbnail.ycbcr)
    with_context = DetailCoder(load_model(find_weights(weights, model_id="test-context")))
    plain_file = read_thumbnail(coded["test-plain"][0])
    plain_record = unpack_records(plain_file.payload)[DETAIL_KIND]
    source = DetailSource(with_context, plain_record, plain_file.ycbcr)  # version 1: the base prior's scales
    source.prefetch()
    assert source.complete and not source.failed_tiles


def test_models_without_a_context_keep_their_manifest_entries():
    assert "context_groups" not in SMALL_DETAIL_CONFIG.to_dict()["detail"]
    d = SMALL_CONTEXT_CONFIG.to_dict()
    assert d["detail"]["context_groups"] == 2
    assert ModelConfig.from_dict(d) == SMALL_CONTEXT_CONFIG
    assert ModelConfig.from_dict(SMALL_DETAIL_CONFIG.to_dict()) == SMALL_DETAIL_CONFIG


def test_training_charges_the_layer_its_bits_under_the_context(model):
    """The model's training forward counts the layer's bits with the context's scales, and the
    context's networks get gradients: a later joint fine-tune trains what files code."""
    torch.manual_seed(0)
    photos = torch.from_numpy(_photo(9, (128, 128))).permute(2, 0, 1)[None].float().repeat(2, 1, 1, 1) / 255
    rates = torch.tensor([0.7, 1.0])
    out = model.train()(photos, rates, frozen_thumbnail=True)
    model.eval()
    assert torch.isfinite(out.detail_bpp).all() and (out.detail_bpp > 0).all()
    out.detail_bpp.sum().backward()
    grads = [p.grad for p in model.context.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    model.zero_grad()


@pytest.mark.parametrize("damage", ["flip", "version 1", "version 2 elsewhere"])
def test_a_damaged_context_layer_gives_the_base_where_it_fails_and_a_note(coded, weights, tmp_path, damage):
    """Hostile version-2 records: a damaged tile stream, a record relabelled version 1 (every
    tile's scales then differ: each fails its CRC), and a version-2 label on a plain model's file
    (refused). Never a crash, never garbage: the prior's mean where a tile fails, and a note."""
    path = coded["test-plain" if damage == "version 2 elsewhere" else "test-context"][0]
    record = _record(path)

    def mutate(data: bytes) -> bytes:
        if damage == "flip":
            streams = list(record.streams)
            streams[0] = bytes(b ^ 0xA5 if i % 3 == 0 else b for i, b in enumerate(streams[0]))
            return replace(record, streams=streams).to_bytes()
        return replace(record, version=1 if damage == "version 1" else CONTEXT_VERSION).to_bytes()

    bad = _rewrite_payload(path, tmp_path / "bad.jpg", mutate)
    codec = Codec(weights)
    base = codec.reconstructor(path, detail=False).decode()
    reconstructor = codec.reconstructor(bad)
    pixels = reconstructor.decode()
    assert pixels.shape == base.shape and pixels.std() > 5
    assert reconstructor.notes
    if damage == "version 2 elsewhere":
        assert "detail layer is not used" in reconstructor.notes[0] and "context prior" in reconstructor.notes[0]
        assert np.array_equal(pixels, base)
    else:
        failed = reconstructor.detail.failed_tiles
        assert failed == [0] if damage == "flip" else len(failed) == len(reconstructor.detail.tiles)


def test_exactness_is_proved_when_a_model_is_loaded(model):
    """The largest accumulator any thumbnail and any codable symbols can reach is bounded below
    2^53 at load time; a context whose weights could exceed it is refused, not run inexactly."""
    from app.codec.engine.detail_context_int import check_exact

    prior, context = IntegerPrior(model.prior), IntegerContext(model.context)
    check_exact(prior, context)
    check_exact(prior, None)
    (centre, spatial, bias, shift, centred), *rest = context.steps[3]
    context.steps[3] = [(centre, spatial * 2.0**30, bias, shift, centred), *rest]  # a hostile weights file
    with pytest.raises(ValueError, match="not exact"):
        check_exact(prior, context)


def test_the_largest_symbols_stay_exact(model):
    """Symbols at the tables' limit (+-512) through every step: still the int64 reference."""
    context = IntegerContext(model.context)
    _, position, hidden = _features(model, 4)
    symbols = np.where(np.random.default_rng(5).random(position.shape) < 0.5, 512, -512).astype(np.int16)
    anchors = anchors_of(*position.shape[1:])
    for step in range(context.step_count):
        where = anchors if step % 2 == 0 else ~anchors
        got = context.correction(step, hidden[None], symbols[None], where)[0]
        assert np.array_equal(got, _int64_correction(model, step, hidden, symbols, where)), step
