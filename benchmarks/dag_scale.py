"""Time Snakemake's parse, DAG construction and dry run of the workflow for thousands of samples.

Usage: python benchmarks/dag_scale.py [--samples N [N ...]] [--keep DIR] [--profile N] [--result NAME]

For each sample count (default 1,000, 2,000 and 5,000) writes a trial of that size in a temporary folder: a
patient table (seven visits per patient, patients enrolled every 2 days, so acquisition runs are weekly batches
of about 20 samples, as in the demo trial), its sample sheet, and empty FCS and clinical files (a dry run only
needs the files to exist; none is read), with the default config, panel and gating template and demo.enabled:
false. Then runs, each in a fresh process, and reports its wall time and peak resident memory (RSS):

  parse  snakemake --list-rules            the Snakefile's top level: config and sheet validation, rules (no DAG)
  dag    snakemake --list-changes params   DAG construction (every job of the default target), printing nothing
  dryrun snakemake -n                      DAG construction and the dry run's listing of every job

and the number of jobs. The target is that the dry run of 5,000 samples takes under 60 s; the growth from 1,000
to 5,000 samples shows whether any step is quadratic (linear: x5 time; quadratic: x25).

--profile N writes cProfile statistics of the DAG construction for N samples (in process) and prints the top entries.

--merge-from WORKDIR N measures the merge steps instead: copies one sample's per-sample outputs of a finished run
in WORKDIR (results/populations/{sample}.tsv and .mfi.tsv, results/qc/{sample}.tsv, results/metadata/{sample}.json;
e.g. a tiny demo run) to every sample of a trial of N samples (ids changed), then runs the rules that read every
sample's tables (summarise_acquisition, merge_populations, merge_mfi), one at a time, and prints the wall time and
peak RSS of each from its Snakemake benchmark file.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cytotrial.config import with_defaults

REPO = Path(__file__).resolve().parents[1]
VISITS = {"D0": -1, "W2": 14, "W4": 28, "W8": 56, "W12": 84, "W16": 112, "W28": 196}
TARGET_SECONDS = 60.0
STEPS = {
    "parse": ["--list-rules"],
    "dag": ["--list-changes", "params"],
    "dryrun": ["-n"],
}


def write_trial(workdir: Path, n_samples: int) -> Path:
    """A trial of ``n_samples`` samples (empty files) and its config in ``workdir``; returns the config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "fcs").mkdir(exist_ok=True)
    n_patients = -(-n_samples // len(VISITS))
    patients = ["patient_id\tcohort\tdose_1e6_per_kg\tenrolment_day"]
    samples = ["sample_id\tpatient_id\tvisit\tstudy_day\tbatch\tfcs"]
    count = 0
    for number in range(1, n_patients + 1):
        patient = f"P{number:05d}"
        cohort, dose = [("A", 0.5), ("B", 1.0), ("C", 2.0), ("E", 2.0)][number % 4]
        enrolment = 2 * (number - 1)
        patients.append(f"{patient}\t{cohort}\t{dose}\t{enrolment}")
        for visit, day in VISITS.items():
            if count == n_samples:
                break
            count += 1
            sample = f"{patient}_{visit}"
            fcs = f"fcs/{sample}.fcs"
            (workdir / fcs).touch()
            samples.append(f"{sample}\t{patient}\t{visit}\t{day}\trun{(enrolment + day + 1) // 7:04d}\t{fcs}")
    (workdir / "patients.tsv").write_text("\n".join(patients) + "\n")
    (workdir / "samples.tsv").write_text("\n".join(samples) + "\n")
    for name in ("platelets.tsv", "blood_counts.tsv"):
        (workdir / name).touch()

    config = with_defaults(REPO / "config" / "config.yaml")  # the demo's settings over the defaults
    config.update({
        "samples": "samples.tsv", "patients": "patients.tsv",
        "panel": str(REPO / "config" / "panel.yaml"),
        "gating_template": str(REPO / "config" / "gating" / "default.yaml"),
        "gating_overrides": str(REPO / "config" / "gating" / "overrides.yaml"),
    })
    config["clinical"] = {"platelets": "platelets.tsv", "blood_counts": "blood_counts.tsv"}
    config["demo"]["enabled"] = False
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--workflow-profile", "none", "--cores", "1", *args]


def measure(command: list[str], output: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of ``command`` run as a child (its output to ``output``)."""
    with open(output, "w") as handle:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode


def job_count(dry_run_output: str) -> int | None:
    match = re.search(r"^total\s+(\d+)", dry_run_output, re.MULTILINE)
    return int(match.group(1)) if match else None


MERGE_RULES = ["summarise_acquisition", "merge_populations", "merge_mfi"]


def merge_memory(workdir: Path, n_samples: int, source: Path) -> int:
    """Peak RSS of the merge rules on ``n_samples`` copies of one sample's per-sample tables from ``source``."""
    write_trial(workdir, n_samples)
    template = sorted((source / "results" / "populations").glob("*.mfi.tsv"))
    if not template:
        print(f"no results/populations/*.mfi.tsv in {source}: give the folder of a finished run", file=sys.stderr)
        return 1
    old = template[0].name.removesuffix(".mfi.tsv")
    files = {
        "results/populations/{}.tsv": (source / "results/populations" / f"{old}.tsv").read_text(),
        "results/populations/{}.mfi.tsv": (source / "results/populations" / f"{old}.mfi.tsv").read_text(),
        "results/qc/{}.tsv": (source / "results/qc" / f"{old}.tsv").read_text(),
        "results/metadata/{}.json": (source / "results/metadata" / f"{old}.json").read_text(),
    }
    for pattern in files:
        (workdir / pattern).parent.mkdir(parents=True, exist_ok=True)
    samples = [line.split("\t")[0] for line in (workdir / "samples.tsv").read_text().splitlines()[1:]]
    blood = ["sample_id\twbc_per_uL\tlymphocytes_per_uL"]
    for sample in samples:
        for pattern, text in files.items():
            text = text.replace(f"\n{old}\t", f"\n{sample}\t").replace(f'"{old}"', f'"{sample}"')
            (workdir / pattern.format(sample)).write_text(text)
        blood.append(f"{sample}\t6000\t1800")
    (workdir / "blood_counts.tsv").write_text("\n".join(blood) + "\n")
    targets = ["results/tables/qc.tsv", "results/tables/populations.tsv", "results/tables/mfi.tsv"]
    # the per-sample tables stand in for preprocess_sample and gate_sample: only the merge rules may run
    command = snakemake_command(workdir, *targets, "--allowed-rules", *MERGE_RULES, "--rerun-triggers", "mtime")
    seconds, rss, code = measure(command, workdir / "merge.log")
    if code != 0:
        print(f"merge run failed ({code}):\n{(workdir / 'merge.log').read_text()[-3000:]}", file=sys.stderr)
        return 1
    print(f"{n_samples} samples (copies of {old} from {source}); per-sample tables: "
          f"populations {len(files['results/populations/{}.tsv'])} B, mfi {len(files['results/populations/{}.mfi.tsv'])} B")
    print(f"{'rule':<24} {'s':>7} {'peak RSS MB':>12} {'output MB':>10}")
    outputs = {"summarise_acquisition": "results/tables/qc.tsv", "merge_populations": "results/tables/populations.tsv",
               "merge_mfi": "results/tables/mfi.tsv"}
    for rule in MERGE_RULES:
        header, values = (workdir / "results/benchmarks" / f"{rule}.tsv").read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        size = (workdir / outputs[rule]).stat().st_size / 1e6
        print(f"{rule:<24} {float(row['s']):>7.1f} {float(row['max_rss']):>12.0f} {size:>10.1f}")
    return 0


def profile(workdir: Path, top: int = 25) -> None:
    import cProfile
    import pstats

    from snakemake.cli import main

    stats_file = workdir / "dryrun.prof"
    argv = snakemake_command(workdir, *STEPS["dag"])[3:]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        cProfile.runctx("main(argv)", {"main": main, "argv": argv}, {}, str(stats_file))
    except SystemExit:
        pass
    finally:
        os.chdir(cwd)
    print(f"\ncProfile of the DAG construction ({stats_file}), top {top} by cumulative and by own time:")
    pstats.Stats(str(stats_file)).sort_stats("cumulative").print_stats(top)
    pstats.Stats(str(stats_file)).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--keep", type=Path, help="write the trials here and keep them (default: a temporary "
                                                  "folder, removed afterwards)")
    parser.add_argument("--result", default=None,
                        help="write the figures to benchmarks/results/<RESULT>.json (with commit, machine, date)")
    parser.add_argument("--profile", type=int, metavar="N", help="profile the DAG construction for N samples instead")
    parser.add_argument("--merge-from", nargs=2, metavar=("WORKDIR", "N"),
                        help="measure the merge rules on N copies of a finished run's per-sample tables instead")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dag_scale_") as tmp:
        base = args.keep or Path(tmp)
        if args.merge_from:
            source, n = Path(args.merge_from[0]).resolve(), int(args.merge_from[1])
            return merge_memory(base / f"merge{n}", n, source)
        if args.profile:
            workdir = base / f"n{args.profile}"
            write_trial(workdir, args.profile)
            profile(workdir)
            return 0
        print(f"{'samples':>8} {'jobs':>7} " + " ".join(f"{step + ' s':>9} {step + ' MB':>10}" for step in STEPS))
        results = {}
        for n in args.samples:
            workdir = base / f"n{n}"
            write_trial(workdir, n)
            row = {}
            for step, step_args in STEPS.items():
                log = workdir / f"{step}.log"
                seconds, rss, code = measure(snakemake_command(workdir, *step_args), log)
                if code != 0:
                    print(f"{step} of {n} samples failed ({code}):\n{log.read_text()[-3000:]}", file=sys.stderr)
                    return 1
                row[step] = (seconds, rss)
            jobs = job_count((workdir / "dryrun.log").read_text())
            results[n] = (row, jobs)
            print(f"{n:>8} {jobs or '?':>7} " + " ".join(f"{s:>9.1f} {m:>10.0f}" for s, m in row.values()),
                  flush=True)
        if len(results) > 1:
            first, last = min(results), max(results)
            for step in STEPS:
                t0, t1 = results[first][0][step][0], results[last][0][step][0]
                exponent = (math.log(t1 / t0) / math.log(last / first)) if t0 > 0 else 0
                print(f"{step}: {last} / {first} samples -> time x{t1 / t0:.1f} (growth exponent {exponent:.2f}; "
                      f"1 = linear, 2 = quadratic)")
        largest = max(results)
        seconds = results[largest][0]["dryrun"][0]
        verdict = "meets" if seconds < TARGET_SECONDS else "MISSES"
        print(f"dry run of {largest} samples: {seconds:.1f} s, {verdict} the target of {TARGET_SECONDS:.0f} s")
        if args.result:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from results_record import write_result

            figures = {"command": " ".join(sys.argv), "target_dryrun_s": TARGET_SECONDS,
                       "samples": {str(n): {"jobs": jobs, **{f"{step}_s": r[0] for step, r in row.items()},
                                            **{f"{step}_peak_rss_mb": r[1] for step, r in row.items()}}
                                   for n, (row, jobs) in results.items()}}
            print(f"figures: {write_result(args.result, figures)}")
        return 0 if seconds < TARGET_SECONDS or largest < 5000 else 1


if __name__ == "__main__":
    sys.exit(main())
