"""Rule review_gates: each gate on every sample as small multiples (patients x visits), outliers flagged; one
figure per gate, all in one job."""

from cytotrial.io.tables import read_tsv
from cytotrial.report.review_figures import render_gate_reviews
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    render_gate_reviews(dict(zip(snakemake.output.figures, snakemake.params.populations, strict=True)),
                        read_tsv(snakemake.input.populations, "population table"), list(snakemake.input.gates),
                        list(snakemake.input.review), visits=snakemake.params.visits,
                        fluorescence_units=snakemake.params.fluorescence_units, log=log)
