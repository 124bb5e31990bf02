"""A differentiable model of baseline 4:4:4 JPEG with per-image tables.

The pipeline mirrors libjpeg: 8-bit RGB -> YCbCr (JFIF) -> 8x8 DCT of (sample - 128) ->
divide by the table and round -> multiply back -> inverse DCT -> clamp to 8 bits -> RGB.
In training the roundings are replaced by surrogates so gradients flow; at inference
(``rounding="round"``) it reproduces what Pillow writes and reads to within ~1 grey level.
"""

from dataclasses import dataclass

import torch

from app.codec.nets.color import rgb_to_ycbcr, ycbcr_to_rgb
from app.codec.nets.dct import block_dct, block_idct

ROUNDING_MODES = ("round", "ste", "noise")


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def quantize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Round ``x`` to integers, or a training surrogate of rounding.

    ``noise`` adds U(-0.5, 0.5) (the usual proxy for the rate term), ``ste`` rounds with a
    straight-through gradient (what the decoder should see), ``round`` is exact.
    """
    if mode == "round":
        return torch.round(x)
    if mode == "ste":
        return round_ste(x)
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    raise ValueError(f"unknown rounding mode {mode!r}; expected one of {ROUNDING_MODES}")


def table_tensor(luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Per-image tables [B, 64] x2 -> [B, 3, 64, 1, 1] (Y uses luma, Cb and Cr chroma)."""
    if luma.dim() == 1:
        luma, chroma = luma.unsqueeze(0), chroma.unsqueeze(0)
    q = torch.stack([luma, chroma, chroma], dim=1)
    return q[..., None, None]


@dataclass
class JpegSimOutput:
    scaled: torch.Tensor  # [B, 3, 64, H/8, W/8] coefficients / table, before rounding
    quantized: torch.Tensor  # rounded (or its surrogate): integers when exact
    dequantized: torch.Tensor  # quantized * table: what a JPEG decoder feeds its IDCT
    decoded_ycbcr: torch.Tensor  # [B, 3, H, W], 0..255 samples after the IDCT
    decoded: torch.Tensor  # [B, 3, H, W] RGB in 0..1, what a viewer shows
    tables: torch.Tensor  # [B, 3, 64, 1, 1]


def simulate_jpeg(
    rgb: torch.Tensor,
    luma_table: torch.Tensor,
    chroma_table: torch.Tensor,
    rounding: str = "round",
) -> JpegSimOutput:
    """Compress and decompress ``rgb`` ([B, 3, H, W] in 0..1, H and W multiples of 8).

    Pixel roundings (8-bit input, 8-bit YCbCr samples, 8-bit output) are exact in the forward
    pass and straight-through in the backward pass; coefficient rounding follows ``rounding``.
    """
    rgb255 = round_ste(rgb.clamp(0, 1) * 255.0)
    ycbcr = round_ste(rgb_to_ycbcr(rgb255)).clamp(0, 255)
    q = table_tensor(luma_table, chroma_table).to(rgb.dtype)
    coeffs = block_dct(ycbcr - 128.0)
    scaled = coeffs / q
    quantized = quantize(scaled, rounding)
    dequantized = quantized * q
    decoded_ycbcr = round_ste(block_idct(dequantized) + 128.0).clamp(0, 255)
    decoded_rgb = round_ste(ycbcr_to_rgb(decoded_ycbcr)).clamp(0, 255) / 255.0
    return JpegSimOutput(scaled, quantized, dequantized, decoded_ycbcr, decoded_rgb, q)


def coefficients_from_ycbcr(ycbcr: torch.Tensor, luma_table: torch.Tensor, chroma_table: torch.Tensor) -> torch.Tensor:
    """Recover a file's quantized coefficients from its decoded YCbCr samples (0..255).

    The decoder's IDCT output was rounded and clamped, so the block DCT of it lands within a
    small fraction of a step of the true integers; rounding restores them.
    """
    q = table_tensor(luma_table, chroma_table).to(ycbcr.dtype)
    return torch.round(block_dct(ycbcr - 128.0) / q)
