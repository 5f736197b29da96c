"""`make demo` from a fresh clone, as the README's quick start runs it: wall time, and how much of it went to the
virtual environment and to the simulation.

Usage: python benchmarks/fresh_clone_demo.py [--clone-to DIR] [--from-log LOG --seconds N --venv-seconds N]
                                            [--no-record]

Clones this repository (its committed HEAD) into a new folder (default: a temporary one), runs ``make demo``
there with the machine's pip cache as it is, and records (benchmarks/results/fresh_clone_demo.json, with commit,
machine, date and load average): the wall seconds of ``make demo``; the seconds until the virtual environment
was ready (the time stamp of .venv/.installed-stamp); the seconds of the simulation (snakemake's time stamps
around rule simulate_demo_trial); the jobs snakemake ran. --from-log records a run made with the same commands
by hand (``make demo > LOG 2>&1`` in a fresh clone --clone-to, its wall seconds given with --seconds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from results_record import git_commit, write_result  # noqa: E402

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def snakemake_times(log: str) -> dict:
    """Seconds from snakemake's first to its last time stamp, those of rule simulate_demo_trial, and the jobs."""
    stamps, simulate_start, simulate_end, previous = [], None, None, None
    for line in log.splitlines():
        match = STAMP.match(line.strip())
        if match:
            previous = dt.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            stamps.append(previous)
        elif "rule simulate_demo_trial:" in line and simulate_start is None:
            simulate_start = previous
        elif "(Rule: simulate_demo_trial)" in line:
            simulate_end = previous
    return {"snakemake_s": (stamps[-1] - stamps[0]).total_seconds() if stamps else None,
            "simulation_s": (simulate_end - simulate_start).total_seconds()
            if simulate_start and simulate_end else None,
            "jobs": log.count("Finished jobid")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clone-to", help="folder of the clone (default: temporary)")
    parser.add_argument("--from-log", help="record a run made by hand: its make demo output")
    parser.add_argument("--seconds", type=float, help="with --from-log: the run's wall seconds")
    parser.add_argument("--venv-seconds", type=float, help="with --from-log: seconds until the venv was ready")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    if args.from_log:
        log, wall, venv = Path(args.from_log).read_text(errors="replace"), args.seconds, args.venv_seconds
        how = f"by hand, {args.from_log}"
        clone = Path(args.clone_to) if args.clone_to else None
        load_start = None  # not known here
    else:
        clone = Path(args.clone_to or tempfile.mkdtemp(prefix="fresh_clone_demo_")) / "cytotrial"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        start = time.time()
        result = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True)
        wall = time.time() - start
        log = result.stdout + result.stderr
        if result.returncode != 0:
            print(log[-5000:])
            return 1
        venv = (clone / ".venv/.installed-stamp").stat().st_mtime - start
        how = "benchmarks/fresh_clone_demo.py"
        load_start = [round(x, 2) for x in load_start]
    figures = {"make_demo_s": round(wall, 1), "venv_ready_s": None if venv is None else round(venv, 1),
               **snakemake_times(log), "how": how, "workflow_commit": git_commit(clone) if clone else None,
               "load_average_start": load_start}
    print(figures)
    if not args.no_record:
        print(f"recorded: {write_result('fresh_clone_demo', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
