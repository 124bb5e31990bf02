"""Rotate left/right as EXIF orientations: a turned view is the same document with another tag.

The view and the reconstruction already turn everything by ``ImageDocument.orientation`` (tiles
stay in stored coordinates), so rotating a photo on screen is giving them the document with the
orientation that shows it turned a quarter further: nothing is decoded again, cached tiles stay
valid. Saving the rotation writes that same tag into the file (``codec_bridge.write_orientation``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from app.viewer.codec_bridge import ImageDocument, to_display


def _clockwise_table() -> dict[int, int]:
    """orientation -> the orientation that shows the same stored pixels a quarter turn clockwise
    further (derived from ``to_display`` itself, so the two can never disagree)."""
    probe = np.arange(6).reshape(2, 3, 1)
    shown = {o: to_display(probe, o) for o in range(1, 9)}
    table = {}
    for o in range(1, 9):
        target = np.rot90(shown[o], -1)
        table[o] = next(p for p in range(1, 9) if shown[p].shape == target.shape and np.array_equal(shown[p], target))
    return table


CLOCKWISE = _clockwise_table()


def turned(orientation: int, quarter_turns: int) -> int:
    """``orientation`` turned by ``quarter_turns`` quarters clockwise (negative: anticlockwise)."""
    orientation = orientation if orientation in CLOCKWISE else 1
    for _ in range(quarter_turns % 4):
        orientation = CLOCKWISE[orientation]
    return orientation


def turned_document(document: ImageDocument, quarter_turns: int) -> ImageDocument:
    """The same document shown ``quarter_turns`` further clockwise (itself when that is 0)."""
    if quarter_turns % 4 == 0:
        return document
    return dataclasses.replace(document, orientation=turned(document.orientation, quarter_turns))
