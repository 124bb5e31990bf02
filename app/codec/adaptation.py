"""Per-image decoder adaptation: bias offsets fitted to the photo at export, carried in the file.

The encoder may be slow; the decoder may not. So at export the encoder, which still has the
original photo, fine-tunes only the decoder's biases (``Decoder.adaptable_layers``: ~2k numbers)
on crops of it, decoding from the very thumbnail the file will hold. The offsets are quantised
to int8 per layer, zlib-compressed and stored in the format-v2 payload; a decoder adds them to
its biases, which costs nothing at decode time on any runtime (the ONNX graph takes them as an
input). Whether a file carries them is decided by rate-distortion: the PSNR they add on held-out
crops must be worth their bytes at ``DB_PER_BPP`` (the slope of the codec's own RD curve).
"""
from __future__ import annotations

import copy
import struct
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .inference import decoder_inputs
from .model import HyperThumbnailModel
from .tiling import CancelFn, check_cancel

MAGIC = b"HTA1"  # adaptation payload, version 1
DB_PER_BPP = 20.0  # what a bit per pixel buys on the RD curve near MEDIUM (docs/MODEL.md)
EFFORT_STEPS = {"fast": 0, "best": 80}  # adaptation steps per export effort ("fast" is the default until fitting is cheap)


@dataclass
class AdaptationResult:
    payload: bytes | None  # None: not worth its bytes
    gain_db: float  # PSNR gain on held-out crops, after quantisation
    payload_bytes: int
    seconds: float
    steps: int


def layer_sizes(model: HyperThumbnailModel) -> list[int]:
    return [m.bias.numel() for _, m in model.decoder.adaptable_layers()]


def quantize(offsets: np.ndarray, sizes: list[int]) -> bytes:
    """Offsets [N] -> payload: magic, layer count, per layer (u16 size, f32 scale, int8 values), zlib."""
    body = bytearray(struct.pack(">H", len(sizes)))
    at = 0
    for size in sizes:
        values = offsets[at : at + size]
        at += size
        scale = float(np.abs(values).max()) / 127.0 or 1.0
        body += struct.pack(">Hf", size, scale) + np.round(values / scale).clip(-127, 127).astype(np.int8).tobytes()
    return MAGIC + zlib.compress(bytes(body), 9)


def dequantize(payload: bytes, sizes: list[int]) -> np.ndarray:
    """Payload -> offsets [N] float32; ``ValueError`` when it is not an adaptation for these layers."""
    if not payload.startswith(MAGIC):
        raise ValueError("not a decoder adaptation payload")
    try:
        body = zlib.decompressobj().decompress(payload[len(MAGIC) :], 1 << 20)
        (count,) = struct.unpack_from(">H", body, 0)
        if count != len(sizes):
            raise ValueError(f"the adaptation is for {count} layers, this decoder has {len(sizes)}")
        out, at = [], 2
        for size in sizes:
            stored, scale = struct.unpack_from(">Hf", body, at)
            at += 6
            if stored != size or at + size > len(body) or not np.isfinite(scale):
                raise ValueError("the adaptation does not fit this decoder's layers")
            out.append(np.frombuffer(body, np.int8, size, at).astype(np.float32) * scale)
            at += size
    except (zlib.error, struct.error) as exc:
        raise ValueError(f"damaged adaptation payload ({exc})") from None
    return np.concatenate(out)


def _crop_boxes(rng: np.random.Generator, lr_h: int, lr_w: int, side: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners (LR pixels, multiples of 8) of ``count`` random ``side`` crops."""
    ys = rng.integers(0, max(1, (lr_h - side) // 8 + 1), count) * 8
    xs = rng.integers(0, max(1, (lr_w - side) // 8 + 1), count) * 8
    return list(zip(ys.tolist(), xs.tolist()))


class _Crops:
    """Decoder inputs and targets for crops of one photo and its (real, decoded) thumbnail."""

    def __init__(self, model: HyperThumbnailModel, decoder, photo: np.ndarray, ycbcr: np.ndarray, luma, chroma, side: int):
        self.decoder, self.scale = decoder, model.config.scale
        self.margin = model.config.decoder.margin()
        self.lr, self.dq, self.tables = decoder_inputs(ycbcr, luma, chroma, torch.device("cpu"))
        self.photo = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1).float().div(255.0)
        self.side = min(side, self.lr.shape[-2] // 8 * 8, self.lr.shape[-1] // 8 * 8)
        self.usable = (min(self.lr.shape[-2], -(-photo.shape[0] // self.scale)) // 8 * 8,
                       min(self.lr.shape[-1], -(-photo.shape[1] // self.scale)) // 8 * 8)  # fmt: skip

    def batch(self, corners: list[tuple[int, int]]):
        """(lr, dq, tables, target, inner) for crops whose margins are cut to the image, padded to one size."""
        m, s, side = self.margin, self.scale, self.side
        lrs, dqs, targets, inners = [], [], [], []
        h, w = self.lr.shape[-2:]
        for y, x in corners:
            y0, x0 = max(0, y - m), max(0, x - m)
            y1, x1 = min(h, y + side + m), min(w, x + side + m)
            lrs.append(F.pad(self.lr[0, :, y0:y1, x0:x1], (0, side + 2 * m - (x1 - x0), 0, side + 2 * m - (y1 - y0)), mode="replicate"))
            dq = self.dq[0, :, :, y0 // 8 : y1 // 8, x0 // 8 : x1 // 8]
            pad = (side + 2 * m) // 8
            dqs.append(F.pad(dq, (0, pad - dq.shape[-1], 0, pad - dq.shape[-2])))
            targets.append(self.photo[:, y * s : (y + side) * s, x * s : (x + side) * s])
            inners.append((y - y0, x - x0))
        crop_h = min(t.shape[1] for t in targets)
        crop_w = min(t.shape[2] for t in targets)
        targets = torch.stack([t[:, :crop_h, :crop_w] for t in targets])
        return torch.stack(lrs), torch.stack(dqs), self.tables.expand(len(corners), -1), targets, inners

    def reconstruct(self, lr, dq, tables, inners, offsets, size):
        s = self.scale
        out = self.decoder(lr, dq, tables, offsets)
        crops = [out[i, :, iy * s : iy * s + size[0], ix * s : ix * s + size[1]] for i, (iy, ix) in enumerate(inners)]
        return torch.stack(crops)


def fit(
    model: HyperThumbnailModel,
    photo: np.ndarray,
    ycbcr: np.ndarray,
    luma: np.ndarray,
    chroma: np.ndarray,
    *,
    steps: int = 80,
    batch: int = 4,
    side: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    held_out: int = 8,
    cancelled: CancelFn = None,
    autocast: torch.dtype | None = None,
) -> AdaptationResult:
    """Fit the decoder's bias offsets to ``photo`` (uint8 HxWx3, stored orientation) through
    its real thumbnail (``ycbcr`` as decoded from the file, and the file's tables); decide by RD
    whether they are worth their bytes. ``side``: LR pixels per crop side."""
    start = time.perf_counter()
    decoder = copy.deepcopy(model.decoder).float().eval().requires_grad_(False)  # the shared model stays untouched
    crops = _Crops(model, decoder, photo, ycbcr, luma, chroma, side)
    rng = np.random.default_rng(seed)
    usable_h, usable_w = crops.usable
    sizes = layer_sizes(model)
    offsets = torch.zeros(sum(sizes), requires_grad=True)
    optimizer = torch.optim.Adam([offsets], lr=lr)
    with torch.inference_mode(False), torch.enable_grad():
        for _ in range(steps):
            check_cancel(cancelled)
            lr_b, dq_b, tb, target, inners = crops.batch(_crop_boxes(rng, usable_h, usable_w, crops.side, batch))
            with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
                rec = crops.reconstruct(lr_b, dq_b, tb, inners, offsets, target.shape[-2:])
            loss = F.mse_loss(rec.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    payload = quantize(offsets.detach().numpy(), sizes)
    gain = _held_out_gain(crops, dequantize(payload, sizes), np.random.default_rng(seed + 1), held_out)
    added_bpp = len(payload) * 8 / (photo.shape[0] * photo.shape[1])
    worth = gain > DB_PER_BPP * added_bpp
    return AdaptationResult(payload if worth else None, gain, len(payload), time.perf_counter() - start, steps)


@torch.no_grad()
def _held_out_gain(crops: _Crops, offsets: np.ndarray, rng: np.random.Generator, count: int) -> float:
    """PSNR gain (dB) of the quantised offsets on crops the fit did not draw (another seed)."""
    lr_b, dq_b, tb, target, inners = crops.batch(_crop_boxes(rng, *crops.usable, crops.side, count))
    flat = torch.from_numpy(offsets)
    errors = []
    for off in (None, flat):
        rec = crops.reconstruct(lr_b, dq_b, tb, inners, off, target.shape[-2:]).clamp(0, 1)
        errors.append(F.mse_loss((rec * 255).round() / 255, target).item())
    return float(10 * np.log10(errors[0] / max(errors[1], 1e-12)))
