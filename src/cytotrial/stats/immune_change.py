"""Immune-change table: each population at each visit, and its change from baseline within patients."""

from __future__ import annotations

import numpy as np
import pandas as pd

CHANGE_COLUMNS = ["population", "denominator", "visit", "n", "median", "q1", "q3", "n_paired", "median_change",
                  "median_percent_change"]


def immune_change_table(populations: pd.DataFrame, visits: list[str], baseline: str,
                        value: str = "percent_of") -> pd.DataFrame:
    """Per population and visit: n, median (IQR) of ``value``, and median paired change from ``baseline``.

    Parameters
    ----------
    populations
        Merged population table (one row per sample and population) with patient_id, visit, population,
        denominator and ``value`` (default: % of the reporting denominator). Missing values (NA) are left out of
        every statistic.
    visits
        Visit labels in study order; visits with no sample at all are left out.
    baseline
        The baseline visit; changes are value(visit) - value(baseline) within each patient, in percentage
        points, and 100 x change / baseline value (patients with a baseline of 0 are left out of the latter).

    Returns
    -------
    DataFrame
        :data:`CHANGE_COLUMNS`, ordered by population (as first seen) then visit.
    """
    data = populations.dropna(subset=[value])
    wide = data.pivot_table(index=["population", "patient_id"], columns="visit", values=value, aggfunc="first")
    denominators = populations.drop_duplicates("population").set_index("population")["denominator"]
    visits = [v for v in visits if (populations["visit"] == v).any()]
    rows = []
    for population in dict.fromkeys(populations["population"]):
        per_patient = wide.loc[population] if population in wide.index.get_level_values(0) else pd.DataFrame()
        base = per_patient[baseline] if baseline in per_patient else pd.Series(dtype=float)
        for visit in visits:
            values = per_patient[visit].dropna() if visit in per_patient else pd.Series(dtype=float)
            paired = pd.concat([base, per_patient.get(visit, pd.Series(dtype=float))], axis=1).dropna()
            change = paired.iloc[:, 1] - paired.iloc[:, 0] if len(paired) else pd.Series(dtype=float)
            nonzero = paired.iloc[:, 0] > 0 if len(paired) else pd.Series(dtype=bool)
            percent_change = 100 * change[nonzero] / paired.iloc[:, 0][nonzero] if len(paired) else change
            rows.append({"population": population, "denominator": denominators[population], "visit": visit,
                         "n": int(values.size), "median": _quantile(values, 0.5), "q1": _quantile(values, 0.25),
                         "q3": _quantile(values, 0.75), "n_paired": int(len(paired)),
                         "median_change": _quantile(change, 0.5),
                         "median_percent_change": _quantile(percent_change, 0.5)})
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def _quantile(values: pd.Series, q: float) -> float:
    return float(np.quantile(values.to_numpy(dtype=float), q)) if len(values) else np.nan
