"""Rule render_table_html: one results table as an HTML page for the report."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.html_pages import table_html, write_html
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    table = read_tsv(snakemake.input.table, f"{snakemake.wildcards.table} table")
    write_html(table_html(table, snakemake.params.title), snakemake.output.html)
    log.info("%s: %d rows", snakemake.wildcards.table, len(table))
