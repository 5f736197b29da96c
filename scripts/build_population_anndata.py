"""Rule build_population_anndata: samples x populations AnnData with every statistic as a layer."""

from cytotrial.io.tables import read_tsv
from cytotrial.preprocess.events import write_h5ad
from cytotrial.quantify import population_anndata
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    adata = population_anndata(read_tsv(snakemake.input.populations, "population table"),
                               read_tsv(snakemake.input.mfi, "MFI table"),
                               read_tsv(snakemake.input.responses, "response table"))
    log.info("%d samples x %d populations, layers %s", adata.n_obs, adata.n_vars, list(adata.layers))
    write_h5ad(adata, snakemake.output.h5ad)
