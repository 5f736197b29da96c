"""The run's event-QC table: one row per sample."""

from __future__ import annotations

import os

import pandas as pd


def qc_table(paths: list[str | os.PathLike], samples: pd.DataFrame,
             missing: dict[str, str] | None = None) -> pd.DataFrame:
    """The per-sample event-QC rows in sample-sheet order, with patient and visit; samples whose FCS file is
    missing (``missing``: sample_id -> reason) get a row flagged 'excluded: <reason>'."""
    rows = pd.concat([pd.read_csv(p, sep="\t", dtype={"sample_id": str}, keep_default_na=False) for p in paths]
                     + [pd.DataFrame([{"sample_id": s, "flags": f"excluded: {r}", "warnings": ""}])
                        for s, r in (missing or {}).items()], ignore_index=True)
    info = samples[["sample_id", "patient_id", "visit"]]
    return info.merge(rows, on="sample_id", how="inner", validate="one_to_one")
