"""Frequency-aware decoder: thumbnail pixels + its JPEG coefficients -> full-resolution photo.

Two branches meet at thumbnail (LR) resolution:
- a frequency branch on the 8x8 block grid (1/8 LR resolution) reads each block's 3 x 64
  de-quantized DCT coefficients, conditioned on the file's own tables (how coarse each
  frequency was quantized); its features are pixel-shuffled x8 back to LR pixels. Working on
  the block grid makes it nearly free: one block position stands for 64 pixels.
- a pixel branch reads the decoded thumbnail, fuses the frequency features, runs a few
  residual blocks and pixel-shuffles x4, added to a bilinear upscale of the thumbnail.
Fully convolutional, so it runs on tiles (see ``tiling``) with a margin of
``DecoderConfig.margin()`` LR pixels.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ResBlock, zero_init

COEFF_SCALE = 1.0 / 64.0  # de-quantized DCT values (0..255 sample scale) -> roughly unit range


@dataclass(frozen=True)
class DecoderConfig:
    channels: int = 32  # pixel-branch width at LR resolution (the cost driver)
    blocks: int = 2  # pixel-branch residual blocks
    freq_channels: int = 96  # frequency-branch width on the 8x8 block grid
    freq_blocks: int = 2
    freq_out: int = 16  # frequency features per LR pixel after the x8 shuffle

    def margin(self) -> int:
        """Context (LR pixels, a multiple of 8) a tile needs so tiled output equals untiled."""
        radius = 8 * (self.freq_blocks + 1) + 2 * self.blocks + 2
        return -(-radius // 8) * 8


class Decoder(nn.Module):
    """(lr [B, 3, h, w] in 0..1, dequantized [B, 3, 64, h/8, w/8], tables [B, 128]) -> HR [B, 3, 4h, 4w].

    ``h`` and ``w`` must be multiples of 8; ``tables`` are luma then chroma, natural order.
    """

    def __init__(self, config: DecoderConfig, scale: int = 4):
        super().__init__()
        self.scale = scale
        c, fc = config.channels, config.freq_channels
        self.freq_in = nn.Conv2d(192, fc, 1)
        self.table_embed = nn.Linear(128, fc)
        self.freq_body = nn.Sequential(*[ResBlock(fc, kernel2=1) for _ in range(config.freq_blocks)])
        self.freq_out = nn.Conv2d(fc, config.freq_out * 64, 1)
        self.pixel_in = nn.Conv2d(3, c, 3, padding=1)
        self.fuse = nn.Conv2d(c + config.freq_out, c, 1)
        self.body = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        self.tail = zero_init(nn.Conv2d(c, 3 * scale * scale, 3, padding=1))

    def frequency_features(self, dequantized: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        b, _, _, hb, wb = dequantized.shape
        x = self.freq_in(dequantized.reshape(b, 192, hb, wb) * COEFF_SCALE)
        table_code = self.table_embed(torch.log(tables.to(x.dtype)) / 5.5)  # log(255) ~ 5.5
        x = torch.relu(x + table_code[:, :, None, None])
        return F.pixel_shuffle(self.freq_out(self.freq_body(x)), 8)

    def forward(self, lr: torch.Tensor, dequantized: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        freq = self.frequency_features(dequantized, tables)
        x = torch.relu(self.pixel_in(lr - 0.5))
        x = torch.relu(self.fuse(torch.cat([x, freq], dim=1)))
        residual = F.pixel_shuffle(self.tail(self.body(x)), self.scale)
        base = F.interpolate(lr, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + residual
