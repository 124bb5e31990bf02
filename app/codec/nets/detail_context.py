"""The detail prior's context: scale corrections read from the symbols already decoded.

The thumbnail-only prior (``detail.DetailPrior``) knows where the thumbnail has texture, not
where the residual it cannot see has detail. The layer's own decoded symbols do: a
probe (docs/MODEL.md, "The prior") saw 18-23% of the layer's bits go once a scale may read its
decoded neighbours and the earlier channels. So a context model decodes a tile in
``2 * groups`` steps:

- the latent's channels in ``groups`` groups (they are ordered strongest principal component
  first, so an early group predicts the energy of the later ones);
- each group in two checkerboard passes: anchors ((row + column) even) first, then the rest,
  which then see their decoded anchor neighbours.

Step (g, pass) reads the base prior's last hidden features (thumbnail and rate), the symbols of
groups < g everywhere, and, in the second pass, group g's anchors; it predicts a correction of
group g's scale position. **Only the scale**: the mean stays the thumbnail prior's, so the
decoded latent, and hence every reconstruction, is the model's without the context, except where
that model's too-small scale made the coder clip a symbol to its table (then it is closer to the
encoder's latent); the context changes the bits, not what they mean. Symbols are read only inside their own tile (zero outside),
so that a tile still decodes on its own. Plain convolutions and ReLUs on integer symbols and
fixed-point features: ``detail_context_int`` runs it in exact integers, like the base prior.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from app.codec.nets.layers import zero_init

KERNELS = (3, 1, 1)  # per step: a 3x3 over the context, then two 1x1s
# Which inputs the first 3x3 reads spatially: "group" (the current group's anchors only; the hidden
# features and the earlier groups at the position itself, which costs ~4x less to decode), or
# "all" (every input over the 3x3 neighbourhood).
NEIGHBOURS = ("group", "all")


def anchor_mask(height: int, width: int, device=None) -> torch.Tensor:
    """[1, 1, h, w] bool: the first pass's positions ((row + column) even, tile-local; tiles
    have even sides, so tile-local and global parity agree)."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return ((rows + cols) % 2 == 0)[None, None]


class ContextPrior(nn.Module):
    """(base prior's hidden [B, P, h, w], symbols [B, C, h, w]) -> scale-position correction
    [B, C, h, w], each element from the step that codes it (so it reads only what a decoder
    has at that step)."""

    def __init__(self, prior_width: int, latent: int, groups: int, width: int, neighbours: str = "group"):
        super().__init__()
        if latent % groups:
            raise ValueError(f"{latent} latent channels do not split into {groups} context groups")
        if neighbours not in NEIGHBOURS:
            raise ValueError(f"context neighbours must be one of {NEIGHBOURS}, not {neighbours!r}")
        self.groups, self.group_size = groups, latent // groups
        self.steps = nn.ModuleList()
        for g in range(groups):
            for second in (False, True):
                centred = prior_width + g * self.group_size  # inputs read at the position itself ("group")
                inputs = centred + (self.group_size if second else 0)
                first = nn.Conv2d(inputs, width, KERNELS[0], padding=KERNELS[0] // 2)
                mask = torch.ones_like(first.weight)
                if neighbours == "group":
                    mask[:, :centred] = 0
                    mask[:, :centred, 1, 1] = 1
                with torch.no_grad():
                    first.weight.mul_(mask)
                first.register_buffer("mask", mask, persistent=False)  # fixed by the config, not stored
                self.steps.append(
                    nn.ModuleList(
                        [
                            first,
                            nn.Conv2d(width, width, KERNELS[1]),
                            zero_init(nn.Conv2d(width, self.group_size, KERNELS[2])),  # starts as the base prior
                        ]
                    )
                )

    def step_inputs(self, hidden: torch.Tensor, symbols: torch.Tensor, step: int, anchors: torch.Tensor):
        """What step ``step`` (= 2 * group + pass) reads: hidden features, earlier groups'
        symbols, and in the second pass this group's anchor symbols (zero elsewhere)."""
        g, second = divmod(step, 2)
        n = self.group_size
        parts = [hidden, symbols[:, : g * n]]
        if second:
            parts.append(symbols[:, g * n : (g + 1) * n] * anchors)
        return torch.cat(parts, 1)

    def step_output(self, step: int, x: torch.Tensor) -> torch.Tensor:
        first, *rest = self.steps[step]
        x = torch.relu(F.conv2d(x, first.weight * first.mask, first.bias, padding=first.padding))
        for i, layer in enumerate(rest):
            x = layer(x)
            if i < len(rest) - 1:
                x = torch.relu(x)
        return x

    def forward(self, hidden: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        anchors = anchor_mask(*symbols.shape[-2:], device=symbols.device).to(symbols.dtype)
        out = []
        for g in range(self.groups):
            first = self.step_output(2 * g, self.step_inputs(hidden, symbols, 2 * g, anchors))
            second = self.step_output(2 * g + 1, self.step_inputs(hidden, symbols, 2 * g + 1, anchors))
            out.append(first * anchors + second * (1 - anchors))
        return torch.cat(out, 1)
