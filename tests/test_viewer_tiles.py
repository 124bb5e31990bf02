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


def test_a_views_first_piece_is_small_and_central_and_every_cell_is_asked_for_once():
    """Issue 19's first piece: the visible area's first piece is at most FIRST_PIECE_CELLS a side
    around the centre (a fraction of the view, decoded quickly); the rest follows in full pieces."""
    from types import SimpleNamespace

    from app.viewer.reconstruction import FIRST_PIECE_CELLS, Reconstruction

    grid = TileGrid(4096, 4096)
    cells = [(r, c) for r in range(4, 13) for c in range(2, 17)]  # a 1920x1152 view at 100%
    centre = (8.5 * 128, 9.5 * 128)
    fake = SimpleNamespace(_grid=grid)
    pieces = Reconstruction._rectangles(fake, cells, 16, centre, first=True)
    r0, r1, c0, c1 = pieces[0]
    assert r1 - r0 <= FIRST_PIECE_CELLS and c1 - c0 <= FIRST_PIECE_CELLS
    assert r0 <= 8 < r1 and c0 <= 9 < c1  # it holds the centre
    covered = [(r, c) for a, b, x, y in pieces for r in range(a, b) for c in range(x, y)]
    assert sorted(covered) == sorted(cells)  # each cell once
    assert len(pieces) <= 5  # the rest in a few large pieces around it, not in small ones
    assert Reconstruction._rectangles(fake, cells, 16, centre, first=False) == grid.pieces(cells, 16, centre)
