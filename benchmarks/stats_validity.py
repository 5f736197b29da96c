"""Validity of the immune-change statistics on simulated trials with gating error: type I error, power, coverage.

Usage: python benchmarks/stats_validity.py [--null-trials N] [--alternative-trials N] [--seed S] [--workers N]
                                           [--out benchmarks/results/stats_validity.json]

Design
------
Each simulated trial is the demo trial's design (18 patients in cohorts A/B/C/E at doses 0.5/1/2/2, visits D0..W28)
with its response assignment (:func:`cytotrial.simulate.trial.assign_responses`, 8 responders) and each sample's
true composition from the simulator (:func:`cytotrial.simulate.trial.leaf_fractions`: between-patient log-SD 0.25
and visit-to-visit log-SD 0.08 of every branch weight, the Treg rise by response group and dose). No FCS files
are written: a 200,000-event file (+-5 %) loses 11-26 % of its events to debris, doublets, dead cells and
non-leukocytes (uniform shares 5-12, 3-6, 2-5 and 1-3 %, as the simulator draws them), the live leukocytes are
drawn multinomially over the leaf populations, and every reported population (lymphocytes .. NK_dim of
:data:`cytotrial.simulate.truth.TRUTH_POPULATIONS`) is the sum of its leaves, as % of its parent (Treg of CD4).

Gating error (an assumption, stated here and in the results file): every reported population's % of its parent
gets a per-sample error, independent between gates and samples. Near the population's level p it has an SD of
0.75 percentage points scaled by sqrt(p (1 - p) / (0.04 x 0.96)) -- 0.75 pp for Treg at 4 % of CD4, less for
rarer populations, more for larger ones -- and in 5 % of samples (a misplaced gate) 4 times that SD (about 3 pp
for Treg). It is drawn on the logit scale (SD = that pp SD / (100 p (1 - p))), so a percentage stays within
0-100 and a miss on a rare population is a multiple of it, not a zero. That is the 0.5-1 pp SD of a held-out
gating benchmark with occasional large misses, far above this project's measured median |error| of 0.08 pp for
Treg on the demo's own files (benchmarks/gating_accuracy.py). Counts are recomputed from the disturbed
percentages.

Scenarios
---------
null         no immune effect (Treg rise 0 in both groups): every null hypothesis is true.
alternative  Treg rise 50 % in responders and 10 % in non-responders at the effect's peak (the demo default).

Figures (each a rate over trials with its Clopper-Pearson 95 % interval)
-----------------------------------------------------------------------
* Type I error (null) and power (alternative) at alpha 0.05 of the primary immunological endpoint (Mann-Whitney
  of each patient's mean Treg change over W4 and W12, complete cases; :func:`cytotrial.stats.changes.
  primary_endpoint`) and of each model's responder x visit tests on Treg: the mixed model
  (Satterthwaite t of the mean W4+W12 interaction, joint Satterthwaite F of all 6 interactions, and each single
  interaction term) and the count GEE (Mancl-DeRouen sandwich: t(G - 1) and the Hotelling-type joint F), with the
  previous tests for comparison (mixed model Wald z; GEE robust sandwich x G/(G - 1) with t(G - 1)).
* Coverage (null, true difference 0) of the exact Hodges-Lehmann 95 % intervals: the primary endpoint's, and all
  responder vs non-responder change intervals (populations x visits).
* Type I error of the trend tests: Jonckheere-Terpstra of the change over dose levels (all populations x visits,
  null scenario), and the exact Cochran-Armitage trend of the response rate with the 8 responders assigned at
  random to the 18 patients.
* FDR families under the null with the configured exclusions (config/config.yaml statistics): share of trials
  with any q <= 0.05 (all nulls true: the family-wise false-call rate).

The figures are printed and written, with the commit, machine (cores, CPU model) and date, to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
import yaml
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cytotrial.simulate.cells import LEAF_NAMES
from cytotrial.simulate.trial import (VISIT_DAYS, SimulationSettings, assign_responses, leaf_fractions,
                                      patient_number, rng_for, trial_design)
from cytotrial.simulate.truth import TRUTH_POPULATIONS
from cytotrial.stats.changes import RESPONDER, add_response_groups, change_tests, primary_endpoint, response_comparison
from cytotrial.stats.dose import dose_response_table
from cytotrial.stats.models import fit_mixed_model, gee_tests, interaction_rows, mean_contrast
from cytotrial.stats.nonparametric import cochran_armitage_exact
from cytotrial.stats.settings import StatisticsSettings
from cytotrial.stats.small_sample import satterthwaite_f, satterthwaite_t, variance_derivatives

REPO = Path(__file__).resolve().parents[1]
VISITS = list(VISIT_DAYS)
BASELINE = "D0"
PRIMARY = {"population": "Treg", "visits": ["W4", "W12"], "value": "percent_of", "complete_cases": True}
ALPHA = 0.05
EVENTS = 200_000
GATING_SD_PP = 0.75  # percentage points at p = 0.04 (Treg of CD4)
GATING_MISS_SHARE, GATING_MISS_FACTOR = 0.05, 4.0
REPORTED = [name for name, (parent, _) in TRUTH_POPULATIONS.items()
            if parent not in (None, "cells", "singlets", "live")]
MEMBERSHIP = np.array([[leaf in TRUTH_POPULATIONS[name][1] for leaf in LEAF_NAMES]
                       for name in [*REPORTED, "leukocytes"]], dtype=float)
SETTINGS = StatisticsSettings.from_dict(yaml.safe_load((REPO / "config" / "config.yaml").read_text())["statistics"])
OUTSIDE_FDR = SETTINGS.outside_fdr(REPORTED)


def live_leukocytes(n_total: int, rng: np.random.Generator) -> int:
    """Events left after debris, doublets, dead cells and non-leukocytes (the simulator's shares)."""
    shares = [rng.uniform(0.05, 0.12), rng.uniform(0.03, 0.06), rng.uniform(0.02, 0.05), rng.uniform(0.01, 0.03)]
    return int(rng.multinomial(n_total, [*shares, 1 - sum(shares)])[-1])


def gating_error(percent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Percentages (0-100) with a per-sample gating error (see the module docstring)."""
    p = np.clip(percent / 100, 1e-6, 1 - 1e-6)
    sd_pp = GATING_SD_PP * np.sqrt(p * (1 - p) / (0.04 * 0.96))
    sd_logit = sd_pp / (100 * p * (1 - p)) * np.where(rng.random(p.size) < GATING_MISS_SHARE, GATING_MISS_FACTOR, 1.0)
    logit = np.log(p / (1 - p)) + sd_logit * rng.standard_normal(p.size)
    return 100 / (1 + np.exp(-logit))


def treg_error_sd(samples: int = 20000, seed: int = 1) -> dict:
    """The gating error's SD in pp on a Treg of 4 % of CD4, overall and in the misses (a check of the assumption)."""
    rng = np.random.default_rng(seed)
    error = gating_error(np.full(samples, 4.0), rng) - 4.0
    return {"all": round(float(error.std()), 3), "median_abs": round(float(np.median(np.abs(error))), 3)}


def simulate_trial_table(seed: int, rise_responders: float, rise_nonresponders: float,
                         with_gating_error: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Population table (percent_of = % of parent) and responses of one simulated trial, without FCS files."""
    settings = SimulationSettings(seed=seed, events_per_sample=EVENTS, treg_rise_responders=rise_responders,
                                  treg_rise_nonresponders=rise_nonresponders)
    patients, samples = trial_design()
    truth = assign_responses(patients, seed).set_index("patient_id")
    dose = patients.set_index("patient_id")["dose_1e6_per_kg"]
    cohort = patients.set_index("patient_id")["cohort"]
    index = {name: i for i, name in enumerate([*REPORTED, "leukocytes"])}
    parents = np.array([index[TRUTH_POPULATIONS[name][0]] for name in REPORTED])
    blocks = []
    for sample in samples.itertuples():
        fractions = leaf_fractions(sample.patient_id, sample.visit, bool(truth.loc[sample.patient_id, "responder"]),
                                   float(dose[sample.patient_id]), settings=settings)
        p = np.array([fractions[name] for name in LEAF_NAMES])
        rng = rng_for(seed, 7, patient_number(sample.patient_id), VISITS.index(sample.visit))
        n_cells = live_leukocytes(int(round(EVENTS * rng.uniform(0.95, 1.05))), rng)
        counts = MEMBERSHIP @ rng.multinomial(n_cells, p / p.sum())
        parent_count = counts[parents]
        percent = 100 * counts[: len(REPORTED)] / np.maximum(parent_count, 1)
        if with_gating_error:
            percent = gating_error(percent, rng_for(seed, 99, patient_number(sample.patient_id),
                                                    VISITS.index(sample.visit)))
        blocks.append(pd.DataFrame({"sample_id": sample.sample_id, "patient_id": sample.patient_id,
                                    "visit": sample.visit, "study_day": sample.study_day,
                                    "cohort": cohort[sample.patient_id],
                                    "dose_1e6_per_kg": dose[sample.patient_id], "population": REPORTED,
                                    "denominator": [TRUTH_POPULATIONS[n][0] for n in REPORTED],
                                    "count": np.round(percent * parent_count / 100), "denominator_count": parent_count,
                                    "percent_of": percent, "status": "ok"}))
    responses = pd.DataFrame({"patient_id": truth.index, "responded": truth["responder"].to_numpy(bool)})
    return pd.concat(blocks, ignore_index=True), responses


def _mixed_model_tests(treg: pd.DataFrame) -> dict:
    result, _, _ = fit_mixed_model(treg, VISITS, BASELINE, "percent_of")
    if result is None:
        return {}
    names = list(result.model.exog_names)
    derivatives = variance_derivatives(result)
    contrast = satterthwaite_t(result, mean_contrast(names, PRIMARY["visits"]), derivatives=derivatives)
    rows = interaction_rows(names, VISITS)
    return {"lmm_contrast": contrast["p_value"],
            "lmm_contrast_wald_z": float(2 * stats.norm.sf(abs(contrast["statistic"]))),
            "lmm_joint": satterthwaite_f(result, rows, derivatives=derivatives)["p_value"],
            "lmm_terms": [satterthwaite_t(result, row, derivatives=derivatives)["p_value"] for row in rows],
            "lmm_converged": bool(result.converged)}


def _gee_tests(treg: pd.DataFrame) -> dict:
    data = treg.assign(proportion=treg["count"] / treg["denominator_count"],
                       visit=pd.Categorical(treg["visit"], VISITS))
    model = smf.gee("proportion ~ C(visit, Treatment(reference='D0')) * responder", "patient_id", data,
                    family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable(),
                    weights=data["denominator_count"].to_numpy(float))
    result = model.fit(cov_type="robust")
    g = data["patient_id"].nunique()
    names = list(result.model.exog_names)
    contrast = mean_contrast(names, PRIMARY["visits"])
    rows = interaction_rows(names, VISITS)
    old_se = float(np.sqrt(contrast @ result.cov_params().to_numpy() @ contrast * g / (g - 1)))
    old_t = float(contrast @ result.params.to_numpy()) / old_se
    return {"gee_contrast": gee_tests(result, g, contrast)["p_value"],
            "gee_contrast_robust_g": float(2 * stats.t.sf(abs(old_t), g - 1)),
            "gee_joint": gee_tests(result, g, rows)["p_value"],
            "gee_terms": [gee_tests(result, g, row)["p_value"] for row in rows]}


def _covers_zero(table: pd.DataFrame) -> tuple[int, int]:
    finite = table.dropna(subset=["hl_ci_low", "hl_ci_high"])
    return int(((finite["hl_ci_low"] <= 0) & (finite["hl_ci_high"] >= 0)).sum()), len(finite)


def run_trial(args: tuple[str, int]) -> dict:
    """All figures of one trial of a scenario ('null' or 'alternative')."""
    warnings.simplefilter("ignore")
    scenario, seed = args
    rises = (0.0, 0.0) if scenario == "null" else (0.5, 0.1)
    populations, responses = simulate_trial_table(seed, *rises)
    populations = add_response_groups(populations, responses)
    primary = primary_endpoint(populations, BASELINE, PRIMARY)
    first = primary.iloc[0]
    treg = populations[populations["population"] == "Treg"]
    treg = treg.assign(responder=(treg["response_group"] == RESPONDER).astype(int))
    out = {"scenario": scenario, "seed": seed, "primary": first["p_value"],
           "primary_W4": primary.set_index("visit").loc["W4", "p_value"],
           "primary_W12": primary.set_index("visit").loc["W12", "p_value"],
           **_mixed_model_tests(treg), **_gee_tests(treg)}
    if scenario == "alternative":
        changes = change_tests(populations, VISITS, BASELINE, outside_fdr=OUTSIDE_FDR)
        treg_changes = changes[(changes["population"] == "Treg") & changes["visit"].isin(PRIMARY["visits"])]
        out["wilcoxon_treg_called"] = bool((treg_changes["q_value"] <= ALPHA).all())
        return out
    out["primary_hl_covers"] = bool(first["hl_ci_low"] <= 0 <= first["hl_ci_high"])
    comparison = response_comparison(populations, VISITS, BASELINE, outside_fdr=OUTSIDE_FDR)
    out["hl_covered"], out["hl_intervals"] = _covers_zero(comparison[comparison["measure"] == "change"])
    changes = change_tests(populations, VISITS, BASELINE, outside_fdr=OUTSIDE_FDR)
    for name, table in {"wilcoxon": changes, "rvn_change": comparison[comparison["measure"] == "change"],
                        "rvn_value": comparison[comparison["measure"] == "value"]}.items():
        out[f"{name}_any_call"] = bool((table["q_value"] <= ALPHA).any())
        out[f"{name}_tests"] = int(table["q_value"].notna().sum())
    dose = dose_response_table(populations, VISITS, BASELINE)
    out["jt_rejections"], out["jt_tests"] = int((dose["p_value"] <= ALPHA).sum()), int(dose["p_value"].notna().sum())
    out["jt_treg_W12"] = float(dose.set_index(["population", "visit"]).loc[("Treg", "W12"), "p_value"])
    permuted = rng_for(seed, 123).permutation(responses["responded"].to_numpy())
    by_dose = populations.drop_duplicates("patient_id").set_index("patient_id")["dose_1e6_per_kg"]
    levels = sorted(by_dose.unique())
    dose_of = by_dose.reindex(responses["patient_id"]).to_numpy()
    out["ca_random_responders"] = cochran_armitage_exact([int(permuted[dose_of == d].sum()) for d in levels],
                                                         [int((dose_of == d).sum()) for d in levels],
                                                         levels)["p_value"]
    return out


def rate(successes: int, n: int) -> dict:
    """A rate with its Clopper-Pearson 95 % interval."""
    low, high = proportion_confint(successes, n, alpha=0.05, method="beta") if n else (np.nan, np.nan)
    return {"rate": round(successes / n, 4) if n else None, "ci": [round(float(low), 4), round(float(high), 4)],
            "n": int(n)}


def _rejections(values: pd.Series) -> dict:
    values = values.dropna().astype(float)
    return rate(int((values <= ALPHA).sum()), len(values))


def _term_rejections(lists: pd.Series) -> dict:
    p = np.concatenate([np.asarray(v, float) for v in lists.dropna()])
    return rate(int((p <= ALPHA).sum()), int(np.isfinite(p).sum()))


def summarise(results: pd.DataFrame) -> dict:
    """Every figure of the module docstring from the per-trial results."""
    null, alt = results[results["scenario"] == "null"], results[results["scenario"] == "alternative"]
    tests = {"primary": "primary immunological endpoint (MWU, mean Treg change W4+W12, complete cases)",
             "primary_W4": "supportive: MWU of the Treg change at W4", "primary_W12": "supportive: at W12",
             "lmm_contrast": "mixed model, mean W4+W12 interaction, Satterthwaite t",
             "lmm_joint": "mixed model, joint visit x responder F (6 df), Satterthwaite",
             "lmm_contrast_wald_z": "mixed model, mean W4+W12 interaction, Wald z (previous)",
             "gee_contrast": "GEE, mean W4+W12 interaction, Mancl-DeRouen, t(G-1)",
             "gee_joint": "GEE, joint visit x responder, Mancl-DeRouen, F(6, G-6) Hotelling-type",
             "gee_contrast_robust_g": "GEE, mean W4+W12 interaction, robust x G/(G-1), t(G-1) (previous)"}
    figures = {"type_i_error": {k: {"test": v, **_rejections(null[k])} for k, v in tests.items()},
               "power": {k: {"test": v, **_rejections(alt[k])} for k, v in tests.items()}}
    for scenario, frame in (("type_i_error", null), ("power", alt)):
        figures[scenario]["lmm_single_terms"] = {"test": "mixed model, each visit x responder term, Satterthwaite t",
                                                 **_term_rejections(frame["lmm_terms"])}
        figures[scenario]["gee_single_terms"] = {"test": "GEE, each visit x responder term, Mancl-DeRouen t(G-1)",
                                                 **_term_rejections(frame["gee_terms"])}
    figures["power"]["wilcoxon_treg_both_visits"] = {
        "test": "paired Wilcoxon family (all patients): Treg called at W4 and W12 (q <= 0.05)",
        **rate(int(alt["wilcoxon_treg_called"].sum()), len(alt))}
    figures["hl_coverage"] = {
        "primary": {"interval": "primary endpoint HL difference (true 0)",
                    **rate(int(null["primary_hl_covers"].sum()), len(null))},
        "responders_vs_nonresponders_changes": {
            "interval": "all responder vs non-responder change HL intervals, populations x visits (true 0)",
            **rate(int(null["hl_covered"].sum()), int(null["hl_intervals"].sum()))}}
    figures["trend_type_i_error"] = {
        "jonckheere_terpstra": {"test": "JT of the change over dose levels, all populations x visits",
                                **rate(int(null["jt_rejections"].sum()), int(null["jt_tests"].sum()))},
        "jonckheere_terpstra_treg_W12": {"test": "JT of the Treg change at W12", **_rejections(null["jt_treg_W12"])},
        "cochran_armitage_exact": {"test": "exact Cochran-Armitage trend of the response rate, responders at random",
                                   **_rejections(null["ca_random_responders"])}}
    figures["fdr_null_any_false_call"] = {
        name: {"family": label, "tests_per_trial": int(null[f"{name}_tests"].median()),
               **rate(int(null[f"{name}_any_call"].sum()), len(null))}
        for name, label in (("wilcoxon", "paired change, all patients"), ("rvn_change", "responders vs non, change"),
                            ("rvn_value", "responders vs non, value"))}
    figures["lmm_converged"] = {"null": round(float(null["lmm_converged"].mean()), 4),
                                "alternative": round(float(alt["lmm_converged"].mean()), 4)}
    return figures


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform()}


def commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()
    changed = git("status", "--porcelain", "--", "src", "benchmarks", ":!benchmarks/results")  # not our own output
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(changed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-trials", type=int, default=1000)
    parser.add_argument("--alternative-trials", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "stats_validity.json")
    args = parser.parse_args()
    seeds = np.random.SeedSequence(args.seed).generate_state(args.null_trials + args.alternative_trials).tolist()
    jobs = ([("null", s) for s in seeds[: args.null_trials]]
            + [("alternative", s) for s in seeds[args.null_trials:]])
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = pd.DataFrame(list(pool.map(run_trial, jobs, chunksize=4)))
    wall = time.perf_counter() - start
    report = {"benchmark": "benchmarks/stats_validity.py",
              "command": " ".join(["python", "benchmarks/stats_validity.py", *sys.argv[1:]]),
              **commit(), "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
              "machine": machine(), "workers": args.workers, "wall_seconds": round(wall, 1), "seed": args.seed,
              "trials": {"null": args.null_trials, "alternative": args.alternative_trials},
              "design": {"patients": 18, "visits": VISITS, "populations": len(REPORTED), "events_per_file": EVENTS,
                         "responders": 8, "alpha": ALPHA},
              "gating_error": {"sd_pp_at_4_percent": GATING_SD_PP, "sd_scaling": "sqrt(p(1-p) / (0.04 x 0.96))",
                               "scale": "logit, SD = pp SD / (100 p (1-p))", "large_miss_share": GATING_MISS_SHARE,
                               "large_miss_sd_factor": GATING_MISS_FACTOR,
                               "treg_error_sd_pp_measured": treg_error_sd()},
              "outside_fdr": OUTSIDE_FDR, "figures": summarise(results)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
