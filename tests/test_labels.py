"""Wording and colours of generic outputs come from the config's labels and the data, not from the demo trial."""

from __future__ import annotations

import re

import pandas as pd
import yaml

from cytotrial.report.labels import PALETTE, TrialLabels
from cytotrial.report.summary import render_summary
from cytotrial.report.workbook import trial_descriptions

from .conftest import REPO

DEMO_WORDING = re.compile(r"infusion|UC-MSC|ITP|thrombocytop|cells/kg|\bW28\b|\"[ABCE]\": \"#", re.IGNORECASE)


def test_generic_code_and_captions_hold_no_demo_wording():
    sources = [*(REPO / "src/cytotrial/report").glob("*.py"), *(REPO / "workflow/report").glob("*.rst"),
               REPO / "workflow/schemas/defaults.yaml"]
    found = {p.name: DEMO_WORDING.findall(p.read_text()) for p in sources}
    assert {name: words for name, words in found.items() if words} == {}
    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())["labels"]  # the demo's wording is its config's
    assert demo["visits"]["D0"] == "day before the first infusion" and demo["cohorts"]["E"]["colour"] == "#e7298a"


def test_cohort_colours_are_the_configured_ones_then_the_palette_in_sorted_order():
    labels = TrialLabels.from_config({"cohorts": {"high": {"colour": "#000000", "label": "high dose"}}})
    assert labels.cohort_colours(["low", "high", "mid", "low"]) == {"high": "#000000", "low": PALETTE[0],
                                                                    "mid": PALETTE[1]}
    assert labels.cohort("high") == "high dose" and labels.cohort("low") == "low"


def test_workbook_descriptions_and_summary_use_the_labels(tmp_path):
    labels = TrialLabels.from_config({"day0": "randomisation", "visits": {"BL": "baseline", "M3": "month 3"},
                                      "cohorts": {"1": {"label": "placebo"}}, "dose": "dose (mg)"})
    notes = trial_descriptions(labels, ["BL", "M3", "M6"])
    assert notes["visit"].startswith("Visit label, in study order BL, M3, M6 (BL = baseline; M3 = month 3)")
    assert notes["study_day"] == "Study day of the blood draw (day 0 = randomisation)."
    assert notes["cohort"] == "Dose cohort (1: placebo)." and notes["dose_1e6_per_kg"] == "Dose (mg)."
    populations = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["p", "p"], "visit": ["BL", "M3"],
                                "cohort": ["1", "1"], "population": "Treg", "percent_of": [5.0, 6.0],
                                "denominator": "CD4"})
    qc = pd.DataFrame({"sample_id": ["a", "b"], "events_in": 10, "events_out": 9, "percent_removed": 10.0,
                       "flags": ""})
    render_summary(populations, pd.DataFrame({"population": ["Treg"]}), qc, ["BL", "M3"], focus_populations=["Treg"],
                   path=tmp_path / "summary.html", labels=labels)
    html = (tmp_path / "summary.html").read_text()
    assert "cohorts: placebo (1)" in html and "infusion" not in html
