"""EXIF orientation as a QTransform, so pixels stay in stored coordinates and Qt turns them.

Keeping items in stored coordinates means a later reconstructed tile (decoded in stored
coordinates) can be placed next to the preview without being rotated first.
"""

from __future__ import annotations

from PySide6.QtGui import QTransform


def orientation_transform(width: int, height: int, orientation: int) -> QTransform:
    """Maps a stored ``width`` x ``height`` rectangle onto its displayed rectangle at the origin.

    QTransform(m11, m12, m21, m22, dx, dy) maps (x, y) to (m11 x + m21 y + dx, m12 x + m22 y + dy).
    """
    w, h = float(width), float(height)
    matrices = {
        2: (-1, 0, 0, 1, w, 0),  # mirrored left-right
        3: (-1, 0, 0, -1, w, h),  # turned 180 degrees
        4: (1, 0, 0, -1, 0, h),  # mirrored top-bottom
        5: (0, 1, 1, 0, 0, 0),  # transposed
        6: (0, 1, -1, 0, h, 0),  # turned 90 degrees clockwise
        7: (0, -1, -1, 0, h, w),  # transversed
        8: (0, -1, 1, 0, 0, w),  # turned 90 degrees anticlockwise
    }
    if orientation not in matrices:
        return QTransform()
    return QTransform(*matrices[orientation])
