"""Rule preprocess_sample: read, check, compensate, transform and quality-check one FCS file.

With ``on_bad_file: exclude`` a file that cannot be read, lacks a panel marker or has an unusable spillover is
excluded: every output is still written, saying why (see cytotrial.exclusion).
"""

import json

import pandas as pd

from cytotrial.exclusion import (BAD_FILE_ERRORS, excluded_events, excluded_metadata, excluded_qc_row)
from cytotrial.io.atomic import atomic_path
from cytotrial.io.panel import Panel
from cytotrial.io.tables import write_json, write_tsv
from cytotrial.preprocess import preprocess_fcs, write_h5ad
from cytotrial.qc.plot import plot_event_qc, plot_excluded
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    sample_id = snakemake.wildcards.sample
    batch = json.loads(open(snakemake.input.transforms).read()) if snakemake.input.transforms else None
    try:
        adata, qc = preprocess_fcs(snakemake.input.fcs, sample_id, Panel.from_yaml(snakemake.input.panel),
                                   snakemake.params.settings, snakemake.params.study_day, batch,
                                   snakemake.input.matrix or None)
    except BAD_FILE_ERRORS as err:
        if snakemake.params.on_bad_file != "exclude":
            raise
        reason = str(err)
        log.warning("%s: excluded from the run (on_bad_file: exclude): %s", sample_id, reason)
        write_tsv(pd.DataFrame([excluded_qc_row(sample_id, reason)]), snakemake.output.qc_row)
        write_json({"excluded": reason}, snakemake.output.qc_details)
        with atomic_path(snakemake.output.qc_plot, suffix=".png") as tmp:
            plot_excluded(sample_id, reason, tmp)
        write_json(excluded_metadata(sample_id, snakemake.input.fcs, reason), snakemake.output.metadata)
        write_h5ad(excluded_events(sample_id, reason), snakemake.output.events)
    else:
        log.info("%s: %d events x %d channels; QC kept %d (%.2f %% removed)%s", sample_id, adata.n_obs,
                 adata.n_vars, qc.events_out, qc.percent_removed,
                 f"; flags: {'; '.join(qc.flags)}" if qc.flags else "")
        write_tsv(pd.DataFrame([qc.summary_row(sample_id)]), snakemake.output.qc_row)
        write_json(qc.details(), snakemake.output.qc_details)
        with atomic_path(snakemake.output.qc_plot, suffix=".png") as tmp:
            plot_event_qc(qc, adata.obs["time_s"].to_numpy(), tmp, title=f"{sample_id}: event QC")
        write_json({"sample_id": sample_id, "fcs_version": adata.uns["fcs_version"], "events": adata.n_obs,
                    "transform_scope": adata.uns["transform_scope"], **json.loads(adata.uns["metadata_json"])},
                   snakemake.output.metadata)
        write_h5ad(adata, snakemake.output.events)
