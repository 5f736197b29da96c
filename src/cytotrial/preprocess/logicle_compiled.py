"""Compiled (numba) kernels of :mod:`cytotrial.preprocess.logicle`.

``interval_polynomials``
    The fit of the table's per-interval polynomials to flowutils' logicle values at sample points.
``tabulated_logicle``
    The table look-up and Horner evaluation of :class:`cytotrial.preprocess.logicle.FastLogicle`.

Compiled on first use and cached next to this file (``cache=True``). No fast-math, and numpy's error model
(division by zero gives inf or NaN, as in C, instead of raising).
"""

from __future__ import annotations

import numba
import numpy as np

POLYNOMIAL_DEGREE = 6  # of the table's per-interval polynomials (see cytotrial.preprocess.logicle)
SIGN_CLEARED = 0x7FFFFFFFFFFFFFFF  # float64 bits AND this: the bits of |x|


@numba.njit(cache=True, nogil=True, error_model="numpy")
def interval_polynomials(y, sample_s, widths, vandermonde_inverse, binomials):  # pragma: no cover - numba
    """Per interval, the polynomial through the samples ``y[i]`` (at ``sample_s`` in [-1, 1] around the interval's
    middle) as coefficients of powers of d = |x| - left end of the interval: (intervals, degree + 1).

    A straight line is taken out first (so the solve with the inverse Vandermonde matrix works on tiny numbers and
    adds no rounding error of note), then the polynomial in s is re-expanded around s = -1 (Taylor shift,
    ``binomials[k, j]`` = C(k, j) (-1)**(k - j)) and scaled to d = (s + 1) width / 2.
    """
    intervals, points = y.shape
    out = np.empty((intervals, points))
    residual = np.empty(points)
    centred = np.empty(points)
    for i in range(intervals):
        line_at_0 = 0.0
        for j in range(points):
            line_at_0 += y[i, j]
        line_at_0 /= points
        line_slope = (y[i, points - 1] - y[i, 0]) / (sample_s[points - 1] - sample_s[0])
        for j in range(points):
            residual[j] = y[i, j] - (line_at_0 + line_slope * sample_s[j])
        for k in range(points):
            total = 0.0
            for j in range(points):
                total += vandermonde_inverse[k, j] * residual[j]
            centred[k] = total
        centred[0] += line_at_0
        centred[1] += line_slope
        factor = 2.0 / widths[i]
        power = 1.0
        for j in range(points):
            shifted = 0.0
            for k in range(j, points):
                shifted += binomials[k, j] * centred[k]
            out[i, j] = shifted * power
            power *= factor
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def tabulated_logicle(values, bits, out, table, lowest_bits, index_shift, interval_count, two_zero_position,
                      pending):  # pragma: no cover - compiled by numba
    """Table look-up and Horner evaluation of every value of ``values`` into ``out`` (1-D, any strides; float32
    output is the float64 result rounded to nearest).

    ``bits`` is ``values`` viewed as int64 (the interval of |x| is its bit pattern, sign bit cleared, minus that of
    the table's lowest value, shifted right). ``table`` is (intervals, POLYNOMIAL_DEGREE + 2): the coefficient of
    power k of d = |x| - left end of the interval in column k, the left end in the last column (one 64-byte row
    per interval). The degree is a compile-time constant, so the Horner loop is unrolled (a loop over a run-time
    degree costs ~2x). Values outside the table (zeros, non-finite, too small or too large) are not written:
    their indices go to ``pending`` and their number is returned.
    """
    n_pending = 0
    for i in range(values.size):
        x = values[i]
        index = ((bits[i] & SIGN_CLEARED) - lowest_bits) >> index_shift
        if index < 0 or index >= interval_count:  # below the table (incl. 0), above it (incl. inf), NaN
            pending[n_pending] = i
            n_pending += 1
            continue
        row = table[index]
        distance = abs(x) - row[POLYNOMIAL_DEGREE + 1]  # exact: same octave
        accumulator = row[POLYNOMIAL_DEGREE]
        for power in range(POLYNOMIAL_DEGREE - 1, -1, -1):
            accumulator = accumulator * distance + row[power]
        # negative x reflected as flowutils does it: 2 x1 - y(|x|)
        out[i] = -accumulator + two_zero_position if x < 0 else accumulator + 0.0
    return n_pending
