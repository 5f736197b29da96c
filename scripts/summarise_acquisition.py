"""Rule summarise_acquisition: the run's event-QC table and the provenance table of its FCS files."""

from cytotrial.io.provenance import fcs_keywords_table, input_files_table
from cytotrial.io.tables import read_tsv, write_tsv
from cytotrial.preprocess.qc.table import qc_table
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    samples = read_tsv(snakemake.input.samples, "sample sheet")
    qc = qc_table(list(snakemake.input.qc), samples, snakemake.params.missing)
    log.info("%d samples, %d flagged", len(qc), int((qc["flags"].fillna("") != "").sum()))
    write_tsv(qc, snakemake.output.qc)
    write_tsv(input_files_table(list(snakemake.input.metadata), samples), snakemake.output.inputs)
    write_tsv(fcs_keywords_table(list(snakemake.input.metadata), samples), snakemake.output.keywords)
