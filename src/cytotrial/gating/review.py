"""What a reviewer sees of each gate: a subsample of the parent's events in the gate's two display dimensions."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np

from .engine import GatingResult
from .methods import dimension_index



TRANSFORM_KEYS = ("transform", "t", "w", "m", "a", "range")


def display_dims(gate: dict) -> list[str]:
    """The one or two dimensions a gate is shown in: its own dims (the first two)."""
    return list(gate["dims"])[:2]


def review_events(result: GatingResult, adata: ad.AnnData, max_events: int = 3000) -> dict[str, np.ndarray]:
    """Per gate, up to ``max_events`` of its parent's events (every k-th, deterministic) in its display dims.

    Returns
    -------
    dict
        ``{population}__x`` and, for 2-D displays, ``{population}__y``: float32 arrays in gating units; with
        ``{population}__xtransform`` / ``__ytransform`` (JSON of the axis's transform and the channel's range)
        when the values are in the events' own gating units.
    """
    arrays: dict[str, np.ndarray] = {}
    for gate in result.gates:
        dims = display_dims(gate)
        if not dims or gate["population"] not in result.masks:
            continue
        rows = np.flatnonzero(result.masks[gate["parent"]])
        rows = rows[:: max(1, rows.size // max_events)][:max_events]
        for axis, dim in zip(("x", "y"), dims):
            values = result.display.get((gate["population"], dim))
            if values is None:  # the events' own gating units: record the transform, for ticks in original units
                j = dimension_index(adata, dim)
                values = adata.X[rows, j]
                params = {k: v for k, v in adata.var.iloc[j].items() if k in TRANSFORM_KEYS and v == v}
                arrays[f"{gate['population']}__{axis}transform"] = np.array(json.dumps(params, default=float))
            else:
                values = values[rows]
            arrays[f"{gate['population']}__{axis}"] = values.astype(np.float32)
    return arrays
