"""Margin events: saturated at the top of a detector's range, or at/below its bottom floor.

As PeacoQC's ``RemoveMargins`` (events >= maxRange = $PnR - 1, or <= the bottom of the range), measured on
linear values: raw values are exact; compensated values are exact for scatter (which is not compensated) and
pull saturated fluorescence values below the top (see ``QcSettings.margin_top_tolerance``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MarginResult:
    """Margin events of one sample.

    Attributes
    ----------
    mask
        (n_events,) True for a margin event (in any checked channel).
    channels
        Names of the checked channels.
    top_counts, bottom_counts
        (n_checked,) events at the top / bottom margin of each checked channel (an event saturated in two
        channels counts in both).
    top_thresholds, bottom_thresholds
        (n_checked,) the thresholds used (bottom: NaN when the channel has no floor).
    """

    mask: np.ndarray
    channels: tuple[str, ...]
    top_counts: np.ndarray
    bottom_counts: np.ndarray
    top_thresholds: np.ndarray
    bottom_thresholds: np.ndarray

    @property
    def n_removed(self) -> int:
        return int(self.mask.sum())

    def counts(self) -> dict[str, int]:
        """Margin events per checked channel (top + bottom)."""
        return {c: int(t + b) for c, t, b in zip(self.channels, self.top_counts, self.bottom_counts, strict=True)}

    def table(self) -> list[dict]:
        """One row per checked channel: channel, top, bottom, top_threshold, bottom_threshold."""
        return [{"channel": c, "top": int(t), "bottom": int(b), "top_threshold": float(tt),
                 "bottom_threshold": None if np.isnan(bt) else float(bt)}
                for c, t, b, tt, bt in zip(self.channels, self.top_counts, self.bottom_counts,
                                           self.top_thresholds, self.bottom_thresholds, strict=True)]


def find_margin_events(linear: np.ndarray, ranges, channel_names, channels=None, *, floors=None,
                       top_tolerance: float = 0.0) -> MarginResult:
    """Events at the margins of the checked channels.

    Parameters
    ----------
    linear
        (n_events, n_channels) linear values on the $PnR scale (raw or compensated).
    ranges
        (n_channels,) $PnR of every channel; a value >= $PnR - 1 - ``top_tolerance`` x $PnR is saturated.
    channel_names
        (n_channels,) names, for the per-channel counts.
    channels
        Indices of the channels to check; None checks all.
    floors
        (n_channels,) bottom floor of every channel: a value <= it is a margin event; NaN or None: no floor.
    top_tolerance
        Fraction of $PnR below $PnR - 1 that still counts as saturated.
    """
    linear = np.asarray(linear)
    if linear.ndim != 2:
        raise ValueError(f"linear values must be 2-D (events x channels), not shape {linear.shape}")
    n, c = linear.shape
    ranges = np.asarray(ranges, dtype=float)
    names = list(channel_names)
    if ranges.shape != (c,) or len(names) != c:
        raise ValueError(f"{c} channels but {ranges.size} ranges and {len(names)} names")
    floors = np.full(c, np.nan) if floors is None else np.asarray(floors, dtype=float)
    checked = np.arange(c) if channels is None else np.asarray(list(channels), dtype=int)
    selected = np.zeros(c, dtype=bool)
    selected[checked] = True

    top = np.where(selected, ranges - 1.0 - top_tolerance * ranges, np.inf)
    bottom = np.where(selected & ~np.isnan(floors), floors, -np.inf)
    top_counts, at_top = _beyond(linear, top, np.greater_equal)
    bottom_counts, at_bottom = _beyond(linear, bottom, np.less_equal)
    mask = at_top | at_bottom
    return MarginResult(mask=mask, channels=tuple(names[i] for i in checked),
                        top_counts=top_counts[checked].astype(np.int64),
                        bottom_counts=bottom_counts[checked].astype(np.int64),
                        top_thresholds=top[checked], bottom_thresholds=np.where(
                            np.isinf(bottom[checked]), np.nan, bottom[checked]))


def _beyond(linear: np.ndarray, thresholds: np.ndarray, compare) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel counts and per-event mask of ``compare(value, threshold)`` (the other channels have an
    infinite threshold). Only channels whose extreme value reaches the threshold are compared event by event,
    which is most of the time none or a few."""
    n, c = linear.shape
    counts = np.zeros(c, dtype=np.int64)
    columns = np.flatnonzero(np.isfinite(thresholds))
    if columns.size == 0 or n == 0:
        return counts, np.zeros(n, dtype=bool)
    dtype = linear.dtype if np.issubdtype(linear.dtype, np.floating) else np.float64
    limits = thresholds.astype(dtype)
    block = linear if columns.size == c else linear[:, columns]
    extreme = block.max(axis=0) if compare is np.greater_equal else block.min(axis=0)
    reached = columns[compare(extreme, limits[columns])]
    if reached.size == 0:
        return counts, np.zeros(n, dtype=bool)
    block = linear[:, reached]
    hits = compare(block, limits[reached])
    counts[reached] = np.count_nonzero(hits, axis=0)
    return counts, hits.any(axis=1)
