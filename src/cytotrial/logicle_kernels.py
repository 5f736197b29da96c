"""Compiled (numba) kernels of :mod:`cytotrial.logicle`.

``logicle_roots``
    flowutils' C ``logicle_scale`` (Moore & Parks 2012: parameter set-up with the RTSAFE solve for d, the
    16-term Taylor series near data zero, Halley iteration), the same floating-point operations in the same
    order, so the same doubles (tests/test_logicle.py compares them bit for bit). Used to sample the table,
    ~1.4x faster than the C extension, which is called through a Python wrapper that copies its input.
``interval_polynomials``
    The fit of the table's per-interval polynomials to those samples.
``tabulated_logicle``
    The table look-up and Horner evaluation of :class:`cytotrial.logicle.FastLogicle`.

Compiled on first use and cached next to this file (``cache=True``), so later processes load the machine code.
No fast-math (numba then neither contracts multiply-add pairs nor reorders operations) and numpy's error model
(division by zero gives inf or NaN, as in C, instead of raising).
"""

from __future__ import annotations

import math

import numba
import numpy as np

TAYLOR_LENGTH = 16
DBL_EPSILON = 2.220446049250313e-16
NOT_CONVERGED = -1.0  # what flowutils returns where its iteration does not converge


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
def logicle_roots(values, t, w_decades, m, a_decades):  # pragma: no cover - compiled by numba
    """flowutils' logicle of every value of a 1-D float64 array (a new array)."""
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

    out = np.empty(values.size)
    for j in range(values.size):
        value = values[j]
        if value == 0:
            out[j] = x1
            continue
        negative = value < 0
        if negative:
            value = -value
        if value < f:  # quasi-linear region: linear first guess
            x = x1 + value / taylor[0]
        else:
            x = math.log(value / a) / b
        tolerance = 3 * DBL_EPSILON
        if x > 1:
            tolerance = 3 * x * DBL_EPSILON
        result = NOT_CONVERGED
        for _ in range(40):
            ae2bx = a * math.exp(b * x)
            ce2mdx = c / math.exp(d * x)
            if x < x_taylor:  # Taylor series around x1
                dx = x - x1
                total = taylor[TAYLOR_LENGTH - 1] * dx
                for i in range(TAYLOR_LENGTH - 2, 1, -1):
                    total = (total + taylor[i]) * dx
                y = (total * dx + taylor[0]) * dx - value
            else:
                y = (ae2bx + f) - (ce2mdx + value)
            abe2bx = b * ae2bx
            cde2mdx = d * ce2mdx
            dy = abe2bx + cde2mdx
            ddy = b * abe2bx - d * cde2mdx
            delta = y / (dy * (1 - y * ddy / (2 * dy * dy)))  # Halley's method
            x -= delta
            if abs(delta) < tolerance:
                result = 2 * x1 - x if negative else x
                break
        out[j] = result
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
def tabulated_logicle(values, out, coefficients, lowest_bits, index_shift, left_end_mask, interval_count,
                      two_zero_position, pending):  # pragma: no cover - compiled by numba
    """Table look-up and Horner evaluation of every value of ``values`` into ``out`` (1-D, any strides; float32
    output is the float64 result rounded to nearest).

    ``coefficients`` is (intervals, degree + 1), power k of (|x| - left end of the interval) in column k. Values
    outside the table (zeros, non-finite, too small or too large) are not written: their indices go to
    ``pending`` and their number is returned.
    """
    degree = coefficients.shape[1] - 1
    as_float = np.empty(1, dtype=np.float64)  # bit casts through a one-element buffer
    as_bits = as_float.view(np.int64)
    n_pending = 0
    for i in range(values.size):
        x = values[i]
        magnitude = abs(x)
        as_float[0] = magnitude
        bits = as_bits[0]
        index = (bits - lowest_bits) >> index_shift
        if index < 0 or index >= interval_count:  # below the table (incl. 0), above it (incl. inf), NaN
            pending[n_pending] = i
            n_pending += 1
            continue
        as_bits[0] = bits & left_end_mask
        distance = magnitude - as_float[0]  # exact: same octave
        accumulator = coefficients[index, degree]
        for power in range(degree - 1, -1, -1):
            accumulator = accumulator * distance + coefficients[index, power]
        # negative x reflected as flowutils does it: 2 x1 - y(|x|)
        out[i] = -accumulator + two_zero_position if x < 0 else accumulator + 0.0
    return n_pending
