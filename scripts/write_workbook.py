"""Rule write_workbook: every results table in one Excel workbook with a README sheet."""

from pathlib import Path

from cytotrial.io.atomic import atomic_path
from cytotrial.io.tables import read_tsv
from cytotrial.report.workbook import write_workbook
from cytotrial.runlog import rule_logging

with rule_logging(snakemake) as log:
    tables = {Path(p).stem: read_tsv(p, f"{Path(p).stem} table") for p in snakemake.input}
    with atomic_path(snakemake.output.xlsx, suffix=".xlsx") as tmp:
        write_workbook(tables, tmp, notes=snakemake.params.notes)
    log.info("%d sheets", len(tables))
