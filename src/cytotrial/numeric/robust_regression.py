"""Robust (Huber) regression lines shared by compensation (AutoSpill) and gating (singlets)."""

from __future__ import annotations

import numpy as np

from .quantiles import median

HUBER_K = 1.345
"""Huber's tuning constant: 95 % efficiency for normal errors."""


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


