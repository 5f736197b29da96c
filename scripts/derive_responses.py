"""Rule derive_responses: each patient's platelet response (IWG 2009) and the per-count annotations."""

from cytotrial.io.tables import write_tsv
from cytotrial.response import ResponseCriteria, evaluate_responses, load_platelets
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    platelets = load_platelets(snakemake.input.platelets)
    missing = sorted(set(snakemake.params.patients) - set(platelets.patient_id))
    if missing:
        raise ValueError(f"{snakemake.input.platelets}: no platelet counts for patient(s) {missing} of the patient "
                         "table; add their weekly counts (at least the baseline at study_day 0).")
    criteria = ResponseCriteria.from_dict(snakemake.params.criteria)
    log.info("criteria: %s", criteria.to_dict())
    responses, counts = evaluate_responses(platelets, criteria)
    log.info("%d patients: %s", len(responses), responses.response_category.value_counts().to_dict())
    write_tsv(responses, snakemake.output.responses)
    write_tsv(counts, snakemake.output.counts)
