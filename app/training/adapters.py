"""Which per-image decoder adapter pays best per byte: ``python -m app.training adapters PHOTO...``.

The shipped adapter (``app.codec.engine.adaptation``) offsets the pixel branch's biases. This study fits
the alternatives the same way (same crops, steps, quantisation to ``adaptation.LEVELS`` and
held-out check) and prices each at the codec's RD slope, so the choice rests on numbers:

    bias-pixel        offsets to the pixel branch's biases (what files carry)
    bias-all          offsets to every bias, the frequency branch's too
    bias+scale-pixel  the pixel branch's biases and a per-channel output scale (FiLM-like;
                      no file format carries the scales, this only bounds what they would add)
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.codec.engine import adaptation
from app.codec.engine.inference import encode_thumbnail
from app.codec.files.reader import decoded_ycbcr
from app.codec.files.writer import encode_jpeg
from app.codec.nets.model import HyperThumbnailModel

KINDS = ("bias-pixel", "bias-all", "bias+scale-pixel")
ALL_LAYERS = ("freq_in", "table_embed", "freq_body", "freq_out", *adaptation.ADAPTED_LAYERS)


@dataclass
class AdapterScore:
    kind: str
    gain_db: float  # held-out PSNR gain, after quantisation
    payload_bytes: int
    net_db: float  # gain minus the bytes' price at the RD slope


def _fit_scales(model, photo, ycbcr, luma, chroma, steps: int, seed: int = 0) -> tuple[float, int]:
    """bias+scale-pixel: forward hooks add a bias offset and a per-channel scale to each
    pixel-branch layer's output; returns (held-out gain, bytes of both, quantised and zlib'd)."""
    decoder = copy.deepcopy(model.decoder).float().eval().requires_grad_(False)
    crops = adaptation._Crops(model, decoder, photo, ycbcr, luma, chroma, 64)
    layers = [m for name, m in decoder.adaptable_layers() if name.split(".")[0] in adaptation.ADAPTED_LAYERS]
    params, hooks = [], []
    for layer in layers:
        channels = layer.bias.numel()
        offset, scale = torch.zeros(channels, requires_grad=True), torch.zeros(channels, requires_grad=True)
        params += [offset, scale]
        hooks.append(
            layer.register_forward_hook(
                lambda module, inputs, out, o=offset, s=scale: out * (1 + s[:, None, None]) + o[:, None, None]
            )
        )
    optimizer = torch.optim.Adam(params, lr=2e-3)
    rng = np.random.default_rng(seed)
    with torch.enable_grad():
        for _ in range(steps):
            lr_b, dq_b, tb, target, inners = crops.batch(adaptation._crop_boxes(rng, *crops.usable, crops.side, 4), 8)
            loss = F.mse_loss(crops.reconstruct(lr_b, dq_b, tb, inners, None, target.shape[-2:]), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    body = bytearray()
    with torch.no_grad():
        for p in params:
            step = float(p.abs().max()) / adaptation.LEVELS or 1.0
            q = torch.round(p / step).clamp(-adaptation.LEVELS, adaptation.LEVELS)
            p.copy_(q * step)
            body += q.to(torch.int8).numpy().tobytes() + np.float32(step).tobytes()
        rng = np.random.default_rng(seed + 1)
        lr_b, dq_b, tb, target, inners = crops.batch(adaptation._crop_boxes(rng, *crops.usable, crops.side, 16))
        errors = []
        for active in (True, False):
            if not active:
                for hook in hooks:
                    hook.remove()
            rec = crops.reconstruct(lr_b, dq_b, tb, inners, None, target.shape[-2:]).clamp(0, 1)
            errors.append(F.mse_loss((rec * 255).round() / 255, target).item())
    return float(10 * np.log10(errors[1] / max(errors[0], 1e-12))), len(zlib.compress(bytes(body), 9)) + 4


def score_adapters(
    model: HyperThumbnailModel, photo: np.ndarray, rate: float = 0.5, steps: int = 80
) -> list[AdapterScore]:
    """Every kind in ``KINDS`` fitted to ``photo`` (uint8 HxWx3) at ``rate``."""
    with torch.no_grad():
        thumb, luma, chroma = encode_thumbnail(model, photo, rate)
    ycbcr = decoded_ycbcr(encode_jpeg(thumb, luma, chroma))
    price = adaptation.db_per_bpp(rate) * 8 / (photo.shape[0] * photo.shape[1])
    scores = []
    for kind, layers in (("bias-pixel", adaptation.ADAPTED_LAYERS), ("bias-all", ALL_LAYERS)):
        result = adaptation.fit(model, photo, ycbcr, luma, chroma, rate=rate, steps=steps, layers=layers)
        scores.append(
            AdapterScore(kind, result.gain_db, result.payload_bytes, result.gain_db - price * result.payload_bytes)
        )
    gain, size = _fit_scales(model, photo, ycbcr, luma, chroma, steps)
    scores.append(AdapterScore("bias+scale-pixel", gain, size, gain - price * size))
    return scores
