"""8x8 block DCT-II (orthonormal, as in JPEG) and its inverse.

Coefficient layout used across the codec: ``[B, C, 64, H/8, W/8]``, the 64 axis in natural
row-major order (index = 8 * vertical_frequency + horizontal_frequency). Images must already
be padded to multiples of 8 (see ``pad_to_multiple``).
"""

import math
from functools import cache

import torch
import torch.nn.functional as F

BLOCK = 8


@cache
def _dct_matrix_cpu() -> torch.Tensor:
    n = torch.arange(BLOCK, dtype=torch.float64)
    k = n.view(-1, 1)
    m = torch.cos((2 * n + 1) * k * math.pi / (2 * BLOCK)) * math.sqrt(2.0 / BLOCK)
    m[0] /= math.sqrt(2.0)
    return m


def dct_matrix(device=None, dtype=torch.float32) -> torch.Tensor:
    """The orthonormal 8x8 DCT-II matrix D (rows are basis functions): X = D x D^T."""
    return _dct_matrix_cpu().to(device=device, dtype=dtype)


def _to_blocks(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    if h % BLOCK or w % BLOCK:
        raise ValueError(f"image size {w}x{h} is not a multiple of {BLOCK}")
    x = x.reshape(b, c, h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    return x.permute(0, 1, 2, 4, 3, 5)  # b c hb wb 8 8


def _from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    b, c, hb, wb, _, _ = blocks.shape
    return blocks.permute(0, 1, 2, 4, 3, 5).reshape(b, c, hb * BLOCK, wb * BLOCK)


def block_dct(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> coefficients [B, C, 64, H/8, W/8]."""
    d = dct_matrix(x.device, x.dtype)
    coeffs = torch.einsum("ui,bchwij,vj->bchwuv", d, _to_blocks(x), d)
    b, c, hb, wb = coeffs.shape[:4]
    return coeffs.reshape(b, c, hb, wb, 64).permute(0, 1, 4, 2, 3)


def block_idct(coeffs: torch.Tensor) -> torch.Tensor:
    """Coefficients [B, C, 64, H/8, W/8] -> [B, C, H, W]."""
    d = dct_matrix(coeffs.device, coeffs.dtype)
    b, c, _, hb, wb = coeffs.shape
    blocks = coeffs.permute(0, 1, 3, 4, 2).reshape(b, c, hb, wb, BLOCK, BLOCK)
    pixels = torch.einsum("ui,bchwuv,vj->bchwij", d, blocks, d)
    return _from_blocks(pixels)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right edges of [B, C, H, W] by edge replication to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")
