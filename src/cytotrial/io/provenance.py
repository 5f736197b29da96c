"""Provenance of the input FCS files, de-identified: one row per file, and the instruments and software seen."""

from __future__ import annotations

import json
import os

import pandas as pd

INPUT_COLUMNS = ["sample_id", "patient_id", "visit", "study_day", "batch", "source_sha256", "fcs_version", "events",
                 "acquisition_duration_s", "cytometer", "transform_scope", "dropped_keywords", "excluded"]


def input_files_table(paths: list[str | os.PathLike], samples: pd.DataFrame) -> pd.DataFrame:
    """One row per FCS file: de-identified provenance (SHA-256 of the original, FCS version, events, duration,
    cytometer model, the names of the identifying keywords that were removed)."""
    rows = []
    for path in paths:
        record = json.loads(open(path).read())
        rows.append({"sample_id": record["sample_id"], "source_sha256": record["source_sha256"],
                     "fcs_version": record["fcs_version"], "events": record["events"],
                     "acquisition_duration_s": record["acquisition_duration_s"],
                     "cytometer": record["keywords"].get("$CYT", ""), "transform_scope": record["transform_scope"],
                     "dropped_keywords": ", ".join(record["dropped"]), "excluded": record.get("excluded", "")})
    info = samples[[c for c in ("sample_id", "patient_id", "visit", "study_day", "batch") if c in samples]]
    table = info.merge(pd.DataFrame(rows), on="sample_id", how="inner", validate="one_to_one")
    return table[[c for c in INPUT_COLUMNS if c in table]]


KEYWORD_COLUMNS = ["keyword", "value", "files", "batches"]


def fcs_keywords_table(paths: list[str | os.PathLike], samples: pd.DataFrame) -> pd.DataFrame:
    """Instruments and software of a run: one row per keyword and value seen ($CYT, $CYTSN when the config keeps
    serials, CREATOR as software, the FCS version), with the number of files and their acquisition batches.

    Read from the de-identified metadata records, so nothing the de-identification dropped can appear.
    """
    batch_of = dict(zip(samples.sample_id, samples["batch"])) if "batch" in samples else {}
    found: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        record = json.loads(open(path).read())
        if record.get("excluded"):
            continue
        seen = [("$CYT", record["keywords"].get("$CYT")), ("$CYTSN", record["keywords"].get("$CYTSN")),
                ("CREATOR", record.get("software")), ("FCS version", record.get("fcs_version"))]
        for key, value in seen:
            if value:
                found.setdefault((key, str(value)), []).append(record["sample_id"])
    rows = [{"keyword": key, "value": value, "files": len(ids),
             "batches": ", ".join(sorted({str(batch_of.get(i, i)) for i in ids}))}
            for (key, value), ids in sorted(found.items())]
    return pd.DataFrame(rows, columns=KEYWORD_COLUMNS)
