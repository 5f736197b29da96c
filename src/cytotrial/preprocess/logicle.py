"""Fast logicle transform: the numbers of flowkit's ``LogicleTransform.apply``, from a precomputed table.

``FastLogicle(t, w, m, a).apply(x)`` returns what flowkit's ``LogicleTransform`` returns (flowutils' C
``logicle_scale``), from a table of flowutils' own values evaluated by a compiled loop
(:mod:`cytotrial.preprocess.logicle_compiled`); what it computes, how, and how closely: :class:`FastLogicle`.
Written here because flowutils solves every value by iteration; benchmarks/logicle_speed.py compares the two.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import flowutils

from .logicle_compiled import POLYNOMIAL_DEGREE, interval_polynomials, tabulated_logicle

__all__ = ["FastLogicle"]

# Table layout: intervals per octave of |x| (a power of two), polynomial degree (logicle_compiled.POLYNOMIAL_DEGREE,
# a compile-time constant of the look-up), and the octave range relative to t. With 32 / 6 the interpolation error
# (~5e-17 where y is log-like) is below flowutils' own rounding.
INTERVALS_PER_OCTAVE = 32
OCTAVES_BELOW_T = 24
OCTAVES_ABOVE_T = 2
# Octaves with logicle values below this are left to flowutils (only when x1 = (w + a) / (m + a) is below it, i.e.
# w = a = 0 or tiny): there flowutils' result is accurate to ~1e-17 absolute, not relative, which a table cannot
# reproduce to the float32 bit.
SMALLEST_TABULATED_OUTPUT = 1e-4

_MANTISSA_BITS = 52


def _reference_logicle(values: np.ndarray, t: float, w: float, m: float, a: float) -> np.ndarray:
    """flowutils' logicle of a 1-D float64 array (the numbers flowkit's LogicleTransform returns)."""
    return flowutils.transforms.logicle(np.ascontiguousarray(values, dtype=np.float64), None, t=t, m=m, w=w, a=a)


def _chebyshev_points(degree: int) -> np.ndarray:
    """The degree + 1 Chebyshev points of the first kind on [-1, 1], ascending."""
    k = np.arange(degree + 1)
    return -np.cos((2 * k + 1) * np.pi / (2 * degree + 2))


@functools.cache
def _fit_constants(degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What every table's fit uses, computed once a process: the sample points s (Chebyshev, in [-1, 1] around
    an interval's middle), the inverse of their Vandermonde matrix, and the Taylor-shift binomials
    C(k, j) (-1)**(k - j) that re-expand a polynomial in s around s = -1 (read-only arrays)."""
    sample_s = _chebyshev_points(degree)
    vandermonde_inverse = np.linalg.inv(np.vander(sample_s, degree + 1, increasing=True))
    binomials = np.array([[math.comb(k, j) * (-1) ** (k - j) if j <= k else 0 for j in range(degree + 1)]
                          for k in range(degree + 1)], dtype=np.float64)
    for constant in (sample_s, vandermonde_inverse, binomials):
        constant.flags.writeable = False
    return sample_s, vandermonde_inverse, binomials


class FastLogicle:
    """Logicle transform with flowkit's ``LogicleTransform`` parameters, evaluated from a precomputed table.

    Parameters
    ----------
    t
        Top of the linear scale (e.g. 262144); maps to 1.
    w
        Width of the linearisation region in decades (may be 0).
    m
        Number of decades of the full scale.
    a
        Additional negative decades.

    Attributes
    ----------
    zero_position
        Logicle value of data zero, x1 = (w + a) / (m + a) as flowutils computes it.
    lowest_tabulated, highest_tabulated
        |x| range served from the table: [lowest_tabulated, highest_tabulated). Other non-zero values (and
        non-finite ones) are computed by flowutils.

    Notes
    -----
    See the module docstring for the method and the measured accuracy.

    What it computes
    ----------------
    ``FastLogicle(t, w, m, a).apply(x)`` returns what
    ``flowkit.transforms.LogicleTransform(param_t=t, param_w=w, param_m=m, param_a=a).apply(x.reshape(-1, 1)).ravel()``
    returns, i.e. flowutils' C ``logicle_scale``: the root y of the biexponential B(y) = x (Moore & Parks 2012) on the
    logicle scale, where 0 maps to x1 = (w + a) / (m + a), t maps to 1, larger values to y > 1, and negative values
    are reflected, y(-x) = 2 x1 - y(x). flowutils returns -1 where its iteration does not converge: NaN, +/-inf,
    |x| >~ 1e160, and with w = 0 tiny |x| (below ~1e-14 t).

    How
    ---
    y(|x|) is tabulated once per parameter set on a grid that is uniform within each power of two ("octave") of |x|,
    32 intervals per octave, so that a value's interval is its float64 bit pattern shifted right (no logarithm, no
    search). Each interval holds a degree-6 polynomial in (|x| - left end of the interval) interpolating y at 7
    Chebyshev points, whose values are flowutils' own (its C ``logicle_scale``; 6,048 values a table). ``apply`` /
    ``apply_into`` run one compiled loop (``logicle_compiled.tabulated_logicle``): the bits of |x| minus those of
    the table's lowest value, shifted right, give the interval; its row of the table (64 bytes: the 7 coefficients
    and the interval's left end) gives
    d = |x| - left end and the polynomial by Horner's rule (unrolled: the degree is a compile-time constant), then the
    reflection 2 x1 - y for negatives, written as flowutils rounds it. Values outside the table -- |x| below
    2**(floor(log2 t) - 24) (0.0156 for t = 262144) or at/above 2**(floor(log2 t) + 3) (2.1e6, 8 t), and NaN/inf --
    are computed by flowutils, exact zeros give x1; so all of those are identical to flowutils (they are rare in
    compensated data: |x| < 0.0156 is ~1e-4 of the values). When w = a = 0 the octaves where y < 1e-4
    (|x| < 0.0625 for t = 262144, m = 4.5) are left to flowutils as well: there its result is accurate to ~1e-17
    absolute only, noise a table cannot reproduce in float32 terms.

    Accuracy
    --------
    tests/test_logicle.py (24 parameter sets, t 1024 .. 4194304, m 3 .. 6, w 0 .. 2.2, a 0 .. 2; 4.8 million
    values from -1.5 t to 1e13 plus edge cases): max |FastLogicle - flowkit| <= 1.8e-15 (4 units in the last place
    of |y| ~ 2.3), 0 values differ after casting both to float32. Against the exact root (40-digit decimal, t =
    262144, w = 0.5) FastLogicle is within 9.5e-16 and flowutils within 3.4e-16: the difference between the two is
    mostly flowutils' own rounding, which the table inherits from its samples.

    Where FastLogicle differs from flowutils: flowutils also returns -1 for some finite values inside the table, where
    its Halley iteration switches between its Taylor series and the closed form of B, which disagree in the last bits.
    With m <= 5 this happens only within ~1e-14 (relative) of |x| = B(x1 + w/4) and only for large w (seen at
    w = 2.2, m = 4.5: |x| = 20436.6059...; not at w <= 2 with m = 4.5). For w close to m/2 with larger m (m = 5
    with w ~ m/2, m = 6 with w >= 0.9 m/2, m = 7 with w >= 0.8 m/2) it also happens sporadically, for up to ~1e-3
    of the values with |x| between 1 and 3 times that. FastLogicle returns the logicle value there (continuous with
    its neighbours), not -1.
    """

    def __init__(self, t: float, w: float, m: float, a: float) -> None:
        self.t, self.w, self.m, self.a = float(t), float(w), float(m), float(a)
        if not (self.t > 0 and self.m > 0 and math.isfinite(self.t) and math.isfinite(self.m)):
            raise ValueError(f"logicle needs finite t > 0 and m > 0, got t={t!r}, m={m!r}")
        # Same floating-point operations as flowutils' C initialisation, so zero maps to the identical double.
        self.zero_position = self.a / (self.m + self.a) + self.w / (self.m + self.a)
        self._degree = POLYNOMIAL_DEGREE
        self._index_shift = _MANTISSA_BITS - int(math.log2(INTERVALS_PER_OCTAVE))
        t_octave = math.frexp(self.t)[1] - 1  # t in [2**t_octave, 2**(t_octave + 1))
        lowest_octave = t_octave - OCTAVES_BELOW_T
        highest_octave = t_octave + 1 + OCTAVES_ABOVE_T
        lowest_octave, highest_octave = self._build_table(lowest_octave, highest_octave)
        self.lowest_tabulated = math.ldexp(1.0, lowest_octave)
        self.highest_tabulated = math.ldexp(1.0, highest_octave)
        self._lowest_bits = int(np.float64(self.lowest_tabulated).view(np.int64))
        self._interval_count = (highest_octave - lowest_octave) * INTERVALS_PER_OCTAVE
        # the look-up's table: a row per interval, the coefficients and then the interval's left end (its bits
        # are the interval index shifted left, added to those of the lowest value)
        left_end_bits = (np.arange(self._interval_count, dtype=np.int64) << self._index_shift) + self._lowest_bits
        self._table = np.zeros((max(self._interval_count, 1), self._degree + 2))
        self._table[:, :-1] = self._coefficients
        self._table[:self._interval_count, -1] = left_end_bits.view(np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(t={self.t!r}, w={self.w!r}, m={self.m!r}, a={self.a!r})"

    def _build_table(self, lowest_octave: int, highest_octave: int) -> tuple[int, int]:
        """Fit the per-interval polynomials; returns the octave range actually tabulated.

        Parameters
        ----------
        lowest_octave, highest_octave
            Requested range: |x| in [2**lowest_octave, 2**highest_octave).

        Returns
        -------
        tuple of int
            The tabulated range; narrower than requested where flowutils does not converge (returns -1) or
            gives y < SMALLEST_TABULATED_OUTPUT at the low end (w = 0, a = 0), so that those values keep
            flowutils' answer. Empty (equal ends) if flowutils fails around t itself.
        """
        degree = self._degree
        octaves = np.arange(lowest_octave, highest_octave)
        steps = np.arange(INTERVALS_PER_OCTAVE)
        # Left ends and widths of all intervals, ascending: 2**e * (1 + j / K), width 2**e / K (exact).
        octave_starts = np.ldexp(1.0, octaves)
        left_ends = (octave_starts[:, None] * (1.0 + steps / INTERVALS_PER_OCTAVE)).ravel()
        widths = np.repeat(octave_starts / INTERVALS_PER_OCTAVE, INTERVALS_PER_OCTAVE)
        # Sample y at Chebyshev points of each interval (s in (-1, 1) around the interval's middle).
        sample_s, vandermonde_inverse, binomials = _fit_constants(degree)
        middles = left_ends + widths / 2
        sample_values = middles[:, None] + (widths / 2)[:, None] * sample_s[None, :]
        # flowutils' values (-1 where its iteration does not converge)
        y = _reference_logicle(sample_values.ravel(), self.t, self.w, self.m, self.a).reshape(sample_values.shape)
        usable = np.isfinite(y) & (y >= SMALLEST_TABULATED_OUTPUT)
        octave_usable = usable.reshape(len(octaves), -1).all(axis=1)
        if not octave_usable.all():
            # Keep the run of usable octaves around T, with one more octave of margin at a failing end; if there
            # is none (parameters flowutils cannot handle), tabulate nothing and leave every value to flowutils.
            t_index = int(np.searchsorted(octaves, math.frexp(self.t)[1] - 1))
            failed = np.flatnonzero(~octave_usable)
            below, above = failed[failed <= t_index], failed[failed > t_index]
            first = int(below.max()) + 2 if below.size else 0
            stop = int(above.min()) - 1 if above.size else len(octaves)
            if not first <= t_index < stop:
                self._coefficients = np.zeros((1, degree + 1))
                return lowest_octave, lowest_octave
            keep = slice(first * INTERVALS_PER_OCTAVE, stop * INTERVALS_PER_OCTAVE)
            y, widths = y[keep], widths[keep]
            lowest_octave, highest_octave = int(octaves[first]), int(octaves[stop - 1]) + 1
        # Interpolate in s around the middle (after taking out a straight line), re-expand around the left end
        # (s = -1) and scale s = 2 (v - left) / width - 1 to d = v - left (widths are powers of two: exact).
        self._coefficients = interval_polynomials(np.ascontiguousarray(y), sample_s, np.ascontiguousarray(widths),
                                                  vandermonde_inverse, binomials)  # (intervals, degree + 1)
        return lowest_octave, highest_octave

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Logicle-transform values.

        Parameters
        ----------
        values
            Data values (any shape; converted to float64).

        Returns
        -------
        numpy.ndarray
            float64 array of the same shape: flowutils' logicle of each value.
        """
        data = np.ascontiguousarray(values, dtype=np.float64)
        result = np.empty_like(data)
        self.apply_into(data.reshape(-1), result.reshape(-1))
        return result

    def apply_into(self, values: np.ndarray, out: np.ndarray) -> None:
        """Logicle-transform a 1-D float64 array into ``out`` (1-D, float64 or float32, same length; either may
        be a strided view, e.g. a column of an event block). float32 output is the float64 result rounded to
        nearest, as ``astype(np.float32)``."""
        if values.dtype != np.float64 or values.ndim != 1 or out.ndim != 1 or values.shape != out.shape:
            raise ValueError("apply_into needs a 1-D float64 input and a 1-D output of the same length")
        pending = np.empty(values.size, dtype=np.int64)
        n_pending = tabulated_logicle(values, values.view(np.int64), out, self._table, self._lowest_bits,
                                       self._index_shift, self._interval_count, 2.0 * self.zero_position, pending)
        if n_pending:  # zeros, non-finite values and values outside the table
            rows = pending[:n_pending]
            outside_values = values[rows]
            outside_result = np.full(rows.size, self.zero_position)
            nonzero = outside_values != 0
            if nonzero.any():
                outside_result[nonzero] = _reference_logicle(outside_values[nonzero], self.t, self.w, self.m,
                                                             self.a)
            out[rows] = outside_result

