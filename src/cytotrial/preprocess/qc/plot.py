"""QC plot of one sample: events per second over time with the removed stretches, and per-bin signal levels."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .core import QcResult
from .runs import true_runs

FLOW_COLOUR = "tab:red"
SIGNAL_COLOUR = "tab:orange"
GAP_COLOUR = "0.6"


def plot_event_qc(result: QcResult, time_s, path: str | os.PathLike, title: str = "",
                  *, max_channels: int = 4) -> None:
    """Write the QC plot of one sample as a PNG (deterministic: no software / date metadata).

    Top: events / s over time (s), all events and those kept, with the stretches removed for flow rate and for
    signal shaded and gaps in grey. Bottom: the per-bin means (or medians) of up to ``max_channels`` channels
    (those with the most outlying bins first), with their bins outside the accepted range marked and the
    removed bins shaded.

    Parameters
    ----------
    result
        ``run_event_qc`` result.
    time_s
        (n_events,) the acquisition times given to ``run_event_qc``.
    """
    t = np.asarray(time_s, dtype=np.float64)
    fig = Figure(figsize=(9, 6), dpi=100)
    FigureCanvasAgg(fig)
    # fixed margins in inches, the top one for the title's lines (a constrained layout cost more than the figure)
    title_lines = 1 + bool(title) + bool(result.flags)
    fig.subplots_adjust(left=0.8 / 9, right=1 - 0.15 / 9, bottom=0.5 / 6, top=1 - (0.25 + 0.17 * title_lines) / 6,
                        hspace=0.25)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    _rate_panel(top, result, t)
    _signal_panel(bottom, result, max_channels)
    summary = (f"{result.events_in} events in, {result.events_out} kept ({result.percent_removed:.1f}% removed: "
               f"margins {result.removed_by_step['margins']}, flow rate {result.removed_by_step['flow_rate']}, "
               f"signal {result.removed_by_step['signal']})")
    if result.flags:
        summary += "\nFLAGS: " + "; ".join(result.flags)
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=9, y=1 - 0.08 / 6, va="top")
    fig.savefig(path, format="png", metadata={"Software": None})


def _rate_panel(ax, result: QcResult, t: np.ndarray) -> None:
    fr = result.flow_rate
    if fr is not None and fr.bin_edges.size > 1:
        edges = fr.bin_edges
    elif t.size > 1 and t.max() > t.min():
        edges = np.linspace(t.min(), t.max(), min(200, max(2, t.size // 100)) + 1)
    else:
        edges = np.array([0.0, 1.0]) if t.size == 0 else np.array([t.min() - 0.5, t.min() + 0.5])
    widths = np.diff(edges)
    mids = (edges[:-1] + edges[1:]) / 2
    all_rate = np.histogram(t, edges)[0] / widths
    kept_rate = np.histogram(t[result.keep], edges)[0] / widths
    handles = []
    if fr is not None:
        for start, end in fr.gaps:
            ax.axvspan(start, end, color=GAP_COLOUR, alpha=0.3, lw=0)
        for start, end in fr.removed_intervals:
            ax.axvspan(start, end, color=FLOW_COLOUR, alpha=0.25, lw=0)
        if len(fr.gaps):
            handles.append(Patch(color=GAP_COLOUR, alpha=0.3, label="gap in time"))
        if len(fr.removed_intervals):
            handles.append(Patch(color=FLOW_COLOUR, alpha=0.25, label="removed: flow rate"))
        if np.isfinite(fr.median_rate):
            ax.axhline(fr.median_rate, color="0.3", lw=0.8, ls=":")
            for limit in (fr.lower, fr.upper):
                if limit > 0:
                    ax.axhline(limit, color=FLOW_COLOUR, lw=0.8, ls="--")
    signal_spans = _signal_spans(result)
    for start, end in signal_spans:
        ax.axvspan(start, end, color=SIGNAL_COLOUR, alpha=0.25, lw=0)
    if signal_spans:
        handles.append(Patch(color=SIGNAL_COLOUR, alpha=0.25, label="removed: signal"))
    (line_all,) = ax.plot(mids, all_rate, color="0.55", lw=1, label="all events")
    (line_kept,) = ax.plot(mids, kept_rate, color="k", lw=1, label="kept")
    ax.set_ylabel("events / s")
    ax.set_ylim(bottom=0)
    ax.legend(handles=[line_all, line_kept, *handles], fontsize=7, loc="lower left", ncols=2)
    ax.set_title("flow rate", fontsize=9, loc="left", y=1.0)  # y given: no automatic placement


def _signal_spans(result: QcResult) -> list[tuple[float, float]]:
    """Time spans of the stretches of bins removed for signal."""
    sig = result.signal
    if sig is None or not sig.anomalous.any():
        return []
    starts, ends = true_runs(sig.anomalous)
    return [(float(sig.bin_time[s, 0]), float(sig.bin_time[e - 1, 1])) for s, e in zip(starts, ends, strict=True)]


def _signal_panel(ax, result: QcResult, max_channels: int = 4) -> None:
    ax.set_xlabel("time (s)")
    sig = result.signal
    if sig is None or sig.skipped or sig.levels.size == 0:
        reason = "signal step not run" if sig is None else f"signal step skipped: {sig.skipped or 'no bins'}"
        ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", fontsize=9)
        ax.set_ylabel("bin level")
        return
    counts = sig.outlying.sum(axis=0)
    order = sorted(range(len(sig.channels)), key=lambda j: (-counts[j], j))[:max_channels]
    mids = sig.bin_time.mean(axis=1)
    for start, end in _signal_spans(result):
        ax.axvspan(start, end, color=SIGNAL_COLOUR, alpha=0.25, lw=0)
    marked = False
    for j in order:
        (line,) = ax.plot(mids, sig.levels[:, j], lw=1, label=f"{sig.channels[j]} ({counts[j]} bins out)")
        out = sig.outlying[:, j]
        if out.any():
            ax.plot(mids[out], sig.levels[out, j], ls="none", marker="x", ms=5, color=line.get_color())
            marked = True
    handles, _ = ax.get_legend_handles_labels()
    if marked:
        handles.append(ax.plot([], [], ls="none", marker="x", color="k", label="bin outside range")[0])
    ax.set_ylabel(f"bin {sig.statistic} (transformed)")
    ax.set_title(f"signal: {sig.statistic}s of bins of {sig.events_per_bin} events", fontsize=9, loc="left", y=1.0)
    ax.legend(handles=handles, fontsize=7, loc="upper left")


def plot_excluded(sample_id: str, reason: str, path: str | os.PathLike) -> None:
    """The QC figure of an excluded sample: the reason, in words."""
    import textwrap

    fig = Figure(figsize=(8, 2.2), dpi=90)
    FigureCanvasAgg(fig)
    fig.text(0.03, 0.8, f"{sample_id}: excluded from the run", fontsize=12, weight="bold", color="#d00000")
    fig.text(0.03, 0.62, "\n".join(textwrap.wrap(reason, 110)), fontsize=9, va="top")
    fig.savefig(path, format="png", metadata={"Software": None})
