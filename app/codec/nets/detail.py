"""The detail layer's encoder side: analysis transform, rate-conditioned gains, and the prior.

A thumbnail cannot carry what is finer than its own pixels; the detail layer carries it as a
learned latent at 1/16 of the photo's side (1/4 of the thumbnail's), coded with a learned
entropy model (``detail_coding``) in the file's payload. Three parts live here:

- ``DetailAnalysis`` (export only): photo + what the base decoder already rebuilds -> latent
  ``y`` [B, C, h/4, w/4]. It sees the base reconstruction's residual, so it spends bits only on
  what the thumbnail and the decoder do not already give.
- ``RateGains``: one model for every rate. The latent is multiplied by a per-channel gain before
  rounding (a coarser grid at small rates) and the decoder multiplies by an inverse gain; both
  are interpolated between a few learned anchors over the rate knob.
- ``DetailPrior``: the mean and scale of each latent element, predicted from the decoded
  thumbnail (which every reader has before it reads the layer) and the rate level. Its output
  sets the coder's probabilities, so the deployed copy is an integer network
  (``detail_prior_int``): bit-exact on every machine and runtime. It is trained in float32.

The decoder side (synthesis and fusion) is part of ``decoder.Decoder``: what runs per viewport.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.codec.nets.layers import ResBlock, zero_init

RATE_LEVELS = 255  # the knob is stored in the layer as an integer 0..255 (exact on every reader)
# The coder's scale table: SCALE_LEVELS log-spaced scales from SCALE_MIN to SCALE_MAX. The prior
# predicts a position on this ladder; readers round it to an index with integer arithmetic.
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 64.0, 64
SCALE_STEP = math.log(SCALE_MAX / SCALE_MIN) / (SCALE_LEVELS - 1)
FREQ_BITS = 16  # coder table frequencies are integers summing to about 2^16 (constriction rescales exactly)
MAX_HALF_WIDTH = 512  # largest symbol magnitude any coder table codes
LATENT_STRIDE = 4  # thumbnail pixels per latent position, per side
# The latent's scale against the residual's principal components at initialisation: coefficients
# of a few hundredths of a grey-level unit become numbers of order 1..10, which rounding resolves.
PCA_SCALE = 32.0


@dataclass(frozen=True)
class DetailConfig:
    latent: int = 64  # latent channels (the decoder's ``DecoderConfig.detail_latent`` must match)
    analysis: int = 96  # analysis width at thumbnail resolution (x4/3 at half resolution)
    prior: int = 48  # width of the (integer) prior network
    rate_anchors: int = 6  # learned gain vectors spread over the rate knob
    # The one rate knob r in 0..1: the thumbnail's own knob (the QPM's) rises from 0 to 1 while r
    # goes from 0 to ``thumbnail_full_at``, then stays at its best while the detail layer grows.
    thumbnail_full_at: float = 0.4
    # The context prior (``detail_context``): 0 = none (v3..v5); else the latent's channels in this
    # many groups, each coded in two checkerboard passes whose scales read what is decoded before.
    context_groups: int = 0
    context_width: int = 32  # hidden width of each context step's network
    context_neighbours: str = "group"  # what the first 3x3 reads spatially (``detail_context.NEIGHBOURS``)

    def thumbnail_rate(self, rate: torch.Tensor) -> torch.Tensor:
        return (rate / self.thumbnail_full_at).clamp(0.0, 1.0)


def rate_level(rate: float) -> int:
    """The knob as the integer the layer stores (0..RATE_LEVELS)."""
    return int(round(min(1.0, max(0.0, float(rate))) * RATE_LEVELS))


def quantized_rate(rate: torch.Tensor) -> torch.Tensor:
    """The knob rounded to the levels a file can state, so training sees what files carry."""
    return torch.round(rate * RATE_LEVELS) / RATE_LEVELS


def residual_blocks(residual: torch.Tensor) -> torch.Tensor:
    """Photo-resolution [B, 3, H, W] -> one 768-vector per latent position [B, 768, H/16, W/16],
    in the channel order the decoder's ``detail_linear`` writes back (two x4 pixel-unshuffles)."""
    return F.pixel_unshuffle(F.pixel_unshuffle(residual, 4), LATENT_STRIDE)


class DetailAnalysis(nn.Module):
    """(photo [B,3,H,W] 0..1, base reconstruction [B,3,H,W], thumbnail [B,3,H/4,W/4] 0..1) -> y.

    Two paths that add: a linear transform of each 16x16 block of the base's residual (``project``,
    initialised from the residual's principal components, so the layer codes something useful
    from its first step: a fresh nonlinear transform learned nothing in hundreds of steps), and a
    nonlinear network that refines it (its last layer starts at zero). The network works at
    thumbnail resolution or below: the photo and the residual are pixel-unshuffled (48 channels
    each), then two stride-2 stages reach 1/16."""

    def __init__(self, config: DetailConfig, scale: int = 4):
        super().__init__()
        c, c2 = config.analysis, config.analysis * 4 // 3
        self.scale = scale
        self.project = nn.Conv2d(3 * (scale * LATENT_STRIDE) ** 2, config.latent, 1, bias=False)
        self.head = nn.Conv2d(2 * 3 * scale * scale + 3, c, 3, padding=1)
        self.body = ResBlock(c)
        self.down1 = nn.Conv2d(c, c2, 3, stride=2, padding=1)
        self.body2 = ResBlock(c2)
        self.down2 = zero_init(nn.Conv2d(c2, config.latent, 3, stride=2, padding=1))

    def receptive_radius(self) -> int:
        """Thumbnail pixels of context a tile needs (for tiled export)."""
        return 1 + 2 + 2 * (1 + 2 + 2 * 1) + 4

    def forward(self, photo: torch.Tensor, base: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        s = self.scale
        residual = photo - base
        x = torch.cat([F.pixel_unshuffle(photo - 0.5, s), F.pixel_unshuffle(residual, s) * 4.0, thumbnail - 0.5], 1)
        x = self.body(torch.relu(self.head(x)))
        x = self.body2(torch.relu(self.down1(x)))
        return self.project(residual_blocks(residual)) + self.down2(x)


class RateGains(nn.Module):
    """Per-channel gain (encoder) and inverse gain (decoder) for a rate knob in 0..1, interpolated
    in the log domain between ``anchors`` learned vectors. Initialised as a geometric ramp from a
    coarse grid (gain 1/4) at r=0 to a fine one (4) at r=1."""

    def __init__(self, channels: int, anchors: int):
        super().__init__()
        ramp = torch.linspace(math.log(0.25), math.log(4.0), anchors)[:, None].repeat(1, channels)
        self.log_gain = nn.Parameter(ramp.clone())
        self.log_inverse = nn.Parameter(-ramp.clone())

    def _interp(self, table: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        pos = rate.float().clamp(0, 1) * (table.shape[0] - 1)
        lo = pos.floor().long().clamp(max=table.shape[0] - 2)
        frac = (pos - lo.float())[:, None]
        return table[lo] * (1 - frac) + table[lo + 1] * frac  # [B, C]

    def gain(self, rate: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._interp(self.log_gain, rate))[:, :, None, None]

    def inverse(self, rate: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._interp(self.log_inverse, rate))[:, :, None, None]


def coder_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """(frequencies int32 [SCALE_LEVELS, 2 * MAX_HALF_WIDTH + 1], half widths int32 [SCALE_LEVELS]).

    Table k codes symbols -half_k..half_k of a zero-mean Gaussian of scale SCALE_MIN *
    exp(k * SCALE_STEP) integrated over unit bins; every symbol of the support gets at least 1.
    Made with float64 ``erfc`` once per model: stored with the weights, never recomputed."""
    width = 2 * MAX_HALF_WIDTH + 1
    freqs = np.zeros((SCALE_LEVELS, width), np.int64)
    halves = np.zeros(SCALE_LEVELS, np.int64)
    for k in range(SCALE_LEVELS):
        sigma = SCALE_MIN * math.exp(k * SCALE_STEP)
        half = int(min(MAX_HALF_WIDTH, max(2, math.ceil(8 * sigma))))
        v = np.arange(-half, half + 1, dtype=np.float64)
        upper = np.array([math.erfc(-(x + 0.5) / (sigma * math.sqrt(2))) for x in v]) / 2
        lower = np.array([math.erfc(-(x - 0.5) / (sigma * math.sqrt(2))) for x in v]) / 2
        p = upper - lower
        freqs[k, :width][: 2 * half + 1] = np.maximum(1, np.round(p / p.sum() * 2**FREQ_BITS))
        halves[k] = half
    return torch.from_numpy(freqs.astype(np.int32)), torch.from_numpy(halves.astype(np.int32))


class DetailPrior(nn.Module):
    """(decoded thumbnail YCbCr [B,3,h,w] 0..255, rate [B]) -> (mean, scale position) [B,C,h/4,w/4].

    The scale position u is where the scale sits on the coder's ladder: sigma = SCALE_MIN *
    exp(u * SCALE_STEP); readers use round(u). Plain convolutions and ReLUs only, inputs scaled
    by powers of two: the form ``detail_prior_int`` turns into exact integer arithmetic."""

    KERNELS = (3, 3, 3, 1)

    def __init__(self, config: DetailConfig):
        super().__init__()
        p, c = config.prior, config.latent
        self.layers = nn.ModuleList(
            [
                nn.Conv2d(3 * LATENT_STRIDE**2 + 1, p, 3, padding=1),
                nn.Conv2d(p, p, 3, padding=1),
                nn.Conv2d(p, p, 3, padding=1),
                nn.Conv2d(p, 2 * c, 1),
            ]
        )
        nn.init.zeros_(self.layers[-1].weight)
        with torch.no_grad():  # start at a mid-ladder scale, zero mean
            self.layers[-1].bias.zero_()
            self.layers[-1].bias[c:] = SCALE_LEVELS / 3
        freqs, halves = coder_tables()  # integer tables: stored with the weights, never recomputed
        self.register_buffer("coder_freqs", freqs)
        self.register_buffer("coder_halves", halves)

    @staticmethod
    def receptive_radius() -> int:
        return 3  # latent positions

    @staticmethod
    def inputs(ycbcr: torch.Tensor, rate_levels: torch.Tensor) -> torch.Tensor:
        """The network's input in its integer form: centred samples (x 1/128 gives the float
        input) pixel-unshuffled to the latent grid, and the rate level as a plane."""
        x = F.pixel_unshuffle(ycbcr - 128.0, LATENT_STRIDE)
        level = (rate_levels.to(x.dtype) - 128.0).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
        return torch.cat([x, level], 1)

    def hidden(self, ycbcr: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's features [B, P, h/4, w/4]: what the context prior also reads."""
        x = self.inputs(ycbcr.float(), torch.round(rate.float() * RATE_LEVELS)) / 128.0
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return x

    def head(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden features -> (mean, scale position)."""
        x = self.layers[-1](hidden)
        c = x.shape[1] // 2
        return x[:, :c], x[:, c:]

    def forward(self, ycbcr: torch.Tensor, rate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.hidden(ycbcr, rate))


def scale_from_position(u: torch.Tensor) -> torch.Tensor:
    return SCALE_MIN * torch.exp(u.clamp(0, SCALE_LEVELS - 1) * SCALE_STEP)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def latent_bits(y: torch.Tensor, mean: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """-log2 P(y) per element under a discretized Gaussian (integer bins around ``mean``); y is
    the noisy or rounded latent in the gained domain. Float32 throughout (the coder's model)."""
    y, mean = y.float(), mean.float()
    sigma = scale_from_position(position.float())
    v = (y - mean).abs()  # symmetric: use the upper tail, which keeps precision
    upper = _std_normal_cdf((0.5 - v) / sigma)
    lower = _std_normal_cdf((-0.5 - v) / sigma)
    return -torch.log2((upper - lower).clamp(min=1e-9))


@torch.no_grad()
def init_from_residual_pca(model, residual_batches: list[torch.Tensor]) -> float:
    """Set the linear paths of a fresh detail layer (the analysis' ``project``, the decoder's
    ``detail_linear``) to the top principal components of the base reconstruction's residual
    (photo-resolution residual batches); returns the energy fraction they keep."""
    blocks = torch.cat(
        [
            residual_blocks(r.float()).permute(0, 2, 3, 1).reshape(-1, residual_blocks(r).shape[1])
            for r in residual_batches
        ]
    )
    covariance = blocks.T.double() @ blocks.double() / len(blocks)
    values, vectors = torch.linalg.eigh(covariance)
    c = model.analysis.project.out_channels
    basis = vectors[:, -c:].flip(1).float()  # [768, C], strongest first
    model.analysis.project.weight.copy_(basis.T[:, :, None, None] * PCA_SCALE)
    model.decoder.detail_linear.weight.copy_(basis[:, :, None, None] / PCA_SCALE)
    return float(values[-c:].sum() / values.sum())
