"""Bad input files: which errors exclude a file from the run (``on_bad_file: exclude``) and what an excluded
sample leaves behind.

An excluded sample keeps every per-sample output the workflow expects, each saying why it is excluded: an empty
event matrix, a QC row whose ``flags`` read ``excluded: <reason>``, empty population and MFI tables. It
contributes nothing to any pooled fit (batch transforms, pooled gates, discovery), so every other sample's
results are those of a run without it.
"""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd

from .compensation.keywords import CompensationError
from ..io.fcs import FcsReadError, sha256_of
from ..io.panel import PanelError
from .qc.core import SUMMARY_COLUMNS

BAD_FILE_ERRORS: tuple[type[Exception], ...] = (FcsReadError, PanelError, CompensationError, OSError)
ON_BAD_FILE = ("exclude", "fail")


def excluded_reason(adata: ad.AnnData) -> str:
    """The reason a preprocessed sample was excluded ('' when it was not)."""
    return str(adata.uns.get("excluded", ""))


def excluded_events(sample_id: str, reason: str) -> ad.AnnData:
    """The empty event matrix of an excluded sample (no events, no channels), with the reason in ``uns``."""
    adata = ad.AnnData(X=np.zeros((0, 0), dtype=np.float32),
                       obs=pd.DataFrame({"time_s": np.zeros(0), "qc_keep": np.zeros(0, dtype=bool)},
                                        index=pd.Index([], dtype=object)))
    adata.uns.update({"sample_id": sample_id, "excluded": reason})
    return adata


def excluded_qc_row(sample_id: str, reason: str) -> dict:
    """The sample's QC-table row: no events, ``flags`` = 'excluded: <reason>'."""
    row = {column: np.nan for column in SUMMARY_COLUMNS}
    row.update({"sample_id": sample_id, "flags": f"excluded: {reason}", "warnings": ""})
    return row


def excluded_metadata(sample_id: str, path: str | os.PathLike, reason: str) -> dict:
    """The provenance record of an excluded file: its SHA-256 when it can be read at all, and the reason."""
    try:
        digest = sha256_of(path)
    except OSError:
        digest = ""
    return {"sample_id": sample_id, "source_sha256": digest, "fcs_version": "", "events": 0,
            "acquisition_duration_s": None, "keywords": {}, "transform_scope": "", "dropped": [],
            "excluded": reason}
