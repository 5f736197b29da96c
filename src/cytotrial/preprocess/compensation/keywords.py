"""The spillover matrix an instrument wrote into the FCS file ($SPILLOVER, FCS 3.1; $SPILL, BD FCS 3.0)."""

from __future__ import annotations

import numpy as np
import flowkit as fk


class CompensationError(ValueError):
    """No usable spillover matrix for a file."""


SPILLOVER_KEYWORDS = ("spillover", "spill", "$spillover", "$spill")


def spillover_from_keywords(sample: fk.Sample, source: str) -> fk.Matrix:
    """The spillover matrix stored in the file's $SPILLOVER (FCS 3.1) or $SPILL (BD FCS 3.0) keyword."""
    for key in SPILLOVER_KEYWORDS:
        text = sample.metadata.get(key)
        if text:
            detectors, values = parse_spill_text(text, key, source)
            missing = [d for d in detectors if d not in sample.pnn_labels]
            if missing:
                raise CompensationError(f"{source}: ${key.lstrip('$').upper()} names detectors {missing} that are not "
                                        f"parameters of the file ($PnN: {sample.pnn_labels}).")
            check_invertible(values, source)
            stains = [sample.pns_labels[sample.pnn_labels.index(d)] for d in detectors]
            return fk.Matrix(values, detectors, stains)
    raise CompensationError(f"{source}: no $SPILLOVER or $SPILL keyword, so the file carries no compensation matrix. "
                            "Set compensation.source to 'none' for uncompensated data or give an external matrix.")


def check_invertible(matrix: np.ndarray, source: str) -> None:
    """Raise if a spillover matrix cannot be inverted (singular or near-singular)."""
    condition = np.linalg.cond(matrix)
    if not np.isfinite(condition) or condition > 1e8:
        raise CompensationError(f"{source}: the spillover matrix is singular (condition number {condition:.3g}); "
                                "check for duplicated or all-zero rows.")


def parse_spill_text(text: str, keyword: str, source: str) -> tuple[list[str], np.ndarray]:
    """Detector names and the n x n matrix of a $SPILLOVER value 'n,name1,...,namen,v11,v12,...'."""
    fields = [f.strip() for f in text.split(",")]
    try:
        n = int(fields[0])
        detectors = fields[1:1 + n]
        values = np.array([float(v) for v in fields[1 + n:]])
    except (ValueError, IndexError) as err:
        raise CompensationError(f"{source}: ${keyword.lstrip('$').upper()} is malformed ({err}).") from None
    if n < 1 or len(detectors) != n or values.size != n * n:
        raise CompensationError(f"{source}: ${keyword.lstrip('$').upper()} declares {n} detectors but holds "
                                f"{len(detectors)} names and {values.size} values (expected {n * n}).")
    return detectors, values.reshape(n, n)
