"""Flow-rate anomalies: events per second over acquisition time (clogs, bursts, gaps), flowAI-like.

Events are counted in time bins; a bin whose rate lies more than k robust SDs from the median rate is
anomalous, short good stretches between anomalous bins are taken too, and the edges of every anomalous stretch
are trimmed on sub-bins so that the normal events at its borders are kept. Written here because flowAI is an R
package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .runs import fill_short_gaps, true_runs

MAD_TO_SD = 1.4826
MIN_BINS = 10
"""With fewer time bins than this the spread of the rates cannot be told and the check is skipped."""


@dataclass(frozen=True)
class FlowRateResult:
    """Flow-rate check of one sample (times in seconds).

    Attributes
    ----------
    mask
        (n_events,) True for an event removed (in the order of the input times).
    bin_edges, counts, rate
        (n_bins + 1,), (n_bins,), (n_bins,): the time bins, their event counts and rates (events / s).
    median_rate, sd_rate, lower, upper
        The median rate, the robust SD used and the limits outside which a bin is anomalous.
    anomalous
        (n_bins,) bins found anomalous (after filling short good stretches).
    removed_intervals
        (k, 2) start and end times of the stretches removed (after trimming their edges).
    gaps
        (g, 2) stretches longer than one bin without any event.
    backward_steps
        Number of times the Time channel goes backwards between consecutive events.
    bin_s, time_resolution
        Bin width (s) and the smallest step of the Time channel (0 when it could not be told).
    skipped
        Why the check did not run ('' when it did).
    """

    mask: np.ndarray
    bin_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rate: np.ndarray = field(default_factory=lambda: np.zeros(0))
    median_rate: float = float("nan")
    sd_rate: float = float("nan")
    lower: float = float("nan")
    upper: float = float("nan")
    anomalous: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    removed_intervals: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    gaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    backward_steps: int = 0
    bin_s: float = float("nan")
    time_resolution: float = 0.0
    skipped: str = ""

    @property
    def n_removed(self) -> int:
        return int(self.mask.sum())


def time_resolution(sorted_times: np.ndarray) -> float:
    """The tick of the Time channel from sorted times, 0 if there is none.

    The median of the smallest positive steps, then made to divide the whole time range into whole ticks,
    so that rounding noise (e.g. float32 times) does not make bin edges drift against the ticks.
    """
    steps = np.diff(sorted_times)
    steps = steps[steps > 0]
    if steps.size == 0:
        return 0.0
    smallest = float(steps.min())
    tick = float(np.median(steps[steps < 1.5 * smallest]))
    n_ticks = round((float(sorted_times[-1]) - float(sorted_times[0])) / tick)
    return (float(sorted_times[-1]) - float(sorted_times[0])) / n_ticks if n_ticks >= 1 else tick


def find_flow_rate_anomalies(time_s, bin_s: float | None = None, events_per_bin: int = 500, mad: float = 5.0,
                             *, fill_bins: int = 1, refine: int = 5, min_bins: int = MIN_BINS) -> FlowRateResult:
    """Flow-rate anomalies of one sample.

    Parameters
    ----------
    time_s
        (n_events,) acquisition time of every event in seconds, in acquisition order.
    bin_s
        Time-bin width in seconds; None: ``events_per_bin`` events at the mean rate (fewer, down to 50, when
        that would give under 2 x ``min_bins`` bins). Rounded to whole ticks.
    mad
        Anomalous: rate more than ``mad`` robust SDs (1.4826 MAD, at least the Poisson SD) from the median.
    fill_bins
        Good stretches of at most this many bins between anomalous bins are removed too.
    refine
        Sub-bins per bin for trimming the edges of anomalous stretches (1: whole bins).
    min_bins
        Fewer bins than this and the check is skipped.
    """
    t = np.asarray(time_s, dtype=np.float64)
    n = t.size
    if n and not np.isfinite(t).all():
        raise ValueError("time_s has non-finite values")
    backward = int(np.count_nonzero(np.diff(t) < 0)) if n > 1 else 0
    nothing = np.zeros(n, dtype=bool)
    if n < 2 or t.max() <= t.min():
        return FlowRateResult(mask=nothing, backward_steps=backward, skipped="fewer than 2 distinct times")
    ts = np.sort(t) if backward else t
    t0, t1 = float(ts[0]), float(ts[-1])
    res = time_resolution(ts)
    if bin_s is None:
        target = min(events_per_bin, max(50, n // (2 * min_bins)))
        width = target * (t1 - t0) / n
    else:
        width = float(bin_s)
    refine = max(1, int(refine))
    if res > 0:
        fine_ticks = max(1, int(round(width / res / refine)))
        fine = fine_ticks * res
        origin, end = t0 - res / 2, t1 + res / 2
    else:
        fine = width / refine
        origin, end = t0, t1
    width = fine * refine
    n_bins = int((end - origin) // width)
    if n_bins < min_bins:
        return FlowRateResult(mask=nothing, backward_steps=backward, bin_s=width, time_resolution=res,
                              skipped=f"fewer than {min_bins} time bins of {width:.3g} s")
    n_fine = n_bins * refine
    fine_edges = origin + fine * np.arange(n_fine + 1)
    fine_edges[-1] = end                        # the remainder joins the last bin
    fine_of_event = np.minimum(((t - origin) / fine).astype(np.int64), n_fine - 1)
    fine_counts = np.bincount(fine_of_event, minlength=n_fine)
    fine_widths = np.diff(fine_edges)
    edges = fine_edges[::refine]
    counts = fine_counts.reshape(n_bins, refine).sum(axis=1)
    rate = counts / np.diff(edges)

    median = float(np.median(rate))
    poisson_sd = float(np.sqrt(max(np.median(counts), 1.0)) / width)
    sd = max(MAD_TO_SD * float(np.median(np.abs(rate - median))), poisson_sd)
    lower, upper = median - mad * sd, median + mad * sd
    anomalous = (rate < lower) | (rate > upper)
    if np.median(counts) >= 10:                 # an empty bin is then no chance event
        anomalous |= counts == 0
    anomalous = fill_short_gaps(anomalous, fill_bins)

    fine_flag = np.repeat(anomalous, refine)
    if refine > 1 and anomalous.any():
        _trim_edges(fine_flag, fine_counts / fine_widths, rate, anomalous, median=median, refine=refine)
    starts, ends = true_runs(fine_flag)
    intervals = np.column_stack([fine_edges[starts], fine_edges[ends]]) if starts.size else np.zeros((0, 2))

    steps = np.diff(ts)
    at = np.flatnonzero(steps > width)
    gaps = np.column_stack([ts[at], ts[at + 1]]) if at.size else np.zeros((0, 2))
    return FlowRateResult(mask=fine_flag[fine_of_event], bin_edges=edges, counts=counts, rate=rate,
                          median_rate=median, sd_rate=sd, lower=lower, upper=upper, anomalous=anomalous,
                          removed_intervals=intervals, gaps=gaps, backward_steps=backward, bin_s=width,
                          time_resolution=res)


def _trim_edges(fine_flag: np.ndarray, fine_rate: np.ndarray, rate: np.ndarray, anomalous: np.ndarray,
                *, median: float, refine: int) -> None:
    """Unflag, in place, the sub-bins at the outer edges of each anomalous stretch that look normal.

    A sub-bin looks normal when its rate is nearer (on the square-root scale, where Poisson noise is even) the
    median rate than the stretch's own median rate; trimming stops at the first sub-bin that does not.
    """
    root = np.sqrt(fine_rate)
    root_median = np.sqrt(median)
    starts, ends = true_runs(anomalous)
    for s, e in zip(starts, ends, strict=True):
        root_run = np.sqrt(np.median(rate[s:e]))
        left = right = 0
        if s > 0:
            block = root[s * refine:(s + 1) * refine]
            left = _leading_true(np.abs(block - root_median) <= np.abs(block - root_run))
        if e < anomalous.size:
            block = root[(e - 1) * refine:e * refine][::-1]
            right = _leading_true(np.abs(block - root_median) <= np.abs(block - root_run))
        if e - s == 1 and left + right >= refine:   # a lone bin that looks normal throughout: keep it whole
            continue
        fine_flag[s * refine:s * refine + left] = False
        fine_flag[e * refine - right:e * refine] = False


def _leading_true(block: np.ndarray) -> int:
    """Number of True values at the start of a 1-D boolean array."""
    return int(block.size if block.all() else np.argmin(block))
