"""The photos an evaluation runs on: which files, and the optional centre crop.

A centre crop (``--crop N``) makes an evaluation fast enough to run often; it keeps sizes that
the codec's geometry handles exactly (multiples of 32, or of 4 for smaller photos).
"""

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
CROP_MULTIPLE = 32
SMALL_MULTIPLE = 4


def find_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    files = (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(files, key=lambda p: p.name)


def crop_side(requested: int) -> int:
    """``--crop N`` rounded down to a multiple of 32."""
    return requested - requested % CROP_MULTIPLE


def centre_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` of a photo; a dimension shorter than ``side`` is kept
    whole, trimmed to a multiple of 4."""
    height, width = rgb.shape[:2]
    crop_h = side if height >= side else height - height % SMALL_MULTIPLE
    crop_w = side if width >= side else width - width % SMALL_MULTIPLE
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return np.ascontiguousarray(rgb[top : top + crop_h, left : left + crop_w])
