"""Write list-mode FCS 3.1 files: float32 with flowio, integers of any whole number of bytes by hand.

flowio writes float data only; integer files ($DATATYPE I, $PnB 8, 16, 24, ... 64, e.g. the 24-bit files of
Cytek's xP5) are written here, so that reading such files can be tested on files of known content.
"""

from __future__ import annotations

import os
import re
from array import array
from pathlib import Path

import flowio
import numpy as np

from .atomic import atomic_path

HEADER_BYTES = 58
TEXT_START = 256  # HEADER, then spaces up to here, then TEXT (as flowio and most instruments write)
_LAYOUT_KEYWORDS = ("$BEGINANALYSIS", "$ENDANALYSIS", "$BEGINSTEXT", "$ENDSTEXT", "$BEGINDATA", "$ENDDATA",
                    "$BYTEORD", "$DATATYPE", "$MODE", "$NEXTDATA", "$PAR", "$TOT")


def _checked_events(path: Path, events: np.ndarray, channels: list[str]) -> np.ndarray:
    events = np.asarray(events)
    if events.ndim != 2 or events.shape[1] != len(channels):
        raise ValueError(f"{path}: events have shape {events.shape} but {len(channels)} channels were named")
    return events


def write_fcs(path: str | os.PathLike, events: np.ndarray, channels: list[str], markers: list[str | None],
              *, keywords: dict[str, str]) -> None:
    """Write an FCS 3.1 file of 32-bit float values atomically (to a temporary name, then renamed).

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
    events = np.ascontiguousarray(_checked_events(path, events, channels), dtype="<f4")
    data = array("f")
    data.frombytes(events.tobytes())
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        flowio.create_fcs(handle, data, channels, opt_channel_names=[m or "" for m in markers],
                          metadata_dict=keywords)


def integer_bytes(values: np.ndarray, width: int, byteorder: str) -> np.ndarray:
    """Unsigned integers (a 1-D array) as rows of ``width`` bytes in ``byteorder`` ('<' or '>')."""
    as_bytes = np.ascontiguousarray(values, dtype=f"{byteorder}u8").view(np.uint8).reshape(-1, 8)
    return as_bytes[:, :width] if byteorder == "<" else as_bytes[:, 8 - width:]


def _text(pairs: list[tuple[str, str]], delimiter: bytes = b"/") -> bytes:
    """TEXT segment: delimiter, then keyword, delimiter, value, delimiter, ... (delimiters in values doubled)."""
    parts = [delimiter]
    for key, value in pairs:
        parts += [key.encode("utf-8"), delimiter, str(value).encode("utf-8").replace(delimiter, delimiter * 2),
                  delimiter]
    return b"".join(parts)


def _header(text: tuple[int, int], data: tuple[int, int]) -> bytes:
    """The 58-byte FCS 3.1 HEADER; offsets above 99,999,999 are written as 0 (they are in TEXT)."""
    fields = [v if v <= 99_999_999 else 0 for v in (*text, *data, 0, 0)]
    return b"FCS3.1    " + b"".join(f"{v:>8}".encode("ascii") for v in fields)


def write_integer_fcs(path: str | os.PathLike, events: np.ndarray, channels: list[str],
                      markers: list[str | None], *, keywords: dict[str, str], bits: int, byteorder: str = "<",
                      ranges: list[int] | None = None) -> None:
    """Write an FCS 3.1 file of unsigned integers of ``bits`` bits (8, 16, 24, ... 64) atomically.

    ``ranges`` gives $PnR of every column (default 2**bits); every value must be a whole number from 0 to
    2**bits - 1. ``keywords`` may not set the layout keywords ($BEGINDATA, $TOT, ...), which are the writer's.
    """
    path = Path(path)
    events = _checked_events(path, events, channels)
    if bits % 8 or not 8 <= bits <= 64:
        raise ValueError(f"{path}: integer FCS data need a whole number of bytes per value (8 to 64 bits), not {bits}")
    if byteorder not in ("<", ">"):
        raise ValueError(f"{path}: byte order must be '<' or '>', not {byteorder!r}")
    fixed = [k for k in keywords if k.upper() in _LAYOUT_KEYWORDS or re.fullmatch(r"\$P\d+[NBRES]", k.upper())]
    if fixed:
        raise ValueError(f"{path}: keywords {fixed} are set by the writer from the events; leave them out")
    width = bits // 8
    columns = []
    for j, name in enumerate(channels):
        column = events[:, j]
        if len(column) and (not np.all(np.isfinite(column)) or np.any(column != np.floor(column))
                            or column.min() < 0 or column.max() > 2.0 ** bits - 1):
            raise ValueError(f"{path}: channel {name!r} holds values that are not whole numbers from 0 to "
                             f"{2 ** bits - 1} ({bits}-bit unsigned integers)")
        columns.append(integer_bytes(column.astype(np.uint64), width, byteorder))
    data = np.hstack(columns).tobytes() if columns else b""
    pairs = [("$BEGINANALYSIS", "0"), ("$ENDANALYSIS", "0"), ("$BEGINSTEXT", "0"), ("$ENDSTEXT", "0"),
             ("$BEGINDATA", "0"), ("$ENDDATA", "0"), ("$BYTEORD", "1,2,3,4" if byteorder == "<" else "4,3,2,1"),
             ("$DATATYPE", "I"), ("$MODE", "L"), ("$NEXTDATA", "0"), ("$PAR", str(len(channels))),
             ("$TOT", str(len(events)))]
    for number, (name, marker) in enumerate(zip(channels, markers, strict=True), start=1):
        value_range = ranges[number - 1] if ranges is not None else 2 ** bits
        pairs += [(f"$P{number}N", name), (f"$P{number}B", str(bits)), (f"$P{number}E", "0,0"),
                  (f"$P{number}R", str(int(value_range)))]
        if marker:
            pairs.append((f"$P{number}S", marker))
    pairs += [(k, v) for k, v in keywords.items() if str(v).strip()]
    begin = TEXT_START
    for _ in range(5):  # the offsets are written in TEXT, whose length depends on them
        pairs[4:6] = [("$BEGINDATA", str(begin)), ("$ENDDATA", str(begin + max(len(data), 1) - 1))]
        text = _text(pairs)
        if TEXT_START + len(text) == begin:
            break
        begin = TEXT_START + len(text)
    header = _header((TEXT_START, begin - 1), (begin, begin + len(data) - 1) if data else (0, 0))
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + b" " * (TEXT_START - HEADER_BYTES) + text + data)
