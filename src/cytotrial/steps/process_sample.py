"""Preprocess and gate one sample in one job (rule process_sample).

The workflow's per-sample chain, read -> compensate -> transform -> event QC -> gate -> quantify, in one process:
the events are gated in memory instead of being written to ``results/events/{sample}.h5ad`` and read back by a
second job, and Python starts and imports the library once per sample instead of twice. The outputs are those of
rules preprocess_sample and gate_sample (which the workflow still uses when the template pools gates over a batch,
as the pooled fit needs every sample's preprocessed events first).
"""

from __future__ import annotations

import logging

from .gate_sample import gate_sample_events
from .preprocess_sample import preprocess_sample


def process_sample_files(sample_id: str, fcs_path: str, panel_path: str, settings: dict, *, study_day: int | None,
                         transforms_path: str | None, matrix_path: str | None, on_bad_file: str, template_path: str,
                         overrides: dict, workspace_group: str, events_per_sample: int, outputs: dict,
                         log: logging.Logger) -> None:
    """Preprocess one FCS file (:func:`cytotrial.steps.preprocess_sample.preprocess_sample`) and gate its events
    (:func:`cytotrial.steps.gate_sample.gate_sample_events`).

    ``outputs``: qc_row, qc_details, qc_plot and metadata as rule preprocess_sample; populations, mfi, events (the
    gated event AnnData), gates, review and, as configured, gatingml, workspace and fcs exports as rule
    gate_sample. An excluded file (``on_bad_file: exclude``) gets every output, saying why.
    """
    events = preprocess_sample(sample_id, fcs_path, panel_path, settings, study_day=study_day,
                               transforms_path=transforms_path, matrix_path=matrix_path, on_bad_file=on_bad_file,
                               outputs=outputs, log=log)
    gate_sample_events(sample_id, events, template_path, outputs, overrides=overrides, pooled_path=None,
                       workspace_group=workspace_group, events_per_sample=events_per_sample, log=log)
