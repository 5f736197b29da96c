"""Compiled (numba) loops of the data-driven gates: one pass over a parent's events where numpy needs several
(and a copy for each).

All take the values of one dimension (float32 or float64, any strides) and accumulate in float64. They are
deterministic: plain sequential loops, no threads, no fast-math. Compiled on first use and cached next to this
file (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def finite_values(values):  # pragma: no cover - compiled by numba
    """The finite values, in their order and dtype."""
    out = np.empty(values.size, dtype=values.dtype)
    n = 0
    for i in range(values.size):
        v = values[i]
        if np.isfinite(v):
            out[n] = v
            n += 1
    return out[:n]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def mean_sd_range(x):  # pragma: no cover - compiled by numba
    """Mean, population SD (two passes, float64), min and max of values (n >= 1)."""
    n = x.size
    mean = 0.0
    low = np.inf
    high = -np.inf
    for i in range(n):
        value = np.float64(x[i])
        mean += value
        low = min(low, value)
        high = max(high, value)
    mean /= n
    squares = 0.0
    for i in range(n):
        squares += (np.float64(x[i]) - mean) ** 2
    return mean, np.sqrt(squares / n), low, high


@numba.njit(cache=True, nogil=True, error_model="numpy")
def histogram_counts(x, edges):  # pragma: no cover - compiled by numba
    """Counts of ``x`` in the equal bins ``edges`` (every value within them), as numpy.histogram counts them:
    bin from the scaled distance to the first edge, corrected by comparing with the edges; last bin closed."""
    bins = edges.size - 1
    first = edges[0]
    width = edges[bins] - first
    counts = np.zeros(bins, dtype=np.int64)
    for i in range(x.size):
        index = int((x[i] - first) / width * bins)
        if index >= bins:
            index = bins - 1
        if x[i] < edges[index]:
            index -= 1
        elif index < bins - 1 and x[i] >= edges[index + 1]:
            index += 1
        counts[index] += 1
    return counts


@numba.njit(cache=True, nogil=True, error_model="numpy")
def mean_shift_mode(x, start, width, steps):  # pragma: no cover - compiled by numba
    """Mean shift from ``start``: the mean of the values within +/- ``width``, repeated until it settles."""
    mode = start
    for _ in range(steps):
        total = 0.0
        count = 0
        for i in range(x.size):
            if abs(x[i] - mode) <= width:
                total += x[i]
                count += 1
        if count == 0:
            break
        new = total / count
        if abs(new - mode) < 1e-6 * max(width, 1e-12):
            return new
        mode = new
    return mode


@numba.njit(cache=True, nogil=True, error_model="numpy")
def inner_distances(x, mode, upper):  # pragma: no cover - compiled by numba
    """|x - mode| of the values on one side of the mode (those <= mode for an upper tail, >= mode for a lower
    one), float64, in their order."""
    distances = np.empty(x.size)
    n = 0
    for i in range(x.size):
        if (x[i] <= mode) if upper else (x[i] >= mode):
            distances[n] = abs(np.float64(x[i]) - mode)
            n += 1
    return distances[:n]
