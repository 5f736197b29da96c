"""Baseline markers as predictors of response: AUC of every population's baseline value, and time to response by
baseline level of the primary population (Kaplan-Meier and log-rank, scipy's ``ecdf`` and ``logrank``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .changes import (GROUP_COLUMN, RESPONDER, _column, _denominators, _patient_groups, _wide, family_qvalues,
                      mann_whitney, require_columns, usable_rows)
from .nonparametric import auc_delong

BASELINE_COLUMNS = ["population", "denominator", "value", "visit", "n_responders", "n_nonresponders",
                    "median_responders", "median_nonresponders", "auc", "auc_ci_low", "auc_ci_high",
                    "mann_whitney_u", "p_value", "p_method", "q_value", "fdr_family"]
TIME_TO_RESPONSE_COLUMNS = ["group", "population", "value", "baseline_median", "n", "n_responded", "study_day",
                            "n_at_risk", "n_responded_on_day", "n_censored_on_day", "cumulative_response", "ci_low",
                            "ci_high", "logrank_chi2", "p_value"]


def baseline_predictor_table(populations: pd.DataFrame, baseline: str, value: str = "percent_of", *,
                             group_column: str = GROUP_COLUMN, outside_fdr: Mapping[str, str] | None = None
                             ) -> pd.DataFrame:
    """Per population: how well its baseline value separates responders from non-responders.

    AUC = P(responder's value > non-responder's) + P(tie) / 2 with DeLong's 95 % interval (logit scale; none at
    0 or 1), and the Mann-Whitney test of the same comparison.

    Returns
    -------
    DataFrame
        :data:`BASELINE_COLUMNS`; q values are BH over populations (one family per value).
    """
    data = usable_rows(populations, value, [group_column])
    data = data[data["visit"] == baseline]
    groups = _patient_groups(data, group_column)
    denominators = _denominators(populations)
    rows = []
    for population, frame in _wide(data[data["patient_id"].isin(groups.index)], value).items():
        values = _column(frame, baseline).to_numpy()
        responder = (groups.reindex(frame.index) == RESPONDER).to_numpy()
        x, y = values[responder & np.isfinite(values)], values[~responder & np.isfinite(values)]
        u, p, method = mann_whitney(x, y)
        auc = auc_delong(x, y)
        rows.append({"population": population, "denominator": denominators.get(population), "value": value,
                     "visit": baseline, "n_responders": int(x.size), "n_nonresponders": int(y.size),
                     "median_responders": float(np.median(x)) if x.size else np.nan,
                     "median_nonresponders": float(np.median(y)) if y.size else np.nan, "auc": auc["auc"],
                     "auc_ci_low": auc["ci_low"], "auc_ci_high": auc["ci_high"], "mann_whitney_u": u,
                     "p_value": p, "p_method": method})
    table = pd.DataFrame(rows, columns=BASELINE_COLUMNS)
    return family_qvalues(table, f"baseline predictors of response, {value}: populations", outside_fdr)


def response_times(responses: pd.DataFrame) -> pd.DataFrame:
    """patient_id, day (response day, or the censoring day) and responded, from the response table.

    A non-responder is censored at ``evaluable_until_day`` (the first rescue therapy, after which a response is
    not the treatment's, or the last evaluated count), or at ``follow_up_days`` without that column.
    """
    require_columns(responses, ["patient_id", "responded", "time_to_response_days"], "response table")
    responded = responses["responded"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    censor = "evaluable_until_day" if "evaluable_until_day" in responses else "follow_up_days"
    require_columns(responses, [censor], "response table")
    day = np.where(responded, pd.to_numeric(responses["time_to_response_days"], errors="coerce"),
                   pd.to_numeric(responses[censor], errors="coerce"))
    return pd.DataFrame({"patient_id": responses["patient_id"].astype(str).to_numpy(), "day": day,
                         "responded": responded}).dropna(subset=["day"])


def _km_rows(times: pd.DataFrame, group: str) -> list[dict]:
    data = stats.CensoredData(uncensored=times.loc[times["responded"], "day"].to_numpy(float),
                              right=times.loc[~times["responded"], "day"].to_numpy(float))
    fit = stats.ecdf(data)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # undefined (NaN) where S is 0 or 1: written empty
        interval = fit.sf.confidence_interval(method="log-log") if times["responded"].any() else None
    rows = []
    for day in np.unique(times["day"]):
        survival = float(fit.sf.evaluate(day))
        low, high = ((float(interval.high.evaluate(day)), float(interval.low.evaluate(day))) if interval
                     else (np.nan, np.nan))
        rows.append({"group": group, "study_day": int(day), "n_at_risk": int((times["day"] >= day).sum()),
                     "n_responded_on_day": int(((times["day"] == day) & times["responded"]).sum()),
                     "n_censored_on_day": int(((times["day"] == day) & ~times["responded"]).sum()),
                     "cumulative_response": 1 - survival, "ci_low": 1 - low, "ci_high": 1 - high})
    return rows


def time_to_response_table(populations: pd.DataFrame, responses: pd.DataFrame, baseline: str, population: str,
                           *, value: str = "percent_of") -> pd.DataFrame:
    """Kaplan-Meier cumulative response by baseline ``population`` at or below vs above its median, with the
    log-rank test of the two curves.

    Returns
    -------
    DataFrame
        :data:`TIME_TO_RESPONSE_COLUMNS`, one row per group and distinct day (a response or a censoring); the
        cumulative response is 1 - KM survival with a log-log 95 % interval; log-rank chi-square (1 df) and p
        repeated on every row. Empty when fewer than 2 patients have a baseline value.
    """
    data = usable_rows(populations, value)
    data = data[(data["population"] == population) & (data["visit"] == baseline)]
    times = response_times(responses).merge(data[["patient_id", value]], on="patient_id")
    if len(times) < 2:
        return pd.DataFrame(columns=TIME_TO_RESPONSE_COLUMNS)
    median = float(np.median(times[value]))
    low = times[value] <= median
    labels = {True: f"baseline {population} <= median", False: f"baseline {population} > median"}
    rows = []
    for side in (True, False):
        part = times[low == side]
        if len(part):
            rows += [{**r, "n": len(part), "n_responded": int(part["responded"].sum())}
                     for r in _km_rows(part, labels[side])]
    chi2 = p = np.nan
    if low.any() and (~low).any() and times["responded"].any():
        result = stats.logrank(*(stats.CensoredData(uncensored=part.loc[part["responded"], "day"].to_numpy(float),
                                                    right=part.loc[~part["responded"], "day"].to_numpy(float))
                                 for part in (times[low], times[~low])))
        chi2, p = float(result.statistic) ** 2, float(result.pvalue)
    table = pd.DataFrame(rows).assign(population=population, value=value, baseline_median=median,
                                      logrank_chi2=chi2, p_value=p)
    return table[TIME_TO_RESPONSE_COLUMNS]

