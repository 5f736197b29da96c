"""The compiled loops of the data-driven gates against the numpy expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from cytotrial.gating import kernels
from cytotrial.gating.cuts import GRID_POINTS, _quantiles


def _values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0.3, 0.05, n // 2), rng.normal(0.7, 0.08, n - n // 2)]).astype(np.float32)
    values[::101] = np.round(values[::101], 2)  # ties
    return values


@pytest.mark.parametrize("n", [10, 11, 997, 100_000])
def test_histogram_counts_equal_numpy_histogram(n):
    x = _values(n, n)
    for low, high in [(float(x.min()), float(x.max())), (float(x.min()) - 0.013, float(x.max()) + 0.017)]:
        edges = np.linspace(low, high, GRID_POINTS + 1)
        # float64 edges (the kernel compares each float32 value, exactly converted, with them)
        expected, numpy_edges = np.histogram(x.astype(np.float64), bins=GRID_POINTS, range=(low, high))
        assert np.array_equal(edges, numpy_edges)
        assert np.array_equal(kernels.histogram_counts(x, edges), expected)
        # values on the edges themselves
        on_edges = edges.astype(np.float32).astype(np.float64)
        on_edges = on_edges[(on_edges >= low) & (on_edges <= high)]
        assert np.array_equal(kernels.histogram_counts(on_edges, edges),
                              np.histogram(on_edges, bins=GRID_POINTS, range=(low, high))[0])


def test_finite_values_mean_sd_range():
    x = _values(10_001, 3)
    x[[5, 50, 500]] = [np.nan, np.inf, -np.inf]
    finite = kernels.finite_values(x)
    assert finite.dtype == np.float32 and np.array_equal(finite, x[np.isfinite(x)])
    mean, sd, low, high = kernels.mean_sd_range(finite)
    exact = finite.astype(np.float64)
    assert mean == pytest.approx(exact.mean(), rel=1e-12) and sd == pytest.approx(exact.std(), rel=1e-12)
    assert (low, high) == (exact.min(), exact.max())


@pytest.mark.parametrize("n", [2, 3, 10, 1_001, 50_000])
def test_quantiles_equal_numpy_percentile(n):
    x = _values(n, n).astype(np.float64)
    q75, q25 = _quantiles(x, (0.75, 0.25))
    expected = np.percentile(x, [75, 25])
    assert q75 == pytest.approx(expected[0], rel=1e-15, abs=1e-15)
    assert q25 == pytest.approx(expected[1], rel=1e-15, abs=1e-15)


def test_mean_shift_and_half_spread_equal_their_numpy_forms():
    x = _values(20_000, 9).astype(np.float64)
    mode, width = 0.31, 0.04
    for _ in range(10):  # the numpy form of the mean shift
        new = float(x[np.abs(x - mode) <= width].mean())
        if abs(new - mode) < 1e-6 * width:
            mode = new
            break
        mode = new
    assert kernels.mean_shift_mode(x, 0.31, 0.04, 10) == pytest.approx(mode, rel=1e-12)
    inner = x[x <= mode]
    assert kernels.half_spread(x, mode, True) == pytest.approx(1.4826 * np.median(np.abs(inner - mode)), rel=1e-15)
    outer = x[x >= mode]
    assert kernels.half_spread(x, mode, False) == pytest.approx(1.4826 * np.median(np.abs(outer - mode)), rel=1e-15)
    assert kernels.half_spread(np.array([1.0, 2.0]), 0.5, True) == 0.0
