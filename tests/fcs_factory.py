"""Build FCS files byte by byte, so that reader tests know exactly what was written.

Every quirk seen in instrument files can be produced on purpose: any FCS version string, TEXT delimiter,
data type (I/F/D, also mixed via FCS 3.2 $PnDATATYPE), $PnB bit width and storage width, byte order,
several data sets chained by $NEXTDATA, HEADER offsets that disagree with TEXT, repeated or missing
keywords, empty keyword values and trailing bytes.

Example
-------
>>> spec = FcsSpec(events=np.array([[1, 2], [3, 4]]), names=["FSC-A", "FL1-A"], datatype="I", bits=16)
>>> blob = build_fcs(spec)           # bytes of a valid FCS 3.1 file
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

TEXT_START = 256  # like flowio and most instruments: HEADER, spaces, then TEXT


@dataclass
class FcsSpec:
    """What to write into one data set.

    Attributes
    ----------
    events
        (n_events, n_parameters) values exactly as stored (integers for $DATATYPE I).
    names, markers
        $PnN and $PnS (a None or "" marker writes no $PnS).
    datatype
        'I', 'F' or 'D'; ``kinds`` optionally gives one per parameter (written as FCS 3.2 $PnDATATYPE).
    bits, storage_bits
        $PnB as written (int or per parameter) and the width actually used to store values
        (default: ``bits`` if a whole number of bytes, e.g. 24, else rounded up to 8/16/32/64).
    ranges
        $PnR values (written as given, e.g. 1024 or "262144.0").
    keywords
        Extra keywords or replacements ("$P1E": "4,1", "$TOT": "99999999999", "$SPILL": ...). Keys are
        written as given; a key that equals (case-insensitively) a generated one replaces its value.
    omit
        Keywords to leave out, e.g. ("$TOT", "$P2S").
    header_text, header_data
        (start, stop) written into the HEADER instead of the true offsets (None: the true ones).
    text_data
        (start, stop) written as $BEGINDATA/$ENDDATA instead of the true ones; FCS 2.0 writes them
        only when given.
    escape
        Double delimiters inside values (FCS rule); False writes values raw.
    trailer
        Bytes written after the DATA segment (e.g. b"00000000" for a CRC).
    """

    events: np.ndarray
    names: Sequence[str]
    markers: Sequence[str | None] | None = None
    version: str = "3.1"
    datatype: str = "F"
    kinds: Sequence[str] | None = None
    bits: int | Sequence[int] | None = None
    storage_bits: int | Sequence[int] | None = None
    ranges: Sequence[float | int | str] | None = None
    byteorder: str = "<"
    delimiter: bytes = b"/"
    keywords: dict[str, str] = field(default_factory=dict)
    omit: Sequence[str] = ()
    header_text: tuple[int, int] | None = None
    header_data: tuple[int, int] | None = None
    text_data: tuple[int, int] | None = None
    escape: bool = True
    trailer: bytes = b""

    def per_parameter(self, value, default) -> list:
        """A scalar or per-parameter setting as one value per parameter."""
        count = np.asarray(self.events).shape[1]
        if value is None:
            value = default
        return list(value) if isinstance(value, (list, tuple)) else [value] * count


def _kinds(spec: FcsSpec) -> list[str]:
    return [k.upper() for k in spec.per_parameter(spec.kinds, spec.datatype)]


def _declared_bits(spec: FcsSpec) -> list[int]:
    defaults = {"I": 16, "F": 32, "D": 64}
    declared = spec.per_parameter(spec.bits, None)
    return [b if b is not None else defaults[k] for b, k in zip(declared, _kinds(spec))]


def _storage_bits(spec: FcsSpec) -> list[int]:
    declared = _declared_bits(spec)
    storage = spec.per_parameter(spec.storage_bits, None)
    return [s if s is not None else b if b % 8 == 0 else next(w for w in (8, 16, 32, 64) if w >= b)
            for s, b in zip(storage, declared)]


def _encode_by_value(spec: FcsSpec, events: np.ndarray, widths: list[int]) -> bytes:
    """Integers of any whole number of bytes, one value at a time with int.to_bytes (for widths NumPy lacks)."""
    order = "little" if spec.byteorder == "<" else "big"
    kinds = _kinds(spec)
    if set(kinds) != {"I"}:
        raise ValueError("3-, 5-, 6- and 7-byte widths are for integer data only")
    return b"".join(int(value).to_bytes(width // 8, order) for row in events for value, width in zip(row, widths))


def encode_events(spec: FcsSpec) -> bytes:
    """The DATA segment: events in the requested types, widths and byte order."""
    events = np.asarray(spec.events)
    if any(w not in (8, 16, 32, 64) for w in _storage_bits(spec)):
        return _encode_by_value(spec, events, _storage_bits(spec))
    fields = []
    for j, (kind, width) in enumerate(zip(_kinds(spec), _storage_bits(spec))):
        code = "u" if kind == "I" else "f"
        fields.append((f"p{j + 1}", np.dtype(f"{spec.byteorder}{code}{width // 8}")))
    record = np.zeros(events.shape[0], dtype=np.dtype(fields))
    for j, (name, dtype) in enumerate(fields):
        record[name] = events[:, j].astype(dtype)
    return record.tobytes()


def _keywords(spec: FcsSpec, data: tuple[int, int], nextdata: int) -> list[tuple[str, str]]:
    """Generated keywords in writing order, with ``spec.keywords`` applied and ``spec.omit`` removed."""
    events = np.asarray(spec.events)
    byteord = "1,2,3,4" if spec.byteorder == "<" else "4,3,2,1"
    pairs = [("$BEGINANALYSIS", "0"), ("$ENDANALYSIS", "0"), ("$BEGINSTEXT", "0"), ("$ENDSTEXT", "0")]
    if spec.version != "2.0" or spec.text_data is not None:
        begin, end = spec.text_data if spec.text_data is not None else data
        pairs += [("$BEGINDATA", str(begin)), ("$ENDDATA", str(end))]
    pairs += [("$BYTEORD", byteord), ("$DATATYPE", spec.datatype.upper()), ("$MODE", "L"),
              ("$NEXTDATA", str(nextdata)), ("$PAR", str(events.shape[1])), ("$TOT", str(events.shape[0]))]
    markers = spec.markers or [None] * events.shape[1]
    ranges = spec.ranges or [1024 if k == "I" else 262144 for k in _kinds(spec)]
    kinds = _kinds(spec)
    for n, (name, marker, bits, rng, kind) in enumerate(
            zip(spec.names, markers, _declared_bits(spec), ranges, kinds), start=1):
        pairs += [(f"$P{n}N", name), (f"$P{n}B", str(bits)), (f"$P{n}E", "0,0"), (f"$P{n}R", str(rng))]
        if marker:
            pairs.append((f"$P{n}S", marker))
        if spec.kinds is not None:
            pairs.append((f"$P{n}DATATYPE", kind))
    return _apply_overrides(pairs, spec)


def _apply_overrides(pairs: list[tuple[str, str]], spec: FcsSpec) -> list[tuple[str, str]]:
    extra = dict(spec.keywords)
    lowered = {k.lower(): k for k in extra}
    result = []
    for key, value in pairs:
        if key.lower() in lowered:
            value = extra.pop(lowered[key.lower()])
        result.append((key, value))
    result += list(extra.items())
    omitted = {k.lower() for k in spec.omit}
    return [(k, v) for k, v in result if k.lower() not in omitted]


def encode_text(pairs: list[tuple[str, str]], delimiter: bytes, escape: bool = True) -> bytes:
    """TEXT segment: delimiter, then keyword, delimiter, value, delimiter, ..."""
    out = [delimiter]
    for key, value in pairs:
        raw = value.encode("utf-8")
        if escape:
            raw = raw.replace(delimiter, delimiter * 2)
        out += [key.encode("utf-8"), delimiter, raw, delimiter]
    return b"".join(out)


def encode_header(version: str, text: tuple[int, int], data: tuple[int, int], analysis=(0, 0)) -> bytes:
    """The 58-byte HEADER; offsets above 99,999,999 are written as 0 (FCS 3.x rule)."""
    fields = [v if 0 <= v <= 99_999_999 else 0 for v in (*text, *data, *analysis)]
    return f"FCS{version}    ".encode("ascii") + b"".join(f"{v:>8}".encode("ascii") for v in fields)


def build_data_set(spec: FcsSpec, nextdata: int = 0) -> bytes:
    """One complete data set (HEADER, padding, TEXT, DATA, trailer); offsets relative to its first byte."""
    data = encode_events(spec)
    begin = TEXT_START
    for _ in range(10):  # offsets are written in TEXT, whose length depends on them: iterate to a fixed point
        offsets = (begin, begin + len(data) - 1) if data else (0, 0)
        text = encode_text(_keywords(spec, offsets, nextdata), spec.delimiter, spec.escape)
        if TEXT_START + len(text) == begin:
            break
        begin = TEXT_START + len(text)
    header = encode_header(spec.version, spec.header_text or (TEXT_START, begin - 1), spec.header_data or offsets)
    return header + b" " * (TEXT_START - len(header)) + text + data + spec.trailer


def build_fcs(*specs: FcsSpec) -> bytes:
    """A file holding one data set per spec, chained by $NEXTDATA (offset from each data set's first byte)."""
    blobs = []
    for index, spec in enumerate(specs):
        last = index == len(specs) - 1
        nextdata, blob = 0, build_data_set(spec, 0)
        while not last and nextdata != len(blob):
            nextdata = len(blob)
            blob = build_data_set(spec, nextdata)
        blobs.append(blob)
    return b"".join(blobs)


def write_fcs_file(path: str | Path, *specs: FcsSpec) -> Path:
    """Write ``build_fcs(*specs)`` to ``path`` and return the path."""
    path = Path(path)
    path.write_bytes(build_fcs(*specs))
    return path


def offsets_of(blob: bytes) -> dict[str, tuple[int, int]]:
    """TEXT and DATA (start, stop) as written in the HEADER of the first data set."""
    numbers = [int(blob[i:i + 8]) for i in range(10, 58, 8)]
    return {"text": (numbers[0], numbers[1]), "data": (numbers[2], numbers[3])}


def with_changes(spec: FcsSpec, **changes) -> FcsSpec:
    """A copy of ``spec`` with some fields changed (``dataclasses.replace``)."""
    return replace(spec, **changes)
