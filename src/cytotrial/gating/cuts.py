"""Data-driven 1-D cut points (openCyto-style): density valley, tail, quantile, fixed value.

Every method takes the values of one dimension within the parent population, in gating (transformed) units,
and returns one cut point. All are deterministic. Written here because openCyto is an R package and flowkit
applies fixed gates only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..numeric.quantiles import quantiles

GRID_POINTS = 512
MIN_EVENTS = 10


def _compiled_fits():
    """The compiled loops (:mod:`cytotrial.gating.compiled_fits`), imported on first use: jobs that only read a template
    or gating results need not import numba (benchmarks/results/sample_profile.json gives its cost)."""
    from . import compiled_fits

    return compiled_fits


def finite_values(values: np.ndarray) -> np.ndarray:
    """The finite values, in their order and dtype."""
    values = np.asarray(values)
    return values[np.isfinite(values)]


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
    x = finite_values(values)
    if x.size < MIN_EVENTS:
        raise TooFewEventsError(f"{x.size} events, fewer than the {MIN_EVENTS} needed to estimate a density")
    x64 = x.astype(np.float64)
    # population SD in two passes, each sum left to right (np.add.accumulate; np.sum adds pairwise and would move
    # the cuts in their last bits)
    mean = np.add.accumulate(x64)[-1] / x.size
    sd = float(np.sqrt(np.add.accumulate((x64 - mean) ** 2)[-1] / x.size))
    low, high = float(x64.min()), float(x64.max())
    q75, q25 = quantiles(x, (0.75, 0.25))
    spread = min(sd, (q75 - q25) / 1.34) or sd or 1e-3
    bw = adjust * 0.9 * spread * x.size ** -0.2
    # equal bins (numpy's linear-time path; its edges are np.linspace(low - 3 bw, high + 3 bw, GRID_POINTS + 1))
    counts, edges = np.histogram(x64, bins=GRID_POINTS, range=(low - 3 * bw, high + 3 * bw))
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
    return float(_compiled_fits().mean_shift_mode(np.asarray(values), float(start), float(width), int(steps)))


class CutPoint(NamedTuple):
    """A cut and, when it was not placed as the method intends (no valley, clipped to its range), why."""

    value: float
    note: str = ""


def valley_cut(values: np.ndarray, range: tuple[float, float] | None = None, adjust: float = 1.0,
               min_peak_height: float = 0.05, *, single_peak: str = "upper_tail", sd_multiple: float = 3.0,
               max_valley_ratio: float = 0.8, peak: str = "tallest", side: str = "both",
               major: float = 0.1, reference_above: float = 0.0, choose: str | None = None,
               tail_from: str | None = None, tail_spread: str = "inner") -> float:
    """openCyto's mindensity: the deepest point of the density between a reference peak and another peak.

    See :func:`find_valley`, which also says when the cut is a fall-back; this returns the cut alone.
    """
    return find_valley(values, range=range, adjust=adjust, min_peak_height=min_peak_height, single_peak=single_peak,
                       sd_multiple=sd_multiple, max_valley_ratio=max_valley_ratio, peak=peak, side=side,
                       major=major, reference_above=reference_above, choose=choose, tail_from=tail_from,
                       tail_spread=tail_spread).value


def find_valley(values: np.ndarray, *, range: tuple[float, float] | None = None, adjust: float = 1.0,
                min_peak_height: float = 0.05, single_peak: str = "upper_tail", sd_multiple: float = 3.0,
                max_valley_ratio: float = 0.8, peak: str = "tallest", side: str = "both",
                major: float = 0.1, reference_above: float = 0.0, choose: str | None = None,
                tail_from: str | None = None, tail_spread: str = "inner") -> CutPoint:
    """The deepest point of the density between a reference peak and another peak whose valley with it is a real
    dip; with no such peak, a tail cut from the reference peak (flowDensity's deGate).

    Other peaks are tried in the order ``choose`` says: 'tallest' first (the default with ``side`` 'both', so a
    bump on the reference peak's shoulder does not hide a smaller, well separated population), 'nearest' first
    (the default on one side: the reference population's own edge) or 'deepest' valley first (e.g. dead cells,
    far brighter than every live population).

    Parameters
    ----------
    range
        Only peaks within [lo, hi] count (openCyto's ``gate_range``; gating units, so it does not transfer
        between instruments: prefer ``peak`` and ``side``). The density is estimated on all values.
    adjust
        Bandwidth multiplier.
    min_peak_height
        Peaks lower than this fraction of the tallest are ignored.
    max_valley_ratio
        A valley whose density exceeds this fraction of the lower of its two peaks is noise (typical of small
        populations).
    peak
        The reference peak: 'tallest', or 'lowest' / 'highest' (in position) of the major peaks, those at least
        ``major`` x the tallest (e.g. 'lowest' for the CD45-dim edge of the leukocytes).
    reference_above
        For a scale that starts at 0 (linear scatter): a peak below this fraction of the highest major peak's
        position cannot be the reference (e.g. 0.35 on FSC-A: debris is not a cell peak, whatever the gain).
    side
        Where the other peak is looked for: 'above' or 'below' the reference peak, or 'both'.
    single_peak, sd_multiple
        With no other peak: 'upper_tail' or 'lower_tail' cut at ``sd_multiple`` robust SDs from the reference
        peak (:func:`tail_cut`); with ``side`` 'above' or 'below' the tail is on that side.
    tail_from, tail_spread
        The tail cut's peak, if not the reference: 'tallest', 'lowest' or 'highest' of the major peaks; and
        where its spread is measured ('inner' or 'outer' side, see :func:`tail_cut`).

    Returns
    -------
    CutPoint
        The cut, and a note when the valley search fell back to a tail cut or the cut was clipped to ``range``.
    """
    peaks_named = ("tallest", "lowest", "highest")
    choose = choose or ("tallest" if side == "both" else "nearest")
    if peak not in peaks_named or side not in ("above", "below", "both") or tail_from not in (None, *peaks_named) \
            or choose not in ("tallest", "nearest", "deepest"):
        raise ValueError(f"valley: peak and tail_from must be tallest, lowest or highest, side above, below or both, "
                         f"choose tallest, nearest or deepest (got {peak!r}, {tail_from!r}, {side!r}, {choose!r})")
    x = finite_values(values)  # once, for the density, the mode and the tail cut
    kde = kernel_density(x, adjust)
    peaks = kde.peaks(min_peak_height, within=range)
    reference = _reference_peak(kde, peaks, peak, major, reference_above=reference_above)
    if reference is not None:
        others = [p for p in peaks if p != reference and (side == "both" or (p > reference) == (side == "above"))]
        valleys = []
        for other in others:
            left, right = sorted((reference, other))
            valley = left + int(np.argmin(kde.density[left:right + 1]))
            depth = kde.density[valley] / min(kde.density[left], kde.density[right])
            if depth <= max_valley_ratio:  # a real dip
                valleys.append((other, valley, depth))
        order = {"tallest": lambda v: -kde.density[v[0]], "nearest": lambda v: abs(v[0] - reference),
                 "deepest": lambda v: v[2]}[choose]
        if valleys:
            return CutPoint(float(kde.grid[min(valleys, key=order)[1]]))
    tail_peak = reference if tail_from is None else _reference_peak(kde, peaks, tail_from, major,
                                                                    reference_above=reference_above)
    mode = refine_mode(x, kde.grid[tail_peak], kde.half_width(int(tail_peak))) if tail_peak is not None else None
    tail_side = {"above": "upper", "below": "lower"}.get(side, single_peak.removesuffix("_tail"))
    cut = tail_cut(x, side=tail_side, sd_multiple=sd_multiple, adjust=adjust, mode=mode, spread=tail_spread)
    note = (f"no density valley {'beside' if side == 'both' else side} the {peak} peak: cut at {sd_multiple:g} robust "
            f"SDs {tail_side == 'upper' and 'above' or 'below'} the {tail_from or peak} peak")
    if range is not None and not range[0] <= cut <= range[1]:  # as openCyto, the cut stays within gate_range
        return CutPoint(float(np.clip(cut, *range)), note + f", clipped to the edge of the range {list(range)}")
    return CutPoint(cut, note)


def _reference_peak(kde: Density, peaks: np.ndarray, peak: str, major: float, *, reference_above: float) -> int | None:
    if not peaks.size:
        return None
    majors = peaks[kde.density[peaks] >= major * kde.density[peaks[0]]]
    if reference_above > 0:
        majors = majors[kde.grid[majors] >= reference_above * kde.grid[majors.max()]]
    if peak == "tallest":
        return int(majors[np.argmax(kde.density[majors])])
    return int(majors.min() if peak == "lowest" else majors.max())


def tail_cut(values: np.ndarray, side: str = "upper", sd_multiple: float = 3.0, adjust: float = 1.0,
             *, range: tuple[float, float] | None = None, mode: float | None = None, spread: str = "inner") -> float:
    """A cut on the shoulder of the dominant peak, for markers whose positives form no peak of their own.

    The peak's spread is measured on the side away from the tail (so the tail does not inflate it), robustly:
    SD = 1.4826 x the median distance of those events from the mode (a half-normal's median is 0.6745 SD), so
    a few far events (e.g. an unresolved population on the inner side) do not widen it. With ``spread='outer'``
    it is measured on the tail's side instead, for a peak with other populations on its inner side (e.g. the
    brightest of several viability-dye-negative peaks).
    cut = mode + ``sd_multiple`` x SD for ``side='upper'``, mode - ``sd_multiple`` x SD for 'lower'.
    ``mode`` defaults to the tallest point of the density (within ``range`` if given).
    """
    if side not in ("upper", "lower") or spread not in ("inner", "outer"):
        raise ValueError(f"tail side must be 'upper' or 'lower' and spread 'inner' or 'outer', not {side!r}, "
                         f"{spread!r}")
    x = finite_values(values)
    if mode is None:
        kde = kernel_density(x, adjust)
        inside = np.ones(kde.grid.size, bool) if range is None else (kde.grid >= range[0]) & (kde.grid <= range[1])
        peak = int(np.flatnonzero(inside)[int(np.argmax(kde.density[inside]))])
        mode = refine_mode(x, kde.grid[peak], kde.half_width(peak))
    distances = _compiled_fits().inner_distances(x, float(mode), (side == "upper") == (spread == "inner"))
    sd = 1.4826 * quantiles(distances, (0.5,))[0] if distances.size else 0.0
    return mode + sd_multiple * sd if side == "upper" else mode - sd_multiple * sd


def quantile_cut(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile of the values."""
    return float(np.quantile(finite_values(values), q))


CUT_METHODS = {
    "valley": valley_cut,
    "tail": tail_cut,
    "quantile": quantile_cut,
}


def find_cut(values: np.ndarray, method: str, args: dict) -> CutPoint:
    """Dispatch to a cut method by name; ``fixed`` returns ``args['value']``."""
    if method == "fixed":
        return CutPoint(float(args["value"]))
    if method not in CUT_METHODS:
        raise ValueError(f"unknown cut method {method!r}; use one of {sorted([*CUT_METHODS, 'fixed'])}")
    kwargs = dict(args)
    if "range" in kwargs and kwargs["range"] is not None:
        kwargs["range"] = tuple(kwargs["range"])
    if method == "valley":
        return find_valley(values, **kwargs)
    return CutPoint(float(CUT_METHODS[method](values, **kwargs)))
