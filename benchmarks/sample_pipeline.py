"""Time one sample through the per-sample steps (read + compensate + transform + event QC, then gate) and measure
the peak memory of a fresh process doing them.

Usage: python benchmarks/sample_pipeline.py [--events N ...] [--repeats N] [--result NAME]
For each size (default 200,000 and 1,000,000 events) a subprocess simulates one file of the demo trial; then
--repeats (default 3) fresh subprocesses each run both steps once with the demo's settings (transforms fitted on
the file) and report their times and their peak RSS: VmHWM of /proc/self/status, which, unlike
getrusage's ru_maxrss, does not start from the parent's high-water mark (Linux carries ru_maxrss over fork +
exec); ru_maxrss is reported too. This process does no heavy work itself. Best of the runs is printed and, with
--result, written to benchmarks/results/<RESULT>.json (commit, machine, date).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one core, as the workflow's jobs run (before numpy is imported)

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20


def _vm_hwm_mib() -> float:
    """Peak resident memory of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _simulate(events: int, tmp: str) -> dict:
    from gating_speed import simulated_file

    return {"fcs": simulated_file(events, Path(tmp))}


def _one_run(fcs: str) -> dict:
    from cytotrial.config import with_defaults
    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.template import load_template
    from cytotrial.io.panel import Panel
    from cytotrial.preprocess.events import preprocess_fcs

    after_imports = _vm_hwm_mib()
    config = with_defaults(REPO / "config" / "config.yaml")
    settings = {key: config.get(key) or {} for key in ("compensation", "transform", "qc")}
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    t0 = time.perf_counter()
    adata, _ = preprocess_fcs(fcs, "bench", panel, settings)
    t1 = time.perf_counter()
    keep = adata.obs["qc_keep"].to_numpy()
    apply_template(adata, template, root=keep)
    t2 = time.perf_counter()
    return {"preprocess_s": t1 - t0, "gate_s": t2 - t1, "n_events": adata.n_obs, "n_channels": adata.n_vars,
            "peak_rss_vmhwm_mib": _vm_hwm_mib(), "rss_after_imports_vmhwm_mib": after_imports,
            "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(*arguments: str) -> dict:
    return json.loads(subprocess.run([sys.executable, __file__, *arguments], check=True, capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--child-run":
        print(json.dumps(_one_run(sys.argv[2])))
        return
    if len(sys.argv) >= 4 and sys.argv[1] == "--child-simulate":
        print(json.dumps(_simulate(int(sys.argv[2]), sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    args = parser.parse_args()
    sizes = []
    with tempfile.TemporaryDirectory(prefix="cytotrial-sample-pipeline-") as tmp:
        for events in args.events:
            fcs = _child("--child-simulate", str(events), tmp)["fcs"]
            runs = [_child("--child-run", fcs) for _ in range(args.repeats)]
            best = {k: min(r[k] for r in runs)
                    for k in ("preprocess_s", "gate_s", "peak_rss_vmhwm_mib", "rss_after_imports_vmhwm_mib",
                              "ru_maxrss_mib")}
            n_events, n_channels = runs[0]["n_events"], runs[0]["n_channels"]
            matrix_mib = n_events * n_channels * 4 / MIB
            size = {"events": n_events, "channels": n_channels, "runs": len(runs), **best,
                    "float32_event_matrix_mib": matrix_mib,
                    "peak_above_imports_over_float32_matrix":
                        (best["peak_rss_vmhwm_mib"] - best["rss_after_imports_vmhwm_mib"]) / matrix_mib}
            sizes.append(size)
            print(f"{n_events:>9} events: read+compensate+transform+QC {best['preprocess_s']:.2f} s, "
                  f"gate {best['gate_s']:.2f} s (ratio {best['gate_s'] / best['preprocess_s']:.2f}), "
                  f"peak RSS {best['peak_rss_vmhwm_mib']:.0f} MiB (after imports "
                  f"{best['rss_after_imports_vmhwm_mib']:.0f} MiB; above it "
                  f"{size['peak_above_imports_over_float32_matrix']:.1f}x the float32 event matrix of "
                  f"{matrix_mib:.0f} MiB); ru_maxrss {best['ru_maxrss_mib']:.0f} MiB", flush=True)
    if args.result:
        from results_record import write_result

        print(f"figures: {write_result(args.result, {'command': ' '.join(sys.argv), 'sizes': sizes})}")


if __name__ == "__main__":
    main()
