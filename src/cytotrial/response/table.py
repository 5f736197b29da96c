"""Platelet tables: reading and checking the per-patient platelet counts the response is derived from.

A platelet table has one row per patient and study day: ``patient_id``, ``study_day`` (day 0: start of
treatment), ``platelets_1e9_per_L`` (empty: no count that day, e.g. a row that only records a rescue therapy),
``rescue_therapy`` (0/1: rescue therapy given that day) and optionally ``bleeding`` (0/1: bleeding on that day;
an empty cell, or no column, means bleeding was not recorded), ``corticosteroid_dependent`` (0/1: the patient
needed ongoing or repeated corticosteroids to keep the count or avoid bleeding, given on the days it applies or on
every row of the patient; empty counts as 0) and ``week`` (kept, not used).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "study_day", "platelets_1e9_per_L", "rescue_therapy")
OPTIONAL_COLUMNS: tuple[str, ...] = ("week", "bleeding", "corticosteroid_dependent")
MAX_LISTED_PROBLEMS = 10


class PlateletTableError(ValueError):
    """A platelet table that cannot be evaluated; the message names the file, line or row, and the fix."""


def load_platelets(path: str | os.PathLike) -> pd.DataFrame:
    """Read a platelet table (TSV) and check it.

    Parameters
    ----------
    path
        Tab-separated file with a header line and the columns of :data:`REQUIRED_COLUMNS`.

    Returns
    -------
    DataFrame
        The checked table as :func:`validate_platelets` returns it.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PlateletTableError
        If it is not a readable TSV or fails a check; problems name the file and the 1-based line of the TSV
        (the header is line 1).
    """
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, skip_blank_lines=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"platelet table not found: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise PlateletTableError(f"platelet table {path} is not a readable tab-separated table: {err}") from None
    return _validate(raw, f"platelet table {path}", lambda i: f"line {i + 2}")


def validate_platelets(table: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Check a platelet table and return it in a normal form.

    Parameters
    ----------
    table
        Platelet table (see the module docstring).
    source
        Where the table came from, used in error messages (e.g. a file name).

    Returns
    -------
    DataFrame
        patient_id (str), study_day (int), platelets_1e9_per_L (float, NaN: no count), rescue_therapy (bool),
        bleeding (nullable boolean: NA where not recorded, all NA without a ``bleeding`` column),
        corticosteroid_dependent (bool; all False without the column) and ``week`` if present, sorted by patient
        and study day, with a fresh index.

    Raises
    ------
    PlateletTableError
        Missing columns (named), empty patient ids, study days that are not whole numbers, platelet counts
        that are not numbers or negative, flags other than 0/1, and more than one row for a patient and day;
        each problem names the row (1-based position in ``table``), the patient and the value.
    """
    name = "platelet table" if source is None else f"platelet table {source}"
    return _validate(table, name, lambda i: f"row {i + 1}")


def _show(value: object) -> str:
    """A cell value for a message: strings quoted, numbers plain."""
    return repr(value) if isinstance(value, str) else str(value)


def _validate(table: pd.DataFrame, name: str, where: Callable[[int], str]) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise PlateletTableError(f"{name}: missing column(s) {', '.join(missing)}; a platelet table needs the "
                                 f"columns {', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})")
    table = table.reset_index(drop=True)
    problems: list[str] = []
    pid = table["patient_id"]
    pid_text = pid.astype(str).str.strip()
    for i in np.flatnonzero(pid.isna().to_numpy() | (pid_text == "").to_numpy()):
        problems.append(f"{where(i)}: empty patient_id")

    def who(i: int) -> str:
        return f"{where(i)} (patient {'?' if pd.isna(pid.iloc[i]) else pid_text.iloc[i]})"

    day = pd.to_numeric(table["study_day"], errors="coerce")
    bad_day = ~np.isfinite(day.to_numpy(dtype=float)) | (day.to_numpy(dtype=float) % 1 != 0)
    for i in np.flatnonzero(bad_day):
        problems.append(f"{who(i)}: study_day {_show(table['study_day'].iloc[i])} is not a whole number of days")

    raw = table["platelets_1e9_per_L"]
    count = pd.to_numeric(raw, errors="coerce").astype(float)
    for i in np.flatnonzero((raw.notna() & count.isna()).to_numpy() | np.isinf(count.to_numpy())):
        problems.append(f"{who(i)}: platelets_1e9_per_L {_show(raw.iloc[i])} is not a finite number (leave the "
                        f"cell empty when there is no count)")
    for i in np.flatnonzero((count < 0).to_numpy()):
        problems.append(f"{who(i)}: platelets_1e9_per_L {_show(raw.iloc[i])} is negative; counts are >= 0 x10^9/L")

    flags = {}
    for column in ("rescue_therapy", "bleeding", "corticosteroid_dependent"):
        if column not in table.columns:
            flags[column] = pd.Series(pd.NA if column == "bleeding" else False, index=table.index, dtype="boolean")
            continue
        text = table[column].astype(str).str.strip()
        given = table[column].notna() & (text != "")
        value = pd.to_numeric(table[column].where(given), errors="coerce")
        for i in np.flatnonzero((given & ~value.isin([0, 1])).to_numpy()):
            problems.append(f"{who(i)}: {column} {_show(table[column].iloc[i])} must be 0 or 1 (or empty)")
        flags[column] = value.eq(1).astype("boolean").where(given, pd.NA if column == "bleeding" else False)

    if not problems:
        key = pd.DataFrame({"patient_id": pid_text, "study_day": day})
        dup = key.duplicated(keep=False).to_numpy()
        for (patient, d), rows in key[dup].groupby(["patient_id", "study_day"], sort=True).groups.items():
            lines = " and ".join(where(i) for i in rows)
            problems.append(f"patient {patient} has more than one row for study day {int(d)} ({lines}); keep "
                            f"one row per patient and day")
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"\n  ... and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise PlateletTableError(f"{name} has {len(problems)} problem(s):\n  {listed}{more}")

    out = pd.DataFrame({"patient_id": pid_text, "study_day": day.astype(np.int64), "platelets_1e9_per_L": count,
                        "rescue_therapy": flags["rescue_therapy"].astype(bool),
                        "bleeding": flags["bleeding"].astype("boolean"),
                        "corticosteroid_dependent": flags["corticosteroid_dependent"].astype(bool)})
    if "week" in table.columns:
        out["week"] = pd.to_numeric(table["week"], errors="coerce")
    return out.sort_values(["patient_id", "study_day"], kind="stable").reset_index(drop=True)
