"""Per-image decoder adaptation: bias offsets fitted to the photo at export, carried in the file.

The encoder may be slow; the decoder may not. So at export the encoder, which still has the
original photo, fine-tunes biases of the decoder's pixel branch (``ADAPTED_LAYERS``: 432 of v2's
2,480 in ``Decoder.adaptable_layers``, 304 of v1's 1,904) on crops of it, decoding from the very
thumbnail the file will hold. The offsets are quantised per layer to ``LEVELS`` steps,
zlib-compressed (300-400 bytes) and stored in the format-v2 payload; a decoder adds them to its biases, which costs nothing
at decode time on any runtime (the ONNX graph takes them as an input). Whether a file carries them
is decided by rate-distortion: the PSNR they add on held-out crops must be worth their bytes at
the slope of the codec's own RD curve at the file's rate (``db_per_bpp``).
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

from app.codec.engine.inference import decoder_inputs
from app.codec.files.tiling import CancelFn, ProgressFn, check_cancel
from app.codec.nets.model import HyperThumbnailModel

MAGIC = b"HTA1"  # adaptation payload, version 1
# dB a bit per pixel buys on the codec's RD curve, by rate: the slope between neighbouring presets
# in docs/MODEL.md's table (v1: LOW->MEDIUM 86 dB/bpp, MEDIUM->HIGH 23), taken at each preset.
RD_SLOPES = {0.0: 86.0, 0.5: 50.0, 1.0: 23.0}
# Only the pixel branch is adapted: on v2 its 432 biases carried all of the gain of the 2,480
# (held-out crops: Storm +0.63 dB either way; the frequency branch's 2,048 added nothing), and
# backpropagating through it alone is cheaper.
ADAPTED_LAYERS = ("pixel_in", "fuse", "body", "tail")
LEVELS = 15  # int values -15..15 per layer: the same held-out gain as -127..127 on v2, in a third fewer bytes
TYPICAL_PAYLOAD_BYTES = 400  # with its APP11 segment header: what a size estimate adds
MIN_PAYLOAD_BYTES, MAX_GAIN_DB = 300, 1.5  # bounds seen on the validation photos (see worth_trying)
TYPICAL_GAIN_DB = 0.5  # what a fit usually adds where it is kept (0.2-0.6 dB on the validation photos)
EFFORT_STEPS = {"fast": 0, "default": 80, "best": 240}  # adaptation steps per export effort
# The largest bias offset a file may carry. A fit moves each offset by at most ~lr per Adam step
# (2e-3 x 240 steps at the best effort: 0.48); larger values only come from a hostile or broken
# writer, and finite float32 scales times int8 values can overflow into an all-black image.
MAX_OFFSET = 1.0


@dataclass
class AdaptationResult:
    payload: bytes | None  # None: not worth its bytes
    gain_db: float  # PSNR gain on held-out crops, after quantisation
    payload_bytes: int
    seconds: float
    steps: int


def layer_sizes(model: HyperThumbnailModel) -> list[int]:
    return [m.bias.numel() for _, m in model.decoder.adaptable_layers()]


def quantize(offsets: np.ndarray, sizes: list[int], levels: int = LEVELS) -> bytes:
    """Offsets [N] -> payload: magic, layer count, per layer (u16 size, f32 scale, int8 values
    in -levels..levels), zlib. Fewer levels leave zlib fewer symbols: fewer bytes, coarser offsets."""
    body = bytearray(struct.pack(">H", len(sizes)))
    at = 0
    for size in sizes:
        values = offsets[at : at + size]
        at += size
        values = np.clip(values, -MAX_OFFSET, MAX_OFFSET)
        scale = float(np.abs(values).max()) / levels or 1.0
        body += (
            struct.pack(">Hf", size, scale) + np.round(values / scale).clip(-levels, levels).astype(np.int8).tobytes()
        )
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
            values = np.frombuffer(body, np.int8, size, at).astype(np.float64) * scale
            if size and np.abs(values).max() > MAX_OFFSET:
                raise ValueError(
                    f"its offsets reach {np.abs(values).max():.3g}, beyond the +-{MAX_OFFSET:g} any encoder writes"
                )
            out.append(values.astype(np.float32))
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

    def __init__(
        self, model: HyperThumbnailModel, decoder, photo: np.ndarray, ycbcr: np.ndarray, luma, chroma, side: int
    ):
        self.decoder, self.scale = decoder, model.config.scale
        self.margin = model.config.decoder.margin()
        self.lr, self.dq, self.tables = decoder_inputs(ycbcr, luma, chroma, torch.device("cpu"))
        photo = np.ascontiguousarray(photo)  # a flipped or strided view too
        self.photo = torch.from_numpy(photo if photo.flags.writeable else photo.copy()).permute(
            2, 0, 1
        )  # uint8: 6K in float is 300 MB
        self.side = min(side, self.lr.shape[-2] // 8 * 8, self.lr.shape[-1] // 8 * 8)
        self.usable = (
            min(self.lr.shape[-2], -(-photo.shape[0] // self.scale)) // 8 * 8,
            min(self.lr.shape[-1], -(-photo.shape[1] // self.scale)) // 8 * 8,
        )

    def batch(self, corners: list[tuple[int, int]], margin: int | None = None):
        """(lr, dq, tables, target, inner) for crops whose margins are cut to the image, padded to
        one size. ``margin`` (LR pixels, a multiple of 8): context around each crop; the decoder's
        full margin (the default) makes the crop exact, a smaller one is cheaper and nearly so."""
        m, s, side = self.margin if margin is None else margin, self.scale, self.side
        lrs, dqs, targets, inners = [], [], [], []
        h, w = self.lr.shape[-2:]
        for y, x in corners:
            y0, x0 = max(0, y - m), max(0, x - m)
            y1, x1 = min(h, y + side + m), min(w, x + side + m)
            lrs.append(
                F.pad(
                    self.lr[0, :, y0:y1, x0:x1],
                    (0, side + 2 * m - (x1 - x0), 0, side + 2 * m - (y1 - y0)),
                    mode="replicate",
                )
            )
            dq = self.dq[0, :, :, y0 // 8 : y1 // 8, x0 // 8 : x1 // 8]
            pad = (side + 2 * m) // 8
            dqs.append(F.pad(dq, (0, pad - dq.shape[-1], 0, pad - dq.shape[-2])))
            targets.append(self.photo[:, y * s : (y + side) * s, x * s : (x + side) * s].float().div(255.0))
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
    rate: float = 0.5,
    steps: int = 80,
    batch: int = 4,
    side: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    held_out: int = 16,
    margin: int | None = 8,
    layers: tuple[str, ...] = ADAPTED_LAYERS,
    levels: int = LEVELS,
    progress: ProgressFn = None,
    cancelled: CancelFn = None,
    autocast: torch.dtype | None = None,
) -> AdaptationResult:
    """Fit bias offsets of the decoder's ``layers`` (name prefixes) to ``photo`` (uint8 HxWx3,
    stored orientation) through its real thumbnail (``ycbcr`` as decoded from the file, and the
    file's tables, coded at ``rate``); decide by RD whether they are worth their bytes.

    ``side``: LR pixels per crop side; ``margin``: context around each training crop (None: the
    decoder's full, exact margin, 40 px for the v2 decoder, which made a step 5x dearer; the
    held-out check always uses the full margin). Offsets of other layers stay zero, so the
    payload keeps the decoder's full offsets layout (and the ONNX graphs' input)."""
    start = time.perf_counter()
    decoder = copy.deepcopy(model.decoder).float().eval().requires_grad_(False)  # the shared model stays untouched
    crops = _Crops(model, decoder, photo, ycbcr, luma, chroma, side)
    rng = np.random.default_rng(seed)
    usable_h, usable_w = crops.usable
    named = [(name, m.bias.numel()) for name, m in decoder.adaptable_layers()]
    chosen = {name: torch.zeros(size, requires_grad=True) for name, size in named if name.split(".")[0] in layers}
    optimizer = torch.optim.Adam(list(chosen.values()), lr=lr)
    with torch.inference_mode(False), torch.enable_grad():
        for step in range(steps):
            check_cancel(cancelled)
            lr_b, dq_b, tb, target, inners = crops.batch(
                _crop_boxes(rng, usable_h, usable_w, crops.side, batch), margin
            )
            with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
                rec = crops.reconstruct(lr_b, dq_b, tb, inners, chosen, target.shape[-2:])
            loss = F.mse_loss(rec.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(step + 1, steps)
    flat = np.concatenate(
        [chosen[name].detach().numpy() if name in chosen else np.zeros(size, np.float32) for name, size in named]
    )
    sizes = [size for _, size in named]
    payload = quantize(flat, sizes, levels)
    gain = _held_out_gain(crops, dequantize(payload, sizes), np.random.default_rng(seed + 1), held_out)
    added_bpp = len(payload) * 8 / (photo.shape[0] * photo.shape[1])
    worth = gain > db_per_bpp(rate) * added_bpp
    return AdaptationResult(payload if worth else None, gain, len(payload), time.perf_counter() - start, steps)


def worth_trying(pixels: int, rate: float) -> bool:
    """Whether a photo of ``pixels`` could pay for a payload at all: the smallest one seen
    (``MIN_PAYLOAD_BYTES``) must cost less than the largest gain seen (``MAX_GAIN_DB``). Small
    photos skip the fit: at MEDIUM, under about 80k pixels."""
    return db_per_bpp(rate) * MIN_PAYLOAD_BYTES * 8 / max(1, pixels) < MAX_GAIN_DB


def db_per_bpp(rate: float) -> float:
    """What a bit per pixel buys at ``rate`` on the codec's RD curve: the price adaptation bytes
    must beat. Interpolated between the slopes measured at the presets (``RD_SLOPES``)."""
    rates, slopes = zip(*sorted(RD_SLOPES.items()))
    return float(np.interp(rate, rates, slopes))


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
