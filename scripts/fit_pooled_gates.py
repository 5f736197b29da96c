"""Rule fit_pooled_gates: fit the template's ``pool: batch`` gates on the pooled events of one batch."""

import anndata as ad

from cytotrial.gating.plan_engine import load_gating_template
from cytotrial.gating.pooling import fit_pooled_gates
from cytotrial.steps.gate_sample import qc_kept_events
from cytotrial.io.tables import write_json
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    samples = {}
    for sample_id, path in zip(snakemake.params.samples, snakemake.input.events, strict=True):
        samples[sample_id] = qc_kept_events(ad.read_h5ad(path))  # the events gate_sample gates
    template = load_gating_template(snakemake.input.template)
    fitted = fit_pooled_gates(samples, template, snakemake.wildcards.batch, snakemake.params.overrides)
    for population, fit in fitted.items():
        log.info("%s: %s fitted on %d events of %d samples", snakemake.wildcards.batch, population, fit["events"],
                 len(fit["samples"]))
    write_json(fitted, snakemake.output.pooled)
