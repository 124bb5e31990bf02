"""Tile geometry for running fully convolutional networks on images of any size.

A tile is computed on a context box (the tile grown by a margin at least the network's
receptive radius, clipped to the image) and cropped back, so tiled output equals untiled
output; only the tile plus margin is ever on the device, which bounds peak memory.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

ProgressFn = Callable[[int, int], None] | None
CancelFn = Callable[[], bool] | None


class Cancelled(Exception):
    """Raised inside tiled work when the caller's ``cancelled()`` returns True."""


@dataclass(frozen=True)
class Box:
    """Half-open pixel rectangle [y0, y1) x [x0, x1)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def scaled(self, factor: int) -> "Box":
        return Box(self.y0 * factor, self.y1 * factor, self.x0 * factor, self.x1 * factor)

    def shrunk(self, divisor: int) -> "Box":
        """Exact division (the box must be aligned to ``divisor``)."""
        assert all(v % divisor == 0 for v in (self.y0, self.y1, self.x0, self.x1)), (self, divisor)
        return Box(self.y0 // divisor, self.y1 // divisor, self.x0 // divisor, self.x1 // divisor)

    def expanded(self, margin: int, height: int, width: int) -> "Box":
        return Box(
            max(0, self.y0 - margin),
            min(height, self.y1 + margin),
            max(0, self.x0 - margin),
            min(width, self.x1 + margin),
        )

    def intersect(self, other: "Box") -> "Box | None":
        box = Box(max(self.y0, other.y0), min(self.y1, other.y1), max(self.x0, other.x0), min(self.x1, other.x1))
        return box if box.height > 0 and box.width > 0 else None

    def relative_to(self, origin: "Box") -> "Box":
        return Box(self.y0 - origin.y0, self.y1 - origin.y0, self.x0 - origin.x0, self.x1 - origin.x0)

    def aligned_out(self, align: int, height: int, width: int) -> "Box":
        """Grow to multiples of ``align`` (``height``/``width`` are multiples of it too)."""
        return Box(
            self.y0 // align * align,
            min(height, -(-self.y1 // align) * align),
            self.x0 // align * align,
            min(width, -(-self.x1 // align) * align),
        )


def tiles_in(area: Box, tile: int, align: int) -> Iterator[Box]:
    """Split ``area`` into tiles of at most ``tile`` pixels whose inner edges are multiples of ``align``."""
    step = max(align, tile // align * align)
    for y in range(area.y0, area.y1, step):
        for x in range(area.x0, area.x1, step):
            yield Box(y, min(y + step, area.y1), x, min(x + step, area.x1))


def _axis_segments(a0: int, a1: int, step: int, margin: int, limit: int, align: int) -> list[tuple[int, int, int, int]]:
    """Split [a0, a1) into as many tiles as ``step`` gives, each as (tile start, tile end,
    context start, context end), the contexts all of one length, spread evenly over the context
    available in [0, limit), and overlapping by at least 2 * ``margin`` so each tile keeps a
    margin inside its context (at the image's edges the tile reaches its context's edge).
    Everything is a multiple of ``align`` (so are a0, a1, margin and limit)."""
    count = -(-(a1 - a0) // step)
    e0, e1 = max(0, a0 - margin), min(limit, a1 + margin)
    if count <= 1:
        return [(a0, a1, e0, e1)]
    span = e1 - e0
    length = -(-(span + 2 * margin * (count - 1)) // (count * align)) * align
    while length < span:
        starts = [e0 + (i * (span - length) // (count - 1)) // align * align for i in range(count)]
        if all(starts[i] + length - starts[i + 1] >= 2 * margin for i in range(count - 1)):
            break
        length += align
    if length >= span:  # margins as wide as the tiles: every tile's context is all there is
        cuts = [*range(a0, a1, step), a1]
        return [(cuts[i], cuts[i + 1], e0, e1) for i in range(count)]
    bounds = [a0]
    for i in range(count - 1):
        overlap = starts[i] + length - starts[i + 1]
        bounds.append(starts[i + 1] + overlap // (2 * align) * align)
    bounds.append(a1)
    return [(bounds[i], bounds[i + 1], starts[i], starts[i] + length) for i in range(count)]


def fixed_shape_contexts(
    area: Box, tile: int, align: int, margin: int, height: int, width: int
) -> Iterator[tuple[Box, Box]]:
    """(tile, context) pairs covering ``area`` in as many tiles as ``tiles_in`` makes, every
    context of one shape (``_axis_segments``: the available context spread evenly instead of
    tiles of ``tile`` and a smaller last one, clipped contexts at the edges). Why: a 24 MP
    decode's edge and last tiles had shapes of their own, and glibc's heap grew by a few hundred
    MB of holes no later tile fitted (500-540 MB free in the heap against ~310 MB in use; a
    24 MP CLI decode peaked at 966-1,042 MB, now 650-780 MB). The work is the same within a few rows; the output is
    unchanged (each tile keeps at least ``margin`` of context, the receptive field)."""
    step = max(align, tile // align * align)
    rows = _axis_segments(area.y0, area.y1, step, margin, height, align)
    cols = _axis_segments(area.x0, area.x1, step, margin, width, align)
    for y0, y1, cy0, cy1 in rows:
        for x0, x1, cx0, cx1 in cols:
            if y1 > y0 and x1 > x0:  # margins far wider than the tiles can leave a tile nothing to own
                yield Box(y0, y1, x0, x1), Box(cy0, cy1, cx0, cx1)


def check_cancel(cancelled: CancelFn) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled()
