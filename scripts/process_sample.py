"""Rule process_sample: preprocess and gate one sample in one job (the events stay in memory)."""

from cytotrial.steps.process_sample import process_sample_files
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    process_sample_files(snakemake.wildcards.sample, snakemake.input.fcs, snakemake.input.panel,
                         snakemake.params.settings, study_day=snakemake.params.study_day,
                         transforms_path=snakemake.input.transforms or None, matrix_path=snakemake.input.matrix or None,
                         on_bad_file=snakemake.params.on_bad_file, template_path=snakemake.input.template,
                         overrides=snakemake.params.overrides, workspace_group=snakemake.params.workspace_group,
                         events_per_sample=snakemake.params.events_per_sample, outputs=dict(snakemake.output), log=log)
