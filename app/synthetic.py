"""Photo-like synthetic images for tests, smoke training and benchmarks.

Real photos have a 1/f spectrum, sharp object edges, smooth gradients and some fine texture;
a test of a codec on white noise or flat colour proves little. These images mix all four,
deterministically from a seed, at any size (a 6144x4096 one takes a few seconds).
"""

import numpy as np
from PIL import Image, ImageDraw


def _smooth_field(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Multi-octave value noise with roughly 1/f amplitude falloff, float HxWx3 around 0."""
    field = np.zeros((height, width, 3), np.float32)
    for octave in range(2, 8):
        cells = 2**octave
        amplitude = 60.0 / (1.5**octave)
        grid = rng.normal(0.0, 1.0, (cells, cells, 3)).astype(np.float32)
        channels = [np.asarray(Image.fromarray(grid[..., c]).resize((width, height), Image.BICUBIC)) for c in range(3)]
        field += amplitude * np.stack(channels, axis=-1)
    return field


def photo_like(width: int, height: int, seed: int = 0, detail: float = 1.0) -> np.ndarray:
    """uint8 HxWx3 photo-like image; ``detail`` scales edges and fine texture (0 = smooth)."""
    rng = np.random.default_rng(seed)
    # The smooth part has no detail finer than 1/128 of the image: make it at 1/4 size and upscale.
    small = _smooth_field(rng, max(1, width // 4), max(1, height // 4))
    base = 128.0 + np.stack(
        [np.asarray(Image.fromarray(small[..., c]).resize((width, height), Image.BILINEAR)) for c in range(3)],
        axis=-1,
    )
    shapes = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(shapes)
    for _ in range(int(12 * detail) + 1):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.03, 0.25) * min(width, height)
        draw.ellipse([x0 - r, y0 - r * rng.uniform(0.3, 1), x0 + r, y0 + r], fill=int(rng.integers(60, 255)))
    mask = np.asarray(shapes, np.float32)[..., None] / 255.0
    tint = rng.uniform(-70, 70, 3).astype(np.float32)
    image = base + mask * tint
    texture_scale = rng.uniform(2.0, 9.0) * detail
    image += rng.normal(0.0, 1.0, (height, width, 1)).astype(np.float32) * texture_scale
    return np.clip(image, 0, 255).astype(np.uint8)
