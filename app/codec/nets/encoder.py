"""Encoder network: full-resolution photo -> thumbnail (x4 smaller per side).

The output is an antialiased bicubic downscale plus a learned residual, so the thumbnail stays
a faithful preview while it hides detail for the decoder. All convolutions run at thumbnail
resolution on the pixel-unshuffled photo (16 sub-pixel phases x 3 colours = 48 channels), so
the encoder costs what a network on the thumbnail would: cheap enough to train on a CPU.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from app.codec.nets.layers import ResBlock, zero_init


@dataclass(frozen=True)
class EncoderConfig:
    channels: int = 64
    blocks: int = 6

    def receptive_radius(self) -> int:
        """Radius of the network's view in thumbnail pixels (for tiling margins)."""
        return 2 * self.blocks + 2


def downscale_bicubic(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscale (Pillow's BICUBIC resampling), the thumbnail's reference."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)


class Encoder(nn.Module):
    """HR RGB [B, 3, H, W] in 0..1 (H, W multiples of ``scale``) -> LR RGB [B, 3, H/s, W/s].

    ``rate`` ([B] in 0..1, 0 = smallest file) is fed as a constant channel so one model can
    adapt how much it hides to the bit budget.
    """

    def __init__(self, config: EncoderConfig, scale: int = 4):
        super().__init__()
        self.scale = scale
        c = config.channels
        self.head = nn.Conv2d(3 * scale * scale + 1, c, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        self.tail = zero_init(nn.Conv2d(c, 3, 3, padding=1))

    def forward(self, hr: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hr.device.type, enabled=False):  # the preview's base stays exact under autocast
            base = downscale_bicubic(hr.float(), self.scale)
        x = F.pixel_unshuffle(hr, self.scale)
        rate_map = rate.to(x.dtype).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
        x = torch.relu(self.head(torch.cat([x, rate_map], dim=1)))
        return base + self.tail(self.body(x)).to(base.dtype)  # reduced-precision residual, exact base
