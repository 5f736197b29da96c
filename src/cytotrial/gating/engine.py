"""Apply a gating template to one sample's events and record every realised gate."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np

from .cuts import TooFewEventsError, find_cut
from .template import GatingTemplate, PopulationGate, TemplateError


@dataclass
class GatingResult:
    """Membership of every population and the gates as realised on this sample.

    Attributes
    ----------
    masks
        population -> (n_events,) bool membership ('root' included).
    gates
        One record per population: parent, method, realised cut points or bounds, counts, status.
    """

    masks: dict[str, np.ndarray]
    gates: list[dict]


def dimension_index(adata: ad.AnnData, name: str) -> int:
    """Column of a marker (var['marker']) or channel (var_names) in the event matrix."""
    markers = list(adata.var["marker"])
    if name in markers:
        return markers.index(name)
    channels = list(adata.var_names)
    if name in channels:
        return channels.index(name)
    raise TemplateError(f"the gating template uses '{name}', which is neither a panel marker nor a channel "
                        f"(markers: {[m for m in markers if m]}; channels: {channels}). Fix the template or panel.")


def _boundary(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate) -> tuple[np.ndarray, dict]:
    """Drop events at the top of the detector range (saturated) or at or below 0 in the given dimensions."""
    keep = parent.copy()
    bounds = {}
    for dim in gate.dims:
        j = dimension_index(adata, dim)
        top = float(adata.var["range"].iloc[j]) - 1
        values = adata.layers["compensated"][:, j]
        keep &= (values > 0) & (values < top)
        bounds[dim] = {"min_exclusive": 0.0, "max_exclusive": top}
    return keep, {"bounds": bounds}


def _singlets(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate) -> tuple[np.ndarray, dict]:
    """Keep events whose height/area ratio lies within ``mad_multiple`` robust SDs of the parent's median."""
    area, height = (adata.X[:, dimension_index(adata, d)] for d in gate.dims)
    ratio = np.divide(height, area, out=np.zeros_like(area), where=area > 0)
    median = float(np.median(ratio[parent]))
    spread = 1.4826 * float(np.median(np.abs(ratio[parent] - median)))
    k = float(gate.args.get("mad_multiple", 4.0))
    lo, hi = median - k * spread, median + k * spread
    return parent & (ratio >= lo) & (ratio <= hi), {"ratio": f"{gate.dims[1]}/{gate.dims[0]}",
                                                     "ratio_min": lo, "ratio_max": hi}


def _cuts(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, cache: dict) -> tuple[np.ndarray, dict]:
    """One cut per dimension, ANDed. Cuts are found on the parent's events, or, with ``args.sequential``, each
    on the events that passed the cuts listed before it (e.g. CD25 on CD127lo cells)."""
    keep = parent.copy()
    realised = {}
    sequential = bool(gate.args.get("sequential", False))
    for cut in gate.cuts:
        j = dimension_index(adata, cut.dim)
        key = (gate.name if sequential else gate.parent, *cut.key)
        if key not in cache:
            cache[key] = find_cut(adata.X[keep if sequential else parent, j], cut.method, dict(cut.args))
        value = cache[key]
        keep &= adata.X[:, j] > value if cut.keep == "above" else adata.X[:, j] <= value
        realised[cut.dim] = {"keep": cut.keep, "method": cut.method, "cut": value}
    return keep, {"cuts": realised}


def apply_template(adata: ad.AnnData, template: GatingTemplate) -> GatingResult:
    """Gate one sample.

    A population whose parent has fewer than ``template.min_parent_events`` events is not gated: its mask is
    empty and its status says why, so tables report it as missing rather than as 0.
    """
    masks = {"root": np.ones(adata.n_obs, dtype=bool)}
    gates: list[dict] = []
    cache: dict = {}
    missing: set[str] = set()
    for gate in template.populations:
        parent = masks[gate.parent]
        parent_count = int(parent.sum())
        record = {"population": gate.name, "parent": gate.parent, "percent_of": gate.percent_of, "method": gate.method,
                  "dims": list(gate.dims) or [c.dim for c in gate.cuts], "parent_count": parent_count}
        if gate.parent in missing or parent_count < template.min_parent_events:
            masks[gate.name] = np.zeros(adata.n_obs, dtype=bool)
            missing.add(gate.name)
            reason = (f"parent '{gate.parent}' is missing" if gate.parent in missing
                      else f"parent '{gate.parent}' has {parent_count} events (< {template.min_parent_events})")
            gates.append({**record, "count": None, "status": "missing", "reason": reason})
            continue
        try:
            if gate.method == "boundary":
                mask, realised = _boundary(adata, parent, gate)
            elif gate.method == "singlets":
                mask, realised = _singlets(adata, parent, gate)
            else:
                mask, realised = _cuts(adata, parent, gate, cache)
        except TooFewEventsError as err:
            masks[gate.name] = np.zeros(adata.n_obs, dtype=bool)
            missing.add(gate.name)
            gates.append({**record, "count": None, "status": "missing", "reason": f"cannot place the gate: {err}"})
            continue
        masks[gate.name] = mask
        gates.append({**record, **realised, "count": int(mask.sum()), "status": "ok", "reason": ""})
    return GatingResult(masks, gates)
