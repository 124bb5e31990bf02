"""The differentiable rate estimate tracks the size of real files."""

import numpy as np
import torch

from app.codec.engine.selfcheck import rate_vs_file
from app.codec.nets.jpeg_sim import simulate_jpeg
from app.codec.nets.rate import bits_per_pixel
from app.codec.nets.tables import standard_tables
from app.synthetic import photo_like


def test_estimate_correlates_with_real_file_size():
    rng = np.random.default_rng(0)
    images = [photo_like(256, 192, seed=seed, detail=float(rng.uniform(0.0, 2.0))) for seed in range(16)]
    qualities = [int(q) for q in rng.integers(25, 95, size=16)]
    result = rate_vs_file(images, qualities)
    assert result["correlation"] >= 0.95
    # Not just correlated: the estimate is of the right magnitude (headers aside).
    assert 0.8 < result["median_file_to_estimate"] < 1.6


def test_estimate_is_differentiable_and_prefers_coarser_tables():
    image = photo_like(64, 64, seed=1)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    luma, chroma = (torch.tensor(t).float().requires_grad_() for t in standard_tables(75))
    sim = simulate_jpeg(x, luma, chroma, rounding="noise")
    bpp = bits_per_pixel(sim.quantized)
    bpp.sum().backward()
    assert luma.grad.abs().sum() > 0
    assert luma.grad.sum() < 0  # larger steps -> fewer bits
    coarse = simulate_jpeg(x, *(torch.tensor(t).float() for t in standard_tables(20)))
    fine = simulate_jpeg(x, *(torch.tensor(t).float() for t in standard_tables(95)))
    assert bits_per_pixel(coarse.quantized) < bits_per_pixel(fine.quantized) / 2
