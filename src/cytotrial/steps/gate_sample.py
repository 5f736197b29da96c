"""Gate one preprocessed sample and write everything the workflow keeps of it (rule gate_sample)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import anndata as ad
import numpy as np

from ..export import export_excluded_events, export_sample_events
from ..gating.engine import apply_template
from ..gating.template import GatingTemplate
from ..gating.flowjo import export_flowjo_workspace, workspace_sample
from ..gating.gatingml_export import export_gatingml
from ..gating.plan_engine import AnnDataEvents, StaticTemplate, apply_plan, load_gating_template
from ..gating.review import review_events
from ..io.atomic import atomic_path
from ..io.tables import write_json, write_tsv
from ..preprocess.events import write_h5ad
from ..preprocess.exclusion import excluded_reason
from ..quantify import event_anndata, population_mfi, population_table, realised_gates
from .excluded_outputs import write_excluded_gating_outputs


def compact_rows(values: np.ndarray, keep: np.ndarray, block_rows: int = 16_384) -> np.ndarray:
    """``values[keep]`` computed IN PLACE: the kept rows are moved to the front of ``values`` block by block
    (a kept row only ever moves towards the start, onto rows already read) and the first ``keep.sum()`` rows
    are returned as a view. No second matrix is allocated; ``values`` itself is overwritten."""
    written = 0
    for start in range(0, len(keep), block_rows):
        kept = values[start:start + block_rows][keep[start:start + block_rows]]  # a copy of at most one block
        values[written:written + len(kept)] = kept
        written += len(kept)
    return values[:written]


def qc_kept_events(events: ad.AnnData) -> ad.AnnData:
    """The events that passed the event QC, equal to ``events[events.obs['qc_keep']].copy()`` but without a
    second copy of the event matrices: X and every layer are compacted in place (:func:`compact_rows`), so
    ``events`` must not be used afterwards (it is left without X and layers)."""
    keep = events.obs["qc_keep"].to_numpy()
    x = compact_rows(np.asarray(events.X), keep)
    layers = {name: compact_rows(np.asarray(events.layers[name]), keep) for name in list(events.layers)}
    events.X = None
    for name in list(events.layers):
        del events.layers[name]
    return ad.AnnData(X=x, obs=events.obs[keep].copy(), var=events.var.copy(), uns=events.uns.copy(),
                      layers=layers)


def gate_sample_files(sample_id: str, events_path: str, template_path: str, outputs: dict, *, overrides: dict,
                      pooled_path: str | None, workspace_group: str, events_per_sample: int,
                      log: logging.Logger) -> None:
    """Gate the QC-kept events of one sample and write its outputs.

    ``outputs``: populations, mfi, events (AnnData), gates (JSON), review (npz) and, for an adaptive template,
    gatingml and workspace. An excluded sample (bad file) gets empty outputs that say why.
    """
    gate_sample_events(sample_id, ad.read_h5ad(events_path), template_path, outputs, overrides=overrides,
                       pooled_path=pooled_path, workspace_group=workspace_group, events_per_sample=events_per_sample,
                       log=log)


def gate_sample_events(sample_id: str, events: ad.AnnData, template: str | GatingTemplate | StaticTemplate,
                       outputs: dict, *, overrides: dict,
                       pooled_path: str | None, workspace_group: str, events_per_sample: int,
                       log: logging.Logger) -> None:
    """:func:`gate_sample_files` on events in memory (the preprocessed events of the same job, rule
    process_sample, or those read from the file of rule preprocess_sample). ``template``: the gating template
    (:func:`cytotrial.gating.plan_engine.load_gating_template`), or its file."""
    if excluded_reason(events):
        log.warning("%s: excluded: %s", sample_id, excluded_reason(events))
        write_excluded_gating_outputs(sample_id, excluded_reason(events), outputs)
        export_excluded_events(sample_id, excluded_reason(events), [p for k, p in outputs.items()
                                                                     if k.startswith("fcs")])
        return
    kept = events.obs["qc_keep"].to_numpy()  # gate only the events that passed the event QC (root mask)
    log.info("%s: gating %d of %d events (event QC)", sample_id, int(kept.sum()), events.n_obs)
    if isinstance(template, (str, os.PathLike)):
        template = load_gating_template(template, workspace_group)
    if isinstance(template, StaticTemplate):
        result = apply_plan(events, template, root=kept)
    else:
        pooled = json.loads(Path(pooled_path).read_text()) if pooled_path else {}
        result = apply_template(events, template, overrides, pooled, root=kept)
    table = population_table(result, sample_id)
    log.info("%s: %d populations, %d missing", sample_id, len(table), int((table.status != "ok").sum()))
    write_tsv(table, outputs["populations"])
    write_tsv(population_mfi(result, events, sample_id), outputs["mfi"])
    if "fcs" in outputs:  # the QC-kept compensated events (and populations "fcs_<name>") for FlowJo or flowkit
        export_sample_events(events, result.masks, outputs["fcs"],
                             {k.removeprefix("fcs_"): p for k, p in outputs.items() if k.startswith("fcs_")})
    write_h5ad(event_anndata(result, events, sample_id, events_per_sample), outputs["events"])
    realised = realised_gates(result, events)
    write_json(realised, outputs["gates"])
    if not isinstance(template, StaticTemplate):  # static gates are the template itself, the same on every sample
        with atomic_path(outputs["gatingml"], suffix=".xml") as tmp:
            export_gatingml(realised, events.var, events.uns.get("spillover") or None, tmp)
        with warnings.catch_warnings(record=True):
            source = AnnDataEvents(events)
            left_out = export_flowjo_workspace(outputs["gatingml"], workspace_sample(source.id, source.pnn,
                                                                                     int(kept.sum())),
                                               outputs["workspace"])
        if left_out:
            log.info("%s: FlowJo workspace without %s (Boolean gates and their children: see the GatingML file)",
                     sample_id, left_out)
    with atomic_path(outputs["review"], suffix=".npz") as tmp:
        np.savez_compressed(tmp, **review_events(result, events))
