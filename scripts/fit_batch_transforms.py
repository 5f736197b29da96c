"""Rule fit_batch_transforms: transform parameters of one acquisition batch, from its files' pooled events."""

from cytotrial.io.panel import Panel
from cytotrial.io.tables import write_json
from cytotrial.preprocess.events import fit_batch_transforms
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    settings = snakemake.params.settings
    record = fit_batch_transforms(list(snakemake.input.fcs), Panel.from_yaml(snakemake.input.panel),
                                  settings["compensation"], settings["transform"],
                                  matrix_path=snakemake.input.matrix or None,
                                  max_events_per_file=settings["transform"].get("max_events_per_file", 50_000),
                                  on_bad_file=snakemake.params.on_bad_file)
    for bad in record["excluded"]:
        log.warning("batch %s: %s left out of the fit: %s", snakemake.wildcards.batch, bad["file"], bad["reason"])
    record["batch"] = snakemake.wildcards.batch
    log.info("batch %s: %d files, %d events", snakemake.wildcards.batch, record["files"], record["events_used"])
    write_json(record, snakemake.output.parameters)
