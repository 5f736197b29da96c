"""Immune-change table of the workbook: each population at each visit and its change from baseline within
patients, the descriptive columns of :func:`cytotrial.stats.changes.change_tests` over all patients."""

from __future__ import annotations

import pandas as pd

from .changes import change_tests

CHANGE_COLUMNS = ["population", "denominator", "visit", "n", "median", "q1", "q3", "n_paired", "median_change",
                  "median_percent_change"]


def immune_change_table(populations: pd.DataFrame, visits: list[str], baseline: str,
                        value: str = "percent_of") -> pd.DataFrame:
    """Per population and visit: n, median (IQR) of ``value``, and median paired change from ``baseline``.

    The rows and values of :func:`~cytotrial.stats.changes.change_tests` over all patients (rows with a status
    other than ok and missing values left out; visits without any value left out), without its tests.

    Returns
    -------
    DataFrame
        :data:`CHANGE_COLUMNS`, ordered by population (as first seen) then visit.
    """
    return change_tests(populations, visits, baseline, value)[CHANGE_COLUMNS].reset_index(drop=True)
