"""Ratios of two populations' event counts per sample (CD4/CD8, Treg/conventional CD4), as rows of a population
table with the ratio in column ``ratio``, so every analysis of a value can take them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .changes import require_columns
from .settings import Ratio

SAMPLE_COLUMNS = ["sample_id", "patient_id", "visit", "study_day", "batch", "cohort", "dose_1e6_per_kg",
                  "in_rescue_window", "rescue_window_reason"]
"""Sample-level columns carried from the population table to the ratio rows (when present)."""


def ratio_rows(populations: pd.DataFrame, ratios: Iterable[Ratio]) -> pd.DataFrame:
    """One row per sample and ratio: population = the ratio's name, denominator = its denominator (e.g.
    "CD4 - Treg"), count / denominator_count = the numerator and denominator event counts, ratio = their quotient
    (NaN when a count is missing or the denominator is 0), status ok or missing.

    Ratios whose populations are not in the table are skipped; rows with a status other than ok count as missing.
    """
    require_columns(populations, ["sample_id", "population", "count"], "population table")
    ok = populations if "status" not in populations else populations[populations["status"].fillna("ok") == "ok"]
    counts = ok.pivot_table(index="sample_id", columns="population", values="count", aggfunc="first")
    samples = populations.drop_duplicates("sample_id").set_index("sample_id")
    carried = samples[[c for c in SAMPLE_COLUMNS if c in samples.columns and c != "sample_id"]]
    blocks = []
    for ratio in ratios:
        if ratio.numerator not in counts.columns or ratio.denominator not in counts.columns:
            continue
        numerator = counts[ratio.numerator].reindex(carried.index).to_numpy(float)
        denominator = counts[ratio.denominator].reindex(carried.index).to_numpy(float)
        if ratio.subtract_numerator:
            denominator = denominator - numerator
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(denominator > 0, numerator / denominator, np.nan)
        blocks.append(carried.reset_index().assign(
            population=ratio.name, denominator=ratio.label, count=numerator, denominator_count=denominator,
            ratio=value, status=np.where(np.isfinite(value), "ok", "missing")))
    columns = [*[c for c in SAMPLE_COLUMNS if c in populations.columns], "population", "denominator", "count",
               "denominator_count", "ratio", "status"]
    return pd.concat(blocks, ignore_index=True)[columns] if blocks else pd.DataFrame(columns=columns)
