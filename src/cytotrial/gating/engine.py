"""Apply a gating template to one sample's events and record every realised gate."""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np

from . import methods
from .cuts import TooFewEventsError
from .template import GatingTemplate


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


def apply_template(adata: ad.AnnData, template: GatingTemplate, overrides: dict | None = None) -> GatingResult:
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
    """
    overrides = overrides or {}
    unknown = set(overrides) - set(template.names)
    if unknown:
        raise TemplateError(f"overrides name populations not in the gating template: {sorted(unknown)}")
    masks = {"root": np.ones(adata.n_obs, dtype=bool)}
    gates: list[dict] = []
    cache: dict = {}
    missing: set[str] = set()
    for gate in template.populations:
        parent = masks[gate.parent]
        parent_count = int(parent.sum())
        pinned = {k: v for k, v in overrides.get(gate.name, {}).items() if k != "reason"}
        record = {"population": gate.name, "parent": gate.parent, "percent_of": gate.percent_of, "method": gate.method,
                  "dims": list(gate.dims) or [c.dim for c in gate.cuts], "parent_count": parent_count,
                  "override": overrides.get(gate.name, {}).get("reason", "")}
        if gate.parent in missing or parent_count < template.min_parent_events:
            masks[gate.name] = np.zeros(adata.n_obs, dtype=bool)
            missing.add(gate.name)
            reason = (f"parent '{gate.parent}' is missing" if gate.parent in missing
                      else f"parent '{gate.parent}' has {parent_count} events (< {template.min_parent_events})")
            gates.append({**record, "count": None, "status": "missing", "reason": reason})
            continue
        try:
            if gate.method == "cuts":
                mask, realised = methods.cuts(adata, parent, gate, pinned, cache)
            elif gate.method == "boolean":
                mask, realised = methods.boolean(adata, parent, gate, masks)
            else:
                mask, realised = getattr(methods, gate.method)(adata, parent, gate, pinned)
        except TooFewEventsError as err:
            masks[gate.name] = np.zeros(adata.n_obs, dtype=bool)
            missing.add(gate.name)
            gates.append({**record, "count": None, "status": "missing", "reason": f"cannot place the gate: {err}"})
            continue
        masks[gate.name] = mask
        gates.append({**record, **realised, "count": int(mask.sum()), "status": "ok", "reason": ""})
    return GatingResult(masks, gates)
