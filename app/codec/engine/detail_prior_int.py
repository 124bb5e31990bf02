"""The detail prior as exact integer arithmetic: the same probabilities on every machine.

A range coder desynchronises if encoder and decoder disagree on a single probability. The float
prior (``detail.DetailPrior``) would give slightly different numbers under bf16, another BLAS,
ONNX or CUDA, and a scale that lands near a rounding boundary would then pick another table.
So readers and writers both run this integer form of it:

- weights: ``round(w * 2^e)`` with a per-layer power of two ``e`` (``math.frexp``: exact),
  biases at the accumulator's scale;
- activations: fixed point with ``ACT_BITS`` fraction bits, re-scaled by rounding,
  ``floor((x + 2^(k-1)) / 2^k)``;
- convolutions: ``unfold`` + matrix product in float64 on integer values. Every product and
  partial sum is an integer below 2^53, so the result is exact whatever order the BLAS sums in
  (no Winograd or FFT: those would round).

Outputs: the mean in 1/``MEAN_DIV`` units and the coder's scale index (0..SCALE_LEVELS-1), both
integers. Converting the float weights loses < 1/2048 per activation: the scale index is the
float network's, rounded, for all but the elements that sit on a rounding boundary.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from app.codec.nets.detail import LATENT_STRIDE, SCALE_LEVELS, DetailPrior

ACT_BITS = 10  # fraction bits of hidden activations
INPUT_BITS = 7  # the input is (sample - 128) / 128: integers at scale 2^-7
WEIGHT_MAGNITUDE_BITS = 14  # largest |weight| per layer becomes < 2^14
MEAN_DIV = 16  # the mean is coded in 1/16 latent units


def _weight_exponent(weight: torch.Tensor) -> int:
    """e such that max|w| * 2^e < 2^WEIGHT_MAGNITUDE_BITS (frexp is exact on every machine)."""
    largest = float(weight.abs().max())
    if largest == 0.0:
        return WEIGHT_MAGNITUDE_BITS
    _, exponent = math.frexp(largest)  # largest = m * 2^exponent, 0.5 <= m < 1
    return WEIGHT_MAGNITUDE_BITS - exponent


class IntegerPrior:
    """``DetailPrior`` in integers. ``__call__(ycbcr, level, box)`` -> (mean_q, index) int arrays."""

    def __init__(self, prior: DetailPrior):
        self.layers = []  # (weight [out, in*k*k] float64 integers, bias float64 integers, k, shift)
        in_bits = INPUT_BITS
        for i, conv in enumerate(prior.layers):
            w = conv.weight.detach().float().cpu()
            e = _weight_exponent(w)
            w_int = torch.round(w.double() * 2.0**e)
            acc_bits = e + in_bits  # the accumulator's scale is 2^-(e + in_bits)
            b_int = torch.round(conv.bias.detach().double().cpu() * 2.0**acc_bits)
            last = i == len(prior.layers) - 1
            shift = acc_bits - ACT_BITS if not last else acc_bits
            self.layers.append((w_int.reshape(w.shape[0], -1), b_int, conv.kernel_size[0], shift))
            in_bits = ACT_BITS
        self.latent = prior.layers[-1].out_channels // 2

    @staticmethod
    def _conv(x: torch.Tensor, weight: torch.Tensor, kernel: int) -> torch.Tensor:
        """Exact 'same' convolution of integer-valued float64 [C, H, W] (zero padding)."""
        c, h, w = x.shape
        if kernel == 1:
            return (weight @ x.reshape(c, h * w)).reshape(-1, h, w)
        cols = F.unfold(x[None], kernel, padding=kernel // 2)[0]  # [C*k*k, H*W]
        return (weight @ cols).reshape(-1, h, w)

    def _run(self, ycbcr: np.ndarray, level: int, box):
        """(last layer's accumulators, last hidden layer, its shift, inner slices) over ``box``."""
        gh, gw = ycbcr.shape[0] // LATENT_STRIDE, ycbcr.shape[1] // LATENT_STRIDE
        y0, y1, x0, x1 = box or (0, gh, 0, gw)
        r = DetailPrior.receptive_radius()
        cy0, cy1, cx0, cx1 = max(0, y0 - r), min(gh, y1 + r), max(0, x0 - r), min(gw, x1 + r)
        s = LATENT_STRIDE
        pixels = torch.from_numpy(np.ascontiguousarray(ycbcr[cy0 * s : cy1 * s, cx0 * s : cx1 * s]))
        pixels = pixels.permute(2, 0, 1)[None].double()
        x = DetailPrior.inputs(pixels, torch.tensor([float(level)], dtype=torch.float64))[0]
        for i, (weight, bias, kernel, shift) in enumerate(self.layers):
            hidden = x
            acc = self._conv(x, weight, kernel) + bias[:, None, None]
            if i < len(self.layers) - 1:
                x = torch.floor((acc.clamp_(min=0) + 2.0 ** (shift - 1)) / 2.0**shift)  # ReLU, back to ACT_BITS
        inner = (slice(None), slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
        return acc, hidden, shift, inner

    def _mean(self, acc: torch.Tensor, shift: int) -> torch.Tensor:
        return torch.floor(acc[: self.latent] / 2.0 ** (shift - int(math.log2(MEAN_DIV))))

    def __call__(self, ycbcr: np.ndarray, level: int, box: tuple[int, int, int, int] | None = None):
        """``ycbcr``: the decoded thumbnail's samples, uint8 [H, W, 3] with H and W multiples of
        ``LATENT_STRIDE``; ``level``: the layer's rate level; ``box`` (y0, y1, x0, x1) in latent
        positions (default: all). Returns (mean in 1/MEAN_DIV units, scale index) as int32 and
        uint8 arrays [C, box height, box width]: the same on every machine."""
        acc, _, shift, inner = self._run(ycbcr, level, box)
        c = self.latent
        mean = self._mean(acc, shift)
        index = torch.floor((acc[c:] + 2.0 ** (shift - 1)) / 2.0**shift).clamp_(0, SCALE_LEVELS - 1)
        return mean[inner].numpy().astype(np.int32), index[inner].numpy().astype(np.uint8)

    def with_features(self, ycbcr: np.ndarray, level: int, box: tuple[int, int, int, int] | None = None):
        """For a context model (``detail_context_int``): (mean in 1/MEAN_DIV units int32, scale
        position in fixed point with ``ACT_BITS`` fraction bits int64, last hidden layer as
        integers at ``ACT_BITS`` float64 [P, h, w]) over ``box``; exact like ``__call__``."""
        acc, hidden, shift, inner = self._run(ycbcr, level, box)
        c = self.latent
        drop = shift - ACT_BITS
        position = torch.floor((acc[c:] + 2.0 ** (drop - 1)) / 2.0**drop) if drop > 0 else acc[c:] * 2.0**-drop
        return (
            self._mean(acc, shift)[inner].numpy().astype(np.int32),
            position[inner].numpy().astype(np.int64),
            hidden[inner].clone(),
        )
