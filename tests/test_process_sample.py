"""One job per sample (rule process_sample): its outputs are those of the two-job chain preprocess_sample ->
gate_sample, byte for byte, though its events never go through the .h5ad file between them."""

from __future__ import annotations

import filecmp
import logging

import yaml

from cytotrial.steps.gate_sample import gate_sample_files
from cytotrial.steps.preprocess_sample import preprocess_sample_files
from cytotrial.steps.process_sample import process_sample_files

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
        process_sample_files(sample_id, fcs, panel, SETTINGS, **arguments, template_path=template, overrides={},
                             workspace_group="All Samples", events_per_sample=1000, outputs=one, log=log)
        for key in one:
            assert filecmp.cmp(two[key], one[key], shallow=False), (sample_id, key)
