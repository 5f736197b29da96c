"""Gaussian mixtures of a parent's events in one or two dimensions, for gates where populations overlap.

As openCyto's flowClust gates: the number of components is chosen by BIC, each component is named by the
population target it lies nearest to, and a population is where its components' posterior is the largest.
Written by hand because the fit runs on a histogram of the events (at most 40 x 40 bins, EM compiled in
:mod:`cytotrial.gating.compiled_fits`), whatever the number of events; scikit-learn's GaussianMixture fits every
event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..numeric.quantiles import quantiles
from .cuts import TooFewEventsError

BINS = {1: 256, 2: 40}  # bins per dimension of the histogram the mixture is fitted on
TAIL_QUANTILE = 0.001  # events beyond these quantiles (each side, each dimension) are left out of the fit
MAX_ITERATIONS = 200
TOLERANCE = 2e-5
KMEANS_ITERATIONS = 3


def _compiled_fits():
    from . import compiled_fits

    return compiled_fits


@dataclass(frozen=True)
class Mixture:
    """A fitted Gaussian mixture: k components in d dimensions (gating units)."""

    weights: np.ndarray  # (k,)
    means: np.ndarray  # (k, d)
    covariances: np.ndarray  # (k, d, d)
    log_likelihood: float
    n_events: int

    @property
    def k(self) -> int:
        return self.weights.size

    @property
    def bic(self) -> float:
        """Bayesian information criterion, -2 log L + parameters x log n (lower is better)."""
        d = self.means.shape[1]
        parameters = (self.k - 1) + self.k * d + self.k * d * (d + 1) // 2
        return -2 * self.log_likelihood + parameters * np.log(self.n_events)

    def log_densities(self, points: np.ndarray) -> np.ndarray:
        """(n, k) log(weight x density) of each component at each point (n, d)."""
        return _compiled_fits().mixture_log_densities(np.ascontiguousarray(points, dtype=np.float64), self.weights,
                                                self.means, self.covariances)


@dataclass(frozen=True)
class Histogram:
    """Events binned on an even grid: the centres of the non-empty bins, their counts and the bin widths."""

    centers: np.ndarray  # (m, d)
    counts: np.ndarray  # (m,)
    widths: np.ndarray  # (d,)
    grid_counts: np.ndarray  # the full grid of counts (bins per dimension, d times)
    edges: list[np.ndarray]


def bin_events(values: np.ndarray, bins: int | None = None) -> Histogram:
    """Histogram of (n, d) values between their ``TAIL_QUANTILE`` quantiles (outer events left out)."""
    values = np.asarray(values, dtype=np.float64)
    n, d = values.shape
    bins = bins or BINS[d]
    bounds = np.array([quantiles(values[:, j], (TAIL_QUANTILE, 1 - TAIL_QUANTILE)) for j in range(d)])
    span = np.maximum(bounds[:, 1] - bounds[:, 0], 1e-6)
    low, width = bounds[:, 0] - 0.02 * span, 1.04 * span / bins
    index = np.floor((values - low) / width).astype(np.int64)
    inside = ((index >= 0) & (index < bins)).all(axis=1)
    flat = np.zeros(int(inside.sum()), dtype=np.int64)
    for j in range(d):
        flat = flat * bins + index[inside, j]
    grid = np.bincount(flat, minlength=bins ** d).reshape((bins,) * d).astype(np.float64)
    filled = np.flatnonzero(grid.ravel())
    centers = np.column_stack([low[j] + (np.unravel_index(filled, grid.shape)[j] + 0.5) * width[j]
                               for j in range(d)])
    edges = [low[j] + width[j] * np.arange(bins + 1) for j in range(d)]
    return Histogram(centers, grid.ravel()[filled], width, grid, edges)


def seed_order(histogram: Histogram, k: int) -> np.ndarray:
    """Indices of k bins to start k-means from: the densest bin, then each time the bin that is dense and far
    from those chosen (count x squared distance, in units of the data's spread). The first j of them are the
    seeds for j components. Deterministic."""
    z = histogram.centers / (np.sqrt(weighted_covariance(histogram.centers, histogram.counts).diagonal()) + 1e-9)
    chosen = [int(np.argmax(histogram.counts))]
    distance2 = np.sum((z - z[chosen[0]]) ** 2, axis=1)
    for _ in range(1, k):
        chosen.append(int(np.argmax(histogram.counts * distance2)))
        distance2 = np.minimum(distance2, np.sum((z - z[chosen[-1]]) ** 2, axis=1))
    return np.array(chosen)


def weighted_covariance(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(d, d) covariance of (m, d) points with weights (normalised by the total weight)."""
    mean = weights @ points / weights.sum()
    centred = points - mean
    return (centred * weights[:, None]).T @ centred / weights.sum()


def fit_mixture(histogram: Histogram, k: int, seeds: np.ndarray | None = None) -> Mixture:
    """A k-component Gaussian mixture fitted by EM on binned events, from weighted k-means started at ``seeds``
    (bin indices, default :func:`seed_order`). Deterministic."""
    d = histogram.centers.shape[1]
    seeds = seed_order(histogram, k) if seeds is None else seeds[:k]
    scale = np.sqrt(weighted_covariance(histogram.centers, histogram.counts).diagonal()) + 1e-9
    z = np.ascontiguousarray(histogram.centers / scale)
    means = z[seeds].copy()
    nearest = _compiled_fits().weighted_kmeans(z, histogram.counts, means, KMEANS_ITERATIONS)
    means *= scale
    total_cov = weighted_covariance(histogram.centers, histogram.counts)
    weights = np.empty(k)
    covariances = np.empty((k, d, d))
    for j in range(k):
        mass = histogram.counts[nearest == j]
        weights[j] = max(mass.sum(), 1.0)
        covariances[j] = total_cov / k
        if mass.size > d + 1 and mass.sum() > 3 * d:
            covariances[j] = weighted_covariance(histogram.centers[nearest == j], mass)
    covariances += np.eye(d)[None] * (histogram.widths ** 2)[None, :, None]
    weights /= weights.sum()
    min_variance = (histogram.widths / 2) ** 2
    log_likelihood, _ = _compiled_fits().binned_gaussian_em(
        histogram.centers, histogram.counts, weights, np.ascontiguousarray(means), covariances,
        histogram.widths ** 2 / 12, min_variance, MAX_ITERATIONS, TOLERANCE)
    return Mixture(weights, means, covariances, float(log_likelihood), int(histogram.counts.sum()))


def select_mixture(histogram: Histogram, components: tuple[int, int]) -> list[Mixture]:
    """Mixtures with k = components[0] .. components[1], best BIC first; k stops growing after two
    components in a row that do not improve the BIC."""
    low, high = components
    if histogram.counts.sum() < 10 * low:
        raise TooFewEventsError(f"{int(histogram.counts.sum())} events, too few for a {low}-component mixture")
    seeds = seed_order(histogram, high)
    fits: list[Mixture] = []
    for k in range(low, high + 1):
        fits.append(fit_mixture(histogram, k, seeds))
        best = min(range(len(fits)), key=lambda i: fits[i].bic)
        if len(fits) - 1 - best >= 2:
            break
    return sorted(fits, key=lambda m: m.bic)


TARGET_LEVELS = {"low": 0.02, "mid": 0.5, "high": 0.98}
"""Where a target's 'low', 'mid' and 'high' lie: quantiles of the parent's values in that dimension."""


def target_points(values: np.ndarray, targets: list[dict[str, str | float]], dims: list[str]) -> np.ndarray:
    """Each target ({dim: 'low' | 'mid' | 'high' | quantile}) as a point in gating units, (n_targets, d)."""
    levels = [[TARGET_LEVELS[lv] if isinstance(lv, str) else float(lv) for lv in (t.get(dim, "mid") for dim in dims)]
              for t in targets]
    points = np.empty((len(targets), len(dims)))
    for j in range(len(dims)):
        qs = sorted({row[j] for row in levels})
        at = dict(zip(qs, quantiles(values[:, j], tuple(qs))))
        points[:, j] = [at[row[j]] for row in levels]
    return points


def assign_components(mixture: Mixture, targets: np.ndarray, centre: np.ndarray, scale: np.ndarray,
                      *, single: bool) -> np.ndarray:
    """The target index of each component: the nearest target (distances in units of ``scale``).

    With a single target, the parent's ``centre`` is the other label (index 1): a component belongs to the target
    only if it is nearer to it than to the centre and lies beyond the centre in every direction the target does.
    """
    z_means, z_targets = mixture.means / scale, targets / scale
    if not single:
        return np.argmin(((z_means[:, None, :] - z_targets[None]) ** 2).sum(axis=2), axis=1)
    z_centre = centre / scale
    to_target = ((z_means - z_targets[0]) ** 2).sum(axis=1)
    to_centre = ((z_means - z_centre) ** 2).sum(axis=1)
    direction = np.sign(z_targets[0] - z_centre)
    beyond = np.all((z_means - z_centre) * direction >= 0, axis=1)
    return np.where((to_target < to_centre) & beyond, 0, 1)


def label_scores(mixture: Mixture, labels: np.ndarray, points: np.ndarray, n_labels: int) -> np.ndarray:
    """(n, n_labels) log of each label's summed component density at each point (-inf for a label with no
    component)."""
    log_densities = mixture.log_densities(points)
    scores = np.full((points.shape[0], n_labels), -np.inf)
    for label in range(n_labels):
        own = log_densities[:, labels == label]
        if own.shape[1]:
            top = own.max(axis=1)
            scores[:, label] = top + np.log(np.exp(own - top[:, None]).sum(axis=1))
    return scores


GRID = 64  # grid points per dimension on which a label's region is traced
FAR = 10.0  # gating units: a region that reaches the edge of the parent's data is left open to this far beyond


def region_polygon(xs: np.ndarray, ys: np.ndarray, margin: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The polygon where ``margin > 0`` on the grid ``xs`` x ``ys`` (margin shaped (ys, xs)), around ``anchor``.

    The zero line is traced, simplified (Douglas-Peucker, half a grid step), and vertices on the grid's edge are
    moved ``FAR`` beyond it, so the region stays open where it reaches the edge of the data.

    Returns
    -------
    ndarray
        (n_vertices, 2), or an empty (0, 2) array when the margin is nowhere positive.
    """
    import contourpy

    low, high = np.array([xs[0], ys[0]]), np.array([xs[-1], ys[-1]])
    z = np.clip(np.nan_to_num(margin, nan=-50.0, neginf=-50.0, posinf=50.0), -50.0, 50.0)
    if not (z > 0).any():
        return np.empty((0, 2))
    generator = contourpy.contour_generator(xs, ys, z, fill_type=contourpy.FillType.OuterOffset)
    polygons, offsets = generator.filled(0.0, 100.0)
    rings = [points[offset[0]:offset[1]] for points, offset in zip(polygons, offsets)]
    ring = min(rings, key=lambda r: (not _contains(r, anchor), -_area(r)))
    step = np.array([xs[1] - xs[0], ys[1] - ys[0]])
    ring = simplify(ring[:-1] if np.allclose(ring[0], ring[-1]) else ring, tolerance=0.5 * float(step.min()))
    return open_at_edges(ring, low, high, tolerance=1e-9 + 1e-6 * float(step.max()))


def open_at_edges(ring: np.ndarray, low: np.ndarray, high: np.ndarray, tolerance: float) -> np.ndarray:
    """The ring with its stretches along the box [low, high] moved ``FAR`` outside the box, so that the region
    stays open where it reaches the edge of the data. A stretch is a run of edges lying on one side of the box (a
    diagonal edge between two sides, e.g. across a corner, is not one); its first and last vertices stay where
    they are and gain a copy moved outwards, so the edges that leave the box's side keep their place."""
    below, above = np.abs(ring - low) <= tolerance, np.abs(ring - high) <= tolerance
    sides = np.hstack([below, above])  # (n, 4): on the low x, low y, high x, high y side
    pushed = np.where(below, low - FAR, np.where(above, high + FAR, ring))
    n = ring.shape[0]
    along = (sides & np.roll(sides, -1, axis=0)).any(axis=1)  # edge i -> i+1 lies on one side of the box
    out = []
    for i in range(n):
        before, after = along[i - 1], along[i]
        if not before and not after:  # no stretch along a side here: the vertex stays
            out.append(ring[i])
            continue
        if not before:
            out.append(ring[i])
        out.append(pushed[i])
        if not after:
            out.append(ring[i])
    return np.array(out)


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _contains(ring: np.ndarray, point: np.ndarray) -> bool:
    return bool(_compiled_fits().in_polygon(np.array([point[0]]), np.array([point[1]]), np.ascontiguousarray(ring))[0])


def simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker simplification of a closed ring (vertices in order, not repeated at the end)."""
    if ring.shape[0] <= 4:
        return ring.copy()
    far = int(np.argmax(((ring - ring[0]) ** 2).sum(axis=1)))  # split the ring at its two most distant points
    first = _douglas_peucker(ring[:far + 1], tolerance)
    second = _douglas_peucker(np.vstack([ring[far:], ring[:1]]), tolerance)
    return np.vstack([first[:-1], second[:-1]])


def _douglas_peucker(line: np.ndarray, tolerance: float) -> np.ndarray:
    keep = np.zeros(line.shape[0], dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, line.shape[0] - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        a, b = line[start], line[end]
        segment = b - a
        length = float(np.hypot(*segment))
        inner = line[start + 1:end]
        if length == 0:
            distance = np.hypot(*(inner - a).T)
        else:
            distance = np.abs(segment[0] * (inner[:, 1] - a[1]) - segment[1] * (inner[:, 0] - a[0])) / length
        worst = int(np.argmax(distance))
        if distance[worst] > tolerance:
            keep[start + 1 + worst] = True
            stack += [(start, start + 1 + worst), (start + 1 + worst, end)]
    return line[keep]


def in_polygon(values: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(n,) events of (n, 2) values inside the polygon, by GatingML's winding rules (compiled)."""
    return _compiled_fits().in_polygon(values[:, 0], values[:, 1], np.ascontiguousarray(vertices, dtype=np.float64))


@dataclass
class Partition:
    """One mixture fit of a parent's events split between the populations that share it (see
    :func:`cytotrial.gating.methods.mixture`). Without a usable fit (too few events, or no fit gives every target
    a component), the documented fall-back: each event goes to the nearest target (the lone target's rival is the
    parent's centre), in units of the parent's 2 %-98 % spread, and the gate is flagged."""

    names: list[str]
    dims: list[str]
    mixture: Mixture | None  # None: the nearest-target fall-back
    labels: np.ndarray | None  # (k,) population index of each component (len(names) = the centre, lone target)
    targets: np.ndarray  # (n_labels, d) target points, gating units (and the centre, for a lone target)
    scale: np.ndarray  # (d,) the parent's 2 %-98 % spread
    low: np.ndarray
    high: np.ndarray
    flag: str = ""
    _grid: tuple | None = None  # (xs, ys, label scores on the grid), computed once for every label's region

    @classmethod
    def fit(cls, values: np.ndarray, dims: list[str], targets: list[tuple[str, dict]],
            components: tuple[int, int]) -> Partition:
        """Fit mixtures with ``components`` (fewest, most) components to (n, d) values and name them by
        ``targets`` (population name, {dim: level}); the best BIC whose split gives every target a component."""
        names = [name for name, _ in targets]
        points = target_points(values, [target for _, target in targets], dims)
        low_mid_high = target_points(values, [dict.fromkeys(dims, level) for level in ("low", "mid", "high")], dims)
        centre, scale = low_mid_high[1], np.maximum(low_mid_high[2] - low_mid_high[0], 1e-6)
        single = len(names) == 1
        span = values.max(axis=0) - values.min(axis=0)
        box = values.min(axis=0) - 0.02 * span, values.max(axis=0) + 0.02 * span
        labelled = np.vstack([points, centre]) if single else points
        fewest = max(components[0], len(labelled))  # fewer components than labels cannot give each label one
        try:
            if fewest > components[1]:
                raise TooFewEventsError(f"at most {components[1]} components for {len(labelled)} targets")
            fits = select_mixture(bin_events(values), (fewest, components[1]))
        except TooFewEventsError as err:
            return cls(names, dims, None, None, labelled, scale, *box,
                       flag=f"fall-back: {err}; each event went to the nearest target")
        for fit in fits:
            labels = assign_components(fit, points, centre, scale, single=single)
            if all((labels == t).any() for t in range(len(names))):
                return cls(names, dims, fit, labels, labelled, scale, *box)
        return cls(names, dims, None, None, labelled, scale, *box,
                   flag=f"fall-back: no mixture of {components[0]}-{components[1]} components has one near every "
                        "target; each event went to the nearest target")

    @property
    def n_labels(self) -> int:
        return len(self.names) + (1 if len(self.names) == 1 else 0)

    def scores(self, points: np.ndarray) -> np.ndarray:
        """(n, labels) score of each label at each point: the log of its components' summed density, or, for the
        fall-back, minus half the squared distance to its target in units of the spread."""
        if self.mixture is None:
            z = (points[:, None, :] - self.targets[None]) / self.scale
            return -0.5 * (z ** 2).sum(axis=2)
        return label_scores(self.mixture, self.labels, points, self.n_labels)

    def grid_scores(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The GRID x GRID grid over the parent's data and every label's score on it (computed once)."""
        if self._grid is None:
            xs, ys = np.linspace(self.low[0], self.high[0], GRID), np.linspace(self.low[1], self.high[1], GRID)
            gx, gy = np.meshgrid(xs, ys)
            self._grid = (xs, ys, self.scores(np.column_stack([gx.ravel(), gy.ravel()])))
        return self._grid

    def margin(self, index: int, scores: np.ndarray, posterior: float | None = None) -> np.ndarray:
        """Where label ``index`` wins, from (n, labels) scores: positive inside. Without ``posterior`` (or for the
        fall-back): its score minus the best other label's (the most likely label wins); with it: the log odds
        of its posterior minus logit(posterior) (it wins where its posterior is at least ``posterior``)."""
        others = np.delete(scores, index, axis=1)
        if posterior is None or self.mixture is None:
            return scores[:, index] - others.max(axis=1)
        top = others.max(axis=1)
        finite_top = np.where(np.isfinite(top), top, 0.0)
        rest = finite_top + np.log(np.exp(others - finite_top[:, None]).sum(axis=1))
        return scores[:, index] - rest - np.log(posterior / (1 - posterior))

    def region(self, name: str, posterior: float | None = None) -> tuple[np.ndarray, dict]:
        """Population ``name``'s polygon (gating units) and its record (components, BIC, target, weight, flag);
        ``posterior``: see :meth:`margin`."""
        if len(self.dims) != 2:
            raise ValueError(f"population '{name}': a mixture region needs two dimensions, not {self.dims}")
        index = self.names.index(name)
        if self.mixture is None:
            anchor, record = self.targets[index], {"mixture": {"components": 0, "target": self.targets[index].tolist()}}
        else:
            own = np.flatnonzero(self.labels == index)
            anchor = self.mixture.means[own[np.argmax(self.mixture.weights[own])]]
            record = {"mixture": {"components": int(self.mixture.k), "bic": float(self.mixture.bic),
                                  "target": self.targets[index].tolist(),
                                  "weight": float(self.mixture.weights[own].sum()),
                                  "means": self.mixture.means[own].tolist()}}
        xs, ys, scores = self.grid_scores()
        vertices = region_polygon(xs, ys, self.margin(index, scores, posterior).reshape(ys.size, xs.size), anchor)
        if self.flag:
            record["flag"] = self.flag
        return vertices, record
