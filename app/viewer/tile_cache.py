"""Decoded tiles kept in memory, least recently used dropped first, so panning back is instant.

One cache serves every document (tiles are keyed by document), so stepping back to an image
also shows what was already decoded; the byte cap bounds the memory whatever the user does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

DEFAULT_CAPACITY = 512 * 2**20  # bytes of RGB pixels


class TileCache:
    """An LRU of uint8 RGB arrays with a cap on their total size in bytes."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        self.size = 0
        self._tiles: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._tiles

    def __len__(self) -> int:
        return len(self._tiles)

    def get(self, key: Hashable) -> np.ndarray | None:
        """The tile, marked as just used; None when it is not cached."""
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
        return tile

    def touch(self, keys) -> None:
        """Mark ``keys`` (those cached) as just used, e.g. the tiles now on screen."""
        for key in keys:
            if key in self._tiles:
                self._tiles.move_to_end(key)

    def put(self, key: Hashable, tile: np.ndarray) -> list[Hashable]:
        """Store ``tile``; returns the keys dropped to stay under the cap (never ``key`` itself)."""
        if key in self._tiles:
            self.size -= self._tiles.pop(key).nbytes
        self._tiles[key] = tile
        self.size += tile.nbytes
        dropped = []
        while self.size > self.capacity and len(self._tiles) > 1:
            old, pixels = self._tiles.popitem(last=False)
            self.size -= pixels.nbytes
            dropped.append(old)
        return dropped

    def discard(self, key: Hashable) -> None:
        """Drop ``key`` if cached (a base tile once its detail tile has arrived)."""
        tile = self._tiles.pop(key, None)
        if tile is not None:
            self.size -= tile.nbytes

    def clear(self) -> list[Hashable]:
        """Drop every tile; returns their keys."""
        keys = list(self._tiles)
        self._tiles.clear()
        self.size = 0
        return keys

    def keys_of(self, document: Hashable) -> list[Hashable]:
        """The cached keys whose ``document`` field is ``document`` (keys are ``TileKey``s)."""
        return [key for key in self._tiles if key.document == document]
