"""``hyperthumb bench``: how fast the codec is on this machine, measured the same way everywhere.

On a synthetic photo-like image (6144x4096 by default) and its HyperThumbnail, each stage runs
``warmup`` times untimed, then ``repeat`` times timed; the median is reported:

    network    decoder over the whole image, inputs already on the device, output left there
    end_to_end JPEG bytes -> 6K RGB in host memory (JPEG decode, transfers, network, copy back)
    viewport   a 1920x1080 region at 100% (what the viewer asks for after a zoom), inputs prepared
    encoder    photo in memory -> HyperThumbnail file on disk

With detail-layer weights, also (a file made at the FINE preset):
    export_detail    photo in memory -> HyperThumbnail with its detail layer (the whole export)
    viewport_base    the same viewport of that file without its layer (the viewer's first pass)
    viewport_detail  ... and with it, the layer's tiles decoded afresh each time (entropy decoding,
                     integer prior and synthesis included): what the layer costs a zoom
    detail_prefetch  the whole file's detail latent decoded (what the viewer does in the background
                     from the moment the photo is shown fitted)
    viewport_prefetched  the viewport with the layer once that is done: what a zoom costs in the viewer

Peak host RSS is taken per stage (Linux: the kernel's high-water mark is reset before each stage)
and peak GPU memory per stage on CUDA. Speed does not depend on the weights' values, so without
trained weights the default architecture runs untrained, and the report says so.
"""

import dataclasses
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.codec.api import RATE_PRESETS, Codec
from app.codec.engine.calibration import choose_runtime, encoder_autocast_context
from app.codec.engine.detail_layer import DetailSource
from app.codec.engine.inference import (
    DEFAULT_DECODE_TILE,
    DEFAULT_ENCODE_TILE,
    Reconstructor,
    encode_thumbnail,
)
from app.codec.engine.runtime import (
    AUTO,
    REFERENCE,
    SPECS,
    DecoderRuntime,
    TorchRuntime,
    available_runtimes,
    build_runtime,
    cpu_has_native_bf16,
    onnxruntime_module,
    unavailable_reason,
)
from app.codec.engine.weights import WeightsInfo, find_weights
from app.codec.errors import CodecError, WeightsError
from app.codec.files.imageio import LoadedImage
from app.codec.files.marker import Marker
from app.codec.files.payload import DETAIL_KIND, unpack_records
from app.codec.files.reader import read_thumbnail
from app.codec.files.tiling import Box
from app.codec.files.writer import write_hyperthumbnail
from app.codec.nets.model import HyperThumbnailModel
from app.synthetic import photo_like

DECODER_STAGES = ("network", "end_to_end", "viewport")
DETAIL_STAGES = ("viewport_base", "viewport_detail", "detail_prefetch", "viewport_prefetched")
SCALING_WIDTHS = {"1K": 1024, "2K": 2048, "4K": 4096, "6K": 6144, "8K": 8192}


@dataclass
class BenchSettings:
    width: int = 6144
    height: int = 4096
    repeat: int = 5
    warmup: int = 1
    tile: int | None = None  # decoder tile (thumbnail pixels); None: the codec's default
    viewport: tuple[int, int] = (1920, 1080)
    model_id: str | None = None  # an installed model other than the default (the decoder frontier)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _reset_peaks(device: torch.device) -> None:
    try:  # Linux: writing 5 resets VmHWM, the peak resident set size
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process lifetime peak
    except ImportError:
        return None


def time_stage(run: Callable[[], object], device: torch.device, repeat: int, warmup: int) -> dict:
    """Median and min wall time of ``run`` (device-synchronised), with the stage's memory peaks."""
    _reset_peaks(device)
    for _ in range(warmup):
        run()
        _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    result = {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "runs": len(times),
        "peak_rss_mb": _peak_rss_mb(),
    }
    result["fps"] = 1000.0 / result["median_ms"] if result["median_ms"] > 0 else None
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def _model(codec: Codec, model_id: str | None = None) -> tuple[HyperThumbnailModel, WeightsInfo]:
    """The installed model asked for, else the default weights' model, or the default architecture
    untrained when none is installed (a model asked for by id must be installed)."""
    if model_id is not None:
        info = find_weights(codec.weights_dir, model_id=model_id)
        return codec.model(info), info
    try:
        info = codec.weights()
        return codec.model(info), info
    except WeightsError:
        from app.training.train import DEFAULT_MODEL

        model = HyperThumbnailModel(DEFAULT_MODEL).to(codec.device, codec.dtype).eval()
        return model, WeightsInfo("untrained-default-architecture", Path("-"), "0" * 64, DEFAULT_MODEL, False, {})


def bench_runtimes(codec: Codec, info: WeightsInfo, requested: list[str] | None) -> list[str]:
    """Which runtimes to time: the ones asked for, else auto, torch-fp32 and every other one available."""
    if requested:
        for name in requested:
            if name != AUTO and (reason := unavailable_reason(name, info)) is not None:
                raise CodecError(reason)
        return list(dict.fromkeys(requested))
    return [AUTO, REFERENCE] + [n for n in available_runtimes(info, codec.device.type) if n != REFERENCE]


def _runtime(codec: Codec, model: HyperThumbnailModel, info: WeightsInfo, name: str, log) -> DecoderRuntime:
    if name == AUTO:
        return choose_runtime(model, info, AUTO, codec.device.type, log)[0]
    return build_runtime(name, model, info)


def _viewport_box(width: int, height: int, viewport: tuple[int, int]) -> Box:
    vw, vh = min(viewport[0], width), min(viewport[1], height)
    x0, y0 = (width - vw) // 2, (height - vh) // 2
    return Box(y0, y0 + vh, x0, x0 + vw)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def run_bench(settings: BenchSettings, codec: Codec, log=lambda text: None, runtimes: list[str] | None = None) -> dict:
    """Every stage on one synthetic image, the decoder stages once per runtime; returns the report.

    ``stages`` holds the first runtime's decoder stages (auto's, by default) and the encoder;
    ``runtimes`` holds each runtime's decoder stages and their speed-up over torch-fp32.
    """
    device = codec.device
    model, info = _model(codec, settings.model_id)
    names = bench_runtimes(codec, info, runtimes)
    tile = settings.tile or codec.tile or DEFAULT_DECODE_TILE
    w, h = settings.width, settings.height
    log(f"making a {w}x{h} photo-like image ...")
    photo = photo_like(w, h, seed=0)
    stages = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jpg"

        def encode(autocast) -> None:
            thumb, luma, chroma = encode_thumbnail(
                model, photo, RATE_PRESETS["MEDIUM"], tile=DEFAULT_ENCODE_TILE, autocast=autocast
            )
            marker = Marker(
                width=w,
                height=h,
                scale=model.config.scale,
                model_id=info.model_id,
                weights_sha256=info.sha256,
                rate=RATE_PRESETS["MEDIUM"],
            )
            write_hyperthumbnail(path, thumb, luma, chroma, marker, force=True)

        encoder_precision = codec.encoder_precision(info)
        log(f"encoder ({encoder_precision}) ...")
        stages["encoder"] = time_stage(
            lambda: encode(codec.encoder_autocast(info)), device, settings.repeat, settings.warmup
        )
        stages["encoder"]["precision"] = encoder_precision
        if encoder_precision != "float32":
            log("encoder (float32) ...")
            stages["encoder_fp32"] = time_stage(lambda: encode(None), device, settings.repeat, settings.warmup)
        elif device.type == "cpu" and cpu_has_native_bf16():  # measured slower here: show by how much
            log("encoder (bfloat16) ...")
            stages["encoder_bf16"] = time_stage(
                lambda: encode(encoder_autocast_context("bfloat16")), device, settings.repeat, settings.warmup
            )
        data = path.read_bytes()
        detail_data = None
        if model.config.detail is not None and info.path.is_file():  # real weights: the export runs through the API
            detail_path = Path(tmp) / "bench-detail.jpg"
            loaded = LoadedImage(rgb=photo, exif=None, icc_profile=None, orientation=1, source_format="PNG")
            log("export with the detail layer ...")
            stages["export_detail"] = time_stage(
                lambda: codec.encode_photo(loaded, detail_path, rate=RATE_PRESETS["FINE"], force=True, weights=info),
                device,
                settings.repeat,
                settings.warmup,
            )
            detail_data = detail_path.read_bytes()

    viewport = _viewport_box(w, h, settings.viewport)
    table = {}
    for name in names:
        runtime = _runtime(codec, model, info, name, log)
        label = f"{name} ({runtime.name})" if name == AUTO else name

        def prepare(runtime=runtime) -> Reconstructor:
            thumbnail = read_thumbnail(data)
            return Reconstructor(model, thumbnail.ycbcr, thumbnail.luma_table, thumbnail.chroma_table, (w, h), runtime)

        reconstructor = prepare()
        row = {"runtime": runtime.name}
        log(f"{label}: decoder network ...")
        row["network"] = time_stage(
            lambda r=reconstructor: r.decode_on_device(tile=tile), runtime.device, settings.repeat, settings.warmup
        )
        log(f"{label}: end to end ...")
        row["end_to_end"] = time_stage(
            lambda: prepare().decode(tile=tile), runtime.device, settings.repeat, settings.warmup
        )
        log(f"{label}: viewport ...")
        row["viewport"] = time_stage(
            lambda r=reconstructor: r.decode(viewport, tile=tile), runtime.device, settings.repeat, settings.warmup
        )
        if detail_data is not None:
            row.update(_detail_viewport(codec, model, info, runtime, detail_data, viewport, tile, settings, label, log))
        table[name] = row
    reference = table.get(REFERENCE)
    for row in table.values():
        if reference is not None:
            row["speedup_vs_torch_fp32"] = {k: reference[k]["median_ms"] / row[k]["median_ms"] for k in DECODER_STAGES}
    first = table[names[0]]
    stages.update({k: first[k] for k in (*DECODER_STAGES, *DETAIL_STAGES) if k in first})
    return {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "onnxruntime": getattr(onnxruntime_module(), "__version__", None),
        "threads": torch.get_num_threads(),
        "native_bf16": cpu_has_native_bf16(),
        "runtime": first["runtime"],
        "precision": str(codec.dtype).replace("torch.", ""),
        "decode_tile": tile,
        "encode_tile": DEFAULT_ENCODE_TILE,
        "image": [w, h],
        "viewport": [viewport.width, viewport.height],
        "file_bytes": len(data),
        "weights": {"model_id": info.model_id, "sha256": info.sha256, "trained": info.trained},
        "repeat": settings.repeat,
        "warmup": settings.warmup,
        "stages": stages,
        "runtimes": table,
    }


def _detail_viewport(
    codec: Codec,
    model,
    info: WeightsInfo,
    runtime: DecoderRuntime,
    data: bytes,
    viewport: Box,
    tile: int,
    settings: BenchSettings,
    label: str,
    log,
) -> dict:
    """The viewport of a detail-layer file without and with its layer (tiles decoded afresh)."""
    thumbnail = read_thumbnail(data)
    record = unpack_records(thumbnail.payload)[DETAIL_KIND]
    coder = codec.detail_coder(info)
    reconstructor = Reconstructor(
        model,
        thumbnail.ycbcr,
        thumbnail.luma_table,
        thumbnail.chroma_table,
        (thumbnail.marker.width, thumbnail.marker.height),
        runtime,
    )

    def with_layer():
        reconstructor.detail = DetailSource(coder, record, thumbnail.ycbcr)  # nothing decoded yet
        return reconstructor.decode(viewport, tile=tile)

    log(f"{label}: viewport of the detail-layer file, base ...")
    base = time_stage(
        lambda: reconstructor.decode(viewport, tile=tile, detail=False),
        runtime.device,
        settings.repeat,
        settings.warmup,
    )
    log(f"{label}: viewport of the detail-layer file, with the layer ...")
    detail = time_stage(with_layer, runtime.device, settings.repeat, settings.warmup)
    detail["x_base"] = detail["median_ms"] / base["median_ms"]

    def prefetch():
        reconstructor.detail = DetailSource(coder, record, thumbnail.ycbcr)
        reconstructor.prefetch_detail()

    log(f"{label}: the whole detail latent, as the viewer decodes it in the background ...")
    whole = time_stage(prefetch, runtime.device, settings.repeat, settings.warmup)
    log(f"{label}: viewport with the layer already decoded ...")
    ready = time_stage(
        lambda: reconstructor.decode(viewport, tile=tile), runtime.device, settings.repeat, settings.warmup
    )
    ready["x_base"] = ready["median_ms"] / base["median_ms"]
    return {"viewport_base": base, "viewport_detail": detail, "detail_prefetch": whole, "viewport_prefetched": ready}


def run_scaling(
    settings: BenchSettings, codec: Codec, sizes: list[str], log=lambda text: None, runtime_name: str = AUTO
) -> list[dict]:
    """Network decode time at several sizes (3:2 photos) on one runtime, to show how cost grows."""
    model, info = _model(codec, settings.model_id)
    runtime = _runtime(codec, model, info, runtime_name, log)
    tile = settings.tile or codec.tile or DEFAULT_DECODE_TILE
    rows = []
    for label in sizes:
        w = SCALING_WIDTHS[label]
        h = w * 2 // 3 // 4 * 4
        log(f"scaling: {label} ({w}x{h}) ...")
        # Decode time does not depend on the pixels: a smooth thumbnail stands in for an encoded photo.
        thumb_h, thumb_w = -(-h // 4), -(-w // 4)
        ycbcr = np.full((thumb_h, thumb_w, 3), 128, np.uint8)
        ycbcr[..., 0] = np.linspace(16, 235, thumb_w, dtype=np.float32).astype(np.uint8)[None, :]
        luma = chroma = np.full(64, 8, np.int64)
        reconstructor = Reconstructor(model, ycbcr, luma, chroma, (w, h), runtime)
        network = time_stage(
            lambda r=reconstructor: r.decode_on_device(tile=tile), runtime.device, settings.repeat, settings.warmup
        )
        rows.append(
            {"size": label, "image": [w, h], "megapixels": w * h / 1e6, "runtime": runtime.name, "network": network}
        )
    return rows


def quality_check(
    folder: Path,
    codec: Codec,
    rate: float = RATE_PRESETS["MEDIUM"],
    log=lambda text: None,
    runtimes: list[str] | None = None,
    model_id: str | None = None,
) -> dict:
    """PSNR cost of every fast path against torch-fp32, on a folder of photos, through real files.

    Each photo is encoded once by the float32 encoder and decoded by each decoder runtime
    available here (``runtimes``: default all of them), plus ``torch-fp16-cpu``: the CUDA path's
    float16 arithmetic run on the CPU, so its cost is known without a GPU. The fast encoder
    (bfloat16 where the CPU has it) is checked too: its file decoded by torch-fp32.
    """
    from app.codec.files.imageio import load_image
    from app.evaluation.images import find_images
    from app.evaluation.metrics import psnr

    paths = find_images(folder)
    if not paths:
        raise CodecError(f"no images in {folder}")
    info = codec.weights() if model_id is None else find_weights(codec.weights_dir, model_id=model_id)
    model = codec.model(info)
    names = [n for n in (runtimes or available_runtimes(info, codec.device.type)) if n != AUTO]
    decoders = {name: build_runtime(name, model, info) for name in dict.fromkeys([REFERENCE, *names])}
    cuda_like = dataclasses.replace(SPECS["torch-cuda-fp16"], name="torch-fp16-cpu", device_type="cpu")
    decoders[cuda_like.name] = TorchRuntime(cuda_like, model, torch.device("cpu"))
    encoders = {"float32": None}
    if codec.device.type == "cpu" and cpu_has_native_bf16():  # what bf16 would cost, chosen here or not
        encoders["bfloat16"] = lambda: encoder_autocast_context("bfloat16")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            photo = load_image(path).rgb
            h, w = photo.shape[:2]
            scores = {}
            for precision, autocast in encoders.items():
                thumb, luma, chroma = encode_thumbnail(model, photo, rate, autocast=autocast() if autocast else None)
                marker = Marker(
                    width=w,
                    height=h,
                    scale=info.config.scale,
                    model_id=info.model_id,
                    weights_sha256=info.sha256,
                    rate=rate,
                )
                file = Path(tmp) / "x.jpg"
                write_hyperthumbnail(file, thumb, luma, chroma, marker, force=True)
                thumbnail = read_thumbnail(file)
                for name, runtime in decoders.items():
                    if precision != "float32" and name != REFERENCE:
                        continue
                    rec = Reconstructor(
                        model, thumbnail.ycbcr, thumbnail.luma_table, thumbnail.chroma_table, (w, h), runtime
                    )
                    key = name if precision == "float32" else f"encoder-{precision}"
                    scores[key] = psnr(rec.decode(), photo)
            reference = scores[REFERENCE]
            row = {
                "image": path.name,
                "psnr": scores,
                "loss_db": {k: reference - v for k, v in scores.items() if k != REFERENCE},
            }
            log(
                f"{path.name}: torch-fp32 {reference:.3f} dB; "
                + ", ".join(f"{k} {v:+.4f}" for k, v in row["loss_db"].items())
            )
            rows.append(row)
    paths_checked = list(rows[0]["loss_db"])
    summary = {k: {"mean_loss_db": float(np.mean([r["loss_db"][k] for r in rows])),
                   "max_loss_db": float(np.max([r["loss_db"][k] for r in rows]))} for k in paths_checked}  # fmt: skip
    return {"device": str(codec.device), "rate": rate, "images": rows, "paths": summary}


def format_report(report: dict, scaling: list[dict] | None = None) -> str:
    w, h = report["image"]
    lines = [
        (
            f"device     {report['device']} ({report['device_name']}), torch {report['torch']}, "
            f"onnxruntime {report.get('onnxruntime') or '-'}, {report['threads']} threads, "
            f"native bf16 {'yes' if report.get('native_bf16') else 'no'}, decode tile {report['decode_tile']}"
        ),
        f"runtime    {report['runtime']} (stages below), encoder {report['stages']['encoder'].get('precision', 'float32')}",
        f"weights    {report['weights']['model_id']}"
        + ("" if report["weights"]["trained"] else " (untrained: speed only)"),
        (
            f"image      {w}x{h} photo-like, HyperThumbnail {report['file_bytes']} bytes; "
            f"median of {report['repeat']} after {report['warmup']} warm-up"
        ),
    ]
    names = {
        "network": f"network {w}x{h}",
        "end_to_end": "JPEG bytes -> RGB",
        "viewport": f"viewport {report['viewport'][0]}x{report['viewport'][1]}",
        "encoder": "encoder -> file",
        "encoder_fp32": "encoder fp32 -> file",
        "encoder_bf16": "encoder bf16 -> file (not chosen)",
        "export_detail": "export with detail",
        "viewport_base": "viewport, no layer",
        "viewport_detail": "viewport, with layer",
        "detail_prefetch": "layer, whole file",
        "viewport_prefetched": "viewport, layer ready",
    }
    for key, label in names.items():
        stage = report["stages"].get(key)
        if stage is None:
            continue
        extra = f"{stage['fps']:8.2f} FPS" if not key.startswith(("encoder", "export", "detail")) else " " * 12
        if "x_base" in stage:
            extra = f"{stage['x_base']:6.2f} x base "
        rss = stage.get("peak_rss_mb")
        memory = f"peak RSS {rss:7.0f} MB" if rss is not None else ""
        if "peak_gpu_mb" in stage:
            memory += f", GPU {stage['peak_gpu_mb']:.0f} MB"
        lines.append(f"{label:<22} {stage['median_ms']:10.1f} ms {extra}  {memory}")
    if len(report.get("runtimes", {})) > 1:
        lines.append(
            "runtime                 network ms  end-to-end ms  viewport ms   x torch-fp32 (net / e2e / viewport)"
        )
        for name, row in report["runtimes"].items():
            label = f"{name} ({row['runtime']})" if name == AUTO else name
            speed = row.get("speedup_vs_torch_fp32")
            ratio = " / ".join(f"{speed[k]:.2f}" for k in DECODER_STAGES) if speed else "-"
            lines.append(
                f"{label:<22} {row['network']['median_ms']:11.1f} {row['end_to_end']['median_ms']:14.1f} "
                f"{row['viewport']['median_ms']:12.1f}   {ratio}"
            )
    for row in scaling or []:
        net = row["network"]
        lines.append(
            f"scaling {row['size']:>3} {row['image'][0]}x{row['image'][1]:<5} {row['megapixels']:5.1f} MP  "
            f"network {net['median_ms']:9.1f} ms  {net['median_ms'] / row['megapixels']:6.1f} ms/MP"
        )
    return "\n".join(lines)
