"""Satterthwaite df of the mixed model against the classical split-plot ANOVA; the Mancl-DeRouen GEE sandwich against
statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from cytotrial.stats.small_sample import (mancl_derouen_covariance, satterthwaite_f, satterthwaite_t,
                                          variance_derivatives)

N_SUBJECTS, N_VISITS = 10, 4


def _split_plot(seed=4):
    """Balanced, complete: 10 subjects (5 per group) x 4 visits, random intercept SD 1, residual SD 0.5."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(N_SUBJECTS):
        intercept = rng.normal(0, 1)
        for v in range(N_VISITS):
            rows.append({"s": f"S{s}", "g": s % 2, "v": v, "y": intercept + 0.2 * v * (s % 2) + rng.normal(0, 0.5)})
    return pd.DataFrame(rows)


def _within_stratum(data):
    """OLS with subject fixed effects and explicit visit x group columns: the split-plot ANOVA's within stratum."""
    columns = {f"i{v}": ((data["v"] == v) & (data["g"] == 1)).astype(float) for v in range(1, N_VISITS)}
    return smf.ols("y ~ C(s) + C(v) + " + " + ".join(columns), data.assign(**columns)).fit()


def _lmm(data):
    return smf.mixedlm("y ~ C(v) * g", data, groups=data["s"]).fit(reml=True)


def _contrast(result, term):
    return np.array([1.0 if name == term else 0.0 for name in result.model.exog_names])


def test_within_subject_tests_equal_the_split_plot_anova():
    data = _split_plot()
    result = _lmm(data)
    assert result.cov_re.iloc[0, 0] > 0  # REML equals ANOVA only inside the parameter space
    within = _within_stratum(data)
    df_within = (N_SUBJECTS - 2) * (N_VISITS - 1)
    assert within.df_resid == df_within
    for v in (1, 2, 3):
        mixed = satterthwaite_t(result, _contrast(result, f"C(v)[T.{v}]:g"))
        ols = within.t_test(f"i{v} = 0")
        assert mixed["df"] == pytest.approx(df_within, rel=1e-4)
        assert mixed["statistic"] == pytest.approx(float(np.squeeze(ols.tvalue)), rel=1e-4)
        assert mixed["p_value"] == pytest.approx(float(np.squeeze(ols.pvalue)), rel=1e-3)
    rows = np.array([_contrast(result, f"C(v)[T.{v}]:g") for v in (1, 2, 3)])
    mixed_f = satterthwaite_f(result, rows)
    ols_f = within.f_test(", ".join(f"i{v} = 0" for v in (1, 2, 3)))
    assert mixed_f["df_numerator"] == 3 and mixed_f["df_denominator"] == pytest.approx(df_within, rel=1e-4)
    assert mixed_f["statistic"] == pytest.approx(float(np.squeeze(ols_f.fvalue)), rel=1e-4)


def test_between_subject_test_has_the_welch_satterthwaite_df():
    data = _split_plot()
    result = _lmm(data)
    within = _within_stratum(data)
    ms_within, df_within = within.mse_resid, within.df_resid
    means = data.groupby("s").agg(y=("y", "mean"), g=("g", "first"))
    between = smf.ols("y ~ g", means).fit()
    ms_between, df_between = N_VISITS * between.mse_resid, between.df_resid
    # the group difference at the first visit: Var = (s2_b + s2_e)(1/5 + 1/5), s2_b + s2_e = (MS_B + 3 MS_W) / 4
    combined = (ms_between + (N_VISITS - 1) * ms_within) / N_VISITS
    df = (ms_between + (N_VISITS - 1) * ms_within) ** 2 / (
        ms_between ** 2 / df_between + ((N_VISITS - 1) * ms_within) ** 2 / df_within)
    mixed = satterthwaite_t(result, _contrast(result, "g"))
    assert mixed["std_error"] == pytest.approx(np.sqrt(combined * (1 / 5 + 1 / 5)), rel=1e-4)
    assert mixed["df"] == pytest.approx(df, rel=1e-3)
    assert 8 < mixed["df"] < 38  # between the between- and within-stratum df: not a z test
    first = data[data["v"] == 0]
    assert mixed["estimate"] == pytest.approx(first[first.g == 1].y.mean() - first[first.g == 0].y.mean())


def test_satterthwaite_refuses_other_models():
    data = _split_plot()
    with pytest.raises(ValueError, match="REML"):
        variance_derivatives(smf.mixedlm("y ~ C(v) * g", data, groups=data["s"]).fit(reml=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a boundary fit: only its structure matters here
        slopes = smf.mixedlm("y ~ v", data, groups=data["s"], re_formula="~v").fit()
    with pytest.raises(ValueError, match="random intercept only"):
        variance_derivatives(slopes)


def _binomial_clusters(seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(12):
        shift = rng.normal(0, 0.5)
        for v in range(4):
            n = int(rng.integers(50, 200))
            rows.append({"s": s, "v": v, "g": s % 2, "n": n,
                         "y": rng.binomial(n, 1 / (1 + np.exp(-(-1 + shift + 0.2 * v)))) / n})
    return pd.DataFrame(rows)


def _gee(data, weights=None):
    return smf.gee("y ~ v * g", "s", data, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable(),
                   weights=weights)


def test_mancl_derouen_equals_statsmodels_bias_reduced_without_weights():
    data = _binomial_clusters()
    reference = _gee(data).fit(cov_type="bias_reduced")
    np.testing.assert_allclose(mancl_derouen_covariance(reference), reference.cov_params(), rtol=1e-8)


def test_weighted_sandwich_equals_statsmodels_robust_and_bias_reduction_inflates_it():
    data = _binomial_clusters()
    fitted = _gee(data, data["n"].to_numpy(float)).fit(cov_type="robust")
    robust = mancl_derouen_covariance(fitted, bias_reduced=False)
    np.testing.assert_allclose(robust, fitted.cov_params(), rtol=1e-8)
    reduced = mancl_derouen_covariance(fitted)
    assert (np.diag(reduced) > np.diag(robust)).all()
