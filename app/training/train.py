"""One training script for the codec, resumable, seeded, the same on CPU and CUDA.

Two modes share the loop:
- ``hyperthumb``: the whole model (encoder, QPM, decoder) through the differentiable JPEG.
  Loss = L1(reconstruction, photo) + thumb_weight * L1(JPEG-decoded thumbnail, bicubic
  downscale) + lambda(rate) * estimated bits per photo pixel. The rate knob is drawn uniformly
  in 0..1 per crop, and lambda falls geometrically from ``lambda_at_rate0`` to
  ``lambda_at_rate1``, so one model covers LOW..HIGH.
- ``jpeg-sr``: the evaluation baseline "standard JPEG thumbnail + our decoder": the encoder is a
  plain bicubic downscale, tables are libjpeg's at a random quality, only the decoder learns.

A run lives in a folder: ``config.json``, ``checkpoint.pt`` (model, optimizer, step, RNG states;
written atomically every ``checkpoint_every`` steps) and ``log.jsonl``. Running again with
``resume`` continues where the checkpoint left off, also with a larger ``steps``.
"""

import json
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.codec.engine.runtime import cpu_has_native_bf16
from app.codec.nets.decoder import DecoderConfig
from app.codec.nets.detail import DetailConfig, init_from_residual_pca, quantized_rate
from app.codec.nets.encoder import EncoderConfig, downscale_bicubic
from app.codec.nets.jpeg_sim import simulate_jpeg
from app.codec.nets.model import HyperThumbnailModel, ModelConfig
from app.codec.nets.qpm import QPMConfig
from app.codec.nets.rate import bits_per_pixel
from app.codec.nets.tables import standard_tables
from app.training.size_hold import KNOTS, ThumbnailSizeHold

MODES = ("hyperthumb", "jpeg-sr")
LOSSES = ("l1", "mse")
TRAINABLE = ("all", "decoder", "detail")
PRECISIONS = ("bf16", "fp32")

# The architecture trained by default (v2). The decoder is sized to the runtime budget
# (docs/PERFORMANCE.md: a 1920x1080 viewport in ~120 ms on torch-bf16 and ~260 ms on ONNX Runtime
# on the 2-core dev CPU, within 150 / 300 ms); its frequency branch, nearly free on the 8x8 block
# grid, is wider and deeper. The encoder runs once per export, so it is as deep as training allows.
V2_MODEL = ModelConfig(
    encoder=EncoderConfig(channels=64, blocks=6),
    qpm=QPMConfig(hidden=64),
    decoder=DecoderConfig(channels=48, blocks=3, freq_channels=128, freq_blocks=3, freq_out=16),
)
# v3: v2 plus the detail layer (docs/MODEL.md). Warm-started from v2 (``--init-from``): the base
# decoder starts as v2's, and the layer's linear paths from the base residual's principal
# components (``init_detail_linear_paths``), so the layer helps from the first step.
DEFAULT_MODEL = ModelConfig(
    encoder=V2_MODEL.encoder,
    qpm=V2_MODEL.qpm,
    decoder=DecoderConfig(
        channels=48,
        blocks=3,
        freq_channels=128,
        freq_blocks=3,
        freq_out=16,
        detail_latent=64,
        detail_channels=128,
        detail_features=32,
    ),
    detail=DetailConfig(latent=64),
)


@dataclass
class TrainConfig:
    mode: str = "hyperthumb"
    steps: int = 40000
    batch: int = 16
    patch: int = 256  # HR crop side (multiple of 32); the paper's
    lr: float = 5e-4
    lr_min: float = 2e-5
    warmup: int = 500
    seed: int = 0
    lambda_at_rate0: float = 0.8  # weight of bits per pixel at the smallest files
    lambda_at_rate1: float = 0.05  # ... and at the largest
    thumb_weight: float = 0.1
    jpeg_quality: tuple[int, int] = (15, 95)  # jpeg-sr mode: qualities drawn uniformly
    checkpoint_every: int = 100
    validate_every: int = 500
    model: dict = field(default_factory=DEFAULT_MODEL.to_dict)
    loss: str = "l1"  # reconstruction distortion: "l1" (robust, early) or "mse" (the PSNR it is scored by)
    precision: str = "bf16"  # networks under bfloat16 autocast where the device computes it natively
    grad_clip: float = 1.0
    # "decoder": encoder and QPM frozen, so the files' bytes stay as they are and only the
    # reconstruction learns (the MSE phase: an MSE term against the L1-tuned rate lambdas would
    # shift every preset's bpp). jpeg-sr mode always trains the decoder alone.
    trains: str = "all"
    # detail models: weight of the base reconstruction's distortion (the decoder without the
    # layer: what a file shows before, or without, its detail layer)
    base_weight: float = 0.3
    # detail models with a frozen thumbnail: the base's weight at rates below the layer's start,
    # as a plain distortion weight (the thumbnail-only models' loss: the same at every rate).
    # None: ``base_weight`` / lambda(r) as above the start, which trains the base ~100x less at LOW
    # than at HIGH: harmless for a base warm-started from v2 (v3..v5), too little for a new
    # (leaner) decoder, whose base is what every file up to HIGH shows.
    base_weight_below: float | None = None
    # detail models: the rate term's weight rises linearly from 0 over this many steps, so the
    # new latent learns to carry detail before it is asked to be cheap
    rate_warmup: int = 0
    # detail models: the rate gains' learning rate is this many times the others'. At the shared
    # rate a log-gain moves ~3e-4 a step, and the smallest rates kept spending 0.4 bpp on the layer
    # after 500 steps: the gains must move by whole factors
    gain_lr_scale: float = 1.0
    # detail models: the share of crops drawn at rates where files carry the layer (above the
    # thumbnail's best, ``DetailConfig.thumbnail_full_at``); the others train the base decoder
    detail_rate_share: float = 0.75
    # detail models: lambda where the layer starts (just above the thumbnail's best rate), falling
    # geometrically to ``lambda_at_rate1`` at rate 1, for the layer's terms only. None: the knob's
    # one schedule, under which the layer's smallest files were ~0.3 bpp (v5: rate 0.4 gave 0.09 bpp,
    # 0.55 already 0.40) and an easy photo's layer could make it worse: a larger lambda at the edge
    # makes the knob continuous from the thumbnail's best upwards.
    detail_lambda_at_edge: float | None = None
    # detail models with a trainable thumbnail: weigh the thumbnail-fidelity term per crop by
    # lambda(0.5) / lambda(rate), as the base's distortion is (above the layer's start, where the
    # thumbnail is HIGH's, lambda at HIGH), so the preview's fidelity trades
    # against the thumbnail's bits at each rate as the base does. False: one weight at every rate,
    # which (runs/ht-v7-preview, thumb_weight 1.0) bought preview fidelity with bits at LOW until
    # LOW's files were 4x larger (0.117 bpp).
    thumb_weight_per_rate: bool = False
    # detail models with a trainable thumbnail: a weights file whose encoder and QPM set the
    # thumbnail's sizes. Its bits on each crop are the target, and a per-rate price on the
    # thumbnail's bits follows them by dual ascent (``size_hold``): the preview then learns at the
    # knob's sizes instead of buying fidelity with bits. None: no hold.
    thumb_sizes_from: str | None = None
    thumb_size_step: float = 0.01  # the hold's dual-ascent step on its log-prices
    # a leaner decoder (``trains="detail"``): a weights file whose base reconstruction, on the same
    # thumbnails, is a second target for the student's base: its distortion becomes
    # (1 - distill_weight) x D(base, photo) + distill_weight x D(base, teacher's base). The teacher
    # must share the student's thumbnail (encoder and QPM, checked). None: no teacher.
    distill_from: str | None = None
    distill_weight: float = 0.5

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.patch % 32:
            raise ValueError("patch must be a multiple of 32 (4x scale times 8x8 JPEG blocks)")
        self.jpeg_quality = tuple(self.jpeg_quality)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.trains not in TRAINABLE:
            raise ValueError(f"trains must be one of {TRAINABLE}, not {self.trains!r}")
        if self.thumb_sizes_from and (self.decoder_only or self.trains == "detail"):
            raise ValueError("thumb_sizes_from holds a trainable thumbnail's sizes: this run freezes the thumbnail")
        if self.distill_from and self.trains != "detail":
            raise ValueError("distill_from teaches a decoder on frozen thumbnails: it needs trains='detail'")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], not {self.distill_weight}")

    @property
    def decoder_only(self) -> bool:
        return self.mode == "jpeg-sr" or self.trains == "decoder"

    def trainable(self, model: HyperThumbnailModel) -> list[dict]:
        """The optimizer's parameter groups: ``detail`` leaves the thumbnail (encoder, QPM) frozen;
        a detail model's rate gains form a group of their own (``gain_lr_scale``)."""
        if self.decoder_only:
            return [{"params": list(model.decoder.parameters())}]
        frozen = set()
        if self.trains == "detail":
            frozen = {id(p) for part in (model.encoder, model.qpm) for p in part.parameters()}
        gains = {id(p) for p in model.gains.parameters()} if model.config.detail is not None else set()
        groups = [{"params": [p for p in model.parameters() if id(p) not in frozen | gains]}]
        if gains:
            groups.append({"params": list(model.gains.parameters()), "lr_scale": self.gain_lr_scale})
        return groups

    def autocast_dtype(self, device: str) -> torch.dtype | None:
        """bfloat16 for the networks when asked and the device has it natively, else None (fp32)."""
        if self.precision != "bf16":
            return None
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if device == "cpu" and cpu_has_native_bf16() else None

    def distortion(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(a, b) if self.loss == "mse" else F.l1_loss(a, b)

    def detail_lambda(self, rate: torch.Tensor, edge: float) -> torch.Tensor:
        """The lambda of the detail layer's terms at ``rate`` (see ``detail_lambda_at_edge``)."""
        if self.detail_lambda_at_edge is None:
            return self.rate_lambda(rate)
        t = ((rate - edge) / (1 - edge)).clamp(0, 1)
        return self.detail_lambda_at_edge * (self.lambda_at_rate1 / self.detail_lambda_at_edge) ** t

    def rate_lambda(self, rate: torch.Tensor, step: int | None = None) -> torch.Tensor:
        ramp = 1.0 if step is None or step >= self.rate_warmup else (step + 1) / self.rate_warmup
        return ramp * self.lambda_at_rate0 * (self.lambda_at_rate1 / self.lambda_at_rate0) ** rate

    def learning_rate(self, step: int) -> float:
        """Linear warm-up, then cosine decay to ``lr_min`` at ``steps``."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * progress))


class CropSampler:
    """Random training patches from the pack's crops, with flips and 90-degree turns."""

    def __init__(self, crops: np.ndarray, weights: np.ndarray, patch: int, seed: int):
        if crops.shape[1] < patch or crops.shape[2] < patch:
            raise ValueError(f"patch {patch} is larger than the pack's crops {crops.shape[1:3]}")
        self.crops, self.weights, self.patch = crops, weights, patch
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        picks = self.rng.choice(len(self.crops), size=size, p=self.weights)
        out = np.empty((size, self.patch, self.patch, 3), dtype=np.uint8)
        for i, k in enumerate(picks):
            crop = self.crops[k]
            y = self.rng.integers(0, crop.shape[0] - self.patch + 1)
            x = self.rng.integers(0, crop.shape[1] - self.patch + 1)
            patch = crop[y : y + self.patch, x : x + self.patch]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[i] = np.rot90(patch, self.rng.integers(0, 4))
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def standard_table_batch(qualities: list[int], device) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [standard_tables(q) for q in qualities]
    luma = torch.as_tensor(np.stack([p[0] for p in pairs]), dtype=torch.float32, device=device)
    chroma = torch.as_tensor(np.stack([p[1] for p in pairs]), dtype=torch.float32, device=device)
    return luma, chroma


def jpeg_sr_forward(model: HyperThumbnailModel, hr: torch.Tensor, qualities: list[int], autocast=None):
    """Baseline graph: bicubic thumbnail -> standard JPEG (exact rounding) -> decoder."""
    with torch.no_grad():
        lr = downscale_bicubic(hr, model.config.scale)
        luma, chroma = standard_table_batch(qualities, hr.device)
        sim = simulate_jpeg(lr, luma, chroma, rounding="round")
    tables = torch.cat([luma, chroma], dim=1)
    reconstruction = model._networks(autocast, model.decoder, sim.decoded, sim.dequantized, tables).float()
    return reconstruction, sim


def frozen_encoder_forward(model: HyperThumbnailModel, hr: torch.Tensor, rate: torch.Tensor, autocast=None):
    """The real thumbnails (encoder, QPM, exact JPEG rounding; no graph) -> decoder, for ``trains="decoder"``."""
    with torch.no_grad():
        _, luma, chroma, sim, _ = model.thumbnail(hr, rate, autocast, exact=True)
    tables = torch.cat([luma, chroma], dim=1)
    reconstruction = model._networks(autocast, model.decoder, sim.decoded, sim.dequantized, tables).float()
    return reconstruction, sim


def training_loss(
    model,
    config: TrainConfig,
    hr: torch.Tensor,
    rng: random.Random,
    step: int | None = None,
    size_hold: ThumbnailSizeHold | None = None,
    teacher: HyperThumbnailModel | None = None,
) -> tuple[torch.Tensor, dict]:
    autocast = config.autocast_dtype(hr.device.type)
    if config.mode == "jpeg-sr":
        qualities = [rng.randint(*config.jpeg_quality) for _ in range(hr.shape[0])]
        reconstruction, _ = jpeg_sr_forward(model, hr, qualities, autocast)
        loss = config.distortion(reconstruction, hr)
        return loss, {"loss": loss.item(), "psnr": psnr(reconstruction, hr)}
    rate = torch.rand(hr.shape[0]).to(hr.device)  # the CPU generator: its state is in the checkpoint
    if model.config.detail is not None:
        rates = detail_rates(rate, model.config.detail, config)
        return detail_training_loss(model, config, hr, rates, autocast, step, size_hold, teacher)
    if config.trains == "decoder":
        reconstruction, sim = frozen_encoder_forward(model, hr, rate, autocast)
        loss = config.distortion(reconstruction, hr)
        return loss, {"loss": loss.item(), "psnr": psnr(reconstruction, hr),
                      "bpp": bits_per_pixel(sim.quantized, model.config.scale).mean().item()}  # fmt: skip
    out = model(hr, rate, autocast)
    recon = config.distortion(out.reconstruction, hr)
    reference = downscale_bicubic(hr, model.config.scale)
    thumb = F.l1_loss(out.thumbnail_decoded, reference)
    rate_term = (config.rate_lambda(rate) * out.bpp).mean()
    loss = recon + config.thumb_weight * thumb + rate_term
    stats = {
        "loss": loss.item(),
        "recon": recon.item(),
        "thumb_l1": thumb.item(),
        "bpp": out.bpp.mean().item(),
        "psnr": psnr(out.reconstruction, hr),
        "thumb_psnr": psnr(out.thumbnail_decoded, reference),
    }
    return loss, stats


def detail_rates(uniform: torch.Tensor, detail: DetailConfig, config: TrainConfig) -> torch.Tensor:
    """Uniform draws in [0, 1) -> rates: ``detail_rate_share`` of them in (edge, 1], above the
    thumbnail's best (where files carry the layer), the rest in [0, edge) (the base decoder at
    every thumbnail rate)."""
    edge, share = detail.thumbnail_full_at, config.detail_rate_share
    above = uniform < share
    return torch.where(above, edge + (1 - edge) * (1 - uniform / share), edge * (uniform - share) / (1 - share))


def detail_training_loss(
    model, config: TrainConfig, hr: torch.Tensor, rate: torch.Tensor, autocast, step=None, size_hold=None, teacher=None
):
    """Detail models, per crop: (thumbnail bits + detail bits) + (distortion with the layer +
    ``base_weight`` x distortion without it) / lambda(rate), times lambda at the knob's middle,
    plus thumbnail fidelity; the layer's terms only at rates where files carry it. The same optimum per crop as distortion + lambda x bits, but each
    crop's rate gradient has the same size: with lambda on the bits, the smallest rates' rate
    gradients (lambda 100x larger) drowned every other signal to the shared analysis, and the
    layer learned to carry nothing (the second v3 start)."""
    frozen = config.trains == "detail"
    out = model(hr, rate, autocast, frozen_thumbnail=frozen)
    rate = quantized_rate(rate)
    per_crop = lambda a, b: ((a - b) ** 2 if config.loss == "mse" else (a - b).abs()).mean(dim=(1, 2, 3))
    recon, base = per_crop(out.reconstruction, hr), per_crop(out.base_reconstruction, hr)
    if teacher is not None:  # the teacher's base on the very thumbnails the student decodes
        with torch.no_grad():
            tables = torch.cat([out.luma_table, out.chroma_table], dim=1)
            taught = teacher._networks(autocast, teacher.decoder, out.thumbnail_decoded, out.dequantized, tables)
        teacher_gap = per_crop(out.base_reconstruction, taught.float())
        base = (1 - config.distill_weight) * base + config.distill_weight * teacher_gap
    ramp = config.rate_lambda(rate, step) / config.rate_lambda(rate)  # the rate warm-up, 0..1
    middle = config.rate_lambda(torch.tensor(0.5))
    # Files carry the layer only above the thumbnail's best rate (``Codec.encode_photo``: below it
    # the thumbnail's own bits buy more), so below it only the base reconstruction counts.
    layered = (rate > model.config.detail.thumbnail_full_at).float()
    detail_lambda = config.detail_lambda(rate, model.config.detail.thumbnail_full_at)
    base_weight = torch.full_like(layered, config.base_weight)
    thumbnail_bits = torch.zeros_like(layered)
    if not frozen:
        # The thumbnail's bits cost at every rate, and below the layer's start the base IS the
        # product: full weight there (the thumbnail-only models' R + D / lambda). Without this a
        # trainable encoder spent bits freely at LOW..HIGH (seen: 0.10 -> 0.18 bpp in 150 steps).
        thumbnail_bits = out.bpp
        base_weight = torch.where(layered > 0, base_weight, torch.ones_like(base_weight))
        if size_hold is not None:  # the reference's sizes: its bits on these crops, a price that follows them
            thumb_rate = model.config.thumbnail_rate(rate)
            reference_bpp = size_hold.reference_bpp(hr, thumb_rate, autocast)
            thumbnail_bits = size_hold.price(thumb_rate).to(out.bpp) * out.bpp
            size_ratios = size_hold.update(thumb_rate, out.bpp, reference_bpp)
    elif config.base_weight_below is not None:
        # A frozen thumbnail's bits are constants, so below the layer's start only the base's
        # distortion weight matters: base_weight_below x D after ``middle``, the same at every rate.
        below = config.base_weight_below * config.rate_lambda(rate) / middle
        base_weight = torch.where(layered > 0, base_weight, below)
    per_crop = (
        ramp * thumbnail_bits
        + layered * (ramp * out.detail_bpp + recon / detail_lambda)
        + base_weight * base / config.rate_lambda(rate)
    )
    loss = (middle * per_crop).mean()
    reference = downscale_bicubic(hr, model.config.scale)
    thumb = F.mse_loss(out.thumbnail_decoded, reference)
    if not frozen and config.thumb_weight_per_rate:
        per_crop_thumb = ((out.thumbnail_decoded - reference) ** 2).mean(dim=(1, 2, 3))
        # above the layer's start every file carries HIGH's thumbnail: it trades at HIGH's lambda
        thumbnail_lambda = config.rate_lambda(rate.clamp(max=model.config.detail.thumbnail_full_at))
        loss = loss + config.thumb_weight * (middle * per_crop_thumb / thumbnail_lambda).mean()
    elif not frozen:
        loss = loss + config.thumb_weight * thumb
    # PSNR with the layer over the crops whose rate carries it: below the layer's start its gains are
    # untrained and the layered output is meaningless (v5: 17 dB at rate 0.2), which would drag a
    # whole batch's figure down. NaN when no crop of the batch has the layer (the log's mean skips it).
    carried = layered > 0
    layered_psnr = psnr(out.reconstruction[carried], hr[carried]) if carried.any() else float("nan")
    stats = {"loss": loss.item(), "psnr": layered_psnr, "base_psnr": psnr(out.base_reconstruction, hr),
             "bpp": out.bpp.mean().item(), "detail_bpp": out.detail_bpp.mean().item(),
             "thumb_psnr": psnr(out.thumbnail_decoded, reference)}  # fmt: skip
    if size_hold is not None and not frozen:
        for knot, ratio, price in zip(KNOTS, size_ratios.tolist(), size_hold.log_price.tolist()):
            stats[f"bpp_vs_ref_r{knot:g}"] = math.exp(ratio)  # NaN: no crop near this knot in the batch
            stats[f"price_r{knot:g}"] = math.exp(price)
    return loss, stats


VALIDATION_RATES = {"LOW": 0.0, "MEDIUM": 0.5, "HIGH": 1.0}
DETAIL_VALIDATION_RATES = {"r0": 0.0, "r0.2": 0.2, "r0.4": 0.4, "r0.7": 0.7, "r1": 1.0}


@torch.no_grad()
def validate_detail(model, images: torch.Tensor) -> dict:
    """Detail models at five knob settings: PSNR with and without the layer, the thumbnail's
    estimated bits and the detail layer's (rounded latents under the prior), and the preview's
    PSNR against the bicubic downscale."""
    result = {}
    for name, r in DETAIL_VALIDATION_RATES.items():
        rate = torch.full((len(images),), r)
        psnrs, bases, bpps, dbpps, thumbs = [], [], [], [], []
        for one in images.split(2):  # 512 px crops: a few at a time bounds the memory
            out = model(one, rate[: len(one)], frozen_thumbnail=True)
            thumbs.append(psnr(out.thumbnail_decoded, downscale_bicubic(one, model.config.scale)))
            psnrs.append(psnr(out.reconstruction, one))
            bases.append(psnr(out.base_reconstruction, one))
            bpps.append(out.bpp.mean().item())
            dbpps.append(out.detail_bpp.mean().item())
        result[name] = {"psnr": float(np.mean(psnrs)), "base_psnr": float(np.mean(bases)),
                        "bpp": float(np.mean(bpps)), "detail_bpp": float(np.mean(dbpps)),
                        "thumb_psnr": float(np.mean(thumbs))}  # fmt: skip
    return result


@torch.no_grad()
def validate(model, config: TrainConfig, images: torch.Tensor) -> dict:
    """Validation crops through the exact-rounding JPEG model: PSNR, thumbnail PSNR, bpp."""
    model.eval()
    result = {}
    try:
        if model.config.detail is not None:
            return validate_detail(model, images)
        if config.mode == "jpeg-sr":
            for q in (30, 60, 90):
                rec, sim = jpeg_sr_forward(model, images, [q] * len(images))
                base = F.interpolate(
                    sim.decoded,
                    scale_factor=model.config.scale,
                    mode="bicubic",
                    align_corners=False,
                )
                result[f"q{q}"] = {"psnr": psnr(rec, images), "bicubic_psnr": psnr(base, images),
                                   "bpp": bits_per_pixel(sim.quantized, model.config.scale).mean().item()}  # fmt: skip
            return result
        for name, r in (("LOW", 0.0), ("MEDIUM", 0.5), ("HIGH", 1.0)):
            rate = torch.full((len(images),), r, device=images.device)
            lr = model.encoder(images, rate)
            luma, chroma = model.qpm(lr, rate)
            sim = simulate_jpeg(lr, luma, chroma, rounding="round")
            rec = model.decoder(sim.decoded, sim.dequantized, torch.cat([luma, chroma], dim=1))
            reference = downscale_bicubic(images, model.config.scale)
            result[name] = {
                "psnr": psnr(rec, images),
                "thumb_psnr": psnr(sim.decoded, reference),
                "bpp": bits_per_pixel(sim.quantized, model.config.scale).mean().item(),
            }
        return result
    finally:
        model.train()


# A leaner student may reshape its decoder (width, depth: every mode trains the decoder); anything
# else (encoder, QPM, analysis, prior, gains: frozen in some modes) must match the source.
RESHAPEABLE = ("decoder.",)


def warm_start(model: HyperThumbnailModel, state: dict, echo=None) -> list[str]:
    """Load another model's parameters; the parts it lacks (a new detail layer) and the tensors
    whose shapes differ (a narrower decoder's pixel branch: a lean student of a wider decoder)
    keep their fresh initialisation, and the wider decoder's surplus residual blocks are dropped.
    Returns the names that start fresh."""
    own = model.state_dict()
    surplus = [name for name in state if name not in own and name.startswith(RESHAPEABLE)]  # e.g. a dropped block
    reshaped = [name for name in state if name in own and state[name].shape != own[name].shape]
    elsewhere = [name for name in reshaped if not name.startswith(RESHAPEABLE)]
    if elsewhere:  # a different encoder, analysis or prior would start fresh unnoticed (and frozen)
        raise ValueError(f"the warm-start model's tensors have other shapes outside the decoder: {elsewhere[:5]}")
    unexpected = [name for name in state if name not in own and name not in surplus]
    if unexpected:
        raise ValueError(f"the warm-start model has parameters this architecture lacks: {unexpected[:5]}")
    skipped = set(surplus) | set(reshaped)
    missing, _ = model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    if (missing or surplus) and echo:
        echo(
            {
                "step": 0,
                "event": f"warm start: {len(missing)} tensors start fresh ({len(reshaped)} of another shape), "
                f"{len(surplus)} of the source's dropped" + (f" ({missing[0]} ...)" if missing else ""),
            }
        )
    return list(missing)


@torch.no_grad()
def init_detail_linear_paths(
    model: HyperThumbnailModel, sampler: "CropSampler", batches: int = 4, size: int = 16
) -> float:
    """A fresh detail layer's linear paths from the principal components of what the (warm) base
    decoder misses on training crops at random rates; returns the energy fraction kept."""
    residuals = []
    for _ in range(batches):
        hr = sampler.batch(size)
        out = model(hr, torch.rand(size), frozen_thumbnail=True)
        residuals.append(hr - out.base_reconstruction)
    return init_from_residual_pca(model, residuals)


def _save_checkpoint(
    path: Path,
    model,
    optimizer,
    step: int,
    rng: random.Random,
    sampler: CropSampler,
    elapsed: float,
    size_hold: ThumbnailSizeHold | None = None,
):
    payload = {
        "step": step,
        "elapsed_s": elapsed,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "python_rng": rng.getstate(),
        "numpy_rng": sampler.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    if size_hold is not None:
        payload["size_hold"] = size_hold.state()
    tmp = path.with_suffix(".part")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def save_snapshot(
    path: str | os.PathLike, model, config: TrainConfig, step: int, elapsed: float, size_hold=None
) -> None:
    """The model and where the run stands, without optimizer state (see ``train``'s ``snapshot``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": step, "elapsed_s": elapsed, "config": asdict(config),
               "model": {k: v.detach().float().cpu() for k, v in model.state_dict().items()}}  # fmt: skip
    if size_hold is not None:
        payload["size_hold"] = size_hold.state()
    tmp = path.with_name(f".{path.name}.part")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _mean_of_finite(values: list[float]) -> float:
    """The window's mean, skipping NaN (a figure a batch had no crop for); NaN if all are."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _log(run: Path, record: dict, echo) -> None:
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    if echo:
        echo(record)


def format_record(record: dict) -> str:
    parts = [f"step {record['step']}"]
    for key, value in record.items():
        if key == "step":
            continue
        if isinstance(value, dict):
            inner = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
            parts.append(f"{key}[{inner}]")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def train(
    run_dir: str | os.PathLike,
    config: TrainConfig,
    crops: np.ndarray,
    crop_weights: np.ndarray,
    validation: torch.Tensor | None = None,
    *,
    device: str = "cpu",
    resume: bool = True,
    init_from: str | os.PathLike | None = None,
    echo=lambda r: print(format_record(r), flush=True),
    stop_after_s: float | None = None,
    snapshot: str | os.PathLike | None = None,
    resume_from: str | os.PathLike | None = None,
) -> HyperThumbnailModel:
    """Train (or continue training) the run in ``run_dir``; returns the model at the last step.

    ``stop_after_s`` ends the call early (after a checkpoint) so a run can be chunked into
    time-limited calls; the next call resumes it. ``init_from`` starts a new run from another
    run's (or a weights file's) model parameters.

    ``snapshot``: a file the model (no optimizer state: a fifth of the checkpoint) is written to
    at every checkpoint, with its step count: small enough to commit, so a run can move to a new
    machine. ``resume_from`` continues such a snapshot in a run folder that has no checkpoint:
    same step and schedule, a fresh optimizer re-warmed over ``warmup`` steps.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run / "checkpoint.pt"
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    # channels_last: oneDNN's own layout, so its convolutions skip a reorder each way (v5's recipe,
    # batch 16 of 256 px on the 2-core Zen 4 EPYC: 1.53 instead of 1.76 s a step, mean of 4 steps after 2 warm-up)
    layout = torch.channels_last if device == "cpu" else torch.contiguous_format
    model = HyperThumbnailModel(ModelConfig.from_dict(config.model)).to(device, memory_format=layout)
    sampler = CropSampler(crops, crop_weights, config.patch, config.seed)
    if init_from:
        source = torch.load(init_from, map_location=device, weights_only=False)
        fresh = warm_start(model, source.get("model") or source["state_dict"], echo)
        if "analysis.project.weight" in fresh and not (resume and checkpoint_path.is_file()):
            kept = init_detail_linear_paths(model, CropSampler(crops, crop_weights, config.patch, config.seed + 1))
            if echo:
                echo(
                    {
                        "step": 0,
                        "event": f"detail layer's linear paths from the residual's principal components "
                        f"({kept:.0%} of its energy)",
                    }
                )
    optimizer = torch.optim.Adam(config.trainable(model), lr=config.lr)
    size_hold = None
    if config.thumb_sizes_from and model.config.detail is None:
        raise ValueError(
            "thumb_sizes_from is for detail models (a thumbnail-only model trades its bits by lambda alone)"
        )
    if config.thumb_sizes_from:
        reference = frozen_model(config.thumb_sizes_from, device).to(memory_format=layout)
        check_same_thumbnail(config, reference, config.thumb_sizes_from)
        size_hold = ThumbnailSizeHold(reference, config.thumb_size_step)
    teacher = None
    if config.distill_from:
        teacher = frozen_model(config.distill_from, device).to(memory_format=layout)
        check_same_thumbnail(config, teacher, config.distill_from, student=model)
    step, elapsed, rewarm_from = 0, 0.0, None
    if resume_from and not (resume and checkpoint_path.is_file()):
        state = torch.load(resume_from, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        step, elapsed, rewarm_from = state["step"], state["elapsed_s"], state["step"]
        if size_hold is not None and "size_hold" in state:
            size_hold.load_state(state["size_hold"])
        rng.seed(config.seed + step)  # a fresh stream: the snapshot does not carry the RNG states
        sampler.rng = np.random.default_rng(config.seed + step)
        torch.manual_seed(config.seed + step)
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate(state["python_rng"])
        sampler.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = state["step"], state["elapsed_s"]
        if size_hold is not None and "size_hold" in state:
            size_hold.load_state(state["size_hold"])
    (run / "config.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    _log(
        run,
        {
            "step": step,
            "event": "start",
            "device": device,
            "torch": torch.__version__,
            "host": platform.node(),
            "threads": torch.get_num_threads(),
        },
        echo,
    )
    if validation is not None:
        validation = validation.to(device)
    model.train()
    started, window = time.time(), []
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate(step) * group.get("lr_scale", 1.0)
            if rewarm_from is not None and step - rewarm_from < config.warmup:
                group["lr"] *= (step - rewarm_from + 1) / config.warmup  # Adam's moments start from zero again
        hr = sampler.batch(config.batch).to(device).contiguous(memory_format=layout)
        loss, stats = training_loss(model, config, hr, rng, step, size_hold, teacher)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        window.append(stats)
        now = time.time()
        if step % 25 == 0 or step == config.steps:
            mean = {k: _mean_of_finite([w[k] for w in window]) for k in window[0]}
            _log(
                run,
                {
                    "step": step,
                    **mean,
                    "lr": config.learning_rate(step),
                    "s": elapsed + now - started,
                },
                echo,
            )
            window = []
        if validation is not None and (step % config.validate_every == 0 or step == config.steps):
            _log(run, {"step": step, "val": validate(model, config, validation)}, echo)
        timed_out = stop_after_s is not None and now - started > stop_after_s
        if step % config.checkpoint_every == 0 or step == config.steps or timed_out:
            _save_checkpoint(
                checkpoint_path,
                model,
                optimizer,
                step,
                rng,
                sampler,
                elapsed + now - started,
                size_hold,
            )
            if snapshot:
                save_snapshot(snapshot, model, config, step, elapsed + now - started, size_hold)
        if timed_out:
            _log(
                run,
                {"step": step, "event": "paused (time limit); run again to resume"},
                echo,
            )
            break
    return model.eval()


def frozen_model(weights: str | os.PathLike, device: str) -> HyperThumbnailModel:
    """A weights file's (or a snapshot's) model with its own architecture, frozen and in eval mode:
    a run's size reference (``ThumbnailSizeHold``) or teacher (``distill_from``). Built without
    drawing from the run's random streams, so a run with one draws what a run without does."""
    source = torch.load(weights, map_location="cpu", weights_only=False)
    state = source.get("model") or source["state_dict"]
    saved = source.get("config") or {}
    saved = saved.get("model", saved)  # a snapshot stores the TrainConfig, a weights file the ModelConfig
    if "encoder" not in saved:
        raise ValueError(f"{weights}: no architecture stored with the weights")
    with torch.random.fork_rng():
        model = HyperThumbnailModel(ModelConfig.from_dict(saved))
    model.load_state_dict(state)
    return model.to(device).eval().requires_grad_(False)


def check_same_thumbnail(config: TrainConfig, other: HyperThumbnailModel, weights, student=None) -> None:
    """Refuses ``other`` (loaded from ``weights``) when its thumbnail settings differ from the run's
    (other quality tables would load without a shape error and give other sizes), and, given the
    ``student``, when its encoder or QPM weights differ from the student's (a teacher must decode
    the thumbnails the student decodes)."""
    normal = lambda d: json.loads(json.dumps(d))  # noqa: E731  (tuples and lists alike)
    mine = other.config.to_dict()
    for part in ("encoder", "qpm"):
        if normal(mine[part]) != normal(config.model[part]):
            raise ValueError(f"{weights}: its {part} ({mine[part]}) is not this run's ({config.model[part]})")
        if student is not None:
            theirs, ours = getattr(other, part).state_dict(), getattr(student, part).state_dict()
            if any(not torch.equal(theirs[k].cpu(), ours[k].cpu()) for k in ours):
                raise ValueError(f"{weights}: its {part} weights are not the student's, so its thumbnails differ")


def validation_crops(folder: str | os.PathLike, size: int = 512, limit: int | None = None) -> torch.Tensor:
    """Centre crops of the validation photos (for the numbers logged during training)."""
    from PIL import Image

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    crops = []
    for path in paths[:limit]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        y, x = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
        crops.append(rgb[y : y + size, x : x + size])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
