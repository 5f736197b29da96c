"""Shared fixtures: a small simulated trial, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cytotrial.simulate.run import simulate_trial
from cytotrial.simulate.trial import SimulationSettings, trial_design

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_trial(tmp_path_factory) -> dict:
    """First patient of each cohort at D0 and W4, 30,000 events per file."""
    out = tmp_path_factory.mktemp("small_trial")
    patients, samples = trial_design(str(out / "fcs"), patients_per_cohort=1, visits=["D0", "W4"])
    settings = SimulationSettings(events_per_sample=30_000)
    simulate_trial(patients, samples, out, settings, workers=2)
    return {"dir": out, "patients": patients, "samples": samples, "settings": settings}
