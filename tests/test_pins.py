"""pyproject.toml, environment.yml and workflow/envs/cytotrial.yaml pin the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml

from .conftest import REPO


CONDA_TO_PYPI = {"python-igraph": "igraph"}  # conda-forge names that differ from PyPI's


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = {}
    for requirement in requirements:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][^;\s]*)", requirement).groups()
        pins[name.lower()] = version
    return pins


def _conda_pins(path) -> dict[str, str]:
    pins = {}
    for dependency in yaml.safe_load(path.read_text())["dependencies"]:
        entries = dependency["pip"] if isinstance(dependency, dict) else [dependency]
        for entry in entries:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==?([0-9][^\s]*)", entry)
            if match and match.group(1) != "python":
                name = match.group(1).lower()
                pins[CONDA_TO_PYPI.get(name, name)] = match.group(2)
    return pins


def test_every_requirement_is_pinned_exactly():
    assert set(_pyproject_pins()) >= {"flowkit", "anndata", "scanpy", "snakemake", "numpy", "pytest"}


def test_environment_files_list_the_same_pins_as_pyproject():
    pyproject = _pyproject_pins()
    environment = _conda_pins(REPO / "environment.yml")
    rule_env = _conda_pins(REPO / "workflow" / "envs" / "cytotrial.yaml")
    assert environment == pyproject
    test_only = {"pytest", "flowcal", "snakedeploy"}  # the test extra: not needed by the rules
    runtime = {k: v for k, v in pyproject.items() if k not in test_only}
    assert rule_env == runtime
