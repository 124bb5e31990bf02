"""The detail layer: exact integer prior, range-coded tiles, the HTD1 record, files with a layer,
and every way a layer can be damaged, truncated or mismatched (base reconstruction + a note)."""

import io
import struct

import numpy as np
import pytest
import torch
from codec_fixtures import SMALL_DETAIL_CONFIG, random_model
from PIL import Image

from app.codec.api import Codec
from app.codec.engine.detail_coding import (
    CoderTables,
    DetailLayerError,
    DetailRecord,
    decode_tile,
    encode_tile,
    symbols_checksum,
)
from app.codec.engine.detail_layer import pad_samples
from app.codec.engine.detail_prior_int import MEAN_DIV, IntegerPrior
from app.codec.engine.runtime import available_runtimes
from app.codec.engine.weights import save_weights
from app.codec.files.payload import DETAIL_KIND, PayloadError, pack_records, unpack_records
from app.codec.files.reader import read_thumbnail
from app.codec.nets.detail import LATENT_STRIDE, SCALE_LEVELS, DetailPrior, rate_level


@pytest.fixture(scope="module")
def model():
    return random_model(SMALL_DETAIL_CONFIG, seed=3)


@pytest.fixture(scope="module")
def detail_weights(tmp_path_factory, model):
    directory = tmp_path_factory.mktemp("detail-weights")
    save_weights(model, directory, "test-detail", trained=False, training={"note": "test"})
    return directory


def _photo(seed: int = 0, size=(200, 264)) -> np.ndarray:
    """A photo-like image: smooth gradients, edges and fine texture."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w, y / h, (x + y) / (w + h)], -1) * 180 + 40
    base[(x // 23 + y // 17) % 2 == 0] *= 0.7
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _samples(seed: int = 1, size=(48, 72)) -> np.ndarray:
    return _photo(seed, size)


def _int64_prior(prior: IntegerPrior, ycbcr: np.ndarray, level: int):
    """The same integer network in pure int64 numpy loops-of-matmuls: an independent check."""
    x = (
        DetailPrior.inputs(
            torch.from_numpy(ycbcr.astype(np.float64)).permute(2, 0, 1)[None], torch.tensor([float(level)])
        )[0]
        .numpy()
        .astype(np.int64)
    )
    for i, (weight, bias, kernel, shift) in enumerate(prior.layers):
        w = weight.numpy().astype(np.int64).reshape(weight.shape[0], -1, kernel, kernel)
        c, h, wd = x.shape
        pad = kernel // 2
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
        acc = np.zeros((w.shape[0], h, wd), np.int64)
        for dy in range(kernel):
            for dx in range(kernel):
                acc += np.einsum("oc,chw->ohw", w[:, :, dy, dx], xp[:, dy : dy + h, dx : dx + wd])
        acc += bias.numpy().astype(np.int64)[:, None, None]
        if i < len(prior.layers) - 1:
            x = (np.maximum(acc, 0) + (1 << (shift - 1))) >> shift  # rounding division by a power of two
    c = prior.latent
    mean = acc[:c] >> (shift - 4)
    index = np.clip((acc[c:] + (1 << (shift - 1))) >> shift, 0, SCALE_LEVELS - 1)
    return mean, index


def test_integer_prior_is_exact_and_tile_invariant(model):
    prior = IntegerPrior(model.prior)
    ycc = _samples()
    mean, index = prior(ycc, 200)
    ref_mean, ref_index = _int64_prior(prior, ycc, 200)
    assert np.array_equal(mean, ref_mean) and np.array_equal(index, ref_index)  # float64 BLAS == int64, bit for bit
    assert len(np.unique(index)) > 8  # the test model spreads its scales: many tables are exercised
    tile_mean, tile_index = prior(ycc, 200, (3, 9, 5, 14))  # a box: its context comes from the samples around it
    assert np.array_equal(tile_mean, mean[:, 3:9, 5:14]) and np.array_equal(tile_index, index[:, 3:9, 5:14])


def test_integer_prior_follows_the_float_prior(model):
    """The integer form is the trained float network to within a rounding of its output."""
    prior = IntegerPrior(model.prior)
    ycc = _samples(4)
    level = 128
    mean_q, index = prior(ycc, level)
    with torch.no_grad():
        mean_f, position = model.prior(
            torch.from_numpy(ycc).permute(2, 0, 1)[None].float(), torch.tensor([level / 255])
        )
    expected = position[0].clamp(0, SCALE_LEVELS - 1).round().numpy()
    assert np.mean(index == expected) > 0.97
    assert np.abs(index - expected).max() <= 1
    assert np.abs(mean_q / MEAN_DIV - mean_f[0].numpy()).max() < 0.1


def test_tiles_round_trip_and_checksums(model):
    tables = CoderTables.from_buffers(model.prior.coder_freqs, model.prior.coder_halves)
    rng = np.random.default_rng(0)
    index = rng.integers(0, SCALE_LEVELS, (8, 10, 12)).astype(np.uint8)
    half = tables.halves[index.astype(np.int64)]
    symbols = np.clip(np.round(rng.normal(0, 1, index.shape) * 0.11 * np.exp(index * 0.1)), -half, half).astype(
        np.int16
    )
    stream = encode_tile(symbols, index, tables)
    assert np.array_equal(decode_tile(stream, index, tables), symbols)
    damaged = bytearray(stream)
    damaged[len(damaged) // 2] ^= 0x5A
    try:
        wrong = decode_tile(bytes(damaged), index, tables)
    except DetailLayerError:
        wrong = None
    assert wrong is None or symbols_checksum(wrong) != symbols_checksum(symbols)


def test_record_parser_rejects_every_truncation(model):
    record = DetailRecord(
        10, (20, 40), 16, 8, [b"\x01\x02\x03\x04", b"", b"abcdefgh", b"\x00" * 4, b"", b""], [1, 2, 3, 4, 5, 6]
    )
    data = record.to_bytes()
    assert DetailRecord.from_bytes(data) == record
    for cut in range(len(data)):
        with pytest.raises(DetailLayerError):
            DetailRecord.from_bytes(data[:cut])
    with pytest.raises(DetailLayerError):
        DetailRecord.from_bytes(data + b"x")
    with pytest.raises(DetailLayerError):  # a version this reader does not know
        DetailRecord.from_bytes(data[:4] + b"\x09" + data[5:])
    tiny = DetailRecord(10, (20, 40), 1, 8, [b""] * 800, [0] * 800).to_bytes()
    with pytest.raises(DetailLayerError, match="smaller than"):  # 1x1 tiles: a prior evaluation per position
        DetailRecord.from_bytes(tiny)


def test_payload_records():
    packed = pack_records({DETAIL_KIND: b"layer", b"XXXX": b"future"})
    assert unpack_records(packed) == {DETAIL_KIND: b"layer", b"XXXX": b"future"}
    assert unpack_records(b"HTA1" + b"\x00" * 5) == {b"HTA1": b"HTA1" + b"\x00" * 5}  # a v2 file's bare adaptation
    for bad in (
        packed[:-1],
        packed[:7],
        b"HTR1" + struct.pack(">4sI", b"HTD1", 1) + b"a" + struct.pack(">4sI", b"HTD1", 0),
        b"JUNK",
    ):
        with pytest.raises(PayloadError):
            unpack_records(bad)


@pytest.fixture(scope="module")
def coded(detail_weights, tmp_path_factory):
    """A photo, and its HyperThumbnail with a detail layer at the best rate."""
    folder = tmp_path_factory.mktemp("coded")
    photo = _photo(7)
    src = folder / "photo.png"
    Image.fromarray(photo).save(src)
    codec = Codec(detail_weights)
    result = codec.encode_file(src, folder / "photo.jpg", rate=1.0, effort="fast")  # fast: the layer, kept unmeasured
    return photo, folder / "photo.jpg", result


def test_a_file_carries_the_layer_and_decodes_it(coded, detail_weights):
    photo, path, result = coded
    assert result.detail_bytes > 0
    codec = Codec(detail_weights)
    thumbnail = read_thumbnail(path)
    records = unpack_records(thumbnail.payload)
    assert len(records[DETAIL_KIND]) == result.detail_bytes
    record = DetailRecord.from_bytes(records[DETAIL_KIND])
    assert record.rate_level == rate_level(1.0) and record.channels == 8
    assert record.grid == tuple(s // LATENT_STRIDE for s in pad_samples(thumbnail.ycbcr).shape[:2])
    full = codec.reconstructor(path)
    with_layer = full.decode()
    base = codec.reconstructor(path, detail=False).decode()
    assert with_layer.shape == base.shape == photo.shape
    assert not np.array_equal(with_layer, base)  # the layer changes the reconstruction
    assert full.notes == []
    region = full.decode(region=None)
    assert np.array_equal(region, with_layer)  # decoded tiles are cached, the result the same


def test_the_layer_decodes_identically_on_every_runtime(coded, detail_weights):
    """The latent a file decodes to (every symbol, hence every probability) is the same whatever
    runtime and precision runs the decoder: the coder's path never touches them."""
    _, path, _ = coded
    latents = {}
    for name in available_runtimes(device_type="cpu"):
        if name.startswith("onnx"):
            continue  # no ONNX graph for these test weights; it would not change the latent either
        reconstructor = Codec(detail_weights, runtime=name).reconstructor(path)
        reconstructor.decode()
        latents[name] = reconstructor.detail.latent.numpy().copy()
    reference = latents.pop("torch-fp32")
    for name, latent in latents.items():
        assert np.array_equal(latent, reference), name


def test_onnx_runtime_decodes_a_layer_through_its_second_graph(coded, detail_weights, tmp_path):
    """Weights with a detail layer export two ONNX graphs; ONNX Runtime is offered for them only
    with both, and decodes a file with a layer as PyTorch float32 does."""
    import json
    import shutil

    from app.codec.engine.runtime import unavailable_reason
    from app.codec.engine.weights import find_weights
    from app.training.onnx_export import export_onnx

    tmp_path = shutil.copytree(detail_weights, tmp_path / "weights")  # the weights the file names
    assert "no ONNX decoder graph" in unavailable_reason("onnx-fp32", find_weights(tmp_path))
    entry = export_onnx(tmp_path, "test-detail", log=lambda text: None)
    assert (tmp_path / entry["detail_file"]).is_file() and entry["max_difference_vs_torch"] <= 1
    assert unavailable_reason("onnx-fp32", find_weights(tmp_path)) is None
    _, path, _ = coded
    decoded = {}
    for name in ("torch-fp32", "onnx-fp32"):
        reconstructor = Codec(tmp_path, runtime=name).reconstructor(path)
        decoded[name] = reconstructor.decode().astype(int)
        assert reconstructor.detail is not None and not reconstructor.notes
    base = Codec(tmp_path, runtime="torch-fp32").reconstructor(path, detail=False).decode().astype(int)
    assert np.abs(decoded["onnx-fp32"] - decoded["torch-fp32"]).max() <= 1
    assert np.abs(decoded["onnx-fp32"] - base).mean() > 1  # the layer really went through the graph
    from app.codec.engine.runtime import SPECS, OnnxRuntime
    from app.codec.errors import WeightsError

    graph = tmp_path / entry["detail_file"]
    graph.write_bytes(graph.read_bytes()[:-1] + bytes([graph.read_bytes()[-1] ^ 1]))  # one bit flipped
    with pytest.raises(WeightsError, match="sha256"):
        OnnxRuntime(SPECS["onnx-fp32"], find_weights(tmp_path))
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["models"]["test-detail"]["onnx"]["detail_file"]  # an entry from before the second graph
    manifest_path.write_text(json.dumps(manifest))
    reason = unavailable_reason("onnx-fp32", find_weights(tmp_path))
    assert reason is not None and "with the detail layer" in reason


def test_prefetching_the_layer_gives_the_same_latent_and_leaves_regions_only_the_decoder(coded, detail_weights):
    """The viewer decodes a shown photo's whole latent in the background; a later region then finds
    every tile ready (no prior, no range decoding) and the same numbers as decoding by region."""
    from app.codec.files.tiling import Box, Cancelled

    _, path, _ = coded
    codec = Codec(detail_weights)
    by_region = codec.reconstructor(path)
    reference = by_region.decode()
    prefetched = codec.reconstructor(path)
    assert not prefetched.detail.complete
    prefetched.prefetch_detail()
    assert prefetched.detail.complete
    assert np.array_equal(prefetched.detail.latent.numpy(), by_region.detail.latent.numpy())
    prefetched.detail._decode = lambda tiles: pytest.fail(f"tiles {tiles} decoded again")
    assert np.array_equal(prefetched.decode(Box(0, 64, 0, 64)), reference[:64, :64])
    stopped = codec.reconstructor(path)
    with pytest.raises(Cancelled):  # closed before it started: nothing decoded
        stopped.prefetch_detail(cancelled=lambda: True)
    assert not stopped.detail._done and np.array_equal(stopped.decode(), reference)


def _rewrite_payload(path, out, mutate):
    """Copy a HyperThumbnail with its detail record changed by ``mutate``: the same JPEG data,
    a new payload and a marker whose checksum matches it, so only the layer itself is wrong."""
    from app.codec.files.header import build_metadata
    from app.codec.files.payload import segments as payload_segments

    thumbnail = read_thumbnail(path)
    records = unpack_records(thumbnail.payload)
    records[DETAIL_KIND] = mutate(records[DETAIL_KIND])
    new_payload = pack_records(records)
    meta = build_metadata(thumbnail.marker, thumbnail.marker.thumbnail_size, payload=new_payload)
    body = _strip_app_segments(path.read_bytes())
    out.write_bytes(body[:2] + _app1_xmp(meta.xmp) + payload_segments(new_payload) + body[2:])
    return out


def _strip_app_segments(jpeg: bytes) -> bytes:
    """The JPEG without its APP1 (XMP/EXIF) and APP11 segments."""
    out, at = bytearray(jpeg[:2]), 2
    while at < len(jpeg) and jpeg[at] == 0xFF and jpeg[at + 1] not in (0xDA,):
        marker = jpeg[at + 1]
        length = struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
        if marker not in (0xE1, 0xEB):
            out += jpeg[at : at + 2 + length]
        at += 2 + length
    return bytes(out + jpeg[at:])


def _app1_xmp(packet: bytes) -> bytes:
    body = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


@pytest.mark.parametrize("damage", ["flip", "truncate", "grid", "channels", "garbage"])
def test_a_damaged_layer_gives_the_base_reconstruction_and_a_note(coded, detail_weights, tmp_path, damage):
    _, path, _ = coded
    record = DetailRecord.from_bytes(unpack_records(read_thumbnail(path).payload)[DETAIL_KIND])

    def mutate(data: bytes) -> bytes:
        if damage == "flip":  # one tile's stream damaged: that tile falls back, the others decode
            streams = list(record.streams)
            first = bytearray(streams[0])
            for i in range(0, len(first), 3):
                first[i] ^= 0xA5
            streams[0] = bytes(first)
            return DetailRecord(
                record.rate_level, record.grid, record.tile, record.channels, streams, record.checksums
            ).to_bytes()
        if damage == "truncate":
            return data[: len(data) // 2]
        if damage == "grid":
            return DetailRecord(
                record.rate_level,
                (record.grid[0] + 1, record.grid[1]),
                record.tile,
                record.channels,
                record.streams + [b""] * 8,
                record.checksums + [0] * 8,
            ).to_bytes()
        if damage == "channels":
            return DetailRecord(
                record.rate_level, record.grid, record.tile, 9, record.streams, record.checksums
            ).to_bytes()
        return b"HTD1" + bytes(range(256)) * 4

    bad = _rewrite_payload(path, tmp_path / "bad.jpg", mutate)
    codec = Codec(detail_weights)
    base = codec.reconstructor(path, detail=False).decode()
    reconstructor = codec.reconstructor(bad)
    pixels = reconstructor.decode()
    assert pixels.shape == base.shape and pixels.std() > 5  # a picture, never black or blank
    assert reconstructor.notes, "the user is told the detail layer was not (fully) used"
    if damage == "flip":
        assert "detail tiles could not be decoded" in reconstructor.notes[0]
        assert reconstructor.detail.failed_tiles == [0]
    else:
        assert "detail layer is not used" in reconstructor.notes[0]
        assert np.array_equal(pixels, base)


def test_a_file_without_its_payload_segments_is_the_base_reconstruction(coded, detail_weights, tmp_path):
    _, path, _ = coded
    stripped = tmp_path / "stripped.jpg"
    data = path.read_bytes()
    out, at = bytearray(data[:2]), 2
    while data[at + 1] != 0xDA:
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if data[at + 1] != 0xEB:  # drop APP11, as a tool that strips unknown segments would
            out += data[at : at + 2 + length]
        at += 2 + length
    stripped.write_bytes(bytes(out + data[at:]))
    codec = Codec(detail_weights)
    reconstructor = codec.reconstructor(stripped)
    assert np.array_equal(reconstructor.decode(), codec.reconstructor(path, detail=False).decode())
    assert any("payload" in note for note in reconstructor.notes)
    with Image.open(io.BytesIO(stripped.read_bytes())) as im:  # still an ordinary JPEG
        assert im.size == read_thumbnail(path).rgb.shape[1::-1]


def test_random_damage_to_the_layer_never_crashes(coded, detail_weights, tmp_path):
    """Flipped, cut and inserted bytes anywhere in the record: a picture and at most a note."""
    _, path, _ = coded
    rng = np.random.default_rng(5)
    codec = Codec(detail_weights)
    for trial in range(12):

        def mutate(data: bytes) -> bytes:
            data = bytearray(data)
            kind = trial % 3  # noqa: B023 (called in this iteration)
            at = int(rng.integers(4, len(data)))
            if kind == 0:
                for i in rng.integers(4, len(data), 4):
                    data[int(i)] = int(rng.integers(0, 256))
            elif kind == 1:
                del data[at:]
            else:
                data[at:at] = bytes(rng.integers(0, 256, 16).astype(np.uint8))
            return bytes(data)

        bad = _rewrite_payload(path, tmp_path / f"bad{trial}.jpg", mutate)
        reconstructor = codec.reconstructor(bad)
        pixels = reconstructor.decode()
        assert pixels.shape[2] == 3 and pixels.std() > 5


def test_cli_info_lists_each_layer_and_decode_can_skip_the_layer(coded, detail_weights, tmp_path, capsys):
    from app.cli import main

    _, path, result = coded
    assert main(["--weights", str(detail_weights), "info", str(path), "--json"]) == 0
    import json

    layers = json.loads(capsys.readouterr().out)["layers"]
    assert layers["detail"] == result.detail_bytes and 0 < layers["thumbnail"] < result.file_size
    assert main(["--weights", str(detail_weights), "info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "bytes of" in text and "detail" in text
    codec = Codec(detail_weights)
    for flag, expected in (
        (["--no-detail"], codec.reconstructor(path, detail=False).decode()),
        ([], codec.reconstructor(path).decode()),
    ):
        out = tmp_path / f"out{len(flag)}.png"
        assert main(["--weights", str(detail_weights), "decode", str(path), str(out), *flag]) == 0
        assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expected)


def test_a_layer_that_does_not_pay_is_left_out_and_one_that_does_is_kept(detail_weights, tmp_path, monkeypatch):
    """At the default effort the encoder decodes the photo with its layer: a layer that makes the
    reconstruction no better than the thumbnail with a fitted decoder is left out (smaller and
    better without), one that clearly helps is kept; the size estimate follows the same choice."""
    from app.codec import api
    from app.codec.files.imageio import loaded_from, open_pil

    photo = _photo(7)
    src = tmp_path / "photo.png"
    Image.fromarray(photo).save(src)
    codec = Codec(detail_weights)
    dropped = codec.encode_file(src, tmp_path / "dropped.jpg", rate=1.0)  # the test's random layer does not help
    kept_fast = codec.encode_file(src, tmp_path / "fast.jpg", rate=1.0, effort="fast")
    assert dropped.detail_bytes == 0 and kept_fast.detail_bytes > 0
    assert any("detail layer left out" in note for note in dropped.notes)
    assert dropped.file_size < kept_fast.file_size
    assert codec.reconstructor(tmp_path / "dropped.jpg").detail is None
    real = api.Codec.encode_detail

    def helpful(self, *args, **kwargs):  # the same record, said to make the photo 6 dB better
        layer = real(self, *args, **kwargs)
        return api.DetailLayer(layer.record, layer.base_mse, layer.base_mse / 4 if kwargs.get("measure") else None)

    monkeypatch.setattr(api.Codec, "encode_detail", helpful)
    kept = codec.encode_file(src, tmp_path / "kept.jpg", rate=1.0)
    assert kept.detail_bytes == kept_fast.detail_bytes and not any("left out" in n for n in kept.notes)
    with open_pil(src) as im:
        loaded = loaded_from(im, "photo.png")
    assert codec.estimate_size(loaded, 1.0).bytes > kept.file_size * 0.9  # the estimate counts the layer


def test_detail_layer_worth_and_mean_squared_error():
    from app.codec.api import DetailLayer, mean_squared_error

    a = np.zeros((600, 7, 3), np.uint8)
    b = np.full((600, 7, 3), 4, np.uint8)
    assert mean_squared_error(a, b, rows=256) == 16.0  # bands of rows add up to the whole
    assert DetailLayer(b"x", 16.0, 4.0).pays and abs(DetailLayer(b"x", 16.0, 4.0).gain_db() - 6.0206) < 1e-3
    assert not DetailLayer(b"x", 4.0, 16.0).pays and DetailLayer(b"x", 4.0).pays  # unmeasured: kept
