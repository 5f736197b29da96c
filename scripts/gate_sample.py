"""Rule gate_sample: apply the gating template to one sample; write its populations and realised gates."""

import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np

from cytotrial.gating.engine import apply_template
from cytotrial.gating.gatingml_export import export_gatingml
from cytotrial.exclusion import excluded_reason
from cytotrial.gating.flowjo import export_flowjo_workspace
from cytotrial.quantify.excluded import write_excluded_gating_outputs
from cytotrial.gating.plan_engine import AnnDataEvents, StaticTemplate, apply_plan, load_gating_template
from cytotrial.gating.review import review_events
from cytotrial.io.atomic import atomic_path
from cytotrial.io.tables import write_json, write_tsv
from cytotrial.preprocess import write_h5ad
from cytotrial.quantify import event_anndata, population_mfi, population_table, realised_gates
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    events = ad.read_h5ad(snakemake.input.events)
    if excluded_reason(events):  # on_bad_file: exclude: empty outputs that say why
        log.warning("%s: excluded: %s", snakemake.wildcards.sample, excluded_reason(events))
        write_excluded_gating_outputs(snakemake.wildcards.sample, excluded_reason(events), dict(snakemake.output))
    else:
        adata = events[events.obs["qc_keep"].to_numpy()].copy()  # gate only the events that passed the event QC
        log.info("%s: gating %d of %d events (event QC)", snakemake.wildcards.sample, adata.n_obs, events.n_obs)
        template = load_gating_template(snakemake.input.template, snakemake.params.workspace_group)
        if isinstance(template, StaticTemplate):
            result = apply_plan(adata, template)
        else:
            pooled = json.loads(Path(snakemake.input.pooled).read_text()) if snakemake.input.pooled else {}
            result = apply_template(adata, template, snakemake.params.overrides, pooled)
        table = population_table(result, snakemake.wildcards.sample)
        log.info("%s: %d populations, %d missing", snakemake.wildcards.sample, len(table),
                 int((table.status != "ok").sum()))
        write_tsv(table, snakemake.output.populations)
        write_tsv(population_mfi(result, adata, snakemake.wildcards.sample), snakemake.output.mfi)
        write_h5ad(event_anndata(result, adata, snakemake.wildcards.sample, snakemake.params.events_per_sample),
                   snakemake.output.events)
        realised = realised_gates(result, adata)
        write_json(realised, snakemake.output.gates)
        if not isinstance(template, StaticTemplate):  # static gates are the same on every sample: the template itself
            with atomic_path(snakemake.output.gatingml, suffix=".xml") as tmp:
                export_gatingml(realised, adata.var, adata.uns.get("spillover") or None, tmp)
            with warnings.catch_warnings(record=True):
                left_out = export_flowjo_workspace(snakemake.output.gatingml, AnnDataEvents(adata).flowkit_sample(),
                                                   snakemake.output.workspace)
            if left_out:
                log.info("%s: FlowJo workspace without %s (Boolean gates and their children: see the GatingML file)",
                         snakemake.wildcards.sample, left_out)
        with atomic_path(snakemake.output.review, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **review_events(result, adata))
