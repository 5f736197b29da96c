"""Decode the DATA segment of an FCS file with NumPy and scale it like flowio ($PnE, $PnG, $TIMESTEP).

Integers of 3, 5, 6 or 7 bytes ($PnB 24, 40, 48, 56; Cytek's xP5 writes 24) are widened here by hand: NumPy has
no such types, flowio/flowkit refuse them and fcsparser 0.2.8 decodes them wrongly.

Events are decoded in blocks of rows (:data:`CHUNK_ROWS`), so that neither the DATA bytes of the whole file nor
a second copy of the event matrix is ever held: :func:`read_raw_events` fills one float64 matrix block by block
and :func:`iter_scaled_events` hands out scaled blocks one at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from .fcs_layout import Channel, Layout
from .fcs_segments import REEXPORT, FcsFormatError

CHUNK_ROWS = 8_192  # events per decoded block: 22 float64 parameters = 1.4 MiB


def _dtype(channel: Channel, byteorder: str) -> np.dtype:
    """The stored type of one value; a width NumPy has no integer for is read as its bytes (see :func:`_widen`)."""
    code = "u" if channel.kind == "i" else "f"
    width = channel.storage_bits // 8
    if width in (1, 2, 4, 8):
        return np.dtype(f"{byteorder}{code}{width}")
    return np.dtype(("u1", (width,)))


def _widen(stored_bytes: np.ndarray, byteorder: str) -> np.ndarray:
    """Unsigned integers from their bytes (rows x 3, 5, 6 or 7 bytes, in ``byteorder``), as uint32 or uint64."""
    rows, width = stored_bytes.shape
    size = 4 if width < 4 else 8
    wide = np.zeros((rows, size), dtype=np.uint8)
    if byteorder == "<":
        wide[:, :width] = stored_bytes  # the high bytes are the added zeros
    else:
        wide[:, size - width:] = stored_bytes
    return wide.view(f"{byteorder}u{size}").reshape(rows)


class _BlockDecoder:
    """Decodes blocks of stored rows to float64 and counts what the notes report (masked bits, non-finite
    values) over all blocks, so that a file gets the same notes however it is split."""

    def __init__(self, layout: Layout):
        self.layout = layout
        dtypes = [_dtype(c, layout.byteorder) for c in layout.channels]
        self.uniform = dtypes[0] if len(set(dtypes)) == 1 and dtypes[0].subdtype is None else None
        self.record = None if self.uniform is not None else np.dtype(
            [(f"p{c.number}", d) for c, d in zip(layout.channels, dtypes)])
        n = len(layout.channels)
        self.high_bits = np.zeros(n, dtype=np.int64)
        self.non_finite = np.zeros(n, dtype=np.int64)
        self.masked = [j for j, c in enumerate(layout.channels) if c.mask is not None]
        if self.uniform is not None and self.masked:
            self.masks = np.array([c.mask if c.mask is not None else -1 for c in layout.channels]
                                  ).astype(self.uniform)
        self.has_floats = any(c.kind != "i" for c in layout.channels)

    def decode(self, buffer: bytes, out: np.ndarray) -> None:
        """Stored rows in ``buffer`` -> float64 ``out`` (rows x parameters), integer bit masks applied."""
        channels = self.layout.channels
        with np.errstate(all="ignore"):  # signalling NaNs in damaged float data are kept as NaN (and noted)
            if self.uniform is not None:
                stored = np.frombuffer(buffer, dtype=self.uniform).reshape(out.shape)
                for j in self.masked:
                    self.high_bits[j] += np.count_nonzero(stored[:, j] > channels[j].mask)
                out[...] = (stored & self.masks) if self.masked else stored
            else:
                record = np.frombuffer(buffer, dtype=self.record)
                for j, channel in enumerate(channels):
                    column = record[f"p{channel.number}"]
                    if column.ndim == 2:  # the bytes of a 3-, 5-, 6- or 7-byte integer
                        column = _widen(column, self.layout.byteorder)
                    if channel.mask is not None:
                        self.high_bits[j] += np.count_nonzero(column > channel.mask)
                        column = column & column.dtype.type(channel.mask)
                    out[:, j] = column
        if self.has_floats:
            finite = np.isfinite(out)
            if not finite.all():  # counted per column only then: count_nonzero along axis 0 is ~20x slower
                self.non_finite += np.count_nonzero(~finite, axis=0)

    def add_notes(self) -> None:
        """Append the notes of everything decoded so far to ``layout.notes`` (once, after the last block)."""
        notes, channels = self.layout.notes, self.layout.channels
        for j, channel in enumerate(channels):
            if self.high_bits[j]:
                notes.append(f"channel {channel.name!r}: {int(self.high_bits[j])} values had bits above "
                             f"$P{channel.number}R={channel.range:g} set; masked to "
                             f"{int(channel.mask).bit_length()} bits")
        for channel, count in zip(channels, self.non_finite):
            if count:
                notes.append(f"channel {channel.name!r}: {int(count)} values are NaN or infinite")


def _check_data_size(handle: BinaryIO, layout: Layout) -> None:
    needed = layout.event_count * layout.event_bytes
    available = max(0, os.fstat(handle.fileno()).st_size - layout.data_start)
    if available < needed:
        raise FcsFormatError(f"only {min(available, needed)} of the {needed} bytes of events could be read from "
                             f"byte {layout.data_start} (the file is truncated). {REEXPORT}")


def _read_block(handle: BinaryIO, layout: Layout, rows: int) -> bytes:
    needed = rows * layout.event_bytes
    buffer = handle.read(needed)
    if len(buffer) != needed:
        raise FcsFormatError(f"a block of {needed} bytes of events could not be read (the file is truncated "
                             f"or changed while it was read). {REEXPORT}")
    return buffer


def _decoded_blocks(handle: BinaryIO, layout: Layout, chunk_rows: int, into: np.ndarray | None = None
                    ) -> Iterator[tuple[int, np.ndarray]]:
    """(first event index, float64 block of stored values) for consecutive blocks of the DATA segment, decoded
    into ``into[start:stop]`` when given; the notes of all blocks are appended after the last one."""
    total = layout.event_count
    if total:
        _check_data_size(handle, layout)
    decoder = _BlockDecoder(layout)
    handle.seek(layout.data_start)
    for start in range(0, total, chunk_rows):
        stop = min(total, start + chunk_rows)
        block = into[start:stop] if into is not None else np.empty((stop - start, len(layout.channels)))
        decoder.decode(_read_block(handle, layout, stop - start), block)
        yield start, block
    decoder.add_notes()


def read_raw_events(handle: BinaryIO, layout: Layout, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Stored event values as float64 (events x parameters), integers masked by their $PnB/$PnR bit mask.

    Notes on masked values and non-finite floats are appended to ``layout.notes``.
    """
    events = np.empty((layout.event_count, len(layout.channels)), dtype=np.float64)
    for _ in _decoded_blocks(handle, layout, chunk_rows, into=events):
        pass
    return events


def iter_scaled_events(handle: BinaryIO, layout: Layout, chunk_rows: int = CHUNK_ROWS
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """(first event index, float64 block of scaled events) for consecutive blocks of the DATA segment.

    The values equal :func:`read_raw_events` followed by :func:`scale_events`; the notes (masked bits,
    non-finite values, $TIMESTEP) are appended to ``layout.notes`` after the last block, in that order.
    """
    step = _usable_time_step(layout)
    for start, block in _decoded_blocks(handle, layout, chunk_rows):
        yield start, scale_events(block, layout, 1.0 if step is None else step)
    if step is None:
        time_step(layout)  # the note about an unusable $TIMESTEP, once


def _usable_time_step(layout: Layout) -> float | None:
    """$TIMESTEP as a positive float (1 when it is missing); None when it is unusable."""
    text = layout.keywords.get("timestep")
    try:
        value = float(text) if text is not None else 1.0
    except ValueError:
        return None
    return value if np.isfinite(value) and value > 0 else None


def time_step(layout: Layout) -> float:
    """$TIMESTEP as a positive float; 1 (with a note) when it is missing or unusable."""
    value = _usable_time_step(layout)
    if value is None:
        text = layout.keywords.get("timestep")
        layout.notes.append(f"$TIMESTEP is {text[:20]!r}; time values were not scaled")  # type: ignore[index]
        return 1.0
    return value


def scale_events(events: np.ndarray, layout: Layout, step: float | None = None) -> np.ndarray:
    """Stored values to linear values IN PLACE, as flowio does: time x $TIMESTEP, log channels
    10**(decades * x / $PnR) * offset, then division by the gain $PnG. Returns ``events``.

    ``step``: the time step to use (None: :func:`time_step`, which notes an unusable $TIMESTEP)."""
    times = [j for j, c in enumerate(layout.channels) if c.name.lower() == "time"]
    time_index = times[-1] if times else None  # like flowio: the last channel named 'time'
    if not times:
        step = 1.0
    elif step is None:
        step = time_step(layout)
    with np.errstate(all="ignore"):  # overflow of damaged values gives inf, as in flowio
        for j, channel in enumerate(layout.channels):
            if j == time_index and step != 1.0:
                events[:, j] *= step
            if channel.decades > 0:
                events[:, j] = 10 ** (channel.decades * events[:, j] / channel.range) * channel.log0
            if channel.gain != 1.0:
                events[:, j] /= channel.gain
    return events
