"""Compiled (numba) kernels of :mod:`cytotrial.preprocess.logicle`.

``logicle_roots``
    flowutils' C ``logicle_scale`` (Moore & Parks 2012), the same floating-point operations in the same order,
    so the same doubles (tests/test_logicle.py compares them bit for bit); samples the table. Four values are
    solved side by side (their Halley steps interleaved, each value's own steps unchanged).
``interval_polynomials``
    The fit of the table's per-interval polynomials to those samples.
``tabulated_logicle``
    The table look-up and Horner evaluation of :class:`cytotrial.preprocess.logicle.FastLogicle`.

Compiled on first use and cached next to this file (``cache=True``). No fast-math, and numpy's error model
(division by zero gives inf or NaN, as in C, instead of raising).
"""

from __future__ import annotations

import math

import numba
import numpy as np

TAYLOR_LENGTH = 16
POLYNOMIAL_DEGREE = 6  # of the table's per-interval polynomials (see cytotrial.preprocess.logicle)
SIGN_CLEARED = 0x7FFFFFFFFFFFFFFF  # float64 bits AND this: the bits of |x|
DBL_EPSILON = 2.220446049250313e-16
NOT_CONVERGED = -1.0  # what flowutils returns where its iteration does not converge
LANES = 4  # values solved side by side by logicle_roots


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _solve_d(b, w):  # pragma: no cover - compiled by numba
    """The logicle parameter d: root of 2 (ln d - ln b) + w (b + d) = 0 (RTSAFE, as flowutils' ``solve``)."""
    if w == 0:
        return b
    tolerance = 2 * b * DBL_EPSILON
    d_lo = 0.0
    d_hi = b
    d = (d_lo + d_hi) / 2
    last_delta = d_hi - d_lo
    f_b = -2 * math.log(b) + w * b
    f = 2 * math.log(d) + w * d + f_b
    last_f = math.nan
    for _ in range(1, 40):
        df = 2 / d + w
        if ((d - d_hi) * df - f) * ((d - d_lo) * df - f) >= 0 or abs(1.9 * f) > abs(last_delta * df):
            delta = (d_hi - d_lo) / 2
            d = d_lo + delta
            if d == d_lo:
                return d
        else:
            delta = f / df
            previous = d
            d -= delta
            if d == previous:
                return d
        if abs(delta) < tolerance:
            return d
        last_delta = delta
        f = 2 * math.log(d) + w * d + f_b
        if f == 0 or f == last_f:
            return d
        last_f = f
        if f < 0:
            d_lo = d
        else:
            d_hi = d
    return NOT_CONVERGED


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _logicle_constants(t, w_decades, m, a_decades):  # pragma: no cover - compiled by numba
    """flowutils' set-up of the biexponential B(y) = a e^(by) - c e^(-dy) + f: (x1, a, b, c, d, f, x_taylor,
    taylor), the Taylor series of B around x1 used below x_taylor."""
    w = w_decades / (m + a_decades)
    x2 = a_decades / (m + a_decades)
    x1 = x2 + w
    x0 = x2 + 2 * w
    b = (m + a_decades) * math.log(10.0)
    d = _solve_d(b, w)
    c_a = math.exp(x0 * (b + d))
    mf_a = math.exp(b * x1) - c_a / math.exp(d * x1)
    a = t / ((math.exp(b) - mf_a) - c_a / math.exp(d))
    c = c_a * a
    f = -mf_a * a
    x_taylor = x1 + w / 4
    taylor = np.empty(TAYLOR_LENGTH)
    positive_coefficient = a * math.exp(b * x1)
    negative_coefficient = -c / math.exp(d * x1)
    for i in range(TAYLOR_LENGTH):
        positive_coefficient *= b / (i + 1)
        negative_coefficient *= -d / (i + 1)
        taylor[i] = positive_coefficient + negative_coefficient
    taylor[1] = 0.0  # exact result of the logicle condition
    return x1, a, b, c, d, f, x_taylor, taylor


@numba.njit(cache=True, nogil=True, error_model="numpy")
def logicle_roots(values, t, w_decades, m, a_decades):  # pragma: no cover - compiled by numba
    """flowutils' logicle of every value of a 1-D float64 array (a new array).

    The values are solved LANES at a time, one Halley step of each in turn, so that the processor overlaps their
    independent chains of exp and division (~1.5x faster than one value after the other); each value still takes
    flowutils' own steps, from its first guess until its own step is below tolerance or after 40 steps.
    """
    x1, a, b, c, d, f, x_taylor, taylor = _logicle_constants(t, w_decades, m, a_decades)
    out = np.empty(values.size)
    x = np.empty(LANES)  # per lane: current root, |value|, tolerance, reflected, still iterating
    target = np.empty(LANES)
    tolerance = np.empty(LANES)
    negative = np.zeros(LANES, dtype=np.bool_)
    active = np.zeros(LANES, dtype=np.bool_)
    for first in range(0, values.size, LANES):
        for lane in range(LANES):
            j = first + lane
            active[lane] = False
            if j >= values.size:
                continue
            value = values[j]
            if value == 0:
                out[j] = x1
                continue
            negative[lane] = value < 0
            if negative[lane]:
                value = -value
            if value < f:  # quasi-linear region: linear first guess
                guess = x1 + value / taylor[0]
            else:
                guess = math.log(value / a) / b
            x[lane] = guess
            target[lane] = value
            tolerance[lane] = 3 * guess * DBL_EPSILON if guess > 1 else 3 * DBL_EPSILON
            active[lane] = True
            out[j] = NOT_CONVERGED
        for _ in range(40):
            iterating = False
            for lane in range(LANES):
                if not active[lane]:
                    continue
                root = x[lane]
                ae2bx = a * math.exp(b * root)
                ce2mdx = c / math.exp(d * root)
                if root < x_taylor:  # Taylor series around x1
                    dx = root - x1
                    total = taylor[TAYLOR_LENGTH - 1] * dx
                    for i in range(TAYLOR_LENGTH - 2, 1, -1):
                        total = (total + taylor[i]) * dx
                    y = (total * dx + taylor[0]) * dx - target[lane]
                else:
                    y = (ae2bx + f) - (ce2mdx + target[lane])
                abe2bx = b * ae2bx
                cde2mdx = d * ce2mdx
                dy = abe2bx + cde2mdx
                ddy = b * abe2bx - d * cde2mdx
                delta = y / (dy * (1 - y * ddy / (2 * dy * dy)))  # Halley's method
                root -= delta
                x[lane] = root
                if abs(delta) < tolerance[lane]:
                    out[first + lane] = 2 * x1 - root if negative[lane] else root
                    active[lane] = False
                else:
                    iterating = True
            if not iterating:
                break
    return out


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
