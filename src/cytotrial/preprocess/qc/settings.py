"""Settings of the event-level QC (the ``qc:`` section of the workflow config).

Defaults follow PeacoQC (Emmaneel et al. 2022: MAD = 5, consecutive_bins = 5, at least 100 bins, margins at the
detector range) and flowAI (Monaco et al. 2016: flow rate per short time bin, margins, signal) where they apply,
adapted to one pass over already compensated and transformed events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

STEPS: tuple[str, ...] = ("margins", "flow_rate", "signal")
"""QC steps, in the order they are applied (each on the events the previous ones kept)."""

CHANNEL_GROUPS: tuple[str, ...] = ("all", "scatter", "fluorescence")


@dataclass(frozen=True)
class QcSettings:
    """Knobs of the event QC. Every field has a default; ``from_dict`` builds one from a config mapping.

    Steps
    -----
    steps
        Steps to run, a subset of ``("margins", "flow_rate", "signal")``; they always run in that order.

    Margins (events at the edges of a detector's range; measured on linear values)
    --------------------------------------------------------------------------------
    margin_channels
        ``"all"``, ``"scatter"``, ``"fluorescence"`` or a list of channel names.
    margin_top_tolerance
        An event is saturated in a channel when its linear value is >= ($PnR - 1) - tolerance x $PnR. 0 is
        exact for raw and for scatter values; compensation moves saturated fluorescence values below the top,
        so raise it (e.g. 0.01) to catch more of them when only compensated values are available.
    margin_floor_scatter, margin_floor_fluorescence
        Linear values <= the floor are bottom-margin events (None: no bottom margin). Scatter at or below 0 is
        baseline-clipped (as PeacoQC's ``minRange`` of 0); compensated fluorescence is legitimately negative,
        so it has no floor by default.

    Flow rate (events per second over time; flowAI-like)
    -------------------------------------------------------
    flow_rate_bin_s
        Width of a time bin in seconds; None chooses it so that a bin holds ``flow_rate_events_per_bin`` events
        at the sample's mean rate (rounded to whole ticks of the Time channel).
    flow_rate_events_per_bin
        Target count per bin for the automatic width: 500 gives a Poisson noise of 4.5 %, so that with
        ``flow_rate_mad`` = 5 a rate change of about 25 % is detected.
    flow_rate_mad
        A bin is anomalous when its rate is more than this many robust SDs (1.4826 x MAD of the bin rates,
        never below the Poisson SD) from the median rate.
    flow_rate_fill_bins
        Good stretches of at most this many bins between anomalous bins are removed too.
    flow_rate_refine
        Sub-bins per bin used to trim the edges of an anomalous stretch (1: no trimming), so that a clog
        does not take the normal events of its edge bins with it.

    Signal (per-bin levels of the transformed values; PeacoQC-like)
    -----------------------------------------------------------------
    signal_channels
        ``"all"``, ``"scatter"``, ``"fluorescence"`` or a list of channel names.
    events_per_bin
        Consecutive events per bin (PeacoQC uses 2000; 1000 localises a short disturbance better).
    signal_statistic
        Per-bin level of each channel: ``"mean"`` or ``"median"`` (PeacoQC). The mean by default: the median
        of a bimodal channel jumps between its modes when the positive fraction is near 50 %, which gave false
        anomalies on simulated 17-colour data; the bounded transformed values keep the mean robust.
    signal_min_bins
        Fewer bins than this and the bin size shrinks to events / ``signal_min_bins`` (as PeacoQC, 100).
    signal_mad
        A bin is anomalous in a channel when its level is more than this many MADs (x 1.4826) of the bin
        levels from their median (PeacoQC's MAD = 5).
    signal_min_shift
        ... and more than this from it, in the units of the transformed values (0..1 in cytotrial): shifts of
        under 1 % of the scale are irrelevant for gating and would otherwise be flagged in very quiet channels.
    consecutive_bins
        Good stretches of at most this many bins between anomalous bins are removed too (PeacoQC: 5).
    min_run_bins
        Anomalous stretches shorter than this many bins are ignored (1: every anomalous bin counts).
    drift_min_shift
        A channel drifts when its smoothed bin levels rise (or fall) through most of the acquisition (as
        PeacoQC's trend check) by more than this in total; drift is reported, not removed.

    Flags
    -----
    max_margin_percent, max_removed_percent, min_events
        Flag a sample whose margin events exceed 10 % of its events (PeacoQC's warning), whose QC removes
        more than 70 % of its events, or that keeps fewer than ``min_events`` events.
    """

    steps: tuple[str, ...] = STEPS
    # margins
    margin_channels: str | tuple[str, ...] = "all"
    margin_top_tolerance: float = 0.0
    margin_floor_scatter: float | None = 0.0
    margin_floor_fluorescence: float | None = None
    # flow rate
    flow_rate_bin_s: float | None = None
    flow_rate_events_per_bin: int = 500
    flow_rate_mad: float = 5.0
    flow_rate_fill_bins: int = 1
    flow_rate_refine: int = 5
    # signal
    signal_channels: str | tuple[str, ...] = "all"
    events_per_bin: int = 1000
    signal_statistic: str = "mean"
    signal_min_bins: int = 100
    signal_mad: float = 5.0
    signal_min_shift: float = 0.01
    consecutive_bins: int = 5
    min_run_bins: int = 1
    drift_min_shift: float = 0.05
    # flags
    max_margin_percent: float = 10.0
    max_removed_percent: float = 70.0
    min_events: int = 5000

    def __post_init__(self) -> None:
        for name in ("steps", "margin_channels", "signal_channels"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ValueError(f"qc.steps: unknown step(s) {unknown}; choose from {list(STEPS)}")
        for name in ("margin_channels", "signal_channels"):
            value = getattr(self, name)
            if isinstance(value, str) and value not in CHANNEL_GROUPS:
                raise ValueError(f"qc.{name} must be one of {list(CHANNEL_GROUPS)} or a list of channel names, "
                                 f"not {value!r}")
        positive_ints = ("flow_rate_events_per_bin", "flow_rate_refine", "events_per_bin", "signal_min_bins",
                         "min_run_bins")
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"qc.{name} must be >= 1, not {getattr(self, name)!r}")
        for name in ("flow_rate_fill_bins", "consecutive_bins", "min_events"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"qc.{name} must be >= 0, not {getattr(self, name)!r}")
        for name in ("flow_rate_mad", "signal_mad"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"qc.{name} must be > 0, not {getattr(self, name)!r}")
        if self.signal_statistic not in ("median", "mean"):
            raise ValueError(f"qc.signal_statistic must be 'median' or 'mean', not {self.signal_statistic!r}")
        if self.flow_rate_bin_s is not None and not float(self.flow_rate_bin_s) > 0:
            raise ValueError(f"qc.flow_rate_bin_s must be > 0 or null, not {self.flow_rate_bin_s!r}")
        if not 0 <= float(self.margin_top_tolerance) < 1:
            raise ValueError(f"qc.margin_top_tolerance must be in [0, 1), not {self.margin_top_tolerance!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> QcSettings:
        """Settings from a config mapping; missing keys keep their defaults, unknown keys are an error."""
        d = dict(d or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(k for k in d if k not in known)
        if unknown:
            raise ValueError(f"unknown qc setting(s): {', '.join(map(str, unknown))}; known settings: "
                             f"{', '.join(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping of every setting (lists for tuples), e.g. for a run log."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
