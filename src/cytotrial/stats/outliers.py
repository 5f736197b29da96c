"""Flag samples whose population frequency is far from their batch or from the patient's own trajectory.

The flags are a review aid: they point the reviewer at the gate-review panels worth a second look (a failed
gate, a mislabelled tube, a staining or acquisition problem); they do not remove anything from the tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_TO_SD = 1.4826
"""Scale factor turning a median absolute deviation into a normal-consistent SD."""

COUNT_COLUMNS = {"percent_of": "denominator_count", "percent_of_parent": "parent_count"}
"""Event count behind each percentage column (used for the pseudo-count of the logit)."""

NO_COUNT_CLIP = 1e-4
"""Proportions are clipped to [1e-4, 1 - 1e-4] before the logit when no event count is available."""


def flag_population_outliers(populations: pd.DataFrame, value: str = "percent_of", batch_z: float = 4.0,
                             trajectory_z: float = 4.0, *, min_group: int = 4, min_visits: int = 3,
                             patient_z: float = 4.0, min_patients: int = 5, min_sd: float = 0.2,
                             keep_scores: bool = False) -> pd.DataFrame:
    """Add ``outlier`` and ``outlier_reason`` to every row (sample x population) of a population table.

    The method is described under Notes.

    Parameters
    ----------
    populations
        Merged population table with sample_id, patient_id, batch, population and ``value``.
    value
        Percentage column to test (0-100).
    batch_z, trajectory_z
        Robust-z thresholds of the two tests.
    min_group
        Minimum number of other samples with a value in the batch for the batch test.
    min_visits
        Minimum number of the patient's other visits with a value for the trajectory test.
    patient_z, min_patients
        Robust-z threshold of the patient test, and the minimum number of other patients it needs.
    min_sd
        Floor of both scales, in logit units (0.2 is about a 20 % relative change of a rare population).
    keep_scores
        Also return the z scores as ``batch_z``, ``trajectory_z`` and ``patient_z`` (NaN where not tested).

    Returns
    -------
    DataFrame
        A copy of ``populations`` (same rows and order) with ``outlier`` (bool) and ``outlier_reason`` (str,
        "" when not flagged), and with ``keep_scores`` the two z columns.

    Notes
    -----
    Percentages are compared on the logit scale, ``y = logit((p n + 0.5) / (n + 1))`` with ``p = value / 100``
    and ``n`` the event count behind the percentage (``denominator_count`` for ``percent_of``,
    ``parent_count`` for ``percent_of_parent``; without one, ``p`` is clipped to [1e-4, 1 - 1e-4]). On this
    scale a 2-fold change of a rare population is the same distance wherever it starts, and 0 % or 100 % stay
    finite. Everything is computed per population; rows whose ``value`` is missing (NA) are left out of every
    statistic and never flagged.

    (a) Batch. For each sample, the median of the *other* samples of its batch (leave-one-out), when the batch
        has at least ``min_group`` other samples with a value. Its scale is the largest of: the robust SD
        (1.4826 x MAD) of those other samples; the population's pooled batch scale, 1.4826 x the median of
        the absolute leave-one-out residuals ``y - median(others)`` of all tested samples of the population
        (so that a batch whose few samples happen to agree does not make ordinary noise look extreme, while a
        noisy batch widens its own scale); and ``min_sd`` logit units. Flagged when ``|z| > batch_z``.
    (b) Trajectory. For each sample, the median of the same patient's *other* visits (leave-one-out), when the
        patient has at least ``min_visits`` other visits with a value. Its scale is the pooled within-patient
        robust SD, 1.4826 x the median of the absolute leave-one-out residuals over all patients' tested
        samples of the population (floored at ``min_sd``): a within-patient scale is far too noisy from 6
        visits, and the leave-one-out residual already includes the uncertainty of the patient's median.
        Flagged when ``|z| > trajectory_z``.

    (c) Patient. For each patient, the median of its visits against the medians of the *other* patients, with
        their robust SD as scale (floored at ``min_sd``), when there are at least ``min_patients`` others: a
        gate that fails the same way at every visit of a patient passes (b) but not this test. Every visit of
        the patient is flagged when ``|z| > patient_z``.

    A value is flagged when it is far from its batch *and* from the patient's other visits (either alone when
    the other test cannot be made), or when its patient is far from the others. A visit that departs from the
    patient's own course but not from the batch (a treatment effect, a rescue therapy) is not flagged, nor is a
    batch-wide shift that the patient's other visits share. Treatment effects shared by most patients widen the
    pooled trajectory scale only a little (it is a median). The reason names the test(s), the percentage against the reference median and the z, e.g.
    ``"batch run012: 30.1% vs 6.02% median of 5 others (z=+5.3); trajectory: 30.1% vs 5.8% median of P03's
    other 6 visits (z=+9.8)"``. The result is deterministic (no randomness; ties and row order do not matter).
    """
    missing = [c for c in ("patient_id", "batch", "population", value) if c not in populations.columns]
    if missing:
        raise ValueError(f"the population table has no column(s) {missing}")
    table = populations.copy()
    y = _logit_scale(table, value)
    batch = _robust_z(table, y, ["population", "batch"], min_group, per_group_scale=True, min_sd=min_sd)
    trajectory = _robust_z(table, y, ["population", "patient_id"], min_visits, per_group_scale=False,
                           min_sd=min_sd)
    patient = _patient_z(table, y, min_patients, min_sd)
    batch_hit = np.abs(batch["z"]) > batch_z
    trajectory_hit = np.abs(trajectory["z"]) > trajectory_z
    patient_hit = np.abs(patient["z"]) > patient_z
    batch_tested, trajectory_tested = np.isfinite(batch["z"]), np.isfinite(trajectory["z"])
    sample_hit = ((batch_hit & (trajectory_hit | ~trajectory_tested)) |
                  (trajectory_hit & (batch_hit | ~batch_tested)))
    percent = table[value].to_numpy(dtype=float)
    reasons = []
    for i in range(len(table)):
        parts = []
        if sample_hit[i] and batch_hit[i]:
            parts.append(f"batch {table['batch'].iloc[i]}: {_versus(percent[i], batch['median'][i])} median of "
                         f"{batch['n'][i]} others (z={batch['z'][i]:+.1f})")
        if sample_hit[i] and trajectory_hit[i]:
            parts.append(f"trajectory: {_versus(percent[i], trajectory['median'][i])} median of "
                         f"{table['patient_id'].iloc[i]}'s other {trajectory['n'][i]} visits "
                         f"(z={trajectory['z'][i]:+.1f})")
        if patient_hit[i]:
            parts.append(f"patient: {table['patient_id'].iloc[i]}'s median {patient['own'][i]:.3g}% vs "
                         f"{patient['median'][i]:.3g}% median of {patient['n'][i]} other patients "
                         f"(z={patient['z'][i]:+.1f})")
        reasons.append("; ".join(parts))
    table["outlier"] = sample_hit | patient_hit
    table["outlier_reason"] = reasons
    if keep_scores:
        table["batch_z"] = batch["z"]
        table["trajectory_z"] = trajectory["z"]
        table["patient_z"] = patient["z"]
    return table


def _patient_z(table: pd.DataFrame, y: np.ndarray, min_patients: int, min_sd: float) -> dict[str, np.ndarray]:
    """Robust z of each patient's median (logit scale) against the other patients' medians, per population,
    on every row of the patient (see test (c) of :func:`flag_population_outliers`)."""
    size = len(table)
    z, own, centre = np.full(size, np.nan), np.full(size, np.nan), np.full(size, np.nan)
    others_n = np.zeros(size, dtype=int)
    frame = pd.DataFrame({"population": table["population"].astype(str).to_numpy(),
                          "patient": table["patient_id"].astype(str).to_numpy(), "y": y})
    medians = frame[np.isfinite(y)].groupby(["population", "patient"], sort=True)["y"].median()
    for population, by_patient in medians.groupby(level=0, sort=True):
        values = by_patient.to_numpy()
        if values.size - 1 < min_patients:
            continue
        for k, patient in enumerate(by_patient.index.get_level_values(1)):
            others = np.delete(values, k)
            middle = float(np.median(others))
            scale = max(min_sd, MAD_TO_SD * float(np.median(np.abs(others - middle))))
            rows = ((frame["population"] == population) & (frame["patient"] == patient)).to_numpy()
            z[rows], own[rows], centre[rows] = (values[k] - middle) / scale, values[k], middle
            others_n[rows] = others.size
    return {"z": z, "own": 100.0 * _expit(own), "median": 100.0 * _expit(centre), "n": others_n}


def _logit_scale(table: pd.DataFrame, value: str) -> np.ndarray:
    """logit of the proportion with a half-event pseudo-count (NaN where the value is missing)."""
    p = pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float) / 100.0
    count_column = COUNT_COLUMNS.get(value)
    n = (pd.to_numeric(table[count_column], errors="coerce").to_numpy(dtype=float)
         if count_column in table.columns else np.full(p.size, np.nan))
    with np.errstate(invalid="ignore"):
        counted = np.isfinite(n) & (n > 0)
        adjusted = np.where(counted, (p * n + 0.5) / (n + 1.0), np.clip(p, NO_COUNT_CLIP, 1 - NO_COUNT_CLIP))
        return np.log(adjusted) - np.log1p(-adjusted)


def _robust_z(table: pd.DataFrame, y: np.ndarray, keys: list[str], min_others: int, *, per_group_scale: bool,
              min_sd: float) -> dict[str, np.ndarray]:
    """Leave-one-out robust z of every row against the other rows of its group (see the module function).

    Returns
    -------
    dict
        ``z`` (NaN where not tested), ``median`` (the reference median, on the percentage scale of the group's
        other rows, i.e. back-transformed), ``n`` (number of other rows) and ``residual`` (logit scale).
    """
    size = len(table)
    residual = np.full(size, np.nan)
    centre = np.full(size, np.nan)
    own_sd = np.full(size, np.nan)
    others_n = np.zeros(size, dtype=int)
    finite = np.isfinite(y)
    group_keys = table[keys].astype(str).agg("\x1f".join, axis=1).to_numpy()
    codes, uniques = pd.factorize(group_keys)  # rows of each group in one pass (linear in the table, not quadratic)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    members = {uniques[g]: order[starts[g]:starts[g + 1]] for g in range(len(uniques))}
    for key in sorted(set(group_keys[finite])):
        rows = members[key][finite[members[key]]]
        if rows.size - 1 < min_others:
            continue
        for k, row in enumerate(rows):
            others = y[np.delete(rows, k)]
            centre[row] = np.median(others)
            own_sd[row] = MAD_TO_SD * np.median(np.abs(others - centre[row]))
            others_n[row] = others.size
            residual[row] = y[row] - centre[row]
    population = table["population"].astype(str).to_numpy()
    pooled = np.full(size, min_sd)
    for name in sorted(set(population)):
        rows = (population == name) & np.isfinite(residual)
        if rows.any():
            pooled[population == name] = max(min_sd, MAD_TO_SD * float(np.median(np.abs(residual[rows]))))
    scale = np.fmax(pooled, own_sd) if per_group_scale else pooled
    return {"z": residual / scale, "median": 100.0 * _expit(centre), "n": others_n, "residual": residual}


def _expit(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _versus(percent: float, reference: float) -> str:
    """A percentage against its reference median, for reasons ('30.1% vs 6.02%')."""
    return f"{percent:.3g}% vs {reference:.3g}%"


def add_flags(populations: pd.DataFrame) -> pd.DataFrame:
    """``flagged`` and ``flag_reason`` of every row: the gate's own QC flag (``gate_flag``, set when gating: a
    fall-back taken, a cut clipped to its range, a mixture without a component near its target) and the
    outlier flag of :func:`flag_population_outliers`, in words ('gate: ...; batch ...')."""
    table = populations.copy()
    gate = table["gate_flag"].fillna("").astype(str) if "gate_flag" in table else pd.Series("", index=table.index)
    outlier = table["outlier_reason"].fillna("").astype(str)
    table["flagged"] = (gate != "") | table["outlier"].astype(bool)
    table["flag_reason"] = [("gate: " + g if g else "") + ("; " if g and o else "") + o for g, o in zip(gate, outlier)]
    return table
