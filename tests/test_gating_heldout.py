"""The default gating template on a trial it was not tuned on, scored per event against the simulator's truth.

The template was tuned on simulator seeds 1 and 2 (benchmarks/gating_accuracy.py DEVELOPMENT_SEEDS); this test
gates a seed outside them with day-to-day instrument and staining shifts, as the workflow does (batch transforms, event QC,
pooled gates), and checks the issue-16 targets that the benchmark applies to the full trials. The truth comes from
the simulator's event labels, not from the gating code.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def accuracy():
    sys.path.insert(0, str(REPO / "benchmarks"))  # importable by name, so its worker processes can find it
    try:
        return importlib.import_module("gating_accuracy")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def heldout_rows(accuracy, tmp_path_factory):
    seed = 14
    assert seed not in accuracy.DEVELOPMENT_SEEDS
    return accuracy.score_trial(tmp_path_factory.mktemp("heldout"), seed=seed, scenario="shifted",
                                events=100_000, patients_per_cohort=1, workers=2)


def test_heldout_trial_meets_the_gating_targets(accuracy, heldout_rows):
    summary = accuracy.summarise(heldout_rows)
    assert len(summary) == 27 and heldout_rows.sample_id.nunique() == 28
    failing = {name: misses for name, misses in accuracy.check_targets(summary).items() if misses}
    assert not failing, failing
    treg = heldout_rows[heldout_rows.population == "Treg"]
    assert (treg.status == "ok").all(), treg[treg.status != "ok"]
    # hand-set bound on single samples: a gate that jumps to the wrong valley is off by tens of points
    assert treg.error_pp.abs().max() < 2.0, treg.sort_values("error_pp").tail()
    assert heldout_rows.error_pp.abs().max() < 15.0, heldout_rows.loc[heldout_rows.error_pp.abs().idxmax()]
