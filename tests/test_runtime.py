"""Decoder runtimes: every engine decodes what torch-fp32 decodes, and auto picks by measurement."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from codec_fixtures import make_weights, random_model

from app.codec.api import Codec
from app.codec.engine import calibration
from app.codec.engine.inference import Reconstructor
from app.codec.engine.runtime import (
    REFERENCE,
    RUNTIME_ENV,
    SPECS,
    TorchRuntime,
    available_runtimes,
    build_runtime,
    requested_runtime,
    unavailable_reason,
)
from app.codec.engine.weights import find_weights, load_model
from app.codec.errors import CodecError, WeightsError
from app.codec.nets.decoder import bilinear_phases, to_uint8_hwc
from app.synthetic import photo_like


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    return make_weights(folder, onnx=True)


def _thumbnail(width=136, height=88, seed=3):
    rgb = torch.from_numpy(photo_like(width, height, seed=seed)).permute(2, 0, 1).float()
    from app.codec.nets.color import rgb_to_ycbcr

    ycbcr = rgb_to_ycbcr(rgb).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return ycbcr, np.full(64, 6, np.int64), np.full(64, 9, np.int64)


def _decode(model, runtime, full=(540, 350), tile=32):
    ycbcr, luma, chroma = _thumbnail()
    return Reconstructor(model, ycbcr, luma, chroma, full, runtime).decode(tile=tile).astype(np.int16)


def test_bilinear_phases_are_interpolate_before_its_shuffle():
    x = torch.rand(2, 3, 24, 40)
    expected = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert torch.allclose(F.pixel_shuffle(bilinear_phases(x, 4), 4), expected, atol=1e-6)
    photo = to_uint8_hwc(bilinear_phases(x, 4), 4)
    assert photo.shape == (2, 96, 160, 3) and photo.dtype == torch.uint8
    rounded = (expected.clamp(0, 1) * 255).round().permute(0, 2, 3, 1)
    assert (photo.float() - rounded).abs().max() <= 1  # a .5 may round the other way


def test_decoder_forward_is_the_trained_formula():
    """The phases reformulation must not change what the trained weights compute."""
    model = random_model()
    d = model.decoder
    lr, dq, tables = torch.rand(1, 3, 32, 48), torch.randn(1, 3, 64, 4, 6) * 20, torch.full((1, 128), 7.0)
    with torch.no_grad():
        freq = d.frequency_features(dq, tables)
        x = torch.relu(d.pixel_in(lr - 0.5))
        x = torch.relu(d.fuse(torch.cat([x, freq], dim=1)))
        old = F.interpolate(lr, scale_factor=4, mode="bilinear", align_corners=False) + F.pixel_shuffle(
            d.tail(d.body(x)), 4
        )
        assert torch.allclose(d(lr, dq, tables), old, atol=1e-5)
    with torch.inference_mode():  # the in-place inference branch computes the same
        assert torch.allclose(d(lr, dq, tables), old, atol=1e-5)


def test_every_available_runtime_decodes_what_torch_fp32_decodes(weights):
    model = load_model(weights)
    reference = _decode(model, build_runtime(REFERENCE, model, weights))
    names = available_runtimes(weights, "cpu")
    assert "onnx-fp32" in names  # onnxruntime is a dependency, and the fixture exported the graph
    for name in names:
        out = _decode(model, build_runtime(name, model, weights))
        assert out.shape == reference.shape == (350, 540, 3)
        assert (
            calibration.agreement_db(torch.from_numpy(out), torch.from_numpy(reference)) >= calibration.AGREEMENT_DB
        ), name
    assert np.abs(_decode(model, build_runtime("onnx-fp32", model, weights)) - reference).max() <= 1


def test_the_cuda_fp16_code_path_runs_on_the_cpu(weights):
    """No GPU here: the CUDA runtime's own class and dtype, pointed at the CPU, cover its code."""
    model = load_model(weights)
    spec = dataclasses.replace(SPECS["torch-cuda-fp16"], device_type="cpu")
    half = TorchRuntime(spec, model, torch.device("cpu"))
    assert next(half.decoder.parameters()).dtype == torch.float16
    assert next(model.decoder.parameters()).dtype == torch.float32  # the model's own decoder is untouched
    out, reference = _decode(model, half), _decode(model, build_runtime(REFERENCE, model, weights))
    assert calibration.agreement_db(torch.from_numpy(out), torch.from_numpy(reference)) > 45


def test_unavailable_runtimes_say_why(weights, tmp_path):
    bare = make_weights(tmp_path / "bare")  # no ONNX graph exported
    assert "no ONNX decoder graph" in unavailable_reason("onnx-fp32", bare)
    assert "onnx-fp32" not in available_runtimes(bare)
    if not torch.cuda.is_available():
        assert "CUDA" in unavailable_reason("torch-cuda-fp16", weights)
        with pytest.raises(CodecError, match="CUDA"):
            build_runtime("torch-cuda-fp16", load_model(weights), weights)
    assert "unknown runtime" in unavailable_reason("tpu", weights)


def test_a_tampered_onnx_graph_is_refused(weights, tmp_path):
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(weights.path.parent, folder)
    graph = folder / json.loads((folder / "manifest.json").read_text())["models"]["test-untrained"]["onnx"]["file"]
    data = bytearray(graph.read_bytes())
    data[-10] ^= 0xFF
    graph.write_bytes(bytes(data))
    info = find_weights(folder)
    with pytest.raises(WeightsError, match="sha256"):
        build_runtime("onnx-fp32", load_model(info), info)


def test_requested_runtime_names_and_environment(monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert requested_runtime(None) == "auto"
    assert requested_runtime(" ONNX-FP32 ") == "onnx-fp32"
    monkeypatch.setenv(RUNTIME_ENV, "torch-fp32")
    assert requested_runtime(None) == "torch-fp32"
    assert requested_runtime("onnx-fp32") == "onnx-fp32"  # the argument wins over the environment
    with pytest.raises(CodecError, match="unknown runtime 'fast'"):
        requested_runtime("fast")


def test_codec_runtime_and_device_must_agree(weights, monkeypatch):
    monkeypatch.delenv("HYPERTHUMB_DEVICE", raising=False)
    assert Codec(weights.path.parent, runtime="onnx-fp32").device.type == "cpu"
    with pytest.raises(CodecError):
        Codec(weights.path.parent, device="cuda" if torch.cuda.is_available() else "cpu", runtime="torch-mps")


def test_calibration_chooses_the_fastest_that_agrees_and_caches_it(weights, monkeypatch, tmp_path):
    monkeypatch.setenv("HYPERTHUMB_CACHE", str(tmp_path / "cache"))
    model = load_model(weights)
    fake_ms = {"torch-fp32": 30.0, "torch-bf16": 5.0, "onnx-fp32": 10.0}
    real_time = calibration.time_runtime
    calls = []

    def timed(runtime, inputs, repeat=3):
        calls.append(runtime.name)
        _, out = real_time(runtime, inputs, 1)
        if runtime.name == "torch-bf16":
            out = out.clone()
            out[::2] = 255 - out[::2]  # a broken fast path: must never be chosen
        return fake_ms[runtime.name], out

    monkeypatch.setattr(calibration, "time_runtime", timed)
    runtime, result = calibration.choose_runtime(model, weights, "auto", "cpu")
    assert runtime.name == result.choice == "onnx-fp32"
    if "torch-bf16" in result.rows:
        assert result.rows["torch-bf16"]["ok"] is False
    assert result.rows["torch-fp32"]["ok"] and result.rows["onnx-fp32"]["ms"] == 10.0
    stored = json.loads((tmp_path / "cache" / "runtime.json").read_text())
    assert [m["choice"] for m in stored["machines"].values()] == ["onnx-fp32"]
    calls.clear()
    runtime, again = calibration.choose_runtime(model, weights, "auto", "cpu")
    assert runtime.name == "onnx-fp32" and again.cached and calls == []  # remembered, not measured again
    (tmp_path / "cache" / "runtime.json").write_text("{ damaged")
    runtime, fresh = calibration.choose_runtime(model, weights, "auto", "cpu")
    assert not fresh.cached and calls  # a damaged cache only means calibrating again


def test_the_encoder_runs_in_the_precision_measured_faster_here_and_it_is_remembered(weights, monkeypatch, tmp_path):
    monkeypatch.setenv("HYPERTHUMB_CACHE", str(tmp_path / "cache"))
    model = load_model(weights)
    timings = {"bfloat16": 40.0, "float32": 25.0}  # as on a Xeon without AMX: native bf16, but slower
    calls = []
    monkeypatch.setattr(calibration, "time_encoder", lambda m, precision: calls.append(precision) or timings[precision])
    assert calibration.encoder_precision_choice(model, weights) == "float32"
    timings.update(bfloat16=10.0)
    assert calibration.encoder_precision_choice(model, weights) == "float32" and len(calls) == 2  # cached
    (tmp_path / "cache" / "runtime.json").unlink()
    assert calibration.encoder_precision_choice(model, weights) == "bfloat16"  # as on Zen 4
    monkeypatch.undo()
    assert calibration.time_encoder(model, "float32", repeat=1) > 0  # the real probe runs


def test_the_codec_asks_the_measurement_only_where_bf16_is_native_and_auto(weights, monkeypatch):
    import app.codec.api as api

    monkeypatch.setattr(api, "encoder_precision_choice", lambda model, info: "float32")
    monkeypatch.setattr(api, "cpu_has_native_bf16", lambda: True)
    assert Codec(weights.path.parent, "cpu").encoder_precision() == "float32"
    assert Codec(weights.path.parent, "cpu", runtime="torch-bf16").encoder_precision() == "bfloat16"
    monkeypatch.setattr(api, "encoder_precision_choice", lambda model, info: "bfloat16")
    assert Codec(weights.path.parent, "cpu").encoder_precision() == "bfloat16"
    assert Codec(weights.path.parent, "cpu", runtime="torch-fp32").encoder_precision() == "float32"
    monkeypatch.setattr(api, "cpu_has_native_bf16", lambda: False)
    assert Codec(weights.path.parent, "cpu").encoder_precision() == "float32"


def test_a_decode_does_not_wait_for_the_encoder_probe(weights, monkeypatch):
    import threading

    import app.codec.api as api

    started, release = threading.Event(), threading.Event()

    def slow_probe(model, info):
        started.set()
        release.wait(30)
        return "float32"

    monkeypatch.setattr(api, "encoder_precision_choice", slow_probe)
    monkeypatch.setattr(api, "cpu_has_native_bf16", lambda: True)
    codec = Codec(weights.path.parent, "cpu", runtime="torch-fp32")
    codec.runtime_name = "auto"  # auto's probe, without auto's decoder calibration in this test
    probe = threading.Thread(target=codec.encoder_precision)
    probe.start()
    try:
        assert started.wait(30)
        codec.runtime_name = "torch-fp32"
        names = []
        decode = threading.Thread(target=lambda: names.append(codec.decoder_runtime(codec.weights()).name))
        decode.start()
        decode.join(20)
        assert names == ["torch-fp32"] and not release.is_set()  # ready while the probe still runs
    finally:
        release.set()
        probe.join(30)


def test_a_named_runtime_that_disagrees_is_refused(weights, monkeypatch):
    model = load_model(weights)
    runtime = build_runtime("onnx-fp32", model, weights)
    monkeypatch.setattr(
        type(runtime),
        "__call__",
        lambda self, lr, dq, t: torch.zeros(lr.shape[-2] * 4, lr.shape[-1] * 4, 3, dtype=torch.uint8),
    )
    with pytest.raises(CodecError, match="disagrees with torch-fp32"):
        calibration.check_runtime(runtime, model)


def test_cli_decode_names_its_runtime_and_matches_the_reference(weights, tmp_path, capsys):
    from PIL import Image

    from app.cli import main

    photo = tmp_path / "p.png"
    Image.fromarray(photo_like(200, 120, seed=1)).save(photo)
    folder = str(weights.path.parent)
    assert main(["--weights", folder, "encode", str(photo), str(tmp_path / "t.jpg")]) == 0
    outputs = {}
    for name in ("torch-fp32", "onnx-fp32"):
        out = tmp_path / f"{name}.png"
        assert main(["--weights", folder, "decode", str(tmp_path / "t.jpg"), str(out), "--runtime", name]) == 0
        assert f"on {name}" in capsys.readouterr().out
        outputs[name] = np.asarray(Image.open(out)).astype(np.int16)
    assert np.abs(outputs["torch-fp32"] - outputs["onnx-fp32"]).max() <= 1
    assert (
        main(["--weights", folder, "decode", str(tmp_path / "t.jpg"), str(tmp_path / "x.png"), "--runtime", "warp"])
        == 1
    )
    assert "unknown runtime 'warp'" in capsys.readouterr().err


def test_decoder_inputs_in_bands_are_the_whole_images():
    """``decoder_inputs`` works in bands of rows (bounded temporaries): the same numbers as the
    DCT and colour conversion of the whole thumbnail at once."""
    from app.codec.engine.inference import INPUT_BAND, decoder_inputs
    from app.codec.nets.color import ycbcr_to_rgb
    from app.codec.nets.jpeg_sim import coefficients_from_ycbcr, table_tensor

    rng = np.random.default_rng(4)
    ycbcr = rng.integers(0, 256, (INPUT_BAND * 2 + 37, 203, 3), dtype=np.uint8)
    luma, chroma = rng.integers(1, 100, 64), rng.integers(1, 100, 64)
    lr, dequantized, tables = decoder_inputs(ycbcr, luma, chroma, torch.device("cpu"))
    padded = torch.from_numpy(np.pad(ycbcr, ((0, 3), (0, 5), (0, 0)), mode="edge")).permute(2, 0, 1)[None].float()
    lt, ct = torch.tensor(luma, dtype=torch.float32), torch.tensor(chroma, dtype=torch.float32)
    whole = coefficients_from_ycbcr(padded, lt, ct) * table_tensor(lt, ct)
    assert torch.equal(dequantized, whole)
    assert torch.equal(lr, ycbcr_to_rgb(padded).round().clamp(0, 255) / 255.0)
    assert tables.tolist() == [list(luma) + list(chroma)]


def test_a_first_ever_decode_does_not_wait_for_the_calibration(weights, monkeypatch, tmp_path):
    """The viewer's Codec (``calibrate_in_background``): with no measurement cached, the first decoder
    gets the provisional runtime at once while the calibration runs in a thread; later decoders get
    the measured choice, which is cached. A CLI Codec still calibrates before its first decode."""
    import threading

    from app.codec.engine.runtime import cpu_has_native_bf16

    monkeypatch.setenv("HYPERTHUMB_CACHE", str(tmp_path / "cache"))
    release, started = threading.Event(), threading.Event()
    real_calibrate = calibration.calibrate

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(60)
        return dataclasses.replace(real_calibrate(*args, **kwargs), choice="onnx-fp32")

    monkeypatch.setattr(calibration, "calibrate", slow)
    codec = Codec(weights.path.parent, calibrate_in_background=True)
    first = codec.decoder_runtime(weights)  # returns while the calibration is held
    assert started.wait(30) and codec.calibrating
    assert first.name == ("torch-bf16" if cpu_has_native_bf16() else "torch-fp32-fused")
    release.set()
    for thread in [t for t in threading.enumerate() if t.name == "calibration"]:
        thread.join(60)
    assert codec.decoder_runtime(weights).name == "onnx-fp32" and not codec.calibrating
    assert calibration.cached_calibration(weights, "cpu").choice == "onnx-fp32"
    cli = Codec(weights.path.parent)  # cached now: no thread, the measured choice
    assert cli.decoder_runtime(weights).name == "onnx-fp32"
