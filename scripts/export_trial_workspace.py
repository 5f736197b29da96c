"""Rule export_trial_workspace: one FlowJo workspace of the trial over the exported FCS files, a group per visit."""

import json

from cytotrial.export import write_trial_workspace
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    samples = []
    for sample_id, visit, gatingml, fcs, gates in zip(snakemake.params.samples, snakemake.params.visits,
                                                      snakemake.input.gatingml, snakemake.input.fcs,
                                                      snakemake.input.gates):
        excluded = json.loads(open(gates).read()).get("excluded")
        if excluded:
            log.warning("%s: left out of the workspace (excluded: %s)", sample_id, excluded)
            continue
        samples.append({"sample_id": sample_id, "visit": visit, "gatingml": gatingml, "fcs": fcs})
    left_out = write_trial_workspace(samples, snakemake.params.visit_order, snakemake.output.workspace)
    log.info("%d samples; gates not in the workspace (Boolean gates, in the GatingML files only): %s",
             len(samples), left_out)
