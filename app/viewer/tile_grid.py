"""Which tiles of the full-resolution photo a view needs, and how to decode them: in pieces.

Tiles sit on a fixed grid in stored (un-turned) photo coordinates, so the same tile is asked for
whatever the scroll position, and a decoded tile can be cached and reused when the user pans back.
Tiles are small (128 photo pixels) so that the tiles covering a view overshoot it little; they
are not decoded one by one, though: the decoder computes a margin of context around whatever it
decodes (32 thumbnail pixels a side, 2.25x the work of a lone 128-pixel tile), so the missing
tiles are grouped into rectangular *pieces* of up to the decoder's own tile (``PIECE_LR``
thumbnail pixels a side), each decoded in one go and cut back into tiles.
"""

from __future__ import annotations

from typing import NamedTuple

from app.codec.files.presets import DEFAULT_DECODE_TILE
from app.viewer.codec_bridge import Box

TILE_SIZE = 128  # photo pixels per side: 32 thumbnail pixels, a multiple of the 8x8 JPEG blocks
PIECE_LR = DEFAULT_DECODE_TILE  # thumbnail pixels per side of a piece at most: one decoder tile


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

    def cell_box(self, r0: int, r1: int, c0: int, c1: int) -> Box:
        """The stored photo pixels of the tiles in rows r0..r1-1 and columns c0..c1-1."""
        first, last = self.box(r0, c0), self.box(r1 - 1, c1 - 1)
        return Box(first.y0, last.y1, first.x0, last.x1)

    def pieces(self, cells, max_cells: int, centre: tuple[float, float]) -> list[tuple[int, int, int, int]]:
        """``cells`` (row, col) grouped into rectangles (r0, r1, c0, c1) of at most ``max_cells``
        a side, those nearest ``centre`` (stored y, x) first.

        Each rectangle is grown from the cell nearest the centre not yet taken, a row or a column
        at a time while every new cell is wanted, then cut into equal parts no larger than
        ``max_cells`` (two halves, not a full piece and a sliver that would be mostly margin).
        """
        remaining = set(cells)
        cy, cx = centre

        def distance(r0: int, r1: int, c0: int, c1: int) -> float:
            box = self.cell_box(r0, r1, c0, c1)
            return ((box.y0 + box.y1) / 2 - cy) ** 2 + ((box.x0 + box.x1) / 2 - cx) ** 2

        rectangles = []
        for seed in sorted(remaining, key=lambda cell: distance(cell[0], cell[0] + 1, cell[1], cell[1] + 1)):
            if seed not in remaining:
                continue
            r0, r1, c0, c1 = seed[0], seed[0] + 1, seed[1], seed[1] + 1
            grown = True
            while grown:
                grown = False
                if all((r1, c) in remaining for c in range(c0, c1)):
                    r1, grown = r1 + 1, True
                if all((r, c1) in remaining for r in range(r0, r1)):
                    c1, grown = c1 + 1, True
                if all((r0 - 1, c) in remaining for c in range(c0, c1)):
                    r0, grown = r0 - 1, True
                if all((r, c0 - 1) in remaining for r in range(r0, r1)):
                    c0, grown = c0 - 1, True
            remaining.difference_update((r, c) for r in range(r0, r1) for c in range(c0, c1))
            rectangles += [
                (ra, rb, ca, cb) for ra, rb in _split(r0, r1, max_cells) for ca, cb in _split(c0, c1, max_cells)
            ]
        return sorted(rectangles, key=lambda rect: distance(*rect))


def _split(start: int, stop: int, most: int) -> list[tuple[int, int]]:
    """[start, stop) in the fewest parts of at most ``most``, as equal as they can be."""
    parts = -(-(stop - start) // max(1, most))
    edges = [start + (stop - start) * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))
