"""Quantization prediction module (QPM): per-image luma and chroma tables.

Reads the thumbnail's block DCT statistics (every block's 3 x 64 coefficient magnitudes, each
passed through a shared MLP and average-pooled over the whole image, so tables are per file),
and a rate knob in 0..1. It predicts log-offsets from a prior: libjpeg's standard tables at a
quality set by the rate (LOW ~ quality 20 ... HIGH ~ quality 80, stored in ``QPMConfig``). An untrained QPM therefore
already writes sensible tables, and training only has to learn per-image corrections.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from app.codec.nets.color import rgb_to_ycbcr
from app.codec.nets.dct import block_dct, pad_to_multiple
from app.codec.nets.jpeg_sim import round_ste
from app.codec.nets.layers import zero_init
from app.codec.nets.tables import STANDARD_CHROMA, STANDARD_LUMA, quality_scale


@dataclass(frozen=True)
class QPMConfig:
    hidden: int = 128
    quality_at_rate0: float = 20.0  # the prior's libjpeg quality at LOW (rate 0) ...
    quality_at_rate1: float = 80.0  # ... and at HIGH (rate 1); log-scale in between


def prior_log_tables(rate: torch.Tensor, config: QPMConfig = QPMConfig()) -> torch.Tensor:
    """log of libjpeg's tables at the quality the rate knob maps to: [B] -> [B, 128]."""
    base = torch.tensor(list(STANDARD_LUMA) + list(STANDARD_CHROMA), dtype=torch.float32, device=rate.device)
    log_lo = math.log(quality_scale(config.quality_at_rate0) / 100.0)
    log_hi = math.log(quality_scale(config.quality_at_rate1) / 100.0)
    log_scale = log_lo + (log_hi - log_lo) * rate.float().view(-1, 1)
    return torch.log(base).view(1, -1) + log_scale


class QuantizationPredictor(nn.Module):
    """LR RGB [B, 3, h, w] in 0..1 + rate [B] -> (luma [B, 64], chroma [B, 64]) in 1..255.

    ``integer=True`` rounds the tables (straight-through), as they are stored in the file.
    """

    def __init__(self, config: QPMConfig):
        super().__init__()
        self.config = config
        h = config.hidden
        self.block_mlp = nn.Sequential(nn.Linear(192, h), nn.ReLU(inplace=True), nn.Linear(h, h), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Linear(h + 1, h), nn.ReLU(inplace=True), zero_init(nn.Linear(h, 128)))

    def forward(self, lr: torch.Tensor, rate: torch.Tensor, integer: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        ycbcr = rgb_to_ycbcr(pad_to_multiple(lr.clamp(0, 1), 8) * 255.0)
        coeffs = block_dct(ycbcr - 128.0)  # [B, 3, 64, hb, wb]
        b = coeffs.shape[0]
        features = torch.log1p(coeffs.abs()).flatten(1, 2).flatten(2).transpose(1, 2)  # [B, N, 192]
        pooled = self.block_mlp(features.float()).mean(dim=1)
        delta = self.head(torch.cat([pooled, rate.float().view(b, 1)], dim=1))
        tables = torch.exp(prior_log_tables(rate, self.config) + delta).clamp(1.0, 255.0)
        if integer:
            tables = round_ste(tables)
        return tables[:, :64], tables[:, 64:]
