"""Models of immune changes: a mixed model, a count model, and correlations with platelet counts.

:func:`mixed_model_table` (a linear mixed model per population with Satterthwaite tests),
:func:`interaction_contrast` (its mean visit x responder interaction over chosen visits), :func:`count_model_table`
(a binomial GEE of counts with a bias-reduced sandwich), :func:`rmcorr` / :func:`rmcorr_table` (repeated-measures
correlation with log platelets at the same visit, Bakdash & Marusich 2017) and :func:`change_association_table`
(Spearman correlation of the change in a population with the change in log platelets). Each function's docstring
gives its model, scale and tests. Log platelets are natural logs of x10^9/L, with counts below 1 set to 1.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from .changes import GROUP_COLUMN, RESPONDER, add_response_groups, bh_qvalues, require_columns, usable_rows
from .small_sample import (mancl_derouen_covariance, satterthwaite_f, satterthwaite_t, t_test,
                           variance_derivatives)

MODEL_COLUMNS = ["model", "population", "value", "term", "estimate", "std_error", "df", "df_numerator", "ci_low",
                 "ci_high", "statistic", "p_value", "effect_measure", "effect", "effect_ci_low", "effect_ci_high",
                 "n_obs", "n_patients", "converged", "fit_warnings"]
RMCORR_COLUMNS = ["population", "denominator", "value", "n_obs", "n_patients", "rm_r", "ci_low", "ci_high",
                  "p_value", "df", "slope", "q_value"]
ASSOCIATION_COLUMNS = ["population", "denominator", "value", "visit", "n", "spearman_rho", "p_value", "q_value"]
COUNT_COLUMNS = {"percent_of": "denominator_count", "percent_of_parent": "parent_count"}
"""Which count column is the denominator of each percentage column."""
MODEL_SCALES = {"percent_of": "logit", "percent_of_parent": "logit", "abs_count": "log", "ratio": "log"}
"""The scale each value is modelled on."""
EFFECTS = {"logit": ("odds", "odds ratio"), "log": ("geometric mean", "ratio of geometric means")}
"""What exp(estimate) is, for the intercept and for the other terms, on each scale."""
JOINT_TERM = "visit x responder (joint F)"

LMM_NAME = "LMM: {scale}({value}) ~ visit * responder + (1 | patient), REML; t and F on Satterthwaite df"
GEE_NAME = ("GEE binomial: count/denominator ~ visit * responder, exchangeable by patient; Mancl-DeRouen SE, "
            "t(G-1); joint F(q, G-q)")


def _proportions(data: pd.DataFrame, value: str, clip: float) -> np.ndarray:
    counts = COUNT_COLUMNS.get(value)
    if counts in data.columns and "count" in data.columns and data[["count", counts]].notna().all().all():
        return (data["count"].to_numpy(float) + 0.5) / (data[counts].to_numpy(float) + 1.0)
    return np.clip(data[value].to_numpy(float) / 100.0, clip, 1 - clip)


def model_outcome(data: pd.DataFrame, value: str, clip: float = 1e-4) -> np.ndarray:
    """The value of every row on its model scale (:data:`MODEL_SCALES`; see the module docstring for zeros)."""
    scale = MODEL_SCALES.get(value)
    if scale is None:
        raise ValueError(f"no model scale is known for {value!r}; use one of {list(MODEL_SCALES)}")
    if scale == "logit":
        p = _proportions(data, value, clip)
        return np.log(p / (1 - p))
    if value == "ratio" and {"count", "denominator_count"} <= set(data.columns) \
            and data[["count", "denominator_count"]].notna().all().all():
        return np.log((data["count"].to_numpy(float) + 0.5) / (data["denominator_count"].to_numpy(float) + 0.5))
    x = data[value].to_numpy(float)
    if (x < 0).any():
        raise ValueError(f"{value} has negative values; a log-scale model needs values >= 0")
    positive = x[x > 0]
    floor = positive.min() / 2 if positive.size else 1.0
    return np.log(np.where(x > 0, x, floor))


def _model_data(populations: pd.DataFrame, value: str, group_column: str) -> pd.DataFrame:
    data = usable_rows(populations, value, [group_column]).dropna(subset=[group_column])
    return data.assign(responder=(data[group_column] == RESPONDER).astype(int))


def _formula(outcome: str, visits: list[str], baseline: str) -> str:
    return f"{outcome} ~ C(visit, Treatment(reference={baseline!r})) * responder"


def _term(name: str) -> str:
    return re.sub(r"C\(visit, Treatment\(reference=.*?\)\)\[T\.(.+?)\]", r"visit[\1]", name)


def _ordered_visits(data: pd.DataFrame, visits: list[str], baseline: str) -> pd.DataFrame:
    present = [v for v in visits if (data["visit"] == v).any()]
    if baseline not in present:
        raise ValueError(f"baseline visit {baseline!r} has no data")
    return data[data["visit"].isin(present)].assign(visit=lambda d: pd.Categorical(d["visit"], present))


def _fit_quietly(fit) -> tuple[object | None, str]:
    """Run ``fit()``; return (result or None, '; '-joined warning and error messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = fit(), ""
        except (np.linalg.LinAlgError, ValueError) as exc:
            result, error = None, f"fit failed: {exc}"
    messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return result, "; ".join([*messages, error] if error else messages)


def fit_mixed_model(data: pd.DataFrame, visits: list[str], baseline: str, value: str = "percent_of",
                    *, clip: float = 1e-4) -> tuple[object | None, str, pd.DataFrame]:
    """Fit the mixed model of one population (rows of the population table with a ``responder`` 0/1 column).

    Returns
    -------
    (result, warnings, data)
        statsmodels MixedLMResults (None when the fit failed), captured messages, and the rows fitted with
        their ``outcome`` (the value on its model scale).
    """
    data = _ordered_visits(data, visits, baseline)
    data = data.assign(outcome=model_outcome(data, value, clip))
    model = smf.mixedlm(_formula("outcome", visits, baseline), data, groups=data["patient_id"])
    result, messages = _fit_quietly(lambda: model.fit(reml=True))
    return result, messages, data


def _effect(row: dict, scale: str) -> dict:
    intercept, other = EFFECTS[scale]
    finite = np.isfinite(row["estimate"])
    return {"effect_measure": (intercept if row["term"] == "Intercept" else other) if finite else "",
            "effect": np.exp(row["estimate"]), "effect_ci_low": np.exp(row["ci_low"]),
            "effect_ci_high": np.exp(row["ci_high"])}


def _row(model: str, population: str, value: str, term: str, *, test: dict, n_obs: int, n_patients: int,
         converged: bool, messages: str) -> dict:
    row = {"model": model, "population": population, "value": value, "term": term, "estimate": np.nan,
           "std_error": np.nan, "df": np.nan, "df_numerator": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "statistic": np.nan, "p_value": np.nan, "n_obs": n_obs, "n_patients": n_patients,
           "converged": converged, "fit_warnings": messages}
    row.update({k: v for k, v in test.items() if k in row})
    if "df_denominator" in test:
        row["df"] = test["df_denominator"]
    return {**row, **_effect(row, MODEL_SCALES[value])}


def _failed_row(model: str, population: str, value: str, n_obs: int, *, n_patients: int, messages: str) -> dict:
    return _row(model, population, value, "", test={}, n_obs=n_obs, n_patients=n_patients, converged=False,
                messages=messages)


def _unit(names: Sequence[str], term: str) -> np.ndarray:
    return np.array([1.0 if _term(n) == term else 0.0 for n in names])


def interaction_rows(names: Sequence[str], visits: Sequence[str]) -> np.ndarray:
    """Contrast rows selecting each visit x responder term of a model's parameters (``names``), in visit order."""
    return np.array([_unit(names, f"visit[{v}]:responder") for v in visits
                     if f"visit[{v}]:responder" in [_term(n) for n in names]])


def mean_contrast(names: Sequence[str], contrast_visits: Sequence[str]) -> np.ndarray:
    """Contrast averaging the visit x responder terms at ``contrast_visits``; an error when one is missing."""
    terms = [_term(n) for n in names]
    missing = [v for v in contrast_visits if f"visit[{v}]:responder" not in terms]
    if missing:
        raise ValueError(f"no interaction term for visit(s) {missing} in {terms}")
    return sum(_unit(names, f"visit[{v}]:responder") for v in contrast_visits) / len(contrast_visits)


def _mean_term(contrast_visits: Sequence[str]) -> str:
    return f"visit[mean {'+'.join(contrast_visits)}]:responder"


def _mixed_rows(result, population: str, value: str, visits: list[str], *, contrast_visits: Sequence[str],
                n_obs: int, n_patients: int, messages: str) -> list[dict]:
    name = LMM_NAME.format(scale=MODEL_SCALES[value], value=value)
    names = list(result.model.exog_names)
    derivatives = variance_derivatives(result)
    converged = bool(result.converged)
    rows = [_row(name, population, value, _term(n), test=satterthwaite_t(result, _unit(names, _term(n)),
                                                                     derivatives=derivatives),
                 n_obs=n_obs, n_patients=n_patients, converged=converged, messages=messages) for n in names]
    interactions = interaction_rows(names, visits)
    if len(interactions):
        joint = satterthwaite_f(result, interactions, derivatives=derivatives)
        rows.append(_row(name, population, value, JOINT_TERM, test={**joint, "df_numerator": joint["df_numerator"]},
                         n_obs=n_obs, n_patients=n_patients, converged=converged, messages=messages))
    if contrast_visits and all(f"visit[{v}]:responder" in [_term(n) for n in names] for v in contrast_visits):
        rows.append(_row(name, population, value, _mean_term(contrast_visits),
                         test=satterthwaite_t(result, mean_contrast(names, contrast_visits), derivatives=derivatives),
                         n_obs=n_obs, n_patients=n_patients, converged=converged, messages=messages))
    return rows


def mixed_model_table(populations: pd.DataFrame, visits: list[str], baseline: str, value: str = "percent_of",
                      *, responses: pd.DataFrame | None = None, group_column: str = GROUP_COLUMN,
                      clip: float = 1e-4, contrast_visits: Sequence[str] = ()) -> pd.DataFrame:
    """Linear mixed model per population (see the module docstring); tidy fixed-effect tests.

    Parameters
    ----------
    populations
        Population table with ``group_column`` (or pass ``responses`` to add it), patient_id, visit, population,
        ``value`` and, for the continuity correction, count and the denominator count.
    visits, baseline
        Visits in study order; ``baseline`` is the reference level of visit.
    contrast_visits
        Visits whose visit x responder terms are averaged in one more row (the primary endpoint's visits).

    Returns
    -------
    DataFrame
        :data:`MODEL_COLUMNS`, one row per population x fixed term (Intercept, visit[V], responder,
        visit[V]:responder), then the joint visit x responder F test and the mean interaction over
        ``contrast_visits``; estimates on the model scale, statistic t (F for the joint row) with Satterthwaite
        df. A failed fit gives one row with NaN.

    per population, a linear mixed model (statsmodels MixedLM, REML) of the value on
      its model scale ~ C(visit) * responder with a random intercept per patient. Scales (:data:`MODEL_SCALES`):
      percentages as logit(proportion), absolute counts and ratios as log. Every fixed term with a t test and 95 % CI
      on Satterthwaite degrees of freedom (:mod:`cytotrial.stats.small_sample`), the joint F test of all visit x
      responder terms, and the mean visit x responder term over the primary endpoint's visits; estimates
      back-transformed by exp (odds ratios on the logit scale, ratios of geometric means on the log scale) with
      their CIs. Warnings raised while fitting (convergence, boundary) go to ``fit_warnings``.
      **0 % and 100 %**: with counts available the proportion is the empirical one, (count + 0.5) / (denominator
      count + 1) (Haldane-Anscombe correction, applied to every value so none is treated specially); without counts
      it is clipped to [``clip``, 1 - ``clip``]. A ratio of counts is (count + 0.5) / (denominator count + 0.5); an
      absolute count of 0 is set to half the population's smallest positive count.
    """
    data = _model_data(populations if responses is None else add_response_groups(populations, responses),
                       value, group_column)
    rows = []
    for population, frame in data.groupby("population", sort=False):
        n_obs, n_patients = len(frame), frame["patient_id"].nunique()
        try:
            result, messages, _ = fit_mixed_model(frame, visits, baseline, value, clip=clip)
        except ValueError as exc:  # e.g. no baseline value
            result, messages = None, f"not fitted: {exc}"
        if result is None:
            rows.append(_failed_row(LMM_NAME.format(scale=MODEL_SCALES[value], value=value), population, value,
                                    n_obs, n_patients=n_patients, messages=messages))
            continue
        try:
            rows += _mixed_rows(result, population, value, visits, contrast_visits=contrast_visits, n_obs=n_obs,
                                n_patients=n_patients, messages=messages)
        except (np.linalg.LinAlgError, ValueError) as exc:
            rows.append(_failed_row(LMM_NAME.format(scale=MODEL_SCALES[value], value=value), population, value, n_obs,
                                    n_patients=n_patients,
                                    messages=f"{messages}; Satterthwaite df failed: {exc}".lstrip("; ")))
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def interaction_contrast(result, contrast_visits: list[str], level: float = 0.95) -> dict:
    """Mean of the visit x responder interactions at ``contrast_visits`` of a fitted mixed model.

    Returns
    -------
    dict
        estimate, std_error, df (Satterthwaite), statistic (t), p_value, ci_low, ci_high, on the model scale.
    """
    return satterthwaite_t(result, mean_contrast(list(result.model.exog_names), contrast_visits), level)


def gee_tests(result, n_patients: int, contrasts: np.ndarray, level: float = 0.95) -> dict:
    """t test (one row of ``contrasts``) or Hotelling-type F test (several) of a GEE fit with the Mancl-DeRouen
    covariance (see the module docstring): the keys of :func:`small_sample.t_test`, or statistic, df_numerator,
    df_denominator, p_value."""
    covariance = mancl_derouen_covariance(result)
    beta = np.asarray(result.params, float)
    contrasts = np.atleast_2d(contrasts)
    if contrasts.shape[0] == 1:
        c = contrasts[0]
        variance = float(c @ covariance @ c)
        return t_test(float(c @ beta), np.sqrt(variance) if variance > 0 else np.nan, n_patients - 1, level)
    q = contrasts.shape[0]
    estimate = contrasts @ beta
    wald = float(estimate @ np.linalg.solve(contrasts @ covariance @ contrasts.T, estimate))
    f = wald * (n_patients - q) / (q * n_patients)
    p = float(stats.f.sf(f, q, n_patients - q)) if n_patients > q else np.nan
    return {"statistic": f, "df_numerator": q, "df_denominator": float(n_patients - q), "p_value": p}


def count_model_table(populations: pd.DataFrame, visits: list[str], baseline: str, value: str = "percent_of",
                      *, responses: pd.DataFrame | None = None, group_column: str = GROUP_COLUMN,
                      level: float = 0.95, contrast_visits: Sequence[str] = ()) -> pd.DataFrame:
    """Binomial GEE of counts in their denominator per population (see the module docstring).

    Returns
    -------
    DataFrame
        :data:`MODEL_COLUMNS`, estimates on the log-odds scale; statistic t with G - 1 df, F for the joint row;
        like :func:`mixed_model_table`, a joint row and a mean-interaction row over ``contrast_visits``.

    per population, a binomial GEE (diffcyt-like counts in their denominator,
      logit link) of count / denominator ~ C(visit) * responder, exchangeable working correlation within patients,
      observations weighted by the denominator count. Mancl-DeRouen bias-reduced sandwich covariance; single terms
      and contrasts tested with Student's t on G - 1 df (G patients), the joint visit x responder test with a
      Hotelling-type F = W (G - q) / (q G) on q and G - q df (W the Wald statistic of q terms). The sandwich absorbs
      the overdispersion of cytometry counts between samples; benchmarks/stats_validity.py measures the type I
      error of these tests at 18 patients (G - p df, 4 here, was far too conservative).
    """
    counts = COUNT_COLUMNS.get(value)
    if counts is None:
        raise ValueError(f"no count column is known for {value!r}; use one of {list(COUNT_COLUMNS)}")
    data = _model_data(populations if responses is None else add_response_groups(populations, responses),
                       value, group_column)
    require_columns(data, ["count", counts], "population table")
    data = data.dropna(subset=["count", counts])
    data = data[data[counts] > 0]
    rows = []
    for population, frame in data.groupby("population", sort=False):
        n_obs, g = len(frame), frame["patient_id"].nunique()
        try:
            frame = _ordered_visits(frame, visits, baseline)
        except ValueError as exc:
            rows.append(_failed_row(GEE_NAME, population, value, n_obs, n_patients=g, messages=f"not fitted: {exc}"))
            continue
        frame = frame.assign(proportion=frame["count"] / frame[counts])
        model = smf.gee(_formula("proportion", visits, baseline), "patient_id", frame,
                        family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable(),
                        weights=frame[counts].to_numpy(float))
        result, messages = _fit_quietly(lambda m=model: m.fit(cov_type="robust"))
        if result is None or g < 3:
            rows.append(_failed_row(GEE_NAME, population, value, n_obs, n_patients=g,
                                    messages=messages or "fewer than 3 patients"))
            continue
        converged = bool(getattr(result, "converged", True)) and "ConvergenceWarning" not in messages
        names = list(result.model.exog_names)
        tests = [(_term(n), _unit(names, _term(n))) for n in names]
        interactions = interaction_rows(names, visits)
        if len(interactions):
            tests.append((JOINT_TERM, interactions))
        if contrast_visits and all(f"visit[{v}]:responder" in [t for t, _ in tests] for v in contrast_visits):
            tests.append((_mean_term(contrast_visits), mean_contrast(names, contrast_visits)))
        try:
            rows += [_row(GEE_NAME, population, value, term, test=gee_tests(result, g, contrast, level), n_obs=n_obs,
                          n_patients=g, converged=converged, messages=messages) for term, contrast in tests]
        except np.linalg.LinAlgError as exc:
            rows.append(_failed_row(GEE_NAME, population, value, n_obs, n_patients=g,
                                    messages=f"{messages}; covariance: {exc}"))
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def rmcorr(data: pd.DataFrame, subject: str, x: str, y: str, *, level: float = 0.95) -> dict:
    """Repeated-measures correlation of ``x`` and ``y`` (Bakdash & Marusich 2017), from the ANCOVA y ~ subject + x.

    r_rm = sign(slope) sqrt(SS_x / (SS_x + SS_error)) with SS_x the sum of squares of x after subject and
    SS_error the residual sum of squares; df = N - k - 1 (N observations, k subjects); p from F(1, df); CI by
    Fisher's z with standard error 1 / sqrt(df - 3), as the R package (psych::r.con with n = df).

    Returns
    -------
    dict
        rm_r, ci_low, ci_high, p_value, df, slope (common within-subject slope of y on x), n_obs, n_patients.
    """
    require_columns(data, [subject, x, y], "rmcorr data")
    data = data[[subject, x, y]].dropna()
    codes, levels = pd.factorize(data[subject])
    n, k = len(data), len(levels)
    df = n - k - 1
    out = {"n_obs": n, "n_patients": k, "df": df, "rm_r": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "p_value": np.nan, "slope": np.nan}
    if df < 1:
        return out
    subjects = np.eye(k)[codes]
    xv, yv = data[x].to_numpy(float), data[y].to_numpy(float)
    rss_reduced = _rss(subjects, yv)
    full = np.column_stack([subjects, xv])
    coef, *_ = np.linalg.lstsq(full, yv, rcond=None)
    ss_error = _rss(full, yv)
    ss_x = max(rss_reduced - ss_error, 0.0)
    if ss_x + ss_error <= 0:
        return out
    r = float(np.sign(coef[-1]) * np.sqrt(ss_x / (ss_x + ss_error)))
    f = ss_x / (ss_error / df) if ss_error > 0 else np.inf
    out.update(rm_r=r, slope=float(coef[-1]), p_value=float(stats.f.sf(f, 1, df)))
    if df > 3 and abs(r) < 1:
        half = stats.norm.ppf(0.5 + level / 2) / np.sqrt(df - 3)
        out.update(ci_low=float(np.tanh(np.arctanh(r) - half)), ci_high=float(np.tanh(np.arctanh(r) + half)))
    return out


def _rss(design: np.ndarray, y: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.sum((y - design @ coef) ** 2))


def match_platelets(samples: pd.DataFrame, platelets: pd.DataFrame, tolerance_days: int = 3) -> pd.DataFrame:
    """Platelet count of each sample: the count nearest its study day within +-``tolerance_days`` (earlier on ties).

    Parameters
    ----------
    samples
        Rows with patient_id and study_day (e.g. the population table).
    platelets
        patient_id, study_day, platelets_1e9_per_L (x10^9/L); rows without a count are ignored.

    Returns
    -------
    DataFrame
        ``samples`` (same index) with platelets_1e9_per_L, platelet_day and log_platelets (NaN without a count).
    """
    require_columns(samples, ["patient_id", "study_day"], "sample table")
    require_columns(platelets, ["patient_id", "study_day", "platelets_1e9_per_L"], "platelet table")
    keys = samples[["patient_id", "study_day"]].drop_duplicates()
    counts = platelets.dropna(subset=["platelets_1e9_per_L"])[["patient_id", "study_day", "platelets_1e9_per_L"]]
    pairs = keys.merge(counts.rename(columns={"study_day": "platelet_day"}), on="patient_id")
    pairs = pairs.assign(distance=(pairs["platelet_day"] - pairs["study_day"]).abs())
    pairs = pairs[pairs["distance"] <= tolerance_days].sort_values(["distance", "platelet_day"], kind="stable")
    nearest = pairs.drop_duplicates(["patient_id", "study_day"]).drop(columns="distance")
    out = samples.drop(columns=["platelets_1e9_per_L", "platelet_day", "log_platelets"], errors="ignore")
    matched = out[["patient_id", "study_day"]].merge(nearest, on=["patient_id", "study_day"], how="left")
    counts = matched["platelets_1e9_per_L"].to_numpy(float)
    return out.assign(platelets_1e9_per_L=counts, platelet_day=matched["platelet_day"].to_numpy(float),
                      log_platelets=np.log(np.maximum(counts, 1.0)))


def rmcorr_table(populations: pd.DataFrame, platelets: pd.DataFrame, value: str = "percent_of",
                 tolerance_days: int = 3) -> pd.DataFrame:
    """Repeated-measures correlation of each population's ``value`` with log platelets over all visits.

    Returns
    -------
    DataFrame
        :data:`RMCORR_COLUMNS`; q values are BH over populations.
    """
    data = match_platelets(usable_rows(populations, value, ["study_day"]), platelets, tolerance_days)
    rows = []
    for population, frame in data.groupby("population", sort=False):
        denominator = frame["denominator"].iloc[0] if "denominator" in frame else None
        rows.append({"population": population, "denominator": denominator, "value": value,
                     **rmcorr(frame, "patient_id", "log_platelets", value)})
    table = pd.DataFrame(rows, columns=RMCORR_COLUMNS)
    table["q_value"] = bh_qvalues(table["p_value"])
    return table


def change_association_table(populations: pd.DataFrame, platelets: pd.DataFrame, visits: list[str],
                             baseline: str, *, value: str = "percent_of", tolerance_days: int = 3) -> pd.DataFrame:
    """Spearman correlation across patients of (value at visit - baseline) with (log platelets at visit - baseline).

    p values use the t approximation (scipy ``spearmanr``, R's ``cor.test(method="spearman", exact=FALSE)``);
    fewer than 3 patients, or no variation in either change, give NaN. q values are BH over populations x visits.

    Returns
    -------
    DataFrame
        :data:`ASSOCIATION_COLUMNS`, post-baseline visits in study order.
    """
    data = match_platelets(usable_rows(populations, value, ["study_day"]), platelets, tolerance_days)
    rows = []
    for population, frame in data.groupby("population", sort=False):
        value_wide = frame.pivot(index="patient_id", columns="visit", values=value)
        platelet_wide = frame.pivot(index="patient_id", columns="visit", values="log_platelets")
        if baseline not in value_wide.columns:
            continue
        for visit in [v for v in visits if v != baseline and v in value_wide.columns]:
            pair = pd.concat([value_wide[visit] - value_wide[baseline],
                              platelet_wide[visit] - platelet_wide[baseline]], axis=1).dropna().to_numpy()
            varies = len(pair) >= 3 and np.ptp(pair[:, 0]) > 0 and np.ptp(pair[:, 1]) > 0
            rho, p = stats.spearmanr(pair[:, 0], pair[:, 1]) if varies else (np.nan, np.nan)
            rows.append({"population": population, "denominator": frame["denominator"].iloc[0]
                         if "denominator" in frame else None, "value": value, "visit": visit, "n": len(pair),
                         "spearman_rho": float(rho), "p_value": float(p)})
    table = pd.DataFrame(rows, columns=ASSOCIATION_COLUMNS)
    table["q_value"] = bh_qvalues(table["p_value"])
    return table
