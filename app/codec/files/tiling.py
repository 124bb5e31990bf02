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


def check_cancel(cancelled: CancelFn) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled()
