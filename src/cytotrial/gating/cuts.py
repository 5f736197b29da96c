"""Data-driven 1-D cut points (openCyto-style): density valley, tail, quantile, fixed value.

Every method takes the values of one dimension within the parent population, in gating (transformed) units,
and returns one cut point. All are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stats.robust import quantiles

GRID_POINTS = 512
MIN_EVENTS = 10


def _kernels():
    """The compiled loops (:mod:`cytotrial.gating.kernels`), imported on first use: importing numba takes ~0.3 s
    and ~50 MB, which jobs that only read a template or gating results need not pay."""
    from . import kernels

    return kernels


class TooFewEventsError(ValueError):
    """Too few events to find a data-driven cut point."""


@dataclass(frozen=True)
class Density:
    """A kernel density estimate on an even grid."""

    grid: np.ndarray
    density: np.ndarray
    bandwidth: float = 0.0

    def peaks(self, min_relative_height: float, within: tuple[float, float] | None = None) -> np.ndarray:
        """Grid indices of local maxima, tallest first.

        Only maxima inside ``within`` (if given) count, and of those only the ones at least
        ``min_relative_height`` x the tallest.
        """
        d = self.density
        is_peak = np.r_[False, (d[1:-1] > d[:-2]) & (d[1:-1] >= d[2:]), False]
        if within is not None:
            is_peak &= (self.grid >= within[0]) & (self.grid <= within[1])
        if not is_peak.any():
            return np.flatnonzero(is_peak)
        idx = np.flatnonzero(is_peak & (d >= min_relative_height * d[is_peak].max()))
        return idx[np.argsort(-d[idx], kind="stable")]

    def half_width(self, peak: int) -> float:
        """Half width at half maximum of a peak (grid index), on its narrower side; at least a bandwidth."""
        d, half = self.density, self.density[peak] / 2
        below = np.flatnonzero(d[peak::-1] < half)
        above = np.flatnonzero(d[peak:] < half)
        sides = [s[0] for s in (below, above) if s.size]
        step = self.grid[1] - self.grid[0]
        return max(float(min(sides) * step) if sides else 0.0, self.bandwidth)


def kernel_density(values: np.ndarray, adjust: float = 1.0) -> Density:
    """Gaussian KDE by binning and convolution, bandwidth = ``adjust`` x Silverman's rule (as R's bw.nrd0)."""
    x = _kernels().finite_values(values)
    if x.size < MIN_EVENTS:
        raise TooFewEventsError(f"{x.size} events, fewer than the {MIN_EVENTS} needed to estimate a density")
    _, sd, low, high = _kernels().mean_sd_range(x)
    q75, q25 = quantiles(x, (0.75, 0.25))
    spread = min(sd, (q75 - q25) / 1.34) or sd or 1e-3
    bw = adjust * 0.9 * spread * x.size ** -0.2
    edges = np.linspace(low - 3 * bw, high + 3 * bw, GRID_POINTS + 1)
    counts = _kernels().histogram_counts(x, edges)
    step = edges[1] - edges[0]
    half = int(np.ceil(4 * bw / step))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / bw) ** 2)
    density = np.convolve(counts, kernel / (kernel.sum() * step * x.size), mode="same")
    return Density(grid=(edges[:-1] + edges[1:]) / 2, density=density, bandwidth=float(bw))


def refine_mode(values: np.ndarray, start: float, width: float, steps: int = 10) -> float:
    """Mean shift from ``start``: the mean of the events within +/- ``width``, repeated until it settles.

    The grid maximum of a density is noisy (a fraction of a bandwidth); the tail cut measures a spread from the
    mode, so it uses this estimate instead.
    """
    return float(_kernels().mean_shift_mode(np.asarray(values), float(start), float(width), int(steps)))


def valley_cut(values: np.ndarray, range: tuple[float, float] | None = None, adjust: float = 1.0,
               min_peak_height: float = 0.05, single_peak: str = "upper_tail", sd_multiple: float = 3.0,
               max_valley_ratio: float = 0.8) -> float:
    """openCyto's mindensity: the deepest point of the density between its two tallest peaks.

    When the valley between the two tallest peaks is too shallow to be real (``max_valley_ratio``), the next
    tallest peaks are tried in turn with the tallest, so a bump on the main peak's shoulder does not hide a
    smaller, well separated population.

    Parameters
    ----------
    range
        Only peaks within [lo, hi] count (openCyto's ``gate_range``); the density is estimated on all values so
        that it is not distorted at the edges of the range.
    adjust
        Bandwidth multiplier.
    min_peak_height
        Peaks lower than this fraction of the tallest are ignored.
    max_valley_ratio
        A valley whose density exceeds this fraction of the lower of its two peaks is noise (typical of small
        populations), and the data are treated as having one peak.
    single_peak
        What to do when there is only one peak: 'upper_tail' or 'lower_tail' cut at ``sd_multiple`` robust SDs
        from it (see :func:`tail_cut`).
    """
    x = _kernels().finite_values(values)  # once, for the density, the mode and the tail cut
    kde = kernel_density(x, adjust)
    peaks = kde.peaks(min_peak_height, within=range)
    for second in peaks[1:]:  # the tallest peak with the next tallest whose valley is a real dip
        left, right = sorted((peaks[0], second))
        valley = left + int(np.argmin(kde.density[left:right + 1]))
        if kde.density[valley] <= max_valley_ratio * min(kde.density[left], kde.density[right]):
            return float(kde.grid[valley])
    mode = refine_mode(x, kde.grid[peaks[0]], kde.half_width(int(peaks[0]))) if peaks.size else None
    cut = tail_cut(x, side=single_peak.removesuffix("_tail"), sd_multiple=sd_multiple, adjust=adjust, mode=mode)
    return cut if range is None else float(np.clip(cut, *range))  # as openCyto, the cut stays within gate_range


def tail_cut(values: np.ndarray, side: str = "upper", sd_multiple: float = 3.0, adjust: float = 1.0,
             range: tuple[float, float] | None = None, mode: float | None = None) -> float:
    """A cut on the shoulder of the dominant peak, for markers whose positives form no peak of their own.

    The peak's spread is measured on the side away from the tail (so the tail does not inflate it), robustly:
    SD = 1.4826 x the median distance of those events from the mode (a half-normal's median is 0.6745 SD), so
    a few far events (e.g. an unresolved population on the inner side) do not widen it.
    cut = mode + ``sd_multiple`` x SD for ``side='upper'``, mode - ``sd_multiple`` x SD for 'lower'.
    ``mode`` defaults to the tallest point of the density (within ``range`` if given).
    """
    if side not in ("upper", "lower"):
        raise ValueError(f"tail side must be 'upper' or 'lower', not {side!r}")
    x = _kernels().finite_values(values)
    if mode is None:
        kde = kernel_density(x, adjust)
        inside = np.ones(kde.grid.size, bool) if range is None else (kde.grid >= range[0]) & (kde.grid <= range[1])
        peak = int(np.flatnonzero(inside)[int(np.argmax(kde.density[inside]))])
        mode = refine_mode(x, kde.grid[peak], kde.half_width(peak))
    inner = _kernels().inner_distances(x, float(mode), side == "upper")
    spread = 1.4826 * quantiles(inner, (0.5,))[0] if inner.size else 0.0
    return mode + sd_multiple * spread if side == "upper" else mode - sd_multiple * spread


def quantile_cut(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile of the values."""
    return float(np.quantile(_kernels().finite_values(values), q))


CUT_METHODS = {
    "valley": valley_cut,
    "tail": tail_cut,
    "quantile": quantile_cut,
}


def find_cut(values: np.ndarray, method: str, args: dict) -> float:
    """Dispatch to a cut method by name; ``fixed`` returns ``args['value']``."""
    if method == "fixed":
        return float(args["value"])
    if method not in CUT_METHODS:
        raise ValueError(f"unknown cut method {method!r}; use one of {sorted([*CUT_METHODS, 'fixed'])}")
    kwargs = dict(args)
    if "range" in kwargs and kwargs["range"] is not None:
        kwargs["range"] = tuple(kwargs["range"])
    return CUT_METHODS[method](values, **kwargs)
