"""The whole learned codec in one module, with its architecture config.

``HyperThumbnailModel.forward`` is the training graph: encoder -> QPM -> differentiable JPEG
-> rate estimate and decoder. Inference uses the parts separately (``inference``), because
encoding and decoding happen at different times on different machines, through a real file.
"""

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from app.codec.files.marker import SCALE
from app.codec.nets.decoder import Decoder, DecoderConfig
from app.codec.nets.detail import (
    DetailAnalysis,
    DetailConfig,
    DetailPrior,
    RateGains,
    latent_bits,
    quantized_rate,
)
from app.codec.nets.detail_context import ContextPrior
from app.codec.nets.encoder import Encoder, EncoderConfig
from app.codec.nets.jpeg_sim import quantize, round_ste, simulate_jpeg
from app.codec.nets.qpm import QPMConfig, QuantizationPredictor
from app.codec.nets.rate import bits_per_pixel


@dataclass(frozen=True)
class ModelConfig:
    scale: int = SCALE
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    qpm: QPMConfig = field(default_factory=QPMConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    detail: DetailConfig | None = None  # the detail layer (v3 on); None: thumbnail-only models

    def __post_init__(self):
        if (self.detail.latent if self.detail else 0) != self.decoder.detail_latent:
            raise ValueError("the detail layer's latent channels and the decoder's detail branch disagree")

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.detail is None:
            del d["detail"]  # thumbnail-only models keep the manifest entries they always had
        elif not self.detail.context_groups:
            for key in ("context_groups", "context_width", "context_neighbours"):  # v3..v5 keep their entries too
                del d["detail"][key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(
            scale=int(d["scale"]),
            encoder=EncoderConfig(**d["encoder"]),
            qpm=QPMConfig(**d["qpm"]),
            decoder=DecoderConfig(**d["decoder"]),
            detail=DetailConfig(**d["detail"]) if d.get("detail") else None,
        )

    def thumbnail_rate(self, rate: torch.Tensor) -> torch.Tensor:
        """The QPM's and encoder's own knob for the product's rate knob."""
        return rate if self.detail is None else self.detail.thumbnail_rate(rate)


@dataclass
class TrainOutput:
    reconstruction: torch.Tensor  # HR [B, 3, H, W], 0..1 (unclamped)
    thumbnail: torch.Tensor  # encoder output, LR [B, 3, H/4, W/4] before JPEG
    thumbnail_decoded: torch.Tensor  # what a viewer shows after JPEG, 0..1
    bpp: torch.Tensor  # [B] estimated bits per HR pixel
    luma_table: torch.Tensor  # [B, 64]
    chroma_table: torch.Tensor  # [B, 64]
    base_reconstruction: torch.Tensor | None = None  # without the detail layer (detail models)
    detail_bpp: torch.Tensor | None = None  # [B] estimated bits of the detail layer per HR pixel
    dequantized: torch.Tensor | None = None  # the thumbnail's dequantized DCT blocks (a teacher's input)


class HyperThumbnailModel(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        if config.scale != SCALE:
            raise ValueError(f"only scale {SCALE} is supported, got {config.scale}")
        self.config = config
        self.encoder = Encoder(config.encoder, config.scale)
        self.qpm = QuantizationPredictor(config.qpm)
        self.decoder = Decoder(config.decoder, config.scale)
        if config.detail is not None:
            self.analysis = DetailAnalysis(config.detail, config.scale)
            self.gains = RateGains(config.detail.latent, config.detail.rate_anchors)
            self.prior = DetailPrior(config.detail)
            if config.detail.context_groups:
                self.context = ContextPrior(
                    config.detail.prior,
                    config.detail.latent,
                    config.detail.context_groups,
                    config.detail.context_width,
                    config.detail.context_neighbours,
                )

    def forward(
        self, hr: torch.Tensor, rate: torch.Tensor, autocast: torch.dtype | None = None, frozen_thumbnail: bool = False
    ) -> TrainOutput:
        """HR crops [B, 3, H, W] (H, W multiples of 32) and rate knobs [B] -> training outputs.

        ``autocast`` (e.g. bfloat16) runs the encoder and decoder networks in that precision; the
        JPEG simulation, the DCT, the QPM's tables, the prior and the rate estimates always run in
        float32 (bf16's 8-bit mantissa cannot hold a DCT coefficient to its rounding step).
        ``frozen_thumbnail``: encoder and QPM run without a graph and JPEG rounds exactly, so the
        thumbnails are the files' own (a phase that trains the decoder and the detail layer only).
        """
        if self.config.detail is not None:
            rate = quantized_rate(rate)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen_thumbnail):
            lr, luma, chroma, sim, bpp = self.thumbnail(
                hr, self.config.thumbnail_rate(rate), autocast, frozen_thumbnail
            )
        tables = torch.cat([luma, chroma], dim=1)
        base = self._networks(autocast, self.decoder, sim.decoded, sim.dequantized, tables).float()
        if self.config.detail is None:
            return TrainOutput(base, lr, sim.decoded, bpp, luma, chroma, dequantized=sim.dequantized)
        y = self._networks(autocast, self.analysis, hr, base.detach(), sim.decoded.detach()).float()
        scaled = y * self.gains.gain(rate)
        hidden = self.prior.hidden(sim.decoded_ycbcr, rate)
        mean, position = self.prior.head(hidden)
        if self.config.detail.context_groups:  # the symbols a decoder reads, as files code them
            symbols = torch.round(scaled - mean).detach()
            position = position + self.context(hidden, symbols)
        bits = latent_bits(scaled + torch.empty_like(scaled).uniform_(-0.5, 0.5), mean, position)
        detail_bpp = bits.sum(dim=(1, 2, 3)) / (hr.shape[-2] * hr.shape[-1])
        latent = (round_ste(scaled - mean) + mean) * self.gains.inverse(rate)
        reconstruction = self._networks(autocast, self.decoder, sim.decoded, sim.dequantized, tables, None, latent)
        return TrainOutput(
            reconstruction.float(), lr, sim.decoded, bpp, luma, chroma, base, detail_bpp, sim.dequantized
        )

    def thumbnail(self, hr: torch.Tensor, thumb_rate: torch.Tensor, autocast=None, exact: bool = False):
        """The training graph's first half: encoder -> QPM -> simulated JPEG -> estimated bits per
        photo pixel (noisy rounding, float32). ``exact`` rounds the coefficients as files do (the
        decoded thumbnail is the file's; callers that want no gradient disable it themselves)."""
        lr = self._networks(autocast, self.encoder, hr, thumb_rate).float()
        luma, chroma = self.qpm(lr, thumb_rate)
        sim = simulate_jpeg(lr, luma, chroma, rounding="round" if exact else "ste")
        bpp = bits_per_pixel(quantize(sim.scaled, "noise"), self.config.scale)
        return lr, luma, chroma, sim, bpp

    @staticmethod
    def _networks(autocast: torch.dtype | None, network: nn.Module, *inputs):
        if autocast is None:
            return network(*inputs)
        with torch.autocast(inputs[0].device.type, dtype=autocast):
            return network(*inputs)
