"""Ground truth: every reported population as a set of leaf labels, and its true frequency in a sample.

Population names and parents follow the default gating template (config/gating/default.yaml), so a gated
population can be compared with its truth by name. Gates with no biological definition of their own (the
CD25hi CD127lo intermediate gate, the boundary gate) have no truth entry; Treg are compared as % of CD4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cells import ALL_LABELS, LEAF_NAMES, LABEL_CODE

_T = [n for n in LEAF_NAMES if n.startswith(("CD4_", "Treg_", "CD8_", "T_DN"))]
_CD4 = [n for n in LEAF_NAMES if n.startswith(("CD4_", "Treg_"))]
_B = ["B_naive", "B_memory", "Breg", "Plasmablast"]
_NK = ["NK_bright", "NK_dim"]
_CELLS = [n for n in ALL_LABELS if n != "debris"]
_LIVE = list(LEAF_NAMES)

# population -> (parent, leaf labels in it)
TRUTH_POPULATIONS: dict[str, tuple[str | None, list[str]]] = {
    "cells": (None, _CELLS),
    "singlets": ("cells", [n for n in _CELLS if n != "doublet"]),
    "live": ("singlets", [*_LIVE, "nonleukocyte"]),
    "leukocytes": ("live", _LIVE),
    "lymphocytes": ("leukocytes", _T + _B + _NK),
    "granulocytes": ("leukocytes", ["Neutrophil", "Eosinophil"]),
    "monocytes": ("leukocytes", ["Mono_classical", "Mono_intermediate", "Mono_nonclassical"]),
    "mono_classical": ("monocytes", ["Mono_classical"]),
    "mono_intermediate": ("monocytes", ["Mono_intermediate"]),
    "mono_nonclassical": ("monocytes", ["Mono_nonclassical"]),
    "T": ("lymphocytes", _T),
    "CD4": ("T", _CD4),
    "CD8": ("T", ["CD8_naive", "CD8_CM", "CD8_EM", "CD8_TEMRA"]),
    "Treg": ("CD4", ["Treg_naive", "Treg_CM", "Treg_EM"]),
    "CD4_naive": ("CD4", ["CD4_Tconv_naive", "Treg_naive"]),
    "CD4_CM": ("CD4", ["CD4_Tconv_CM", "Treg_CM"]),
    "CD4_EM": ("CD4", ["CD4_Tconv_EM", "CD4_Tact", "Treg_EM"]),
    "CD4_TEMRA": ("CD4", ["CD4_Tconv_TEMRA"]),
    "CD8_naive": ("CD8", ["CD8_naive"]),
    "CD8_CM": ("CD8", ["CD8_CM"]),
    "CD8_EM": ("CD8", ["CD8_EM"]),
    "CD8_TEMRA": ("CD8", ["CD8_TEMRA"]),
    "B": ("lymphocytes", _B),
    "Breg": ("B", ["Breg"]),
    "NK": ("lymphocytes", _NK),
    "NK_bright": ("NK", ["NK_bright"]),
    "NK_dim": ("NK", ["NK_dim"]),
}


def population_mask(labels: np.ndarray, population: str) -> np.ndarray:
    """Boolean (n_events,) membership of a truth population, from per-event label codes."""
    codes = np.array([LABEL_CODE[name] for name in TRUTH_POPULATIONS[population][1]])
    return np.isin(labels, codes)


def true_frequencies(labels: np.ndarray, sample_id: str) -> pd.DataFrame:
    """True count and % of parent of every truth population in one sample.

    Parameters
    ----------
    labels
        (n_events,) label codes, indices into :data:`cytotrial.simulate.cells.ALL_LABELS`.

    Returns
    -------
    DataFrame
        sample_id, population, parent, count, parent_count, percent_of_parent.
    """
    counts_by_label = np.bincount(labels, minlength=len(ALL_LABELS))
    counts = {name: int(sum(counts_by_label[LABEL_CODE[leaf]] for leaf in leaves))
              for name, (_, leaves) in TRUTH_POPULATIONS.items()}
    rows = []
    for name, (parent, _) in TRUTH_POPULATIONS.items():
        parent_count = labels.size if parent is None else counts[parent]
        rows.append({"sample_id": sample_id, "population": name, "parent": parent or "root",
                     "count": counts[name], "parent_count": parent_count,
                     "percent_of_parent": 100.0 * counts[name] / parent_count if parent_count else float("nan")})
    return pd.DataFrame(rows)
