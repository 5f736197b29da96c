"""The run's statistical analysis: every immune-change table, model, dose-response, predictor and correlation.

Each analysis of a value runs on the percentages (``percent_of``), the absolute counts (``abs_count``, cells/uL,
when the population table has them) and the configured ratios (``ratio``), stacked in one table with a ``value``
column and one FDR family per value. Samples within a rescue therapy's window are left out of everything but the
rescue sensitivity table, and platelet counts within one out of the platelet correlations.
"""

from __future__ import annotations

import pandas as pd

from .changes import (CHANGE_TEST_COLUMNS, COMPARISON_COLUMNS, GROUP_COLUMN, PRIMARY_COLUMNS, add_response_groups,
                      change_tests, primary_endpoint, response_comparison)
from .dose import DOSE_RESPONSE_COLUMNS, RESPONSE_RATE_COLUMNS, dose_response_table, response_rate_table
from .models import (ASSOCIATION_COLUMNS, COUNT_COLUMNS, MODEL_COLUMNS, RMCORR_COLUMNS, change_association_table,
                     count_model_table, mixed_model_table, rmcorr_table)
from .predictors import (BASELINE_COLUMNS, TIME_TO_RESPONSE_COLUMNS, baseline_predictor_table,
                         time_to_response_table)
from .ratios import ratio_rows
from .rescue import (SENSITIVITY_COLUMNS, outside_rescue_window, platelets_outside_rescue_windows,
                     rescue_sensitivity_table)
from .settings import StatisticsSettings

STATISTICS_TABLES: dict[str, list[str]] = {
    "changes": CHANGE_TEST_COLUMNS, "changes_by_response": CHANGE_TEST_COLUMNS,
    "changes_by_cohort": CHANGE_TEST_COLUMNS, "response_comparison": COMPARISON_COLUMNS,
    "primary_endpoint": PRIMARY_COLUMNS, "rescue_sensitivity": SENSITIVITY_COLUMNS, "mixed_models": MODEL_COLUMNS,
    "count_models": MODEL_COLUMNS, "dose_response": DOSE_RESPONSE_COLUMNS, "response_rates": RESPONSE_RATE_COLUMNS,
    "baseline_predictors": BASELINE_COLUMNS, "time_to_response": TIME_TO_RESPONSE_COLUMNS,
    "platelet_rmcorr": RMCORR_COLUMNS, "platelet_change_association": ASSOCIATION_COLUMNS}
"""Every table :func:`immune_change_analysis` returns, in this order, with its columns."""


def analysed_values(populations: pd.DataFrame, settings: StatisticsSettings) -> dict[str, pd.DataFrame]:
    """value column -> the rows to analyse on it: percentages, absolute counts (when given and enabled), ratios."""
    values = {"percent_of": populations}
    if settings.absolute_counts and "abs_count" in populations and populations["abs_count"].notna().any():
        values["abs_count"] = populations
    ratios = ratio_rows(populations, settings.ratios)
    if len(ratios):
        values["ratio"] = ratios
    return values


def _stack(tables: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)


def immune_change_analysis(populations: pd.DataFrame, responses: pd.DataFrame, platelets: pd.DataFrame,
                           visits: list[str], *, baseline: str, settings: StatisticsSettings | None = None,
                           patients: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every table of :data:`STATISTICS_TABLES`, keyed by name.

    Parameters
    ----------
    populations
        The merged population table (``in_rescue_window`` flags from
        :func:`cytotrial.stats.rescue.flag_rescue_window`, when rescue therapy was given).
    responses
        The response table (one row per patient).
    platelets
        The checked platelet table.
    settings
        What to analyse (:class:`StatisticsSettings`); None: the defaults.
    patients
        The patient table (cohort, dose) for the response rates; None: taken from the population table.

    Missing populations (status not 'ok') and ``settings.technical_populations`` are left out.
    """
    settings = settings or StatisticsSettings()
    primary = dict(settings.primary_endpoint)
    usable = populations[(populations["status"] == "ok")
                         & ~populations["population"].isin(settings.technical_populations)]
    every_sample = add_response_groups(usable, responses)
    analysed = outside_rescue_window(every_sample)
    outside = settings.outside_fdr(usable["population"])
    counts_outside = platelets_outside_rescue_windows(platelets, settings.rescue_platelet_window_days)
    if patients is None:
        patients = populations.drop_duplicates("patient_id")[["patient_id", "cohort", "dose_1e6_per_kg"]]
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in STATISTICS_TABLES}
    comparisons = {}
    for value, rows in analysed_values(analysed, settings).items():  # percentages, counts, ratios
        data = add_response_groups(rows, responses) if GROUP_COLUMN not in rows else rows
        parts["changes"].append(change_tests(data, visits, baseline, value, outside_fdr=outside))
        parts["changes_by_response"].append(change_tests(data, visits, baseline, value, by=GROUP_COLUMN,
                                                         outside_fdr=outside))
        if "cohort" in data.columns:
            parts["changes_by_cohort"].append(change_tests(data, visits, baseline, value, by="cohort",
                                                           outside_fdr=outside))
        comparisons[value] = response_comparison(data, visits, baseline, value, outside_fdr=outside)
        parts["response_comparison"].append(comparisons[value])
        parts["dose_response"].append(dose_response_table(data, visits, baseline, value, outside_fdr=outside))
        parts["baseline_predictors"].append(baseline_predictor_table(data, baseline, value, outside_fdr=outside))
        parts["mixed_models"].append(mixed_model_table(data, visits, baseline, value,
                                                       contrast_visits=primary["visits"]))
        if value in COUNT_COLUMNS:
            parts["count_models"].append(count_model_table(data, visits, baseline, value,
                                                           contrast_visits=primary["visits"]))
        parts["platelet_rmcorr"].append(rmcorr_table(data, counts_outside, value))
        parts["platelet_change_association"].append(change_association_table(data, counts_outside, visits,
                                                                              baseline, value=value))
    values = analysed_values(analysed, settings)
    primary_data = values.get(primary["value"], analysed if primary["value"] in analysed.columns else None)
    if primary_data is None:
        raise ValueError(f"statistics.primary_endpoint.value {primary['value']!r} has no values in the population "
                         f"table (analysed: {', '.join(values)})")
    parts["primary_endpoint"].append(primary_endpoint(add_response_groups(primary_data, responses), baseline,
                                                      primary, family=comparisons.get(primary["value"])))
    parts["rescue_sensitivity"].append(rescue_sensitivity_table(every_sample, visits, baseline, primary))
    parts["response_rates"].append(response_rate_table(responses, patients))
    parts["time_to_response"].append(time_to_response_table(analysed, responses, baseline, primary["population"],
                                                            value=primary["value"]))
    return {name: _stack(tables, STATISTICS_TABLES[name]) for name, tables in parts.items()}
