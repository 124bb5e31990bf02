"""Checks that this installation's JPEG library behaves as the codec assumes.

The format relies on Pillow's table order, on libjpeg's DCT being close to the torch model the
networks were trained through, and on the rate estimate tracking real file sizes. A different
Pillow or libjpeg build could break any of these silently; ``hyperthumb selfcheck`` measures
them on synthetic photos and reports the figures (they are also the test suite's assertions).
"""

import io

import numpy as np
import torch
from PIL import Image

from app.codec.engine.inference import Reconstructor, encode_thumbnail
from app.codec.files.writer import encode_jpeg
from app.codec.nets.jpeg_sim import coefficients_from_ycbcr, simulate_jpeg
from app.codec.nets.model import HyperThumbnailModel
from app.codec.nets.rate import coefficient_bits
from app.codec.nets.tables import ZIGZAG, standard_tables

MIN_SIMULATION_PSNR = 45.0
MIN_RATE_CORRELATION = 0.95
MAX_TILED_DIFFERENCE = 1  # grey levels of 255


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1)[None].float()


def _tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    luma, chroma = standard_tables(quality)
    return torch.tensor(luma).float(), torch.tensor(chroma).float()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def table_order_ok() -> bool:
    """Pillow takes natural-order tables and writes them zig-zag into the DQT segment."""
    table = np.arange(1, 65)
    data = encode_jpeg(np.zeros((8, 8, 3), np.uint8), table, table + 100)
    start = data.index(b"\xff\xdb") + 5  # marker, length (2), precision/id byte
    return list(data[start : start + 64]) == table[ZIGZAG].tolist()


def simulation_vs_file(image: np.ndarray, quality: int) -> dict:
    """PSNR between Pillow's real decode and the torch model's, and coefficient agreement."""
    luma, chroma = _tables(quality)
    data = encode_jpeg(image, luma.int().numpy(), chroma.int().numpy())
    real = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    sim = simulate_jpeg(_tensor(image) / 255.0, luma, chroma)
    simulated = (sim.decoded[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    im = Image.open(io.BytesIO(data))
    im.draft("YCbCr", im.size)
    recovered = coefficients_from_ycbcr(_tensor(np.asarray(im)), luma, chroma)
    agreement = (recovered == sim.quantized).float().mean().item()
    return {"psnr_db": psnr(real, simulated), "coefficient_agreement": agreement, "bytes": len(data)}


def rate_vs_file(images: list[np.ndarray], qualities: list[int]) -> dict:
    """Pearson correlation of the rate estimate with the size of the files Pillow writes."""
    estimates, sizes = [], []
    for image, quality in zip(images, qualities):
        luma, chroma = _tables(quality)
        sim = simulate_jpeg(_tensor(image) / 255.0, luma, chroma)
        estimates.append(coefficient_bits(sim.quantized).item() / 8)
        sizes.append(len(encode_jpeg(image, luma.int().numpy(), chroma.int().numpy())))
    ratio = float(np.median(np.array(sizes) / np.array(estimates)))
    return {"correlation": float(np.corrcoef(estimates, sizes)[0, 1]), "median_file_to_estimate": ratio}


def tiled_vs_untiled(model: HyperThumbnailModel, photo: np.ndarray, tile: int = 40) -> dict:
    """Largest per-pixel difference (grey levels) between tiled and one-piece encode/decode."""
    height, width = photo.shape[:2]
    whole, luma, chroma = encode_thumbnail(model, photo, 0.5, tile=1 << 16)
    tiled, *_ = encode_thumbnail(model, photo, 0.5, tile=tile)
    data = encode_jpeg(whole, luma, chroma)
    im = Image.open(io.BytesIO(data))
    im.draft("YCbCr", im.size)
    rec = Reconstructor(model, np.asarray(im), luma, chroma, (width, height))
    one_piece = rec.decode(tile=1 << 16)
    diff = lambda a, b: int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())
    return {"encode_max_diff": diff(whole, tiled), "decode_max_diff": diff(one_piece, rec.decode(tile=tile))}


def run_selfcheck(model: HyperThumbnailModel, count: int = 12) -> dict:
    """All checks on ``count`` synthetic photos at qualities spread over 25..95."""
    from app.synthetic import photo_like

    rng = np.random.default_rng(0)
    images = [photo_like(256, 192, seed=i, detail=float(rng.uniform(0.0, 2.0))) for i in range(count)]
    qualities = [int(q) for q in np.linspace(25, 95, count)]
    sims = [simulation_vs_file(image, q) for image, q in zip(images, qualities)]
    report = {
        "table_order_ok": table_order_ok(),
        "simulation_psnr_db_min": min(s["psnr_db"] for s in sims),
        "simulation_psnr_db_mean": float(np.mean([s["psnr_db"] for s in sims])),
        "coefficient_agreement_min": min(s["coefficient_agreement"] for s in sims),
        **{f"rate_{k}": v for k, v in rate_vs_file(images, qualities).items()},
        **{f"tiled_{k}": v for k, v in tiled_vs_untiled(model, photo_like(1001, 667, seed=99)).items()},
    }
    report["ok"] = bool(
        report["table_order_ok"]
        and report["simulation_psnr_db_min"] >= MIN_SIMULATION_PSNR
        and report["rate_correlation"] >= MIN_RATE_CORRELATION
        and max(report["tiled_encode_max_diff"], report["tiled_decode_max_diff"]) <= MAX_TILED_DIFFERENCE
    )
    return report
