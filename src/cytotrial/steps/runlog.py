"""Logging for rule scripts: everything, including a failure's traceback, goes to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import sys
import time


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def process_age_seconds() -> float | None:
    """Wall seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        start_ticks = int(open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def rule_logging(smk):
    """Send logging of a Snakemake rule script to ``smk.log[0]``; log and re-raise any error.

    Errors of the project's own kinds (ValueError and subclasses, FileNotFoundError) are written as their
    message alone; anything else with its traceback. Python warnings (e.g. a platelet table without bleeding
    records) go to the log file and, as without this, to stderr.

    The log's first line gives the job's start-up, the CPU and wall seconds of its process before the rule's work
    (Python, snakemake's script preamble, the script's imports), and its last line the CPU of the job until then
    (benchmarks/workflow_time.py reads both).
    """
    startup_cpu, startup_wall = process_cpu_seconds(), process_age_seconds()
    handler = logging.FileHandler(smk.log[0], mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [logging.StreamHandler(sys.stderr)]
    log = logging.getLogger(f"cytotrial.rule.{smk.rule}")
    log.info("start-up: %.2f s CPU, %s s wall before the rule's work (Python, imports)", startup_cpu,
             "?" if startup_wall is None else f"{startup_wall:.2f}")
    started = time.perf_counter()
    try:
        yield log
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        print(f"cytotrial: {err}", file=sys.stderr)
        raise
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise
    log.info("done: %.2f s CPU in all, %.2f s wall after start-up", process_cpu_seconds(),
             time.perf_counter() - started)
