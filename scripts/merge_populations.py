"""Rule merge_populations: one long table of every sample's populations with sample, patient, QC, absolute
counts, outlier flags and rescue-window flags."""

from cytotrial.io.tables import read_tsv, write_tsv
from cytotrial.quantify import absolute_counts, add_qc_columns, merge_population_tables
from cytotrial.response import load_platelets
from cytotrial.steps.runlog import rule_logging
from cytotrial.io.sheets import load_patients, load_samples
from cytotrial.stats.outliers import add_flags, flag_population_outliers
from cytotrial.stats.rescue import flag_rescue_window

with rule_logging(snakemake) as log:
    patients = load_patients(snakemake.input.patients)
    samples = load_samples(snakemake.input.samples, snakemake.params.visits, patients)
    merged = merge_population_tables(snakemake.input.populations, samples, patients, snakemake.params.visits)
    blood = read_tsv(snakemake.input.blood_counts, "blood-count table") if snakemake.input.blood_counts else None
    merged = absolute_counts(merged, snakemake.params.references, blood, source=str(snakemake.input.blood_counts))
    merged = add_qc_columns(merged, read_tsv(snakemake.input.qc, "QC table"))
    merged = add_flags(flag_population_outliers(merged))
    log.info("%d population values flagged as outliers (batch and own trajectory, or patient)",
             int(merged.outlier.sum()))
    gate_flags = merged[merged.gate_flag != ""]
    log.info("%d gates flagged by gate QC in %d samples%s", len(gate_flags), gate_flags.sample_id.nunique(),
             "".join(f"\n  {r.sample_id} {r.population}: {r.gate_flag}" for r in gate_flags.itertuples()))
    merged = flag_rescue_window(merged, load_platelets(snakemake.input.platelets), snakemake.params.rescue_window_days)
    log.info("%d samples drawn within %d days after a rescue therapy", merged.loc[merged.in_rescue_window,
             "sample_id"].nunique(), snakemake.params.rescue_window_days)
    log.info("merged %d rows from %d samples; %d with absolute counts", len(merged), merged.sample_id.nunique(),
             int(merged.abs_count.notna().sum()))
    write_tsv(merged, snakemake.output.table)
