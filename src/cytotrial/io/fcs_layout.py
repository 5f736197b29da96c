"""From TEXT keywords to the layout of the DATA segment: parameters, their storage, and where the events are.

All sizes are checked against the file size before anything is allocated, so a file that declares
billions of events is rejected in microseconds instead of exhausting memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .fcs_segments import HEADER_BYTES, REEXPORT, DataSet, FcsFormatError, parse_offset

MAX_PARAMETERS = 10_000
STORAGE_BITS = (8, 16, 32, 64)  # widths a $PnB that is not a whole number of bytes is read from
DEFAULT_FLOAT_RANGE = 262144.0


@dataclass
class Channel:
    """One parameter ($Pn...) as stored and as it must be scaled."""

    number: int
    name: str
    marker: str
    kind: str  # 'i' (unsigned integer), 'f' (float32) or 'd' (float64)
    storage_bits: int
    mask: int | None  # bit mask for integer data, None when every stored bit is used
    range: float
    decades: float = 0.0
    log0: float = 0.0
    gain: float = 1.0


@dataclass
class Layout:
    """Everything needed to decode the DATA segment of one data set."""

    version: str
    event_count: int
    byteorder: str  # '<' or '>'
    channels: list[Channel]
    data_start: int
    keywords: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def event_bytes(self) -> int:
        return sum(c.storage_bits for c in self.channels) // 8


def _count(keywords: dict[str, str], key: str) -> int | None:
    """A non-negative integer keyword ($PAR, $TOT), tolerating padding and a '.0' tail; None if absent."""
    if key not in keywords:
        return None
    match = re.fullmatch(r"\s*\+?([0-9]{1,30})(\.0*)?\s*", keywords[key])
    if not match:
        raise FcsFormatError(f"${key.upper()} is {keywords[key][:40]!r}, which is not a count; the TEXT segment is "
                             f"corrupt. {REEXPORT}")
    return int(match.group(1))


def _number(text: str | None) -> float | None:
    """A finite float from keyword text, or None."""
    try:
        value = float(text.strip())  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _byteorder(keywords: dict[str, str], needed: bool) -> str:
    """'<' or '>' from $BYTEORD ('1,2,3,4', '4,3,2,1', '1,2', '2,1', ... any ascending or descending run)."""
    text = keywords.get("byteord", "").replace(" ", "")
    digits = text.split(",")
    if digits == [str(i) for i in range(1, len(digits) + 1)]:
        return "<"
    if digits == [str(i) for i in range(len(digits), 0, -1)] and len(digits) > 1:
        return ">"
    if not needed:
        return "<"
    raise FcsFormatError(f"$BYTEORD is {text[:40]!r}; only little-endian (1,2,3,4) and big-endian (4,3,2,1) "
                         f"byte orders can be read. {REEXPORT}")


def _data_kind(keywords: dict[str, str], key: str) -> str:
    """'i', 'f' or 'd' from $DATATYPE (or FCS 3.2 $PnDATATYPE)."""
    kind = keywords.get(key, "").strip().lower()
    if kind in ("i", "f", "d"):
        return kind
    if kind == "a":
        raise FcsFormatError(f"${key.upper()} is 'A' (ASCII event data), which is not supported. Export the file "
                             "again with binary (integer or float) data.")
    raise FcsFormatError(f"${key.upper()} is {keywords.get(key, '(missing)')[:20]!r}; it must be I, F or D. {REEXPORT}")


def _storage(channel: int, kind: str, keywords: dict[str, str], notes: list[str]) -> tuple[int, int]:
    """(declared bits, storage bits) of one parameter from $PnB."""
    text = keywords.get(f"p{channel}b", "").strip()
    declared = int(text) if re.fullmatch(r"[0-9]{1,3}", text) else None
    if kind in ("f", "d"):
        bits = 32 if kind == "f" else 64
        if declared != bits:
            notes.append(f"$P{channel}B is {text!r} but ${'F' if kind == 'f' else 'D'} data use {bits} bits; "
                         f"read as {bits}-bit floats")
        return bits, bits
    if declared is None or not 1 <= declared <= 64:
        raise FcsFormatError(f"$P{channel}B is {text[:20]!r}; integer data need a bit width from 1 to 64. {REEXPORT}")
    if declared % 8 == 0:  # any whole number of bytes, e.g. 24 (three bytes a value, as Cytek's xP5 writes)
        return declared, declared
    storage = next(b for b in STORAGE_BITS if b >= declared)
    if storage != declared:
        notes.append(f"$P{channel}B is {declared}: read as {storage}-bit integers masked to {declared} bits")
    return declared, storage


def _range_and_mask(channel: int, kind: str, bits: tuple[int, int], keywords: dict[str, str],
                    *, notes: list[str]) -> tuple[float, int | None]:
    """$PnR and, for integers, the mask keeping the bits below the next power of two of $PnR (FCS 3.1 rule)."""
    declared, storage = bits
    value = _number(keywords.get(f"p{channel}r"))
    if value is None or value < 1:
        value = float(2 ** declared) if kind == "i" else DEFAULT_FLOAT_RANGE
        notes.append(f"$P{channel}R is {keywords.get(f'p{channel}r', '(missing)')[:20]!r}; range {value:g} assumed")
        range_bits = declared
    else:
        range_bits = min(declared, max(1, math.ceil(math.log2(value))))
    if kind != "i" or range_bits >= storage:
        return value, None
    return value, (1 << range_bits) - 1


def _amplification(channel: Channel, keywords: dict[str, str], notes: list[str]) -> None:
    """$PnE (log decades, value of log 0) and $PnG (gain), with the FCS rules for what may be combined."""
    text = keywords.get(f"p{channel.number}e")
    label = f"$P{channel.number}E"
    if text is not None:
        parts = [_number(p) for p in text.split(",")]
        if len(parts) != 2 or None in parts or parts[0] < 0 or parts[1] < 0:  # type: ignore[operator]
            notes.append(f"{label} is {text[:20]!r}, not 'decades,offset'; channel read as linear")
        elif parts[0] > 0 and channel.kind != "i":
            notes.append(f"{label} is {text!r} but log amplification only applies to integer data; read as linear")
        elif parts[0] > 0:
            channel.decades, channel.log0 = parts[0], parts[1] or 1.0  # type: ignore[assignment]
    gain = keywords.get(f"p{channel.number}g")
    value = _number(gain)
    if gain is None or value == 1.0:
        return
    if value is None or value <= 0:
        notes.append(f"$P{channel.number}G is {gain[:20]!r}; gain 1 assumed")
    elif channel.decades > 0:
        notes.append(f"$P{channel.number}G is {gain!r} on a log-amplified channel; the gain was ignored")
    elif channel.name.lower() != "time":  # like flowio: a time channel is scaled by $TIMESTEP only
        channel.gain = value


def _label(keywords: dict[str, str], key: str) -> str:
    return keywords.get(key, "").strip()


def unique_names(names: list[str], notes: list[str]) -> list[str]:
    """Make $PnN labels unique: the second 'FSC-A' becomes 'FSC-A_2', the third 'FSC-A_3', and so on."""
    taken = set(names)
    seen: dict[str, int] = {}
    result = []
    for number, name in enumerate(names, start=1):
        if name not in seen:
            seen[name] = 1
            result.append(name)
            continue
        suffix = seen[name] + 1
        while f"{name}_{suffix}" in taken:
            suffix += 1
        seen[name] = suffix
        taken.add(f"{name}_{suffix}")
        result.append(f"{name}_{suffix}")
        notes.append(f"$P{number}N repeats the channel name {name!r}; channel {number} renamed {name}_{suffix!s}")
    return result


def _check_described(keywords: dict[str, str], count: int) -> None:
    """Every parameter up to $PAR needs at least $PnN or $PnB; otherwise $PAR is wrong."""
    bare = [n for n in range(1, count + 1) if f"p{n}n" not in keywords and f"p{n}b" not in keywords]
    if bare:
        described = sum(1 for n in range(1, count + 1) if f"p{n}n" in keywords or f"p{n}b" in keywords)
        raise FcsFormatError(f"$PAR declares {count} parameters but {len(bare)} of them (from $P{bare[0]}N) have "
                             f"neither $PnN nor $PnB; only {described} are described. The TEXT segment is "
                             f"corrupt. {REEXPORT}")


def build_channels(keywords: dict[str, str], count: int, notes: list[str]) -> list[Channel]:
    """The ``count`` parameters described by $PnN, $PnS, $PnB, $PnR, $PnE, $PnG (and FCS 3.2 $PnDATATYPE)."""
    kind = _data_kind(keywords, "datatype")
    names = []
    for number in range(1, count + 1):
        name = _label(keywords, f"p{number}n")
        if not name:
            name = f"P{number}"
            notes.append(f"$P{number}N is missing or empty; channel {number} named {name!r}")
        names.append(name)
    _check_described(keywords, count)
    channels = []
    for number, name in enumerate(unique_names(names, notes), start=1):
        own = _data_kind(keywords, f"p{number}datatype") if f"p{number}datatype" in keywords else kind
        bits = _storage(number, own, keywords, notes)
        value, mask = _range_and_mask(number, own, bits, keywords, notes=notes)
        channel = Channel(number, name, _label(keywords, f"p{number}s"), own, bits[1], mask, value)
        _amplification(channel, keywords, notes)
        channels.append(channel)
    return channels


def build_layout(data_set: DataSet, file_size: int) -> Layout:
    """Check $PAR/$TOT/$MODE/$DATATYPE and the parameters, and locate the DATA segment of ``data_set``.

    Returns
    -------
    Layout
        Channels, byte order, DATA start and event count; ``notes`` is ``data_set.notes`` (shared list).

    Raises
    ------
    FcsFormatError
        For declarations that cannot be right (absurd $PAR, unknown $DATATYPE, a DATA segment that does not
        fit $TOT or the file).
    """
    keywords, notes = data_set.keywords, data_set.notes
    count = _count(keywords, "par")
    if not count or count > MAX_PARAMETERS:
        raise FcsFormatError(f"$PAR declares {count} parameters; a file must have 1 to {MAX_PARAMETERS}. "
                             f"The TEXT segment is corrupt. {REEXPORT}")
    mode = keywords.get("mode", "L").strip().upper() or "L"
    if mode in ("C", "U"):
        raise FcsFormatError(f"$MODE is {mode!r} (histogram data); only list-mode (L) files hold events. "
                             "Export the events in list mode.")
    if mode != "L":
        raise FcsFormatError(f"$MODE is {mode[:20]!r}; it must be L (list mode). The TEXT segment is corrupt. "
                             f"{REEXPORT}")
    channels = build_channels(keywords, count, notes)
    byteorder = _byteorder(keywords, needed=any(c.storage_bits > 8 for c in channels))
    layout = Layout(data_set.header.version, 0, byteorder, channels, 0, keywords, notes)
    layout.data_start, layout.event_count = locate_data(data_set, layout.event_bytes, _count(keywords, "tot"),
                                                        file_size, notes=notes)
    return layout


def _candidates(data_set: DataSet) -> list[tuple[str, tuple[int, int]]]:
    """DATA offsets from TEXT ($BEGINDATA/$ENDDATA) and HEADER, in the order the version says to trust them.

    Offsets count from the first byte of the data set; for a second data set, offsets counted from the
    start of the file (written by some software) are tried last.
    """
    header, keywords = data_set.header, data_set.keywords
    text_offsets = None
    begin, end = (parse_offset(keywords.get(k, "").encode()) for k in ("begindata", "enddata"))
    if begin and end:
        text_offsets = (header.base + begin, header.base + end)
    found = [("TEXT", text_offsets), ("HEADER", header.data)]
    if header.version == "2.0":
        found.reverse()
    if header.base and text_offsets is not None:
        found.append(("TEXT counted from the start of the file", (begin, end)))
    return [(source, offsets) for source, offsets in found if offsets is not None]


def _usable(data_set: DataSet, offsets: tuple[int, int]) -> bool:
    """DATA must start after the HEADER, end after it starts and not overlap the primary TEXT."""
    start, stop = offsets
    text_start, text_stop = data_set.header.text
    return start >= data_set.header.base + HEADER_BYTES and stop >= start and (stop < text_start or start > text_stop)


def _fit(length: int, needed: int) -> int:
    """How well a segment of ``length`` bytes holds ``needed`` bytes: 0 exact, 1 off by one, 2 longer, 3 too short."""
    if length == needed:
        return 0
    if length == needed + 1:
        return 1
    return 2 if length > needed else 3


def locate_data(data_set: DataSet, event_bytes: int, total: int | None, file_size: int,
                *, notes: list[str]) -> tuple[int, int]:
    """Start byte and event count of the DATA segment, checked against $TOT x bytes per event and the file size.

    HEADER and TEXT offsets may disagree (a known quirk); the pair that matches $TOT wins, TEXT first for
    FCS 3.x and HEADER first for FCS 2.0. A segment one byte too long (end offset written exclusive) or
    longer than needed is accepted with a note.
    """
    if total == 0:
        return 0, 0
    declared = _candidates(data_set)
    found = [(source, offsets) for source, offsets in declared if _usable(data_set, offsets)]
    if not found:
        said = "; ".join(f"{source} says bytes {a}-{b}" for source, (a, b) in declared) or "both are empty"
        raise FcsFormatError(f"neither the HEADER nor $BEGINDATA/$ENDDATA give a usable DATA segment location "
                             f"({said}; DATA must follow the HEADER and not overlap the TEXT). {REEXPORT}")
    if total is None:
        source, (start, stop) = found[0]
        total = (stop - start + 1) // event_bytes
        notes.append(f"$TOT is missing; {total} events counted from the DATA segment size ({source} offsets)")
    needed = total * event_bytes
    source, (start, stop) = min(found, key=lambda item: (_fit(item[1][1] - item[1][0] + 1, needed),
                                                         item[1][0] + needed > file_size))
    length = stop - start + 1
    _note_offsets(declared, source, (start, stop), length, needed=needed, notes=notes)
    if length < needed and start + needed > file_size:
        raise FcsFormatError(_short_message(total, event_bytes, start, length, file_size=file_size))
    if start + needed > file_size:
        raise FcsFormatError(f"the DATA segment should hold {total} events x {event_bytes} bytes = {needed} bytes "
                             f"from byte {start}, but the file ends after {max(file_size - start, 0)} of them "
                             f"(the file is truncated). {REEXPORT}")
    if length < needed:
        raise FcsFormatError(_short_message(total, event_bytes, start, length, file_size=file_size))
    return start, total


def _short_message(total: int, event_bytes: int, start: int, length: int, *, file_size: int) -> str:
    needed = total * event_bytes
    cause = ("the file is truncated or $TOT is wrong" if start + needed > file_size
             else "$TOT or the DATA offsets are wrong")
    return (f"$TOT declares {total} events x {event_bytes} bytes = {needed} bytes of events but the DATA segment "
            f"holds {max(min(length, file_size - start), 0)} bytes and the file has {file_size} bytes ({cause}). "
            f"{REEXPORT}")


def _note_offsets(found: list, source: str, chosen: tuple[int, int], length: int, *, needed: int,
                  notes: list[str]) -> None:
    """Notes on disagreeing HEADER/TEXT offsets and on segments that are not exactly the declared size."""
    others = [f"{s} says bytes {a}-{b}" for s, (a, b) in found if (a, b) != chosen]
    if others:
        reason = " because it matches $TOT x bytes per event" if length == needed else ""
        notes.append(f"DATA offsets disagree: {', '.join(others)}; {source} (bytes {chosen[0]}-{chosen[1]}) was "
                     f"used{reason}")
    if length == needed + 1:
        notes.append("the DATA end offset is one byte past the last event byte (written exclusive); read anyway")
    elif length > needed:
        notes.append(f"the DATA segment has {length - needed} bytes more than $TOT events need; they were ignored")
