"""Time one sample through the workflow's per-sample steps: read + compensate + transform + event QC, then gate.

Usage: python benchmarks/sample_pipeline.py [--events N ...]
For each size, simulates one file, then prints the time of each step (best of --repeats) and the peak RSS of a
fresh process running both steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _one_run(fcs: str) -> dict:
    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.template import load_template
    from cytotrial.io.panel import Panel
    from cytotrial.preprocess.events import preprocess_fcs

    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    t0 = time.perf_counter()
    adata, _ = preprocess_fcs(fcs, "bench", panel, {"transform": {"fluorescence": "logicle"}})
    t1 = time.perf_counter()
    apply_template(adata, template)
    t2 = time.perf_counter()
    return {"preprocess_s": t1 - t0, "gate_s": t2 - t1, "n_events": adata.n_obs,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_one_run(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import SimulationSettings, trial_design

    with tempfile.TemporaryDirectory() as tmp:
        for events in args.events:
            patients, samples = trial_design(f"{tmp}/fcs{events}", patients_per_cohort=1, visits=["W4"])
            patients, samples = patients.iloc[:1], samples.iloc[:1]
            simulate_trial(patients, samples, f"{tmp}/out{events}", SimulationSettings(events_per_sample=events))
            runs = [json.loads(subprocess.run([sys.executable, __file__, "--child", samples.fcs.iloc[0]],
                                              check=True, capture_output=True, text=True).stdout)
                    for _ in range(args.repeats)]
            best = {k: min(r[k] for r in runs) for k in ("preprocess_s", "gate_s", "peak_rss_mib")}
            matrix_mib = runs[0]["n_events"] * 21 * 4 / 2**20
            print(f"{runs[0]['n_events']:>9} events: read+compensate+transform+QC {best['preprocess_s']:.2f} s, "
                  f"gate {best['gate_s']:.2f} s (ratio {best['gate_s'] / best['preprocess_s']:.2f}), "
                  f"peak RSS {best['peak_rss_mib']:.0f} MiB ({best['peak_rss_mib'] / matrix_mib:.1f}x the float32 "
                  f"event matrix)")


if __name__ == "__main__":
    main()
