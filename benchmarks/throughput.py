"""Per-file throughput and peak memory of the per-sample pipeline at 100k, 1M and 3M events (issue 9).

Usage: python benchmarks/throughput.py [--events N [N ...]] [--repeats N] [--out DIR] [--no-wait]

What is measured, for each size (default 100,000, 1,000,000 and 3,000,000 events), on one file of the demo trial
written by the simulator (22 parameters: FSC-A/H, SSC-A/H, 17 fluorescence detectors, Time; float32 list mode,
the $SPILLOVER of its acquisition run). The panel keeps 21 of them (4 scatter + 17 markers; Time goes to obs).
Transform parameters are fitted as the workflow does with ``transform.scope: batch`` (config/config.yaml), on the
file as a batch of one, before timing; that fit (rule fit_batch_transforms, which reads and compensates every file
of a batch once more) is printed for reference but is not part of the per-file total.

1. Per-file stages, best of --repeats (default: 10 at 100k, 3 at 1M, 2 at 3M; see default_repeats) in this
   process, each stage on the previous one's output: the library functions preprocess_fcs calls, then the
   gate_sample rule's gating and statistics (the result is checked equal to one call of ``preprocess_fcs``):
     open                 HEADER/TEXT parse, panel channels, the file's spillover (compensation.source: file),
                          the batch's transform parameters (open_compensation, transform_records)
     read+comp+transform  transform_events: blocks of 8,192 events decoded to float64, $PnE/$PnG/$TIMESTEP
                          scaling, x = y S^-1 (one matrix product a block), scatter / $PnR and 17 x logicle
                          (FastLogicle, compiled) into float32, float32
                          compensated copy; "of which" rows time decoding alone and decoding + compensation
     event QC             run_event_qc (margins, flow rate, signal; config qc settings)
     assemble             assemble_anndata: var/obs tables, AnnData, SHA-256 of the file, de-identified metadata
     gate                 apply_template(config/gating/default.yaml) with the QC-kept events as root, as
                          gate_sample
     stats                population_table + population_mfi
   total = sum of the stages; events/s = events / total. Wall time (perf_counter) is what the targets use; CPU
   time (process_time, all threads of this process) is printed too, as it is less sensitive to other jobs.
   Not included: writing/reading the .h5ad between the two rules, QC plot, review npz, event AnnData,
   GatingML/FlowJo export (per-rule wall times: results/benchmarks).
2. Peak RSS of the whole per-file pipeline (read -> stats once) in a fresh subprocess per size: VmHWM from
   /proc/self/status (the highest of the per-stage peaks), the RSS after imports, the RSS after a warm-up run of
   the whole pipeline on a 20,000-event file (the baseline: modules that are imported on first use, flowkit and
   pandas caches - memory that does not grow with the file), and for each stage the RSS before/after and the
   peak during the stage (VmHWM reset with /proc/self/clear_refs before each stage). The child's
   getrusage(RUSAGE_SELF).ru_maxrss is printed as a cross-check: it is never reset and it starts from the
   parent's high-water mark (Linux carries it over fork + exec), so these children are started before this
   process does any heavy work (simulation and batch fit run in subprocesses too); getrusage(RUSAGE_CHILDREN) is
   not used, as it would report the simulation child. Compared with the event matrix of the file: events x 22
   parameters x 4 bytes (float32, as stored in the file) and x 8 bytes (float64, what flowkit holds). Target:
   peak RSS above the baseline < 4 x the float32 event matrix (the ratio above the RSS after imports alone is
   printed too). If it fails, a tracemalloc run (largest size <= 1M that fails) lists where the memory is
   allocated and held.
3. flowkit (version printed) on the same file: fk.Sample(path) read + GatingStrategy.gate_sample of our realised
   gates exported with export_gatingml (the GatingML holds the file's spillover and our transforms, so flowkit
   compensates and transforms inside gate_sample), all events (flowkit has no event QC; memberships are checked
   against ours on the QC-kept events: equal but for at most max(3, 1e-5 x events) events a gate, events whose
   values lie within rounding of the gate's edge, as flowkit solves the spillover per event in float64 and we
   multiply by its inverse and store float32).
   Ratio flowkit / ours for read + compensate + transform + gate, against flowkit's faster configuration
   (cache_events=True, best of N; the default configuration is timed once, and not at >= 3M to keep the run
   short); target ours >= 5x faster. Note that our 'gate' places the gates from
   the data (density valleys, singlet band, mixtures) and applies them; flowkit only applies the finished ones.
4. Baseline of code other than ours (benchmarks/gating_speed.numpy_flowutils_baseline): TEXT parse, np.fromfile
   of the DATA segment, inverse-spillover matmul (plain numpy) and flowutils' logicle of the 17 markers, scatter /
   range; the ratio ours / baseline is printed (not a lower bound: flowutils' logicle is slower than our table).
5. Fixed costs of a fresh process, printed for reference: imports, and the first run of the pipeline on a small
   file against a second run (numba loads its cached kernels on first use).
6. The whole demo trial on 2 cores is not rerun here: the per-rule benchmark files are listed from
   results/benchmarks if present.

The machine may be shared: os.getloadavg() is printed at start and end, and when the 1-minute load is above 2.5
the run waits (at most 5 minutes in all, unless --no-wait) for it to fall before timing.
Simulated files are kept under --out DIR (default: a temporary directory) and reused when present.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread, as in the workflow's per-sample jobs (threads: 1; Snakemake sets these variables to the
# job's threads), so that wall time is the single-core time and the flowkit ratio compares like with like.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cytotrial.config import with_defaults

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gating_speed import numpy_flowutils_baseline  # noqa: E402  (the gating speed benchmark's baseline)

STAGES = ("open", "read+comp+transform", "event QC", "assemble", "gate", "stats")
READ_TO_TRANSFORM = ("open", "read+comp+transform")
RSS_TARGET = 4.0  # peak RSS above the baseline (imports + warm-up run) / float32 event matrix
FLOWKIT_TARGET = 5.0  # flowkit / ours, read + compensate + transform + gate
# Events a gate may put on the other side than flowkit: values within rounding of a gate's edge (our compensation
# multiplies by the spillover's inverse, flowkit solves per event; float32 storage; 6 significant digits in GatingML)
BOUNDARY_EVENTS_MIN, BOUNDARY_EVENTS_FRACTION = 3, 1e-5
LOAD_LIMIT = 2.5
MAX_WAIT_S = 300.0
MIB = 2**20
WARMUP_EVENTS = 20_000  # the memory child runs the pipeline once on a file this size before its baseline


# ---------------------------------------------------------------------------------------------------- the pipeline
def load_inputs() -> dict:
    from cytotrial.gating.template import load_template
    from cytotrial.io.panel import Panel

    config = with_defaults(REPO / "config" / "config.yaml")  # the demo's settings over the defaults
    settings = {key: config.get(key) or {} for key in ("compensation", "transform", "qc", "deidentification")}
    return {"settings": settings, "panel": Panel.from_yaml(REPO / "config" / "panel.yaml"),
            "template": load_template(REPO / "config" / "gating" / "default.yaml")}


def pipeline_stages(fcs: str, inputs: dict, batch: dict, study_day: int = 28):
    """The per-file pipeline as a list of (stage name, function of the state dict): the library functions that
    ``preprocess_fcs`` calls, one per stage, then the gate_sample rule's gating and statistics."""
    from cytotrial.gating.engine import apply_template
    from cytotrial.preprocess.events import assemble_anndata, open_compensation, transform_events, transform_records
    from cytotrial.preprocess.qc import QcSettings, run_event_qc
    from cytotrial.quantify import population_mfi, population_table
    import pandas as pd

    settings, panel, template = inputs["settings"], inputs["panel"], inputs["template"]

    def open_file(s):
        s["fcs"], s["located"], s["matrix"] = open_compensation(fcs, panel, settings["compensation"])
        s["records"] = transform_records(s["fcs"], s["located"], s["matrix"], panel, transform=settings["transform"],
                                         batch_parameters=batch["markers"])

    def blocks(s):
        s["events"] = transform_events(s["fcs"], s["located"], s["matrix"], s["records"])

    def event_qc(s):
        s["var"] = var = pd.DataFrame(s.pop("records")).set_index("channel", drop=False)
        var.index.name = None
        located, events = s["located"], s["events"]
        s["qc"] = run_event_qc(events.time_s, events.transformed, located.channels, np.array(located.ranges),
                               fluorescence_idx=var["kind"].to_numpy() == "fluorescence",
                               settings=QcSettings.from_dict(settings["qc"]), linear=events.compensated)

    def assemble(s):
        s["adata"] = assemble_anndata(s.pop("events"), s.pop("qc"), s.pop("var"), s.pop("fcs"), matrix=s.pop("matrix"),
                                      sample_id="bench", study_day=study_day, settings=settings, scope="batch")
        del s["located"]

    def gate(s):
        adata = s["adata"]
        s["n"], s["keep"] = adata.n_obs, adata.obs["qc_keep"].to_numpy()
        s["n_kept"] = int(s["keep"].sum())
        s["result"] = apply_template(adata, template, root=s["keep"])  # as gate_sample: QC-kept events as root

    def stats(s):
        s["populations"] = population_table(s["result"], "bench")
        s["mfi"] = population_mfi(s["result"], s["adata"], "bench")

    return list(zip(STAGES, (open_file, blocks, event_qc, assemble, gate, stats), strict=True))


def time_block_parts(fcs: str, inputs: dict, repeats: int) -> dict:
    """Where the block stage's time goes: decoding the blocks alone, and decoding + compensating them."""
    from cytotrial.preprocess.events import iter_compensated, open_compensation

    best = {"read": np.inf, "read+compensate": np.inf}
    for _ in range(repeats):
        fcs_blocks, located, matrix = open_compensation(fcs, inputs["panel"], inputs["settings"]["compensation"])
        start = time.perf_counter()
        for _ in fcs_blocks:
            pass
        best["read"] = min(best["read"], time.perf_counter() - start)
        start = time.perf_counter()
        for _ in iter_compensated(fcs_blocks, located, matrix):
            pass
        best["read+compensate"] = min(best["read+compensate"], time.perf_counter() - start)
    return best


def time_pipeline(fcs: str, inputs: dict, batch: dict, repeats: int) -> tuple[dict, dict]:
    """Best time of every stage over ``repeats`` runs of the whole chain; the last run's state."""
    best = dict.fromkeys([*STAGES, *(f"{s} cpu" for s in STAGES)], np.inf)
    state: dict = {}
    for _ in range(repeats):
        state = {}
        gc.collect()
        for name, fn in pipeline_stages(fcs, inputs, batch):
            start, cpu = time.perf_counter(), time.process_time()
            fn(state)
            best[name] = min(best[name], time.perf_counter() - start)
            best[f"{name} cpu"] = min(best[f"{name} cpu"], time.process_time() - cpu)
    return best, state


# ------------------------------------------------------------------------------------------- memory (subprocess)
def proc_status(*keys: str) -> dict[str, float]:
    """Fields of /proc/self/status in MiB."""
    out = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def child_rss(fcs: str, batch_json: str, warmup_fcs: str) -> dict:
    """One run of the pipeline; RSS after imports, after a warm-up run, per stage (before, peak during, after)
    and at the end."""
    import anndata  # noqa: F401 - every import the pipeline needs, before the baseline
    import flowkit  # noqa: F401

    inputs = load_inputs()
    batch = json.loads(Path(batch_json).read_text())
    gc.collect()
    cold = proc_status("VmRSS")["VmRSS"]
    warm_state: dict = {}
    for _, fn in pipeline_stages(warmup_fcs, inputs, batch):  # modules imported on first use, caches
        fn(warm_state)
    del warm_state
    stages = pipeline_stages(fcs, inputs, batch)
    gc.collect()
    baseline = proc_status("VmRSS")["VmRSS"]
    state: dict = {}
    per_stage, resettable = [], True
    for name, fn in stages:
        before = proc_status("VmRSS")["VmRSS"]
        resettable = reset_peak() and resettable
        fn(state)
        after = proc_status("VmRSS", "VmHWM")
        per_stage.append({"stage": name, "before": before, "peak": after["VmHWM"], "after": after["VmRSS"]})
    end = proc_status("VmRSS", "VmHWM")
    peak = max([end["VmHWM"], *(r["peak"] for r in per_stage)]) if resettable else end["VmHWM"]
    return {"cold": cold, "baseline": baseline, "peak": peak, "end": end["VmRSS"], "stages": per_stage,
            "resettable": resettable, "n_events": state["n"],
            "ru_maxrss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_startup(fcs: str, batch_json: str) -> dict:
    """Fixed costs of a fresh process, which the per-file figures (best of N in a warm process) leave out: importing
    the pipeline's modules, then the first run of the whole pipeline on a small file minus a second run of it (numba
    loading its cached machine code, modules imported on first use)."""
    start = time.perf_counter()
    import anndata  # noqa: F401
    import flowkit  # noqa: F401
    import numba  # noqa: F401

    from cytotrial.gating.engine import apply_template  # noqa: F401
    from cytotrial.preprocess.events import transform_events  # noqa: F401
    imports = time.perf_counter() - start
    inputs = load_inputs()
    batch = json.loads(Path(batch_json).read_text())
    runs = []
    for _ in range(2):
        state: dict = {}
        start = time.perf_counter()
        for _, fn in pipeline_stages(fcs, inputs, batch):
            fn(state)
        runs.append(time.perf_counter() - start)
    return {"imports": imports, "first": runs[0], "second": runs[1]}


def child_trace(fcs: str, batch_json: str, top: int = 4) -> dict:
    """tracemalloc (numpy data buffers included) per stage: peak during it, held after it, and the biggest
    allocation sites held after it and alive at its peak."""
    import tracemalloc

    inputs = load_inputs()
    batch = json.loads(Path(batch_json).read_text())
    stages = pipeline_stages(fcs, inputs, batch)
    gc.collect()
    tracemalloc.start(1)
    state: dict = {}
    out = []
    for name, fn in stages:
        start_current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn(state)
        current, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        sites = [{"site": _site(s.traceback[0].filename, s.traceback[0].lineno), "mib": s.size / MIB}
                 for s in snapshot.statistics("lineno")[:top]]
        out.append({"stage": name, "start": start_current / MIB, "peak": peak / MIB, "held": current / MIB,
                    "sites": sites})
    tracemalloc.stop()
    return {"stages": out}


def _site(filename: str, lineno: int) -> str:
    """file:line [the line's code], the file relative to src/ or site-packages/."""
    import linecache

    short = filename
    for marker in ("site-packages/", "src/", "benchmarks/"):
        if marker in filename:
            short = filename.split(marker, 1)[1]
            break
    code = linecache.getline(filename, lineno).strip()
    return f"{short}:{lineno} [{code[:48]}{'...' if len(code) > 48 else ''}]"


def run_child(kind: str, *args: str) -> dict:
    """Run ``throughput.py --child-<kind> args...`` in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, __file__, f"--child-{kind}", *args], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------ flowkit
def time_flowkit(fcs: str, state: dict, repeats: int, tmp: Path, default_config: bool = True) -> dict:
    import flowkit as fk

    from cytotrial.gating.gatingml_export import export_gatingml
    from cytotrial.quantify import realised_gates

    adata, result, keep = state["adata"], state["result"], state["keep"]
    gml = tmp / f"gates_{adata.n_obs}.xml"
    ids = export_gatingml(realised_gates(result, adata), adata.var, adata.uns["spillover"], gml)
    strategy = fk.parse_gating_xml(str(gml))
    best = {"read": np.inf, "gate": np.nan, "gate_cached": np.inf, "read cpu": np.inf, "gate_cached cpu": np.inf}
    sample = fk_result = None
    for repeat in range(repeats):
        sample = None
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        sample = fk.Sample(fcs)
        best["read"] = min(best["read"], time.perf_counter() - start)
        best["read cpu"] = min(best["read cpu"], time.process_time() - cpu)
        if repeat == 0 and default_config:  # the slower default configuration: timed once (not at 3M: run time)
            start = time.perf_counter()
            strategy.gate_sample(sample)
            best["gate"] = time.perf_counter() - start
            strategy.clear_cache()
        start, cpu = time.perf_counter(), time.process_time()
        fk_result = strategy.gate_sample(sample, cache_events=True)
        best["gate_cached"] = min(best["gate_cached"], time.perf_counter() - start)
        best["gate_cached cpu"] = min(best["gate_cached cpu"], time.process_time() - cpu)
        strategy.clear_cache()
    differ = {name: int(np.count_nonzero(fk_result.get_gate_membership(gate_id)[keep] != result.masks[name][keep]))
              for name, gate_id in ids.items()}
    worst = max(differ, key=lambda n: differ[n] / max(1, int(result.masks[n].sum())))
    best.update(version=fk.__version__, gates=len(ids), differing=sum(v > 0 for v in differ.values()),
                worst=worst, worst_events=differ[worst],
                worst_fraction=differ[worst] / max(1, int(result.masks[worst].sum())))
    return best


def time_bound(fcs: str, adata, repeats: int) -> dict:
    var = adata.var
    scatter = [c for c in var.channel if var.loc[c, "kind"] == "scatter"]
    fluorescence = {c: var.loc[c].to_dict() for c in var.channel if var.loc[c, "kind"] == "fluorescence"}
    parts: dict = {}
    best, best_cpu, bound = np.inf, np.inf, None
    for _ in range(repeats):
        bound = None
        start, cpu = time.perf_counter(), time.process_time()
        bound = numpy_flowutils_baseline(fcs, fluorescence, scatter, parts)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    difference = float(np.max(np.abs(bound - adata[:, [*scatter, *fluorescence]].X)))
    return {"total": best, "total cpu": best_cpu, "before_logicle": parts["read_compensate_s"],
            "logicle": parts["logicle_s"],
            "difference": difference}


# ----------------------------------------------------------------------------------------------------- helpers
def simulate(events: int, out: Path) -> tuple[str, float | None]:
    """The file of ``events`` events under ``out`` (simulated once, reused afterwards) and the seconds it took."""
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import SimulationSettings, trial_design

    patients, samples = trial_design(str(out / f"fcs{events}"), patients_per_cohort=1, visits=["W4"])
    patients, samples = patients.iloc[:1], samples.iloc[:1]
    fcs = str(samples.fcs.iloc[0])
    if Path(fcs).is_file():
        return fcs, None
    start = time.perf_counter()
    simulate_trial(patients, samples, out / f"out{events}", SimulationSettings(events_per_sample=events))
    return fcs, time.perf_counter() - start


class LoadGate:
    """Wait for the 1-minute load to fall to LOAD_LIMIT, at most MAX_WAIT_S seconds over the whole run."""

    def __init__(self, enabled: bool):
        self.enabled, self.waited = enabled, 0.0

    def __call__(self, what: str) -> None:
        load = os.getloadavg()[0]
        if not self.enabled or load <= LOAD_LIMIT:
            return
        start = time.monotonic()
        while load > LOAD_LIMIT and self.waited + time.monotonic() - start < MAX_WAIT_S:
            time.sleep(5)
            load = os.getloadavg()[0]
        spent = time.monotonic() - start
        self.waited += spent
        state = "fell to" if load <= LOAD_LIMIT else "is still"
        print(f"  [waited {spent:.0f} s before {what}: 1-min load {state} {load:.2f}; "
              f"{self.waited:.0f} s of {MAX_WAIT_S:.0f} s waiting budget used]", flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_events(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def print_benchmark_files() -> None:
    root = REPO / "results" / "benchmarks"
    print(f"\nWhole demo trial (2 cores): not rerun here; per-rule benchmark files are in {root}")
    if not root.is_dir():
        print("  (none yet)")
        return
    import pandas as pd

    for entry in sorted(root.iterdir()):
        files = sorted(entry.glob("*.tsv")) if entry.is_dir() else [entry]
        if not files:
            continue
        table = pd.concat([pd.read_csv(f, sep="\t") for f in files], ignore_index=True)
        newest = time.strftime("%Y-%m-%d %H:%M", time.localtime(max(f.stat().st_mtime for f in files)))
        print(f"  {entry.name:<28} {len(files):>3} file(s), sum {table['s'].sum():8.1f} s, "
              f"max {table['s'].max():7.1f} s, max_rss {table['max_rss'].max():7.0f} MiB  (newest {newest})")


# -------------------------------------------------------------------------------------------------------- main
def child_prepare(events: int, out: str, tmp: str) -> dict:
    """Simulate the file if it is not there yet and fit its batch transforms (a subprocess: this one stays small)."""
    from cytotrial.preprocess.events import fit_batch_transforms
    from gating_speed import read_text

    fcs, sim_s = simulate(events, Path(out))
    inputs = load_inputs()
    settings = inputs["settings"]
    start = time.perf_counter()
    batch = fit_batch_transforms([fcs], inputs["panel"], settings["compensation"], settings["transform"],
                                 matrix_path=None,
                                 max_events_per_file=int(settings["transform"].get("max_events_per_file", 50_000)))
    fit_s = time.perf_counter() - start
    batch_json = Path(tmp) / f"batch{events}.json"
    batch_json.write_text(json.dumps(batch))
    return {"events": events, "fcs": fcs, "sim_s": sim_s, "fit_s": fit_s, "batch_json": str(batch_json),
            "n_par": int(read_text(fcs)[0]["$PAR"])}


def default_repeats(events: int) -> int:
    """Best of how many runs, by default: about three million events' worth, between 2 and 10 (10 at 100k, 3 at
    1M, 2 at 3M). Single runs of the same stage on this kind of machine (a 2-CPU VM) vary by up to 1.6x, also
    within one process, so small files, whose runs are short, are timed more often to find their undisturbed
    time."""
    return max(2, min(10, round(3_000_000 / events)))


def time_size(prepared: dict, repeats: int, load_gate: LoadGate, tmp: Path) -> dict:
    """Stage times, the check against preprocess_fcs, flowkit and the numpy + flowutils baseline, in this process."""
    from cytotrial.preprocess.events import preprocess_fcs

    events, fcs = prepared["events"], prepared["fcs"]
    inputs = load_inputs()
    batch = json.loads(Path(prepared["batch_json"]).read_text())
    load_gate(f"timing {fmt_events(events)}")
    load_start = os.getloadavg()[0]
    stage_s, state = time_pipeline(fcs, inputs, batch, repeats)
    stage_s.update(time_block_parts(fcs, inputs, repeats))
    adata = state["adata"]
    same = None  # the staged code does not depend on the size: checked against preprocess_fcs up to 1M events
    if events <= 1_000_000:
        check, _ = preprocess_fcs(fcs, "bench", inputs["panel"], inputs["settings"], study_day=28,
                                  batch_transforms=batch)
        same = bool(np.array_equal(check.X, adata.X)
                    and np.array_equal(check.layers["compensated"], adata.layers["compensated"])
                    and np.array_equal(check.obs["qc_keep"].to_numpy(), state["keep"]))
        del check
    fk = time_flowkit(fcs, state, repeats, tmp, default_config=events < 3_000_000)
    bound = time_bound(fcs, adata, repeats)
    n, n_kept, n_pops = state["n"], state["n_kept"], len(state["result"].gates)
    del state, adata
    gc.collect()
    return {**prepared, "n": n, "n_kept": n_kept, "n_pops": n_pops, "stages": stage_s, "same": same,
            "flowkit": fk, "bound": bound, "repeats": repeats, "load": (load_start, os.getloadavg()[0])}


def report(results: list[dict]) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    sizes = [fmt_events(r["events"]) for r in results]
    col = "".join(f"{s:>12}" for s in sizes)

    print("\n1. Per-file time of each stage (s, best of N in one process; see the docstring for what each covers)")
    print(f"  {'events':<34}{col}")
    print(f"  {'repeats (best of)':<34}" + "".join(f"{r['repeats']:>12}" for r in results))
    print(f"  {'1-min load at start / end':<34}" + "".join(f"{r['load'][0]:>6.1f}/{r['load'][1]:<5.1f}"
                                                           for r in results))
    for stage in STAGES:
        print(f"  {stage:<34}" + "".join(f"{r['stages'][stage]:>12.3f}" for r in results))
        if stage == "read+comp+transform":
            parts = {"decoding the blocks": lambda t: t["read"],
                     "compensation": lambda t: t["read+compensate"] - t["read"],
                     "transforms, float32": lambda t: t[stage] - t["read+compensate"]}
            for label, seconds in parts.items():
                print(f"  {'  of which ' + label:<34}" + "".join(f"{seconds(r['stages']):>12.3f}" for r in results))
    totals = [sum(r["stages"][s] for s in STAGES) for r in results]
    print(f"  {'total':<34}" + "".join(f"{t:>12.3f}" for t in totals))
    print(f"  {'events/s (M)':<34}" + "".join(f"{r['n'] / t / 1e6:>12.3f}" for r, t in zip(results, totals)))
    print(f"  {'read..transform (s)':<34}"
          + "".join(f"{sum(r['stages'][s] for s in READ_TO_TRANSFORM):>12.3f}" for r in results))
    print(f"  {'CPU s (process_time): total':<34}"
          + "".join(f"{sum(r['stages'][s + ' cpu'] for s in STAGES):>12.3f}" for r in results))
    print(f"  {'CPU s: read..transform':<34}"
          + "".join(f"{sum(r['stages'][s + ' cpu'] for s in READ_TO_TRANSFORM):>12.3f}" for r in results))
    print(f"  {'events in the file':<34}" + "".join(f"{r['n']:>12}" for r in results))
    print(f"  {'events kept by QC / populations':<34}"
          + "".join(f"{r['n_kept']:>9}/{r['n_pops']:<2}" for r in results))
    print(f"  {'staged result == preprocess_fcs':<34}"
          + "".join(f"{'not run' if r['same'] is None else str(r['same']):>12}" for r in results))
    print(f"  {'(not in total) fit_batch_transforms':<34}" + "".join(f"{r['fit_s']:>12.3f}" for r in results))
    print(f"  {'(not in total) simulation':<34}"
          + "".join(f"{'reused' if r['sim_s'] is None else format(r['sim_s'], '.1f'):>12}" for r in results))

    print("\n2. Peak RSS of the per-file pipeline (read -> stats once, fresh subprocess per size), MiB")
    print(f"  {'events x parameters (file)':<34}"
          + "".join(f"{format(r['n'] / 1e6, '.3f') + 'M x' + str(r['n_par']):>12}" for r in results))
    m32 = [r["n"] * r["n_par"] * 4 / MIB for r in results]
    m64 = [r["n"] * r["n_par"] * 8 / MIB for r in results]
    print(f"  {'event matrix float32 (file)':<34}" + "".join(f"{m:>12.0f}" for m in m32))
    print(f"  {'event matrix float64 (reader)':<34}" + "".join(f"{m:>12.0f}" for m in m64))
    print(f"  {'RSS after imports':<34}" + "".join(f"{r['rss']['cold']:>12.0f}" for r in results))
    print(f"  {'+ warm-up run (baseline)':<34}" + "".join(f"{r['rss']['baseline']:>12.0f}" for r in results))
    print(f"  {'peak RSS (VmHWM)':<34}" + "".join(f"{r['rss']['peak']:>12.0f}" for r in results))
    above = [r["rss"]["peak"] - r["rss"]["baseline"] for r in results]
    print(f"  {'peak - baseline':<34}" + "".join(f"{a:>12.0f}" for a in above))
    print(f"  {'peak / float32 matrix':<34}" + "".join(f"{r['rss']['peak'] / m:>12.2f}" for r, m in zip(results, m32)))
    print(f"  {'(peak - baseline) / float32':<34}" + "".join(f"{a / m:>12.2f}" for a, m in zip(above, m32)))
    print(f"  {'(peak - baseline) / float64':<34}" + "".join(f"{a / m:>12.2f}" for a, m in zip(above, m64)))
    print(f"  {'(peak - RSS after imports) / f32':<34}"
          + "".join(f"{(r['rss']['peak'] - r['rss']['cold']) / m:>12.2f}" for r, m in zip(results, m32)))
    print(f"  {'RSS at the end (all results held)':<34}" + "".join(f"{r['rss']['end']:>12.0f}" for r in results))
    print(f"  {'cross-check: child ru_maxrss':<34}" + "".join(f"{r['rss']['ru_maxrss_self']:>12.0f}" for r in results))
    if not all(r["rss"]["resettable"] for r in results):
        print("  (/proc/self/clear_refs not writable: per-stage peaks are cumulative)")
    print("  per stage: RSS before -> peak during -> after (MiB; peak reset before each stage)")
    for stage in STAGES:
        cells = []
        for r in results:
            row = next(x for x in r["rss"]["stages"] if x["stage"] == stage)
            cells.append(f"{row['before']:.0f}>{row['peak']:.0f}>{row['after']:.0f}")
        print(f"  {'  ' + stage:<34}" + "".join(f"{c:>20}" for c in cells))

    print("\n3. flowkit side by side (same file, our realised gates as GatingML; s, best of N)")
    v = results[0]["flowkit"]["version"]
    ours = [sum(r["stages"][s] for s in (*READ_TO_TRANSFORM, "gate")) for r in results]
    print(f"  {'ours read+comp+transform+gate':<34}" + "".join(f"{o:>12.3f}" for o in ours))
    print(f"  {'flowkit ' + v + ' fk.Sample(path)':<34}" + "".join(f"{r['flowkit']['read']:>12.3f}" for r in results))
    print(f"  {'flowkit gate_sample (default, 1x)':<34}" + "".join(f"{r['flowkit']['gate']:>12.3f}" for r in results))
    print(f"  {'flowkit gate_sample cache_events':<34}"
          + "".join(f"{r['flowkit']['gate_cached']:>12.3f}" for r in results))
    fk_best = [r["flowkit"]["read"] + np.nanmin([r["flowkit"]["gate"], r["flowkit"]["gate_cached"]]) for r in results]
    fk_default = [r["flowkit"]["read"] + r["flowkit"]["gate"] for r in results]
    print(f"  {'flowkit total (faster config)':<34}" + "".join(f"{t:>12.3f}" for t in fk_best))
    print(f"  {'ratio flowkit / ours (faster)':<34}" + "".join(f"{f / o:>12.2f}" for f, o in zip(fk_best, ours)))
    ours_cpu = [sum(r["stages"][s + " cpu"] for s in (*READ_TO_TRANSFORM, "gate")) for r in results]
    fk_cpu = [r["flowkit"]["read cpu"] + r["flowkit"]["gate_cached cpu"] for r in results]
    print(f"  {'ratio, CPU time (cache_events)':<34}" + "".join(f"{f / o:>12.2f}" for f, o in zip(fk_cpu, ours_cpu)))
    print(f"  {'ratio flowkit / ours (default)':<34}" + "".join(f"{f / o:>12.2f}" for f, o in zip(fk_default, ours))
          + ("   (nan: default config not run at >= 3M)" if any(np.isnan(f) for f in fk_default) else ""))
    print(f"  {'gates exported / differing':<34}"
          + "".join(f"{r['flowkit']['gates']:>9}/{r['flowkit']['differing']:<2}" for r in results))
    print(f"  {'most differing gate (events, %)':<34}"
          + "".join(f"  {r['flowkit']['worst']}:{r['flowkit']['worst_events']} ({r['flowkit']['worst_fraction']:.3%})"
                    for r in results))

    print("\n4. baseline: numpy read (fromfile) + inverse-spillover matmul + flowutils logicle, s, best of N")
    print(f"  {'baseline total':<34}" + "".join(f"{r['bound']['total']:>12.3f}" for r in results))
    print(f"  {'  of which read + compensate':<34}"
          + "".join(f"{r['bound']['before_logicle']:>12.3f}" for r in results))
    print(f"  {'  of which logicle (17 channels)':<34}" + "".join(f"{r['bound']['logicle']:>12.3f}" for r in results))
    rt = [sum(r["stages"][s] for s in READ_TO_TRANSFORM) for r in results]
    print(f"  {'ours read..transform':<34}" + "".join(f"{t:>12.3f}" for t in rt))
    print(f"  {'ratio ours / baseline':<34}" + "".join(f"{t / r['bound']['total']:>12.2f}" for t, r in zip(rt, results)))
    rt_cpu = [sum(r["stages"][s + " cpu"] for s in READ_TO_TRANSFORM) for r in results]
    print(f"  {'ratio, CPU time':<34}"
          + "".join(f"{t / r['bound']['total cpu']:>12.2f}" for t, r in zip(rt_cpu, results)))
    print(f"  {'max |baseline - ours| (gating units)':<34}"
          + "".join(f"{r['bound']['difference']:>12.2g}" for r in results))

    for r, m, a, o, f, t, oc, fc, tc in zip(results, m32, above, ours, fk_best, rt, ours_cpu, fk_cpu, rt_cpu):
        size = fmt_events(r["events"])
        checks.append((f"{size}: peak RSS above baseline {a:.0f} MiB < {RSS_TARGET:g} x float32 matrix "
                       f"({RSS_TARGET * m:.0f} MiB)  [{a / m:.2f}x]", a < RSS_TARGET * m))
        checks.append((f"{size}: ours >= {FLOWKIT_TARGET:g}x faster than flowkit (read+comp+transform+gate)  "
                       f"[{f / o:.2f}x; CPU time {fc / oc:.2f}x]", f / o >= FLOWKIT_TARGET))
        limit = max(BOUNDARY_EVENTS_MIN, int(BOUNDARY_EVENTS_FRACTION * r["n"]))
        checks.append((f"{size}: staged pipeline equals preprocess_fcs"
                       f"{'' if r['same'] is not None else ' (checked up to 1M)'}; flowkit memberships equal ours but "
                       f"for <= {limit} boundary events a gate  [most: {r['flowkit']['worst_events']}]",
                       r["same"] is not False and r["flowkit"]["worst_events"] <= limit))
    return checks


def print_trace(events: int, trace: dict) -> None:
    print(f"\nMemory profile (tracemalloc, numpy buffers included) of the {fmt_events(events)}-event run, MiB:")
    print(f"  {'stage':<12}{'start':>8}{'peak':>8}{'held':>8}   biggest allocation sites held after the stage (MiB)")
    for row in trace["stages"]:
        sites = [s for s in row["sites"] if s["mib"] >= 1]
        print(f"  {row['stage']:<12}{row['start']:>8.0f}{row['peak']:>8.0f}{row['held']:>8.0f}"
              + "".join(f"\n{'':<40}{s['mib']:>5.0f}  {s['site']}" for s in sites))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        kind, rest = sys.argv[1][len("--child-"):], sys.argv[2:]
        if kind == "prepare":
            result = child_prepare(int(rest[0]), rest[1], rest[2])
        else:
            result = {"rss": child_rss, "trace": child_trace, "startup": child_startup}[kind](*rest)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--repeats", type=int, default=None,
                        help="best of N (default: 10 at 100k, 3 at 1M, 2 at 3M)")
    parser.add_argument("--out", type=Path, default=None, help="keep / reuse the simulated files here")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the load to fall")
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    parser.add_argument("--trace", choices=("auto", "always", "never"), default="auto",
                        help="tracemalloc profile: when the RSS target fails (auto), always or never")
    args = parser.parse_args()

    wall = time.perf_counter()
    import flowkit

    print(f"throughput benchmark: {os.cpu_count()} CPUs, numpy {np.__version__}, flowkit {flowkit.__version__}, "
          f"python {sys.version.split()[0]}")
    print(f"os.getloadavg() at start: {tuple(round(x, 2) for x in os.getloadavg())}", flush=True)
    load_gate = LoadGate(not args.no_wait)

    def elapsed() -> str:
        return f"({time.perf_counter() - wall:.0f} s elapsed)"

    with tempfile.TemporaryDirectory(prefix="cytotrial-throughput-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        # Simulation, batch fit and the memory runs in subprocesses first, while this process is small: a child's
        # ru_maxrss starts from its parent's high-water mark (fork + exec), its VmHWM does not.
        warmup = run_child("prepare", str(WARMUP_EVENTS), str(out), scratch)
        prepared = []
        for events in args.events:
            prepared.append(run_child("prepare", str(events), str(out), scratch))
            print(f"  {fmt_events(events)}: file ready {elapsed()}", flush=True)
        startup = run_child("startup", warmup["fcs"], warmup["batch_json"])
        for p in prepared:
            p["rss"] = run_child("rss", p["fcs"], p["batch_json"], warmup["fcs"])
            print(f"  {fmt_events(p['events'])}: peak RSS measured {elapsed()}", flush=True)
        failing = [p for p in prepared if p["rss"]["peak"] - p["rss"]["baseline"]
                   >= RSS_TARGET * p["rss"]["n_events"] * p["n_par"] * 4 / MIB]
        trace = None
        if args.trace == "always" or (args.trace == "auto" and failing):
            candidates = [p for p in (failing or prepared) if p["events"] <= 1_000_000] or (failing or prepared)
            target = max(candidates, key=lambda p: p["events"])
            trace = (target["events"], run_child("trace", target["fcs"], target["batch_json"]))
            print(f"  {fmt_events(target['events'])}: memory profile done {elapsed()}", flush=True)
        results = []
        for p in prepared:
            repeats = args.repeats or default_repeats(p["events"])
            results.append(time_size(p, repeats, load_gate, Path(scratch)))
            print(f"  {fmt_events(p['events'])}: timed {elapsed()}", flush=True)
        checks = report(results)
        if trace is not None:
            print_trace(*trace)
    print(f"\n5. Fixed costs of a fresh process (each workflow job pays them once; not in the figures above): "
          f"imports {startup['imports']:.2f} s (anndata, flowkit, numba, cytotrial); first run of the pipeline on a "
          f"{fmt_events(WARMUP_EVENTS)}-event file {startup['first']:.2f} s vs {startup['second']:.2f} s for the "
          f"second (numba loads its cached kernels on first use)")
    print_benchmark_files()
    print("\nTargets:")
    for text, ok in checks:
        print(f"  {verdict(ok)}  {text}")
    print(f"\nos.getloadavg() at end: {tuple(round(x, 2) for x in os.getloadavg())}; "
          f"waited {load_gate.waited:.0f} s for the load; wall time {time.perf_counter() - wall:.0f} s")
    if args.result:
        from results_record import write_result

        sizes = [{k: v for k, v in r.items() if k not in ("fcs", "batch_json")} for r in results]
        path = write_result(args.result, {"command": " ".join(sys.argv), "sizes": sizes, "startup": startup,
                                          "targets": [{"check": text, "met": bool(ok)} for text, ok in checks]})
        print(f"figures: {path}")


if __name__ == "__main__":
    main()
