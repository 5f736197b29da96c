"""Robust regression shared by compensation (AutoSpill) and gating (singlets)."""

from __future__ import annotations

import numpy as np

HUBER_K = 1.345
"""Huber's tuning constant: 95 % efficiency for normal errors."""


COMPILED_FROM = 4096  # quantiles of at least this many values use the compiled order statistics


def order_statistics(x: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The values that sorting ``x`` puts at ``ranks`` (ascending), float64: ``np.sort(x)[ranks]``.

    Large arrays use the compiled binning selection (:mod:`cytotrial.stats.kernels`, ~6x faster than numpy's
    partition at 100,000 values), imported here on first use (numba takes ~0.3 s to import); small ones are
    partitioned by numpy.
    """
    if x.size < COMPILED_FROM:
        return np.partition(x, ranks)[ranks].astype(np.float64)
    from .kernels import order_statistics as compiled_order_statistics

    return compiled_order_statistics(x, ranks)


def quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of ``x`` (n >= 1) with linear interpolation between order statistics, as numpy's default: the
    order statistics at floor(q (n - 1)) and the next rank, from one :func:`order_statistics` call for all ``qs``."""
    below = [int(np.floor(q * (x.size - 1))) for q in qs]
    ranks = np.array(sorted({r for b in below for r in (b, min(b + 1, x.size - 1))}), dtype=np.int64)
    order = dict(zip(ranks.tolist(), order_statistics(np.asarray(x), ranks).tolist()))
    out = []
    for q, rank_below in zip(qs, below):
        a, b = order[rank_below], order[min(rank_below + 1, x.size - 1)]
        gamma = q * (x.size - 1) - rank_below
        out.append(a + (b - a) * gamma if gamma < 0.5 else b - (b - a) * (1 - gamma))
    return out


def median(x: np.ndarray) -> float:
    """The median of ``x`` (n >= 1), as :func:`quantiles` computes it."""
    return quantiles(x, (0.5,))[0]


def robust_line(x: np.ndarray, y: np.ndarray, iterations: int = 50, tol: float = 1e-7) -> tuple[np.ndarray, ...]:
    """Huber M-estimate of y = intercept + slope * x for many y columns at once (IRLS, MAD scale).

    Parameters
    ----------
    x
        (n,) regressor.
    y
        (n, m) responses.

    Returns
    -------
    slope, intercept : ndarray, shape (m,)
    """
    x = x[:, None]
    weights = np.ones_like(y)
    slope = np.full(y.shape[1], np.inf)
    for _ in range(iterations):
        total = weights.sum(axis=0)
        mean_x = (weights * x).sum(axis=0) / total
        mean_y = (weights * y).sum(axis=0) / total
        dx = x - mean_x
        new_slope = (weights * dx * (y - mean_y)).sum(axis=0) / np.maximum((weights * dx * dx).sum(axis=0), 1e-300)
        intercept = mean_y - new_slope * mean_x
        residual = y - intercept - new_slope * x
        centre = np.array([median(column) for column in residual.T])
        scale = 1.4826 * np.array([median(column) for column in np.abs(residual - centre).T])
        scaled = np.abs(residual) / np.maximum(HUBER_K * scale, 1e-12)
        weights = np.where(scaled <= 1.0, 1.0, 1.0 / np.maximum(scaled, 1e-12))
        done = np.max(np.abs(new_slope - slope)) < tol
        slope = new_slope
        if done:
            break
    return slope, intercept


