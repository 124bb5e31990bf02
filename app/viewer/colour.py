"""Colour management for display: pixels with an embedded ICC profile are shown converted to sRGB.

A photo from a wide-gamut camera or an edited Display P3 / Adobe RGB file stores numbers that
mean other colours than the same numbers in sRGB; shown raw they look washed out or garish. The
codec keeps the pixels as stored and carries the profile (a HyperThumbnail keeps its source's),
so the view converts every picture it draws (the preview and each reconstructed tile) with the
one transform made for the document. The display is taken to be sRGB, as browsers do by default.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QColorSpace, QColorTransform, QImage

SRGB = QColorSpace(QColorSpace.NamedColorSpace.SRgb)


def display_transform(icc_profile: bytes | None) -> QColorTransform | None:
    """The transform from the profile's colours to sRGB; None when there is nothing to convert
    (no profile, an sRGB one, or one Qt cannot use: the pixels are then shown as stored)."""
    if not icc_profile or icc_profile[16:20] != b"RGB ":  # a grey or CMYK profile does not describe RGB pixels
        return None
    space = QColorSpace.fromIccProfile(QByteArray(icc_profile))
    if not space.isValid() or space == SRGB:
        return None
    return space.transformationToColorSpace(SRGB)


def for_display(image: QImage, transform: QColorTransform | None) -> QImage:
    """``image`` (uint8 RGB, the profile's colours) converted in place for an sRGB display."""
    if transform is not None and not transform.isIdentity():
        image.applyColorTransform(transform)
    return image
