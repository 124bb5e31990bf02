"""The detail layer's bytes: integer probability tables, tiled range coding, the ``HTD1`` record.

Entropy coding is constriction's range coder (a maintained Rust library; see docs/FORMAT.md for
why not CompressAI). Every probability it uses comes from integer tables: one table per scale
index of a zero-mean discretized Gaussian (``coder_tables``), computed once when a model is made
and stored with its weights (a float ``erfc`` could round differently elsewhere). Which table a
symbol uses comes from the integer prior (``detail_prior_int``). So the probabilities are
integers end to end, and a file decodes identically on every machine and runtime.

The latent grid is cut into tiles of ``TILE`` x ``TILE`` positions (512 x 512 photo pixels), each
its own range-coded stream with a CRC-32 of its symbols: a viewer decodes only the tiles it
shows, and a damaged or mismatched tile is caught instead of decoding to garbage.

Record layout (big-endian)::

    "HTD1"  u8 version (1 or 2)  u8 rate level  u16 grid height  u16 grid width  u8 tile  u8 channels
    per tile, row-major: u32 stream bytes, u32 CRC-32 of its symbols (int16 little-endian, C order)
    the streams, concatenated (each a whole number of little-endian u32 words)

A tile's symbols are ``round(gained latent - mean)`` clamped to its table's support, grouped by
scale index (ascending) and, within a group, in C-order over (channel, row, column); each group is
coded with that index's table.

Version 2 (a model with a context prior, ``detail_context_int``): a tile's symbols are coded in
the context's steps, in order; each step codes its group of channels at its checkerboard pass's
positions, ``[channels, positions]`` in C order (positions row-major), grouped by scale index
(ascending) as above, the scale indexes coming from the base prior and the symbols of the steps
before. One stream per tile still; the CRC covers the tile's symbols as in version 1.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

MAGIC = b"HTD1"
VERSION = 1  # the thumbnail-only prior's scales
CONTEXT_VERSION = 2  # scales from the context prior (``detail_context_int``)
VERSIONS = (VERSION, CONTEXT_VERSION)
TILE = 32  # latent positions per tile side
MIN_TILE = (
    16  # readers refuse smaller tiles: each costs a prior evaluation (a hostile file's 1x1 tiles would take minutes)
)
_HEADER = struct.Struct(">4sBBHHBB")
_TILE_ENTRY = struct.Struct(">II")


class DetailLayerError(ValueError):
    """The detail record is truncated, inconsistent, or does not fit this model or thumbnail."""


@dataclass(frozen=True)
class CoderTables:
    """The tables as constriction models, built once per model (from the integer frequencies)."""

    halves: np.ndarray  # int64 [SCALE_LEVELS]
    models: tuple

    @classmethod
    def from_buffers(cls, freqs: torch.Tensor, halves: torch.Tensor) -> CoderTables:
        import constriction

        halves_np = halves.cpu().numpy().astype(np.int64)
        freqs_np = freqs.cpu().numpy().astype(np.int64)
        models = tuple(
            constriction.stream.model.Categorical(freqs_np[k, : 2 * h + 1].astype(np.float64), perfect=False)
            for k, h in enumerate(halves_np)
        )  # integer-valued float64: constriction's rescaling of exact values is exact everywhere
        return cls(halves_np, models)


def tile_grid(grid_h: int, grid_w: int, tile: int = TILE) -> list[tuple[int, int, int, int]]:
    """The tiles (y0, y1, x0, x1) of a latent grid, row-major."""
    return [(y, min(y + tile, grid_h), x, min(x + tile, grid_w))
            for y in range(0, grid_h, tile) for x in range(0, grid_w, tile)]  # fmt: skip


def symbols_checksum(symbols: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(symbols, dtype="<i2").tobytes())


def _grouped(index: np.ndarray):
    """(order, [(scale index, count)]): the positions of a C-ordered ``index`` sorted by scale
    index, C order kept within each (a stable sort), and each index's run length."""
    flat_i = index.reshape(-1)
    keys, counts = np.unique(flat_i, return_counts=True)
    return np.argsort(flat_i, kind="stable"), zip(keys.tolist(), counts.tolist())


def _encode_groups(encoder, symbols: np.ndarray, index: np.ndarray, tables: CoderTables) -> None:
    """Symbols (already clamped) in C order, grouped by scale index ascending, each group with its table."""
    order, runs = _grouped(index)
    ordered = symbols.reshape(-1)[order].astype(np.int32)
    at = 0
    for k, count in runs:
        encoder.encode(ordered[at : at + count] + np.int32(tables.halves[k]), tables.models[k])
        at += count


def _decode_groups(decoder, index: np.ndarray, tables: CoderTables) -> np.ndarray:
    """The inverse of ``_encode_groups``: int16 symbols shaped like ``index``."""
    order, runs = _grouped(index)
    ordered = np.empty(order.shape, np.int64)
    at = 0
    try:
        for k, count in runs:
            ordered[at : at + count] = decoder.decode(tables.models[k], count).astype(np.int64) - tables.halves[k]
            at += count
    except Exception as exc:  # noqa: BLE001 -- constriction reports a bad stream as its own error types
        raise DetailLayerError(f"a detail tile does not decode ({type(exc).__name__})") from None
    out = np.empty(order.shape, np.int16)
    out[order] = ordered
    return out.reshape(index.shape)


def _decoder(stream: bytes):
    import constriction

    if len(stream) % 4:
        raise DetailLayerError("a detail tile's stream is not a whole number of words")
    return constriction.stream.queue.RangeDecoder(np.frombuffer(stream, "<u4").astype(np.uint32))


def encode_tile(symbols: np.ndarray, index: np.ndarray, tables: CoderTables) -> bytes:
    """Symbols (int, [C, h, w], already clamped to their tables) -> one range-coded stream."""
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    _encode_groups(encoder, symbols, index, tables)
    return encoder.get_compressed().astype("<u4").tobytes()


def decode_tile(stream: bytes, index: np.ndarray, tables: CoderTables) -> np.ndarray:
    """One stream + the scale indexes of its positions -> its symbols (int16, shaped like index)."""
    return _decode_groups(_decoder(stream), index, tables)


def encode_context_tile(values: np.ndarray, context, hidden, position_fx: np.ndarray, tables: CoderTables):
    """Version 2: rounded values (latent - mean, [C, h, w]) -> (stream, symbols as coded, scale
    indexes), coded in the context's steps (``detail_context_int.tile_steps``)."""
    import constriction

    from app.codec.engine.detail_context_int import tile_steps

    encoder = constriction.stream.queue.RangeEncoder()

    def code(_tile, channels, where, index):
        symbols = clamp_symbols(values[channels][:, where], index, tables)
        _encode_groups(encoder, symbols, index, tables)
        return symbols

    symbols, index = tile_steps(context, hidden[None], position_fx[None], code)
    return encoder.get_compressed().astype("<u4").tobytes(), symbols[0], index[0]


def decode_context_tiles(streams: list[bytes], context, hidden, position_fx: np.ndarray, tables: CoderTables):
    """Version 2: T streams of tiles of one shape (``hidden`` [T, P, h, w], ``position_fx``
    [T, C, h, w]) -> their symbols (int16 [T, C, h, w]) and the tiles that failed to decode
    (their symbols are zeros; the others do not depend on them)."""
    from app.codec.engine.detail_context_int import tile_steps

    decoders, failed = [], set()
    for t, stream in enumerate(streams):
        try:
            decoders.append(_decoder(stream))
        except DetailLayerError:
            decoders.append(None)
            failed.add(t)

    def decode(t, _channels, _where, index):
        if t not in failed:
            try:
                return _decode_groups(decoders[t], index, tables)
            except DetailLayerError:
                failed.add(t)
        return np.zeros(index.shape, np.int16)

    symbols, _ = tile_steps(context, hidden, position_fx, decode)
    return symbols, failed


def decode_context_tile(stream: bytes, context, hidden, position_fx: np.ndarray, tables: CoderTables) -> np.ndarray:
    """Version 2: one stream -> its symbols (int16 [C, h, w])."""
    symbols, failed = decode_context_tiles([stream], context, hidden[None], position_fx[None], tables)
    if failed:
        raise DetailLayerError("a detail tile does not decode")
    return symbols[0]


def clamp_symbols(values: np.ndarray, index: np.ndarray, tables: CoderTables) -> np.ndarray:
    half = tables.halves[index.astype(np.int64)]
    return np.clip(values, -half, half).astype(np.int16)


@dataclass
class DetailRecord:
    """A parsed ``HTD1`` record: where each tile's stream lies, not yet decoded."""

    rate_level: int
    grid: tuple[int, int]  # latent positions (height, width)
    tile: int
    channels: int
    streams: list[bytes]
    checksums: list[int]
    version: int = VERSION

    def to_bytes(self) -> bytes:
        head = _HEADER.pack(MAGIC, self.version, self.rate_level, *self.grid, self.tile, self.channels)
        table = b"".join(_TILE_ENTRY.pack(len(s), c) for s, c in zip(self.streams, self.checksums))
        return head + table + b"".join(self.streams)

    @classmethod
    def from_bytes(cls, data: bytes) -> DetailRecord:
        if len(data) < _HEADER.size:
            raise DetailLayerError("the detail layer is truncated")
        magic, version, level, gh, gw, tile, channels = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise DetailLayerError("not a detail layer")
        if version not in VERSIONS:
            raise DetailLayerError(
                f"detail layer version {version} is not supported (this reader knows {', '.join(map(str, VERSIONS))})"
            )
        if not (gh and gw and channels):
            raise DetailLayerError("the detail layer declares an empty grid")
        if tile < MIN_TILE:
            raise DetailLayerError(f"the detail layer's tiles ({tile}) are smaller than {MIN_TILE} positions")
        count = len(tile_grid(gh, gw, tile))
        at = _HEADER.size + count * _TILE_ENTRY.size
        if at > len(data):
            raise DetailLayerError("the detail layer's tile table is truncated")
        entries = [_TILE_ENTRY.unpack_from(data, _HEADER.size + i * _TILE_ENTRY.size) for i in range(count)]
        streams = []
        for length, _ in entries:
            if at + length > len(data):
                raise DetailLayerError("the detail layer is truncated")
            streams.append(data[at : at + length])
            at += length
        if at != len(data):
            raise DetailLayerError("the detail layer has bytes after its last tile")
        return cls(level, (gh, gw), tile, channels, streams, [c for _, c in entries], version)
