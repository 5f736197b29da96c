"""Per sample: the QC-kept, compensated events (and optionally each of some populations) as de-identified FCS 3.1.

The files hold the panel's channels as the workflow gated them (compensated, linear, float32) and Time in seconds,
with the de-identified keywords of the source file (no spillover: the values are compensated already) and the
study day and SHA-256 of the source, so FlowJo or flowkit can re-gate them without the original files.
"""

from __future__ import annotations

import json
import os
import re

import anndata as ad
import numpy as np

from ..io.deid import SOURCE_SHA256_KEYWORD, STUDY_DAY_KEYWORD, writable_keyword
from ..io.fcs_writer import write_fcs

COMPENSATION_KEYWORDS = ("$SPILLOVER", "SPILL", "$COMP", "APPLY COMPENSATION")
PARAMETER_KEYWORD = re.compile(r"\$?P\d+\D.*")  # $PnS, P5DISPLAY, ...: numbered as in the source file
CONTENT_KEYWORD = "CYTOTRIAL_EVENTS"
EXCLUDED_KEYWORD = "CYTOTRIAL_EXCLUDED"


def _keywords(events: ad.AnnData, content: str) -> dict[str, str]:
    """The source's de-identified, non-layout keywords (no compensation, no per-parameter ones) and provenance."""
    record = json.loads(events.uns["metadata_json"])
    keywords = {k: v for k, v in record["keywords"].items() if writable_keyword(k) and v.strip()
                and not PARAMETER_KEYWORD.fullmatch(k) and k not in COMPENSATION_KEYWORDS}
    keywords.update({"$TIMESTEP": "1", "$ORIGINALITY": "DataModified", CONTENT_KEYWORD: content,
                     SOURCE_SHA256_KEYWORD: record["source_sha256"]})
    if record.get("study_day") is not None:
        keywords[STUDY_DAY_KEYWORD] = str(record["study_day"])
    return keywords


def _write(events: ad.AnnData, rows: np.ndarray, path: str | os.PathLike, content: str) -> None:
    var = events.var
    values = np.column_stack([np.asarray(events.layers["compensated"])[rows],
                              events.obs["time_s"].to_numpy()[rows]]).astype(np.float32)
    channels = [*var["channel"].astype(str), "Time"]
    markers = [m or None for m in var["marker"].astype(str)] + [None]
    keywords = _keywords(events, content)
    time_range = float(np.ceil(values[:, -1].max())) + 1 if len(values) else 1.0
    for number, value_range in enumerate([*var["range"].astype(float), time_range], start=1):
        keywords[f"$P{number}R"] = f"{value_range:g}"
    write_fcs(path, values, channels, markers, keywords=keywords)


def export_sample_events(events: ad.AnnData, masks: dict[str, np.ndarray], path: str | os.PathLike,
                         population_paths: dict[str, str | os.PathLike]) -> None:
    """Write the QC-kept events of ``events`` (a preprocessed sample) to ``path`` and, for each population of
    ``population_paths``, its events (``masks``: the gating's population masks over all events) to its path."""
    kept = events.obs["qc_keep"].to_numpy()
    _write(events, kept, path, "QC-kept events, compensated")
    for population, population_path in population_paths.items():
        _write(events, kept & masks[population], population_path, f"population {population}, compensated")


def export_excluded_events(sample_id: str, reason: str, paths: list[str | os.PathLike]) -> None:
    """An excluded sample's export files: no events, the reason in a keyword."""
    for path in paths:
        write_fcs(path, np.zeros((0, 1), dtype=np.float32), ["Time"], [None],
                  keywords={EXCLUDED_KEYWORD: f"sample {sample_id} was excluded from the run: {reason}"})
