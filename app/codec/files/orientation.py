"""EXIF orientation (1..8) for numpy images and pixel rectangles.

Pixels are stored as the camera wrote them; the orientation says how to turn them for display.
The codec works in stored coordinates; outputs meant for people are turned for display.
"""

import numpy as np

from app.codec.files.tiling import Box

_SWAPS_AXES = {5, 6, 7, 8}


def display_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def to_display(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored HxWxC array as EXIF ``orientation`` says (a view where possible)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    return ops.get(orientation, ops[1])(image)


def _display_point(x: int, y: int, width: int, height: int, orientation: int) -> tuple[int, int]:
    """Stored pixel (x, y) in a width x height image -> displayed pixel."""
    w, h = width - 1, height - 1
    return {
        1: (x, y),
        2: (w - x, y),
        3: (w - x, h - y),
        4: (x, h - y),
        5: (y, x),
        6: (h - y, x),
        7: (h - y, w - x),
        8: (y, w - x),
    }.get(orientation, (x, y))


_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def display_box_to_stored(box: Box, width: int, height: int, orientation: int) -> Box:
    """A rectangle in displayed coordinates -> the same pixels in stored coordinates."""
    dw, dh = display_size(width, height, orientation)
    inverse = _INVERSE.get(orientation, 1)
    corners = [_display_point(x, y, dw, dh, inverse) for x, y in ((box.x0, box.y0), (box.x1 - 1, box.y1 - 1))]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return Box(min(ys), max(ys) + 1, min(xs), max(xs) + 1)
