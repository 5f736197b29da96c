"""Rule render_summary: the one-page HTML summary of the run."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.labels import TrialLabels
from cytotrial.report.summary import render_summary
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    populations = read_tsv(snakemake.input.populations, "population table")
    changes = read_tsv(snakemake.input.changes, "immune-change table")
    qc = read_tsv(snakemake.input.qc, "QC table")
    render_summary(populations, changes, qc, snakemake.params.visits, focus_populations=snakemake.params.focus,
                   path=snakemake.output.html, labels=TrialLabels.from_config(snakemake.params.labels))
    log.info("wrote %s", snakemake.output.html)
