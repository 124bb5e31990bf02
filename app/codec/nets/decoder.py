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

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from app.codec.nets.layers import ResBlock, zero_init

COEFF_SCALE = 1.0 / 64.0  # de-quantized DCT values (0..255 sample scale) -> roughly unit range


@dataclass(frozen=True)
class DecoderConfig:
    channels: int = 32  # pixel-branch width at LR resolution (the cost driver)
    blocks: int = 2  # pixel-branch residual blocks
    freq_channels: int = 96  # frequency-branch width on the 8x8 block grid
    freq_blocks: int = 2
    freq_out: int = 16  # frequency features per LR pixel after the x8 shuffle
    # The detail layer's synthesis (0 latent channels: a thumbnail-only decoder). It runs at the
    # latent's resolution (1/4 of the thumbnail's side), so it adds little to the decoder's cost.
    detail_latent: int = 0
    detail_channels: int = 128  # synthesis width at latent resolution
    detail_features: int = 32  # detail features per thumbnail pixel, fused into the pixel branch

    def margin(self) -> int:
        """Context (LR pixels, a multiple of 8) a tile needs so tiled output equals untiled."""
        radius = 8 * (self.freq_blocks + 1) + 2 * self.blocks + 2
        if self.detail_latent:
            radius = max(radius, 4 * (3 + 1) + 2 * self.blocks + 2)  # synthesis: 3 convs at 1/4
        return -(-radius // 8) * 8


class Decoder(nn.Module):
    """(lr [B, 3, h, w] in 0..1, dequantized [B, 3, 64, h/8, w/8], tables [B, 128]) -> HR [B, 3, 4h, 4w].

    ``h`` and ``w`` must be multiples of 8; ``tables`` are luma then chroma, natural order.
    ``detail`` (optional, decoders with ``detail_latent``): the detail layer's decoded latent
    [B, detail_latent, h/4, w/4], already multiplied by its inverse gain. Without it the decoder is
    the base decoder: the detail branch is skipped, not fed zeros.
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
        self.detail_latent = config.detail_latent
        if config.detail_latent:
            dc, df = config.detail_channels, config.detail_features
            self.detail_in = nn.Conv2d(config.detail_latent, dc, 3, padding=1)
            self.detail_body = nn.Sequential(ResBlock(dc))
            self.detail_out = nn.Conv2d(dc, df * 16, 1)  # pixel-shuffled x4 to thumbnail pixels
            # A linear path from the latent to the photo's 16x16 blocks (the analysis' linear
            # transform's transpose, initialised together: ``detail.init_from_residual_pca``) and
            # the nonlinear one above, fused into the pixel branch and added to its output. All
            # bias-free; the fusion starts small (a warm-started decoder is nearly unchanged), the
            # nonlinear output at zero.
            self.detail_linear = nn.Conv2d(config.detail_latent, 3 * scale * scale * 16, 1, bias=False)
            self.detail_fuse = nn.Conv2d(df, c, 1, bias=False)
            with torch.no_grad():
                self.detail_fuse.weight.mul_(0.1)
            self.detail_tail = zero_init(nn.Conv2d(df, 3 * scale * scale, 1, bias=False))

    def adaptable_layers(self) -> list[tuple[str, nn.Module]]:
        """The layers whose biases a file may offset (per-image adaptation, see ``adaptation``),
        in the order of the flat offsets vector: every conv and linear layer of both branches."""
        return [
            (name, m)
            for name, m in self.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None
        ]

    def offsets_size(self) -> int:
        return sum(m.bias.numel() for _, m in self.adaptable_layers())

    def split_offsets(self, flat: torch.Tensor | None) -> dict[str, torch.Tensor] | None:
        """A flat offsets vector [N] -> {layer name: bias offset}; None stays None."""
        if flat is None:
            return None
        flat = flat.reshape(-1)
        if flat.numel() != self.offsets_size():
            raise ValueError(f"expected {self.offsets_size()} bias offsets, got {flat.numel()}")
        out, at = {}, 0
        for name, m in self.adaptable_layers():
            out[name] = flat[at : at + m.bias.numel()]
            at += m.bias.numel()
        return out

    def frequency_features(self, dequantized: torch.Tensor, tables: torch.Tensor, offsets=None) -> torch.Tensor:
        b, _, _, hb, wb = dequantized.shape
        x = _run(self.freq_in, dequantized.reshape(b, 192, hb, wb) * COEFF_SCALE, offsets, "freq_in")
        log_tables = (torch.log(tables.float()) / 5.5).to(self.table_embed.weight.dtype)  # log(255) ~ 5.5
        table_code = _run(self.table_embed, log_tables, offsets, "table_embed")
        x = torch.relu(x + table_code[:, :, None, None])
        x = _blocks(self.freq_body, x, offsets, "freq_body")
        return F.pixel_shuffle(_run(self.freq_out, x, offsets, "freq_out"), 8)

    def detail_features(self, detail: torch.Tensor, offsets=None) -> torch.Tensor:
        """Decoded latent [B, C, h/4, w/4] -> detail features per thumbnail pixel [B, F, h, w]."""
        x = torch.relu(_run(self.detail_in, detail, offsets, "detail_in"))
        x = _blocks(self.detail_body, x, offsets, "detail_body")
        return F.pixel_shuffle(_run(self.detail_out, x, offsets, "detail_out"), 4)

    def trunk(self, lr, dequantized, tables, offsets: dict | None = None) -> torch.Tensor:
        """What no detail latent changes: both branches fused at thumbnail resolution, before
        the detail features join and the ReLU [B, channels, h, w] (``phases``' first half)."""
        dtype = self.pixel_in.weight.dtype
        freq = self.frequency_features(dequantized.to(dtype), tables, offsets)
        x = torch.relu(_run(self.pixel_in, lr.to(dtype) - 0.5, offsets, "pixel_in"))
        return _run(self.fuse, torch.cat([x, freq.to(x.dtype)], dim=1), offsets, "fuse")

    def residual(self, x: torch.Tensor, offsets: dict | None = None, detail: torch.Tensor | None = None):
        """``trunk``'s output (and a detail latent) -> what is added to the bilinear base, as phases:
        ``phases``' second half, differentiable (training, and the export's ``detail_refine``)."""
        if detail is not None:
            if not self.detail_latent:
                raise ValueError("this decoder has no detail branch")
            detail = detail.to(x.dtype)
            features = self.detail_features(detail, offsets)
            x = x + self.detail_fuse(features)
        residual = _run(self.tail, _blocks(self.body, torch.relu(x), offsets, "body"), offsets, "tail")
        if detail is not None:
            linear = F.pixel_shuffle(self.detail_linear(detail), 4)  # 16x16 blocks -> phases
            residual = residual + self.detail_tail(features) + linear
        return residual

    def phases(
        self,
        lr: torch.Tensor,
        dequantized: torch.Tensor,
        tables: torch.Tensor,
        offsets=None,
        detail: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The photo before the final pixel shuffle: [B, 3 * scale^2, h, w], float32.

        The networks run in their parameters' dtype (bf16/fp16 on fast paths); the bilinear base
        they add to stays float32, since an 8-bit mantissa cannot hold a pixel to a grey level.
        ``offsets`` (a flat [N] tensor or ``split_offsets``' dict) shift the layers' biases: a
        file's per-image adaptation.
        """
        if offsets is not None and not isinstance(offsets, dict):
            offsets = self.split_offsets(offsets)
        dtype = self.pixel_in.weight.dtype
        x = self.trunk(lr, dequantized, tables, offsets)
        if torch.is_grad_enabled():
            return bilinear_phases(lr.float(), self.scale) + self.residual(x, offsets, detail).float()
        if detail is not None:
            if not self.detail_latent:
                raise ValueError("this decoder has no detail branch")
            features = self.detail_features(detail.to(dtype), offsets)
            x = x + self.detail_fuse(features)
        x = _blocks(self.body, torch.relu(x), offsets, "body")
        residual = _run(self.tail, x, offsets, "tail")
        del x
        # inference: each part added into the float32 base in place, each freed as soon as it is in:
        # no photo-sized temporaries (the peak memory of a tile, and fresh memory costs page faults)
        base = bilinear_phases(lr.float(), self.scale)
        base.add_(residual)
        del residual
        if detail is not None:
            base.add_(self.detail_tail(features))
            del features
            base.add_(F.pixel_shuffle(self.detail_linear(detail.to(dtype)), 4))
        return base

    def forward(
        self,
        lr: torch.Tensor,
        dequantized: torch.Tensor,
        tables: torch.Tensor,
        offsets=None,
        detail: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return F.pixel_shuffle(self.phases(lr, dequantized, tables, offsets, detail), self.scale)


def _run(layer: nn.Module, x: torch.Tensor, offsets: dict | None, name: str) -> torch.Tensor:
    """``layer(x)``, its bias shifted by ``offsets[name]`` when given (no extra pass over x)."""
    delta = None if offsets is None else offsets.get(name)
    if delta is None:
        return layer(x)
    bias = layer.bias + delta.to(layer.bias.dtype)
    if isinstance(layer, nn.Linear):
        return F.linear(x, layer.weight, bias)
    return F.conv2d(x, layer.weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def _blocks(blocks: nn.Sequential, x: torch.Tensor, offsets: dict | None, prefix: str) -> torch.Tensor:
    for i, block in enumerate(blocks):
        if offsets is None:
            x = block(x)
        else:
            x = x + _run(
                block.conv2,
                block.act(_run(block.conv1, x, offsets, f"{prefix}.{i}.conv1")),
                offsets,
                f"{prefix}.{i}.conv2",
            )
    return x


def bilinear_phases(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.interpolate(lr, scale_factor=scale, mode="bilinear")`` before its pixel shuffle, as a
    fixed 3x3 convolution at thumbnail resolution: the same numbers at a fraction of the memory
    traffic (the upscaled image is never written in float, and the network's residual is added
    to it at LR). Edge replication matches interpolate's clamping at the image border."""
    kernel = _bilinear_kernel(scale, lr.device, lr.dtype)
    with torch.autocast(lr.device.type, enabled=False):  # a pixel needs more than bf16's 8-bit mantissa
        return F.conv2d(F.pad(lr, (1, 1, 1, 1), mode="replicate"), kernel, groups=lr.shape[1])


@functools.lru_cache(maxsize=16)
def _bilinear_kernel(scale: int, device, dtype) -> torch.Tensor:
    """[3 * scale^2, 1, 3, 3] weights: output channel c*s*s + i*s + j is colour c at sub-pixel (i, j).
    Made outside inference mode, so the cached tensor also serves training graphs."""
    with torch.inference_mode(False):
        return _bilinear_taps(scale).to(device=device, dtype=dtype)


def _bilinear_taps(scale: int) -> torch.Tensor:
    taps = torch.zeros(scale, 3, dtype=torch.float64)
    for i in range(scale):
        offset = (i + 0.5) / scale - 0.5  # source position of sub-pixel i, relative to its LR pixel
        if offset < 0:
            taps[i, 0], taps[i, 1] = -offset, 1 + offset
        else:
            taps[i, 1], taps[i, 2] = 1 - offset, offset
    kernel = taps[:, None, :, None] * taps[None, :, None, :]  # [i, j, ky, kx]
    return kernel.reshape(scale * scale, 1, 3, 3).repeat(3, 1, 1, 1)


def to_uint8_hwc(phases: torch.Tensor, scale: int) -> torch.Tensor:
    """Decoder phases [B, 3 * s^2, h, w] -> uint8 photo [B, s*h, s*w, 3]: rounded while still at
    LR layout, then shuffled as bytes (a quarter of the traffic of shuffling floats). ``phases``
    is overwritten."""
    b, _, h, w = phases.shape
    q = phases.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)  # in place: phases is a scratch buffer
    return q.view(b, 3, scale, scale, h, w).permute(0, 4, 2, 5, 3, 1).reshape(b, h * scale, w * scale, 3)
