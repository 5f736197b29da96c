"""Quantiles and medians from exact order statistics (numpy's default linear interpolation), shared by gating
(cut search, mixture start) and robust regression; large arrays use the compiled selection in
:mod:`cytotrial.numeric.order_statistics_compiled`."""

from __future__ import annotations

import numpy as np

COMPILED_FROM = 4096  # quantiles of at least this many values use the compiled order statistics


def order_statistics(x: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The values that sorting ``x`` puts at ``ranks`` (ascending), float64: ``np.sort(x)[ranks]``.

    Large arrays use the compiled binning selection (:mod:`cytotrial.numeric.order_statistics_compiled`), imported
    here on first use so that jobs which never need it do not import numba; small ones are partitioned by numpy.
    """
    if x.size < COMPILED_FROM:
        return np.partition(x, ranks)[ranks].astype(np.float64)
    from .order_statistics_compiled import order_statistics as compiled_order_statistics

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
