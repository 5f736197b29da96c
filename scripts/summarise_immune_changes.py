"""Rule summarise_immune_changes: populations by visit and their change from baseline."""

from cytotrial.io.tables import read_tsv, write_tsv
from cytotrial.steps.runlog import rule_logging
from cytotrial.stats.immune_change import immune_change_table

with rule_logging(snakemake) as log:
    populations = read_tsv(snakemake.input.populations, "population table")
    table = immune_change_table(populations, snakemake.params.visits, snakemake.params.baseline)
    log.info("%d population x visit rows", len(table))
    write_tsv(table, snakemake.output.table)
