"""The context prior (``nets.detail_context``) in exact integers, and a tile's coding order.

Same rules as ``detail_prior_int``: weights ``round(w * 2^e)`` with a per-layer power of two,
fixed-point activations with ``ACT_BITS`` fraction bits, products in float64 on integer values
(every sum below 2^53, so exact in any order). The inputs are the base prior's last hidden layer
(already integers at ``ACT_BITS``) and the decoded symbols shifted to the same scale.

A tile is coded in ``2 * groups`` steps (``tile_steps``): each step's scale indexes are the base
prior's position plus this network's correction, both in fixed point, rounded once; each step
computes only the positions it codes (half the tile).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from app.codec.engine.detail_prior_int import ACT_BITS, _weight_exponent
from app.codec.nets.detail import MAX_HALF_WIDTH, SCALE_LEVELS
from app.codec.nets.detail_context import ContextPrior

NEIGHBOUR_TAPS = ((0, 1), (1, 0), (1, 2), (2, 1))  # (row, column) in a 3x3 kernel: up, left, right, down


def anchors_of(height: int, width: int) -> np.ndarray:
    """bool [h, w]: the first pass's positions ((row + column) even, tile-local)."""
    return (np.add.outer(np.arange(height), np.arange(width)) % 2) == 0


class IntegerContext:
    """``ContextPrior`` in integers: ``correction(step, hidden, symbols, where)``."""

    def __init__(self, context: ContextPrior):
        self.groups, self.group_size = context.groups, context.group_size
        self.steps = []  # per step: (centre weights, spatial weights, bias, shift, centred inputs), then the 1x1s
        for step in context.steps:
            first, *rest = step
            w = (first.weight * first.mask).detach().float().cpu()
            # inputs that the mask reads at the position alone go through a 1x1 product (no unfold)
            centred = int((first.mask.sum((0, 2, 3)) == first.mask.shape[0]).sum()) if first.mask.shape[-1] > 1 else 0
            second = len(self.steps) % 2 == 1
            if centred not in (0, first.in_channels - (self.group_size if second else 0)):
                raise ValueError("a context step's 1x1 inputs must be its hidden features and earlier groups")
            e = _weight_exponent(w)
            w_int = torch.round(w.double() * 2.0**e)
            centre = w_int[:, :centred, 1, 1].contiguous()
            if centred and second:
                # "group", second pass: the 3x3 reads only the group's anchors, and around a second-pass
                # position only the 4 direct neighbours are anchors (the centre and the diagonals are
                # zero), so the other 5 taps add exact zeros: keep the 4, tap-major
                spatial = torch.cat([w_int[:, centred:, dy, dx] for dy, dx in NEIGHBOUR_TAPS], 1)
            else:
                spatial = w_int[:, centred:].reshape(w.shape[0], -1)
            bias = torch.round(first.bias.detach().double().cpu() * 2.0 ** (e + ACT_BITS))
            layers = [(centre, spatial, bias, e, centred)]  # every output at ACT_BITS: shift = e
            for conv in rest:
                w = conv.weight.detach().float().cpu()
                e = _weight_exponent(w)
                w_int = torch.round(w.double() * 2.0**e).reshape(w.shape[0], -1)
                layers.append((w_int, torch.round(conv.bias.detach().double().cpu() * 2.0 ** (e + ACT_BITS)), e))
            self.steps.append(layers)

    @property
    def step_count(self) -> int:
        return len(self.steps)

    def channels(self, step: int) -> slice:
        g = step // 2
        return slice(g * self.group_size, (g + 1) * self.group_size)

    def correction(self, step: int, hidden: torch.Tensor, symbols: np.ndarray, where: np.ndarray) -> np.ndarray:
        """The scale-position correction (fixed point, ``ACT_BITS`` fraction bits, int64
        [T, group size, where.sum()]) of step ``step`` at the positions ``where`` (bool [h, w])
        of T tiles of one shape, from their hidden features (float64 integers [T, P, h, w]) and
        the symbols decoded so far (int [T, C, h, w]; zero where not yet decoded). Zero padding
        at each tile's edges: the tiles are independent, batched only to share the work."""
        g, second = divmod(step, 2)
        n = self.group_size
        tiles, _, h, w = symbols.shape
        (centre, spatial, bias, shift, centred), *rest = self.steps[step]
        at = torch.from_numpy(where.reshape(-1))
        prefix = torch.from_numpy(symbols[:, : g * n].reshape(tiles, g * n, h * w).astype(np.float64)) * 2.0**ACT_BITS
        inputs = [hidden.reshape(tiles, -1, h * w), prefix]
        if second:
            anchored = symbols[:, g * n : (g + 1) * n] * anchors_of(h, w)
            inputs.append(torch.from_numpy(anchored.reshape(tiles, n, h * w).astype(np.float64)) * 2.0**ACT_BITS)
        acc = bias[:, None].expand(tiles, -1, int(at.sum())).clone()
        if centred:  # "group": the hidden features and earlier groups at the position itself, a 1x1 product
            acc += centre @ torch.cat([x[:, :, at] for x in inputs[:2]], 1)
            inputs = inputs[2:]
        if inputs and centred:  # the group's anchors: the 4 direct neighbours of each second-pass position
            if not np.array_equal(where, ~anchors_of(h, w)):
                raise ValueError("a second pass codes exactly the positions that are not anchors")
            padded = F.pad(inputs[0].reshape(tiles, n, h, w), (1, 1, 1, 1))
            cols = torch.cat([padded[:, :, dy : dy + h, dx : dx + w] for dy, dx in NEIGHBOUR_TAPS], 1)
            acc += spatial @ cols.reshape(tiles, -1, h * w)[:, :, at]
        elif inputs:  # "all": every input over each position's 3x3 neighbourhood
            image = torch.cat(inputs, 1).reshape(tiles, -1, h, w)
            acc += spatial @ F.unfold(image, 3, padding=1)[:, :, at]
        x = _round_shift(acc.clamp_(min=0), shift)  # ReLU, back to ACT_BITS
        for i, (weight, layer_bias, layer_shift) in enumerate(rest):
            acc = weight @ x + layer_bias[:, None]
            if i < len(rest) - 1:
                acc.clamp_(min=0)
            x = _round_shift(acc, layer_shift)
        return x.numpy().astype(np.int64)


EXACT_LIMIT = 2.0**53  # float64 holds every integer below this exactly


def check_exact(prior, context: IntegerContext | None) -> None:
    """Raise ``ValueError`` unless every accumulator of the base prior (``IntegerPrior``) and of the
    context stays below 2^53 for any thumbnail and any symbols the tables allow (|s| <= 512):
    a conservative bound, sum |W| * largest input + |B| per layer, so exactness is proved when a
    model is loaded rather than assumed (the shipped v5c: below 2^50)."""

    def through(layers, largest: float) -> float:
        for weight, bias, shift in layers:
            acc = float((weight.abs().sum(1) * largest + bias.abs()).max())
            if acc >= EXACT_LIMIT:
                raise ValueError(f"an integer prior layer can reach 2^{math.log2(acc):.1f}: not exact in float64")
            largest = math.floor((acc + 2.0 ** (shift - 1)) / 2.0**shift) if shift > 0 else acc * 2.0**-shift
        return largest

    hidden = through([(w, b, s) for w, b, _, s in prior.layers[:-1]], 128.0)  # samples - 128 and the level - 128
    through([(w, b, s) for w, b, _, s in prior.layers[-1:]], hidden)
    for (centre, spatial, bias, shift, _), *rest in context.steps if context is not None else []:
        largest = max(hidden, MAX_HALF_WIDTH * 2.0**ACT_BITS)  # no table codes a larger symbol
        through([(torch.cat([centre, spatial], 1), bias, shift), *rest], largest)


def _round_shift(acc: torch.Tensor, shift: int) -> torch.Tensor:
    """floor((acc + 2^(shift-1)) / 2^shift): exact on float64 integers (a left shift if shift <= 0)."""
    return torch.floor((acc + 2.0 ** (shift - 1)) / 2.0**shift) if shift > 0 else acc * 2.0**-shift


def step_index(position_fx: np.ndarray, correction_fx: np.ndarray) -> np.ndarray:
    """Base position + correction (both fixed point) -> the coder's scale index, uint8."""
    total = position_fx + correction_fx
    return np.clip((total + (1 << (ACT_BITS - 1))) >> ACT_BITS, 0, SCALE_LEVELS - 1).astype(np.uint8)


def tile_steps(context: IntegerContext, hidden: torch.Tensor, position_fx: np.ndarray, code_step):
    """Run the steps of T tiles of one shape in order. ``code_step(tile, channels, where,
    index)`` codes (encoder) or decodes (decoder) one tile's symbols of that step, int
    [group size, where.sum()], and returns them; they join the context of the later steps.
    ``hidden`` [T, P, h, w], ``position_fx`` [T, C, h, w]. Returns (symbols int16, scale
    indexes uint8), both [T, C, h, w]."""
    tiles, c, h, w = position_fx.shape
    anchors = anchors_of(h, w)
    symbols = np.zeros((tiles, c, h, w), np.int16)
    index = np.zeros((tiles, c, h, w), np.uint8)
    for step in range(context.step_count):
        where = anchors if step % 2 == 0 else ~anchors
        if not where.any():
            continue
        channels = context.channels(step)
        idx = step_index(position_fx[:, channels][:, :, where], context.correction(step, hidden, symbols, where))
        for t in range(tiles):
            index[t, channels][:, where] = idx[t]
            symbols[t, channels][:, where] = code_step(t, channels, where, idx[t])
    return symbols, index
