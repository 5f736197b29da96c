"""Statistics settings, rescue windows, ratios, dose-response, response rates, baseline predictors and the whole
analysis, on hand-worked examples and against scipy / sklearn."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cytotrial.stats.analysis import STATISTICS_TABLES, immune_change_analysis
from cytotrial.stats.dose import dose_response_table, response_rate_table
from cytotrial.stats.predictors import baseline_predictor_table, time_to_response_table
from cytotrial.stats.ratios import ratio_rows
from cytotrial.stats.rescue import (flag_rescue_window, outside_rescue_window, platelets_outside_rescue_windows,
                                    rescue_sensitivity_table)
from cytotrial.stats.settings import Ratio, StatisticsSettings

VISITS = ["D0", "W4", "W12"]


# --- settings ------------------------------------------------------------------------------------------------

def test_settings_from_config_and_fdr_exclusions(caplog):
    settings = StatisticsSettings.from_dict({
        "exclude_from_fdr": ["CD25hi_CD127lo"], "complements": [["NK_bright", "NK_dim"], ["A", "B", "C"]],
        "ratios": [{"name": "CD4_CD8_ratio", "numerator": "CD4", "denominator": "CD8"}],
        "primary_endpoint": {"population": "Treg", "visits": ["W4"]}})
    assert settings.ratios == (Ratio("CD4_CD8_ratio", "CD4", "CD8"),)
    assert settings.primary_endpoint == {"population": "Treg", "visits": ["W4"], "value": "percent_of",
                                         "complete_cases": True}
    with caplog.at_level(logging.WARNING):
        outside = settings.outside_fdr(["Treg", "CD25hi_CD127lo", "NK_bright", "NK_dim", "A", "C"])
    # the last member present of each set; a set with one member present keeps it
    assert outside == {"CD25hi_CD127lo": "listed in statistics.exclude_from_fdr",
                       "NK_dim": "complement of NK_bright (statistics.complements)",
                       "C": "complement of A (statistics.complements)"}
    assert "not in the population table: B" in caplog.text  # a renamed gate is named, not silently dropped
    with pytest.raises(ValueError, match="unknown statistics setting.*rescue_days"):
        StatisticsSettings.from_dict({"rescue_days": 3})
    with pytest.raises(ValueError, match="fewer than 2 populations"):
        StatisticsSettings.from_dict({"complements": [["NK_dim"]]})
    with pytest.raises(ValueError, match="missing \\['denominator'\\]"):
        StatisticsSettings.from_dict({"ratios": [{"name": "r", "numerator": "CD4"}]})


# --- rescue windows ------------------------------------------------------------------------------------------

def _platelets(rescues=None, patients=("P1", "P2")):
    """Weekly counts of ``patients`` with rescue therapy on the days of ``rescues`` (patient -> days)."""
    rescues = rescues or {"P1": [70]}
    rows = [{"patient_id": p, "study_day": d, "platelets_1e9_per_L": 20.0 + d / 7, "rescue_therapy": d in
             rescues.get(p, [])} for p in patients for d in range(0, 197, 7)]
    return pd.DataFrame(rows)


def test_samples_within_a_rescue_window_are_flagged():
    samples = pd.DataFrame({"patient_id": ["P1"] * 6 + ["P2"], "study_day": [-1, 28, 70, 84, 125, 126, 84]})
    flagged = flag_rescue_window(samples, _platelets(), 56)
    # days 70..125 (d .. d + 55) are in the window of the rescue on day 70; P2 had none
    assert flagged["in_rescue_window"].tolist() == [False, False, True, True, True, False, False]
    assert flagged["rescue_window_reason"].iloc[3] == "drawn on day 84, 14 days after rescue therapy on day 70 " \
                                                       "(window 56 days)"
    assert len(outside_rescue_window(flagged)) == 4
    assert not flag_rescue_window(samples, _platelets(), 0)["in_rescue_window"].any()
    with pytest.raises(ValueError, match="add a study_day column to the sample sheet"):
        flag_rescue_window(samples.drop(columns="study_day"), _platelets(), 56)
    counts = platelets_outside_rescue_windows(_platelets(), 56)
    p1 = counts[counts["patient_id"] == "P1"]["study_day"]
    assert not p1.between(70, 125).any() and (p1 == 126).any() and len(counts[counts.patient_id == "P2"]) == 29


# --- ratios --------------------------------------------------------------------------------------------------

def test_ratio_rows_from_counts():
    populations = pd.DataFrame({
        "sample_id": ["S1"] * 3 + ["S2"] * 3, "patient_id": ["P1"] * 3 + ["P2"] * 3, "visit": "D0",
        "population": ["CD4", "CD8", "Treg"] * 2, "count": [600, 300, 40, 500, 0, 50],
        "status": ["ok", "ok", "ok", "ok", "ok", "missing"]})
    rows = ratio_rows(populations, [Ratio("CD4_CD8_ratio", "CD4", "CD8"),
                                    Ratio("Treg_Tconv_ratio", "Treg", "CD4", subtract_numerator=True),
                                    Ratio("absent", "X", "CD4")])
    table = rows.set_index(["population", "sample_id"])
    assert table.loc[("CD4_CD8_ratio", "S1"), "ratio"] == 2.0
    assert table.loc[("Treg_Tconv_ratio", "S1"), "ratio"] == pytest.approx(40 / 560)
    assert table.loc[("Treg_Tconv_ratio", "S1"), "denominator"] == "CD4 - Treg"
    assert table.loc[("CD4_CD8_ratio", "S2"), "status"] == "missing"  # CD8 count 0
    assert table.loc[("Treg_Tconv_ratio", "S2"), "status"] == "missing"  # the Treg value is missing
    assert set(rows["population"]) == {"CD4_CD8_ratio", "Treg_Tconv_ratio"}


# --- dose-response and response rates ------------------------------------------------------------------------

def _trial(n_per_cohort=3):
    """Treg (% of CD4) of patients in cohorts A 0.5, B 1.0, C and E 2.0; the change grows with dose."""
    rng = np.random.default_rng(11)
    rows, responded = [], {}
    cohorts = [("A", 0.5), ("B", 1.0), ("C", 2.0), ("E", 2.0)]
    for c, (cohort, dose) in enumerate(cohorts):
        for k in range(n_per_cohort):
            pid = f"P{c * n_per_cohort + k + 1:02d}"
            responded[pid] = k == 0 or dose == 2.0 and k == 1
            base = 4 + rng.normal(0, 0.5)
            for visit, day in zip(VISITS, [-1, 28, 84], strict=True):
                value = base + (0 if visit == "D0" else dose + (k - 1) * 0.1 + rng.normal(0, 0.01))
                count = value * 50  # 5000 CD4: not rounded, so no two changes tie
                rows.append({"sample_id": f"{pid}_{visit}", "patient_id": pid, "visit": visit, "study_day": day,
                             "cohort": cohort, "dose_1e6_per_kg": dose, "population": "Treg",
                             "denominator": "CD4", "count": count, "denominator_count": 5000,
                             "percent_of": count / 50, "status": "ok"})
                for name, share in (("CD4", 0.6), ("CD8", 0.3)):
                    rows.append({**rows[-1], "population": name, "denominator": "T", "count": int(share * 8000),
                                 "denominator_count": 8000, "percent_of": 100 * share})
    populations = pd.DataFrame(rows)
    responses = pd.DataFrame({"patient_id": list(responded), "responded": list(responded.values()),
                              "best_response": ["R" if r else "NR" for r in responded.values()],
                              "time_to_response_days": [28 if r else None for r in responded.values()],
                              "evaluable_until_day": [28 if r else 84 for r in responded.values()]})
    patients = populations.drop_duplicates("patient_id")[["patient_id", "cohort", "dose_1e6_per_kg"]]
    return populations, responses, patients


def test_dose_response_pools_cohorts_of_one_dose():
    populations, _, _ = _trial()
    table = dose_response_table(populations[populations.population == "Treg"], VISITS, "D0")
    w4 = table.set_index("visit").loc["W4"]
    assert w4["dose_levels"] == "0.5 / 1 / 2" and w4["n_by_dose"] == "3 / 3 / 6"
    # every change at a higher dose exceeds every change at a lower one: J = 3x3 + 3x6 + 3x6 = 45, its maximum,
    # whose exact two-sided p is 2 / (12! / (3! 3! 6!)) = 2 / 18480
    assert w4["jt_statistic"] == 45 and w4["p_method"] == "exact"
    assert w4["p_value"] == pytest.approx(2 / 18480)
    assert w4["fdr_family"] == "dose response (Jonckheere-Terpstra), percent_of: populations x visits"


def test_response_rates_with_clopper_pearson_and_exact_trend():
    _, responses, patients = _trial()
    responses = responses.assign(response_category=np.where(responses["responded"], "R", "NR"))
    responses.loc[responses.patient_id == "P02", "response_category"] = "response after rescue"
    table = response_rate_table(responses, patients)
    assert table["grouping"].tolist() == ["all", "dose level", "dose level", "dose level", "cohort", "cohort",
                                          "cohort", "cohort", "trend over dose levels"]
    everyone = table.iloc[0]
    assert (everyone["n"], everyone["n_responders"], everyone["n_response_after_rescue"]) == (12, 6, 1)
    exact = stats.binomtest(6, 12).proportion_ci(confidence_level=0.95, method="exact")
    assert (everyone["ci_low"], everyone["ci_high"]) == (pytest.approx(exact.low), pytest.approx(exact.high))
    high = table[(table.grouping == "dose level") & (table.group == "2")].iloc[0]
    assert (high["n"], high["n_responders"]) == (6, 4)  # cohorts C and E together
    trend = table.iloc[-1]
    # responders 1/3, 1/3, 4/6 at doses 0.5, 1, 2: T = 0.5 + 1 + 8 = 9.5 of the 924 ways to choose 6 of 12
    import itertools
    scores = [0.5] * 3 + [1.0] * 3 + [2.0] * 6
    null = np.array([sum(scores[i] for i in chosen) for chosen in itertools.combinations(range(12), 6)])
    assert trend["trend_statistic"] == 9.5
    assert trend["p_increasing"] == pytest.approx(np.mean(null >= 9.5 - 1e-9))
    with pytest.raises(ValueError, match="lacks a dose_1e6_per_kg for patient"):
        response_rate_table(responses, patients.assign(dose_1e6_per_kg=np.nan))


# --- baseline predictors -------------------------------------------------------------------------------------

def test_baseline_auc_equals_sklearn_and_mann_whitney_equals_scipy():
    populations, responses, _ = _trial()
    grouped = populations.assign(response_group=populations["patient_id"].map(
        responses.set_index("patient_id")["responded"].map({True: "responder", False: "non-responder"})))
    table = baseline_predictor_table(grouped, "D0").set_index("population")
    treg = table.loc["Treg"]
    base = grouped[(grouped.population == "Treg") & (grouped.visit == "D0")].set_index("patient_id")
    is_responder = base["response_group"] == "responder"
    from sklearn.metrics import roc_auc_score
    assert treg["auc"] == pytest.approx(roc_auc_score(is_responder, base["percent_of"]))
    assert treg["p_value"] == pytest.approx(stats.mannwhitneyu(base.percent_of[is_responder],
                                                               base.percent_of[~is_responder],
                                                               method="exact").pvalue)
    assert treg["auc_ci_low"] < treg["auc"] < treg["auc_ci_high"]
    assert table.loc["CD4", "auc"] == 0.5 and np.isnan(table.loc["CD4", "auc_ci_low"])  # all tied: no interval


def test_time_to_response_kaplan_meier_and_log_rank_by_hand():
    baseline = pd.DataFrame({"patient_id": [f"P{i}" for i in range(1, 7)], "visit": "D0", "population": "Treg",
                             "percent_of": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "status": "ok"})
    responses = pd.DataFrame({"patient_id": [f"P{i}" for i in range(1, 7)],
                              "responded": [True, False, True, False, False, False],
                              "time_to_response_days": [14, None, 56, None, None, None],
                              "evaluable_until_day": [14, 28, 56, 196, 196, 196]})
    table = time_to_response_table(baseline, responses, "D0", "Treg")
    low = table[table.group == "baseline Treg <= median"].set_index("study_day")
    assert table["baseline_median"].iloc[0] == 3.5 and low["n"].iloc[0] == 3 and low["n_responded"].iloc[0] == 2
    # KM of P1-P3: day 14 1 of 3 respond (S = 2/3), day 28 one censored, day 56 1 of 1 (S = 0)
    assert low.loc[14, "cumulative_response"] == pytest.approx(1 / 3) and low.loc[14, "n_at_risk"] == 3
    assert low.loc[28, "n_censored_on_day"] == 1 and low.loc[28, "cumulative_response"] == pytest.approx(1 / 3)
    assert low.loc[56, "cumulative_response"] == pytest.approx(1.0) and low.loc[56, "n_at_risk"] == 1
    # log-rank: day 14, 6 at risk (3 low): E = 0.5, V = 0.25; day 56, 4 at risk (1 low): E = 0.25, V = 0.1875;
    # O = 2: chi2 = (2 - 0.75)^2 / 0.4375
    chi2 = 1.25 ** 2 / 0.4375
    assert table["logrank_chi2"].iloc[0] == pytest.approx(chi2)
    assert table["p_value"].iloc[0] == pytest.approx(stats.chi2.sf(chi2, 1))


# --- the whole analysis --------------------------------------------------------------------------------------

def test_analysis_leaves_rescue_samples_out_and_keeps_them_in_the_sensitivity_table():
    populations, responses, patients = _trial()
    platelets = _platelets({"P02": [21]}, patients=sorted(responses.patient_id))
    populations = flag_rescue_window(populations, platelets, 56).assign(abs_count=lambda d: d["percent_of"] * 7)
    settings = StatisticsSettings.from_dict({
        "complements": [["CD4", "CD8"]], "primary_endpoint": {"population": "Treg", "visits": ["W4", "W12"]},
        "ratios": [{"name": "CD4_CD8_ratio", "numerator": "CD4", "denominator": "CD8"}]})
    tables = immune_change_analysis(populations, responses, platelets, VISITS, baseline="D0", settings=settings,
                                    patients=patients)
    assert list(tables) == list(STATISTICS_TABLES)
    for name, table in tables.items():
        assert list(table.columns) == STATISTICS_TABLES[name], name
    changes = tables["changes"].set_index(["population", "value", "visit"])
    assert changes.loc[("Treg", "percent_of", "W4"), "n_paired"] == 11  # P02's W4 (day 28) follows its rescue
    assert changes.loc[("Treg", "percent_of", "W12"), "n_paired"] == 12  # day 84 is after the window (21..76)
    assert set(tables["changes"]["value"]) == {"percent_of", "abs_count", "ratio"}
    assert changes.loc[("CD8", "percent_of", "W4"), "fdr_family"].startswith("outside FDR: complement of CD4")
    primary = tables["primary_endpoint"].iloc[0]
    assert primary["n_left_out"] == 1 and primary["n_responders"] + primary["n_nonresponders"] == 11
    sensitivity = tables["rescue_sensitivity"]
    first = sensitivity[sensitivity.analysis == "primary immunological endpoint"].set_index("rescue_window_samples")
    assert first.loc["left out", "n"] == 11 and first.loc["kept", "n"] == 12
    paired = sensitivity[sensitivity.analysis == "paired change, all patients"]
    assert set(paired.population) == {"Treg", "CD4", "CD8"} and set(paired.visit) == {"W4"}
    rmcorr = tables["platelet_rmcorr"].set_index(["population", "value"])
    # 36 samples less P02's W4; P02's D0 is matched to its day-0 count, its W12 (day 84) to day 84 (outside)
    assert rmcorr.loc[("Treg", "percent_of"), "n_obs"] == 35
    assert tables["mixed_models"]["term"].str.contains("joint F").any()
    assert set(tables["count_models"]["value"]) == {"percent_of"}


def test_platelet_counts_in_a_rescue_window_leave_the_correlations():
    """With no sample window (nothing flagged) but a platelet window, P02's W4 sample stays in the changes while
    its platelet count (day 28, 7 days after its rescue) leaves the correlations."""
    populations, responses, patients = _trial()
    platelets = _platelets({"P02": [21]}, patients=sorted(responses.patient_id))
    populations = flag_rescue_window(populations, platelets, 0)
    settings = StatisticsSettings.from_dict({"rescue_platelet_window_days": 56, "absolute_counts": False})
    tables = immune_change_analysis(populations, responses, platelets, VISITS, baseline="D0", settings=settings,
                                    patients=patients)
    changes = tables["changes"].set_index(["population", "visit"])
    assert changes.loc[("Treg", "W4"), "n_paired"] == 12
    assert tables["platelet_rmcorr"].set_index("population").loc["Treg", "n_obs"] == 35
    association = tables["platelet_change_association"].set_index(["population", "visit"])
    assert association.loc[("Treg", "W4"), "n"] == 11 and association.loc[("Treg", "W12"), "n"] == 12
