"""Distortion metrics on uint8 RGB images, in numpy.

PSNR on RGB is what rate-distortion papers report; PSNR and SSIM on luma (BT.601 JFIF, the
weights JPEG itself uses) show whether the gains are in detail people see. SSIM follows Wang et
al. (2004): Gaussian window 11, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, averaged over the
positions where the whole window fits (no padding).
"""

import math

import numpy as np

PEAK = 255.0
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # JFIF Y, as app.codec.nets.color
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all pixels and channels (inf for identical images)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK**2 / mse)


def luma(rgb: np.ndarray) -> np.ndarray:
    """JFIF luma Y (0..255, float, not rounded) of an HxWx3 RGB image."""
    return np.asarray(rgb, np.float64) @ LUMA_WEIGHTS


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(luma(a), luma(b))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1-D Gaussian taps summing to 1; the 2-D window is its outer product."""
    x = np.arange(size) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma**2))
    return taps / taps.sum()


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering, 'valid' positions only (a loop over taps keeps memory flat)."""
    n = len(taps)
    rows = image.shape[0] - n + 1
    vertical = sum(t * image[k : k + rows] for k, t in enumerate(taps))
    cols = image.shape[1] - n + 1
    return sum(t * vertical[:, k : k + cols] for k, t in enumerate(taps))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two single-channel images on the 0..255 scale."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or min(x.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs equal shapes of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {x.shape}, {y.shape}")
    # float32 halves the time on 6K images. Each image is centred on its own mean first, so the
    # variances are differences of small numbers, not of values near 255^2 (exact on flat images).
    mean_x, mean_y = x.mean(), y.mean()
    xc, yc = (x - mean_x).astype(np.float32), (y - mean_y).astype(np.float32)
    taps = gaussian_window().astype(np.float32)
    mu_xc, mu_yc = _filter_valid(xc, taps), _filter_valid(yc, taps)
    var_x = _filter_valid(xc * xc, taps) - mu_xc**2
    var_y = _filter_valid(yc * yc, taps) - mu_yc**2
    cov = _filter_valid(xc * yc, taps) - mu_xc * mu_yc
    mu_x, mu_y = mu_xc + np.float32(mean_x), mu_yc + np.float32(mean_y)
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(index.mean(dtype=np.float64))


def ssim_y(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM on the JFIF luma of two RGB images."""
    return ssim(luma(a), luma(b))
