"""numpy RGB -> QImage. Call on the GUI thread: the result is turned into a QPixmap there."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def to_qimage(rgb: np.ndarray) -> QImage:
    """A uint8 HxWx3 array as a QImage that owns its own copy of the pixels."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 RGB, got {rgb.dtype} {rgb.shape}")
    pixels = np.ascontiguousarray(rgb)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def pixmap_of(rgb: np.ndarray, transform=None) -> QPixmap:
    """A uint8 HxWx3 array as a QPixmap for an sRGB display (``colour.for_display``'s transform).

    Without a colour transform the QImage only wraps ``rgb`` on its way into the pixmap, instead
    of copying it first: for a 64-megapixel preview that copy was 192 MB more at the peak."""
    if transform is not None and not transform.isIdentity():
        image = to_qimage(rgb)  # transformed in place: on a copy, never the caller's pixels
        image.applyColorTransform(transform)
        return QPixmap.fromImage(image)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 RGB, got {rgb.dtype} {rgb.shape}")
    pixels = np.ascontiguousarray(rgb)
    height, width = pixels.shape[:2]
    view = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)  # borrows ``pixels``
    return QPixmap.fromImage(view)  # copies them (``pixels`` is alive until this returns)
