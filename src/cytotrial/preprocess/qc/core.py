"""Event QC of one sample: margins -> flow rate -> signal, each on the events the previous steps kept."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .flow_rate import FlowRateResult, find_flow_rate_anomalies
from .margins import MarginResult, find_margin_events
from .settings import STEPS, QcSettings
from .signal import SignalResult, find_signal_anomalies

SUMMARY_COLUMNS: tuple[str, ...] = ("sample_id", "events_in", "margin_removed", "flow_rate_removed",
                                    "signal_removed", "events_out", "percent_removed", "percent_margins",
                                    "flags", "warnings")
"""Columns of the per-sample QC table, in order (``QcResult.summary_row``)."""


@dataclass(frozen=True)
class QcResult:
    """Event QC of one sample.

    Attributes
    ----------
    keep
        (n_events,) True for an event that passed every step.
    removed_by_step
        Step -> events it removed (0 for a step that did not run), in the order margins, flow_rate, signal.
    events_in, events_out, percent_removed, percent_margins
        Counts and percentages of the events in.
    flags
        Failed criteria, e.g. ``"margins 12.3% > 10%"``, ``"removed 71.0% > 70%"``,
        ``"too few events: 4200 < 5000"``.
    warnings
        Things to look at that do not fail the sample: Time going backwards, gaps in time, drifting channels.
    notes
        Steps that were skipped and why.
    margins, flow_rate, signal
        Each step's detailed result (None when it did not run).
    """

    keep: np.ndarray
    removed_by_step: dict[str, int]
    events_in: int
    events_out: int
    percent_removed: float
    percent_margins: float
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    margins: MarginResult | None = None
    flow_rate: FlowRateResult | None = None
    signal: SignalResult | None = None
    settings: QcSettings = field(default_factory=QcSettings)

    def summary_row(self, sample_id: str) -> dict:
        """One row of the per-sample QC table (keys: ``SUMMARY_COLUMNS``; flags / warnings joined by '; ')."""
        return {"sample_id": sample_id, "events_in": self.events_in,
                "margin_removed": self.removed_by_step["margins"],
                "flow_rate_removed": self.removed_by_step["flow_rate"],
                "signal_removed": self.removed_by_step["signal"], "events_out": self.events_out,
                "percent_removed": round(self.percent_removed, 3), "percent_margins": round(self.percent_margins, 3),
                "flags": "; ".join(self.flags), "warnings": "; ".join(self.warnings)}

    def details(self) -> dict:
        """JSON-ready record of the QC of one sample: counts, flags, each step's parameters and findings."""
        out: dict = {"events_in": self.events_in, "events_out": self.events_out,
                     "removed_by_step": dict(self.removed_by_step), "percent_removed": self.percent_removed,
                     "percent_margins": self.percent_margins, "flags": list(self.flags),
                     "warnings": list(self.warnings), "notes": list(self.notes), "settings": self.settings.to_dict()}
        if self.margins is not None:
            out["margins"] = self.margins.table()
        fr = self.flow_rate
        if fr is not None:
            out["flow_rate"] = {"bin_s": fr.bin_s, "time_resolution_s": fr.time_resolution,
                                "median_rate": fr.median_rate, "sd_rate": fr.sd_rate, "lower": fr.lower,
                                "upper": fr.upper, "anomalous_bins": int(fr.anomalous.sum()),
                                "n_bins": int(fr.counts.size), "removed_intervals_s": fr.removed_intervals.tolist(),
                                "gaps_s": fr.gaps.tolist(), "backward_steps": fr.backward_steps,
                                "skipped": fr.skipped}
        sig = self.signal
        if sig is not None:
            out["signal"] = {"events_per_bin": sig.events_per_bin, "n_bins": int(sig.anomalous.size),
                             "anomalous_bins": int(sig.anomalous.sum()), "outlying_bins": sig.outlying_bins(),
                             "drift": dict(sig.drift), "skipped": sig.skipped}
        return _plain(out)


def resolve_channels(spec, channel_names, is_fluorescence: np.ndarray) -> np.ndarray:
    """Channel indices for 'all', 'scatter', 'fluorescence' or a list of names (unknown names are an error)."""
    names = list(channel_names)
    if isinstance(spec, str):
        if spec == "all":
            return np.arange(len(names))
        if spec == "fluorescence":
            return np.flatnonzero(is_fluorescence)
        if spec == "scatter":
            return np.flatnonzero(~is_fluorescence)
        spec = [spec]
    missing = [c for c in spec if c not in names]
    if missing:
        raise ValueError(f"qc channels {missing} are not among the sample's channels {names}")
    return np.array([names.index(c) for c in spec], dtype=np.int64)


def run_event_qc(time_s, values, channel_names, channel_ranges, *, fluorescence_idx,
                 settings: QcSettings | dict | None = None, linear=None) -> QcResult:
    """Event QC of one sample: margin events, flow-rate anomalies, signal anomalies.

    Parameters
    ----------
    time_s
        (n_events,) acquisition time in seconds, in acquisition (file) order.
    values
        (n_events, n_channels) transformed values (cytotrial: scatter linear / $PnR, fluorescence logicle,
        both on 0..1), for the signal step.
    channel_names
        (n_channels,) channel names.
    channel_ranges
        (n_channels,) $PnR of every channel.
    fluorescence_idx
        Indices of the fluorescence channels (or a boolean mask over the channels); the others are scatter.
    settings
        ``QcSettings`` or a mapping for ``QcSettings.from_dict``; None: defaults.
    linear
        (n_events, n_channels) linear values on the $PnR scale (raw or compensated), for the margins step;
        required when that step is enabled.
    """
    settings = settings if isinstance(settings, QcSettings) else QcSettings.from_dict(settings)
    time_s = np.asarray(time_s, dtype=np.float64)
    values = np.asarray(values)
    names = [str(c) for c in channel_names]
    ranges = np.asarray(channel_ranges, dtype=np.float64)
    n = time_s.size
    if values.ndim != 2 or values.shape != (n, len(names)) or ranges.shape != (len(names),):
        raise ValueError(f"shapes disagree: time_s {time_s.shape}, values {values.shape}, "
                         f"{len(names)} channel names, ranges {ranges.shape}")
    if not np.isfinite(time_s).all():
        raise ValueError("time_s has non-finite values")
    fluorescence = np.asarray(list(fluorescence_idx))
    if fluorescence.dtype == bool:
        if fluorescence.shape != (len(names),):
            raise ValueError(f"fluorescence mask has {fluorescence.size} entries for {len(names)} channels")
        is_fluorescence = fluorescence
    else:
        is_fluorescence = np.zeros(len(names), dtype=bool)
        is_fluorescence[fluorescence.astype(np.int64)] = True

    keep = np.ones(n, dtype=bool)
    removed = dict.fromkeys(STEPS, 0)
    notes: list[str] = []
    margins = flow_rate = signal = None

    if "margins" in settings.steps:
        if linear is None:
            raise ValueError("the margins step needs the linear values (linear=...); "
                             "or leave 'margins' out of qc.steps")
        linear = np.asarray(linear)
        if linear.shape != values.shape:
            raise ValueError(f"linear values have shape {linear.shape}, transformed {values.shape}")
        floors = np.where(is_fluorescence, _floor(settings.margin_floor_fluorescence),
                          _floor(settings.margin_floor_scatter))
        margins = find_margin_events(linear, ranges, names,
                                     resolve_channels(settings.margin_channels, names, is_fluorescence),
                                     floors=floors, top_tolerance=settings.margin_top_tolerance)
        keep &= ~margins.mask
        removed["margins"] = margins.n_removed

    if "flow_rate" in settings.steps:
        kept = np.flatnonzero(keep)
        flow_rate = find_flow_rate_anomalies(time_s[kept], settings.flow_rate_bin_s,
                                             settings.flow_rate_events_per_bin, settings.flow_rate_mad,
                                             fill_bins=settings.flow_rate_fill_bins, refine=settings.flow_rate_refine)
        keep[kept[flow_rate.mask]] = False
        removed["flow_rate"] = flow_rate.n_removed
        if flow_rate.skipped:
            notes.append(f"flow_rate skipped: {flow_rate.skipped}")

    if "signal" in settings.steps:
        kept = np.flatnonzero(keep)
        channels = resolve_channels(settings.signal_channels, names, is_fluorescence)
        every_channel = channels.size == len(names) and (channels == np.arange(len(names))).all()
        signal = find_signal_anomalies(values, [names[i] for i in channels], time_s[kept], settings.events_per_bin,
                                       min_bins=settings.signal_min_bins, mad=settings.signal_mad,
                                       min_shift=settings.signal_min_shift, consecutive_bins=settings.consecutive_bins,
                                       min_run_bins=settings.min_run_bins, drift_min_shift=settings.drift_min_shift,
                                       statistic=settings.signal_statistic, rows=kept if kept.size < n else None,
                                       columns=None if every_channel else channels)
        keep[kept[signal.mask]] = False
        removed["signal"] = signal.n_removed
        if signal.skipped:
            notes.append(f"signal skipped: {signal.skipped}")

    events_out = int(keep.sum())
    percent_removed = 100.0 * (n - events_out) / n if n else 0.0
    percent_margins = 100.0 * removed["margins"] / n if n else 0.0
    flags = []
    if percent_margins > settings.max_margin_percent:
        flags.append(f"margins {percent_margins:.1f}% > {settings.max_margin_percent:g}%")
    if percent_removed > settings.max_removed_percent:
        flags.append(f"removed {percent_removed:.1f}% > {settings.max_removed_percent:g}%")
    if events_out < settings.min_events:
        flags.append(f"too few events: {events_out} < {settings.min_events}")
    return QcResult(keep=keep, removed_by_step=removed, events_in=n, events_out=events_out,
                    percent_removed=percent_removed, percent_margins=percent_margins, flags=flags,
                    warnings=_warnings(flow_rate, signal), notes=notes, margins=margins, flow_rate=flow_rate,
                    signal=signal, settings=settings)


def _plain(value):
    """Python scalars, lists and dicts only (NaN -> None), for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _floor(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _warnings(flow_rate: FlowRateResult | None, signal: SignalResult | None) -> list[str]:
    out = []
    if flow_rate is not None and flow_rate.backward_steps:
        out.append(f"time goes backwards {flow_rate.backward_steps} time(s)")
    if flow_rate is not None and len(flow_rate.gaps):
        total = float(np.sum(flow_rate.gaps[:, 1] - flow_rate.gaps[:, 0]))
        out.append(f"time gaps: {len(flow_rate.gaps)} ({total:.1f} s without events)")
    if signal is not None:
        out.extend(f"drift: {c} {d}" for c, d in signal.drift.items())
    return out
