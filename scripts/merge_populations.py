"""Rule merge_populations: one long table of every sample's populations with sample and patient columns."""

from cytotrial.io.tables import write_tsv
from cytotrial.quantify import merge_population_tables
from cytotrial.runlog import rule_logging
from cytotrial.sheets import load_patients, load_samples
from cytotrial.stats.outliers import flag_population_outliers

with rule_logging(snakemake) as log:
    patients = load_patients(snakemake.input.patients)
    samples = load_samples(snakemake.input.samples, snakemake.params.visits, patients)
    merged = flag_population_outliers(
        merge_population_tables(snakemake.input.populations, samples, patients, snakemake.params.visits))
    log.info("%d population values flagged as outliers (batch or own trajectory)", int(merged.outlier.sum()))
    log.info("merged %d rows from %d samples", len(merged), merged.sample_id.nunique())
    write_tsv(merged, snakemake.output.table)
