"""Rule discover_clusters: pooled gated events clustered and compared with the gated populations."""

from pathlib import Path

from cytotrial.discovery import discover, write_discovery_figures
from cytotrial.discovery.run import sample_info_table
from cytotrial.io.tables import read_tsv, write_tsv
from cytotrial.preprocess.events import write_h5ad
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    info = sample_info_table(read_tsv(snakemake.input.populations, "population table"),
                             read_tsv(snakemake.input.responses, "response table"))
    result = discover(list(snakemake.input.events), info, snakemake.params.settings)
    log.info("%d pooled events (%d per sample; skipped: %s)", result.clustered.n_obs,
             result.clustered.uns["cells_per_sample"], result.clustered.uns["skipped"])
    for row in result.concordance.itertuples():
        log.info("%s: %d clusters, adjusted Rand index %.3f vs gates", row.method, row.clusters,
                 row.adjusted_rand_index)
    write_tsv(result.concordance, snakemake.output.concordance)
    write_tsv(result.annotation, snakemake.output.annotation)
    write_tsv(result.abundance, snakemake.output.abundance)
    write_discovery_figures(result, Path(snakemake.output.figures[0]).parent, snakemake.params.units)
    write_h5ad(result.clustered, snakemake.output.h5ad)
