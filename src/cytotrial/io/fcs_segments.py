"""HEADER and TEXT segments of an FCS file, read and sanity-checked before any event data is touched.

Everything here works on an open binary file handle and the file size. Problems are raised as
:class:`FcsFormatError` with a message *without* the file name (``read_fcs`` adds it); tolerated quirks
are returned as human-readable notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO

HEADER_BYTES = 58
SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1", "3.2")
MAX_DATA_SETS = 32
REEXPORT = "Re-export the file from the acquisition software or copy it again from the instrument computer."


class FcsFormatError(ValueError):
    """What is wrong with an FCS file, phrased for people (the caller prefixes the file name)."""


@dataclass
class Header:
    """The HEADER of one data set; offsets are absolute byte positions in the file (inclusive)."""

    base: int
    version: str
    text: tuple[int, int]
    data: tuple[int, int] | None  # None when the HEADER leaves the DATA offsets blank, zero or garbled


@dataclass
class DataSet:
    """One data set: its HEADER, TEXT keywords (lowercase, without '$') and notes on tolerated quirks."""

    header: Header
    keywords: dict[str, str]
    notes: list[str] = field(default_factory=list)


def parse_offset(raw: bytes) -> int | None:
    """An ASCII byte offset as written in a HEADER field or TEXT value: digits, possibly space-padded.

    Returns
    -------
    int or None
        The offset; 0 for a blank field; None when the field holds anything but digits (or is absurdly long).
    """
    text = raw.strip(b" \x00\t\r\n")
    if not text:
        return 0
    if not re.fullmatch(rb"\+?[0-9]{1,18}", text):
        return None
    return int(text)


def read_header(handle: BinaryIO, base: int, file_size: int) -> Header:
    """Read and check the 58-byte HEADER of the data set starting at byte ``base``."""
    handle.seek(base)
    raw = handle.read(HEADER_BYTES)
    where = "" if base == 0 else f" of the data set at byte {base}"
    if len(raw) < HEADER_BYTES:
        raise FcsFormatError(f"the HEADER{where} is cut off after {len(raw)} of {HEADER_BYTES} bytes "
                             f"(the file is truncated). {REEXPORT}")
    if not raw.startswith(b"FCS"):
        raise FcsFormatError(f"the HEADER{where} does not start with 'FCS' (found {raw[:6]!r}). {REEXPORT}")
    version = raw[3:6].decode("ascii", "replace")
    if version not in SUPPORTED_VERSIONS:
        raise FcsFormatError(f"the HEADER{where} declares FCS version {raw[:6]!r}; only FCS "
                             f"{', '.join(SUPPORTED_VERSIONS)} can be read. Convert the file with the "
                             "acquisition software or FlowJo.")
    text_start, text_stop = parse_offset(raw[10:18]), parse_offset(raw[18:26])
    if text_start is None or text_stop is None:
        raise FcsFormatError(f"the HEADER{where} holds {raw[10:26]!r} where the TEXT segment offsets belong; "
                             f"the HEADER is corrupt. {REEXPORT}")
    data_start, data_stop = parse_offset(raw[26:34]), parse_offset(raw[34:42])
    data = None if data_start is None or data_stop is None or data_stop == 0 else (base + data_start, base + data_stop)
    header = Header(base=base, version=version, text=(base + text_start, base + text_stop), data=data)
    _check_text_offsets(header, file_size, where)
    return header


def _check_text_offsets(header: Header, file_size: int, where: str) -> None:
    """The TEXT segment must follow the HEADER, hold at least one byte pair and lie inside the file."""
    start, stop = header.text
    if start < header.base + HEADER_BYTES or stop <= start:
        raise FcsFormatError(f"the HEADER{where} places the TEXT segment at bytes {start}-{stop}, which is not after "
                             f"the HEADER; the HEADER is corrupt. {REEXPORT}")
    if stop >= file_size:
        raise FcsFormatError(f"the HEADER{where} places the TEXT segment at bytes {start}-{stop} but the file has only "
                             f"{file_size} bytes (the file is truncated). {REEXPORT}")


def split_fields(body: bytes, delimiter: bytes, escaped: bool) -> list[bytes]:
    """Split TEXT (after its first delimiter) into fields.

    Parameters
    ----------
    escaped
        True: a doubled delimiter is a literal delimiter inside a keyword or value (FCS 3.x rule).
        False: every delimiter separates fields, so a doubled one encloses an empty value (seen in some files).
    """
    if not escaped:
        fields = body.split(delimiter)
        return fields[:-1] if fields and fields[-1] == b"" else fields
    fields: list[bytes] = []
    current: list[bytes] = []
    position = 0
    for run in re.finditer(re.escape(delimiter) + b"+", body):
        count = run.end() - run.start()
        current.append(body[position:run.start()] + delimiter * (count // 2))
        if count % 2:
            fields.append(b"".join(current))
            current = []
        position = run.end()
    if current or position < len(body):  # no closing delimiter: keep what is there as the last field
        fields.append(b"".join(current) + body[position:])
    return fields


def _clean(fields: list[bytes], delimiter: bytes) -> bool:
    """Whether fields pair up as keyword/value without a delimiter or blank inside a keyword."""
    keys = fields[::2]
    return len(fields) % 2 == 0 and all(k.strip() and delimiter not in k for k in keys)


def parse_text(raw: bytes) -> tuple[dict[str, str], list[str]]:
    """Keyword/value pairs of a TEXT segment (first byte = delimiter).

    Returns
    -------
    keywords, notes
        Keywords lowercase without the leading '$'; values as written (decoded UTF-8, else Latin-1).
    """
    delimiter, body = raw[:1], raw[1:]
    notes: list[str] = []
    fields = split_fields(body, delimiter, escaped=True)
    if not _clean(fields, delimiter):
        plain = split_fields(body, delimiter, escaped=False)
        if _clean(plain, delimiter):
            fields = plain
            notes.append("TEXT has empty keyword values (two delimiters in a row); they were read as empty values")
        elif len(fields) % 2:
            notes.append(f"TEXT ends with a keyword without a value ({_decode(fields[-1])[:40]!r}); it was ignored")
            fields = fields[:-1]
    return _pairs(fields, notes), notes


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _pairs(fields: list[bytes], notes: list[str]) -> dict[str, str]:
    """Build the keyword dictionary; a '$' keyword beats a plain one of the same name, else the first wins."""
    keywords: dict[str, str] = {}
    standard: set[str] = set()
    repeated: list[str] = []
    for raw_key, raw_value in zip(fields[::2], fields[1::2]):
        written = _decode(raw_key).strip()
        key, is_standard = written.lstrip("$").lower(), written.startswith("$")
        if key in keywords:
            if is_standard and key not in standard:
                keywords[key] = _decode(raw_value)
                standard.add(key)
            repeated.append(written)
            continue
        keywords[key] = _decode(raw_value)
        if is_standard:
            standard.add(key)
    if repeated:
        shown = ", ".join(sorted(set(repeated))[:5])
        notes.append(f"keywords written more than once ({shown}); the first '$' one was kept")
    return keywords


def read_text(handle: BinaryIO, header: Header) -> tuple[dict[str, str], list[str]]:
    """Read and parse the primary TEXT segment named by ``header``."""
    start, stop = header.text
    handle.seek(start)
    raw = handle.read(stop - start + 1)
    delimiter = raw[:1]
    if delimiter.isalnum() or delimiter in (b" ", b"$", b"-"):
        raise FcsFormatError(f"the TEXT segment (byte {start}) starts with {delimiter!r}, which cannot be a "
                             f"delimiter; the HEADER's TEXT offset is wrong or the file is corrupt. {REEXPORT}")
    keywords, notes = parse_text(raw)
    if "par" not in keywords:
        raise FcsFormatError(f"the TEXT segment (bytes {start}-{stop}) has no $PAR keyword; it is corrupt or the "
                             f"HEADER points to the wrong place. {REEXPORT}")
    return keywords, notes


def merge_supplemental_text(handle: BinaryIO, data_set: DataSet, file_size: int) -> None:
    """Add keywords from a supplemental TEXT segment ($BEGINSTEXT/$ENDSTEXT), never overriding primary ones."""
    base, keywords = data_set.header.base, data_set.keywords
    start, stop = parse_offset(keywords.get("beginstext", "0").encode()), parse_offset(
        keywords.get("endstext", "0").encode())
    if not start or not stop:
        return
    start, stop = base + start, base + stop
    text_start, text_stop = data_set.header.text
    if stop <= start or stop >= file_size or start < base + HEADER_BYTES or start <= text_stop and stop >= text_start:
        data_set.notes.append(f"$BEGINSTEXT/$ENDSTEXT ({start}-{stop}) do not point to a usable supplemental TEXT "
                              "segment; it was ignored")
        return
    handle.seek(start)
    extra, notes = parse_text(handle.read(stop - start + 1))
    data_set.notes.extend(f"supplemental TEXT: {n}" for n in notes)
    for key, value in extra.items():
        keywords.setdefault(key, value)


def read_data_set(handle: BinaryIO, base: int, file_size: int) -> DataSet:
    """HEADER and TEXT (primary and supplemental) of the data set starting at byte ``base``."""
    header = read_header(handle, base, file_size)
    keywords, notes = read_text(handle, header)
    data_set = DataSet(header, keywords, notes)
    merge_supplemental_text(handle, data_set, file_size)
    return data_set


def read_data_sets(handle: BinaryIO, file_size: int) -> tuple[list[DataSet], list[str]]:
    """All data sets chained by $NEXTDATA (relative offsets), at most MAX_DATA_SETS.

    A broken link after an FCS 3.x data set is noted and ignored; after only FCS 2.0 data sets it is an
    error, because the data set the file points to (typically the FCS 3.0 one of a Beckman Coulter LMD
    file) is the one that should be read.
    """
    data_sets = [read_data_set(handle, 0, file_size)]
    notes: list[str] = []
    while len(data_sets) < MAX_DATA_SETS:
        current = data_sets[-1]
        step = parse_offset(current.keywords.get("nextdata", "0").encode())
        if not step:
            if step is None:
                notes.append(f"$NEXTDATA {current.keywords['nextdata']!r} is not a byte offset; it was ignored")
            break
        base = current.header.base + step
        if base + HEADER_BYTES > file_size:
            notes.append(f"$NEXTDATA points to byte {base}, past the end of the file; no further data set was read")
            break
        try:
            data_sets.append(read_data_set(handle, base, file_size))
        except FcsFormatError as err:
            if not any(d.header.version.startswith("3") for d in data_sets):
                raise FcsFormatError(f"$NEXTDATA names a data set at byte {base} that cannot be read: {err}") from None
            notes.append(f"$NEXTDATA names a data set at byte {base} that cannot be read ({err}); it was ignored")
            break
    return data_sets, notes


def choose_data_set(data_sets: list[DataSet], notes: list[str]) -> DataSet:
    """The first FCS 3.x data set if there is one (LMD files: FCS 2.0 then FCS 3.0), else the first one."""
    chosen = next((d for d in data_sets if d.header.version.startswith("3")), data_sets[0])
    if len(data_sets) > 1:
        listing = ", ".join(f"FCS{d.header.version} at byte {d.header.base}" for d in data_sets)
        number = data_sets.index(chosen) + 1
        notes.append(f"the file holds {len(data_sets)} data sets ({listing}); data set {number} "
                     f"(FCS{chosen.header.version}) was read")
    return chosen
