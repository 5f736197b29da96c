"""Preprocess one FCS file and write everything the workflow keeps of it (rule preprocess_sample)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anndata as ad
import pandas as pd

from ..preprocess.exclusion import BAD_FILE_ERRORS, excluded_events, excluded_metadata, excluded_qc_row
from ..io.atomic import atomic_path
from ..io.panel import Panel
from ..io.tables import write_json, write_tsv
from ..preprocess.events import fit_batch_transforms, preprocess_fcs, write_h5ad
from ..preprocess.qc.plot import plot_event_qc, plot_excluded


def preprocess_sample_files(sample_id: str, fcs_path: str, panel_path: str, settings: dict, *, study_day: int | None,
                            transforms_path: str | None, matrix_path: str | None, on_bad_file: str,
                            outputs: dict, log: logging.Logger) -> None:
    """Read, compensate, transform and quality-check one file (:func:`cytotrial.preprocess.events.preprocess_fcs`)
    and write its outputs: ``events`` (AnnData), ``qc_row`` (TSV), ``qc_details`` (JSON), ``qc_plot`` (PNG) and
    ``metadata`` (de-identified, JSON).

    ``transforms_path``: the batch's transform parameters (rule fit_batch_transforms), None to fit them on this
    file. With ``on_bad_file: exclude`` a file that cannot be read, lacks a panel marker or has an unusable
    spillover is excluded: every output is still written, saying why (see :mod:`cytotrial.preprocess.exclusion`);
    otherwise the error stops the job.
    """
    events = preprocess_sample(sample_id, fcs_path, panel_path, settings, study_day=study_day,
                               transforms_path=transforms_path, matrix_path=matrix_path, on_bad_file=on_bad_file,
                               outputs=outputs, log=log)
    write_h5ad(events, outputs["events"])


def preprocess_sample(sample_id: str, fcs_path: str, panel: Panel | str, settings: dict, *, study_day: int | None,
                      transforms_path: str | None, matrix_path: str | None, on_bad_file: str, outputs: dict,
                      log: logging.Logger) -> ad.AnnData:
    """:func:`preprocess_sample_files` without writing the events: writes ``qc_row``, ``qc_details``, ``qc_plot``
    and ``metadata`` and returns the events (an excluded file's: no events, the reason in ``uns['excluded']``),
    for a job that gates them next (rule process_sample). ``panel``: the panel, or its YAML file."""
    batch = json.loads(Path(transforms_path).read_text()) if transforms_path else None
    try:
        adata, qc = preprocess_fcs(fcs_path, sample_id, _panel(panel), settings, study_day=study_day,
                                   batch_transforms=batch, matrix_path=matrix_path)
    except BAD_FILE_ERRORS as err:
        if on_bad_file != "exclude":
            raise
        return write_excluded_outputs(sample_id, fcs_path, str(err), outputs, log=log)
    log.info("%s: %d events x %d channels; QC kept %d (%.2f %% removed)%s", sample_id, adata.n_obs, adata.n_vars,
             qc.events_out, qc.percent_removed, f"; flags: {'; '.join(qc.flags)}" if qc.flags else "")
    write_tsv(pd.DataFrame([qc.summary_row(sample_id)]), outputs["qc_row"])
    write_json(qc.details(), outputs["qc_details"])
    with atomic_path(outputs["qc_plot"], suffix=".png") as tmp:
        plot_event_qc(qc, adata.obs["time_s"].to_numpy(), tmp, title=f"{sample_id}: event QC")
    write_json({"sample_id": sample_id, "fcs_version": adata.uns["fcs_version"], "events": adata.n_obs,
                "transform_scope": adata.uns["transform_scope"], **json.loads(adata.uns["metadata_json"])},
               outputs["metadata"])
    return adata


def write_excluded_outputs(sample_id: str, fcs_path: str, reason: str, outputs: dict,
                           *, log: logging.Logger) -> ad.AnnData:
    """The outputs of a file excluded from the run (``on_bad_file: exclude``), each saying why; returns its (empty)
    events."""
    log.warning("%s: excluded from the run (on_bad_file: exclude): %s", sample_id, reason)
    write_tsv(pd.DataFrame([excluded_qc_row(sample_id, reason)]), outputs["qc_row"])
    write_json({"excluded": reason}, outputs["qc_details"])
    with atomic_path(outputs["qc_plot"], suffix=".png") as tmp:
        plot_excluded(sample_id, reason, tmp)
    write_json(excluded_metadata(sample_id, fcs_path, reason), outputs["metadata"])
    return excluded_events(sample_id, reason)


def write_batch_transforms(batch: str, fcs_paths: list[str], panel: Panel | str, settings: dict, *,
                           matrix_path: str | None, on_bad_file: str, output: str, log: logging.Logger) -> None:
    """Fit one acquisition batch's transform parameters on its files' pooled events
    (:func:`cytotrial.preprocess.events.fit_batch_transforms`) and write them as JSON, logging the files left out.
    ``panel``: the panel, or its YAML file."""
    record = fit_batch_transforms(list(fcs_paths), _panel(panel), settings["compensation"],
                                  settings["transform"], matrix_path=matrix_path,
                                  max_events_per_file=settings["transform"].get("max_events_per_file", 50_000),
                                  on_bad_file=on_bad_file)
    for bad in record["excluded"]:
        log.warning("batch %s: %s left out of the fit: %s", batch, bad["file"], bad["reason"])
    record["batch"] = batch
    log.info("batch %s: %d files, %d events", batch, record["files"], record["events_used"])
    write_json(record, output)


def _panel(panel: Panel | str) -> Panel:
    """The panel itself, or read from its YAML file (a job of several samples reads it once and passes it on)."""
    return panel if isinstance(panel, Panel) else Panel.from_yaml(panel)
