"""Write a benchmark's figures to benchmarks/results/<name>.json with the commit, machine and date they came from.

The README quotes these files; a figure without one cannot be traced.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def git_commit(repo: Path = Path(__file__).resolve().parents[1]) -> str:
    """HEAD of ``repo`` (default: this repository), with '+uncommitted changes' when tracked files other than
    benchmarks/results/ differ."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"],  # earlier results are not code
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance() -> dict:
    """Commit, machine (cores, CPU model, memory), Python and date of this run."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cores": os.cpu_count(), "cpu": _cpu_model(), "memory_gib": round(memory_gib, 1),
                        "platform": platform.platform()},
            "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],  # other work on the machine
            "python": platform.python_version()}


def write_result(name: str, figures: dict) -> Path:
    """Write ``figures`` with :func:`provenance` to benchmarks/results/<name>.json; returns the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, **provenance(), "figures": figures}, indent=1,
                               default=_plain) + "\n")
    return path


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")
