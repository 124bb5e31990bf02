"""Bjontegaard delta PSNR: how many dB one rate-distortion curve lies above another.

Each curve's PSNR is fitted as a polynomial (cubic, or of degree points - 1 when there are
fewer than 4 points) of log10(bpp); both fits are averaged over the log-bpp interval the curves
share, and the difference of the averages is the delta. A positive value means the test curve
gives more PSNR at the same rate. One number summarises a whole curve, which is why codec papers
report it; it is only meaningful where the curves overlap, so no overlap gives None.
"""

import math
from collections.abc import Sequence

import numpy as np

MAX_DEGREE = 3


def _log_rates(bpp: Sequence[float]) -> np.ndarray:
    return np.log10(np.asarray(bpp, np.float64))


# How far outside every PSNR a curve has its fitted mean may lie before the fit counts as a swing
SWING_DB = 3.0


def _mean_of_fit(log_rate: np.ndarray, psnr: np.ndarray, lo: float, hi: float) -> float:
    """Mean over [lo, hi] of the polynomial fitted to (log_rate, psnr).

    Two points of nearly the same rate and different PSNR (seen: a smooth photo whose LOW and
    MEDIUM files differ by 8 bytes and 3 dB) make the fit swing far outside the data, once to a
    "BD" of +569 dB. A mean more than ``SWING_DB`` outside every PSNR the curve has is such a
    swing, not a fit: then the mean of the points' piecewise-linear curve over [lo, hi] is used
    instead. Any other curve keeps the classic cubic BD's value."""
    degree = min(MAX_DEGREE, len(log_rate) - 1)
    antiderivative = np.polyint(np.polyfit(log_rate, psnr, degree))
    fitted = float((np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo)) / (hi - lo))
    if psnr.min() - SWING_DB <= fitted <= psnr.max() + SWING_DB:
        return fitted
    order = np.argsort(log_rate)
    x, y = log_rate[order], psnr[order]
    knots = np.concatenate([[lo], x[(x > lo) & (x < hi)], [hi]])
    values = np.interp(knots, x, y)
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(knots)) / (hi - lo))


def _usable(bpp: Sequence[float], psnr: Sequence[float]) -> bool:
    values = [*bpp, *psnr]
    return len(bpp) >= 2 and len(bpp) == len(psnr) and all(math.isfinite(v) for v in values) and min(bpp) > 0


def bd_psnr(
    anchor_bpp: Sequence[float],
    anchor_psnr: Sequence[float],
    test_bpp: Sequence[float],
    test_psnr: Sequence[float],
    within: tuple[float, float] | None = None,
) -> float | None:
    """Mean PSNR gain (dB) of the test curve over the anchor on their common bpp range.

    ``within`` (bpp_low, bpp_high) narrows that range further, e.g. to the rates a codec's
    presets cover. None when the curves have fewer than 2 usable points or do not overlap.
    """
    if not (_usable(anchor_bpp, anchor_psnr) and _usable(test_bpp, test_psnr)):
        return None
    anchor_log, test_log = _log_rates(anchor_bpp), _log_rates(test_bpp)
    lo = max(anchor_log.min(), test_log.min())
    hi = min(anchor_log.max(), test_log.max())
    if within is not None:
        lo, hi = max(lo, math.log10(within[0])), min(hi, math.log10(within[1]))
    if not hi > lo:
        return None
    anchor_mean = _mean_of_fit(anchor_log, np.asarray(anchor_psnr, np.float64), lo, hi)
    test_mean = _mean_of_fit(test_log, np.asarray(test_psnr, np.float64), lo, hi)
    return test_mean - anchor_mean
