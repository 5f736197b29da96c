"""Compiled (numba) order statistics for :func:`cytotrial.numeric.quantiles.quantiles`.

``order_statistics(x, ranks)`` returns the values that sorting ``x`` would put at ``ranks``, exactly (the same
doubles as ``np.sort(x)[ranks]``): the values are counted into equal-width bins between their minimum and
maximum, the bin holding each rank is found from the cumulative counts, and only the values of those bins are
collected and sorted. A bin's index, floor((v - min) x bins / (max - min)), never decreases as v grows, so the
k-th smallest value lies in the bin where the cumulative count passes k; a bin that still holds many values is
binned again on its own range. Written here because numpy partitions once per rank; this takes about three
passes for all ranks. Compiled on first use and cached next to this file (``cache=True``). NaN sorts last.
"""

from __future__ import annotations

import numba
import numpy as np

BINS = 4096
SORT_AT_MOST = 256  # a bin with at most this many values is sorted, a larger one is binned again


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bin_index(value, low, scale):  # pragma: no cover - compiled by numba
    index = int((value - low) * scale)
    return BINS - 1 if index >= BINS else index


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kth_smallest(values, k):  # pragma: no cover - compiled by numba
    """The k-th smallest (0-based) of a float64 array (which it may reorder)."""
    while values.size > SORT_AT_MOST:
        low = values.min()
        high = values.max()
        width = high - low
        if width == 0:
            return low
        if not np.isfinite(width):  # values spanning more than the float64 range: sort them
            break
        scale = BINS / width
        counts = np.zeros(BINS, dtype=np.int64)
        for i in range(values.size):
            counts[_bin_index(values[i], low, scale)] += 1
        target = 0
        while k >= counts[target]:
            k -= counts[target]
            target += 1
        inside = np.empty(counts[target])
        n = 0
        for i in range(values.size):
            if _bin_index(values[i], low, scale) == target:
                inside[n] = values[i]
                n += 1
        values = inside
    values.sort()
    return values[k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def order_statistics(x, ranks):  # pragma: no cover - compiled by numba
    """The ``ranks[j]``-th smallest values (0-based, ranks ascending and < x.size) of a 1-D float array (any
    dtype and strides), as float64: ``np.sort(x)[ranks]`` (NaN sorted last, as numpy does)."""
    out = np.empty(ranks.size)
    low = np.inf
    high = -np.inf
    has_nan = False
    for i in range(x.size):
        value = np.float64(x[i])
        if value < low:
            low = value
        if value > high:
            high = value
        has_nan |= np.isnan(value)
    width = high - low
    if width == 0 and not has_nan:
        out[:] = low
        return out
    if has_nan or not np.isfinite(width):
        ordered = np.sort(x.astype(np.float64))
        for j in range(ranks.size):
            out[j] = ordered[ranks[j]]
        return out
    scale = BINS / width
    counts = np.zeros(BINS, dtype=np.int64)
    for i in range(x.size):
        counts[_bin_index(np.float64(x[i]), low, scale)] += 1
    # the bin of each rank and the rank within it (ranks ascending: one sweep of the cumulative counts)
    rank_bin = np.empty(ranks.size, dtype=np.int64)
    rank_within = np.empty(ranks.size, dtype=np.int64)
    target = 0
    before = 0
    for j in range(ranks.size):
        while ranks[j] - before >= counts[target]:
            before += counts[target]
            target += 1
        rank_bin[j] = target
        rank_within[j] = ranks[j] - before
    # the values of those bins, collected in one pass: bin -> its segment of ``collected``
    segment_start = np.full(BINS, -1, dtype=np.int64)
    total = 0
    for j in range(ranks.size):
        if segment_start[rank_bin[j]] < 0:
            segment_start[rank_bin[j]] = total
            total += counts[rank_bin[j]]
    collected = np.empty(total)
    filled = np.zeros(BINS, dtype=np.int64)
    for i in range(x.size):
        value = np.float64(x[i])
        b = _bin_index(value, low, scale)
        if segment_start[b] >= 0:
            collected[segment_start[b] + filled[b]] = value
            filled[b] += 1
    for j in range(ranks.size):
        start = segment_start[rank_bin[j]]
        segment = collected[start:start + counts[rank_bin[j]]].copy()
        out[j] = _kth_smallest(segment, rank_within[j])
    return out
