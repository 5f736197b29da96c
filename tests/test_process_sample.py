"""Samples processed in one job (rule process_samples): each sample's outputs are those of the two-job chain
preprocess_sample -> gate_sample, byte for byte, though its events never go through the .h5ad file between them,
and a unit's batch transforms are those rule fit_batch_transforms writes. Units: hand-worked sample sheets."""

from __future__ import annotations

import filecmp
import logging

import pandas as pd
import pytest
import yaml

from cytotrial.io.panel import Panel
from cytotrial.io.sheets import SheetError, processing_units
from cytotrial.preprocess.events import fit_batch_transforms
from cytotrial.steps.gate_sample import gate_sample_files
from cytotrial.steps.preprocess_sample import preprocess_sample_files
from cytotrial.steps.process_sample import process_sample_files, process_samples

from .conftest import REPO

DEFAULTS = yaml.safe_load((REPO / "workflow/schemas/defaults.yaml").read_text())
SETTINGS = {key: DEFAULTS[key] for key in ("compensation", "transform", "qc", "deidentification")}
PREPROCESSED = {"qc_row": "qc.tsv", "qc_details": "qc.json", "qc_plot": "qc.png", "metadata": "metadata.json"}
GATED = {"populations": "populations.tsv", "mfi": "mfi.tsv", "gates": "gates.json", "review": "review.npz",
         "events": "events.h5ad", "gatingml": "gatingml.xml", "workspace": "wsp", "fcs": "fcs",
         "fcs_Treg": "Treg.fcs"}


def outputs_in(folder):
    folder.mkdir()
    return {key: folder / name for key, name in {**PREPROCESSED, **GATED}.items()}


def test_one_job_per_sample_writes_what_the_two_jobs_write(small_trial, tmp_path):
    log = logging.getLogger("test_process_sample")
    design = small_trial["samples"].set_index("sample_id")
    corrupt = tmp_path / "corrupt.fcs"
    corrupt.write_bytes(open(design.fcs.iloc[0], "rb").read()[:5000])  # excluded: every output says why
    cases = {"P01_D0": design.loc["P01_D0", "fcs"], "P04_W4": design.loc["P04_W4", "fcs"], "bad": str(corrupt)}
    for sample_id, fcs in cases.items():
        two, one = outputs_in(tmp_path / f"{sample_id}_two"), outputs_in(tmp_path / f"{sample_id}_one")
        panel, template = str(REPO / "config/panel.yaml"), str(REPO / "config/gating/default.yaml")
        arguments = {"study_day": 28, "transforms_path": None, "matrix_path": None, "on_bad_file": "exclude"}
        events = tmp_path / f"{sample_id}.events.h5ad"
        preprocess_sample_files(sample_id, fcs, panel, SETTINGS, **arguments, outputs={**two, "events": events},
                                log=log)
        gate_sample_files(sample_id, str(events), template, two, overrides={}, pooled_path=None,
                          workspace_group="All Samples", events_per_sample=1000, log=log)
        process_sample_files(sample_id, fcs, panel, SETTINGS, **arguments, template=template, overrides={},
                             workspace_group="All Samples", events_per_sample=1000, outputs=one, log=log)
        for key in one:
            assert filecmp.cmp(two[key], one[key], shallow=False), (sample_id, key)


def test_a_unit_job_writes_what_one_job_per_sample_and_the_batch_fit_write(small_trial, tmp_path):
    """process_samples fits the batch's transforms (as fit_batch_transforms, by an independent call here) and
    processes each sample as process_sample_files does alone with those transforms."""
    log = logging.getLogger("test_process_sample")
    design = small_trial["samples"].set_index("sample_id")
    chosen = ["P01_D0", "P04_W4"]
    files = sorted(design.loc[chosen, "fcs"])
    panel = str(REPO / "config/panel.yaml")
    template = str(REPO / "config/gating/default.yaml")
    expected = fit_batch_transforms(files, Panel.from_yaml(panel), SETTINGS["compensation"], SETTINGS["transform"],
                                    matrix_path=None, max_events_per_file=SETTINGS["transform"]["max_events_per_file"],
                                    on_bad_file="exclude")
    samples = {}
    for sample_id in chosen:
        samples[sample_id] = {"fcs": design.loc[sample_id, "fcs"], "study_day": 28,
                              "transforms": str(tmp_path / "batch.json"), "overrides": {},
                              "outputs": outputs_in(tmp_path / f"{sample_id}_unit")}
    process_samples(samples, fitted_batches={"run1": {"fcs": files, "output": str(tmp_path / "batch.json")}},
                    panel_path=panel, settings=SETTINGS, matrix_path=None, on_bad_file="exclude",
                    template_path=template, workspace_group="All Samples", events_per_sample=1000, log=log)
    written = yaml.safe_load((tmp_path / "batch.json").read_text())
    assert written["batch"] == "run1" and written["markers"] == yaml.safe_load(yaml.safe_dump(expected["markers"]))
    assert written["files"] == 2 and written["events_used"] == expected["events_used"]
    for sample_id in chosen:
        alone = outputs_in(tmp_path / f"{sample_id}_alone")
        process_sample_files(sample_id, design.loc[sample_id, "fcs"], panel, SETTINGS, study_day=28,
                             transforms_path=str(tmp_path / "batch.json"), matrix_path=None, on_bad_file="exclude",
                             template=template, overrides={}, workspace_group="All Samples",
                             events_per_sample=1000, outputs=alone, log=log)
        for key in alone:
            assert filecmp.cmp(alone[key], samples[sample_id]["outputs"][key], shallow=False), (sample_id, key)


def sheet(rows):
    return pd.DataFrame(rows, columns=["sample_id", "patient_id", "batch"])


def test_units_are_batches_cut_at_samples_per_job():
    samples = sheet([("P1_D0", "P1", "r1"), ("P2_D0", "P2", "r1"), ("P3_D0", "P3", "r1"),
                     ("P1_W2", "P1", "r2"), ("P2_W2", "P2", "r2")])
    units = processing_units(samples, batch_transforms=True, samples_per_job=2)
    # r1 (3 samples) is cut in two; r2 (2) does not fit beside r1's second chunk (1 + 2 > 2)
    assert units == {
        "r1.1": {"samples": ["P1_D0", "P2_D0"], "batches": ["r1"], "fitted_batches": []},
        "r1.2": {"samples": ["P3_D0"], "batches": ["r1"], "fitted_batches": []},
        "r2": {"samples": ["P1_W2", "P2_W2"], "batches": ["r2"], "fitted_batches": ["r2"]}}
    # transforms per file: the same units, nothing to fit per batch
    assert [u["fitted_batches"] for u in processing_units(samples, batch_transforms=False, samples_per_job=2)
            .values()] == [[], [], []]


def test_consecutive_batches_share_a_unit():
    samples = sheet([("P1_D0", "P1", "r1"), ("P2_D0", "P2", "r1"), ("P3_D0", "P3", "r1"),
                     ("P1_W2", "P1", "r2"), ("P2_W2", "P2", "r2"), ("P1_W4", "P1", "r3")])
    # 3 + 2 samples fill a unit of 5; r3 starts the next
    assert processing_units(samples, batch_transforms=True, samples_per_job=5) == {
        "r1-r2": {"samples": ["P1_D0", "P2_D0", "P3_D0", "P1_W2", "P2_W2"], "batches": ["r1", "r2"],
                  "fitted_batches": ["r1", "r2"]},
        "r3": {"samples": ["P1_W4"], "batches": ["r3"], "fitted_batches": ["r3"]}}


def test_units_without_batches_are_patients():
    samples = sheet([("P1_D0", "P1", "P1_D0"), ("P1_W2", "P1", "P1_W2"), ("P2_D0", "P2", "P2_D0")])
    # each sample is its own batch (the sheet has none): by patient, each sample's transforms fitted in the job
    assert processing_units(samples, batch_transforms=True, samples_per_job=2) == {
        "P1": {"samples": ["P1_D0", "P1_W2"], "batches": ["P1_D0", "P1_W2"], "fitted_batches": ["P1_D0", "P1_W2"]},
        "P2": {"samples": ["P2_D0"], "batches": ["P2_D0"], "fitted_batches": ["P2_D0"]}}
    assert list(processing_units(samples, batch_transforms=True, samples_per_job=8)) == ["P1-P2"]
    with pytest.raises(SheetError, match="samples_per_job is 0"):
        processing_units(samples, batch_transforms=True, samples_per_job=0)
