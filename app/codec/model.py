"""The whole learned codec in one module, with its architecture config.

``HyperThumbnailModel.forward`` is the training graph: encoder -> QPM -> differentiable JPEG
-> rate estimate and decoder. Inference uses the parts separately (``inference``), because
encoding and decoding happen at different times on different machines, through a real file.
"""
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .decoder import Decoder, DecoderConfig
from .encoder import Encoder, EncoderConfig
from .fileformat import SCALE
from .jpeg_sim import quantize, simulate_jpeg
from .qpm import QPMConfig, QuantizationPredictor
from .rate import bits_per_pixel


@dataclass(frozen=True)
class ModelConfig:
    scale: int = SCALE
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    qpm: QPMConfig = field(default_factory=QPMConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(
            scale=int(d["scale"]),
            encoder=EncoderConfig(**d["encoder"]),
            qpm=QPMConfig(**d["qpm"]),
            decoder=DecoderConfig(**d["decoder"]),
        )


@dataclass
class TrainOutput:
    reconstruction: torch.Tensor  # HR [B, 3, H, W], 0..1 (unclamped)
    thumbnail: torch.Tensor  # encoder output, LR [B, 3, H/4, W/4] before JPEG
    thumbnail_decoded: torch.Tensor  # what a viewer shows after JPEG, 0..1
    bpp: torch.Tensor  # [B] estimated bits per HR pixel
    luma_table: torch.Tensor  # [B, 64]
    chroma_table: torch.Tensor  # [B, 64]


class HyperThumbnailModel(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        if config.scale != SCALE:
            raise ValueError(f"only scale {SCALE} is supported, got {config.scale}")
        self.config = config
        self.encoder = Encoder(config.encoder, config.scale)
        self.qpm = QuantizationPredictor(config.qpm)
        self.decoder = Decoder(config.decoder, config.scale)

    def forward(self, hr: torch.Tensor, rate: torch.Tensor, autocast: torch.dtype | None = None) -> TrainOutput:
        """HR crops [B, 3, H, W] (H, W multiples of 32) and rate knobs [B] -> training outputs.

        ``autocast`` (e.g. bfloat16) runs the encoder and decoder networks in that precision; the
        JPEG simulation, the DCT, the QPM's tables and the rate estimate always run in float32
        (bf16's 8-bit mantissa cannot hold a DCT coefficient to its rounding step).
        """
        lr = self._networks(autocast, self.encoder, hr, rate).float()
        luma, chroma = self.qpm(lr, rate)
        sim = simulate_jpeg(lr, luma, chroma, rounding="ste")
        bpp = bits_per_pixel(quantize(sim.scaled, "noise"), self.config.scale)
        tables = torch.cat([luma, chroma], dim=1)
        reconstruction = self._networks(autocast, self.decoder, sim.decoded, sim.dequantized, tables).float()
        return TrainOutput(reconstruction, lr, sim.decoded, bpp, luma, chroma)

    @staticmethod
    def _networks(autocast: torch.dtype | None, network: nn.Module, *inputs):
        if autocast is None:
            return network(*inputs)
        with torch.autocast(inputs[0].device.type, dtype=autocast):
            return network(*inputs)
