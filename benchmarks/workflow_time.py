"""The analysis workflow end to end on a simulated trial: wall time, CPU, jobs, CPU per rule, start-up share (issue 18).

Usage: python benchmarks/workflow_time.py [--files N] [--events N] [--cores N] [--trial DIR] [--workflow REPO]
                                          [--keep-tables DIR] [--name NAME] [--label TEXT] [--no-record]

1. Simulation, outside the timing: the demo trial's design (18 patients x 7 visits = 126 files; --files N takes the
   first N files of it, patient by patient; more than 126 adds patients cohort by cohort) with the demo's simulation
   settings (workflow/schemas/defaults.yaml, demo:) and --events events per file (patients beyond the demo's 18
   get the platelet counts of a demo patient), written once under --trial DIR
   (default: $TMPDIR/cytotrial_workflow_time/<files>x<events>) and reused by later runs.
2. The analysis: a fresh project folder (temporary) whose config is the demo's (config/config.yaml) with the
   simulated trial's sample sheet, patient table and clinical tables and ``demo.enabled: false``, so that
   ``snakemake --cores N`` runs every rule but the simulation. --workflow REPO runs another checkout's Snakefile
   with its ``src`` first on PYTHONPATH (e.g. the code before a change, for a before/after comparison on the same
   trial).
3. Printed and recorded (benchmarks/results/<name>.json, with commit, machine and date; --no-record leaves it):
   wall time of the snakemake run; total CPU, user + system of every process it started
   (getrusage(RUSAGE_CHILDREN)); the number of jobs per rule (snakemake's job table); per rule the jobs' wall time
   and CPU (results/benchmarks/, snakemake's ``benchmark:`` files, cpu_time; rules without one are counted in the
   remainder); and the start-up cost of a job of each rule: the CPU of a fresh ``python`` that imports what the
   rule's script imports plus snakemake's script preamble (one run each), times the rule's jobs, as a share of
   the run's CPU. When the rule scripts log their own start-up and CPU (cytotrial.steps.runlog: "start-up: ... s CPU" and
   "done: ... s CPU" lines), these are read from the logs as well: the start-up a job measured (its CPU before
   the script's first statement after the imports) and the rule's CPU summed over its jobs (more exact than the
   benchmark files, which sample a job's CPU once a second and miss its last second).
   The load average is printed at start and end and recorded: the machine may be shared, so figures taken under
   load are slower than the machine can do.
--keep-tables DIR copies results/tables there, to compare two runs byte for byte (``cmp``/sha256).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from results_record import git_commit, write_result  # noqa: E402

DEMO_FILES = 126
LOOP_RULES = ("process_samples", "review_gates")  # the workflow defines these in loops, one rule a job


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=DEMO_FILES, help="FCS files of the trial (default 126)")
    parser.add_argument("--events", type=int, default=200_000, help="events per file (default 200000)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--trial", help="folder of the simulated trial (written when absent, else reused)")
    parser.add_argument("--workflow", default=str(REPO), help="repository whose workflow and src run (default: this)")
    parser.add_argument("--keep-tables", help="copy results/tables to this folder")
    parser.add_argument("--keep-project", help="run in this project folder and keep it (default: temporary)")
    parser.add_argument("--name", help="result name (default workflow_time_<files>x<events>_<cores>cores)")
    parser.add_argument("--label", default="", help="free text recorded with the figures (e.g. 'before #18')")
    parser.add_argument("--no-record", action="store_true", help="print only; write no benchmarks/results file")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# the trial


def trial_tables(files: int, fcs_dir: str):
    """Patients and samples of an N-file trial of the demo's design (see the module docstring)."""
    import pandas as pd

    from cytotrial.simulate.trial import COHORTS, ENROLMENT_INTERVAL_DAYS, VISIT_DAYS, trial_design

    patients, samples = trial_design(fcs_dir)
    per_patient = len(VISIT_DAYS)
    extra = -(-max(0, files - len(samples)) // per_patient)
    if extra:  # more patients: the cohorts repeated, enrolled after the demo's
        cohorts = [(cohort, dose) for cohort, dose, n, _ in COHORTS for _ in range(n)]
        rows, sample_rows = [], []
        for k in range(extra):
            number = len(patients) + k + 1
            cohort, dose = cohorts[k % len(cohorts)]
            enrolment = (number - 1) * ENROLMENT_INTERVAL_DAYS
            pid = f"P{number:02d}"
            rows.append({"patient_id": pid, "cohort": cohort, "dose_1e6_per_kg": dose, "enrolment_day": enrolment})
            for visit, day in VISIT_DAYS.items():
                sample_rows.append({"sample_id": f"{pid}_{visit}", "patient_id": pid, "visit": visit,
                                    "study_day": day, "batch": f"run{(enrolment + day + 1) // 7:03d}",
                                    "fcs": f"{fcs_dir}/{pid}_{visit}.fcs"})
        patients = pd.concat([patients, pd.DataFrame(rows)], ignore_index=True)
        samples = pd.concat([samples, pd.DataFrame(sample_rows)], ignore_index=True)
    samples = samples.iloc[:files].reset_index(drop=True)
    patients = patients[patients.patient_id.isin(samples.patient_id)].reset_index(drop=True)
    return patients, samples


def simulate(trial: Path, files: int, events: int, workers: int) -> float:
    """Write the trial under ``trial`` unless it is there; returns the seconds it took (0 when reused)."""
    if (trial / "done").exists():
        return 0.0
    from cytotrial.io.tables import write_tsv
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import SimulationSettings

    demo = yaml.safe_load((REPO / "workflow/schemas/defaults.yaml").read_text())["demo"]
    settings = SimulationSettings(**{k: v for k, v in demo.items() if k not in ("enabled", "output_dir")
                                     and k != "events_per_sample"}, events_per_sample=events)
    patients, samples = trial_tables(files, str(trial / "fcs"))
    trial.mkdir(parents=True, exist_ok=True)
    write_tsv(patients, trial / "patients.tsv")
    write_tsv(samples, trial / "samples.tsv")
    start = time.perf_counter()
    simulate_trial(patients, samples, trial, settings, workers=workers)
    add_platelets_of_extra_patients(trial / "clinical/platelets.tsv", patients)
    (trial / "done").write_text("")
    return time.perf_counter() - start


def add_platelets_of_extra_patients(path: Path, patients) -> None:
    """The simulator draws platelet counts for the demo design's 18 patients only: a patient added beyond them
    (--files > 126) gets the counts of the demo patient at the same place in the cohort cycle (P19 those of P01)."""
    import pandas as pd

    counts = pd.read_csv(path, sep="\t")
    demo_ids = sorted(counts.patient_id.unique())
    extra = [pid for pid in patients.patient_id if pid not in set(demo_ids)]
    copies = [counts[counts.patient_id == demo_ids[k % len(demo_ids)]].assign(patient_id=pid)
              for k, pid in enumerate(extra)]
    if copies:
        pd.concat([counts, *copies], ignore_index=True).to_csv(path, sep="\t", index=False)


def project_config(trial: Path) -> dict:
    """The demo's config pointed at the simulated trial, with the simulation off."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config.update({"samples": str(trial / "samples.tsv"), "patients": str(trial / "patients.tsv"),
                   "panel": str(REPO / "config/panel.yaml"),
                   "gating_template": str(REPO / "config/gating/default.yaml"),
                   "gating_overrides": str(REPO / "config/gating/overrides.yaml")})
    config["clinical"] = {"platelets": str(trial / "clinical/platelets.tsv"),
                          "blood_counts": str(trial / "clinical/blood_counts.tsv")}
    config["compensation"] = {**config.get("compensation", {}), "controls": ""}
    config["demo"] = {"enabled": False}
    return config


# ---------------------------------------------------------------------------------------------------------------
# measurements


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from snakemake's first 'Job stats' table."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    except StopIteration:
        return counts
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            rule = rule_family(parts[0])
            counts[rule] = counts.get(rule, 0) + int(parts[1])
    return counts


def rule_family(rule: str) -> str:
    """The rule a job belongs to: the workflow defines one process_samples_<unit> rule per processing unit and one
    review_gates_<part> rule per part of the review figures."""
    return next((family for family in LOOP_RULES if rule.startswith(family + "_")), rule)


def rule_benchmarks(project: Path) -> dict[str, dict]:
    """Per rule: jobs, summed wall seconds and CPU seconds of its ``benchmark:`` files."""
    rules: dict[str, dict] = {}
    root = project / "results/benchmarks"
    for path in sorted(root.rglob("*.tsv")):
        relative = path.relative_to(root)
        rule = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        with path.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        entry = rules.setdefault(rule, {"benchmarked_jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
        entry["benchmarked_jobs"] += 1
        entry["wall_s"] += float(row["s"])
        entry["cpu_s"] += float(row.get("cpu_time") or 0.0)
    return rules


def logged_jobs(project: Path) -> dict[str, dict[str, list[float]]]:
    """Per rule, the start-up CPU seconds and the whole CPU seconds its jobs logged (cytotrial.steps.runlog), when they
    log them."""
    startup, done = re.compile(r"start-up: ([0-9.]+) s CPU"), re.compile(r"done: ([0-9.]+) s CPU")
    found: dict[str, dict[str, list[float]]] = {}
    for log in (project / "logs").rglob("*.log"):
        text = log.read_text(errors="replace")
        first, last = startup.search(text), done.search(text)
        if first:
            relative = log.relative_to(project / "logs")
            rule = relative.parts[0] if len(relative.parts) > 1 else relative.stem
            entry = found.setdefault(rule, {"startup": [], "cpu": []})
            entry["startup"].append(float(first.group(1)))
            if last:
                entry["cpu"].append(float(last.group(1)))
    return found


def script_of_rule(workflow: Path) -> dict[str, Path]:
    """Rule name -> its script, from workflow/rules/*.smk."""
    scripts = {}
    for smk in (workflow / "workflow/rules").glob("*.smk"):
        rule = None
        for line in smk.read_text().splitlines():
            match = re.match(r"\s*rule (\w+):", line)
            if match:
                rule = match.group(1)
            match = re.match(r"\s*f?\"(\w+?)_\{", line)  # a rule defined in a loop: name: f"<family>_{...}"
            if match and match.group(1) in LOOP_RULES:
                rule = match.group(1)
            match = re.match(r'\s*"\.\./\.\./scripts/(\w+\.py)"', line)
            if match and rule:
                scripts[rule] = workflow / "scripts" / match.group(1)
    return scripts


def import_statements(script: Path) -> str:
    """The script's top-level import statements, as source."""
    tree = ast.parse(script.read_text())
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


def startup_cpu(imports: str, env: dict, repeats: int = 1) -> float:
    """Median CPU seconds of a fresh python running snakemake's script preamble imports and ``imports``."""
    code = ("import pickle\nimport snakemake.io\nfrom snakemake.logging import logger\n"
            "from snakemake.iocontainers import Snakemake\n" + imports)
    times = []
    for _ in range(repeats):
        before = children_cpu()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        times.append(children_cpu() - before)
    return statistics.median(times)


WORK_CODE = """
import json, logging, sys, tempfile, time, yaml
from pathlib import Path
project, files, repo = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
config = yaml.safe_load((project / "config/config.yaml").read_text())
defaults = yaml.safe_load((repo / "workflow/schemas/defaults.yaml").read_text())
settings = {k: {**defaults.get(k, {}), **config.get(k, {})} for k in ("compensation", "transform", "qc",
                                                                       "deidentification")}
import pandas as pd
sheet = pd.read_csv(config["samples"], sep="\\t")
log = logging.getLogger("work")
try:
    from cytotrial.steps.gate_sample import gate_sample_files
    from cytotrial.steps.preprocess_sample import preprocess_sample_files
    from cytotrial.steps.process_sample import process_sample_files
except ImportError:  # a checkout from before the package layout of issue 20 (--workflow)
    from cytotrial.gating.sample import gate_sample_files
    from cytotrial.preprocess_sample import preprocess_sample_files
    try:
        from cytotrial.process_sample import process_sample_files
    except ImportError:  # before issue 18: two jobs a sample
        process_sample_files = None
import inspect


def call(function, head, keywords):  # keyword-only parameters by keyword; an older checkout's in the same order
    kinds = [p.kind for p in inspect.signature(function).parameters.values()]
    return function(*head, **keywords) if inspect.Parameter.KEYWORD_ONLY in kinds else \
        function(*head, *keywords.values())


panel, template = str(repo / "config/panel.yaml"), str(repo / "config/gating/default.yaml")
named = ("template" if process_sample_files is not None and
         "template" in inspect.signature(process_sample_files).parameters else "template_path")
if named == "template":
    # a job reads the panel and the template once for all its samples (issue 18): so does this loop
    from cytotrial.gating.plan_engine import load_gating_template
    from cytotrial.io.panel import Panel
    panel, template = Panel.from_yaml(panel), load_gating_template(template)
times = []
for row in sheet.head(files).itertuples():
    out = Path(tempfile.mkdtemp())
    outputs = {k: str(out / f"{k}.{x}") for k, x in [("qc_row", "tsv"), ("qc_details", "json"), ("qc_plot", "png"),
               ("metadata", "json"), ("populations", "tsv"), ("gates", "json"), ("review", "npz"), ("mfi", "tsv"),
               ("events", "h5ad"), ("gatingml", "xml"), ("workspace", "wsp"), ("fcs", "fcs")]}
    head = (row.sample_id, row.fcs, panel, settings)
    common = {"study_day": int(row.study_day), "transforms_path": str(project / f"results/transforms/{row.batch}.json"),
              "matrix_path": None, "on_bad_file": "exclude"}
    start = time.process_time()
    if process_sample_files is not None:
        call(process_sample_files, head, {**common, named: template, "overrides": {},
                                          "workspace_group": "All Samples", "events_per_sample": 10000,
                                          "outputs": outputs, "log": log})
    else:
        pre = {**outputs, "events": str(out / "pre.h5ad")}
        call(preprocess_sample_files, head, {**common, "outputs": pre, "log": log})
        call(gate_sample_files, (row.sample_id, pre["events"], template, outputs),
             {"overrides": {}, "pooled_path": None, "workspace_group": "All Samples", "events_per_sample": 10000,
              "log": log})
    times.append(time.process_time() - start)
print(json.dumps(times))
"""


def per_file_work(project: Path, files: int, workflow: Path, env: dict) -> list[float]:
    """CPU seconds of preprocessing and gating each of the first ``files`` files one after another in one warm
    process (the first includes numba's and the libraries' first-use costs; the others are the numerical work of
    a file, with the writing of its outputs)."""
    result = subprocess.run([sys.executable, "-c", WORK_CODE, str(project), str(files), str(workflow)], env=env,
                            capture_output=True, text=True, check=True)
    return [round(t, 3) for t in json.loads(result.stdout.strip().splitlines()[-1])]


def main(argv=None) -> int:
    args = parse_args(argv)
    workflow = Path(args.workflow).resolve()
    trial = Path(args.trial or Path(tempfile.gettempdir()) / "cytotrial_workflow_time" /
                 f"{args.files}x{args.events}").resolve()
    print(f"trial: {trial} ({args.files} files x {args.events} events)", flush=True)
    simulated = simulate(trial, args.files, args.events, workers=args.cores)
    print(f"simulation: {'reused' if not simulated else f'{simulated:.0f} s (not timed below)'}", flush=True)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(workflow / "src"), os.environ.get("PYTHONPATH", "")])}
    keep = Path(args.keep_project).resolve() if args.keep_project else None
    project = keep or Path(tempfile.mkdtemp(prefix="workflow_time_"))
    if keep and keep.exists():
        shutil.rmtree(keep)
    (project / "config").mkdir(parents=True)
    (project / "config/config.yaml").write_text(yaml.safe_dump(project_config(trial), sort_keys=False))

    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}", flush=True)
    command = [sys.executable, "-m", "snakemake", "-s", str(workflow / "workflow/Snakefile"), "-d", str(project),
               "--cores", str(args.cores)]
    cpu_before, start = children_cpu(), time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu_before
    load_end = os.getloadavg()
    (project / "snakemake_output.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-5000:])
        print(f"snakemake failed; project kept in {project}")
        return 1
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}", flush=True)
    print(f"snakemake run: wall {wall:.0f} s, CPU {cpu:.0f} s (user+sys of all processes)", flush=True)

    jobs = job_counts(result.stdout + result.stderr)
    per_rule = rule_benchmarks(project)
    logged = logged_jobs(project)
    scripts = script_of_rule(workflow)
    rules = {}
    for rule in sorted(jobs):
        entry = {"jobs": jobs[rule], **per_rule.get(rule, {"benchmarked_jobs": 0, "wall_s": None, "cpu_s": None})}
        if rule in scripts:
            entry["startup_cpu_s_per_job"] = round(startup_cpu(import_statements(scripts[rule]), env), 3)
        if rule in logged:  # the jobs' own accounts (cytotrial.steps.runlog), where the code logs them
            entry["logged_startup_cpu_s_per_job"] = round(statistics.median(logged[rule]["startup"]), 3)
            if logged[rule]["cpu"]:
                entry["logged_cpu_s"] = round(sum(logged[rule]["cpu"]), 1)
        rules[rule] = entry
    work = per_file_work(project, 4, workflow, env)
    file_work = statistics.median(work[1:])
    per_sample_rules = {"process_samples", "process_sample", "preprocess_sample", "gate_sample",
                        "fit_batch_transforms", "fit_pooled_gates"}
    trial_level = sum(e.get("logged_cpu_s", e["cpu_s"] or 0.0) for r, e in rules.items() if r not in per_sample_rules)
    startup_total = sum(e.get("startup_cpu_s_per_job", 0.0) * e["jobs"] for e in rules.values())
    benchmarked_cpu = sum(e["cpu_s"] or 0.0 for e in rules.values())
    bare = startup_cpu("", env)
    figures = {
        "label": args.label, "workflow_commit": git_commit(workflow), "files": args.files, "events": args.events,
        "cores": args.cores, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "jobs": sum(jobs.values()),
        "load_average_start": [round(x, 2) for x in load_start], "load_average_end": [round(x, 2) for x in load_end],
        "startup_cpu_s": round(startup_total, 1), "startup_share_of_cpu": round(startup_total / cpu, 3),
        "bare_job_startup_cpu_s": round(bare, 3),
        "cpu_of_rules_without_benchmark_s": round(cpu - benchmarked_cpu, 1),
        # the jobs' own accounts (cytotrial.steps.runlog) summed; the rest of the CPU is snakemake itself (DAG, scheduling,
        # benchmark polling), the jobs' interpreter shut-down and the rules that do not log it
        "per_file_work_cpu_s": work, "per_file_work_cpu_s_median_warm": round(file_work, 2),
        "trial_level_cpu_s": round(trial_level, 1),
        "cpu_over_work_plus_trial_level": round(cpu / (file_work * args.files + trial_level), 2),
        "logged_job_cpu_s": round(sum(e.get("logged_cpu_s", 0.0) for e in rules.values()), 1),
        "rules": rules,
    }
    print(f"\nwall {wall:.0f} s, CPU {cpu:.0f} s (user+sys of all processes), {figures['jobs']} jobs, --cores "
          f"{args.cores}; start-up (imports) {startup_total:.0f} s CPU = {100 * startup_total / cpu:.0f} % of CPU; "
          f"a bare job (python + snakemake preamble) {bare:.2f} s")
    print(f"numerical work of a file (preprocess + gate + outputs, warm process, CPU s): {work} -> "
          f"{file_work:.2f} s x {args.files} files + trial-level rules {trial_level:.0f} s = "
          f"{file_work * args.files + trial_level:.0f} s; the run's CPU is {figures['cpu_over_work_plus_trial_level']}x that")
    print(f"{'rule':32s} {'jobs':>5s} {'wall s':>8s} {'CPU s':>8s} {'CPU/job':>8s} {'start-up/job':>12s} "
          f"{'logged CPU':>10s} {'logged start-up/job':>19s}")
    for rule, e in sorted(rules.items(), key=lambda item: -(item[1]["cpu_s"] or 0)):
        cpu_job = (e["cpu_s"] / e["benchmarked_jobs"]) if e["benchmarked_jobs"] else float("nan")
        print(f"{rule:32s} {e['jobs']:5d} {e['wall_s'] or float('nan'):8.1f} {e['cpu_s'] or float('nan'):8.1f} "
              f"{cpu_job:8.2f} {e.get('startup_cpu_s_per_job', float('nan')):12.2f} "
              f"{e.get('logged_cpu_s', float('nan')):10.1f} {e.get('logged_startup_cpu_s_per_job', float('nan')):19.2f}")
    print(f"CPU of rules without a benchmark file and of snakemake itself: {figures['cpu_of_rules_without_benchmark_s']} s;"
          f" CPU the jobs logged (cytotrial.steps.runlog, where they log it): {figures['logged_job_cpu_s']} s")
    if args.keep_tables:
        target = Path(args.keep_tables)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(project / "results/tables", target)
        print(f"tables copied to {target}")
    if not args.no_record:
        name = args.name or f"workflow_time_{args.files}x{args.events}_{args.cores}cores"
        print(f"recorded: {write_result(name, figures)}")
    if not keep:
        shutil.rmtree(project, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
