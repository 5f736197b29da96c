"""Static GatingML template: our evaluator (gating/gatingml.py, plan_engine.py) against flowkit's GatingStrategy.

Usage: python benchmarks/static_gating.py [--events N] [--repeats N] [--result NAME]
One simulated demo file (default 200,000 events) is preprocessed and gated as the workflow does; its realised gates
(rectangles, polygons, a Boolean gate; the file's spillover and logicle transforms) are exported as GatingML 2.0
and its QC-kept raw events written as an FCS file. Best of --repeats, one thread:
  ours       apply_plan(QC-kept AnnData, load_gating_template(GatingML)), what process_sample runs, and
             evaluate_plan(plan, fk.Sample of the kept-events file);
  flowkit    fk.parse_gating_xml(...).gate_sample(that fk.Sample), default and cache_events=True.
Counts the events whose membership differs per gate, and compares the times with a process_sample job's CPU
(benchmarks/results/workflow_time_126x200000_2cores_after.json). Figures go to benchmarks/results/<--result>.json.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one core, as the workflow's jobs run (before numpy is imported)

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gating_speed import best_of, simulated_file, workflow_settings, write_kept_events  # noqa: E402

WORKFLOW_TIME = Path(__file__).resolve().parent / "results" / "workflow_time_126x200000_2cores_after.json"


def process_sample_cpu_per_job() -> dict:
    """CPU of a process_sample job (200,000 events) from the recorded workflow run: mean and start-up, s."""
    figures = json.loads(WORKFLOW_TIME.read_text())["figures"]["rules"]["process_sample"]
    return {"source": WORKFLOW_TIME.name, "cpu_s_per_job": figures["logged_cpu_s"] / figures["jobs"],
            "startup_cpu_s_per_job": figures["logged_startup_cpu_s_per_job"]}


def run(events: int, repeats: int, tmp: Path) -> dict:
    import flowkit as fk

    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.gatingml import evaluate_plan
    from cytotrial.gating.gatingml_export import export_gatingml
    from cytotrial.gating.plan_engine import apply_plan, load_gating_template
    from cytotrial.preprocess.events import fit_batch_transforms, preprocess_fcs
    from cytotrial.quantify import realised_gates

    settings, panel, template = workflow_settings()
    fcs = simulated_file(events, tmp)
    batch = fit_batch_transforms([fcs], panel, settings["compensation"], settings["transform"], matrix_path=None,
                                 max_events_per_file=int(settings["transform"].get("max_events_per_file", 50_000)))
    adata, _ = preprocess_fcs(fcs, "bench", panel, settings, study_day=28, batch_transforms=batch)
    keep = adata.obs["qc_keep"].to_numpy()
    kept = adata[keep].copy()
    adaptive = apply_template(kept, template)
    gml = tmp / "static.xml"
    ids = export_gatingml(realised_gates(adaptive, kept), kept.var, kept.uns["spillover"], gml)
    kept_fcs = tmp / "kept.fcs"
    write_kept_events(fcs, keep, kept_fcs)
    sample = fk.Sample(str(kept_fcs), sample_id="bench")

    static_template = load_gating_template(gml)
    plan = static_template.plan
    kinds = {}
    for gate in plan.gates.values():
        kinds[gate.kind] = kinds.get(gate.kind, 0) + 1
    t_ours_workflow, ours_workflow = best_of(repeats, apply_plan, kept, static_template)
    t_ours_sample, ours_sample = best_of(repeats, evaluate_plan, plan, sample)

    strategy = fk.parse_gating_xml(str(gml))
    t_fk, fk_result = best_of(repeats, strategy.gate_sample, sample, before=strategy.clear_cache)
    t_fk_cached, _ = best_of(repeats, strategy.gate_sample, sample, cache_events=True, before=strategy.clear_cache)
    strategy.clear_cache()

    differ_sample, differ_workflow = {}, {}
    for name, gate_id in ids.items():
        theirs = np.asarray(fk_result.get_gate_membership(gate_id), dtype=bool)
        differ_sample[name] = int(np.count_nonzero(theirs != ours_sample[gate_id]))
        differ_workflow[name] = int(np.count_nonzero(theirs != ours_workflow.masks[gate_id]))
    job = process_sample_cpu_per_job()
    figures = {
        "events": int(sample.event_count), "gates": len(ids), "plan_gates_by_kind": kinds, "repeats": repeats,
        "flowkit_version": fk.__version__,
        "ours_apply_plan_on_preprocessed_events_s": t_ours_workflow,
        "ours_evaluate_plan_on_fk_sample_s": t_ours_sample,
        "flowkit_gate_sample_s": t_fk, "flowkit_gate_sample_cache_events_s": t_fk_cached,
        "flowkit_over_ours_same_input": t_fk / t_ours_sample,
        "flowkit_cached_over_ours_same_input": t_fk_cached / t_ours_sample,
        "flowkit_over_ours_workflow_path": t_fk / t_ours_workflow,
        "gates_differing_same_input": sum(v > 0 for v in differ_sample.values()),
        "max_events_differing_same_input": max(differ_sample.values()),
        "gates_differing_workflow_path": sum(v > 0 for v in differ_workflow.values()),
        "max_events_differing_workflow_path": max(differ_workflow.values()),
        "events_differing_workflow_path": {k: v for k, v in differ_workflow.items() if v},
        "process_sample_job": job,
        "flowkit_extra_s_per_job": t_fk - t_ours_workflow,
        "flowkit_extra_share_of_job_cpu": (t_fk - t_ours_workflow) / job["cpu_s_per_job"],
    }
    print(f"{figures['events']} events, {len(ids)} gates ({kinds}); best of {repeats}, one thread")
    print(f"  ours, workflow path (apply_plan on preprocessed events)   {t_ours_workflow:7.3f} s")
    print(f"  ours, evaluate_plan on the fk.Sample                      {t_ours_sample:7.3f} s")
    print(f"  flowkit {fk.__version__} GatingStrategy.gate_sample (same fk.Sample)  {t_fk:7.3f} s "
          f"(cache_events=True {t_fk_cached:.3f} s): {t_fk / t_ours_sample:.1f}x ours on the same input")
    print(f"  memberships: same input {figures['gates_differing_same_input']} gates differ (at most "
          f"{figures['max_events_differing_same_input']} events); workflow path "
          f"{figures['gates_differing_workflow_path']} gates (at most {figures['max_events_differing_workflow_path']})")
    print(f"  a process_sample job: {job['cpu_s_per_job']:.2f} s CPU ({job['source']}); flowkit would add "
          f"{figures['flowkit_extra_s_per_job']:.2f} s ({figures['flowkit_extra_share_of_job_cpu']:.0%})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cytotrial-static-gating-") as tmp:
        figures = run(args.events, args.repeats, Path(tmp))
    if args.result:
        from results_record import write_result

        print(f"figures: {write_result(args.result, {'command': ' '.join(sys.argv), 'threads': 1, **figures})}")


if __name__ == "__main__":
    main()
