"""Rule process_sample: preprocess and gate one sample in one job (the events stay in memory)."""

from cytotrial.steps.process_sample import process_sample_files
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    process_sample_files(snakemake.wildcards.sample, snakemake.input.fcs, snakemake.input.panel,
                         snakemake.params.settings, snakemake.params.study_day, snakemake.input.transforms or None,
                         snakemake.input.matrix or None, snakemake.params.on_bad_file, snakemake.input.template,
                         snakemake.params.overrides, snakemake.params.workspace_group,
                         snakemake.params.events_per_sample, dict(snakemake.output), log)
