"""Rule preprocess_sample: read, check, compensate, transform and quality-check one FCS file.

With ``on_bad_file: exclude`` a file that cannot be read, lacks a panel marker or has an unusable spillover is
excluded: every output is still written, saying why (see cytotrial.preprocess.exclusion).
"""

from cytotrial.steps.preprocess_sample import preprocess_sample_files
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    preprocess_sample_files(snakemake.wildcards.sample, snakemake.input.fcs, snakemake.input.panel,
                            snakemake.params.settings, study_day=snakemake.params.study_day,
                            transforms_path=snakemake.input.transforms or None,
                            matrix_path=snakemake.input.matrix or None, on_bad_file=snakemake.params.on_bad_file,
                            outputs=dict(snakemake.output), log=log)
