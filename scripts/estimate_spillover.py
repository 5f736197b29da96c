"""Rule estimate_spillover: the spillover matrix from single-stain controls (AutoSpill-style)."""

from cytotrial.preprocess.compensation import controls_from_manifest, spillover_from_controls, write_spillover_report
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    controls, unstained = controls_from_manifest(snakemake.input.manifest)
    estimate = spillover_from_controls(controls, unstained)
    log.info("%d controls; converged=%s after %d iterations; max |residual slope| %.2g", len(controls),
             estimate.converged, estimate.iterations, abs(estimate.residual_slopes).max())
    write_spillover_report(estimate, snakemake.output.matrix, snakemake.output.slopes)
