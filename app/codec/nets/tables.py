"""Quantization tables: the standard libjpeg tables, quality scaling and zig-zag order.

All tables in the codec are 64 values in natural row-major order; ``ZIGZAG[i]`` is the
natural index of the i-th coefficient in JPEG's zig-zag scan (the DQT order in files).
"""
import numpy as np

ZIGZAG = np.array(
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ]
)  # fmt: skip

# ITU-T T.81 Annex K tables (natural order), the base of libjpeg's quality scaling.
STANDARD_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ]
)  # fmt: skip
STANDARD_CHROMA = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    ]
)  # fmt: skip


def quality_scale(quality: float) -> float:
    """libjpeg's percentage scale factor for a quality in 1..100."""
    quality = min(max(quality, 1.0), 100.0)
    return 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality


def standard_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(luma, chroma) tables exactly as libjpeg builds them for ``quality`` (baseline, 1..255)."""
    scale = quality_scale(quality)
    tables = []
    for base in (STANDARD_LUMA, STANDARD_CHROMA):
        q = np.floor((base * scale + 50.0) / 100.0)
        tables.append(np.clip(q, 1, 255).astype(np.int64))
    return tables[0], tables[1]
