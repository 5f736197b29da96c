"""Write list-mode FCS 3.1 files (float32, little-endian) with flowio."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import flowio
import numpy as np

from .atomic import atomic_path


def write_fcs(path: str | os.PathLike, events: np.ndarray, channels: list[str], markers: list[str | None],
              keywords: dict[str, str]) -> None:
    """Write an FCS 3.1 file atomically (to a temporary name, then renamed).

    Parameters
    ----------
    events
        (n_events, n_channels) values, stored as 32-bit floats.
    channels
        $PnN of every column.
    markers
        $PnS of every column (None or "" for none).
    keywords
        Further TEXT keywords, e.g. ``{"$CYT": "...", "$SPILLOVER": "...", "$P5V": "510"}``.
    """
    path = Path(path)
    events = np.ascontiguousarray(events, dtype="<f4")
    if events.ndim != 2 or events.shape[1] != len(channels):
        raise ValueError(f"{path}: events have shape {events.shape} but {len(channels)} channels were named")
    data = array("f")
    data.frombytes(events.tobytes())
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        flowio.create_fcs(handle, data, channels, opt_channel_names=[m or "" for m in markers],
                          metadata_dict=keywords)
