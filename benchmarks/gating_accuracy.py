"""Gating accuracy against the simulator's truth: per-event F1 and frequency error of every truth population.

Usage: python benchmarks/gating_accuracy.py [--events N] [--patients-per-cohort N] [--drift-sd SD] [--workers N]
                                            [--out DIR] [--table TSV] [--template YAML]
Simulates the demo trial (default: the full design, 18 patients x 7 visits, 200,000 events per file; --drift-sd
0.15 for marked instrument drift between acquisition runs), then does what the workflow does with the settings of
config/config.yaml: per batch (sample sheet column 'batch') fits the transforms on the batch's files, preprocesses
every file (read, compensate, transform, event QC) and gates the QC-kept events with config/gating/default.yaml
(gates marked pool: batch are fitted on the batch's pooled events, as rule fit_pooled_gates does).
Compares with the truth labels of the same (QC-kept) events, for every population of
cytotrial.simulate.truth.TRUTH_POPULATIONS:
  F1     per event, 2 |gated & true| / (|gated| + |true|);
  error  gated % of the gated parent minus true % of the true parent, in percentage points (Treg: % of CD4).
Prints, per population, the median and max |error|, median and min F1 and the true median %, then the targets.
Targets: median |error| <= 0.5 pp for Treg % of CD4 and <= 1 pp for every population; F1 >= 0.95 (median over
samples) for populations >= 1 % of their parent (true median). --table writes one row per sample and population.
Deterministic (the result does not depend on --workers). With --out DIR the simulation is kept and reused by a
later run with the same design and settings; without it, a temporary folder is used and removed.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from cytotrial.config import with_defaults

REPO = Path(__file__).resolve().parents[1]
F1_TARGET = 0.95
F1_MIN_PERCENT = 1.0
ERROR_TARGET_PP = 1.0
TREG_ERROR_TARGET_PP = 0.5


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
    from cytotrial.preprocess import fit_batch_transforms
    batch, paths, settings = job
    transform = settings["transform"]
    return batch, fit_batch_transforms(paths, _panel(), settings["compensation"], transform, None,
                                       int(transform.get("max_events_per_file", 50_000)))


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
    from cytotrial.preprocess import preprocess_fcs

    samples, batch_parameters, settings, truth_dir, batch = job
    preprocessed = {}
    for sample in sorted(samples, key=lambda s: s["sample_id"]):
        adata, qc = preprocess_fcs(sample["fcs"], sample["sample_id"], _panel(),
                                   {"transform": settings["transform"], "qc": settings["qc"],
                                    "compensation": settings["compensation"]},
                                   int(sample["study_day"]), batch_parameters)
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
    for name, (parent, _) in TRUTH_POPULATIONS.items():
        parent = parent or "root"
        gated, true = result.masks[name], true_masks[name]
        n_gated, n_true = int(gated.sum()), int(true.sum())
        n_both = int(np.count_nonzero(gated & true))
        gated_parent, true_parent = int(result.masks[parent].sum()), int(true_masks[parent].sum())
        status = gates[name]["status"]
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
            "gate": _describe_gate(gates[name]) if status == "ok" else gates[name]["reason"],
        })
    return rows


def _simulate(out: Path, design: dict, settings_sim, workers: int) -> float:
    """Simulate the trial into ``out`` unless a simulation with the same design and settings is there."""
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import trial_design

    stamp = out / "benchmark_simulation.json"
    record = {"design": design, "settings": asdict(settings_sim)}
    patients, samples = trial_design(str(out / "fcs"), design["patients_per_cohort"])
    if stamp.exists() and json.loads(stamp.read_text()) == record and all(Path(f).exists() for f in samples.fcs):
        print(f"reusing the simulation in {out} (same design and settings)")
        return 0.0
    start = time.perf_counter()
    simulate_trial(patients, samples, out, settings_sim, workers=workers)
    stamp.write_text(json.dumps(record, indent=1))
    return time.perf_counter() - start


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per population: median / max |error|, median / min F1, true median %, samples below the F1 target."""
    from cytotrial.simulate.truth import TRUTH_POPULATIONS

    summary = []
    for name, group in rows.groupby("population", sort=False):
        error = group["error_pp"].abs()
        summary.append({"population": name, "parent": group["parent"].iloc[0],
                        "true_median_pct": group["true_pct"].median(),
                        "median_abs_error_pp": error.median(), "max_abs_error_pp": error.max(),
                        "median_f1": group["f1"].median(), "min_f1": group["f1"].min(),
                        "n_f1_below": int((group["f1"] < F1_TARGET).sum()),
                        "missing": int((group["status"] != "ok").sum()), "samples": len(group)})
    table = pd.DataFrame(summary).set_index("population")
    return table.loc[[n for n in TRUTH_POPULATIONS if n in table.index]]


def print_report(summary: pd.DataFrame) -> None:
    print(f"\n{'population':<12} {'% of':<12} {'true med %':>10} {'med |err|':>10} {'max |err|':>10} "
          f"{'med F1':>8} {'min F1':>8} {'F1<0.95':>8} {'missing':>8}")
    for name, r in summary.iterrows():
        print(f"{name:<12} {r.parent:<12} {r.true_median_pct:>10.2f} {r.median_abs_error_pp:>10.3f} "
              f"{r.max_abs_error_pp:>10.3f} {r.median_f1:>8.4f} {r.min_f1:>8.4f} {r.n_f1_below:>8d} "
              f"{r.missing:>8d}")
    print(f"\ntargets: median |error| <= {TREG_ERROR_TARGET_PP} pp for Treg % of CD4 and <= {ERROR_TARGET_PP} pp "
          f"for every population; F1 >= {F1_TARGET} (median over samples) for populations >= {F1_MIN_PERCENT:g} % "
          f"of parent")
    failed = []
    for name, r in summary.iterrows():
        limit = TREG_ERROR_TARGET_PP if name == "Treg" else ERROR_TARGET_PP
        error_ok = bool(r.median_abs_error_pp <= limit)
        text = f"  {name:<12} median |error| {r.median_abs_error_pp:6.3f} <= {limit:.1f} pp {'PASS' if error_ok else 'FAIL'}"
        f1_checked = bool(r.true_median_pct >= F1_MIN_PERCENT)
        if f1_checked:
            f1_ok = bool(r.median_f1 >= F1_TARGET)
            text += (f"   median F1 {r.median_f1:.4f} >= {F1_TARGET} {'PASS' if f1_ok else 'FAIL'}"
                     f" ({r.n_f1_below} of {r.samples} samples below)")
        else:
            f1_ok = True
            text += f"   F1 not checked (true median {r.true_median_pct:.2f} % < {F1_MIN_PERCENT:g} %)"
        print(text)
        if not (error_ok and f1_ok):
            failed.append(name)
    print(f"overall: {'PASS' if not failed else 'FAIL'} ({len(summary) - len(failed)} of {len(summary)} populations "
          f"meet their targets{'; failing: ' + ', '.join(failed) if failed else ''})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per file (default 200,000)")
    parser.add_argument("--patients-per-cohort", type=int, default=None,
                        help="first N patients of every cohort (default: the full design, 18 patients)")
    parser.add_argument("--drift-sd", type=float, default=0.0,
                        help="log-SD of detector gains between acquisition runs (0.15 = marked drift)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None,
                        help="simulation folder, kept and reused (default: a temporary one, removed after)")
    parser.add_argument("--table", default=None, help="write the per-sample rows to this TSV")
    parser.add_argument("--template", default=TEMPLATE_PATH[0], help="gating template (default: the workflow's)")
    args = parser.parse_args()
    TEMPLATE_PATH[0] = str(Path(args.template).resolve())

    from cytotrial.simulate.trial import SimulationSettings, trial_design

    out = Path(args.out or tempfile.mkdtemp(prefix="cytotrial-accuracy-"))
    settings = _settings()
    try:
        sim_settings = SimulationSettings(events_per_sample=args.events, drift_sd=args.drift_sd)
        design = {"patients_per_cohort": args.patients_per_cohort}
        simulate_s = _simulate(out, design, sim_settings, args.workers)
        _, samples = trial_design(str(out / "fcs"), args.patients_per_cohort)
        anomalies = pd.read_csv(out / "truth" / "anomalies.tsv", sep="\t", keep_default_na=False)
        samples = samples.merge(anomalies[["sample_id", "kind"]].rename(columns={"kind": "anomaly"}),
                                on="sample_id", how="left")
        print(f"demo trial: {len(samples)} files x ~{args.events} events, {samples.batch.nunique()} batches, "
              f"drift_sd {args.drift_sd}, transform {settings['transform'].get('fluorescence', 'logicle')} "
              f"(scope: batch), qc {settings['qc'] or 'defaults'}; simulation {simulate_s:.1f} s")

        start = time.perf_counter()
        batch_jobs = [(batch, sorted(group.fcs), settings) for batch, group in samples.groupby("batch", sort=True)]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            parameters = dict(pool.map(_fit_batch, batch_jobs, chunksize=1))
            fitted = time.perf_counter()
            jobs = [(group.to_dict("records"), parameters[batch], settings, str(out / "truth"), batch)
                    for batch, group in samples.groupby("batch", sort=True)]
            rows = pd.DataFrame([row for batch_rows in pool.map(_score_batch, jobs, chunksize=1)
                                 for row in batch_rows])
            rows = rows.sort_values(["sample_id"], kind="stable").reset_index(drop=True)
        analysis_s = time.perf_counter() - start
        print(f"analysis: {analysis_s:.1f} s with {args.workers} workers (batch transforms {fitted - start:.1f} s, "
              f"preprocess + gate + score {analysis_s - (fitted - start):.1f} s); "
              f"QC kept {rows.drop_duplicates('sample_id').qc_kept.sum() / rows.drop_duplicates('sample_id').events.sum():.2%} "
              "of the events")
        print_report(summarise(rows))
        if args.table:
            rows.to_csv(args.table, sep="\t", index=False, float_format="%.6g")
            print(f"per-sample rows: {args.table}")
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
