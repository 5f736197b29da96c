"""Rule preprocess_sample: read, check, compensate, transform and quality-check one FCS file."""

import json

import pandas as pd

from cytotrial.io.atomic import atomic_path
from cytotrial.io.panel import Panel
from cytotrial.io.tables import write_json, write_tsv
from cytotrial.preprocess import preprocess_fcs, write_h5ad
from cytotrial.qc.plot import plot_event_qc
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    sample_id = snakemake.wildcards.sample
    batch = json.loads(open(snakemake.input.transforms).read()) if snakemake.input.transforms else None
    adata, qc = preprocess_fcs(snakemake.input.fcs, sample_id, Panel.from_yaml(snakemake.input.panel),
                               snakemake.params.settings, snakemake.params.study_day, batch,
                               snakemake.input.matrix or None)
    log.info("%s: %d events x %d channels; QC kept %d (%.2f %% removed)%s", sample_id, adata.n_obs, adata.n_vars,
             qc.events_out, qc.percent_removed, f"; flags: {'; '.join(qc.flags)}" if qc.flags else "")
    write_tsv(pd.DataFrame([qc.summary_row(sample_id)]), snakemake.output.qc_row)
    write_json(qc.details(), snakemake.output.qc_details)
    with atomic_path(snakemake.output.qc_plot, suffix=".png") as tmp:
        plot_event_qc(qc, adata.obs["time_s"].to_numpy(), tmp, title=f"{sample_id}: event QC")
    write_json({"sample_id": sample_id, "fcs_version": adata.uns["fcs_version"], "events": adata.n_obs,
                "transform_scope": adata.uns["transform_scope"], **json.loads(adata.uns["metadata_json"])},
               snakemake.output.metadata)
    write_h5ad(adata, snakemake.output.events)
