"""Rule write_workbook: every results table in one Excel workbook with a README sheet."""

from pathlib import Path

from cytotrial.io.atomic import atomic_path
from cytotrial.io.tables import read_tsv
from cytotrial.report.labels import TrialLabels
from cytotrial.report.workbook import trial_descriptions, write_workbook
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    tables = {Path(p).stem: read_tsv(p, f"{Path(p).stem} table") for p in snakemake.input}
    with atomic_path(snakemake.output.xlsx, suffix=".xlsx") as tmp:
        descriptions = trial_descriptions(TrialLabels.from_config(snakemake.params.labels), snakemake.params.visits)
        write_workbook(tables, tmp, descriptions=descriptions, notes=snakemake.params.notes)
    log.info("%d sheets", len(tables))
