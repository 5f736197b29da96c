"""Rule review_gate: one gate on every sample as small multiples (patients x visits), outliers flagged."""

from pathlib import Path

from cytotrial.io.atomic import atomic_path
from cytotrial.io.tables import read_tsv
from cytotrial.report.review_figures import load_sample_review, render_gate_review
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    populations = read_tsv(snakemake.input.populations, "population table")
    reviews = {Path(g).name.removesuffix(".json"): load_sample_review(g, r, snakemake.params.population)
               for g, r in zip(snakemake.input.gates, snakemake.input.review, strict=True)}
    with atomic_path(snakemake.output.figure, suffix=".png") as tmp:
        render_gate_review(snakemake.params.population, populations, reviews, snakemake.params.visits, tmp,
                           fluorescence_units=snakemake.params.fluorescence_units)
    log.info("%s: %d samples", snakemake.params.population, len(reviews))
