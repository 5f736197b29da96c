"""Rule gate_sample: apply the gating template to one sample; write its populations, MFI, events and gates."""

from cytotrial.steps.gate_sample import gate_sample_files
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    gate_sample_files(snakemake.wildcards.sample, snakemake.input.events, snakemake.input.template,
                      dict(snakemake.output), overrides=snakemake.params.overrides,
                      pooled_path=snakemake.input.pooled or None, workspace_group=snakemake.params.workspace_group,
                      events_per_sample=snakemake.params.events_per_sample, log=log)
