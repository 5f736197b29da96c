"""Gates fitted on the pooled events of an acquisition batch (openCyto's ``groupBy``), then applied per sample.

A population marked ``pool: batch`` in the template has its gate placed once per batch, on the parent events of
every sample of the batch together (each sample gated up to that parent with its own gates, and contributing at
most ``max_events_per_sample`` events, every k-th, so that no sample dominates and the result is deterministic).
The realised parameters (cut points, singlet band, cluster ellipse) are then pinned on each sample of the batch.
Populations are pooled in template order, so a pooled gate below another pooled gate sees parents gated with the
batch's parameters.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from .cuts import TooFewEventsError
from .engine import apply_template, place_gate
from .template import GatingTemplate, PopulationGate


def fit_pooled_gates(samples: dict[str, ad.AnnData], template: GatingTemplate, batch: str,
                     overrides: dict | None = None, *, max_events_per_sample: int = 50_000) -> dict[str, dict]:
    """The parameters of every ``pool: batch`` gate, fitted on the pooled parent events of the batch's samples.

    Parameters
    ----------
    samples
        sample id -> the sample's gated events (QC-kept), in a fixed order (sorted by id by the caller).
    overrides
        sample id -> that sample's reviewer overrides (applied to its own gates above the pooled one).

    Returns
    -------
    dict
        population -> pinned parameters (as :func:`cytotrial.gating.engine.apply_template` takes them) plus
        'batch', 'samples' (ids pooled) and 'events' (pooled events). A gate that cannot be placed on the pooled
        events (too few) is left out, so each sample fits its own and reports it missing if it cannot.
    """
    overrides = overrides or {}
    gates = {p.name: p for p in template.populations}
    fitted: dict[str, dict] = {}
    for name in template.pooled:
        gate = gates[name]
        pooled, contributors = _pooled_parent_events(samples, template, gate, overrides, fitted=fitted,
                                                     max_events_per_sample=max_events_per_sample)
        if pooled is None:
            continue
        everything = np.ones(pooled.n_obs, dtype=bool)
        try:
            _, realised = place_gate(pooled, everything, gate, {}, cache={}, masks={})
        except TooFewEventsError:
            continue
        fitted[name] = {**pinned_parameters(gate, realised), "batch": batch, "samples": contributors,
                        "events": int(pooled.n_obs)}
    return fitted


def _pooled_parent_events(samples, template, gate: PopulationGate, overrides, *, fitted, max_events_per_sample):
    parts, contributors = [], []
    for sample_id, adata in samples.items():
        if adata.n_obs == 0:  # an excluded sample
            continue
        result = apply_template(adata, template, overrides.get(sample_id), fitted)
        parent = result.masks[gate.parent]
        if parent.sum() < template.min_parent_events:
            continue
        rows = np.flatnonzero(parent)
        rows = rows[:: max(1, int(np.ceil(rows.size / max_events_per_sample)))]
        parts.append(adata[rows])
        contributors.append(sample_id)
    if not parts:
        return None, contributors
    pooled = ad.concat(parts, join="inner", merge="first", index_unique="-")
    return pooled, contributors


def pinned_parameters(gate: PopulationGate, realised: dict) -> dict:
    """A realised gate's parameters in the form a pinned override takes."""
    if gate.method == "cuts":
        return {dim: float(cut["cut"]) for dim, cut in realised["cuts"].items()}
    if gate.method == "singlets":
        return {k: float(realised[k]) for k in ("slope", "intercept", "half_width")}
    if gate.method == "cluster":
        return {"mean": list(realised["ellipse"]["mean"]), "covariance": realised["ellipse"]["covariance"]}
    if gate.method == "mixture":
        return {"vertices": realised["polygon"]["vertices"]}
    raise ValueError(f"a {gate.method} gate cannot be pooled")
