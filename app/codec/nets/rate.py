"""A differentiable estimate of the bits a JPEG file spends on its coefficients.

Each zig-zag frequency of luma and of chroma gets its own discretized Laplace density whose
scale is fitted to the image itself (maximum likelihood: the mean absolute value), just as
``optimize=True`` fits JPEG's Huffman tables to each image. DC terms are coded as differences
from the previous block, as JPEG does. The estimate has no learned parameters, so it is
exact-in-expectation for any encoder and never drifts from the real coder during training.
"""

import torch

_MIN_SCALE = 0.05
_MIN_PROB = 2.0**-24


def _laplace_bits(y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log2 P(y) for integer-centred bins of a zero-mean Laplace with the given scale."""
    y = y.abs()
    upper = torch.exp(-(y + 0.5) / scale)
    lower = torch.exp(-(y - 0.5).clamp(min=0) / scale)
    # P(|Y| in bin) / 2 for y != 0 (two symmetric bins), full central bin for y == 0.
    p_nonzero = 0.5 * (lower - upper)
    p_zero = 1.0 - torch.exp(-0.5 / scale)
    p = torch.where(y < 0.5, p_zero, p_nonzero)
    return -torch.log2(p.clamp(min=_MIN_PROB))


def coefficient_bits(quantized: torch.Tensor) -> torch.Tensor:
    """Estimated bits per image for quantized coefficients [B, 3, 64, H/8, W/8] -> [B]."""
    b, c, f, hb, wb = quantized.shape
    dc = quantized[:, :, :1].reshape(b, c, 1, hb * wb)
    dc = torch.diff(dc, dim=-1, prepend=torch.zeros_like(dc[..., :1]))
    ac = quantized[:, :, 1:].reshape(b, c, f - 1, hb * wb)
    symbols = torch.cat([dc, ac], dim=2)  # [B, 3, 64, N]

    luma, chroma = symbols[:, :1], symbols[:, 1:]
    total = 0.0
    for part in (luma, chroma):
        scale = part.abs().mean(dim=(1, 3), keepdim=True).clamp(min=_MIN_SCALE)
        total = total + _laplace_bits(part, scale).sum(dim=(1, 2, 3))
    return total


def bits_per_pixel(quantized: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Estimated bits per *full-resolution* pixel for each image in the batch -> [B]."""
    hb, wb = quantized.shape[-2:]
    hr_pixels = (hb * 8 * scale) * (wb * 8 * scale)
    return coefficient_bits(quantized) / hr_pixels
