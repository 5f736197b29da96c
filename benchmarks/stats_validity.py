"""Validity of the immune-change statistics on simulated trials: false FDR calls under the null, power of the primary.

Usage: python benchmarks/stats_validity.py [--trials N] [--seed S] [--workers N]

Each simulated trial is the demo trial's design (18 patients in cohorts A/B/C/E, visits D0..W28) with its response
assignment (:func:`cytotrial.simulate.trial.assign_responses`, 8 responders) and each sample's true composition
from the simulator (:func:`cytotrial.simulate.trial.leaf_fractions`: between-patient log-SD 0.25 and visit-to-visit
log-SD 0.08 of every branch weight, the Treg rise by response group and dose). No FCS files are written: the
events of a 200,000-event file (+-5 %) are split into debris, doublets, dead cells, non-leukocytes and live
leukocytes as the simulator does, the live leukocytes are drawn multinomially over the leaf populations, and every
reported population (lymphocytes .. NK_dim, :data:`cytotrial.simulate.truth.TRUTH_POPULATIONS`) is the sum of its
leaves, as % of its parent (Treg as % of CD4). Gating error is not simulated.

Scenarios
---------
null         treg_rise 0 in both groups: no immune effect at all, every test's null is true.
alternative  Treg rise 50 % in responders and 10 % in non-responders at the effect's peak (the demo default).

Figures
-------
* Null, for the paired Wilcoxon family (all patients, populations x post-baseline visits) and the responder vs
  non-responder families (Mann-Whitney on the value, on the change, and both): the share of trials with any
  q <= 0.05 (family-wise false-call rate) and the mean false discovery proportion (equal to it when every null is
  true), and the mean number of calls.
* Primary endpoint, type I error under the null and power under the alternative at n = 18, alpha 0.05:
  (1) Mann-Whitney of each patient's mean Treg change (% of CD4) from D0 over W4 and W12, responders vs
  non-responders (:func:`cytotrial.stats.changes.primary_endpoint`); (1a, 1b) the same at W4 and at W12 alone;
  (2) the mixed model's mean visit x responder interaction over W4 and W12 on logit Treg % of CD4, Wald z
  (:func:`cytotrial.stats.models.interaction_contrast`).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from cytotrial.simulate.cells import LEAF_NAMES
from cytotrial.simulate.run import _artefact_counts  # the simulator's own split of a file's events
from cytotrial.simulate.trial import (VISIT_DAYS, SimulationSettings, assign_responses, leaf_fractions,
                                      patient_number, rng_for, trial_design)
from cytotrial.simulate.truth import TRUTH_POPULATIONS
from cytotrial.stats.changes import RESPONDER, add_response_groups, change_tests, primary_endpoint, response_comparison
from cytotrial.stats.models import fit_mixed_model, interaction_contrast

VISITS = list(VISIT_DAYS)
BASELINE = "D0"
PRIMARY = {"population": "Treg", "visits": ["W4", "W12"], "value": "percent_of"}
ALPHA = 0.05
EVENTS = 200_000
# Populations made of live leukocytes only (cells/singlets/live/leukocytes depend on the artefacts).
REPORTED = [name for name, (parent, _) in TRUTH_POPULATIONS.items()
            if parent not in (None, "cells", "singlets", "live")]
MEMBERSHIP = np.array([[leaf in TRUTH_POPULATIONS[name][1] for leaf in LEAF_NAMES]
                       for name in [*REPORTED, "leukocytes"]], dtype=float)


def simulate_trial_table(seed: int, rise_responders: float, rise_nonresponders: float) -> tuple[pd.DataFrame,
                                                                                                  pd.DataFrame]:
    """Population table (percent_of = % of parent) and responses of one simulated trial, without FCS files."""
    settings = SimulationSettings(seed=seed, events_per_sample=EVENTS, treg_rise_responders=rise_responders,
                                  treg_rise_nonresponders=rise_nonresponders)
    patients, samples = trial_design()
    truth = assign_responses(patients, seed).set_index("patient_id")
    dose = patients.set_index("patient_id")["dose_1e6_per_kg"]
    index = {name: i for i, name in enumerate([*REPORTED, "leukocytes"])}
    parents = np.array([index[TRUTH_POPULATIONS[name][0]] for name in REPORTED])
    blocks = []
    for sample in samples.itertuples():
        fractions = leaf_fractions(sample.patient_id, sample.visit, bool(truth.loc[sample.patient_id, "responder"]),
                                   float(dose[sample.patient_id]), settings)
        p = np.array([fractions[name] for name in LEAF_NAMES])
        rng = rng_for(seed, 7, patient_number(sample.patient_id), VISITS.index(sample.visit))
        n_total = int(round(EVENTS * rng.uniform(0.95, 1.05)))
        n_cells = _artefact_counts(n_total, rng)[-1]
        counts = MEMBERSHIP @ rng.multinomial(n_cells, p / p.sum())
        count, parent_count = counts[: len(REPORTED)], counts[parents]
        blocks.append(pd.DataFrame({"sample_id": sample.sample_id, "patient_id": sample.patient_id,
                                    "visit": sample.visit, "study_day": sample.study_day, "population": REPORTED,
                                    "denominator": [TRUTH_POPULATIONS[n][0] for n in REPORTED], "count": count,
                                    "denominator_count": parent_count,
                                    "percent_of": 100 * count / np.maximum(parent_count, 1), "status": "ok"}))
    responses = pd.DataFrame({"patient_id": truth.index, "responded": truth["responder"].to_numpy(bool)})
    return pd.concat(blocks, ignore_index=True), responses


def _lmm_primary(populations: pd.DataFrame) -> tuple[float, bool]:
    data = populations[populations["population"] == PRIMARY["population"]]
    data = data.assign(responder=(data["response_group"] == RESPONDER).astype(int))
    result, _, _ = fit_mixed_model(data, VISITS, BASELINE, PRIMARY["value"])
    if result is None:
        return np.nan, False
    return interaction_contrast(result, PRIMARY["visits"])["p_value"], bool(result.converged)


def run_trial(args: tuple[str, int]) -> dict:
    """All figures of one trial of a scenario ('null' or 'alternative')."""
    scenario, seed = args
    rises = (0.0, 0.0) if scenario == "null" else (0.5, 0.1)
    populations, responses = simulate_trial_table(seed, *rises)
    populations = add_response_groups(populations, responses)
    primary = primary_endpoint(populations, BASELINE, PRIMARY).set_index("visit")["p_value"]
    lmm_p, converged = _lmm_primary(populations)
    out = {"scenario": scenario, "seed": seed, "primary_mwu": primary.iloc[0], "mwu_W4": primary["W4"],
           "mwu_W12": primary["W12"], "lmm_contrast": lmm_p, "lmm_converged": converged}
    changes = change_tests(populations, VISITS, BASELINE)
    comparison = response_comparison(populations, VISITS, BASELINE)
    if scenario == "null":
        families = {"wilcoxon": changes["q_value"],
                    "rvn_value": comparison.loc[comparison["measure"] == "value", "q_value"],
                    "rvn_change": comparison.loc[comparison["measure"] == "change", "q_value"],
                    "rvn_both": comparison["q_value"]}
        for name, q in families.items():
            calls = int((q <= ALPHA).sum())
            out[f"{name}_calls"] = calls
            out[f"{name}_tests"] = int(q.notna().sum())
            out[f"{name}_fdp"] = 1.0 if calls else 0.0  # every null is true: any call is false
    else:
        treg = changes[(changes["population"] == "Treg") & changes["visit"].isin(PRIMARY["visits"])]
        out["wilcoxon_treg_called"] = bool((treg["q_value"] <= ALPHA).all())
        rvn = comparison[(comparison["population"] == "Treg") & (comparison["measure"] == "change")
                         & comparison["visit"].isin(PRIMARY["visits"])]
        out["rvn_treg_called"] = bool((rvn["q_value"] <= ALPHA).any())
    return out


def _rate(values: pd.Series) -> str:
    values = values.dropna().astype(float)
    n = len(values)
    p = values.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / n) if n else np.nan
    return f"{p:.3f} (95% CI {max(p - half, 0):.3f}-{min(p + half, 1):.3f}, n={n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per scenario")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    seeds = np.random.SeedSequence(args.seed).generate_state(2 * args.trials).tolist()
    jobs = [("null", s) for s in seeds[: args.trials]] + [("alternative", s) for s in seeds[args.trials:]]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = pd.DataFrame(list(pool.map(run_trial, jobs, chunksize=4)))
    wall = time.perf_counter() - start
    null, alt = results[results["scenario"] == "null"], results[results["scenario"] == "alternative"]
    print(f"seed: {args.seed}  trials per scenario: {args.trials}  workers: {args.workers}  time: {wall:.1f} s")
    print(f"design: 18 patients, {len(VISITS)} visits, {len(REPORTED)} populations, {EVENTS} events per file")
    print("\nNULL (no immune effect): false FDR calls at q <= 0.05")
    for name, label in [("wilcoxon", "paired Wilcoxon, populations x visits"),
                        ("rvn_value", "responders vs non-responders, value"),
                        ("rvn_change", "responders vs non-responders, change"),
                        ("rvn_both", "responders vs non-responders, value + change (separate q)")]:
        print(f"  {label} ({int(null[f'{name}_tests'].median())} tests/trial):")
        print(f"    any false call (FWER): {_rate(null[f'{name}_calls'] > 0)}")
        print(f"    mean FDP: {null[f'{name}_fdp'].mean():.3f}   mean false calls/trial: "
              f"{null[f'{name}_calls'].mean():.3f}")
    print("\nPRIMARY endpoint, alpha 0.05: type I error (null) and power (Treg +50 % responders, +10 % others)")
    for column, label in [("primary_mwu", "(1) MWU of mean Treg change W4+W12 [primary]"),
                          ("mwu_W4", "(1a) MWU of Treg change at W4"), ("mwu_W12", "(1b) MWU of Treg change at W12"),
                          ("lmm_contrast", "(2) LMM mean interaction W4+W12, Wald z")]:
        print(f"  {label}")
        print(f"    type I error: {_rate(null[column] <= ALPHA)}")
        print(f"    power:        {_rate(alt[column] <= ALPHA)}")
    print(f"  LMM converged: null {null['lmm_converged'].mean():.3f}, alternative {alt['lmm_converged'].mean():.3f}")
    print("\nEXPLORATORY families under the alternative (Treg at W4 and W12, q <= 0.05)")
    print(f"  paired Wilcoxon, all patients, both visits called: {_rate(alt['wilcoxon_treg_called'])}")
    print(f"  responders vs non-responders change, either visit called: {_rate(alt['rvn_treg_called'])}")


if __name__ == "__main__":
    main()
