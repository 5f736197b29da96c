"""Rule gate_sample: apply the gating template to one sample; write its populations and realised gates."""

import anndata as ad
import numpy as np

from cytotrial.gating.engine import apply_template
from cytotrial.gating.gatingml_export import export_gatingml
from cytotrial.gating.plan_engine import StaticTemplate, apply_plan, load_gating_template
from cytotrial.gating.review import review_events
from cytotrial.io.atomic import atomic_path
from cytotrial.io.tables import write_json, write_tsv
from cytotrial.quantify import population_table, realised_gates
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    events = ad.read_h5ad(snakemake.input.events)
    adata = events[events.obs["qc_keep"].to_numpy()].copy()  # gate only the events that passed the event QC
    log.info("%s: gating %d of %d events (event QC)", snakemake.wildcards.sample, adata.n_obs, events.n_obs)
    template = load_gating_template(snakemake.input.template, snakemake.params.workspace_group)
    if isinstance(template, StaticTemplate):
        result = apply_plan(adata, template)
    else:
        result = apply_template(adata, template, snakemake.params.overrides)
    table = population_table(result, snakemake.wildcards.sample)
    log.info("%s: %d populations, %d missing", snakemake.wildcards.sample, len(table),
             int((table.status != "ok").sum()))
    write_tsv(table, snakemake.output.populations)
    realised = realised_gates(result, adata)
    write_json(realised, snakemake.output.gates)
    with atomic_path(snakemake.output.gatingml, suffix=".xml") as tmp:
        if isinstance(template, StaticTemplate):  # static gates are the same on every sample: the template itself
            tmp.write_bytes(template.gatingml)
        else:
            export_gatingml(realised, adata.var, adata.uns.get("spillover") or None, tmp)
    with atomic_path(snakemake.output.review, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **review_events(result, adata))
