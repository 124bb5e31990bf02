"""Which tiles of the full-resolution photo a view needs, in the order they should be decoded.

Tiles sit on a fixed grid in stored (un-turned) photo coordinates, so the same tile is asked for
whatever the scroll position, and a decoded tile can be cached and reused when the user pans back.
"""

from __future__ import annotations

from typing import NamedTuple

from app.viewer.codec_bridge import Box

TILE_SIZE = 512  # photo pixels per side: 128 thumbnail pixels, a multiple of the 8x8 JPEG blocks


class TileKey(NamedTuple):
    """A tile of one document: ``document`` tells tiles of different images apart."""

    document: object
    row: int
    col: int


class TileGrid:
    """The grid of ``size`` x ``size`` tiles over a ``width`` x ``height`` stored photo."""

    def __init__(self, width: int, height: int, size: int = TILE_SIZE):
        if size <= 0 or size % 8:
            raise ValueError(f"tile size must be a positive multiple of 8, not {size}")
        self.width, self.height, self.size = width, height, size
        self.rows, self.cols = -(-height // size), -(-width // size)

    def box(self, row: int, col: int) -> Box:
        """The stored photo pixels of tile (row, col), clipped at the right and bottom edges."""
        s = self.size
        return Box(row * s, min((row + 1) * s, self.height), col * s, min((col + 1) * s, self.width))

    def covering(self, area: Box, ring: int = 0) -> list[tuple[int, int]]:
        """(row, col) of the tiles ``area`` touches, grown by ``ring`` tiles, nearest its centre first."""
        r0, r1 = max(0, area.y0 // self.size - ring), min(self.rows, -(-area.y1 // self.size) + ring)
        c0, c1 = max(0, area.x0 // self.size - ring), min(self.cols, -(-area.x1 // self.size) + ring)
        cy, cx = (area.y0 + area.y1) / 2, (area.x0 + area.x1) / 2

        def distance(cell: tuple[int, int]) -> float:
            box = self.box(*cell)
            return ((box.y0 + box.y1) / 2 - cy) ** 2 + ((box.x0 + box.x1) / 2 - cx) ** 2

        return sorted(((r, c) for r in range(r0, r1) for c in range(c0, c1)), key=distance)
