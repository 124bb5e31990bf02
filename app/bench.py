"""``hyperthumb bench``: how fast the codec is on this machine, measured the same way everywhere.

On a synthetic photo-like image (6144x4096 by default) and its HyperThumbnail, each stage runs
``warmup`` times untimed, then ``repeat`` times timed; the median is reported:

    network    decoder over the whole image, inputs already on the device, output left there
    end_to_end JPEG bytes -> 6K RGB in host memory (JPEG decode, transfers, network, copy back)
    viewport   a 1920x1080 region at 100% (what the viewer asks for after a zoom), inputs prepared
    encoder    photo in memory -> HyperThumbnail file on disk

Peak host RSS is taken per stage (Linux: the kernel's high-water mark is reset before each stage)
and peak GPU memory per stage on CUDA. Speed does not depend on the weights' values, so without
trained weights the default architecture runs untrained, and the report says so.
"""
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
from app.codec.errors import CodecError, WeightsError
from app.codec.fileformat import Marker, read_thumbnail, write_hyperthumbnail
from app.codec.inference import (
    DEFAULT_DECODE_TILE,
    DEFAULT_ENCODE_TILE,
    Reconstructor,
    encode_thumbnail,
)
from app.codec.model import HyperThumbnailModel
from app.codec.tiling import Box
from app.synthetic import photo_like

SCALING_WIDTHS = {"1K": 1024, "2K": 2048, "4K": 4096, "6K": 6144, "8K": 8192}


@dataclass
class BenchSettings:
    width: int = 6144
    height: int = 4096
    repeat: int = 5
    warmup: int = 1
    tile: int | None = None  # decoder tile (thumbnail pixels); None: the codec's default
    viewport: tuple[int, int] = (1920, 1080)


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


def _model(codec: Codec) -> tuple[HyperThumbnailModel, str, str, bool]:
    """The default weights' model, or the default architecture untrained when none is installed."""
    try:
        info = codec.weights()
        return codec.model(info), info.model_id, info.sha256, info.trained
    except WeightsError:
        from app.training.train import DEFAULT_MODEL

        model = HyperThumbnailModel(DEFAULT_MODEL).to(codec.device, codec.dtype).eval()
        return model, "untrained-default-architecture", "0" * 64, False


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


def run_bench(settings: BenchSettings, codec: Codec, log=lambda text: None) -> dict:
    """All four stages on one synthetic image; returns the report as a dict."""
    device = codec.device
    model, model_id, sha256, trained = _model(codec)
    tile = settings.tile or codec.tile or DEFAULT_DECODE_TILE
    w, h = settings.width, settings.height
    log(f"making a {w}x{h} photo-like image ...")
    photo = photo_like(w, h, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jpg"

        def encode() -> None:
            thumb, luma, chroma = encode_thumbnail(model, photo, RATE_PRESETS["MEDIUM"], tile=DEFAULT_ENCODE_TILE)
            marker = Marker(width=w, height=h, scale=model.config.scale, model_id=model_id,
                            weights_sha256=sha256, rate=RATE_PRESETS["MEDIUM"])  # fmt: skip
            write_hyperthumbnail(path, thumb, luma, chroma, marker, force=True)

        stages = {}
        log("encoder ...")
        stages["encoder"] = time_stage(encode, device, settings.repeat, settings.warmup)
        data = path.read_bytes()

    def prepare() -> Reconstructor:
        thumbnail = read_thumbnail(data)
        return Reconstructor(model, thumbnail.ycbcr, thumbnail.luma_table, thumbnail.chroma_table, (w, h))

    reconstructor = prepare()
    log("decoder network ...")
    stages["network"] = time_stage(lambda: reconstructor.decode_on_device(tile=tile), device, settings.repeat, settings.warmup)
    log("end to end ...")
    stages["end_to_end"] = time_stage(lambda: prepare().decode(tile=tile), device, settings.repeat, settings.warmup)
    viewport = _viewport_box(w, h, settings.viewport)
    log("viewport ...")
    stages["viewport"] = time_stage(lambda: reconstructor.decode(viewport, tile=tile), device, settings.repeat, settings.warmup)
    return {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": str(codec.dtype).replace("torch.", ""),
        "decode_tile": tile,
        "encode_tile": DEFAULT_ENCODE_TILE,
        "image": [w, h],
        "viewport": [viewport.width, viewport.height],
        "file_bytes": len(data),
        "weights": {"model_id": model_id, "sha256": sha256, "trained": trained},
        "repeat": settings.repeat,
        "warmup": settings.warmup,
        "stages": stages,
    }


def run_scaling(settings: BenchSettings, codec: Codec, sizes: list[str], log=lambda text: None) -> list[dict]:
    """Network and end-to-end decode time at several sizes (3:2 photos), to show how cost grows."""
    model = _model(codec)[0]
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
        reconstructor = Reconstructor(model, ycbcr, luma, chroma, (w, h))
        network = time_stage(lambda r=reconstructor: r.decode_on_device(tile=tile), codec.device, settings.repeat, settings.warmup)
        rows.append({"size": label, "image": [w, h], "megapixels": w * h / 1e6, "network": network})
    return rows


def half_precision_check(folder: Path, codec: Codec, rate: float = RATE_PRESETS["MEDIUM"], log=lambda text: None) -> dict:
    """PSNR of float16 vs float32 decoding of the same HyperThumbnails, on a folder of photos.

    Each photo is encoded once (float32, real file), then decoded by the same weights in both
    precisions on ``codec.device`` (CPU float16 is slow but computes in half precision too).
    """
    from app.codec.imageio import load_image
    from app.codec.weights import load_model
    from app.evaluation.images import find_images
    from app.evaluation.metrics import psnr

    paths = find_images(folder)
    if not paths:
        raise CodecError(f"no images in {folder}")
    info = codec.weights()
    models = {dtype: load_model(info, codec.device, dtype) for dtype in (torch.float32, torch.float16)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            photo = load_image(path).rgb
            h, w = photo.shape[:2]
            thumb, luma, chroma = encode_thumbnail(models[torch.float32], photo, rate)
            marker = Marker(width=w, height=h, scale=info.config.scale, model_id=info.model_id, weights_sha256=info.sha256, rate=rate)
            file = Path(tmp) / "x.jpg"
            write_hyperthumbnail(file, thumb, luma, chroma, marker, force=True)
            thumbnail = read_thumbnail(file)
            scores = {}
            for dtype, model in models.items():
                rec = Reconstructor(model, thumbnail.ycbcr, thumbnail.luma_table, thumbnail.chroma_table, (w, h))
                scores[str(dtype).replace("torch.", "")] = psnr(rec.decode(), photo)
            log(f"{path.name}: float32 {scores['float32']:.3f} dB, float16 {scores['float16']:.3f} dB")
            rows.append({"image": path.name, **scores, "loss_db": scores["float32"] - scores["float16"]})
    losses = [r["loss_db"] for r in rows]
    return {"device": str(codec.device), "rate": rate, "images": rows,
            "mean_loss_db": float(np.mean(losses)), "max_loss_db": float(np.max(losses))}  # fmt: skip


def format_report(report: dict, scaling: list[dict] | None = None) -> str:
    w, h = report["image"]
    lines = [
        (f"device     {report['device']} ({report['device_name']}), torch {report['torch']}, "
         f"{report['threads']} threads, {report['precision']}, decode tile {report['decode_tile']}"),
        f"weights    {report['weights']['model_id']}" + ("" if report["weights"]["trained"] else " (untrained: speed only)"),
        (f"image      {w}x{h} photo-like, HyperThumbnail {report['file_bytes']} bytes; "
         f"median of {report['repeat']} after {report['warmup']} warm-up"),
    ]
    names = {
        "network": f"network {w}x{h}",
        "end_to_end": "JPEG bytes -> RGB",
        "viewport": f"viewport {report['viewport'][0]}x{report['viewport'][1]}",
        "encoder": "encoder -> file",
    }
    for key, label in names.items():
        stage = report["stages"][key]
        extra = f"{stage['fps']:8.2f} FPS" if key != "encoder" else " " * 12
        rss = stage.get("peak_rss_mb")
        memory = f"peak RSS {rss:7.0f} MB" if rss is not None else ""
        if "peak_gpu_mb" in stage:
            memory += f", GPU {stage['peak_gpu_mb']:.0f} MB"
        lines.append(f"{label:<22} {stage['median_ms']:10.1f} ms {extra}  {memory}")
    for row in scaling or []:
        net = row["network"]
        lines.append(f"scaling {row['size']:>3} {row['image'][0]}x{row['image'][1]:<5} {row['megapixels']:5.1f} MP  "
                     f"network {net['median_ms']:9.1f} ms  {net['median_ms'] / row['megapixels']:6.1f} ms/MP")  # fmt: skip
    return "\n".join(lines)
