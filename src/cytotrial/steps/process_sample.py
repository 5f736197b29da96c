"""Preprocess and gate samples in one job (rule process_samples), the events kept in memory.

Each sample's chain, read -> compensate -> transform -> event QC -> gate -> quantify, runs in one process without
writing its events to ``results/events/{sample}.h5ad`` for a second job, and one job takes the samples of a
batch or patient (:func:`cytotrial.io.sheets.processing_units`), so Python starts and imports the library once per
job rather than twice per sample. The outputs are those of rules preprocess_sample and gate_sample, which the
workflow still uses when the template pools gates over a batch (the pooled fit needs the batch's events first).
"""

from __future__ import annotations

import logging
import time

from ..gating.plan_engine import StaticTemplate, load_gating_template
from ..gating.template import GatingTemplate
from ..io.panel import Panel
from .gate_sample import gate_sample_events
from .preprocess_sample import preprocess_sample, write_batch_transforms


def process_sample_files(sample_id: str, fcs_path: str, panel: Panel | str, settings: dict, *,
                         study_day: int | None, transforms_path: str | None, matrix_path: str | None,
                         on_bad_file: str, template: str | GatingTemplate | StaticTemplate,
                         overrides: dict, workspace_group: str, events_per_sample: int, outputs: dict,
                         log: logging.Logger) -> None:
    """Preprocess one FCS file (:func:`cytotrial.steps.preprocess_sample.preprocess_sample`) and gate its events
    (:func:`cytotrial.steps.gate_sample.gate_sample_events`).

    ``outputs``: qc_row, qc_details, qc_plot and metadata as rule preprocess_sample; populations, mfi, events (the
    gated event AnnData), gates, review and, as configured, gatingml, workspace and fcs exports as rule
    gate_sample. An excluded file (``on_bad_file: exclude``) gets every output, saying why. ``panel`` and
    ``template``: loaded, or their files.
    """
    events = preprocess_sample(sample_id, fcs_path, panel, settings, study_day=study_day,
                               transforms_path=transforms_path, matrix_path=matrix_path, on_bad_file=on_bad_file,
                               outputs=outputs, log=log)
    gate_sample_events(sample_id, events, template, outputs, overrides=overrides, pooled_path=None,
                       workspace_group=workspace_group, events_per_sample=events_per_sample, log=log)


def process_samples(samples: dict[str, dict], *, fitted_batches: dict[str, dict], panel_path: str, settings: dict,
                    matrix_path: str | None, on_bad_file: str, template_path: str, workspace_group: str,
                    events_per_sample: int, log: logging.Logger) -> None:
    """Process the samples of one job (rule process_samples) one after another, in one Python process.

    ``fitted_batches``: batch -> {"fcs": its files, "output": where to write its transform parameters}, the
    batches whose transforms this job fits first (:func:`cytotrial.steps.preprocess_sample.write_batch_transforms`).
    ``samples``: sample id -> {"fcs", "study_day", "transforms" (the batch's parameter file, or None), "overrides",
    "outputs"}, each processed by :func:`process_sample_files` exactly as a job of its own would; the panel and
    the template are read once for all of them.
    """
    panel, template = Panel.from_yaml(panel_path), load_gating_template(template_path, workspace_group)
    for batch, fit in sorted(fitted_batches.items()):
        write_batch_transforms(batch, fit["fcs"], panel, settings, matrix_path=matrix_path,
                               on_bad_file=on_bad_file, output=fit["output"], log=log)
    for sample_id, sample in sorted(samples.items()):
        started = time.process_time()
        process_sample_files(sample_id, sample["fcs"], panel, settings, study_day=sample["study_day"],
                             transforms_path=sample["transforms"], matrix_path=matrix_path, on_bad_file=on_bad_file,
                             template=template, overrides=sample["overrides"],
                             workspace_group=workspace_group, events_per_sample=events_per_sample,
                             outputs=sample["outputs"], log=log)
        log.info("%s: processed in %.2f s CPU", sample_id, time.process_time() - started)
