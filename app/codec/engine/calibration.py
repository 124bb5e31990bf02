"""Which decoder runtime is fastest on this machine: measured once, then remembered.

Every candidate runs the same probe (a photo-like thumbnail tile as large as the decode tile,
margins included) and must agree with the torch-fp32 reference to ``AGREEMENT_DB``; the fastest
of those wins. 58 dB of agreement (uint8 outputs) costs at most ~0.04 dB of PSNR on a
reconstruction as good as 38 dB (the errors add as noise powers), within the 0.05 dB a fast path may cost.
The choice is cached per machine (CPU, thread count, library versions) and weights in
``$HYPERTHUMB_CACHE/runtime.json`` (default ``~/.cache/hyperthumb``); a damaged or unwritable cache
only means calibrating again. Any runtime built for use, chosen or named, is checked against the
reference on a small probe first, so a broken engine or graph never decodes a photo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.codec.engine.inference import DEFAULT_DECODE_TILE, decoder_inputs
from app.codec.engine.runtime import (
    AUTO,
    REFERENCE,
    SPECS,
    DecoderRuntime,
    available_runtimes,
    build_runtime,
    cpu_has_native_bf16,
    onnxruntime_module,
)
from app.codec.engine.weights import WeightsInfo
from app.codec.errors import CodecError
from app.codec.files.atomic import atomic_write_bytes
from app.codec.nets.color import rgb_to_ycbcr
from app.codec.nets.model import HyperThumbnailModel

AGREEMENT_DB = 58.0
CACHE_VERSION = 4  # 3: torch-bf16 became fused; 4: torch-fp32-fused added: choices made before are re-measured
CHECK_LR = 64  # thumbnail pixels a side of the load-time check (plus the decoder's margins)
PROBE_LR = DEFAULT_DECODE_TILE  # ... and of the timing probe: the tile decodes run at (a 256 probe ranked
# ONNX Runtime above torch-fp32, while at the 512 tile torch-fp32 is 1.3x faster)


@dataclass
class Calibration:
    """What a calibration measured: per runtime its probe time and agreement with the reference."""

    choice: str
    device_type: str
    probe: list[int]  # thumbnail pixels of the timing probe, [height, width]
    rows: dict[str, dict] = field(default_factory=dict)  # name -> {"ms", "agreement_db", "ok", "error"?}
    cached: bool = False

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "cached"}


def cache_path() -> Path:
    root = os.environ.get("HYPERTHUMB_CACHE")
    if root:
        return Path(root) / "runtime.json"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hyperthumb" / "runtime.json"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(weights_sha256: str, device_type: str) -> str:
    """What a cached choice depends on: the hardware, the libraries, the threads, the weights, the
    app's version and which runtimes could run (so a newly available one is measured too)."""
    from app import __version__

    ort = onnxruntime_module()
    parts = [__version__, ",".join(available_runtimes(None, device_type)),
        _cpu_model(), str(os.cpu_count()), platform.machine(), platform.system(), torch.__version__,
        getattr(ort, "__version__", "-"), str(torch.get_num_threads()), device_type, weights_sha256, str(CACHE_VERSION),
    ]  # fmt: skip
    if device_type == "cuda" and torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def probe_inputs(lr_side: int, device: torch.device):
    """Decoder inputs for a photo-like ``lr_side`` square thumbnail, deterministically."""
    from app.codec.nets.tables import standard_tables
    from app.synthetic import photo_like

    rgb = torch.from_numpy(photo_like(lr_side, lr_side, seed=7)).permute(2, 0, 1).float()
    ycbcr = rgb_to_ycbcr(rgb).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    luma, chroma = standard_tables(60)
    return decoder_inputs(ycbcr, luma, chroma, device)


def agreement_db(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR of a runtime's uint8 output against the reference's."""
    mse = (output.cpu().float() - reference.cpu().float()).pow(2).mean().item()
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _reference_output(model: HyperThumbnailModel, side: int) -> torch.Tensor:
    reference = build_runtime(REFERENCE, model, None)
    return reference(*probe_inputs(side, reference.device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_runtime(runtime: DecoderRuntime, inputs, repeat: int = 3) -> tuple[float, torch.Tensor]:
    """(median ms after one warm-up run, the output) of ``runtime`` on ``inputs``."""
    output = runtime(*inputs)
    _sync(runtime.device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        output = runtime(*inputs)
        _sync(runtime.device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), output


def check_runtime(runtime: DecoderRuntime, model: HyperThumbnailModel) -> float:
    """The runtime's agreement with torch-fp32 on a small probe; ``CodecError`` when too far off."""
    side = CHECK_LR + 2 * model.config.decoder.margin()
    if runtime.name == REFERENCE:
        return float("inf")
    output = runtime(*probe_inputs(side, runtime.device))
    agreement = agreement_db(output, _reference_output(model, side))
    if agreement < AGREEMENT_DB:
        raise CodecError(
            f"runtime {runtime.name} disagrees with torch-fp32 ({agreement:.1f} dB < {AGREEMENT_DB} dB): not used"
        )
    return agreement


def calibrate(model: HyperThumbnailModel, info: WeightsInfo, device_type: str, log=lambda text: None) -> Calibration:
    """Time every runtime available on ``device_type`` on the probe; choose the fastest that agrees."""
    side = PROBE_LR + 2 * model.config.decoder.margin()
    candidates = available_runtimes(info, device_type)
    if not candidates:
        raise CodecError(f"no decoder runtime is available on {device_type}")
    reference = None
    result = Calibration(choice="", device_type=device_type, probe=[side, side])
    for name in candidates:
        try:
            runtime = build_runtime(name, model, info)
            ms, output = time_runtime(runtime, probe_inputs(side, runtime.device))
            if reference is None:
                reference = output if name == REFERENCE else _reference_output(model, side)
            agreement = agreement_db(output, reference)
            row = {"ms": round(ms, 2), "agreement_db": round(min(agreement, 999.0), 2), "ok": agreement >= AGREEMENT_DB}
        except Exception as exc:  # noqa: BLE001 -- a candidate that cannot run is simply not chosen
            row = {"ms": None, "agreement_db": None, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        result.rows[name] = row
        log(f"calibration: {name}: {row}")
    usable = [n for n, r in result.rows.items() if r["ok"]]
    if not usable:
        raise CodecError(f"no decoder runtime on {device_type} agrees with torch-fp32")
    result.choice = min(usable, key=lambda n: result.rows[n]["ms"])
    return result


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}
    except (OSError, ValueError):
        return {}


def cached_calibration(info: WeightsInfo, device_type: str) -> Calibration | None:
    entry = _read_cache().get("machines", {}).get(machine_key(info.sha256, device_type))
    try:
        calibration = Calibration(**entry)
    except TypeError:
        return None
    if calibration.choice not in SPECS:
        return None
    calibration.cached = True
    return calibration


def store_calibration(info: WeightsInfo, calibration: Calibration) -> None:
    _store_entry(machine_key(info.sha256, calibration.device_type), calibration.to_dict())


_STORE_LOCK = threading.Lock()  # the decoder's calibration and the encoder's probe may finish together


def _store_entry(key: str, entry: dict) -> None:
    with _STORE_LOCK:  # read, add, write: one at a time, or one entry would drop the other
        data = _read_cache() or {"version": CACHE_VERSION, "machines": {}}
        data.setdefault("machines", {})[key] = entry
        try:
            path = cache_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode(), force=True)
        except OSError:
            pass  # an unwritable cache: calibrate again next time


ENCODER_PROBE = 512  # photo pixels a side of the encoder's timing probe
ENCODER_PRECISIONS = ("bfloat16", "float32")


def encoder_autocast_context(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()


def time_encoder(model: HyperThumbnailModel, precision: str, repeat: int = 3) -> float:
    """Median ms of the encoder network on a photo-like ``ENCODER_PROBE`` square, after a warm-up."""
    from app.synthetic import photo_like

    photo = torch.from_numpy(photo_like(ENCODER_PROBE, ENCODER_PROBE, seed=3)).permute(2, 0, 1)[None].float() / 255
    rate = torch.full((1,), 0.5)
    times = []
    with torch.inference_mode():
        for i in range(repeat + 1):
            start = time.perf_counter()
            with encoder_autocast_context(precision):
                model.encoder(photo, rate)
            if i:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def encoder_precision_choice(model: HyperThumbnailModel, info: WeightsInfo, log=lambda text: None) -> str:
    """ "bfloat16" or "float32", whichever runs these weights' encoder faster on this CPU: timed once
    (~1 s) and cached beside the decoder's choice. Native bf16 is not always the faster: on a
    2-core Zen 4 it encodes a 6K photo 1.5x faster than float32, on a 2-core Xeon without AMX
    1.5x slower. Only asked where the CPU has bf16 natively."""
    key = "encoder:" + machine_key(info.sha256, "cpu")
    entry = _read_cache().get("machines", {}).get(key)
    if isinstance(entry, dict) and entry.get("choice") in ENCODER_PRECISIONS:
        return entry["choice"]
    rows = {precision: round(time_encoder(model, precision), 2) for precision in ENCODER_PRECISIONS}
    choice = min(rows, key=rows.get)
    log(f"encoder calibration: {rows} -> {choice}")
    _store_entry(key, {"choice": choice, "ms": rows, "probe": [ENCODER_PROBE, ENCODER_PROBE]})
    return choice


def provisional_runtime(model: HyperThumbnailModel, info: WeightsInfo, device_type: str) -> DecoderRuntime:
    """A safe, usually fast runtime to decode with while ``calibrate`` has not measured this machine:
    bf16 on a CPU with native bf16, else the fused float32 path, the GPU's own path, else the reference; checked against the
    reference like any choice (the reference itself when the check fails)."""
    available = available_runtimes(info, device_type)
    preferred = []
    if device_type == "cpu":
        preferred = ["torch-bf16"] if cpu_has_native_bf16() else ["torch-fp32-fused"]
    preferred += ["torch-cuda-fp16", "torch-mps", REFERENCE]
    name = next((n for n in preferred if n in available), REFERENCE)
    runtime = build_runtime(name, model, info)
    if name != REFERENCE:
        try:
            check_runtime(runtime, model)
        except CodecError:
            runtime = build_runtime(REFERENCE, model, info)
    return runtime


def choose_runtime(
    model: HyperThumbnailModel, info: WeightsInfo, requested: str, device_type: str, log=lambda text: None
) -> tuple[DecoderRuntime, Calibration | None]:
    """The runtime to decode with: the one asked for by name, or for ``auto`` the calibrated
    (cached) fastest on ``device_type``; checked against the reference before it is returned."""
    if requested != AUTO:
        runtime = build_runtime(requested, model, info)
        check_runtime(runtime, model)
        return runtime, None
    calibration = cached_calibration(info, device_type)
    if calibration is None or calibration.choice not in available_runtimes(info, device_type):
        calibration = calibrate(model, info, device_type, log)
        store_calibration(info, calibration)
    runtime = build_runtime(calibration.choice, model, info)
    try:
        check_runtime(runtime, model)
    except CodecError as exc:
        log(str(exc))
        runtime, calibration = build_runtime(REFERENCE, model, info), None
    return runtime, calibration
