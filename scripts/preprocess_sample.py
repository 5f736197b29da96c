"""Rule preprocess_sample: read, check, compensate and transform one FCS file."""

from cytotrial.io.panel import Panel
from cytotrial.preprocess import preprocess_fcs, write_h5ad
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    adata = preprocess_fcs(snakemake.input.fcs, snakemake.wildcards.sample, Panel.from_yaml(snakemake.input.panel),
                           snakemake.params.transform, snakemake.params.compensation)
    log.info("%s: %d events x %d channels", snakemake.wildcards.sample, adata.n_obs, adata.n_vars)
    write_h5ad(adata, snakemake.output.events)
