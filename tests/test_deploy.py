"""The workflow deployed with snakedeploy into an empty folder (a Snakemake module) runs the small test
configuration (.test) to the report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import REPO

SNAKEDEPLOY = Path(sys.executable).parent / "snakedeploy"


def working_tree_copy(destination: Path) -> Path:
    """The repository's files as a fresh clone would hold them (tracked and new, not ignored), with their
    current contents: what `snakedeploy deploy-workflow` copies from a local source."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name, follow_symlinks=False)
    return destination


@pytest.mark.slow  # about 5 minutes on 2 cores: with the default suite over the ~15 minutes it may take
def test_snakedeploy_then_the_small_test_configuration_runs_to_the_report(tmp_path):
    source = working_tree_copy(tmp_path / "cytotrial")
    deployed = tmp_path / "deployed"
    deployed.mkdir()
    # a tag is required; for a local source snakedeploy copies the folder as it is (no checkout)
    result = subprocess.run([str(SNAKEDEPLOY), "deploy-workflow", str(source), str(deployed), "--tag", "v0.1.0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    snakefile = deployed / "workflow/Snakefile"
    module = snakefile.read_text()
    assert "module cytotrial:" in module and "use rule * from cytotrial" in module
    assert (deployed / "config/config.yaml").is_file() and (deployed / "config/README.md").is_file()
    # snakedeploy 0.17.1 writes a local source's Snakefile as "workflow/Snakefile", a path relative to the deployed
    # folder (the deployed Snakefile itself); from GitHub it writes github("owner/cytotrial", path=..., tag=...).
    # Point the module at the local source's Snakefile, as the GitHub declaration points at the tagged one.
    assert '"workflow/Snakefile"' in module
    snakefile.write_text(module.replace('"workflow/Snakefile"', f'"{source / "workflow/Snakefile"}"'))
    for name in ("config.yaml", "samples.tsv", "patients.tsv"):  # the small test data, over the demo's
        shutil.copy(REPO / ".test/config" / name, deployed / "config" / name)
    command = [sys.executable, "-m", "snakemake", "--cores", "2"]
    run = subprocess.run(command, cwd=deployed, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = subprocess.run([*command[:-2], "--report", "report.html"], cwd=deployed, capture_output=True,
                            text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (deployed / "report.html").stat().st_size > 100_000
    populations = pd.read_csv(deployed / "results/tables/populations.tsv", sep="\t")
    assert populations.sample_id.nunique() == 8 and (populations.status == "ok").mean() > 0.95
    assert not (source / "results").exists()  # the module ran in the deployed folder, not in its source


def test_without_the_package_the_run_stops_saying_how_to_install_it(tmp_path):
    """The Snakefile checks sheets and templates with the cytotrial package: where snakemake runs without it (here
    hidden by a package of that name that fails to import), the run stops with one message saying what to do."""
    import os

    hidden = tmp_path / "hidden" / "cytotrial"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'cytotrial'\")\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(REPO / ".test")], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "hidden")}, capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the Python package 'cytotrial' is not installed in the environment that runs snakemake" in output
    assert "pip install <path or git URL of the cytotrial repository>" in output
