"""Small-sample inference: Satterthwaite df for the mixed model, a bias-reduced sandwich for the GEE.

statsmodels' MixedLM gives Wald z tests, anti-conservative with 18 patients, and has no Satterthwaite or
Kenward-Roger option: :func:`variance_derivatives`, :func:`satterthwaite_t` and :func:`satterthwaite_f` add
Satterthwaite's approximation as lmerTest computes it (Kuznetsova et al., J Stat Softw 2017;82(13)), written here
because no Python library has it. :func:`mancl_derouen_covariance` is the bias-reduced sandwich of Mancl &
DeRouen (Biometrics 2001;57:126), written here because statsmodels' (``cov_type="bias_reduced"``) fails when
observations are weighted (statsmodels 0.15.0: a broadcast error in ``GEE._bc_covmat``), as the count model's
are; without weights it equals statsmodels' (checked in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class VarianceDerivatives:
    """C(theta-hat), its derivatives by (sigma2_b, sigma2_e) and the covariance of (sigma2_b-hat, sigma2_e-hat)."""

    cov_beta: np.ndarray  # (p, p)
    d_cov_beta: np.ndarray  # (2, p, p)
    cov_theta: np.ndarray  # (2, 2)


def variance_derivatives(result) -> VarianceDerivatives:
    """Satterthwaite ingredients of a statsmodels MixedLM REML fit with one random intercept per group.

    Raises
    ------
    ValueError
        For a model with random slopes or variance components, or one fitted by ML.

    Satterthwaite's approximation, as lmerTest computes it for a random-intercept model fitted by REML:

    * the fixed-effect covariance C(theta) = (sum_i X_i' V_i^-1 X_i)^-1 with V_i = sigma2_e I + sigma2_b J is a
      function of the variance parameters theta = (sigma2_b, sigma2_e); its derivatives are
      dC/dtheta_k = C (sum_i X_i' V_i^-1 dV_i/dtheta_k V_i^-1 X_i) C;
    * the covariance A of theta-hat is the inverse of the REML expected information, 1/2 tr(P dV_k P dV_l) with
      P = V^-1 - V^-1 X C X' V^-1;
    * a contrast l'beta has df = 2 (l'Cl)^2 / (g' A g), g_k = l' dC/dtheta_k l; a q-row contrast matrix L is tested
      with F = (L beta)'(L C L')^-1 (L beta) / q on q and 2E/(E - q) df, E = sum_m nu_m / (nu_m - 2) over the
      eigen-directions m of L C L' (lmerTest's contestMD).

    In a balanced design these are the classical split-plot ANOVA tests (tests/test_stats_small_sample.py checks
    that against statsmodels OLS and the Welch-Satterthwaite formula).
    """
    model = result.model
    if model.k_re != 1 or model.k_vc != 0:
        raise ValueError("Satterthwaite df are implemented for a random intercept only (one random effect, no "
                         "variance components)")
    if not model.reml:
        raise ValueError("Satterthwaite df need a REML fit (fit(reml=True))")
    sigma2_b, sigma2_e = float(np.asarray(result.cov_re)[0, 0]), float(result.scale)
    x = np.asarray(model.exog, float)
    n_obs = x.shape[0]
    v_inverse = np.zeros((n_obs, n_obs))
    for rows in model.row_indices.values():
        rows = np.asarray(rows)
        block = sigma2_e * np.eye(rows.size) + sigma2_b * np.ones((rows.size, rows.size))
        v_inverse[np.ix_(rows, rows)] = np.linalg.inv(block)
    information = x.T @ v_inverse @ x
    cov_beta = np.linalg.inv(information)
    same_group = np.zeros((n_obs, n_obs))
    for rows in model.row_indices.values():
        same_group[np.ix_(rows, rows)] = 1.0
    d_v = [same_group, np.eye(n_obs)]  # dV / d sigma2_b, dV / d sigma2_e
    weighted_x = v_inverse @ x
    d_cov_beta = np.stack([cov_beta @ (weighted_x.T @ d @ weighted_x) @ cov_beta for d in d_v])
    projection = v_inverse - weighted_x @ cov_beta @ weighted_x.T
    products = [projection @ d for d in d_v]
    fisher = np.array([[0.5 * np.sum(a * b.T) for b in products] for a in products])  # 1/2 tr(P dV_k P dV_l)
    return VarianceDerivatives(cov_beta, d_cov_beta, np.linalg.pinv(fisher))


def _contrast_df(contrast: np.ndarray, d: VarianceDerivatives) -> float:
    variance = float(contrast @ d.cov_beta @ contrast)
    gradient = np.array([contrast @ dk @ contrast for dk in d.d_cov_beta])
    denominator = float(gradient @ d.cov_theta @ gradient)
    return 2 * variance ** 2 / denominator if denominator > 0 else np.inf


def t_test(estimate: float, std_error: float, df: float, level: float = 0.95) -> dict:
    """Two-sided t test and CI of one estimate: estimate, std_error, df, statistic, p_value, ci_low, ci_high."""
    statistic = estimate / std_error if std_error > 0 else np.nan  # NaN standard error: NaN throughout
    quantile = stats.t.ppf(0.5 + level / 2, df) if np.isfinite(df) else stats.norm.ppf(0.5 + level / 2)
    p = 2 * (stats.t.sf(abs(statistic), df) if np.isfinite(df) else stats.norm.sf(abs(statistic)))
    return {"estimate": float(estimate), "std_error": float(std_error), "df": float(df),
            "statistic": float(statistic), "p_value": float(p), "ci_low": float(estimate - quantile * std_error),
            "ci_high": float(estimate + quantile * std_error)}


def satterthwaite_t(result, contrast: np.ndarray, level: float = 0.95,
                    derivatives: VarianceDerivatives | None = None) -> dict:
    """t test of l'beta for a MixedLM REML fit with Satterthwaite df (see the module docstring).

    Returns
    -------
    dict
        :func:`t_test`'s keys; the standard error is sqrt(l' C l) at the REML estimates.
    """
    d = derivatives or variance_derivatives(result)
    contrast = np.asarray(contrast, float)
    estimate = float(contrast @ np.asarray(result.fe_params, float))
    return t_test(estimate, float(np.sqrt(contrast @ d.cov_beta @ contrast)), _contrast_df(contrast, d), level)


def satterthwaite_f(result, contrasts: np.ndarray, derivatives: VarianceDerivatives | None = None) -> dict:
    """F test of L beta = 0 (q rows) for a MixedLM REML fit with Satterthwaite denominator df.

    Returns
    -------
    dict
        statistic (F), df_numerator (q), df_denominator, p_value; NaN p when the df cannot be formed (E <= q).
    """
    d = derivatives or variance_derivatives(result)
    contrasts = np.atleast_2d(np.asarray(contrasts, float))
    q = contrasts.shape[0]
    estimate = contrasts @ np.asarray(result.fe_params, float)
    eigenvalues, eigenvectors = np.linalg.eigh(contrasts @ d.cov_beta @ contrasts.T)
    rotated = eigenvectors.T @ contrasts
    f = float(np.sum((eigenvectors.T @ estimate) ** 2 / eigenvalues) / q)
    nu = np.array([_contrast_df(row, d) for row in rotated])
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(np.isinf(nu), 1.0, np.where(nu > 2, nu / (nu - 2), 0.0))
    expectation = float(np.sum(terms))
    df_denominator = 2 * expectation / (expectation - q) if expectation > q else np.nan
    p = float(stats.f.sf(f, q, df_denominator)) if np.isfinite(df_denominator) else np.nan
    return {"statistic": f, "df_numerator": q, "df_denominator": float(df_denominator), "p_value": p}


def mancl_derouen_covariance(result, *, bias_reduced: bool = True) -> np.ndarray:
    """Bias-reduced (Mancl-DeRouen) sandwich covariance of a fitted statsmodels GEE (see the module docstring).

    Uses the fit's parameters, family, working correlation (``cov_struct.covariance_matrix``) and weights;
    ``bias_reduced=False`` gives the ordinary (Liang-Zeger) sandwich.

    Bias reduction (Mancl & DeRouen): each cluster's residuals are inflated by (I - H_ii)^-1,
    H_ii = D_i B^-1 D_i' V_i^-1 W_i, before the meat of the sandwich is formed.
    """
    model = result.model
    x = np.asarray(model.exog, float)
    y = np.asarray(model.endog, float)
    weights = np.ones(len(y)) if model.weights is None else np.asarray(model.weights, float)
    linear = x @ np.asarray(result.params, float)
    if getattr(model, "offset", None) is not None:
        linear = linear + np.asarray(model.offset, float)
    mean = model.family.link.inverse(linear)
    d_all = x * model.family.link.inverse_deriv(linear)[:, None]
    sd_all = np.sqrt(model.family.variance(mean))
    blocks = []
    for i, label in enumerate(model.group_labels):
        rows = np.asarray(model.group_indices[label])
        correlation, is_correlation = model.cov_struct.covariance_matrix(mean[rows], i)
        sd = sd_all[rows]
        covariance = np.outer(sd, sd) * correlation if is_correlation else correlation
        blocks.append((d_all[rows], np.linalg.inv(covariance) * weights[rows][None, :], y[rows] - mean[rows]))
    bread = np.linalg.inv(sum(d.T @ vw @ d for d, vw, _ in blocks))  # V^-1 W = vw
    meat = 0
    for d, vw, residual in blocks:
        leverage = d @ bread @ d.T @ vw if bias_reduced else np.zeros((len(residual), len(residual)))
        score = d.T @ vw @ np.linalg.solve(np.eye(len(residual)) - leverage, residual)
        meat = meat + np.outer(score, score)
    return bread @ meat @ bread
