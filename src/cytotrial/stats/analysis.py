"""The run's statistical analysis: every immune-change table, model and correlation in one call."""

from __future__ import annotations

import pandas as pd

from .changes import change_tables
from .models import change_association_table, count_model_table, mixed_model_table, rmcorr_table

# populations that describe the cleaning steps, not cell subsets: left out of the statistics
CLEANING_POPULATIONS = ("boundary", "cells", "singlets", "live")


def immune_change_analysis(populations: pd.DataFrame, responses: pd.DataFrame, platelets: pd.DataFrame,
                           visits: list[str], baseline: str, primary: dict | None = None,
                           value: str = "percent_of", exclude: tuple[str, ...] = CLEANING_POPULATIONS
                           ) -> dict[str, pd.DataFrame]:
    """Immune changes from baseline (all patients, by response group, by cohort), responders vs non-responders,
    the pre-declared primary endpoint, mixed models, count models, repeated-measures correlation with platelets
    and the association of changes, keyed by table name.

    Missing populations (status not 'ok') and the cleaning populations in ``exclude`` are left out.
    """
    data = populations[(populations["status"] == "ok") & ~populations["population"].isin(exclude)]
    tables = change_tables(data, responses, visits, baseline, value, primary)
    tables["mixed_models"] = mixed_model_table(data, visits, baseline, value, responses=responses)
    tables["count_models"] = count_model_table(data, visits, baseline, value, responses=responses)
    tables["platelet_rmcorr"] = rmcorr_table(data, platelets, value)
    tables["platelet_change_association"] = change_association_table(data, platelets, visits, baseline, value)
    return tables
