"""Rule render_table_pages: every report table as an HTML page, in one job."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.html_pages import table_html, write_html
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    for source, page, title in zip(snakemake.input.tables, snakemake.output.pages, snakemake.params.titles,
                                   strict=True):
        table = read_tsv(source, f"{title} table")
        write_html(table_html(table, title), page)
        log.info("%s: %d rows", source, len(table))
