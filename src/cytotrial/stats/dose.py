"""Dose-response: immune change by dose level (Jonckheere-Terpstra) and the response rate by dose level and cohort
(Clopper-Pearson intervals, exact Cochran-Armitage trend).

Cohorts given the same dose (C and E at 2.0 x10^6 cells/kg) are one dose level: three cohorts of 3 cannot reach
p < 0.25 alone, and the question a dose-escalation trial asks is whether more cells do more.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .changes import _column, _denominators, _order, _quartiles, _wide, family_qvalues, require_columns, usable_rows
from .nonparametric import cochran_armitage_exact, jonckheere_terpstra

DOSE_COLUMN = "dose_1e6_per_kg"
DOSE_RESPONSE_COLUMNS = ["population", "denominator", "value", "visit", "dose_levels", "n_by_dose",
                         "median_change_by_dose", "jt_statistic", "p_value", "p_method", "q_value", "fdr_family"]
RESPONSE_RATE_COLUMNS = ["grouping", "group", "n", "n_responders", "n_complete_response", "response_rate", "ci_low",
                         "ci_high", "n_response_after_rescue", "n_corticosteroid_dependent", "trend_statistic",
                         "p_value", "p_increasing", "p_method"]


def _levels(doses: pd.Series) -> list[float]:
    return sorted(float(d) for d in pd.unique(doses.dropna()))


def _joined(values) -> str:
    return " / ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in values)


def dose_response_table(populations: pd.DataFrame, visits: list[str], baseline: str, value: str = "percent_of", *,
                        dose_column: str = DOSE_COLUMN, outside_fdr: Mapping[str, str] | None = None
                        ) -> pd.DataFrame:
    """Per population and post-baseline visit: the change from baseline by dose level and its Jonckheere-Terpstra
    trend test over the ordered dose levels (two-sided; exact without ties).

    Returns
    -------
    DataFrame
        :data:`DOSE_RESPONSE_COLUMNS`; dose_levels, n_by_dose and median_change_by_dose list the levels in
        increasing dose ("0.5 / 1 / 2"); q values are BH over populations x visits (one family per value).
    """
    data = usable_rows(populations, value, [dose_column])
    dose = data.drop_duplicates("patient_id").set_index("patient_id")[dose_column].astype(float)
    levels = _levels(dose)
    denominators = _denominators(populations)
    present = [v for v in visits if v != baseline and (data["visit"] == v).any()]
    rows = []
    for population, frame in _wide(data, value).items():
        patient_dose = dose.reindex(frame.index).to_numpy()
        base = _column(frame, baseline)
        for visit in present:
            change = (_column(frame, visit) - base).to_numpy()
            groups = [change[(patient_dose == level) & np.isfinite(change)] for level in levels]
            statistic, p, method = jonckheere_terpstra(groups)
            rows.append({"population": population, "denominator": denominators.get(population), "value": value,
                         "visit": visit, "dose_levels": _joined(levels), "n_by_dose": _joined([g.size for g in groups]),
                         "median_change_by_dose": _joined([_quartiles(g)[1] for g in groups]),
                         "jt_statistic": statistic, "p_value": p, "p_method": method})
    table = pd.DataFrame(rows, columns=DOSE_RESPONSE_COLUMNS)
    table = family_qvalues(table, f"dose response (Jonckheere-Terpstra), {value}: populations x visits", outside_fdr)
    return _order(table.assign(_all="all"), visits, "_all").drop(columns="_all")


def _rate_row(grouping: str, group: str, responses: pd.DataFrame) -> dict:
    n, responders = len(responses), int(responses["responded"].sum())
    low, high = proportion_confint(responders, n, alpha=0.05, method="beta") if n else (np.nan, np.nan)
    category = responses["response_category"] if "response_category" in responses else pd.Series(dtype=object)
    return {"grouping": grouping, "group": group, "n": n, "n_responders": responders,
            "n_complete_response": int((responses["best_response"] == "CR").sum()),
            "response_rate": responders / n if n else np.nan, "ci_low": float(low), "ci_high": float(high),
            "n_response_after_rescue": int((category == "response after rescue").sum()),
            "n_corticosteroid_dependent": int((category == "corticosteroid-dependent").sum())}


def response_rate_table(responses: pd.DataFrame, patients: pd.DataFrame, *, dose_column: str = DOSE_COLUMN
                        ) -> pd.DataFrame:
    """Response rate (CR or R of the treatment) with its Clopper-Pearson 95 % interval: in all patients, per dose
    level and per cohort, then the exact Cochran-Armitage trend of the rate over dose levels (scores: the doses).

    Parameters
    ----------
    responses
        The response table (patient_id, responded, best_response; response_category when present).
    patients
        The patient table (patient_id, cohort, ``dose_column``).

    Returns
    -------
    DataFrame
        :data:`RESPONSE_RATE_COLUMNS`; the trend row has grouping "trend over dose levels", its statistic
        sum(dose x responders), two-sided p and the one-sided p of a rate increasing with dose.
    """
    require_columns(responses, ["patient_id", "responded", "best_response"], "response table")
    require_columns(patients, ["patient_id", "cohort", dose_column], "patient table")
    merged = responses.merge(patients[["patient_id", "cohort", dose_column]], on="patient_id", how="left")
    missing = merged.loc[merged[dose_column].isna(), "patient_id"].tolist()
    if missing:
        raise ValueError(f"patient table lacks a {dose_column} for patient(s) {missing} of the response table")
    merged["responded"] = merged["responded"].astype(str).str.lower().isin(["true", "1"])
    rows = [_rate_row("all", "all", merged)]
    levels = _levels(merged[dose_column])
    rows += [_rate_row("dose level", f"{level:g}", merged[merged[dose_column] == level]) for level in levels]
    rows += [_rate_row("cohort", str(c), merged[merged["cohort"] == c]) for c in sorted(pd.unique(merged["cohort"]))]
    by_level = [merged[merged[dose_column] == level] for level in levels]
    trend = cochran_armitage_exact([int(g["responded"].sum()) for g in by_level], [len(g) for g in by_level], levels)
    rows.append({**_rate_row("trend over dose levels", " < ".join(f"{v:g}" for v in levels), merged),
                 "trend_statistic": trend["statistic"], "p_value": trend["p_value"],
                 "p_increasing": trend["p_increasing"],
                 "p_method": "exact Cochran-Armitage (scores: dose), two-sided; p_increasing one-sided"})
    return pd.DataFrame(rows, columns=RESPONSE_RATE_COLUMNS)
