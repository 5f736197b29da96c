"""Rule process_samples: preprocess and gate the samples of one unit (a batch or patient) in one job."""

from cytotrial.steps.process_sample import process_samples
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    process_samples(snakemake.params.samples, fitted_batches=snakemake.params.fitted_batches,
                    panel_path=snakemake.input.panel, settings=snakemake.params.settings,
                    matrix_path=snakemake.input.matrix or None, on_bad_file=snakemake.params.on_bad_file,
                    template_path=snakemake.input.template, workspace_group=snakemake.params.workspace_group,
                    events_per_sample=snakemake.params.events_per_sample, log=log)
