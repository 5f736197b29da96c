"""Run-length helpers on boolean bin masks (vectorised)."""

from __future__ import annotations

import numpy as np


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of every run of True in a 1-D boolean mask."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    change = np.diff(padded)
    return np.flatnonzero(change == 1), np.flatnonzero(change == -1)


def drop_short_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """The mask without its runs of True shorter than ``min_run``."""
    mask = np.asarray(mask, dtype=bool).copy()
    if min_run <= 1:
        return mask
    starts, ends = true_runs(mask)
    for s, e in zip(starts[ends - starts < min_run], ends[ends - starts < min_run], strict=True):
        mask[s:e] = False
    return mask


def fill_short_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """The mask with runs of False of at most ``max_gap`` between two runs of True set to True."""
    mask = np.asarray(mask, dtype=bool).copy()
    if max_gap <= 0:
        return mask
    starts, ends = true_runs(~mask)
    inner = (starts > 0) & (ends < mask.size) & (ends - starts <= max_gap)
    for s, e in zip(starts[inner], ends[inner], strict=True):
        mask[s:e] = True
    return mask


def expand_bins(bin_mask: np.ndarray, bin_of_event: np.ndarray) -> np.ndarray:
    """Per-event mask from a per-bin mask and each event's bin index."""
    return np.asarray(bin_mask, dtype=bool)[bin_of_event]
