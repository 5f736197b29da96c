"""The workflow through profiles/slurm on a real (one-node) Slurm cluster gives the same tables as a local run.

Marked ``slurm``: not part of ``make test``; ``.ci/run`` runs it (``pytest -m slurm``). It installs Debian's Slurm
and munge with apt-get when they are missing (about 10 s), starts slurmctld and slurmd on 127.0.0.1
(tests/slurm_cluster.py), runs the tiny demo locally and through ``--profile profiles/slurm``, compares every
table byte for byte and stops the cluster. Without root or apt-get it is skipped, but in CI (``CI=true``) it fails
with the reason.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
import zipfile

import pytest
import yaml

from .conftest import REPO
from .slurm_cluster import ClusterUnavailable, SlurmCluster, no_cluster
from .test_workflow import make_tiny_demo, snakemake

SLURM_PROFILE = REPO / "profiles" / "slurm"
UNITS_PER_JOB = 2  # group-components for the test: 2 process_samples jobs (a batch's samples each) per Slurm job
SNAKEMAKE_TIMEOUT = 1500  # seconds; then `timeout` ends snakemake (and it cancels its Slurm jobs)


def same_bytes(a, b) -> bool:
    """The files are equal byte for byte; for an .xlsx workbook (a zip), every member but its creation time
    (docProps/core.xml, and the members' zip timestamps)."""
    if a.suffix != ".xlsx":
        return a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names = sorted(za.namelist())
        return names == sorted(zb.namelist()) and all(
            za.read(name) == zb.read(name) for name in names if name != "docProps/core.xml")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = SlurmCluster.unavailable()
    if reason:
        no_cluster(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm_cluster"))
    try:
        cluster.start()
    except ClusterUnavailable as err:
        cluster.stop()
        no_cluster(str(err)[:1000])
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.mark.slurm
def test_cluster_runs_a_job_step(cluster, tmp_path):
    out = tmp_path / "job.out"
    submitted = subprocess.run(["sbatch", "--parsable", "-o", str(out), "--mem", "100", "--wrap",
                                "srun -n1 echo step-ok"], env=cluster.env, capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    deadline = time.monotonic() + 60
    while cluster.jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert out.read_text().strip() == "step-ok", cluster.logs()


@pytest.mark.slurm
def test_tiny_demo_on_slurm_equals_the_local_run(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    small_units = {"processing": {"samples_per_job": 4}}  # the 12 samples in 3 units, so that Slurm groups them
    samples = make_tiny_demo(local, **small_units)
    make_tiny_demo(remote, **small_units)
    start = time.monotonic()
    snakemake(local, "--cores", "2")
    local_seconds = time.monotonic() - start

    # the test cluster's own settings, on top of profiles/slurm (a later --profile replaces whole top-level keys)
    site = tmp_path / "test_cluster_profile"
    site.mkdir()
    (site / "config.yaml").write_text(yaml.safe_dump({
        "slurm-status-command": "squeue",  # no accounting here: sacct would never see the jobs end
        "slurm-init-seconds-before-status-checks": 5,
        "seconds-between-status-checks": 5,
        "slurm-keep-successful-logs": True,  # kept to count the Slurm jobs below
        "cores": cluster.cpus,  # a job may not ask for more CPUs than the node has
        "group-components": [f"sample={UNITS_PER_JOB}"],
        "latency-wait": 10,
    }))
    command = ["timeout", "-k", "30", str(SNAKEMAKE_TIMEOUT), sys.executable, "-m", "snakemake",
               "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(remote), "--configfile", str(remote / "config.yaml"),
               "--profile", str(SLURM_PROFILE), "--profile", str(site)]
    start = time.monotonic()
    result = subprocess.run(command, env=cluster.env, capture_output=True, text=True)
    slurm_seconds = time.monotonic() - start
    assert result.returncode == 0, (f"snakemake on Slurm failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-6000:]}\n{cluster.logs()}")
    output = result.stdout + result.stderr
    print(f"local run {local_seconds:.0f} s, Slurm run {slurm_seconds:.0f} s, cluster set-up "
          f"{cluster.setup_seconds:.1f} s (+ install {cluster.install_seconds:.1f} s)")

    tables = sorted(p.relative_to(local) for p in (local / "results" / "tables").rglob("*") if p.is_file())
    assert len(tables) >= 8
    assert sorted(p.relative_to(remote) for p in (remote / "results" / "tables").rglob("*") if p.is_file()) == tables
    differing = [str(t) for t in tables if not same_bytes(local / t, remote / t)]
    assert not differing, differing

    # every job went through Slurm, and the process_samples jobs (as many as the local run had) ran in group jobs
    logs = remote / ".snakemake" / "slurm_logs"
    group_jobs = [p for folder in logs.glob("group_sample*") for p in folder.rglob("*.log")]  # group_sample_<rules>
    units = len(list((local / "logs" / "process_samples").glob("*.log")))
    assert units >= 2 and len(group_jobs) == math.ceil(units / UNITS_PER_JOB), (group_jobs, output[-3000:])
    assert not list(logs.glob("rule_process_samples*"))
    for rule in ("simulate_demo_trial", "merge_populations", "discover_clusters"):
        assert list((logs / f"rule_{rule}").rglob("*.log")), rule
    assert "Submitted" in output or "submitted with SLURM jobid" in output
    assert not cluster.jobs()


def test_slurm_profile_groups_samples_in_a_dry_run(tmp_path):
    """Without a cluster: the profile's grouping as Snakemake plans it (6 process_samples jobs, each the samples
    of one batch, per group job)."""
    make_tiny_demo(tmp_path, patients_per_cohort=2)  # 24 samples
    result = snakemake(tmp_path, "-n", "--profile", str(SLURM_PROFILE), "--executor", "dryrun")
    output = result.stdout + result.stderr
    units = len(set(re.findall(r"rule (process_samples_\S+):", output)))
    assert units >= 2 and output.count("Group job sample") == math.ceil(units / 6), output[-3000:]
