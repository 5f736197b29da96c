"""When the one-node Slurm cluster cannot start, tests/test_slurm.py skips on a developer's machine but fails in
CI (``CI=true``), naming the reason: a skip there would let CI pass without testing Slurm."""

from __future__ import annotations

import pytest

from .slurm_cluster import in_ci, no_cluster

REASON = "starting Slurm daemons needs root"


def outcome(**kwargs) -> tuple[str, str]:
    """('fail' | 'skip' | 'nothing', message) of no_cluster(REASON); caught here, so that a skip where a failure is
    expected fails this test instead of skipping it."""
    try:
        no_cluster(REASON, **kwargs)
    except pytest.fail.Exception as err:
        return "fail", str(err)
    except pytest.skip.Exception as err:
        return "skip", str(err)
    return "nothing", ""


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_in_ci_the_missing_cluster_fails_with_the_reason(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert outcome() == ("fail", "no Slurm test cluster: starting Slurm daemons needs root "
                                 "(CI=true: the Slurm test must run in CI)")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_outside_ci_the_missing_cluster_is_a_skip_with_the_reason(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert outcome() == ("skip", "no Slurm test cluster: starting Slurm daemons needs root")


def test_an_explicit_environment_overrides_the_process_one(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert in_ci() and not in_ci({}) and in_ci({"CI": "true"})
    assert outcome(environ={})[0] == "skip"
