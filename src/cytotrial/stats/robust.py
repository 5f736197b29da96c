"""Robust regression shared by compensation (AutoSpill) and gating (singlets)."""

from __future__ import annotations

import numpy as np

HUBER_K = 1.345
"""Huber's tuning constant: 95 % efficiency for normal errors."""


def quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of ``x`` (n >= 1) with linear interpolation between order statistics, as numpy's default.

    One copy, partitioned in place at the highest position first and then its prefix at each lower one (numpy's
    partition with several positions at once costs ~2.7x one); the order statistic after each position is the
    minimum of the values up to the previous position.
    """
    work = np.array(x, copy=True)
    order: dict[int, float] = {}
    upper = x.size  # work[:upper] holds the upper smallest values, work[upper:] the larger ones
    for position in sorted({int(np.floor(q * (x.size - 1))) for q in qs}, reverse=True):
        work[:upper].partition(position)
        order[position] = float(work[position])
        if position + 1 < upper:
            order[position + 1] = float(work[position + 1:upper].min())
        elif position + 1 < x.size:
            order[position + 1] = float(work[position + 1])
        upper = position
    out = []
    for q in qs:
        virtual = q * (x.size - 1)
        below = int(np.floor(virtual))
        a, b, gamma = order[below], order[min(below + 1, x.size - 1)], virtual - below
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


