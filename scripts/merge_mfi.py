"""Rule merge_mfi: every sample's population MFI in one long table."""

import pandas as pd

from cytotrial.io.tables import write_tsv
from cytotrial.steps.runlog import rule_logging

with rule_logging(snakemake) as log:
    tables = [pd.read_csv(p, sep="\t", dtype={"sample_id": str}, keep_default_na=False, na_values=[""])
              for p in snakemake.input.mfi]
    merged = pd.concat(tables, ignore_index=True)
    merged["events"] = merged["events"].astype("Int64")
    log.info("%d rows (%d samples x populations x markers)", len(merged), merged.sample_id.nunique())
    write_tsv(merged, snakemake.output.table)
