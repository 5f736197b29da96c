"""Rule plot_report_figures: swimmer plot, QC overview, trajectories and the change heatmap."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.figures import write_report_figures
from cytotrial.report.labels import TrialLabels
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    write_report_figures(read_tsv(snakemake.input.populations, "population table"),
                         read_tsv(snakemake.input.responses, "response table"),
                         read_tsv(snakemake.input.counts, "platelet count table"),
                         read_tsv(snakemake.input.patients, "patient table"),
                         qc=read_tsv(snakemake.input.qc, "QC table"), visits=snakemake.params.visits,
                         baseline=snakemake.params.baseline, focus=snakemake.params.focus, paths=dict(snakemake.output),
                         labels=TrialLabels.from_config(snakemake.params.labels))
    log.info("wrote %s", list(snakemake.output))
