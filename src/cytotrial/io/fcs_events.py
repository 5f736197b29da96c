"""Decode the DATA segment of an FCS file with NumPy and scale it like flowio ($PnE, $PnG, $TIMESTEP)."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from .fcs_layout import Channel, Layout
from .fcs_segments import REEXPORT, FcsFormatError


def _dtype(channel: Channel, byteorder: str) -> np.dtype:
    code = "u" if channel.kind == "i" else "f"
    return np.dtype(f"{byteorder}{code}{channel.storage_bits // 8}")


def read_raw_events(handle: BinaryIO, layout: Layout) -> np.ndarray:
    """Stored event values as float64 (events x parameters), integers masked by their $PnB/$PnR bit mask.

    Notes on masked values and non-finite floats are appended to ``layout.notes``.
    """
    channels, total = layout.channels, layout.event_count
    if total == 0:
        return np.empty((0, len(channels)), dtype=np.float64)
    needed = total * layout.event_bytes
    handle.seek(layout.data_start)
    buffer = handle.read(needed)
    if len(buffer) != needed:
        raise FcsFormatError(f"only {len(buffer)} of the {needed} bytes of events could be read from byte "
                             f"{layout.data_start} (the file is truncated). {REEXPORT}")
    dtypes = [_dtype(c, layout.byteorder) for c in channels]
    with np.errstate(all="ignore"):  # signalling NaNs in damaged float data are kept as NaN (and noted)
        if len(set(dtypes)) == 1:
            events = _uniform(np.frombuffer(buffer, dtype=dtypes[0]).reshape(total, len(channels)), layout)
        else:
            record = np.frombuffer(buffer, dtype=np.dtype([(f"p{c.number}", d) for c, d in zip(channels, dtypes)]))
            events = np.empty((total, len(channels)), dtype=np.float64)
            for j, channel in enumerate(channels):
                column = record[f"p{channel.number}"]
                events[:, j] = _masked(channel, column, layout.notes) if channel.mask is not None else column
    _note_non_finite(events, channels, layout.notes)
    return events


def _uniform(stored: np.ndarray, layout: Layout) -> np.ndarray:
    """float64 copy of a matrix stored in one type, with integer bit masks applied column-wise."""
    masked = [c for c in layout.channels if c.mask is not None]
    if not masked:
        return stored.astype(np.float64)
    masks = np.array([c.mask if c.mask is not None else -1 for c in layout.channels]).astype(stored.dtype)
    for channel in masked:
        _note_high_bits(channel, stored[:, channel.number - 1], layout.notes)
    return (stored & masks).astype(np.float64)


def _masked(channel: Channel, column: np.ndarray, notes: list[str]) -> np.ndarray:
    """Integer values with the bits above the channel's range cleared."""
    _note_high_bits(channel, column, notes)
    return column & column.dtype.type(channel.mask)


def _note_high_bits(channel: Channel, column: np.ndarray, notes: list[str]) -> None:
    high = int(np.count_nonzero(column > channel.mask))
    if high:
        notes.append(f"channel {channel.name!r}: {high} values had bits above $P{channel.number}R="
                     f"{channel.range:g} set; masked to {int(channel.mask).bit_length()} bits")


def _note_non_finite(events: np.ndarray, channels: list[Channel], notes: list[str]) -> None:
    if not any(c.kind != "i" for c in channels):
        return
    bad = np.count_nonzero(~np.isfinite(events), axis=0)
    for channel, count in zip(channels, bad):
        if count:
            notes.append(f"channel {channel.name!r}: {int(count)} values are NaN or infinite")


def time_step(layout: Layout) -> float:
    """$TIMESTEP as a positive float; 1 (with a note) when it is missing or unusable."""
    text = layout.keywords.get("timestep")
    try:
        value = float(text) if text is not None else 1.0
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        layout.notes.append(f"$TIMESTEP is {text[:20]!r}; time values were not scaled")  # type: ignore[index]
        return 1.0
    return value


def scale_events(events: np.ndarray, layout: Layout) -> np.ndarray:
    """Stored values to linear values IN PLACE, as flowio does: time x $TIMESTEP, log channels
    10**(decades * x / $PnR) * offset, then division by the gain $PnG. Returns ``events``."""
    times = [j for j, c in enumerate(layout.channels) if c.name.lower() == "time"]
    time_index = times[-1] if times else None  # like flowio: the last channel named 'time'
    step = time_step(layout) if times else 1.0
    with np.errstate(all="ignore"):  # overflow of damaged values gives inf, as in flowio
        for j, channel in enumerate(layout.channels):
            if j == time_index and step != 1.0:
                events[:, j] *= step
            if channel.decades > 0:
                events[:, j] = 10 ** (channel.decades * events[:, j] / channel.range) * channel.log0
            if channel.gain != 1.0:
                events[:, j] /= channel.gain
    return events
