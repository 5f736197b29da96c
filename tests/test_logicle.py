"""cytotrial.preprocess.logicle.FastLogicle against flowkit's LogicleTransform (flowutils' C logicle).

Every parameter set is checked on ~200,000 values: normal clouds around 0 (sd 1, 30, 300), around a few hundred
and tens of thousands, log-normal positives, negatives down to -1.5 T, values up to 1.5 T, magnitudes spread
log-uniformly over 1e-3 .. 1e13 with both signs, float32-rounded copies, exact zeros, and fixed special values
(+/-0, NaN, +/-inf, tiny, 10 T, 1e12, 1e15 .. 1.8e308, the table's edges and their neighbouring doubles).
"""

from __future__ import annotations

import numpy as np
import pytest
import flowkit as fk
from flowutils import logicle_c

from cytotrial.preprocess import logicle as logicle_module
from cytotrial.preprocess.logicle import FastLogicle

MAX_ABS_DIFFERENCE = 1e-10
# Values allowed to differ after casting both results to float32 (per parameter set of ~200,000 values); the
# expected number is 0, as the float64 results differ by a few units in the last place.
MAX_FLOAT32_MISMATCHES = 2

# (t, w, m, a)
PARAMETER_SETS = [
    (262144.0, 0.0, 4.5, 0.0),
    (262144.0, 1e-4, 4.5, 0.0),
    (262144.0, 0.05, 4.5, 0.0),
    (262144.0, 0.25, 4.5, 0.0),
    (262144.0, 0.5, 4.5, 0.0),
    (262144.0, 0.87, 4.5, 0.0),
    (262144.0, 1.0, 4.5, 0.0),
    (262144.0, 1.5, 4.5, 0.0),
    (262144.0, 2.0, 4.5, 0.0),
    (262144.0, 2.2, 4.5, 0.0),
    (262144.0, 0.0, 4.5, 0.5),
    (262144.0, 0.5, 4.5, 1.0),
    (262144.0, 1.2, 4.5, 2.0),
    (262144.0, 0.0, 4.5, 2.0),
    (262144.0, 0.7, 4.0, 0.0),
    (262144.0, 0.9, 5.0, 0.3),
    (1e4, 0.0, 4.0, 0.0),
    (1e4, 0.5, 4.0, 0.0),
    (1e4, 1.5, 4.0, 1.0),
    (1e6, 0.0, 5.0, 0.0),
    (1e6, 0.8, 5.0, 0.0),
    (1e6, 2.2, 5.0, 0.5),
    (1024.0, 0.5, 3.0, 0.0),
    (4194304.0, 1.0, 6.0, 0.0),
]


def flowkit_logicle(values: np.ndarray, t: float, w: float, m: float, a: float) -> np.ndarray:
    """The reference: flowkit's LogicleTransform on a single-column event matrix."""
    transform = fk.transforms.LogicleTransform(param_t=t, param_w=w, param_m=m, param_a=a)
    return transform.apply(values.reshape(-1, 1)).ravel()


def special_values(t: float, fast: FastLogicle) -> np.ndarray:
    """Fixed edge cases: signed zeros, non-finite, tiny and huge values, table edges and their neighbours."""
    fixed = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 5e-324, 1e-300, 1e-12, 1e-9, 1e-6, 1e-3, 1.0,
             t, 10 * t, 1e12, 1e15, 1e20, 1e100, 1e200, 1e300, np.finfo(float).max]
    edges = []
    for edge in (fast.lowest_tabulated, fast.highest_tabulated):
        edges += [np.nextafter(edge, 0.0), edge, np.nextafter(edge, np.inf)]
    positive = np.array(fixed + edges)
    return np.concatenate([positive, -positive])


def random_values(t: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Compensated-data-like mixture plus values spread over many decades, shuffled."""
    k = n // 10
    parts = [
        rng.normal(0.0, 1.0, k // 2),
        rng.normal(0.0, 30.0, k),
        rng.normal(0.0, 300.0, k),
        rng.normal(300.0, 150.0, k),
        rng.normal(3e4, 1.5e4, k),
        np.exp(rng.normal(np.log(3e3), 1.5, k)),
        rng.uniform(-1.5 * t, 0.0, k // 2),
        rng.uniform(0.0, 1.5 * t, k // 2),
        rng.choice([-1.0, 1.0], k) * np.exp(rng.uniform(np.log(1e-3), np.log(1e13), k)),
        np.zeros(k // 20),
    ]
    values = np.concatenate(parts)
    as_float32 = rng.random(values.size) < 0.2  # FCS list-mode data are often float32
    values[as_float32] = values[as_float32].astype(np.float32)
    values = np.concatenate([values, rng.normal(0.0, 100.0, n - values.size)])
    rng.shuffle(values)
    return values


def compensated_values(n: int, rng: np.random.Generator) -> np.ndarray:
    """Typical compensated fluorescence: 35 % spread around 0 (sd 60), 65 % positives ~1e2 .. 1e5."""
    near_zero = rng.random(n) < 0.35
    return np.where(near_zero, rng.normal(0.0, 60.0, n), np.exp(rng.normal(np.log(3e3), 1.4, n)))


@pytest.mark.parametrize(("t", "w", "m", "a"), PARAMETER_SETS)
def test_matches_flowkit(t, w, m, a):
    rng = np.random.default_rng([int(t), int(w * 1000), int(m * 10), int(a * 10)])
    fast = FastLogicle(t, w, m, a)
    values = np.concatenate([random_values(t, 200_003, rng), special_values(t, fast)])

    result = fast.apply(values)
    reference = flowkit_logicle(values, t, w, m, a)

    assert result.dtype == np.float64 and result.shape == values.shape
    assert np.isfinite(reference).all(), "flowutils returns -1, never NaN, for non-finite input"
    assert np.isfinite(result).all()
    # Values flowutils computes itself (zeros, non-finite, outside the table) must be identical.
    magnitude = np.abs(values)
    outside = ~((magnitude >= fast.lowest_tabulated) & (magnitude < fast.highest_tabulated))
    assert outside.sum() >= 30
    np.testing.assert_array_equal(result[outside], reference[outside])
    assert (result[values == 0] == fast.zero_position).all()
    assert (result[~np.isfinite(values)] == -1.0).all()

    difference = np.abs(result - reference)
    assert difference.max() <= MAX_ABS_DIFFERENCE, (
        f"max |fast - flowkit| = {difference.max():.3g} at x = {values[difference.argmax()]!r}")
    float32_mismatches = np.count_nonzero(result.astype(np.float32) != reference.astype(np.float32))
    assert float32_mismatches <= MAX_FLOAT32_MISMATCHES


@pytest.mark.parametrize(("t", "w", "m", "a"), [(262144.0, 0.5, 4.5, 0.0), (262144.0, 0.0, 4.5, 0.0),
                                                (1e6, 1.5, 5.0, 1.0)])
def test_realistic_values_use_the_table(monkeypatch, t, w, m, a):
    """Only zeros' neighbours, out-of-table and non-finite values reach flowutils at apply time."""
    fast = FastLogicle(t, w, m, a)
    assert fast.highest_tabulated >= 4 * t  # compensated values rarely exceed a few T
    assert fast.lowest_tabulated <= (0.1 if w == 0 and a == 0 else t * 2.0**-23)
    passed_to_flowutils = []

    def counting_reference(values, *args):
        passed_to_flowutils.append(values.size)
        return flowkit_logicle(values, *args)

    monkeypatch.setattr(logicle_module, "_reference_logicle", counting_reference)
    rng = np.random.default_rng(7)
    values = compensated_values(100_000, rng)
    values[:5] = [np.nan, np.inf, -np.inf, 1e14, -1e-9]
    magnitude = np.abs(values)
    expected = np.count_nonzero((values != 0) & ~((magnitude >= fast.lowest_tabulated)
                                                  & (magnitude < fast.highest_tabulated)))
    result = fast.apply(values)
    assert sum(passed_to_flowutils) == expected
    assert expected < 0.001 * values.size
    np.testing.assert_allclose(result, flowkit_logicle(values, t, w, m, a), rtol=0, atol=MAX_ABS_DIFFERENCE)


def test_tiny_values_with_w_zero_keep_flowutils_answer():
    """flowutils does not converge for |x| below ~1e-14 T when w = 0 and returns -1; so does FastLogicle."""
    values = np.array([1e-300, 1e-12, -1e-10, 5e-324, 0.0, -0.0])
    fast = FastLogicle(262144.0, 0.0, 4.5, 0.0)
    reference = flowkit_logicle(values, 262144.0, 0.0, 4.5, 0.0)
    assert (reference[:4] == -1.0).all()
    np.testing.assert_array_equal(fast.apply(values), reference)


def test_shapes_and_dtypes():
    fast = FastLogicle(262144.0, 0.5, 4.5, 0.0)
    rng = np.random.default_rng(3)
    matrix = rng.normal(100.0, 500.0, (3000, 4))
    expected = flowkit_logicle(matrix.ravel(), 262144.0, 0.5, 4.5, 0.0).reshape(matrix.shape)
    np.testing.assert_allclose(fast.apply(matrix), expected, rtol=0, atol=MAX_ABS_DIFFERENCE)
    column = matrix[:, 1]  # non-contiguous
    np.testing.assert_allclose(fast.apply(column), expected[:, 1], rtol=0, atol=MAX_ABS_DIFFERENCE)
    as_float32 = column.astype(np.float32)
    result = fast.apply(as_float32)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, flowkit_logicle(as_float32.astype(np.float64), 262144.0, 0.5, 4.5, 0.0),
                               rtol=0, atol=MAX_ABS_DIFFERENCE)
    assert fast.apply(np.empty(0)).shape == (0,)
    single = fast.apply(np.array([250.0]))
    assert single.shape == (1,) and abs(single[0] - flowkit_logicle(np.array([250.0]), 262144.0, 0.5, 4.5, 0.0)[0]) \
        <= MAX_ABS_DIFFERENCE
    original = column.copy()
    fast.apply(column)
    np.testing.assert_array_equal(column, original)


def test_does_not_copy_flowutils_non_convergence_inside_the_table():
    """flowutils returns -1 for a ~1e-14-wide band of x around B(x1 + w/4) (where its Taylor series and the
    closed form of the biexponential disagree in the last bits) when w is large, e.g. w = 2.2, m = 4.5.
    FastLogicle returns the logicle value there, continuous with flowutils' values next to the band."""
    t, w, m, a = 262144.0, 2.2, 4.5, 0.0
    w_scaled = w / (m + a)
    taylor_switch = a / (m + a) + w_scaled + w_scaled / 4
    switch_value = np.array([taylor_switch])
    logicle_c.logicle_inverse(t, w, m, a, switch_value)
    values = np.linspace(switch_value[0] * (1 - 1e-12), switch_value[0] * (1 + 1e-12), 20_001)
    reference = flowkit_logicle(values, t, w, m, a)
    failed = reference == -1.0
    if not failed.any():
        pytest.skip("flowutils converges everywhere here (changed upstream?): nothing to check")
    result = FastLogicle(t, w, m, a).apply(values)
    np.testing.assert_allclose(result[~failed], reference[~failed], rtol=0, atol=MAX_ABS_DIFFERENCE)
    expected = np.interp(values[failed], values[~failed], reference[~failed])
    np.testing.assert_allclose(result[failed], expected, rtol=0, atol=1e-12)


def test_table_build_is_deterministic():
    first, second = FastLogicle(1e4, 0.5, 4.0, 0.0), FastLogicle(1e4, 0.5, 4.0, 0.0)
    values = np.random.default_rng(1).normal(50.0, 400.0, 50_000)
    np.testing.assert_array_equal(first.apply(values), second.apply(values))


@pytest.mark.parametrize(("t", "m"), [(0.0, 4.5), (-1.0, 4.5), (262144.0, 0.0), (np.inf, 4.5)])
def test_rejects_invalid_parameters(t, m):
    with pytest.raises(ValueError):
        FastLogicle(t, 0.5, m, 0.0)


def test_apply_into_writes_strided_float32_columns():
    """apply_into on columns of an event block gives apply's values rounded to float32, in place."""
    fast = FastLogicle(262144.0, 0.5, 4.5, 0.0)
    block = np.random.default_rng(5).normal(300.0, 2000.0, (5000, 6))
    block[::97, 2] = 0.0
    block[3, 2], block[4, 2] = 1e9, np.nan  # outside the table
    out = np.full((5000, 6), -7.0, dtype=np.float32)
    fast.apply_into(block[:, 2], out[:, 2])
    np.testing.assert_array_equal(out[:, 2], fast.apply(block[:, 2]).astype(np.float32))
    assert (out[:, [0, 1, 3, 4, 5]] == -7.0).all()
    with pytest.raises(ValueError, match="1-D float64"):
        fast.apply_into(block[:, 2].astype(np.float32), out[:, 2])

