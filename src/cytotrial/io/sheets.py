"""Sample sheet and patient table: loading and checks with errors that name the file, row and fix."""

from __future__ import annotations

import os

import pandas as pd

from .tables import read_tsv


class SheetError(ValueError):
    """A sample sheet or patient table is inconsistent."""


def _require_columns(table: pd.DataFrame, columns: list[str], path: str | os.PathLike, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SheetError(f"{what} {path} lacks column(s) {missing}; it has {list(table.columns)}. "
                         f"Add them (tab-separated, header in the first line).")


def load_patients(path: str | os.PathLike) -> pd.DataFrame:
    """Patient table with patient_id, cohort and dose_1e6_per_kg; ids must be unique."""
    patients = read_tsv(path, "patient table")
    _require_columns(patients, ["patient_id", "cohort", "dose_1e6_per_kg"], path, "patient table")
    empty = [f"line {i + 2}: {column} of patient '{row.patient_id}' is empty" for i, row in patients.iterrows()
             for column in ("cohort", "dose_1e6_per_kg") if pd.isna(row[column]) or str(row[column]).strip() == ""]
    if empty:
        raise SheetError(f"patient table {path}: " + "; ".join(empty[:10]) + (" ..." if len(empty) > 10 else "")
                         + ". Fill in each patient's cohort (any label) and dose_1e6_per_kg (x10^6 per kg).")
    duplicated = patients[patients.patient_id.duplicated(keep=False)]
    if len(duplicated):
        rows = ", ".join(str(i + 2) for i in duplicated.index)
        raise SheetError(f"patient table {path}: patient_id {sorted(set(duplicated.patient_id))} appears more than "
                         f"once (lines {rows}). Keep one line per patient.")
    return patients


def load_samples(path: str | os.PathLike, visits: list[str], patients: pd.DataFrame) -> pd.DataFrame:
    """Sample sheet with unique sample ids, known visits and known patients.

    Line numbers in errors count the header as line 1.
    """
    samples = read_tsv(path, "sample sheet")
    _require_columns(samples, ["sample_id", "patient_id", "visit", "fcs"], path, "sample sheet")
    problems = []
    duplicate_id = samples.sample_id.duplicated(keep=False)
    known_visit = samples.visit.isin(visits)
    known_patient = samples.patient_id.isin(set(patients.patient_id))
    per_visit = samples.groupby(["patient_id", "visit"], sort=False).sample_id.transform("size")
    first_of_visit = ~samples.duplicated(["patient_id", "visit"], keep="first")
    for i, row in samples.iterrows():
        line = i + 2
        if duplicate_id[i]:
            problems.append(f"line {line}: sample_id '{row.sample_id}' is used more than once; ids must be unique")
        if not known_visit[i]:
            problems.append(f"line {line}: visit '{row.visit}' is not one of the config's visits {visits}")
        if not known_patient[i]:
            problems.append(f"line {line}: patient_id '{row.patient_id}' is not in the patient table")
        if per_visit[i] > 1 and first_of_visit[i]:
            problems.append(f"line {line}: patient '{row.patient_id}' has {per_visit[i]} samples at visit "
                            f"'{row.visit}'; keep one per visit")
    if problems:
        raise SheetError(f"sample sheet {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return samples


def missing_fcs_files(samples: pd.DataFrame, path: str | os.PathLike) -> dict[str, str]:
    """sample_id -> why, for sample-sheet rows whose FCS file does not exist (line numbers count the header
    as line 1; ``samples`` must keep the sheet's row order)."""
    missing = {}
    for line, row in enumerate(samples.itertuples(index=False), start=2):
        if not os.path.isfile(str(row.fcs)):
            missing[row.sample_id] = (f"{path} line {line}: FCS file '{row.fcs}' of sample '{row.sample_id}' "
                                      "does not exist")
    return missing


def last_visit_day(samples: pd.DataFrame, visits: list[str]) -> int | None:
    """Study day of the protocol's last visit: the latest ``study_day`` of the last of ``visits`` (in study order)
    that the sample sheet has; None when the sheet has no study days."""
    present = [v for v in visits if (samples.visit == v).any()]
    if "study_day" not in samples.columns or not present:
        return None
    days = pd.to_numeric(samples.loc[samples.visit == present[-1], "study_day"], errors="coerce").dropna()
    return int(days.max()) if len(days) else None


def processing_units(samples: pd.DataFrame, *, batch_transforms: bool, samples_per_job: int) -> dict[str, dict]:
    """The samples processed together in one job (rule process_samples), so that Python starts and imports the
    library once per unit rather than once per sample.

    Samples are taken by acquisition batch (column ``batch``) or, in a sheet without batches (each sample its own
    batch), by patient, in sorted order: consecutive batches (patients) share a unit while it holds at most
    ``samples_per_job`` samples, and a larger one is cut into chunks of that many sorted sample ids. A new batch
    (a later run) thus changes the last unit only. With ``batch_transforms``, the transforms of every batch whose
    samples all lie in one unit are fitted in that unit's job (``fitted_batches``); a batch cut into several units
    has them fitted once, by rule fit_batch_transforms.

    Returns unit name -> {"samples", "batches", "fitted_batches"}, in order: a unit is named by its batch (or
    patient), ``first-last`` when it holds several, ``name.1``, ``name.2``, ... when one is cut.
    """
    if samples_per_job < 1:
        raise SheetError(f"config: processing.samples_per_job is {samples_per_job}; it must be at least 1.")
    ids = samples["sample_id"].astype(str)
    batch_of = (samples["batch"] if "batch" in samples.columns else samples["sample_id"]).astype(str)
    batch_of.index = ids
    key = samples["patient_id"] if (batch_of.index == batch_of.to_numpy()).all() else samples["batch"]
    groups = sorted((str(name), sorted(rows)) for name, rows in ids.groupby(key.astype(str).to_numpy()))
    pieces: list[tuple[str, list[str]]] = []  # (name, sample ids): whole groups, or chunks of a large one
    for name, members in groups:
        chunks = [members[i:i + samples_per_job] for i in range(0, len(members), samples_per_job)]
        pieces += [(name if len(chunks) == 1 else f"{name}.{k}", chunk) for k, chunk in enumerate(chunks, start=1)]
    packed: list[list[tuple[str, list[str]]]] = []
    for piece in pieces:
        if packed and sum(len(m) for _, m in packed[-1]) + len(piece[1]) <= samples_per_job:
            packed[-1].append(piece)
        else:
            packed.append([piece])
    samples_of_batch = batch_of.groupby(batch_of).groups
    units: dict[str, dict] = {}
    for unit in packed:
        members = [s for _, m in unit for s in m]
        batches = sorted(set(batch_of[members]))
        fitted = [b for b in batches if batch_transforms and set(samples_of_batch[b]) <= set(members)]
        name = unit[0][0] if len(unit) == 1 else f"{unit[0][0]}-{unit[-1][0]}"
        units[name] = {"samples": members, "batches": batches, "fitted_batches": fitted}
    return units
