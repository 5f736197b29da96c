"""Immune changes from baseline with tests: paired within patients, between response groups, the primary endpoint.

Tidy tables, one row per (group x) population x visit: :func:`change_tests` (n, median (IQR), change and % change
from baseline, its Hodges-Lehmann estimate with exact 95 % CI and paired Wilcoxon test; in all patients or split
by a patient attribute), :func:`response_comparison` (responders vs non-responders at each visit, on the value
and on the change: Mann-Whitney U, Hodges-Lehmann difference) and :func:`primary_endpoint` (the declared primary
immunological endpoint). The tests (as R's ``wilcox.test``) and the FDR families: :func:`change_tests`.

Rows whose ``status`` is not ``ok`` (when the column exists) and missing values are left out of every statistic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .nonparametric import hodges_lehmann_paired, hodges_lehmann_two_sample

EXACT_MAX_N = 25
"""Largest sample (non-zero differences; each group for Mann-Whitney) tested with the exact null distribution."""

GROUP_COLUMN = "response_group"
RESPONDER, NON_RESPONDER = "responder", "non-responder"

HL_COLUMNS = ["hl_estimate", "hl_ci_low", "hl_ci_high", "hl_confidence"]
CHANGE_TEST_COLUMNS = ["split", "group", "population", "denominator", "value", "visit", "n", "median", "q1", "q3",
                       "n_paired", "median_change", "q1_change", "q3_change", "median_percent_change", *HL_COLUMNS,
                       "wilcoxon_v", "p_value", "p_method", "q_value", "fdr_family"]
COMPARISON_COLUMNS = ["measure", "population", "denominator", "value", "visit", "n_responders", "n_nonresponders",
                      "median_responders", "median_nonresponders", "median_difference", *HL_COLUMNS,
                      "rank_biserial", "mann_whitney_u", "p_value", "p_method", "q_value", "fdr_family"]
PRIMARY_COLUMNS = ["endpoint", "role", "population", "value", "visit", "n_responders", "n_nonresponders",
                   "n_left_out", "median_change_responders", "median_change_nonresponders", "median_difference",
                   *HL_COLUMNS, "rank_biserial", "mann_whitney_u", "p_value", "p_method", "alpha", "significant",
                   "q_value_in_family"]
PRIMARY_NAME = "primary immunological endpoint"
DEFAULT_PRIMARY: dict = {"population": "Treg", "visits": ["W4", "W12"], "value": "percent_of", "complete_cases": True}


def require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ValueError naming the columns of ``columns`` that ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


def bh_qvalues(p_values: Iterable[float]) -> np.ndarray:
    """Benjamini-Hochberg q values; NaN p values stay NaN and are not counted in the family.

    Parameters
    ----------
    p_values
        (m,) p values in [0, 1] or NaN.

    Returns
    -------
    ndarray, shape (m,)
    """
    p = np.asarray(list(p_values), dtype=float)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = stats.false_discovery_control(p[finite], method="bh")
    return q


def family_qvalues(table: pd.DataFrame, family: str | pd.Series, outside_fdr: Mapping[str, str] | None = None
                   ) -> pd.DataFrame:
    """``table`` with ``q_value`` (BH within each family) and ``fdr_family`` (its name).

    Parameters
    ----------
    family
        The family of every row: one name, or a Series aligned with ``table``.
    outside_fdr
        Population -> reason: those rows get no q value and ``fdr_family`` "outside FDR: <reason>".
    """
    outside_fdr = outside_fdr or {}
    names = pd.Series(family, index=table.index, dtype=object)
    outside = table["population"].map(outside_fdr)
    names = names.where(outside.isna(), "outside FDR: " + outside.astype(str))
    q = pd.Series(np.nan, index=table.index)
    for name in pd.unique(names[outside.isna()]):
        members = (names == name) & outside.isna()
        q[members] = bh_qvalues(table.loc[members, "p_value"])
    return table.assign(q_value=q.to_numpy(), fdr_family=names.to_numpy())


def _hl(result: dict) -> dict:
    return {"hl_estimate": result["estimate"], "hl_ci_low": result["ci_low"], "hl_ci_high": result["ci_high"],
            "hl_confidence": result["confidence"]}


def wilcoxon_signed_rank(differences: Iterable[float]) -> tuple[float, float, str]:
    """Two-sided Wilcoxon signed-rank test of paired differences (see the module docstring for the method).

    Returns
    -------
    (V, p, method)
        V = sum of ranks of positive differences; NaN p when no difference is non-zero.
    """
    d = np.asarray(list(differences), dtype=float)
    d = d[np.isfinite(d)]
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return np.nan, np.nan, "no non-zero differences"
    ranks = stats.rankdata(np.abs(nonzero))
    v = float(ranks[nonzero > 0].sum())
    ties = np.unique(np.abs(nonzero)).size < nonzero.size
    exact = nonzero.size <= EXACT_MAX_N and not ties and nonzero.size == d.size
    if exact:
        p = stats.wilcoxon(nonzero, method="exact").pvalue
        return v, float(p), "exact"
    p = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic").pvalue
    return v, float(p), "normal approx."


def mann_whitney(x: Iterable[float], y: Iterable[float]) -> tuple[float, float, str]:
    """Two-sided Mann-Whitney U test of ``x`` against ``y`` (see the module docstring for the method).

    Returns
    -------
    (U, p, method)
        U of ``x``; NaN when either sample is empty.
    """
    x = np.asarray(list(x), dtype=float)
    y = np.asarray(list(y), dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return np.nan, np.nan, "empty group"
    both = np.concatenate([x, y])
    ties = np.unique(both).size < both.size
    method = "exact" if max(x.size, y.size) <= EXACT_MAX_N and not ties else "asymptotic"
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    return float(result.statistic), float(result.pvalue), "exact" if method == "exact" else "normal approx."


def response_groups(responses: pd.DataFrame) -> pd.Series:
    """patient_id -> 'responder' / 'non-responder' (NA where ``responded`` is not a bool).

    Parameters
    ----------
    responses
        One row per patient with patient_id and responded (bool), e.g. ``derive_responses(platelets)``.
    """
    require_columns(responses, ["patient_id", "responded"], "response table")
    if responses["patient_id"].duplicated().any():
        raise ValueError("response table has more than one row for a patient")
    return responses.set_index("patient_id")["responded"].map({True: RESPONDER, False: NON_RESPONDER})


def add_response_groups(populations: pd.DataFrame, responses: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``populations`` with ``response_group`` ('responder' / 'non-responder', NA without a response)."""
    require_columns(populations, ["patient_id"], "population table")
    group = populations["patient_id"].map(response_groups(responses))
    return populations.assign(**{GROUP_COLUMN: group.astype(object)})


def usable_rows(populations: pd.DataFrame, value: str, extra: Iterable[str] = ()) -> pd.DataFrame:
    """Rows with status ok (when the column exists) and a ``value``; an error for missing columns or duplicates."""
    require_columns(populations, ["patient_id", "visit", "population", value, *extra], "population table")
    data = populations
    if "status" in data.columns:
        data = data[data["status"].fillna("ok") == "ok"]
    data = data.dropna(subset=[value])
    duplicated = data.duplicated(["population", "patient_id", "visit"])
    if duplicated.any():
        first = data.loc[duplicated, ["population", "patient_id", "visit"]].iloc[0].tolist()
        raise ValueError(f"more than one row for population/patient/visit {first}")
    return data


def _wide(data: pd.DataFrame, value: str) -> dict[str, pd.DataFrame]:
    """population -> (patients x visits) table of ``value``."""
    wide = data.pivot(index=["population", "patient_id"], columns="visit", values=value)
    frames = {population: frame.droplevel(0) for population, frame in wide.groupby(level=0, sort=False)}
    return {population: frames[population] for population in pd.unique(data["population"])}


def _denominators(populations: pd.DataFrame) -> pd.Series:
    if "denominator" in populations.columns:
        return populations.drop_duplicates("population").set_index("population")["denominator"]
    return pd.Series(pd.NA, index=pd.unique(populations["population"]), dtype=object)


def _q(values: np.ndarray | pd.Series, q: float) -> float:
    return _quartiles(values)[{0.25: 0, 0.5: 1, 0.75: 2}[q]]


def _quartiles(values: np.ndarray | pd.Series) -> tuple[float, float, float]:
    """(q1, median, q3) of the finite values (linear interpolation, numpy's default); NaN when there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return np.nan, np.nan, np.nan
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return float(q1), float(median), float(q3)


def _column(frame: pd.DataFrame, visit: str) -> pd.Series:
    return frame[visit] if visit in frame.columns else pd.Series(np.nan, index=frame.index)


def change_tests(populations: pd.DataFrame, visits: list[str], baseline: str, value: str = "percent_of",
                 *, by: str | None = None, outside_fdr: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per (group x) population x visit: n, median (IQR), change from baseline and its paired Wilcoxon test.

    Parameters
    ----------
    populations
        Merged population table (patient_id, visit, population, denominator, ``value``, optional status).
    visits
        Visit labels in study order; visits without any sample are left out.
    baseline
        Baseline visit. Changes are value(visit) - value(baseline) within a patient (percentage points for
        percentages); % change is 100 x change / baseline, over patients with a baseline > 0. The baseline row
        has change 0 and no test.
    by
        None for all patients (split 'all', group 'all'), or a column of ``populations`` holding a patient
        attribute (e.g. 'response_group', 'cohort'); patients with NA in it are left out.
    outside_fdr
        Population -> reason it is outside the FDR family (see :func:`family_qvalues`).

    Returns
    -------
    DataFrame
        :data:`CHANGE_TEST_COLUMNS`; q values are BH over all groups x populations x visits tested; the
        Hodges-Lehmann columns estimate the change (median of the Walsh averages) with its exact CI.

    Tests and multiplicity (of every table of this module)
    ------------------------------------------------------
    * Wilcoxon signed-rank (:func:`wilcoxon_signed_rank`): with n <= :data:`EXACT_MAX_N` differences, none zero
      and no ties among their absolute values, the exact null distribution (scipy ``method="exact"``,
      ``p_method="exact"``); otherwise zero differences are dropped (Wilcoxon's method, R's default) and the normal
      approximation with tie-corrected variance and continuity correction is used (``"normal approx."``), as R's
      ``wilcox.test`` does (the exact distribution is wrong with ties and zeros). The statistic is R's V,
      the sum of the ranks of the positive differences.
    * Mann-Whitney U (:func:`mann_whitney`): exact when neither group has more than :data:`EXACT_MAX_N` values and
      there are no ties, otherwise the tie-corrected normal approximation with continuity correction (as R). U is
      the responders' statistic (R's W for ``wilcox.test(responders, non_responders)``).
    * BH q values (:func:`bh_qvalues`, Benjamini-Hochberg) are computed within one family per table and value: all
      groups x populations x post-baseline visits of a :func:`change_tests` table, and all populations x visits of
      one ``measure`` of :func:`response_comparison`. The family is named in the ``fdr_family`` column. Populations
      in ``outside_fdr`` (duplicates, the last member of a set of complements; see
      :class:`cytotrial.stats.settings.StatisticsSettings`) keep their tests but no q value, so each question is in a
      family once.
    * The primary immunological endpoint is one pre-specified test, judged at ``alpha`` unadjusted and kept out of
      every FDR family; by default only patients with a value at baseline and at every endpoint visit enter it. Its
      per-visit components are ordinary exploratory rows of the ``change`` family too; the primary table repeats
      their family q values (``q_value_in_family``) so both readings are visible.
    * Hodges-Lehmann estimates and intervals: :mod:`cytotrial.stats.nonparametric` (``hl_confidence`` is the
      confidence the order-statistic interval achieves, >= 95 % when it can be reached).
    """
    data = usable_rows(populations, value, [by] if by else [])
    data = data.assign(_group="all") if by is None else data.dropna(subset=[by]).assign(_group=lambda d: d[by])
    denominators = _denominators(populations)
    visits = [v for v in visits if (data["visit"] == v).any()]
    split = by or "all"
    rows = []
    for group, group_data in data.groupby("_group", sort=True):
        for population, frame in _wide(group_data, value).items():
            base = _column(frame, baseline)
            for visit in visits:
                values = _column(frame, visit).dropna()
                paired = pd.concat([base, _column(frame, visit)], axis=1).dropna().to_numpy()
                change = paired[:, 1] - paired[:, 0]
                positive = paired[:, 0] > 0
                percent = 100 * change[positive] / paired[positive, 0]
                is_baseline = visit == baseline
                v, p, method = (np.nan, np.nan, "baseline") if is_baseline else wilcoxon_signed_rank(change)
                q1, median, q3 = _quartiles(values)
                q1_change, median_change, q3_change = _quartiles(change)
                rows.append({"split": split, "group": str(group), "population": population,
                             "denominator": denominators.get(population), "value": value, "visit": visit,
                             "n": int(values.size), "median": median, "q1": q1, "q3": q3,
                             "n_paired": int(len(paired)), "median_change": median_change, "q1_change": q1_change,
                             "q3_change": q3_change, "median_percent_change": _q(percent, 0.5),
                             **_hl(hodges_lehmann_paired([] if is_baseline else change)), "wilcoxon_v": v,
                             "p_value": p, "p_method": method})
    table = pd.DataFrame(rows, columns=CHANGE_TEST_COLUMNS)
    table = family_qvalues(table, f"paired change, {split}, {value}: groups x populations x visits", outside_fdr)
    return _order(table, visits, "group")


def _order(table: pd.DataFrame, visits: list[str], first: str, first_order: list[str] | None = None) -> pd.DataFrame:
    """Rows by ``first`` (in ``first_order``, else sorted), population as first seen, then visit in study order."""
    levels = first_order or sorted(pd.unique(table[first]))
    keys = table.assign(_f=table[first].map({g: i for i, g in enumerate(levels)}),
                        _p=table["population"].map({p: i for i, p in enumerate(pd.unique(table["population"]))}),
                        _v=table["visit"].map({v: i for i, v in enumerate(visits)}))
    return keys.sort_values(["_f", "_p", "_v"], kind="stable").drop(columns=["_f", "_p", "_v"]).reset_index(drop=True)


def _patient_groups(data: pd.DataFrame, group_column: str) -> pd.Series:
    groups = data.dropna(subset=[group_column]).drop_duplicates("patient_id").set_index("patient_id")[group_column]
    unknown = set(groups) - {RESPONDER, NON_RESPONDER}
    if unknown:
        raise ValueError(f"{group_column} must be {RESPONDER!r} or {NON_RESPONDER!r}; found {sorted(unknown)}")
    return groups


def _comparison_row(x: np.ndarray, y: np.ndarray) -> dict:
    u, p, method = mann_whitney(x, y)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    return {"n_responders": int(x.size), "n_nonresponders": int(y.size), "median_responders": _q(x, 0.5),
            "median_nonresponders": _q(y, 0.5), "median_difference": _q(x, 0.5) - _q(y, 0.5),
            **_hl(hodges_lehmann_two_sample(x, y)),
            "rank_biserial": 2 * u / (x.size * y.size) - 1 if np.isfinite(u) else np.nan,
            "mann_whitney_u": u, "p_value": p, "p_method": method}


def response_comparison(populations: pd.DataFrame, visits: list[str], baseline: str, value: str = "percent_of",
                        *, group_column: str = GROUP_COLUMN,
                        outside_fdr: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Responders vs non-responders at each visit, on the value and on its change from baseline (Mann-Whitney).

    Parameters
    ----------
    populations
        Population table with ``group_column`` ('responder' / 'non-responder', see :func:`add_response_groups`).

    Returns
    -------
    DataFrame
        :data:`COMPARISON_COLUMNS`; ``measure`` 'value' (every visit) or 'change' (post-baseline visits only).
        Medians are of the value or of the change; the Hodges-Lehmann columns estimate responders minus
        non-responders (median of all pairwise differences) with its exact CI; rank_biserial = 2U/(n1 n2) - 1
        (> 0: higher in responders). q values are BH within each measure (one family each).
    """
    data = usable_rows(populations, value, [group_column])
    groups = _patient_groups(data, group_column)
    denominators = _denominators(populations)
    visits = [v for v in visits if (data["visit"] == v).any()]
    rows = []
    for population, frame in _wide(data[data["patient_id"].isin(groups.index)], value).items():
        is_responder = (groups.reindex(frame.index) == RESPONDER).to_numpy()
        base = _column(frame, baseline).to_numpy()
        for measure in ("value", "change"):
            for visit in visits:
                if measure == "change" and visit == baseline:
                    continue
                values = _column(frame, visit).to_numpy()
                values = values - base if measure == "change" else values
                rows.append({"measure": measure, "population": population,
                             "denominator": denominators.get(population), "value": value, "visit": visit,
                             **_comparison_row(values[is_responder], values[~is_responder])})
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    family = "responders vs non-responders, " + table["measure"] + f", {value}: populations x visits"
    table = family_qvalues(table, family, outside_fdr)
    return _order(table, visits, "measure", ["value", "change"])


def primary_endpoint(populations: pd.DataFrame, baseline: str, endpoint: Mapping | None = None,
                     group_column: str = GROUP_COLUMN, *, alpha: float = 0.05,
                     family: pd.DataFrame | None = None) -> pd.DataFrame:
    """The declared primary immunological endpoint: change from baseline, responders vs non-responders
    (Mann-Whitney, Hodges-Lehmann difference with exact CI).

    The primary test compares each patient's mean change over the endpoint's visits between responders and
    non-responders; it is one test at ``alpha``, outside any FDR family. With ``complete_cases`` (default) only
    patients with a value at baseline and at every endpoint visit enter it (the others are counted in
    ``n_left_out``); without, each patient's mean is over the endpoint visits it has. One supportive row per
    endpoint visit gives the same comparison at that visit, in every patient with that visit.

    Parameters
    ----------
    endpoint
        {'population': str, 'visits': [str, ...], 'value': column, 'complete_cases': bool}; default
        :data:`DEFAULT_PRIMARY` (missing keys too).
    family
        Optional :func:`response_comparison` table; its ``change`` q values are copied to the supportive rows.

    Returns
    -------
    DataFrame
        :data:`PRIMARY_COLUMNS`, the primary row first.
    """
    if endpoint is not None and not {"population", "visits"} <= set(endpoint):
        raise ValueError(f"primary endpoint lacks key(s) {sorted({'population', 'visits'} - set(endpoint))}: "
                         f"{dict(endpoint)}")
    endpoint = {**DEFAULT_PRIMARY, **(endpoint or {})}
    population, visits, value = endpoint["population"], list(endpoint["visits"]), endpoint["value"]
    complete = bool(endpoint.get("complete_cases", True))
    data = usable_rows(populations, value, [group_column])
    data = data[data["population"] == population]
    if data.empty:
        raise ValueError(f"primary endpoint population {population!r} has no values in the population table")
    groups = _patient_groups(data, group_column)
    wide = _wide(data[data["patient_id"].isin(groups.index)], value)
    if population not in wide:
        raise ValueError(f"primary endpoint population {population!r} has no patient with a response group")
    frame = wide[population]
    is_responder = (groups.reindex(frame.index) == RESPONDER).to_numpy()
    changes = pd.DataFrame({v: _column(frame, v) - _column(frame, baseline) for v in visits})
    has_change = changes.notna()
    enters = has_change.all(axis=1) if complete else has_change.any(axis=1)
    summary = changes.mean(axis=1, skipna=True).where(enters).to_numpy()
    who = "patients with " + ", ".join([baseline, *visits]) if complete else "patients with any endpoint visit"
    label = (f"{PRIMARY_NAME}: {population} {value}, change from {baseline}, mean of {'+'.join(visits)} ({who}), "
             f"responders vs non-responders")
    rows = [{"role": PRIMARY_NAME, "visit": "mean of " + "+".join(visits),
             "n_left_out": int((has_change.any(axis=1) & ~enters).sum()),
             **_comparison_row(summary[is_responder], summary[~is_responder])}]
    for visit in visits:
        change = changes[visit].to_numpy()
        rows.append({"role": "supportive", "visit": visit, "n_left_out": 0,
                     **_comparison_row(change[is_responder], change[~is_responder])})
    table = pd.DataFrame(rows).rename(columns={"median_responders": "median_change_responders",
                                               "median_nonresponders": "median_change_nonresponders"})
    primary_row = (table["role"] == PRIMARY_NAME).to_numpy()
    significant = pd.Series([bool(p <= alpha) if is_primary else pd.NA for p, is_primary in
                             zip(table["p_value"], primary_row, strict=True)], dtype=object)
    table = table.assign(endpoint=label, population=population, value=value, alpha=alpha, significant=significant,
                         q_value_in_family=np.nan)
    if family is not None:
        q = family[(family["measure"] == "change") & (family["population"] == population)
                   & (family["value"] == value)].set_index("visit")
        supportive = table["role"] == "supportive"
        table.loc[supportive, "q_value_in_family"] = table.loc[supportive, "visit"].map(q["q_value"]).to_numpy()
    return table[PRIMARY_COLUMNS]


def change_tables(populations: pd.DataFrame, responses: pd.DataFrame, visits: list[str], baseline: str,
                  *, value: str = "percent_of", primary: Mapping | None = None,
                  outside_fdr: Mapping[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Every table of this module, keyed by a sheet-friendly name (see :mod:`cytotrial.report.workbook`).

    Parameters
    ----------
    responses
        Per-patient responses (patient_id, responded), e.g. ``derive_responses(platelets)``.
    outside_fdr
        Population -> reason it is outside the FDR families (see :func:`family_qvalues`).

    Returns
    -------
    dict
        'changes', 'changes_by_response', 'changes_by_cohort' (when the table has a cohort column),
        'response_comparison', 'primary_endpoint'.
    """
    grouped = add_response_groups(populations, responses)
    tables = {"changes": change_tests(grouped, visits, baseline, value, outside_fdr=outside_fdr),
              "changes_by_response": change_tests(grouped, visits, baseline, value, by=GROUP_COLUMN,
                                                  outside_fdr=outside_fdr)}
    if "cohort" in grouped.columns:
        tables["changes_by_cohort"] = change_tests(grouped, visits, baseline, value, by="cohort",
                                                   outside_fdr=outside_fdr)
    tables["response_comparison"] = response_comparison(grouped, visits, baseline, value, outside_fdr=outside_fdr)
    tables["primary_endpoint"] = primary_endpoint(grouped, baseline, primary, family=tables["response_comparison"])
    return tables
