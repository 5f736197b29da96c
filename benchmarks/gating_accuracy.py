"""Gating accuracy on simulated trials the template was not tuned on: per-event F1 and frequency error per population.

Usage: python benchmarks/gating_accuracy.py [--seeds S [S ...]] [--scenarios NAME [NAME ...]] [--events N]
           [--patients-per-cohort N] [--workers N] [--out DIR] [--table TSV] [--template YAML] [--result NAME]
For every scenario and seed (default: the held-out seeds 16-20 in the scenarios stable, shifted and dirty of
cytotrial.simulate.variability; the default template was tuned on seeds 1 and 2 only; seeds 11-15 were held out
until their first run showed the monocyte gate failing, see benchmarks/results/gating_accuracy_heldout_first.json),
simulates the 18-patient demo trial
(126 files, 200,000 events per file before short acquisitions) with that variability, then does what the workflow
does with config/config.yaml: fits the transforms per acquisition batch, preprocesses every file (read,
compensate, transform, event QC) and gates the QC-kept events with config/gating/default.yaml (gates marked
pool: batch fitted on the batch's pooled events, as rule fit_pooled_gates does). Compares with the truth labels of
the same events, for every population of cytotrial.simulate.truth.TRUTH_POPULATIONS:
  F1     per event, 2 |gated & true| / (|gated| + |true|);
  error  gated % of the gated parent minus true % of the true parent, in percentage points (Treg: % of CD4).
Prints per scenario (all seeds pooled) each population's median, 90th percentile and max |error|, median and min
F1, missing values and flagged gates, then the targets of issue 16: Treg % of CD4 median |error| <= 0.5 pp and a
value for every sample with >= 2,000 true CD4 events; every population median |error| <= 1.5 pp, median F1 >= 0.90
where the true median is >= 1 % of the parent, and no missing value where the true parent has >= 500 events.
--result NAME writes the figures with commit, machine and date to benchmarks/results/NAME.json. Deterministic
(the result does not depend on --workers). With --out DIR simulations are kept and reused by a later run with the
same design and settings; without it, a temporary folder is used and removed.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from cytotrial.config import with_defaults

REPO = Path(__file__).resolve().parents[1]
F1_TARGET = 0.90
F1_MIN_PERCENT = 1.0
ERROR_TARGET_PP = 1.5
TREG_ERROR_TARGET_PP = 0.5
TREG_MIN_CD4 = 2000
MIN_PARENT_EVENTS = 500
TARGETS = {"treg_median_abs_error_pp": TREG_ERROR_TARGET_PP, "median_abs_error_pp": ERROR_TARGET_PP,
           "median_f1": F1_TARGET, "f1_checked_from_true_median_percent": F1_MIN_PERCENT,
           "no_missing_value_with_parent_events": MIN_PARENT_EVENTS, "treg_value_with_cd4_events": TREG_MIN_CD4}
DEVELOPMENT_SEEDS = (1, 2)
"""The seeds the default gating template was tuned on (seed 2 added to fix the monocyte gate that failed on the
first held-out seeds 11-15, which are therefore no longer held out)."""
SEEN_SEEDS = (11, 12, 13, 14, 15)
HELD_OUT_SEEDS = (16, 17, 18, 19, 20)


def _settings() -> dict:
    """The workflow's preprocessing settings (config/config.yaml: compensation, transform, qc)."""
    config = with_defaults(REPO / "config" / "config.yaml")  # the demo's settings over the defaults
    return {key: config.get(key) or {} for key in ("compensation", "transform", "qc")}


@functools.lru_cache(maxsize=1)
def _panel():
    from cytotrial.io.panel import Panel
    return Panel.from_yaml(REPO / "config" / "panel.yaml")


TEMPLATE_PATH = [str(REPO / "config" / "gating" / "default.yaml")]  # --template replaces it (workers inherit it)


@functools.lru_cache(maxsize=1)
def _template():
    from cytotrial.gating.template import load_template
    return load_template(TEMPLATE_PATH[0])


def _fit_batch(job: tuple[str, list[str], dict]) -> tuple[str, dict]:
    from cytotrial.preprocess.events import fit_batch_transforms
    batch, paths, settings = job
    transform = settings["transform"]
    return batch, fit_batch_transforms(paths, _panel(), settings["compensation"], transform, matrix_path=None,
                                       max_events_per_file=int(transform.get("max_events_per_file", 50_000)))


def _describe_gate(gate: dict) -> str:
    """A realised gate in a few characters, e.g. 'CD4>0.412;CD8<=0.503'."""
    if gate.get("cuts"):
        return ";".join(f"{dim}{'>' if c['keep'] == 'above' else '<='}{float(c['cut']):.4g}"
                        for dim, c in gate["cuts"].items())
    if "ratio_min" in gate:
        return f"ratio {float(gate['ratio_min']):.4g}..{float(gate['ratio_max']):.4g}"
    if "slope" in gate:
        return f"band slope {float(gate['slope']):.4g} half-width {float(gate['half_width']):.4g}"
    return gate.get("method", "")


def _score_batch(job: tuple[list[dict], dict, dict, str, str]) -> list[dict]:
    """Preprocess and gate the samples of one batch as the workflow does (gates with ``pool: batch`` fitted on
    the batch's pooled events); one row per sample and truth population."""
    from cytotrial.gating.pooling import fit_pooled_gates
    from cytotrial.preprocess.events import preprocess_fcs

    samples, batch_parameters, settings, truth_dir, batch = job
    preprocessed = {}
    for sample in sorted(samples, key=lambda s: s["sample_id"]):
        adata, qc = preprocess_fcs(sample["fcs"], sample["sample_id"], _panel(),
                                   {"transform": settings["transform"], "qc": settings["qc"],
                                    "compensation": settings["compensation"]},
                                   study_day=int(sample["study_day"]), batch_transforms=batch_parameters)
        preprocessed[sample["sample_id"]] = (sample, adata, qc)
    kept = {sid: adata[adata.obs["qc_keep"].to_numpy()].copy() for sid, (_, adata, _) in preprocessed.items()}
    pooled = fit_pooled_gates(kept, _template(), batch) if _template().pooled else {}
    rows = []
    for sample_id, (sample, adata, qc) in preprocessed.items():
        rows += _score_sample(sample, adata, qc, kept[sample_id], pooled, truth_dir)
    return rows


def _score_sample(sample: dict, adata, qc, gated_events, pooled: dict, truth_dir: str) -> list[dict]:
    """Gate one preprocessed sample's QC-kept events; one row per truth population."""
    from cytotrial.gating.engine import apply_template
    from cytotrial.simulate.truth import TRUTH_POPULATIONS, population_mask

    keep = adata.obs["qc_keep"].to_numpy()
    result = apply_template(gated_events, _template(), pooled=pooled)
    gates = {g["population"]: g for g in result.gates}
    labels = np.load(Path(truth_dir) / f"{sample['sample_id']}.labels.npy")
    if labels.size != keep.size:
        raise RuntimeError(f"{sample['sample_id']}: {labels.size} truth labels for {keep.size} events")
    labels = labels[keep]
    true_masks = {name: population_mask(labels, name) for name in TRUTH_POPULATIONS}
    true_masks["root"] = np.ones(labels.size, dtype=bool)
    rows = []
    empty = np.zeros(labels.size, dtype=bool)
    for name, (parent, _) in TRUTH_POPULATIONS.items():
        parent = parent or "root"
        gate = gates.get(name, {"status": "not in the template", "reason": "not in the template"})
        gated, true = result.masks.get(name, empty), true_masks[name]
        n_gated, n_true = int(gated.sum()), int(true.sum())
        n_both = int(np.count_nonzero(gated & true))
        gated_parent, true_parent = int(result.masks.get(parent, empty).sum()), int(true_masks[parent].sum())
        status = gate["status"]
        gated_pct = 100.0 * n_gated / gated_parent if status == "ok" and gated_parent else np.nan
        true_pct = 100.0 * n_true / true_parent if true_parent else np.nan
        rows.append({
            "sample_id": sample["sample_id"], "patient_id": sample["patient_id"], "visit": sample["visit"],
            "batch": sample["batch"], "anomaly": sample["anomaly"], "events": int(keep.size),
            "qc_kept": int(keep.sum()), "qc_removed_pct": round(float(qc.percent_removed), 3),
            "population": name, "parent": parent, "status": status,
            "true_count": n_true, "true_parent_count": true_parent,
            "gated_count": n_gated, "gated_parent_count": gated_parent,
            "true_pct": true_pct, "gated_pct": gated_pct, "error_pp": gated_pct - true_pct,
            "precision": n_both / n_gated if n_gated else np.nan,
            "recall": n_both / n_true if n_true else np.nan,
            "f1": 2 * n_both / (n_gated + n_true) if n_gated + n_true else np.nan,
            "flag": gate.get("flag", ""),
            "gate": _describe_gate(gate) if status == "ok" else gate["reason"],
        })
    return rows


def _simulator_digest() -> str:
    """SHA-256 of the simulator's sources: a kept simulation is reused only if the simulator is unchanged."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "cytotrial" / "simulate").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _simulate(out: Path, design: dict, settings_sim, workers: int) -> float:
    """Simulate the trial into ``out`` unless a simulation with the same design and settings is there."""
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import trial_design

    stamp = out / "benchmark_simulation.json"
    record = {"design": design, "settings": asdict(settings_sim), "simulator": _simulator_digest()}
    patients, samples = trial_design(str(out / "fcs"), design["patients_per_cohort"])
    if stamp.exists() and json.loads(stamp.read_text()) == record and all(Path(f).exists() for f in samples.fcs):
        print(f"reusing the simulation in {out} (same design and settings)")
        return 0.0
    start = time.perf_counter()
    simulate_trial(patients, samples, out, settings_sim, workers=workers)
    stamp.write_text(json.dumps(record, indent=1))
    return time.perf_counter() - start


def score_trial(out: Path, *, seed: int, scenario: str, events: int, patients_per_cohort: int | None,
                workers: int) -> pd.DataFrame:
    """Simulate one trial (seed, variability scenario) into ``out`` and gate it as the workflow does; one row per
    sample and truth population."""
    from cytotrial.simulate.trial import SimulationSettings, trial_design

    settings = _settings()
    sim_settings = SimulationSettings(seed=seed, events_per_sample=events, variability=scenario)
    design = {"patients_per_cohort": patients_per_cohort}
    simulate_s = _simulate(out, design, sim_settings, workers)
    _, samples = trial_design(str(out / "fcs"), patients_per_cohort)
    anomalies = pd.read_csv(out / "truth" / "anomalies.tsv", sep="\t", keep_default_na=False)
    samples = samples.merge(anomalies[["sample_id", "kind"]].rename(columns={"kind": "anomaly"}),
                            on="sample_id", how="left")
    start = time.perf_counter()
    batch_jobs = [(batch, sorted(group.fcs), settings) for batch, group in samples.groupby("batch", sort=True)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parameters = dict(pool.map(_fit_batch, batch_jobs, chunksize=1))
        jobs = [(group.to_dict("records"), parameters[batch], settings, str(out / "truth"), batch)
                for batch, group in samples.groupby("batch", sort=True)]
        rows = pd.DataFrame([row for batch_rows in pool.map(_score_batch, jobs, chunksize=1)
                             for row in batch_rows])
    rows = rows.sort_values(["sample_id"], kind="stable").reset_index(drop=True)
    kept = rows.drop_duplicates("sample_id")
    print(f"{scenario} seed {seed}: {len(samples)} files x ~{events} events, {samples.batch.nunique()} batches; "
          f"simulation {simulate_s:.0f} s, analysis {time.perf_counter() - start:.0f} s with {workers} workers; "
          f"QC kept {kept.qc_kept.sum() / kept.events.sum():.2%} of the events")
    rows.insert(0, "seed", seed)
    rows.insert(0, "scenario", scenario)
    return rows


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per population: median / max |error|, median / min F1, true median %, samples below the F1 target, missing
    values where the parent had enough events."""
    from cytotrial.simulate.truth import TRUTH_POPULATIONS

    summary = []
    for name, group in rows.groupby("population", sort=False):
        error = group["error_pp"].abs()
        enough_parent = group["true_parent_count"] >= (TREG_MIN_CD4 if name == "Treg" else MIN_PARENT_EVENTS)
        summary.append({"population": name, "parent": group["parent"].iloc[0],
                        "true_median_pct": group["true_pct"].median(),
                        "median_abs_error_pp": error.median(), "p90_abs_error_pp": error.quantile(0.9),
                        "max_abs_error_pp": error.max(),
                        "median_f1": group["f1"].median(), "min_f1": group["f1"].min(),
                        "n_f1_below": int((group["f1"] < F1_TARGET).sum()),
                        "missing": int((group["status"] != "ok").sum()),
                        "missing_with_parent": int(((group["status"] != "ok") & enough_parent).sum()),
                        "flagged": int(group["flag"].astype(bool).sum()), "samples": len(group)})
    table = pd.DataFrame(summary).set_index("population")
    return table.loc[[n for n in TRUTH_POPULATIONS if n in table.index]]


def check_targets(summary: pd.DataFrame) -> dict[str, list[str]]:
    """Population -> the targets it misses (empty list: all met)."""
    failed = {}
    for name, r in summary.iterrows():
        limit = TREG_ERROR_TARGET_PP if name == "Treg" else ERROR_TARGET_PP
        misses = []
        if not r.median_abs_error_pp <= limit:
            misses.append(f"median |error| {r.median_abs_error_pp:.3f} > {limit} pp")
        if r.true_median_pct >= F1_MIN_PERCENT and not r.median_f1 >= F1_TARGET:
            misses.append(f"median F1 {r.median_f1:.3f} < {F1_TARGET}")
        if r.missing_with_parent:
            misses.append(f"{r.missing_with_parent} missing with >= "
                          f"{TREG_MIN_CD4 if name == 'Treg' else MIN_PARENT_EVENTS} parent events")
        failed[name] = misses
    return failed


def print_report(summary: pd.DataFrame, title: str) -> dict[str, list[str]]:
    print(f"\n{title}\n{'population':<18} {'% of':<12} {'true med %':>10} {'med |err|':>10} {'p90 |err|':>10} "
          f"{'max |err|':>10} {'med F1':>8} {'min F1':>8} {'F1<0.90':>8} {'missing':>8} {'flagged':>8}")
    for name, r in summary.iterrows():
        print(f"{name:<18} {r.parent:<12} {r.true_median_pct:>10.2f} {r.median_abs_error_pp:>10.3f} "
              f"{r.p90_abs_error_pp:>10.3f} {r.max_abs_error_pp:>10.3f} {r.median_f1:>8.4f} {r.min_f1:>8.4f} "
              f"{r.n_f1_below:>8d} {r.missing:>8d} {r.flagged:>8d}")
    failed = check_targets(summary)
    failing = [f"{name} ({'; '.join(misses)})" for name, misses in failed.items() if misses]
    print(f"targets: {'PASS' if not failing else 'FAIL'} ({len(summary) - len(failing)} of {len(summary)} populations)"
          + ("".join(f"\n  FAIL {f}" for f in failing)))
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS),
                        help=f"simulator seeds (default: the held-out seeds {HELD_OUT_SEEDS}; the development "
                             f"seeds are {DEVELOPMENT_SEEDS}, seeds {SEEN_SEEDS} were seen once)")
    parser.add_argument("--scenarios", nargs="+", default=["stable", "shifted", "dirty"],
                        help="variability scenarios (cytotrial.simulate.variability.SCENARIOS)")
    parser.add_argument("--events", type=int, default=200_000, help="events per file (default 200,000)")
    parser.add_argument("--patients-per-cohort", type=int, default=None,
                        help="first N patients of every cohort (default: the full design, 18 patients)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None,
                        help="folder for the simulations, kept and reused (default: a temporary one, removed after)")
    parser.add_argument("--table", default=None, help="write the per-sample rows to this TSV")
    parser.add_argument("--template", default=TEMPLATE_PATH[0], help="gating template (default: the workflow's)")
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    args = parser.parse_args()
    TEMPLATE_PATH[0] = str(Path(args.template).resolve())

    from cytotrial.simulate.variability import SCENARIOS

    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; use {sorted(SCENARIOS)}")
    root = Path(args.out or tempfile.mkdtemp(prefix="cytotrial-accuracy-"))
    all_rows = []
    try:
        for scenario in args.scenarios:
            for seed in args.seeds:
                all_rows.append(score_trial(root / f"{scenario}-seed{seed}", seed=seed, scenario=scenario,
                                            events=args.events, patients_per_cohort=args.patients_per_cohort,
                                            workers=args.workers))
                if args.out is None:  # a full trial is ~2 GB: keep only the one being scored
                    shutil.rmtree(root / f"{scenario}-seed{seed}", ignore_errors=True)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    rows = pd.concat(all_rows, ignore_index=True)
    figures = {"template": str(Path(args.template).resolve().relative_to(REPO)) if Path(args.template).resolve()
               .is_relative_to(REPO) else args.template, "seeds": args.seeds, "development_seeds": DEVELOPMENT_SEEDS,
               "held_out": not set(args.seeds) & set(DEVELOPMENT_SEEDS + SEEN_SEEDS), "events_per_file": args.events,
               "patients_per_cohort": args.patients_per_cohort, "targets": TARGETS, "scenarios": {}}
    for scenario, group in rows.groupby("scenario", sort=False):
        summary = summarise(group)
        failed = print_report(summary, f"== {scenario}: seeds {args.seeds}, {group.sample_id.nunique()} samples "
                                       f"per seed, all seeds pooled ==")
        per_seed = {int(seed): {name: bool(not misses) for name, misses in check_targets(summarise(g)).items()}
                    for seed, g in group.groupby("seed")}
        figures["scenarios"][scenario] = {
            "samples": int(group.drop_duplicates(["seed", "sample_id"]).shape[0]),
            "populations": summary.reset_index().to_dict("records"),
            "failing": {name: misses for name, misses in failed.items() if misses},
            "populations_meeting_targets_per_seed": {seed: sum(ok.values()) for seed, ok in per_seed.items()},
            "populations_failing_per_seed": {seed: [n for n, ok in ok_map.items() if not ok]
                                             for seed, ok_map in per_seed.items()}}
    if args.table:
        rows.to_csv(args.table, sep="\t", index=False, float_format="%.6g")
        print(f"per-sample rows: {args.table}")
    if args.result:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_record import write_result
        print(f"figures: {write_result(args.result, figures)}")


if __name__ == "__main__":
    main()
