"""A spillover matrix from a file outside the FCS data: a CSV/TSV table (as FlowJo exports it) or FCS spill text.

Accepted layouts
----------------
* A table with a header row of detector names and one row per fluorochrome, optionally with a first column of row
  names (FlowJo "Compensation Matrix" CSV export; also TSV, or ';'-separated). Title lines before the header and
  lines starting with '#' are skipped. Values are fractions (diagonal 1) or percent (diagonal 100).
* One line of FCS spill text: ``n,name1,...,namen,v11,v12,...`` as in the $SPILLOVER keyword.

Names are matched to the sample's $PnN ignoring case, surrounding quotes, a FlowJo ``Comp-`` prefix and a
``" :: marker"`` suffix, so ``Comp-FITC-A``, ``fitc-a`` and ``FITC-A :: CD45RA`` all name the detector ``FITC-A``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import flowkit as fk
import numpy as np

from .keywords import CompensationError, check_invertible, parse_spill_text

_DIAGONAL_TOLERANCE = 0.02  # relative deviation of the diagonal from 1 (or 100) that is still accepted


def read_matrix_file(path: str | os.PathLike, sample_detectors: Sequence[str],
                     markers: Sequence[str | None] | None = None) -> fk.Matrix:
    """Read an external spillover matrix and match its detectors to a sample's parameters.

    Parameters
    ----------
    path
        CSV/TSV matrix file or a file holding one line of FCS spill text.
    sample_detectors
        $PnN of the sample's parameters (all of them, or only the fluorescence ones).
    markers
        Optional $PnS in the same order as ``sample_detectors``, used as the matrix's fluorochrome labels; by
        default the ``" :: marker"`` suffixes of the file's names are used where present.

    Returns
    -------
    flowkit.Matrix
        (n, n) spillover fractions (diagonal 1), rows and columns in the sample's parameter order; ``detectors``
        are the sample's own $PnN spellings.

    Raises
    ------
    CompensationError
        Naming the file and what is wrong: unreadable, not square, non-numeric, diagonal neither 1 nor 100,
        names that match no detector of the sample, or a singular matrix.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CompensationError(f"{source}: compensation matrix file not found. Check compensation.matrix in "
                                "config/config.yaml.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CompensationError(f"{source}: cannot read the compensation matrix ({err}). Export it again as "
                                "CSV text.") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise CompensationError(f"{source}: the compensation matrix file is empty. Export the matrix again.")
    if len(lines) == 1 and _is_spill_text(lines[0]):
        names, values = parse_spill_text(lines[0], "SPILLOVER", source)
        row_names = None
    else:
        names, row_names, values = _parse_table(lines, source)
    detectors = match_detectors(names, sample_detectors, source)
    if row_names is not None:
        values = _order_rows(values, row_names, detectors, sample_detectors, source=source)
    values = _as_fractions(values, source)
    check_invertible(values, source)
    return _sample_ordered_matrix(values, detectors, names, sample_detectors, markers=markers)


def normalise_name(name: str) -> str:
    """Comparable form of a detector name: no quotes, no ``Comp-`` prefix, no ``:: marker`` suffix, lower case."""
    name = name.strip().strip("\"'").split("::")[0].strip()
    if name.lower().startswith("comp-"):
        name = name[5:]
    return name.strip().lower()


def match_detectors(names: Sequence[str], sample_detectors: Sequence[str], source: str) -> list[str]:
    """The sample's $PnN for every name of a matrix file, tolerant of case, ``Comp-`` and ``:: marker``.

    Raises
    ------
    CompensationError
        Listing every name that matches no detector (or matches one twice), and the sample's detectors.
    """
    lookup: dict[str, str] = {}
    for detector in sample_detectors:
        lookup.setdefault(normalise_name(detector), detector)
    matched = [lookup.get(normalise_name(name)) for name in names]
    unmatched = [name for name, detector in zip(names, matched, strict=True) if detector is None]
    if unmatched:
        raise CompensationError(f"{source}: the matrix names {unmatched}, which match no detector of the sample "
                                f"({list(sample_detectors)}). Rename them in the file to the sample's $PnN.")
    duplicated = sorted({d for d in matched if matched.count(d) > 1})
    if duplicated:
        raise CompensationError(f"{source}: the matrix names detector(s) {duplicated} more than once. "
                                "Export the matrix again so every detector appears once.")
    return matched  # type: ignore[return-value]


def _is_spill_text(line: str) -> bool:
    first = line.split(",")[0].strip()
    return first.isdigit() and line.count(",") >= 2


def _split(line: str, delimiter: str | None) -> list[str]:
    fields = [f.strip().strip("\"'") for f in (line.split(delimiter) if delimiter else line.split())]
    while fields and not fields[-1]:
        fields.pop()  # trailing delimiters, as spreadsheets write them
    return fields


def _delimiter(lines: list[str]) -> str | None:
    sample = "\n".join(lines[:3])
    for delimiter in ("\t", ",", ";"):
        if delimiter in sample:
            return delimiter
    return None  # whitespace


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_table(lines: list[str], source: str) -> tuple[list[str], list[str] | None, np.ndarray]:
    """Column names, row names (or None) and values of a matrix table; title lines before the header skipped."""
    delimiter = _delimiter(lines)
    rows = [_split(line, delimiter) for line in lines]
    first_data = next((i for i, r in enumerate(rows) if len(r) > 1 and any(map(_is_number, r))), None)
    if first_data is None or first_data == 0:
        raise CompensationError(f"{source}: no header row of detector names followed by rows of numbers. Export "
                                "the matrix as CSV with detector names in the first row.")
    header, body = rows[first_data - 1], rows[first_data:]
    has_row_names = any(not _is_number(r[0]) for r in body)
    if (has_row_names and len(header) == len(body[0])) or (not has_row_names and header[0] == ""):
        header = header[1:]  # the header's first cell labels the row-name column (often empty)
    row_names = [r[0] for r in body] if has_row_names else None
    cells = [r[1:] if has_row_names else r for r in body]
    n = len(header)
    if len(cells) != n or any(len(c) != n for c in cells):
        raise CompensationError(f"{source}: the matrix is not square ({n} detector names in the header, "
                                f"{len(cells)} rows of {sorted({len(c) for c in cells})} values). Every detector "
                                "needs one row and one column.")
    try:
        values = np.array([[float(v) for v in c] for c in cells])
    except ValueError:
        bad = next(v for c in cells for v in c if not _is_number(v))
        raise CompensationError(f"{source}: the matrix holds the non-numeric value {bad!r}. Spillover values "
                                "must be numbers (fractions or percent).") from None
    if not np.all(np.isfinite(values)):
        raise CompensationError(f"{source}: the matrix holds NaN or infinite values. Fill in every spillover "
                                "value (0 where there is none).")
    return header, row_names, values


def _as_fractions(values: np.ndarray, source: str) -> np.ndarray:
    """Spillover fractions from fractions (diagonal 1) or percent (diagonal 100)."""
    diagonal = np.diag(values)
    if np.allclose(diagonal, 1.0, rtol=0, atol=_DIAGONAL_TOLERANCE):
        return values / diagonal[:, None]
    if np.allclose(diagonal, 100.0, rtol=0, atol=100 * _DIAGONAL_TOLERANCE):
        return values / diagonal[:, None]
    raise CompensationError(f"{source}: the matrix diagonal is {np.round(diagonal, 4).tolist()}, neither all 1 "
                            "(fractions) nor all 100 (percent). Check that rows and columns list the detectors in "
                            "the same order.")


def _order_rows(values: np.ndarray, row_names: list[str], detectors: list[str], sample_detectors: Sequence[str],
                *, source: str) -> np.ndarray:
    """Rows put in column order when the row names are detector names; kept as they are when none are."""
    lookup = {normalise_name(d): d for d in sample_detectors}
    row_detectors = [lookup.get(normalise_name(name)) for name in row_names]
    if all(d is None for d in row_detectors):
        return values  # fluorochrome labels, not detector names: rows are in column order
    if sorted(map(str, row_detectors)) != sorted(detectors):
        raise CompensationError(f"{source}: the row names {row_names} do not name the same detectors as the "
                                "header. Every detector needs one row and one column.")
    order = [row_detectors.index(d) for d in detectors]
    return values[order]


def _sample_ordered_matrix(values: np.ndarray, detectors: list[str], names: list[str],
                           sample_detectors: Sequence[str], *, markers: Sequence[str | None] | None) -> fk.Matrix:
    order = sorted(range(len(detectors)), key=lambda i: list(sample_detectors).index(detectors[i]))
    ordered = values[np.ix_(order, order)]
    if markers is not None:
        labels = [markers[list(sample_detectors).index(detectors[i])] or "" for i in order]
    else:
        labels = [names[i].split("::")[1].strip() if "::" in names[i] else "" for i in order]
    return fk.Matrix(ordered, [detectors[i] for i in order], labels)
