"""Rule plot_statistics_figures: volcano plot of responders vs non-responders, population vs platelets."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.figures import plot_rmcorr, plot_volcano, response_groups
from cytotrial.response import load_platelets
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    plot_volcano(read_tsv(snakemake.input.comparison, "response comparison"), snakemake.output.volcano)
    plot_rmcorr(read_tsv(snakemake.input.populations, "population table"), load_platelets(snakemake.input.platelets),
                read_tsv(snakemake.input.rmcorr, "rmcorr table"),
                response_groups(read_tsv(snakemake.input.responses, "response table")),
                population=snakemake.params.population, path=snakemake.output.rmcorr)
    log.info("wrote %s", list(snakemake.output))
