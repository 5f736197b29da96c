"""Apply a gating template to one sample's events and record every realised gate."""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np

from . import methods
from .cuts import TooFewEventsError
from .template import GatingTemplate, PopulationGate, TemplateError


POOL_KEYS = ("reason", "batch", "samples", "events")  # descriptive keys of overrides and pooled fits, not parameters


@dataclass
class GatingResult:
    """Membership of every population and the gates as realised on this sample.

    Attributes
    ----------
    masks
        population -> (n_events,) bool membership ('root' included).
    gates
        One record per population: parent, method, realised cut points or bounds, counts, status.
    display
        For gates drawn in units other than the events' gating units (static GatingML/FlowJo templates):
        (population, dimension) -> values of every event.
    """

    masks: dict[str, np.ndarray]
    gates: list[dict]
    display: dict = field(default_factory=dict)  # (population, dim) -> values in the gate's own units, if not X


def root_mask(n_events: int, root: np.ndarray | None) -> np.ndarray:
    """The events a template gates: all of them, or those where ``root`` is True (a copy)."""
    return np.ones(n_events, dtype=bool) if root is None else np.array(root, dtype=bool)


def apply_template(adata: ad.AnnData, template: GatingTemplate, overrides: dict | None = None,
                   pooled: dict | None = None, *, root: np.ndarray | None = None) -> GatingResult:
    """Gate one sample.

    A population whose parent has fewer than ``template.min_parent_events`` events, or whose gate cannot be
    placed (too few events for a density), is not gated: its mask is empty and its status says why, so tables
    report it as missing rather than as 0.

    Parameters
    ----------
    overrides
        population -> pinned gate parameters for this sample (a reviewer's overrides): for ``cuts``
        {dim: cut in gating units}; for ``singlets`` slope, intercept, half_width; for ``cluster`` mean,
        covariance.
    pooled
        population -> gate parameters fitted on the pooled events of the sample's acquisition batch
        (:func:`cytotrial.gating.pooling.fit_pooled_gates`; same form as ``overrides`` plus 'batch'). A reviewer's
        override of the same population wins.
    root
        (n_events,) bool: the events to gate (e.g. those that passed the event QC); None gates all. Gating with a
        root mask gives the masks (over all events) that gating ``adata[root]`` would give, without the copy.
    """
    overrides, pooled = overrides or {}, pooled or {}
    unknown = set(overrides) - set(template.names)
    if unknown:
        raise TemplateError(f"overrides name populations not in the gating template: {sorted(unknown)}")
    masks = {"root": root_mask(adata.n_obs, root)}
    gates: list[dict] = []
    cache: dict = {}
    missing: set[str] = set()
    last_child = {gate.parent: i for i, gate in enumerate(template.populations)}
    for i, gate in enumerate(template.populations):
        if i and last_child.get(template.populations[i - 1].parent) == i - 1:  # free the previous parent's events
            cache.get(methods.PARENT_EVENTS, {}).pop(template.populations[i - 1].parent, None)
        parent = masks[gate.parent]
        parent_count = int(parent.sum())
        pool = pooled.get(gate.name, {}) if gate.name not in overrides else {}
        pinned = {k: v for k, v in (overrides.get(gate.name) or pool).items() if k not in POOL_KEYS}
        record = {"population": gate.name, "parent": gate.parent, "percent_of": gate.percent_of, "method": gate.method,
                  "dims": list(gate.dims) or [c.dim for c in gate.cuts], "parent_count": parent_count,
                  "override": overrides.get(gate.name, {}).get("reason", "")}
        if pool:
            record["pooled"] = f"fitted on the pooled events of batch {pool['batch']}"
        if gate.parent in missing or parent_count < template.min_parent_events:
            masks[gate.name] = np.zeros(adata.n_obs, dtype=bool)
            missing.add(gate.name)
            reason = (f"parent '{gate.parent}' is missing" if gate.parent in missing
                      else f"parent '{gate.parent}' has {parent_count} events (< {template.min_parent_events})")
            gates.append({**record, "count": None, "status": "missing", "reason": reason, "flag": ""})
            continue
        try:
            mask, realised = place_gate(adata, parent, gate, pinned, cache=cache, masks=masks)
        except TooFewEventsError as err:
            masks[gate.name] = np.zeros(adata.n_obs, dtype=bool)
            missing.add(gate.name)
            gates.append({**record, "count": None, "status": "missing", "reason": f"cannot place the gate: {err}",
                          "flag": f"cannot place the gate: {err}"})
            continue
        masks[gate.name] = mask
        for cut in realised.get("cuts", {}).values() if pool else ():
            cut["method"] = "pooled"
        flag = realised.pop("flag", "")
        gates.append({**record, **realised, "count": int(mask.sum()), "status": "ok", "reason": "", "flag": flag})
    return GatingResult(masks, gates)


def place_gate(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict, *, cache: dict,
               masks: dict) -> tuple[np.ndarray, dict]:
    """Place one population's gate on its parent's events; returns its mask and realised record."""
    if gate.method == "cuts":
        return methods.cuts(adata, parent, gate, pinned, cache, masks)
    if gate.method == "mixture":
        return methods.mixture(adata, parent, gate, pinned, cache)
    if gate.method == "boolean":
        return methods.boolean(adata, parent, gate, masks)
    return getattr(methods, gate.method)(adata, parent, gate, pinned)
