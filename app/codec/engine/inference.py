"""Encode a photo to a thumbnail + tables, and reconstruct any region of a thumbnail, in tiles.

These functions take and return numpy arrays (uint8, HxWx3, stored orientation); the file
format and the Qt viewer never see a tensor. Geometry: an original W x H photo has a
ceil(W/4) x ceil(H/4) thumbnail; reconstructions are cropped back to W x H.
"""

import contextlib
import dataclasses

import numpy as np
import torch

from app.codec.engine.runtime import SPECS, DecoderRuntime, TorchRuntime
from app.codec.files.marker import thumbnail_size
from app.codec.files.presets import DEFAULT_DECODE_TILE, DEFAULT_ENCODE_TILE
from app.codec.files.tiling import Box, CancelFn, ProgressFn, check_cancel, fixed_shape_contexts, tiles_in
from app.codec.nets.color import ycbcr_to_rgb
from app.codec.nets.dct import pad_to_multiple
from app.codec.nets.detail import quantized_rate
from app.codec.nets.jpeg_sim import coefficients_from_ycbcr, table_tensor
from app.codec.nets.model import HyperThumbnailModel


def _to_tensor(pixels: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """uint8 HxWx3 -> float [1, 3, H, W] on the device (0..255)."""
    t = torch.from_numpy(np.array(pixels)).to(device)  # a copy: inputs may be read-only
    return t.permute(2, 0, 1).unsqueeze(0).to(dtype)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """float [1, 3, H, W] in 0..1 -> uint8 HxWx3 on the host."""
    x = (x[0].float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def thumbnail_knob(model: HyperThumbnailModel, rate: float) -> torch.Tensor:
    """The encoder's and QPM's own knob [1] for the product's rate knob: the same for
    thumbnail-only models; for detail-layer models the rate is first rounded to the level the
    file stores, then mapped (``DetailConfig.thumbnail_rate``), exactly as in training."""
    rate_t = torch.tensor([float(rate)], dtype=torch.float32)
    if model.config.detail is None:
        return rate_t
    return model.config.thumbnail_rate(quantized_rate(rate_t))


@torch.inference_mode()
def encode_thumbnail(
    model: HyperThumbnailModel,
    photo: np.ndarray,
    rate: float,
    *,
    tile: int = DEFAULT_ENCODE_TILE,
    progress: ProgressFn = None,
    cancelled: CancelFn = None,
    autocast=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photo (uint8 HxWx3) -> (thumbnail uint8 hxwx3, luma table, chroma table as int 64).

    The encoder runs on photo tiles with context; the QPM then sees the whole thumbnail,
    because a file has one pair of tables. ``autocast`` (``Codec.encoder_autocast()``)
    runs the encoder network in reduced precision where that is fast; the QPM stays float32.
    """
    device, dtype = next(model.parameters()).device, _model_dtype(model)
    scale = model.config.scale
    height, width = photo.shape[:2]
    lr_w, lr_h = thumbnail_size(width, height, scale)
    margin = model.config.encoder.receptive_radius() + 2  # + bicubic antialias support
    rate_t = thumbnail_knob(model, rate).to(device=device, dtype=dtype)
    lr = torch.empty(1, 3, lr_h, lr_w, device=device, dtype=dtype)
    tiles = list(tiles_in(Box(0, lr_h, 0, lr_w), tile, 1))
    for i, box in enumerate(tiles):
        check_cancel(cancelled)
        ctx = box.expanded(margin, lr_h, lr_w)
        hr_ctx = ctx.scaled(scale)
        crop = photo[hr_ctx.y0 : min(hr_ctx.y1, height), hr_ctx.x0 : min(hr_ctx.x1, width)]
        hr = pad_to_multiple(_to_tensor(crop, device, dtype) / 255.0, scale)
        with autocast or contextlib.nullcontext():
            out = model.encoder(hr, rate_t)
        inner = box.relative_to(ctx)
        lr[..., box.y0 : box.y1, box.x0 : box.x1] = out[..., inner.y0 : inner.y1, inner.x0 : inner.x1]
        if progress:
            progress(i + 1, len(tiles))
    luma, chroma = model.qpm(lr, rate_t)
    as_int = lambda t: t[0].float().round().clamp(1, 255).cpu().numpy().astype(np.int64)
    return _to_uint8(lr), as_int(luma), as_int(chroma)


INPUT_BAND = 256  # thumbnail rows per band of ``decoder_inputs`` (a multiple of 8)


@torch.inference_mode()
def decoder_inputs(
    ycbcr: np.ndarray, luma_table: np.ndarray, chroma_table: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A thumbnail's decoded YCbCr samples and tables -> the decoder's float32 inputs (lr pixels
    0..1, de-quantized coefficients, tables [1, 128]) on ``device``."""
    ycc = pad_to_multiple(_to_tensor(ycbcr, device, torch.float32), 8)
    luma = torch.as_tensor(np.asarray(luma_table), device=device, dtype=torch.float32)
    chroma = torch.as_tensor(np.asarray(chroma_table), device=device, dtype=torch.float32)
    step = table_tensor(luma, chroma)
    _, _, height, width = ycc.shape
    dequantized = torch.empty(1, 3, 64, height // 8, width // 8, device=device, dtype=torch.float32)
    lr = torch.empty_like(ycc)
    for y0 in range(0, height, INPUT_BAND):  # in bands: the DCT's temporaries stay a band's size
        band = ycc[..., y0 : y0 + INPUT_BAND, :]
        dequantized[..., y0 // 8 : (y0 + band.shape[-2]) // 8, :] = coefficients_from_ycbcr(band, luma, chroma) * step
        lr[..., y0 : y0 + band.shape[-2], :] = ycbcr_to_rgb(band).round_().clamp_(0, 255).div_(255.0)
    tables = torch.cat([luma, chroma]).view(1, 128)
    return lr, dequantized, tables


def _model_runtime(model: HyperThumbnailModel) -> DecoderRuntime:
    """The model's own decoder as a runtime (tools that hold a model but chose no runtime)."""
    device, dtype = next(model.parameters()).device, _model_dtype(model)
    spec = SPECS["torch-cuda-fp16" if dtype == torch.float16 and device.type == "cuda" else "torch-fp32"]
    if device.type != spec.device_type or dtype != spec.dtype:
        spec = dataclasses.replace(
            spec, name=f"torch-{device.type}-{str(dtype).replace('torch.', '')}", device_type=device.type, dtype=dtype
        )
    return TorchRuntime(spec, model, device)


class Reconstructor:
    """Holds one thumbnail's decoder inputs on the device and reconstructs regions of it.

    Preparing the inputs (colour conversion, block DCT, coefficient recovery) is done once per
    file, so the viewer can ask for many regions cheaply.
    """

    def __init__(
        self,
        model: HyperThumbnailModel,
        ycbcr: np.ndarray,
        luma_table: np.ndarray,
        chroma_table: np.ndarray,
        full_size: tuple[int, int],
        runtime: DecoderRuntime | None = None,
        offsets: np.ndarray | None = None,
        detail=None,
    ):
        """``detail``: a ``detail_layer.DetailSource`` for the file's detail layer, or None (the
        base reconstruction)."""
        self.model = model
        self.detail = detail
        self.base_notes: list[str] = []  # e.g. why the file's decoder adaptation is not used
        self.offsets = None if offsets is None else torch.as_tensor(np.asarray(offsets, np.float32))
        self.runtime = runtime or _model_runtime(model)
        self.scale = model.config.scale
        self.full_width, self.full_height = full_size
        self.lr, self.dequantized, self.tables = decoder_inputs(ycbcr, luma_table, chroma_table, self.runtime.device)
        self.lr_height, self.lr_width = self.lr.shape[-2:]

    @property
    def notes(self) -> list[str]:
        """What the user should know about this reconstruction (read after decoding: a damaged
        detail tile is found when it is decoded)."""
        return self.base_notes + ([] if self.detail is None else self.detail.notes)

    @notes.setter
    def notes(self, value: list[str]) -> None:
        self.base_notes = list(value)

    def full_box(self) -> Box:
        return Box(0, self.full_height, 0, self.full_width)

    @torch.inference_mode()
    def prefetch_detail(self, cancelled: CancelFn = None) -> None:
        """Decode the file's whole detail latent now (nothing without a layer): what a viewer
        calls in the background while the photo is shown fitted, so that zooming in costs only
        the decoder (``DetailSource.prefetch``)."""
        if self.detail is not None:
            self.detail.prefetch(cancelled)

    @torch.inference_mode()
    def decode_on_device(
        self,
        region: Box | None = None,
        *,
        tile: int = DEFAULT_DECODE_TILE,
        progress: ProgressFn = None,
        cancelled: CancelFn = None,
        detail: bool = True,
    ) -> torch.Tensor:
        """Reconstruct ``region`` (photo pixels, default: all of it) -> uint8 [H, W, 3] on the
        model's device. Tiles are assembled there, so a GPU copies the result back once.
        ``detail=False``: the base reconstruction even where the file has a detail layer (the
        viewer's first, faster pass)."""
        source = self.detail if detail else None
        region = self.full_box() if region is None else region.intersect(self.full_box())
        if region is None:
            raise ValueError("region lies outside the image")
        s, margin = self.scale, self.model.config.decoder.margin()
        out = torch.empty((region.height, region.width, 3), dtype=torch.uint8, device=self.lr.device)
        lr_area = Box(region.y0 // s, -(-region.y1 // s), region.x0 // s, -(-region.x1 // s))
        lr_area = lr_area.aligned_out(8, self.lr_height, self.lr_width)
        tiles = list(fixed_shape_contexts(lr_area, tile, 8, margin, self.lr_height, self.lr_width))
        for i, (box, ctx) in enumerate(tiles):
            check_cancel(cancelled)
            blocks = ctx.shrunk(8)
            hr = self.runtime(
                self.lr[..., ctx.y0 : ctx.y1, ctx.x0 : ctx.x1],
                self.dequantized[..., blocks.y0 : blocks.y1, blocks.x0 : blocks.x1],
                self.tables,
                self.offsets,
                None if source is None else source.region(ctx),
            )
            wanted = box.scaled(s).intersect(region)
            if wanted is not None:
                src = wanted.relative_to(ctx.scaled(s))
                dst = wanted.relative_to(region)
                out[dst.y0 : dst.y1, dst.x0 : dst.x1] = hr[src.y0 : src.y1, src.x0 : src.x1]
            if progress:
                progress(i + 1, len(tiles))
        return out

    def decode(
        self,
        region: Box | None = None,
        *,
        tile: int = DEFAULT_DECODE_TILE,
        progress: ProgressFn = None,
        cancelled: CancelFn = None,
        detail: bool = True,
    ) -> np.ndarray:
        """Reconstruct ``region`` (photo pixels, default: all of it) -> uint8 HxWx3 on the host."""
        pixels = self.decode_on_device(region, tile=tile, progress=progress, cancelled=cancelled, detail=detail)
        return pixels.cpu().numpy()
