"""Rule fit_batch_transforms: transform parameters of one acquisition batch, from its files' pooled events."""

from cytotrial.steps.preprocess_sample import write_batch_transforms
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    write_batch_transforms(snakemake.wildcards.batch, snakemake.input.fcs, snakemake.input.panel,
                           snakemake.params.settings, matrix_path=snakemake.input.matrix or None,
                           on_bad_file=snakemake.params.on_bad_file, output=snakemake.output.parameters, log=log)
