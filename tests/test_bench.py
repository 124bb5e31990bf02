"""hyperthumb bench: a tiny CPU run reports every stage with sane, consistent numbers."""

import json

import pytest
from codec_fixtures import make_weights

from app.bench import BenchSettings, _viewport_box, time_stage
from app.cli import main


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bench_reports_every_stage(tmp_path, capsys):
    weights = tmp_path / "w"
    make_weights(weights)
    code, out, _ = run(
        capsys,
        "--weights",
        weights,
        "bench",
        "--device",
        "cpu",
        "--size",
        "160x96",
        "--repeat",
        "2",
        "--scaling",
        "1K",
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["device"] == "cpu" and report["precision"] == "float32" and report["image"] == [160, 96]
    assert report["viewport"] == [160, 96]  # a 1920x1080 viewport clipped to the image
    assert report["weights"]["model_id"] == "test-untrained" and report["weights"]["trained"] is False
    assert report["file_bytes"] > 100
    for name in ("network", "end_to_end", "viewport", "encoder"):
        stage = report["stages"][name]
        assert stage["runs"] == 2 and 0 < stage["min_ms"] <= stage["median_ms"]
        assert stage["fps"] == pytest.approx(1000 / stage["median_ms"])
        assert stage["peak_rss_mb"] > 50
    (row,) = report["scaling"]
    assert row["size"] == "1K" and row["image"] == [1024, 680] and row["network"]["median_ms"] > 0


def test_bench_text_output_names_the_device_and_stages(tmp_path, capsys):
    weights = tmp_path / "w"
    make_weights(weights)
    code, out, err = run(capsys, "--weights", weights, "bench", "--size", "64x64", "--repeat", "1", "--warmup", "0")
    assert code == 0
    assert out.startswith("device     cpu") and "untrained: speed only" in out
    for label in ("network 64x64", "JPEG bytes -> RGB", "viewport 64x64", "encoder -> file"):
        assert label in out
    assert "bench: encoder" in err


def test_bench_rejects_bad_arguments(tmp_path, capsys):
    assert run(capsys, "bench", "--size", "big")[0] == 2
    weights = tmp_path / "w"
    make_weights(weights)
    code, _, err = run(capsys, "--weights", weights, "bench", "--size", "64x64", "--repeat", "1", "--scaling", "3K")
    assert code == 1 and "unknown scaling size '3K'" in err


def test_time_stage_takes_the_median(monkeypatch):
    import torch

    import app.bench

    clock = iter([0.0, 0.030, 1.0, 1.010, 2.0, 2.020])  # three timed runs of 30, 10 and 20 ms
    monkeypatch.setattr(app.bench.time, "perf_counter", lambda: next(clock))
    calls = []
    stage = time_stage(lambda: calls.append(1), torch.device("cpu"), repeat=3, warmup=1)
    assert len(calls) == 4  # the warm-up is run but not timed
    assert stage["runs"] == 3
    assert stage["median_ms"] == pytest.approx(20.0) and stage["min_ms"] == pytest.approx(10.0)
    assert stage["fps"] == pytest.approx(50.0)


def test_viewport_is_centred_and_clipped():
    box = _viewport_box(6144, 4096, (1920, 1080))
    assert (box.x0, box.y0, box.width, box.height) == (2112, 1508, 1920, 1080)
    assert BenchSettings().viewport == (1920, 1080)


def test_quality_check_measures_every_path_against_torch_fp32(tmp_path, capsys):
    from PIL import Image

    from app.synthetic import photo_like

    weights = tmp_path / "w"
    make_weights(weights, onnx=True)
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        Image.fromarray(photo_like(96, 64, seed=seed)).save(photos / f"p{seed}.png")
    code, out, _ = run(capsys, "--weights", weights, "bench", "--quality-check", photos, "--json")
    assert code == 0
    result = json.loads(out)
    assert [r["image"] for r in result["images"]] == ["p0.png", "p1.png"]
    assert {"onnx-fp32", "torch-fp16-cpu"} <= set(result["paths"])  # the CUDA arithmetic, run on the CPU
    for row in result["images"]:
        reference = row["psnr"]["torch-fp32"]
        assert 10 < reference < 60
        for name, loss in row["loss_db"].items():
            assert loss == pytest.approx(reference - row["psnr"][name])
            assert abs(loss) < 0.05, name  # every fast path is exact enough
    assert run(capsys, "--weights", weights, "bench", "--quality-check", tmp_path / "nope")[0] == 1


def test_bench_times_every_runtime_side_by_side(tmp_path, capsys):
    weights = tmp_path / "w"
    make_weights(weights, onnx=True)
    code, out, _ = run(
        capsys, "--weights", weights, "bench", "--size", "96x64", "--repeat", "1", "--warmup", "0", "--json"
    )
    assert code == 0
    report = json.loads(out)
    table = report["runtimes"]
    assert list(table)[:2] == ["auto", "torch-fp32"] and "onnx-fp32" in table
    assert table["auto"]["runtime"] in table  # auto is one of the others, chosen by calibration
    assert table["torch-fp32"]["speedup_vs_torch_fp32"]["network"] == pytest.approx(1.0)
    for row in table.values():
        for stage in ("network", "end_to_end", "viewport"):
            assert row[stage]["median_ms"] > 0
    assert report["stages"]["network"] == table["auto"]["network"]  # --json keeps stages.<stage>
    code, out, _ = run(
        capsys,
        "--weights",
        weights,
        "bench",
        "--size",
        "64x64",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--runtime",
        "onnx-fp32",
    )
    assert code == 0 and "runtime    onnx-fp32" in out
    code, _, err = run(capsys, "--weights", weights, "bench", "--size", "64x64", "--runtime", "tpu-int4")
    assert code == 1 and "unknown runtime 'tpu-int4'" in err


def test_quality_check_of_an_empty_folder_is_a_message(tmp_path, capsys):
    weights = tmp_path / "w"
    make_weights(weights)
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "--weights", weights, "bench", "--quality-check", tmp_path / "empty")
    assert code == 1 and "no images in" in err


def test_bench_measures_an_installed_model_other_than_the_default(tmp_path, capsys):
    """`bench --model ID` times that model (a leaner decoder beside the default, for the
    frontier); an id that is not installed is a message, not a fallback to the default."""
    from dataclasses import replace

    from codec_fixtures import SMALL_CONFIG, random_model

    from app.codec.engine.weights import save_weights

    weights = tmp_path / "w"
    make_weights(weights)
    lean = replace(SMALL_CONFIG, decoder=replace(SMALL_CONFIG.decoder, channels=8, blocks=1))
    save_weights(random_model(lean, 1), weights, "test-lean", trained=False, make_default=False)
    argv = ["--weights", weights, "bench", "--size", "64x64", "--repeat", "1", "--warmup", "0", "--json"]
    code, out, _ = run(capsys, *argv, "--model", "test-lean")
    assert code == 0 and json.loads(out)["weights"]["model_id"] == "test-lean"
    code, out, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out)["weights"]["model_id"] == "test-untrained"
    code, _, err = run(capsys, *argv, "--model", "nope")
    assert code != 0 and "'nope' is not in" in err
