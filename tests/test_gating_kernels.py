"""The compiled loops of the data-driven gates against the numpy expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from cytotrial.gating import compiled_fits
from cytotrial.numeric.order_statistics_compiled import order_statistics
from cytotrial.numeric.quantiles import COMPILED_FROM, quantiles


def _values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0.3, 0.05, n // 2), rng.normal(0.7, 0.08, n - n // 2)]).astype(np.float32)
    values[::101] = np.round(values[::101], 2)  # ties
    return values


@pytest.mark.parametrize("n", [2, 3, 10, 1_001, COMPILED_FROM - 1, COMPILED_FROM, 50_000])
def test_quantiles_equal_numpy_percentile(n):
    x = _values(n, n).astype(np.float64)
    q75, q25 = quantiles(x, (0.75, 0.25))
    expected = np.percentile(x, [75, 25])
    assert q75 == pytest.approx(expected[0], rel=1e-15, abs=1e-15)
    assert q25 == pytest.approx(expected[1], rel=1e-15, abs=1e-15)


def test_mean_shift_and_inner_distances_equal_their_numpy_forms():
    x = _values(20_000, 9).astype(np.float64)
    mode, width = 0.31, 0.04
    for _ in range(10):  # the numpy form of the mean shift
        new = float(x[np.abs(x - mode) <= width].mean())
        if abs(new - mode) < 1e-6 * width:
            mode = new
            break
        mode = new
    assert compiled_fits.mean_shift_mode(x, 0.31, 0.04, 10) == pytest.approx(mode, rel=1e-12)
    assert np.array_equal(compiled_fits.inner_distances(x, mode, True), np.abs(x[x <= mode] - mode))
    assert np.array_equal(compiled_fits.inner_distances(x, mode, False), np.abs(x[x >= mode] - mode))
    assert compiled_fits.inner_distances(np.array([1.0, 2.0]), 0.5, True).size == 0


@pytest.mark.parametrize("qs", [(0.75, 0.25), (0.5,), (0.0, 1.0), (0.25, 0.25, 0.9)])
@pytest.mark.parametrize("n", [1, 2, 5, 4_000])
def test_quantiles_from_nested_partitions(qs, n):
    x = np.random.default_rng(n).integers(0, 50, n).astype(np.float32)  # many ties
    expected = np.quantile(x.astype(np.float64), qs)
    np.testing.assert_allclose(quantiles(x, qs), expected, rtol=1e-15, atol=1e-15)


def _order_statistics_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    narrow = np.concatenate([np.full(30_000, 3.0), 3.0 + 1e-12 * rng.normal(size=30_000), rng.normal(size=500)])
    return {
        "normal": rng.normal(size=100_001),
        "float32 with ties": _values(60_000, 2),
        "point mass": np.concatenate([np.zeros(60_000), rng.normal(size=40_000)]),
        "narrow peak (binned again)": narrow,
        "integers": rng.integers(0, 5, 20_000).astype(np.float64),
        "all equal": np.full(5_000, -2.5),
        "beyond the float64 range": np.concatenate([[1e308, -1e308], rng.normal(size=9_998)]),
        "NaN": np.concatenate([[np.nan], rng.normal(size=9_999), [np.nan]]),
        "many decades": 10 ** rng.uniform(-300, 300, 20_000),
        "strided column": rng.normal(size=(10_000, 3))[:, 1],
    }


@pytest.mark.parametrize("case", list(_order_statistics_cases()))
def test_order_statistics_equal_sorting(case):
    """The compiled binning selection gives exactly the sorted values at the ranks asked for (NaN last)."""
    x = _order_statistics_cases()[case]
    rng = np.random.default_rng(len(case))
    picked = rng.integers(0, x.size - 1, 6)
    ranks = np.unique(np.concatenate([[0, 1, x.size // 2, x.size - 2, x.size - 1], picked, picked + 1]))
    expected = np.sort(x).astype(np.float64)[ranks]
    assert np.array_equal(order_statistics(x, ranks.astype(np.int64)), expected, equal_nan=True)
