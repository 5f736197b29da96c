"""Rule write_provenance: software versions, configuration, input-file SHA-256s and run date."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.html_pages import provenance_html, write_html
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    write_html(provenance_html(dict(snakemake.config), read_tsv(snakemake.input.files, "input-file table")),
               snakemake.output.html)
    log.info("wrote %s", snakemake.output.html)
