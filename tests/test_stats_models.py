"""Mixed model, count model, repeated-measures correlation and platelet associations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from cytotrial.stats.models import (MODEL_COLUMNS, RMCORR_COLUMNS, change_association_table, count_model_table,
                                    fit_mixed_model, interaction_contrast, match_platelets, mixed_model_table,
                                    model_outcome, rmcorr, rmcorr_table)
from cytotrial.stats.small_sample import mancl_derouen_covariance

# Bland & Altman (1995) BMJ 310:446, intramural pH and PaCO2 of 8 subjects (rmcorr's bland1995, 47 rows).
BLAND_SUBJECT = [1] * 4 + [2] * 4 + [3] * 9 + [4] * 5 + [5] * 8 + [6] * 6 + [7] * 3 + [8] * 8
BLAND_PH = [6.68, 6.53, 6.43, 6.33, 6.85, 7.06, 7.13, 7.17, 7.40, 7.42, 7.41, 7.37, 7.34, 7.35, 7.28, 7.30, 7.34,
            7.36, 7.33, 7.29, 7.30, 7.35, 7.35, 7.30, 7.30, 7.37, 7.27, 7.28, 7.32, 7.32, 7.38, 7.30, 7.29, 7.33,
            7.31, 7.33, 6.86, 6.94, 6.92, 7.19, 7.29, 7.21, 7.25, 7.20, 7.19, 6.77, 6.82]
BLAND_PACO2 = [3.97, 4.12, 4.09, 3.97, 5.27, 5.37, 5.41, 5.44, 5.67, 3.64, 4.32, 4.73, 4.96, 5.04, 5.22, 4.82, 5.07,
               5.67, 5.10, 5.53, 4.75, 5.51, 4.28, 4.44, 4.32, 3.23, 4.46, 4.72, 4.75, 4.99, 4.78, 4.73, 5.12, 4.93,
               5.03, 4.93, 6.85, 6.44, 6.52, 5.28, 4.56, 4.34, 4.32, 4.41, 3.69, 6.09, 5.58]
VISITS = ["D0", "W4", "W12"]


def _bland():
    return pd.DataFrame({"Subject": BLAND_SUBJECT, "pH": BLAND_PH, "PaCO2": BLAND_PACO2})


def test_rmcorr_reproduces_the_r_package_on_bland1995():
    # rmcorr(Subject, PaCO2, pH, bland1995): r = -0.507, df = 38, p = 0.000847, 95% CI lower -0.711
    result = rmcorr(_bland(), "Subject", "PaCO2", "pH")
    assert len(_bland()) == 47 and result["n_patients"] == 8
    assert result["rm_r"] == pytest.approx(-0.5067697, abs=1e-6)
    assert result["df"] == 38
    assert result["p_value"] == pytest.approx(0.0008471081, rel=1e-5)
    assert result["ci_low"] == pytest.approx(-0.7112297, abs=1e-6)
    assert result["ci_high"] == pytest.approx(-0.223255, abs=1e-5)


def test_rmcorr_equals_the_published_formula_from_an_ancova():
    data = _bland()
    fit = smf.ols("pH ~ C(Subject) + PaCO2", data).fit()
    anova = sm.stats.anova_lm(fit, typ=2)
    ss_effect, ss_error = anova.loc["PaCO2", "sum_sq"], anova.loc["Residual", "sum_sq"]
    expected = np.sign(fit.params["PaCO2"]) * np.sqrt(ss_effect / (ss_effect + ss_error))
    result = rmcorr(data, "Subject", "PaCO2", "pH")
    assert result["rm_r"] == pytest.approx(expected)
    assert result["df"] == len(data) - 8 - 1 == fit.df_resid
    assert result["slope"] == pytest.approx(fit.params["PaCO2"])


def test_rmcorr_hand_worked():
    # subject A: x 1,2,3 / y 1,3,2; subject B: x 1,2,3 / y 5,6,7. Centred within subject:
    # Sxy = 1 + 2 = 3, Sxx = 4, Syy = 4 -> r = 3/4, slope 3/4, SS_x = 9/4, SS_error = 7/4, df = 6 - 2 - 1 = 3
    data = pd.DataFrame({"s": list("AAABBB"), "x": [1, 2, 3, 1, 2, 3], "y": [1, 3, 2, 5, 6, 7]})
    result = rmcorr(data, "s", "x", "y")
    assert result["rm_r"] == pytest.approx(0.75) and result["slope"] == pytest.approx(0.75) and result["df"] == 3
    assert result["p_value"] == pytest.approx(stats.f.sf((9 / 4) / ((7 / 4) / 3), 1, 3))
    assert np.isnan(result["ci_low"])  # df - 3 = 0: no Fisher-z interval


def _trial(n_patients=24, effect=0.6, seed=3, denominator=4000):
    """Population table: Treg (% of CD4) with a planted logit rise of ``effect`` at W4 in responders."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        responder = i % 2 == 0
        patient = rng.normal(0, 0.3)
        for visit, day in zip(VISITS, [-1, 28, 84], strict=True):
            logit = -3.2 + patient + (effect if responder and visit == "W4" else 0) + rng.normal(0, 0.1)
            n = int(rng.integers(denominator // 2, denominator))
            count = int(rng.binomial(n, 1 / (1 + np.exp(-logit))))
            rows.append({"patient_id": f"P{i:02d}", "visit": visit, "study_day": day, "population": "Treg",
                         "denominator": "CD4", "count": count, "denominator_count": n, "percent_of": 100 * count / n,
                         "response_group": "responder" if responder else "non-responder", "status": "ok"})
    return pd.DataFrame(rows)


def test_mixed_model_recovers_a_planted_interaction_without_printing_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape: warnings go to fit_warnings
        table = mixed_model_table(_trial(), VISITS, "D0", contrast_visits=["W4", "W12"])
    assert list(table.columns) == MODEL_COLUMNS
    terms = table.set_index("term")
    assert list(terms.index) == ["Intercept", "visit[W4]", "visit[W12]", "responder", "visit[W4]:responder",
                                 "visit[W12]:responder", "visit x responder (joint F)",
                                 "visit[mean W4+W12]:responder"]
    planted = terms.loc["visit[W4]:responder"]
    assert planted["ci_low"] < 0.6 < planted["ci_high"] and planted["p_value"] < 1e-6
    # a within-patient contrast of a balanced design: t on (24 - 2) x (3 - 1) = 44 df (split-plot ANOVA)
    assert planted["df"] == pytest.approx(44, rel=1e-3)
    assert planted["p_value"] == pytest.approx(2 * stats.t.sf(abs(planted["statistic"]), planted["df"]))
    assert planted["effect_measure"] == "odds ratio" and planted["effect"] == pytest.approx(np.exp(planted["estimate"]))
    assert planted["effect_ci_low"] == pytest.approx(np.exp(planted["ci_low"]))
    assert terms.loc["Intercept", "effect_measure"] == "odds"
    joint = terms.loc["visit x responder (joint F)"]
    assert joint["df_numerator"] == 2 and joint["df"] == pytest.approx(44, rel=1e-3) and joint["p_value"] < 1e-6
    assert table["value"].eq("percent_of").all() and table["model"].iloc[0].startswith("LMM: logit(percent_of)")
    null = terms.loc["visit[W12]:responder"]
    assert null["ci_low"] < 0 < null["ci_high"]
    assert terms["converged"].all() and terms["n_patients"].iloc[0] == 24 and terms["n_obs"].iloc[0] == 72
    # the between-patient responder term is not a z test: Satterthwaite df between 22 and 66
    assert 22 < terms.loc["responder", "df"] < 66
    assert terms.loc["Intercept", "estimate"] == pytest.approx(-3.2, abs=0.2)


def test_continuity_correction_keeps_0_and_100_percent_finite():
    data = _trial(n_patients=8).assign(responder=lambda d: (d["response_group"] == "responder").astype(int))
    data.loc[0, ["count", "percent_of"]] = [0, 0.0]
    data.loc[1, ["count", "percent_of"]] = [data.loc[1, "denominator_count"], 100.0]
    _, _, fitted = fit_mixed_model(data, VISITS, "D0")
    n0, n1 = data.loc[0, "denominator_count"], data.loc[1, "denominator_count"]
    assert fitted.loc[0, "outcome"] == pytest.approx(np.log(0.5 / (n0 + 0.5)))  # (0 + .5) / (n + 1)
    assert fitted.loc[1, "outcome"] == pytest.approx(np.log((n1 + 0.5) / 0.5))
    _, _, clipped = fit_mixed_model(data.drop(columns=["count"]), VISITS, "D0", clip=1e-4)
    assert clipped.loc[0, "outcome"] == pytest.approx(np.log(1e-4 / (1 - 1e-4)))


def test_absolute_counts_and_ratios_are_modelled_on_the_log_scale():
    counts = pd.DataFrame({"abs_count": [0.0, 2.0, 8.0]})
    np.testing.assert_allclose(model_outcome(counts, "abs_count"), np.log([1.0, 2.0, 8.0]))  # 0 -> half of 2
    ratios = pd.DataFrame({"ratio": [2.0, 0.0], "count": [200, 0], "denominator_count": [100, 50]})
    np.testing.assert_allclose(model_outcome(ratios, "ratio"), np.log([200.5 / 100.5, 0.5 / 50.5]))
    with pytest.raises(ValueError, match="no model scale"):
        model_outcome(counts, "count")
    data = _trial().assign(abs_count=lambda d: d["percent_of"] * 10)
    table = mixed_model_table(data, VISITS, "D0", value="abs_count").set_index("term")
    assert table.loc["visit[W4]:responder", "effect_measure"] == "ratio of geometric means"
    assert table.loc["Intercept", "effect_measure"] == "geometric mean"
    assert table["model"].iloc[0].startswith("LMM: log(abs_count)")


def test_interaction_contrast_is_the_mean_of_the_interactions():
    data = _trial().assign(responder=lambda d: (d["response_group"] == "responder").astype(int))
    result, messages, _ = fit_mixed_model(data, VISITS, "D0")
    contrast = interaction_contrast(result, ["W4", "W12"])
    names = list(result.model.exog_names)
    i, j = names.index(next(n for n in names if "W4]:" in n)), names.index(next(n for n in names if "W12]:" in n))
    assert contrast["estimate"] == pytest.approx((result.fe_params.iloc[i] + result.fe_params.iloc[j]) / 2)
    cov = result.cov_params().to_numpy()
    assert contrast["std_error"] == pytest.approx(np.sqrt(cov[i, i] + cov[j, j] + 2 * cov[i, j]) / 2)
    assert contrast["df"] == pytest.approx(44, rel=1e-3)  # within patients: (24 - 2) x (3 - 1)
    assert contrast["p_value"] == pytest.approx(2 * stats.t.sf(abs(contrast["statistic"]), contrast["df"]))
    with pytest.raises(ValueError, match="no interaction term"):
        interaction_contrast(result, ["W99"])


def test_count_model_recovers_the_planted_effect():
    data = _trial()
    table = count_model_table(data, VISITS, "D0", contrast_visits=["W4", "W12"]).set_index("term")
    planted = table.loc["visit[W4]:responder"]
    assert planted["ci_low"] < 0.6 < planted["ci_high"] and planted["p_value"] < 1e-4
    assert table.loc["visit[W12]:responder", "p_value"] > 0.01
    assert table["model"].iloc[0].startswith("GEE binomial")
    # t on G - 1 = 23 df with the Mancl-DeRouen SE, larger than statsmodels' robust SE
    assert planted["df"] == 23
    assert planted["p_value"] == pytest.approx(2 * stats.t.sf(abs(planted["estimate"] / planted["std_error"]), 23))
    data = data.assign(responder=(data["response_group"] == "responder").astype(int),
                       proportion=data["count"] / data["denominator_count"])
    fit = smf.gee("proportion ~ C(visit, Treatment(reference='D0')) * responder", "patient_id", data,
                  family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable(),
                  weights=data["denominator_count"].to_numpy(float)).fit()
    robust = dict(zip([n.replace("C(visit, Treatment(reference='D0'))[T.W4]", "visit[W4]") for n in fit.params.index],
                      fit.bse))
    assert planted["std_error"] > robust["visit[W4]:responder"]
    # joint test: Wald W of the 2 interaction terms, F = W (G - q) / (q G) on (2, 22) df
    names = list(fit.params.index)
    rows = np.array([[1.0 if n.endswith(f"[T.{v}]:responder") else 0.0 for n in names] for v in ("W4", "W12")])
    estimate = rows @ fit.params.to_numpy()
    covariance = mancl_derouen_covariance(fit)
    wald = estimate @ np.linalg.solve(rows @ covariance @ rows.T, estimate)
    joint = table.loc["visit x responder (joint F)"]
    assert joint["statistic"] == pytest.approx(wald * 22 / (2 * 24)) and joint["df"] == 22
    assert joint["p_value"] == pytest.approx(stats.f.sf(wald * 22 / 48, 2, 22))
    with pytest.raises(ValueError, match="no count column"):
        count_model_table(_trial(), VISITS, "D0", value="count")


def test_match_platelets_nearest_within_three_days():
    samples = pd.DataFrame({"patient_id": ["P1", "P1", "P1", "P2"], "study_day": [-1, 28, 84, 28]})
    platelets = pd.DataFrame({"patient_id": ["P1", "P1", "P1", "P1", "P2"], "study_day": [0, 26, 30, 90, 35],
                              "platelets_1e9_per_L": [10.0, 20.0, 40.0, 80.0, 50.0]})
    matched = match_platelets(samples, platelets)
    assert list(matched["platelet_day"].fillna(-99)) == [0, 26, -99, -99]  # 26 and 30 tie: the earlier; 84/90: none
    assert matched["log_platelets"].iloc[0] == pytest.approx(np.log(10))
    assert list(matched.index) == list(samples.index)


def test_platelet_correlations_on_a_planted_relation():
    # value at visit k of patient i: k (1 + i/10) + offset_i; log platelets: log 10 + the same rise
    data = _trial(n_patients=10, effect=0.0)
    k = data["visit"].map({v: j for j, v in enumerate(VISITS)})
    rise = k * (1 + data["patient_id"].str[1:].astype(int) / 10)
    data = data.assign(percent_of=rise + data["patient_id"].str[1:].astype(int))
    platelets = data[["patient_id", "study_day"]].assign(study_day=data["study_day"].clip(lower=0),
                                                         platelets_1e9_per_L=10 * np.exp(rise))
    table = rmcorr_table(data, platelets)
    assert list(table.columns) == RMCORR_COLUMNS
    assert table["rm_r"].iloc[0] > 0.9 and table["df"].iloc[0] == 30 - 10 - 1
    association = change_association_table(data, platelets, VISITS, "D0")
    assert list(association["visit"]) == ["W4", "W12"] and (association["n"] == 10).all()
    assert association["spearman_rho"].to_numpy() == pytest.approx([1.0, 1.0])
    flat = change_association_table(data.assign(percent_of=1.0), platelets, VISITS, "D0")
    assert flat["spearman_rho"].isna().all()


def test_population_without_baseline_gives_a_failed_row():
    data = _trial(n_patients=6)
    data = pd.concat([data, data.assign(population="Breg")[lambda d: d["visit"] != "D0"]], ignore_index=True)
    table = mixed_model_table(data, VISITS, "D0")
    breg = table[table["population"] == "Breg"]
    assert len(breg) == 1 and not breg["converged"].iloc[0] and "baseline" in breg["fit_warnings"].iloc[0]
    counts = count_model_table(data, VISITS, "D0")
    assert counts[counts["population"] == "Breg"]["estimate"].isna().all()
