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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _component_log_terms(covariances, weights, k, d):  # pragma: no cover - compiled by numba
    """Per component: the inverse covariance (d <= 2, packed as a, b, c of [[a, b], [b, c]]) and
    log weight - log det / 2 - d log(2 pi) / 2."""
    inverse = np.zeros((k, 3))
    constant = np.empty(k)
    for j in range(k):
        if d == 1:
            variance = covariances[j, 0, 0]
            inverse[j, 0] = 1.0 / variance
            log_det = np.log(variance)
        else:
            a, b, c = covariances[j, 0, 0], covariances[j, 0, 1], covariances[j, 1, 1]
            det = a * c - b * b
            inverse[j, 0], inverse[j, 1], inverse[j, 2] = c / det, -b / det, a / det
            log_det = np.log(det)
        constant[j] = np.log(weights[j]) - 0.5 * log_det - 0.5 * d * np.log(2 * np.pi)
    return inverse, constant


@numba.njit(cache=True, nogil=True, error_model="numpy")
def mixture_log_densities(points, weights, means, covariances):  # pragma: no cover - compiled by numba
    """log(weight_j N(point; mean_j, covariance_j)) of every point (n, d <= 2) and component, shape (n, k)."""
    n, d = points.shape
    k = weights.size
    inverse, constant = _component_log_terms(covariances, weights, k, d)
    out = np.empty((n, k))
    for i in range(n):
        for j in range(k):
            dx = points[i, 0] - means[j, 0]
            if d == 1:
                distance = dx * dx * inverse[j, 0]
            else:
                dy = points[i, 1] - means[j, 1]
                distance = dx * dx * inverse[j, 0] + 2 * dx * dy * inverse[j, 1] + dy * dy * inverse[j, 2]
            out[i, j] = constant[j] - 0.5 * distance
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def binned_gaussian_em(centers, counts, weights, means, covariances, extra_variance, min_variance, max_iterations,
                       tolerance):  # pragma: no cover - compiled by numba
    """EM of a Gaussian mixture (d <= 2 dimensions) on binned events: bin centres (m, d) holding counts (m,).

    ``extra_variance`` (d,) is added to each component's variances in every M step (Sheppard's correction for
    the bin width, width^2 / 12); variances never fall below ``min_variance``. Stops when the log-likelihood
    gains less than ``tolerance`` x its size. Updates weights, means and covariances in place; returns the
    log-likelihood (of the bin centres) and the number of iterations.
    """
    m, d = centers.shape
    k = weights.size
    total = counts.sum()
    responsibilities = np.empty((m, k))
    previous = -np.inf
    log_likelihood = -np.inf
    iteration = 0
    for iteration in range(max_iterations):
        log_densities = mixture_log_densities(centers, weights, means, covariances)
        log_likelihood = 0.0
        for i in range(m):
            top = log_densities[i, 0]
            for j in range(1, k):
                top = max(top, log_densities[i, j])
            total_density = 0.0
            for j in range(k):
                responsibilities[i, j] = np.exp(log_densities[i, j] - top)
                total_density += responsibilities[i, j]
            for j in range(k):
                responsibilities[i, j] = responsibilities[i, j] / total_density * counts[i]
            log_likelihood += counts[i] * (top + np.log(total_density))
        if abs(log_likelihood - previous) <= tolerance * abs(log_likelihood):
            break
        previous = log_likelihood
        for j in range(k):
            mass = 0.0
            for i in range(m):
                mass += responsibilities[i, j]
            mass = max(mass, 1e-9)
            weights[j] = max(mass / total, 1e-12)
            for a in range(d):
                s = 0.0
                for i in range(m):
                    s += responsibilities[i, j] * centers[i, a]
                means[j, a] = s / mass
            for a in range(d):
                for b in range(a, d):
                    s = 0.0
                    for i in range(m):
                        s += responsibilities[i, j] * (centers[i, a] - means[j, a]) * (centers[i, b] - means[j, b])
                    covariances[j, a, b] = s / mass
                    covariances[j, b, a] = covariances[j, a, b]
                covariances[j, a, a] = max(covariances[j, a, a] + extra_variance[a], min_variance[a])
            if d == 2:  # keep the covariance positive definite
                limit = 0.999 * np.sqrt(covariances[j, 0, 0] * covariances[j, 1, 1])
                covariances[j, 0, 1] = min(max(covariances[j, 0, 1], -limit), limit)
                covariances[j, 1, 0] = covariances[j, 0, 1]
        weight_sum = weights.sum()
        for j in range(k):
            weights[j] /= weight_sum
    return log_likelihood, iteration + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def in_polygon(x, y, vertices):  # pragma: no cover - compiled by numba
    """Points (x, y) inside a polygon by GatingML 2.0's winding rules, as :func:`cytotrial.gating.static.in_polygon`
    (an edge counts from its lower end inclusive to its upper end exclusive; odd winding count = inside; points
    outside the bounding box or NaN are outside)."""
    n = x.size
    v = vertices.shape[0]
    x_low, x_high = vertices[:, 0].min(), vertices[:, 0].max()
    y_low, y_high = vertices[:, 1].min(), vertices[:, 1].max()
    inside = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        px, py = np.float64(x[i]), np.float64(y[i])
        if not (px >= x_low and px <= x_high and py >= y_low and py <= y_high):
            continue
        count = 0
        for e in range(v):
            ax, ay = vertices[e, 0], vertices[e, 1]
            bx, by = vertices[(e + 1) % v, 0], vertices[(e + 1) % v, 1]
            is_left = (bx - ax) * (py - ay) - (px - ax) * (by - ay)
            if ay <= py:
                if py < by and is_left > 0:
                    count += 1
            elif by <= py and is_left < 0:
                count -= 1
        inside[i] = count % 2 != 0
    return inside


@numba.njit(cache=True, nogil=True, error_model="numpy")
def weighted_kmeans(points, weights, means, iterations):  # pragma: no cover - compiled by numba
    """Lloyd's k-means of weighted points (m, d) from starting ``means`` (k, d), updated in place; returns the
    index of each point's nearest mean (after the last update)."""
    m, d = points.shape
    k = means.shape[0]
    nearest = np.zeros(m, dtype=np.int64)
    for iteration in range(iterations + 1):
        for i in range(m):
            best = np.inf
            for j in range(k):
                distance = 0.0
                for a in range(d):
                    distance += (points[i, a] - means[j, a]) ** 2
                if distance < best:
                    best = distance
                    nearest[i] = j
        if iteration == iterations:
            break
        sums = np.zeros((k, d))
        mass = np.zeros(k)
        for i in range(m):
            mass[nearest[i]] += weights[i]
            for a in range(d):
                sums[nearest[i], a] += weights[i] * points[i, a]
        for j in range(k):
            if mass[j] > 0:
                for a in range(d):
                    means[j, a] = sums[j, a] / mass[j]
    return nearest
