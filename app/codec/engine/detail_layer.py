"""The detail layer end to end: a photo -> its ``HTD1`` record (export), a record -> the decoded
latent of any region (decode). Numpy and torch only; the bytes are ``detail_coding``'s.

Export: the base reconstruction (what a reader has without the layer) is decoded from the very
thumbnail the file holds; the analysis sees the photo and that base, tile by tile; the gained
latent is rounded around the integer prior's mean and range-coded per tile.

Decode: ``DetailSource`` decodes the tiles a region needs (once each, cached), runs the integer
prior on them, checks each tile's CRC, and hands the decoder the de-gained latent. A tile that
fails (damaged, or decoded differently because this reader's thumbnail samples differ) falls back
to the prior's mean there, and ``notes`` says so: never garbage, never a crash.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from app.codec.engine.detail_coding import (
    CONTEXT_VERSION,
    TILE,
    VERSION,
    CoderTables,
    DetailLayerError,
    DetailRecord,
    clamp_symbols,
    decode_context_tiles,
    decode_tile,
    encode_context_tile,
    encode_tile,
    symbols_checksum,
    tile_grid,
)
from app.codec.engine.detail_context_int import IntegerContext, check_exact
from app.codec.engine.detail_prior_int import ACT_BITS, MEAN_DIV, IntegerPrior
from app.codec.engine.detail_refine import Refinement, refine_latent
from app.codec.files.tiling import Box, CancelFn, ProgressFn, check_cancel, tiles_in
from app.codec.nets.detail import LATENT_STRIDE, RATE_LEVELS, rate_level
from app.codec.nets.model import HyperThumbnailModel

ANALYSIS_TILE = 256  # thumbnail pixels per analysis tile side
ANALYSIS_MARGIN = 16  # thumbnail pixels of context (the analysis sees ~13)


class DetailCoder:
    """A model's integer prior and coder tables, built once per loaded model."""

    def __init__(self, model: HyperThumbnailModel):
        if model.config.detail is None:
            raise ValueError("this model has no detail layer")
        self.model = model
        self.prior = IntegerPrior(model.prior)
        # a context model codes version 2 (scales from the symbols decoded before) and still reads version 1
        self.context = IntegerContext(model.context) if model.config.detail.context_groups else None
        check_exact(self.prior, self.context)  # every probability exact in float64, proved once per model
        self.tables = CoderTables.from_buffers(model.prior.coder_freqs, model.prior.coder_halves)
        self.channels = model.config.detail.latent
        self.device = next(model.analysis.parameters()).device  # a model on a GPU runs its analysis there

    def _rate(self, level: int) -> torch.Tensor:
        return torch.tensor([level / RATE_LEVELS], device=self.device)

    def inverse_gain(self, level: int) -> torch.Tensor:
        with torch.no_grad():
            return self.model.gains.inverse(self._rate(level)).float().cpu()

    @torch.no_grad()
    def encode(
        self,
        photo: np.ndarray,
        base: np.ndarray,
        ycbcr: np.ndarray,
        rate: float,
        *,
        autocast=None,
        refinement: Refinement | None = None,
        progress: ProgressFn = None,
        refine_progress: ProgressFn = None,
        cancelled: CancelFn = None,
    ) -> bytes:
        """The ``HTD1`` record of ``photo`` (uint8 HxWx3) given its base reconstruction ``base``
        (uint8, same size) and the thumbnail's decoded samples ``ycbcr`` (uint8 hxwx3);
        ``refinement``: fit the latent to the photo before it is coded (``detail_refine``)."""
        level = rate_level(rate)
        ycc = pad_samples(ycbcr)
        lr_h, lr_w = ycc.shape[:2]
        s = self.model.config.scale
        photo_u8, base_u8 = (
            _padded(photo, lr_h * s, lr_w * s),
            _padded(base, lr_h * s, lr_w * s),
        )  # uint8: 6K in float is 300 MB
        from app.codec.nets.color import ycbcr_to_rgb

        thumb = ycbcr_to_rgb(torch.from_numpy(ycc).permute(2, 0, 1)[None].float()).round().clamp(0, 255) / 255.0
        gain = self.model.gains.gain(self._rate(level)).float().cpu()
        latent = torch.empty(self.channels, lr_h // LATENT_STRIDE, lr_w // LATENT_STRIDE)
        dtype = next(self.model.analysis.parameters()).dtype
        tiles = list(tiles_in(Box(0, lr_h, 0, lr_w), ANALYSIS_TILE, 8))
        for i, box in enumerate(tiles):
            check_cancel(cancelled)
            ctx = box.expanded(ANALYSIS_MARGIN, lr_h, lr_w)
            hr = ctx.scaled(s)
            args = [_tensor(a[hr.y0 : hr.y1, hr.x0 : hr.x1], dtype) for a in (photo_u8, base_u8)]
            args.append(thumb[..., ctx.y0 : ctx.y1, ctx.x0 : ctx.x1].to(dtype))
            with autocast if autocast is not None else torch.autocast("cpu", enabled=False):
                y = self.model.analysis(*(a.to(self.device) for a in args)).float().cpu() * gain
            inner = box.relative_to(ctx).shrunk(LATENT_STRIDE)
            out = box.shrunk(LATENT_STRIDE)
            latent[:, out.y0 : out.y1, out.x0 : out.x1] = y[0, :, inner.y0 : inner.y1, inner.x0 : inner.x1]
            if progress:
                progress(i + 1, len(tiles))
        grid = latent.shape[1:]
        tiles = tile_grid(*grid)
        # the reader's probabilities per tile: the integer prior's mean (1/MEAN_DIV units) and its scale index
        # (a context model: its scale position in fixed point and hidden features, for the context's steps)
        priors = []
        for y0, y1, x0, x1 in tiles:
            check_cancel(cancelled)
            box = (y0, y1, x0, x1)
            priors.append(
                self.prior(ycc, level, box) if self.context is None else self.prior.with_features(ycc, level, box)
            )
        if refinement is not None and refinement.steps > 0:
            mean = torch.empty_like(latent)
            position = torch.empty_like(latent)  # a context model: the base prior's (the rate term's proxy)
            for (y0, y1, x0, x1), (mean_q, index, *_) in zip(tiles, priors):
                mean[:, y0:y1, x0:x1] = torch.from_numpy(mean_q.astype(np.float32) / MEAN_DIV)
                if self.context is not None:
                    index = np.clip(np.round(index / 2.0**ACT_BITS), 0, None)
                position[:, y0:y1, x0:x1] = torch.from_numpy(index.astype(np.float32))
            latent = refine_latent(
                self.model.decoder,
                latent,
                mean,
                position,
                self.inverse_gain(level)[0],
                photo_u8,
                refinement.decoder_inputs,
                refinement.lam,
                refinement.steps,
                self.model.config.decoder.margin(),
                size=photo.shape[:2],
                progress=refine_progress,
                cancelled=cancelled,
            )
        streams, checksums = [], []
        for (y0, y1, x0, x1), (mean_q, index, *features) in zip(tiles, priors):
            check_cancel(cancelled)
            values = np.round(latent[:, y0:y1, x0:x1].numpy() - mean_q / MEAN_DIV)
            if self.context is None:
                symbols = clamp_symbols(values, index, self.tables)
                streams.append(encode_tile(symbols, index, self.tables))
            else:
                stream, symbols, _ = encode_context_tile(values, self.context, features[0], index, self.tables)
                streams.append(stream)
            checksums.append(symbols_checksum(symbols))
        version = VERSION if self.context is None else CONTEXT_VERSION
        return DetailRecord(level, tuple(grid), TILE, self.channels, streams, checksums, version).to_bytes()


def pad_samples(ycbcr: np.ndarray) -> np.ndarray:
    """Decoded thumbnail samples padded (edge replication) to multiples of 8, as the decoder's
    inputs are: the grid the latent and the prior live on."""
    h, w = ycbcr.shape[:2]
    ph, pw = (-h) % 8, (-w) % 8
    if ph == 0 and pw == 0:
        return np.ascontiguousarray(ycbcr)
    return np.pad(ycbcr, ((0, ph), (0, pw), (0, 0)), mode="edge")


def _padded(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 HxWx3 padded to height x width, bottom/right edges replicated."""
    h, w = pixels.shape[:2]
    return (
        np.pad(pixels, ((0, height - h), (0, width - w), (0, 0)), mode="edge") if (h, w) != (height, width) else pixels
    )


def _tensor(pixels: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """uint8 hxwx3 -> [1, 3, h, w] in 0..1."""
    return (torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255.0).to(dtype)


PRIOR_CHUNK_TILES = 4  # tiles per integer-prior call: 32 x 128 latent positions, ~40 MB of float64 temporaries


class DetailSource:
    """One file's detail layer, decoded lazily by region for the decoder (see module docstring)."""

    def __init__(self, coder: DetailCoder, record: bytes, ycbcr: np.ndarray):
        self.coder = coder
        self.record = DetailRecord.from_bytes(record)
        self.ycc = pad_samples(ycbcr)
        grid = (self.ycc.shape[0] // LATENT_STRIDE, self.ycc.shape[1] // LATENT_STRIDE)
        if self.record.grid != grid:
            raise DetailLayerError(f"the detail layer's grid {self.record.grid} does not fit the thumbnail ({grid})")
        if self.record.channels != coder.channels:
            raise DetailLayerError(
                f"the detail layer has {self.record.channels} channels, the decoder {coder.channels}"
            )
        if self.record.version == CONTEXT_VERSION and coder.context is None:
            raise DetailLayerError("the detail layer was coded with a context prior, which this model does not have")
        self.tiles = tile_grid(*grid, self.record.tile)
        self.level = self.record.rate_level
        self.inverse = coder.inverse_gain(self.level)[0]  # [C, 1, 1]
        self.latent = torch.zeros(coder.channels, *grid)
        self._done: set[int] = set()
        self._lock = threading.Lock()
        self.failed_tiles: list[int] = []

    @property
    def notes(self) -> list[str]:
        if not self.failed_tiles:
            return []
        return [f"{len(self.failed_tiles)} of {len(self.tiles)} detail tiles could not be decoded; "
                "those areas show less detail"]  # fmt: skip

    def _decode(self, tiles: list[int]) -> None:
        """Decode ``tiles`` in chunks of at most ``PRIOR_CHUNK_TILES`` neighbours of one row
        (``_decode_chunk``): one prior call per chunk saves recomputing each tile's context margin,
        and the chunk bounds the prior's float64 temporaries (a whole 6K row at once held 200 MB)."""
        chunk: list[int] = []
        for i in sorted(tiles, key=lambda i: (self.tiles[i][0], self.tiles[i][2])):
            if chunk and (
                len(chunk) == PRIOR_CHUNK_TILES
                or self.tiles[i][0] != self.tiles[chunk[-1]][0]
                or self.tiles[i][2] != self.tiles[chunk[-1]][3]
            ):
                self._decode_chunk(chunk)
                chunk = []
            chunk.append(i)
        if chunk:
            self._decode_chunk(chunk)

    def _decode_chunk(self, tiles: list[int]) -> None:
        """Decode neighbouring ``tiles``: one integer-prior call over their bounding box (exact, so
        the same numbers as tile by tile), then each tile's stream."""
        y0 = min(self.tiles[i][0] for i in tiles)
        y1 = max(self.tiles[i][1] for i in tiles)
        x0 = min(self.tiles[i][2] for i in tiles)
        x1 = max(self.tiles[i][3] for i in tiles)
        context = self.coder.context if self.record.version == CONTEXT_VERSION else None
        if context is None:
            mean_q, index = self.coder.prior(self.ycc, self.level, (y0, y1, x0, x1))
        else:  # index: the base prior's scale position in fixed point; the context's steps refine it
            mean_q, index, hidden = self.coder.prior.with_features(self.ycc, self.level, (y0, y1, x0, x1))
        inner = {}
        for i in tiles:
            ty0, ty1, tx0, tx1 = self.tiles[i]
            inner[i] = (slice(None), slice(ty0 - y0, ty1 - y0), slice(tx0 - x0, tx1 - x0))
        decoded: dict[int, np.ndarray | None] = {}  # None: the stream failed to decode
        if context is None:
            for i in tiles:
                try:
                    decoded[i] = decode_tile(
                        self.record.streams[i], np.ascontiguousarray(index[inner[i]]), self.coder.tables
                    )
                except DetailLayerError:
                    decoded[i] = None
        else:  # the context's steps run batched over the chunk's tiles of one shape
            shapes: dict[tuple, list[int]] = {}
            for i in tiles:
                shapes.setdefault(index[inner[i]].shape, []).append(i)
            for members in shapes.values():
                symbols, failed = decode_context_tiles(
                    [self.record.streams[i] for i in members],
                    context,
                    torch.stack([hidden[inner[i]] for i in members]),
                    np.stack([index[inner[i]] for i in members]),
                    self.coder.tables,
                )
                for k, i in enumerate(members):
                    decoded[i] = None if k in failed else symbols[k]
        for i in tiles:
            ty0, ty1, tx0, tx1 = self.tiles[i]
            mean = torch.from_numpy(mean_q[inner[i]].astype(np.float32) / MEAN_DIV)
            symbols = decoded[i]
            if symbols is not None and symbols_checksum(symbols) == self.record.checksums[i]:
                values = mean + torch.from_numpy(symbols.astype(np.float32))
            else:
                self.failed_tiles.append(i)
                values = mean  # the prior's expectation: a smooth, safe stand-in
            self.latent[:, ty0:ty1, tx0:tx1] = values * self.inverse
            self._done.add(i)

    @property
    def complete(self) -> bool:
        """Whether every tile is decoded (a damaged one counts: it holds the prior's mean)."""
        return len(self._done) == len(self.tiles)

    def prefetch(self, cancelled: CancelFn = None) -> None:
        """Decode every tile not yet decoded, one row of tiles at a time, so that a later region
        finds its latent ready: the viewer runs this in the background from the moment a photo
        is shown (the prior and the range decoding are most of a zoomed-in view's detail cost).
        ``region`` calls get in between rows; ``cancelled`` is checked between them too."""
        rows = sorted({y0 for y0, _, _, _ in self.tiles})
        for row in rows:
            check_cancel(cancelled)
            with self._lock:
                wanted = [i for i, tile in enumerate(self.tiles) if tile[0] == row and i not in self._done]
                if wanted:
                    self._decode(wanted)

    def region(self, box: Box) -> torch.Tensor:
        """The de-gained latent [1, C, h/4, w/4] for a thumbnail-pixel box (multiples of 4)."""
        lat = box.shrunk(LATENT_STRIDE)
        with self._lock:
            wanted = [i for i, (y0, y1, x0, x1) in enumerate(self.tiles)
                      if i not in self._done and y0 < lat.y1 and lat.y0 < y1 and x0 < lat.x1 and lat.x0 < x1]  # fmt: skip
            if wanted:
                self._decode(wanted)
        return self.latent[None, :, lat.y0 : lat.y1, lat.x0 : lat.x1]
