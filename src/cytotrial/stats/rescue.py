"""Rescue therapy in the immune analyses: samples and platelet counts within a rescue's effect window.

Rescue therapies change the immune system on their own (corticosteroids raise Tregs, rituximab removes B cells)
and lift the platelet count: immune samples drawn on the day of a rescue therapy up to ``window_days`` after it
are flagged (:func:`flag_rescue_window`) and left out of the primary and change analyses, and platelet counts in
such a window are left out of the platelet correlations (:func:`platelets_outside_rescue_windows`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .changes import PRIMARY_NAME, change_tests, primary_endpoint, require_columns

FLAG_COLUMNS = ["in_rescue_window", "rescue_window_reason"]


def rescue_days(platelets: pd.DataFrame) -> dict[str, list[int]]:
    """patient_id -> sorted study days of rescue therapy (from a checked platelet table)."""
    require_columns(platelets, ["patient_id", "study_day", "rescue_therapy"], "platelet table")
    given = platelets[platelets["rescue_therapy"].astype(bool)]
    return {str(p): sorted(int(d) for d in days) for p, days in given.groupby("patient_id")["study_day"]}


def _latest_rescue(patient: str, day: float, rescues: dict[str, list[int]], window_days: int) -> int | None:
    """The latest rescue day d of the patient with d <= day < d + window_days, or None."""
    covering = [d for d in rescues.get(patient, []) if d <= day < d + window_days]
    return covering[-1] if covering else None


def flag_rescue_window(populations: pd.DataFrame, platelets: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Add ``in_rescue_window`` and ``rescue_window_reason`` to every row of a population table.

    A sample is in a rescue window when its study day lies in d..d + window_days - 1 for a rescue therapy on day d
    of the same patient (rescue days from the platelet table).

    Raises
    ------
    ValueError
        When the platelet table records rescue therapy but the population table has no study_day to place the
        samples (add study_day to the sample sheet).
    """
    rescues = rescue_days(platelets)
    table = populations.copy()
    if not rescues or window_days <= 0:
        return table.assign(in_rescue_window=False, rescue_window_reason="")
    if "study_day" not in table.columns:
        raise ValueError("the platelet table records rescue therapy, but the population table has no study_day: "
                         "add a study_day column to the sample sheet so samples after a rescue can be flagged")
    flags, reasons = [], []
    for patient, day in zip(table["patient_id"].astype(str), pd.to_numeric(table["study_day"], errors="coerce"),
                            strict=True):
        rescue = None if np.isnan(day) else _latest_rescue(patient, day, rescues, window_days)
        flags.append(rescue is not None)
        reasons.append("" if rescue is None else f"drawn on day {int(day)}, {int(day) - rescue} days after rescue "
                                                 f"therapy on day {rescue} (window {window_days} days)")
    return table.assign(in_rescue_window=flags, rescue_window_reason=reasons)


def outside_rescue_window(populations: pd.DataFrame) -> pd.DataFrame:
    """Rows not flagged by :func:`flag_rescue_window` (all rows of a table without the flag)."""
    if "in_rescue_window" not in populations.columns:
        return populations
    flagged = populations["in_rescue_window"].astype(str).str.lower().isin(["true", "1"])
    return populations[~flagged.to_numpy()]


def platelets_outside_rescue_windows(platelets: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """The platelet table without the counts on a rescue day up to ``window_days`` after it (same patient)."""
    rescues = rescue_days(platelets)
    if not rescues or window_days <= 0:
        return platelets
    keep = [_latest_rescue(str(p), float(d), rescues, window_days) is None
            for p, d in zip(platelets["patient_id"], platelets["study_day"], strict=True)]
    return platelets[np.asarray(keep, bool)]


SENSITIVITY_COLUMNS = ["analysis", "rescue_window_samples", "population", "value", "visit",
                       "n_rescue_window_samples", "n", "hl_estimate", "hl_ci_low", "hl_ci_high", "hl_confidence",
                       "p_value", "p_method"]


def _flagged(populations: pd.DataFrame) -> pd.DataFrame:
    return populations.drop(outside_rescue_window(populations).index)


def rescue_sensitivity_table(populations: pd.DataFrame, visits: list[str], baseline: str,
                             primary: dict) -> pd.DataFrame:
    """The primary immunological endpoint and the paired changes (all patients) with the rescue-window samples
    left out (as in every other table) and kept.

    Parameters
    ----------
    populations
        Population table with ``response_group`` and the rescue flags of :func:`flag_rescue_window` (all rows).
    primary
        The primary endpoint (population, visits, value, complete_cases).

    Returns
    -------
    DataFrame
        :data:`SENSITIVITY_COLUMNS`: the primary test (Hodges-Lehmann difference responders - non-responders,
        Mann-Whitney p), then the paired change of every population x visit that has a rescue-window sample
        (Hodges-Lehmann change, Wilcoxon p), each first with those samples left out, then kept.
    """
    value = primary["value"]
    flagged = _flagged(populations)
    left_out = outside_rescue_window(populations)
    rows = []
    endpoint_visits = [baseline, *primary["visits"]]
    n_primary = int(((flagged["population"] == primary["population"])
                     & flagged["visit"].isin(endpoint_visits)).sum())
    for label, data in (("left out", left_out), ("kept", populations)):
        result = primary_endpoint(data, baseline, primary).iloc[0]
        rows.append({"analysis": PRIMARY_NAME, "rescue_window_samples": label, "population": primary["population"],
                     "value": value, "visit": result["visit"], "n_rescue_window_samples": n_primary,
                     "n": int(result["n_responders"] + result["n_nonresponders"]),
                     **{c: result[c] for c in ("hl_estimate", "hl_ci_low", "hl_ci_high", "hl_confidence",
                                               "p_value", "p_method")}})
    touched = flagged[flagged["visit"] != baseline].groupby(["population", "visit"], sort=False).size()
    order = {v: i for i, v in enumerate(visits)}
    touched = touched.sort_index(key=lambda index: index.map(order) if index.name == "visit"
                                 else index.map({p: i for i, p in enumerate(pd.unique(populations["population"]))}))
    if len(touched):
        tables = {label: change_tests(data, visits, baseline, value).set_index(["population", "visit"])
                  for label, data in (("left out", left_out), ("kept", populations))}
        for (population, visit), n_flagged in touched.items():
            for label, table in tables.items():
                if (population, visit) not in table.index:
                    continue
                result = table.loc[(population, visit)]
                rows.append({"analysis": "paired change, all patients", "rescue_window_samples": label,
                             "population": population, "value": value, "visit": visit,
                             "n_rescue_window_samples": int(n_flagged), "n": int(result["n_paired"]),
                             **{c: result[c] for c in ("hl_estimate", "hl_ci_low", "hl_ci_high", "hl_confidence",
                                                       "p_value", "p_method")}})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)
