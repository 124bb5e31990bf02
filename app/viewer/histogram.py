"""The metadata panel's histogram: counts per channel of the preview's pixels, and how much of
the picture is clipped (at 0 or 255). numpy only, no Qt; cheap enough for the GUI thread (a
preview of more than ``MAX_SAMPLES`` pixels is sampled on a regular grid)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SAMPLES = 1 << 20  # pixels counted at most: 3 bincounts of 1 MP take a few ms


@dataclass(frozen=True)
class Histogram:
    """``counts``: 3x256 (R, G, B); ``shadows``/``highlights``: per channel, the share of pixels at
    0 / at 255; ``any_shadows``/``any_highlights``: the share with any channel there."""

    counts: np.ndarray
    shadows: tuple[float, float, float]
    highlights: tuple[float, float, float]
    any_shadows: float
    any_highlights: float
    pixels: int


def histogram_of(rgb: np.ndarray) -> Histogram:
    """The histogram of a uint8 HxWx3 image (every pixel, or a regular grid of ``MAX_SAMPLES``)."""
    height, width = rgb.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(height * width / MAX_SAMPLES))))
    sample = rgb[::step, ::step, :3].reshape(-1, 3)
    pixels = max(1, len(sample))
    counts = np.stack([np.bincount(sample[:, c], minlength=256)[:256] for c in range(3)])
    shadows = tuple(float(counts[c, 0]) / pixels for c in range(3))
    highlights = tuple(float(counts[c, 255]) / pixels for c in range(3))
    any_shadows = float(np.count_nonzero((sample == 0).any(axis=1))) / pixels
    any_highlights = float(np.count_nonzero((sample == 255).any(axis=1))) / pixels
    return Histogram(counts, shadows, highlights, any_shadows, any_highlights, len(sample))


def _percent(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share * 100:.1f}%"


def clipping_rows(histogram: Histogram) -> list[tuple[str, str]]:
    """ "2.1% highlights clipped (R 2.1%, G 0.3%, B 0.0%)" and the same for shadows, as rows."""
    rows = []
    for name, share, channels in (
        ("Highlights", histogram.any_highlights, histogram.highlights),
        ("Shadows", histogram.any_shadows, histogram.shadows),
    ):
        per_channel = ", ".join(f"{c} {_percent(v)}" for c, v in zip("RGB", channels, strict=True))
        rows.append((f"{name} clipped", f"{_percent(share)} ({per_channel})"))
    return rows
