"""The tile grid (which tiles, in what order) and the tile cache (LRU under a byte cap)."""

from __future__ import annotations

import numpy as np
import pytest

from app.viewer.codec_bridge import Box
from app.viewer.tile_cache import TileCache
from app.viewer.tile_grid import TileGrid, TileKey


def test_grid_boxes_cover_the_photo_and_clip_at_its_edges():
    grid = TileGrid(1001, 667, 512)
    assert (grid.rows, grid.cols) == (2, 2)
    assert grid.box(0, 0) == Box(0, 512, 0, 512)
    assert grid.box(1, 1) == Box(512, 667, 512, 1001)
    with pytest.raises(ValueError):
        TileGrid(100, 100, 100)  # not on the 8x8 JPEG block grid


def test_covering_lists_the_touched_tiles_nearest_the_centre_first():
    grid = TileGrid(2048, 2048, 512)
    cells = grid.covering(Box(500, 1100, 900, 1000))  # rows 0..2, column 1
    assert set(cells) == {(0, 1), (1, 1), (2, 1)} and cells[0] == (1, 1)
    ring = grid.covering(Box(0, 10, 0, 10), ring=1)
    assert ring[0] == (0, 0) and set(ring) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_cache_drops_the_least_recently_used_tiles_beyond_its_cap():
    tile = np.zeros((10, 10, 3), np.uint8)  # 300 bytes
    cache = TileCache(capacity=1000)
    keys = [TileKey("doc", 0, col) for col in range(4)]
    for key in keys[:3]:
        assert cache.put(key, tile) == []
    cache.get(keys[0])  # used: now the most recent
    assert cache.put(keys[3], tile) == [keys[1]]
    assert keys[1] not in cache and len(cache) == 3 and cache.size == 900
    cache.touch([keys[2]])
    assert cache.put(TileKey("other", 0, 0), tile) == [keys[0]]
    assert cache.keys_of("doc") == [keys[3], keys[2]]
