"""Where a process_sample job's CPU goes: start-up (imports) and a profile of the job's one library call.

Usage: python benchmarks/sample_profile.py [--events N] [--repeats N] [--top N] [--result NAME]
A subprocess simulates one demo file (default 200,000 events) and fits its batch transforms. Then, each in a fresh
process with one thread, as a job of rule process_sample runs:
  start-up   CPU of ``python -c 'import cytotrial.steps.process_sample, cytotrial.steps.runlog'`` (best of
             --repeats), ``-X importtime`` self times per top-level package, the CPU of ``python -c 'import numba'``;
  job        CPU of process_sample_files(...) with the demo's settings and outputs, unprofiled (best of --repeats),
             each compiled (numba) kernel timed by a thin wrapper (all calls, and the first, which loads its cached
             machine code); then once under cProfile (CPU timer), kernels wrapped in functions of their names.
Shares are of the job's total, start-up + unprofiled job CPU; cProfile times are scaled to the unprofiled job CPU
(profiling slows Python more than compiled code: shares of Python functions are upper bounds).
Figures go to benchmarks/results/<--result>.json (commit, machine, date).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one core, as the workflow's jobs run

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# compiled kernels: (module, attribute) looked up at call time by their callers
KERNELS = [("cytotrial.gating.compiled_fits", name) for name in
           ("mean_shift_mode", "inner_distances",
            "mixture_log_densities", "binned_gaussian_em", "in_polygon", "weighted_kmeans")]
KERNELS += [("cytotrial.preprocess.logicle", name) for name in ("interval_polynomials", "tabulated_logicle")]
KERNELS += [("cytotrial.numeric.order_statistics_compiled", "order_statistics")]
WRAPPER_FILE = "compiled-kernel"  # file name of the wrappers in the profile


def _settings() -> dict:
    from cytotrial.config import with_defaults

    config = with_defaults(REPO / "config" / "config.yaml")
    return {key: config.get(key) or {} for key in ("compensation", "transform", "qc", "deidentification")}


def _outputs(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    names = {"qc_row": "qc.tsv", "qc_details": "qc.json", "qc_plot": "qc.png", "metadata": "metadata.json",
             "populations": "populations.tsv", "gates": "gates.json", "review": "review.npz", "mfi": "mfi.tsv",
             "events": "events.h5ad", "gatingml": "gatingml.xml", "workspace": "sample.wsp", "fcs": "export.fcs"}
    return {key: str(folder / name) for key, name in names.items()}


def _job(fcs: str, transforms: str, out: Path):
    import logging

    from cytotrial.steps.process_sample import process_sample_files

    return lambda: process_sample_files("P01_W4", fcs, str(REPO / "config" / "panel.yaml"), _settings(), study_day=28,
                                        transforms_path=transforms, matrix_path=None, on_bad_file="exclude",
                                        template=str(REPO / "config" / "gating" / "default.yaml"), overrides={},
                                        workspace_group="All Samples", events_per_sample=10_000, outputs=_outputs(out),
                                        log=logging.getLogger("sample_profile"))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_prepare(events: int, tmp: str) -> dict:
    from gating_speed import simulated_file, workflow_settings

    from cytotrial.preprocess.events import fit_batch_transforms

    fcs = simulated_file(events, Path(tmp))
    settings, panel, _ = workflow_settings()
    batch = fit_batch_transforms([fcs], panel, settings["compensation"], settings["transform"], matrix_path=None,
                                 max_events_per_file=int(settings["transform"].get("max_events_per_file", 50_000)))
    transforms = Path(tmp) / "transforms.json"
    transforms.write_text(json.dumps(batch))
    return {"fcs": fcs, "transforms": str(transforms)}


def child_job(fcs: str, transforms: str, out: str) -> dict:
    """The job's CPU without a profiler (imports done before the clock starts), and the CPU of each compiled
    kernel's calls (timed by a thin wrapper; its first call, which loads the cached machine code, on its own)."""
    import importlib

    run = _job(fcs, transforms, Path(out))
    kernels: dict[str, dict] = {}
    for module_name, name in KERNELS:
        module = importlib.import_module(module_name)
        setattr(module, name, _timed_wrapper(getattr(module, name), kernels.setdefault(name, {
            "calls": 0, "cpu_s": 0.0, "first_call_cpu_s": None})))
    start = _cpu()
    run()
    return {"job_cpu_s": _cpu() - start, "kernels": kernels}


def _timed_wrapper(kernel, record: dict):
    def wrapper(*args, **kwargs):
        start = _cpu()
        try:
            return kernel(*args, **kwargs)
        finally:
            spent = _cpu() - start
            if record["first_call_cpu_s"] is None:
                record["first_call_cpu_s"] = spent
            record["calls"] += 1
            record["cpu_s"] += spent

    return wrapper


def child_profile(fcs: str, transforms: str, out: str, top: int) -> dict:
    import cProfile
    import importlib
    import pstats
    import time

    run = _job(fcs, transforms, Path(out))
    for module_name, name in KERNELS:
        module = importlib.import_module(module_name)
        setattr(module, name, _named_wrapper(getattr(module, name), name))
    profile = cProfile.Profile(time.process_time)  # CPU time: the machine may be shared
    start = _cpu()
    profile.enable()
    run()
    profile.disable()
    profiled_cpu = _cpu() - start
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, function), (_, calls, self_s, cumulative_s, _) in stats.stats.items():
        where = filename.split("site-packages/")[-1].split("/src/")[-1]
        rows.append({"function": f"{where}:{line}({function})", "calls": calls, "self_s": self_s,
                     "cumulative_s": cumulative_s})
    total = max(r["cumulative_s"] for r in rows)
    kernels = {name: next((r for r in rows if r["function"] == f"{WRAPPER_FILE}:1({name})"), None)
               for _, name in KERNELS}
    return {"profiled_cpu_s": profiled_cpu, "profiled_total_s": total,
            "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:top],
            "top_self": sorted(rows, key=lambda r: -r["self_s"])[:top],
            "kernels": {name: (None if r is None else {"calls": r["calls"], "cumulative_s": r["cumulative_s"]})
                        for name, r in kernels.items()}}


def _named_wrapper(kernel, name: str):
    """A Python function called ``name`` that calls ``kernel`` (a numba dispatcher, invisible to cProfile)."""
    def wrapper(*args, **kwargs):
        return kernel(*args, **kwargs)

    wrapper.__code__ = wrapper.__code__.replace(co_name=name, co_qualname=name, co_firstlineno=1,
                                                co_filename=WRAPPER_FILE)
    return wrapper


def startup(repeats: int) -> dict:
    """CPU of a fresh interpreter importing what the rule's script imports; import times per package."""
    command = [sys.executable, "-c", "import cytotrial.steps.process_sample, cytotrial.steps.runlog"]
    cpu = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    bare = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        bare.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    timing = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], check=True, capture_output=True,
                            text=True).stderr
    per_package: dict[str, float] = {}
    for line in timing.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:"):].split("|"))
        package = name.strip().split(".")[0]
        per_package[package] = per_package.get(package, 0.0) + int(self_us) / 1e6
    top = dict(sorted(per_package.items(), key=lambda item: -item[1])[:15])
    return {"command": " ".join(command), "import_cpu_s": min(cpu), "bare_python_cpu_s": min(bare),
            "importtime_self_s_by_package": {k: round(v, 4) for k, v in top.items()},
            "importtime_total_self_s": round(sum(per_package.values()), 4)}


def _import_cpu(module: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _child(*arguments: str) -> dict:
    return json.loads(subprocess.run([sys.executable, __file__, *arguments], check=True, capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1])


def main() -> None:
    children = {"--child-prepare": lambda a: child_prepare(int(a[0]), a[1]),
                "--child-job": lambda a: child_job(*a),
                "--child-profile": lambda a: child_profile(a[0], a[1], a[2], int(a[3]))}
    if len(sys.argv) > 1 and sys.argv[1] in children:
        print(json.dumps(children[sys.argv[1]](sys.argv[2:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cytotrial-sample-profile-") as tmp:
        prepared = _child("--child-prepare", str(args.events), tmp)
        start = startup(args.repeats)
        jobs = [_child("--child-job", prepared["fcs"], prepared["transforms"], f"{tmp}/job{i}")
                for i in range(args.repeats)]
        numba_import = min(_import_cpu("numba") for _ in range(args.repeats))
        profile = _child("--child-profile", prepared["fcs"], prepared["transforms"], f"{tmp}/profiled",
                         str(args.top))
    job_cpu = min(job["job_cpu_s"] for job in jobs)
    total = start["import_cpu_s"] + job_cpu
    scale = job_cpu / profile["profiled_total_s"]

    def share(seconds: float) -> float:
        return round(seconds * scale / total, 4)

    kernels = {}
    for _, name in KERNELS:  # the least of the runs: the machine may be shared
        calls = jobs[0]["kernels"][name]["calls"]
        cpu = min(job["kernels"][name]["cpu_s"] for job in jobs)
        first = min(job["kernels"][name]["first_call_cpu_s"] or 0.0 for job in jobs)
        kernels[name] = {"calls": calls, "cpu_s": round(cpu, 5), "first_call_cpu_s": round(first, 5),
                         "share_of_job": round(cpu / total, 4),
                         "profiled_cumulative_s": (profile["kernels"][name] or {}).get("cumulative_s")}
    for row in profile["top_cumulative"] + profile["top_self"]:
        row["cumulative_share_of_job"] = share(row["cumulative_s"])
        row["self_share_of_job"] = share(row["self_s"])
    figures = {"command": " ".join(sys.argv), "events": args.events, "threads": 1,
               "job_total_cpu_s": total, "startup": {**start, "share_of_job": round(start["import_cpu_s"] / total, 4)},
               "job_cpu_s_unprofiled": job_cpu, "profiled_cpu_s": profile["profiled_cpu_s"],
               "profile_scale_to_unprofiled": scale, "numba_import_cpu_s": numba_import,
               "compiled_kernels": kernels,
               "top_cumulative": profile["top_cumulative"], "top_self": profile["top_self"]}
    print(f"job total {total:.2f} s CPU: start-up (imports) {start['import_cpu_s']:.2f} s "
          f"({start['import_cpu_s'] / total:.0%}; bare python {start['bare_python_cpu_s']:.2f} s), "
          f"process_sample_files {job_cpu:.2f} s (profiled {profile['profiled_cpu_s']:.2f} s)")
    print("import self time by package (s):", start["importtime_self_s_by_package"])
    print(f"numba import alone (fresh python): {numba_import:.2f} s CPU")
    print("compiled kernels, unprofiled (CPU of all calls, of which the first call, which loads the cached code):")
    for name, k in kernels.items():
        print(f"  {name:<24}{k['calls']:>6} calls {k['cpu_s']:.4f} s (first {k['first_call_cpu_s']:.4f} s)  "
              f"{k['share_of_job']:.2%} of the job")
    print("top cumulative:")
    for row in profile["top_cumulative"][:25]:
        print(f"  {row['cumulative_share_of_job']:7.2%} {row['cumulative_s']:8.3f} s  {row['function']}")
    if args.result:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_record import write_result

        print(f"figures: {write_result(args.result, figures)}")


if __name__ == "__main__":
    main()
