"""Export-time refinement of the detail latent: the rounded latent the file carries, fitted to
this photo by rate-distortion.

The analysis network (``detail.DetailAnalysis``) is amortised: one small network guesses a good
latent for every photo, and plain rounding then ignores what each rounded value costs and buys.
The exporter has the photo, the decoder and the very probabilities the reader will use (the
integer prior's means and scales: they depend on the thumbnail only, never on the latent), so it
can ask directly which latent minimises

    bits per pixel + MSE / lambda(rate)

the Lagrangian the layer was trained with at this rate (``rd_lambda``: the training recipe's).
A few Adam steps on the latent under the training's relaxation (uniform noise for rounding),
keeping whichever rounded latent scored best (the analysis' own included, so a refined layer is
never worse by this measure); then plain rounding. Readers are unchanged: the file holds
ordinary symbols. Only at export effort "best" (``STEPS_BY_EFFORT``): it costs decoder passes.

The decoder's detail branch enters its pixel branch before the residual blocks, so every step
runs those blocks forward and backward: the work is done in tiles of the latent (each with the
context the decoder needs, its neighbours held at their current values), and the part of the
decoder the latent cannot change (frequency branch, ``pixel_in``, ``fuse``, the bilinear base) is
computed once per tile. Float32 throughout (the rate model is the coder's).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.codec.files.tiling import Box, CancelFn, ProgressFn, check_cancel, tiles_in
from app.codec.nets.decoder import Decoder, bilinear_phases
from app.codec.nets.detail import LATENT_STRIDE, latent_bits

# The Lagrangian of the shipped detail models' training recipes (docs/MODEL.md): lambda falls
# geometrically from LAMBDA_AT_RATE0 at knob 0 to LAMBDA_AT_RATE1 at knob 1.
LAMBDA_AT_RATE0, LAMBDA_AT_RATE1 = 0.016, 1.24e-4
REFINE_TILE = 48  # latent positions per refined tile side (192 thumbnail pixels)
LEARNING_RATE = 0.05  # latent units (one rounding step) per Adam step, at most (0.1 overshot, 0.01 was slow)
STEPS_BY_EFFORT = {"fast": 0, "default": 0, "best": 20}  # Adam steps per tile


@dataclass
class Refinement:
    """What ``DetailCoder.encode`` needs to refine a latent: the thumbnail's decoder inputs as a
    reader computes them (lr, dequantized, tables), the Lagrangian's lambda and the Adam steps."""

    decoder_inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    lam: float
    steps: int


def rd_lambda(rate: float, recipe: dict | None = None, edge: float = 0.4) -> float:
    """The Lagrangian's lambda at knob ``rate`` (MSE on 0..1 samples per bit per pixel), from a
    manifest entry's training recipe where it names one: the knob's one schedule, or the layer's
    own (``detail_lambda_at_edge``: from that lambda at ``edge``, the model's
    ``thumbnail_full_at``, to ``lambda_at_rate1`` at 1), as ``TrainConfig.detail_lambda``."""
    recipe = recipe or {}
    rate = min(1.0, max(0.0, rate))
    lo = float(recipe.get("lambda_at_rate0", LAMBDA_AT_RATE0))
    hi = float(recipe.get("lambda_at_rate1", LAMBDA_AT_RATE1))
    at_edge = recipe.get("detail_lambda_at_edge")
    if at_edge is None:
        return lo * (hi / lo) ** rate
    t = min(1.0, max(0.0, (rate - edge) / (1 - edge)))
    return float(at_edge) * (hi / float(at_edge)) ** t


class _TileProblem:
    """One tile's fixed part of the decoder and its loss."""

    def __init__(self, decoder: Decoder, lr, dequantized, tables, crop: Box, inverse, scale):
        """``lr``/``dequantized``: a region with the decoder's full context; ``crop``: the part of
        it (thumbnail pixels) the tile's problem covers."""
        self.decoder, self.inverse, self.scale = decoder, inverse, scale
        with torch.no_grad():
            window = (Ellipsis, slice(crop.y0, crop.y1), slice(crop.x0, crop.x1))
            self.trunk = decoder.trunk(lr, dequantized, tables)[window].contiguous()
            self.base = bilinear_phases(lr, scale)[window].contiguous()

    def output(self, latent: torch.Tensor) -> torch.Tensor:
        """The decoder's phases for a (gained) latent: ``Decoder.phases`` from the fixed trunk on."""
        return self.base + self.decoder.residual(self.trunk, None, latent * self.inverse)


def refine_latent(
    decoder: Decoder,
    latent: torch.Tensor,
    mean: torch.Tensor,
    position: torch.Tensor,
    inverse: torch.Tensor,
    photo: np.ndarray,
    decoder_inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    lam: float,
    steps: int,
    margin: int,
    *,
    size: tuple[int, int] | None = None,
    progress: ProgressFn = None,
    cancelled: CancelFn = None,
) -> torch.Tensor:
    """The refined latent [C, gh, gw] (gained domain, not yet rounded) of ``photo`` (uint8 HxWx3,
    padded to the thumbnail grid times the scale).

    ``latent``: the analysis' output times the gain; ``mean``/``position``: the prior's (integer
    prior's mean as a float, the coder's scale index) per element; ``inverse``: the inverse gain
    [C, 1, 1]; ``decoder_inputs``: (lr, dequantized, tables) of the whole thumbnail as the reader
    computes them; ``margin``: the decoder's context in thumbnail pixels (``DecoderConfig.margin``).
    ``steps`` Adam steps per tile; 0 returns ``latent`` unchanged. ``size``: the photo's own
    (height, width) inside the padding: the distortion counts only those pixels (a padded edge is
    not part of the photo; on a tiny photo it would be much of the objective). Runs on the CPU,
    where ``decoder_inputs`` are, whatever device the model is on.
    """
    if steps <= 0:
        return latent
    decoder = (
        copy.deepcopy(decoder).float().cpu().requires_grad_(False)
    )  # gradients for the latent only, never the model's
    scale = decoder.scale
    lr_all, dq_all, tables = decoder_inputs
    grid_h, grid_w = latent.shape[1:]
    height, width = size if size is not None else photo.shape[:2]
    # How far (latent positions) one latent element reaches in the output: the synthesis' three
    # 3x3 convolutions at latent resolution, then the residual blocks and the tail at thumbnail
    # resolution. The loss is taken over that reach; the problem's context adds as much again so
    # the outputs there see their neighbours' latents (held at their current values).
    reach = 3 + -(-(2 * len(decoder.body) + 1) // LATENT_STRIDE)
    full_context = -(-margin // (2 * LATENT_STRIDE)) * 2  # the frequency branch's context, 8x8-block aligned
    generator = torch.Generator().manual_seed(0)  # the same photo gives the same file
    out = latent.clone()
    tiles = list(tiles_in(Box(0, grid_h, 0, grid_w), REFINE_TILE, 2))
    total = len(tiles)
    for i, box in enumerate(tiles):
        check_cancel(cancelled)
        ctx = box.expanded(2 * reach, grid_h, grid_w)
        big = ctx.expanded(full_context, grid_h, grid_w)
        lr_box, hr_box = big.scaled(LATENT_STRIDE), ctx.scaled(LATENT_STRIDE * scale)
        inner = box.relative_to(ctx)
        window_box = box.expanded(reach, grid_h, grid_w).relative_to(ctx).scaled(LATENT_STRIDE)
        sl = (slice(None), slice(ctx.y0, ctx.y1), slice(ctx.x0, ctx.x1))
        lr = lr_all[..., lr_box.y0 : lr_box.y1, lr_box.x0 : lr_box.x1]
        dq = dq_all[..., lr_box.y0 // 8 : lr_box.y1 // 8, lr_box.x0 // 8 : lr_box.x1 // 8]
        target = torch.from_numpy(np.ascontiguousarray(photo[hr_box.y0 : hr_box.y1, hr_box.x0 : hr_box.x1]))
        target = F.pixel_unshuffle(target.permute(2, 0, 1)[None].float() / 255.0, scale)
        inside = (torch.arange(hr_box.y0, hr_box.y1) < height)[:, None] & (torch.arange(hr_box.x0, hr_box.x1) < width)
        inside = F.pixel_unshuffle(inside.float().expand(1, 3, -1, -1), scale)  # the photo's own pixels, as phases
        problem = _TileProblem(decoder, lr, dq, tables, ctx.relative_to(big).scaled(LATENT_STRIDE), inverse, scale)
        m, pos = mean[sl][None], position[sl][None]
        fixed = out[sl][None].clone()
        free = torch.zeros_like(fixed, dtype=torch.bool)
        free[..., inner.y0 : inner.y1, inner.x0 : inner.x1] = True
        y = fixed[free].clone().requires_grad_(True)
        optimizer = torch.optim.Adam([y], lr=LEARNING_RATE)
        # total bits + total squared error / (3 lambda): the file's bpp + MSE / lambda, up to the
        # photo's pixel count; per pixel of the tile, so that Adam's steps do not depend on its size
        weight = 1.0 / (3.0 * lam)
        pixels = float(box.height * box.width * (LATENT_STRIDE * scale) ** 2)
        window = (slice(None), slice(None), slice(window_box.y0, window_box.y1), slice(window_box.x0, window_box.x1))
        best, best_loss = y.detach().clone(), math.inf
        for step in range(steps + 1):
            check_cancel(cancelled)  # a step takes a second or more: a cancel need not wait for the tile
            with torch.no_grad():  # the objective of the rounded latent, as the file would carry it
                full = fixed.masked_scatter(free, y)
                q = torch.round(full - m) + m
                squared = ((problem.output(q).clamp(0, 1) - target) ** 2 * inside)[window].sum()
                loss = float((latent_bits(q, m, pos)[free].sum() + weight * squared) / pixels)
            if loss < best_loss:
                best_loss, best = loss, y.detach().clone()
            if progress:
                progress(i * (steps + 1) + step + 1, total * (steps + 1))
            if step == steps:
                break
            # the gradient from the training's relaxation: uniform noise in place of rounding.
            # Rounding's own gradient (passed straight through) ignores what a whole step costs
            # in distortion: tried, it traded distortion for bits at a loss.
            with torch.enable_grad():
                noisy = fixed.masked_scatter(free, y) + (torch.rand(fixed.shape, generator=generator) - 0.5)
                squared = ((problem.output(noisy).clamp(0, 1) - target) ** 2 * inside)[window].sum()
                relaxed = (latent_bits(noisy, m, pos)[free].sum() + weight * squared) / pixels
                optimizer.zero_grad(set_to_none=True)
                relaxed.backward()
            optimizer.step()
        out[sl][free[0]] = best
    return out
