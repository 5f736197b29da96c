"""Gate methods: each places one population's gate on its parent's events and returns its mask.

Every method takes the sample's events (AnnData; gating units in ``X``, linear values in
``layers['compensated']``), the parent's mask and the population's template entry, and returns the population's
mask (within the parent) and a JSON-ready record of the gate as realised on this sample.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
from scipy.stats import chi2

from ..stats.robust import robust_line
from . import static
from .cuts import MIN_EVENTS, TooFewEventsError, find_cut
from .template import PopulationGate, TemplateError


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


def boundary(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict) -> tuple[np.ndarray, dict]:
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


def singlets(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict) -> tuple[np.ndarray, dict]:
    """Singlets: a prediction band around the robust (Huber) regression of pulse height on pulse area.

    Doublets have a larger area for their height and fall below the band. The band is ``mad_multiple`` robust
    SDs of the residuals wide on each side (``args.mad_multiple``, default 4). The line and the spread are
    fitted on every k-th parent event, at most ``args.max_events`` (default 10,000; all of them below twice
    that), so the result is deterministic. ``pinned`` may fix ``slope``, ``intercept`` and ``half_width``.
    """
    area_j, height_j = (dimension_index(adata, d) for d in gate.dims)
    area, height = adata.X[:, area_j].astype(float), adata.X[:, height_j].astype(float)
    if parent.sum() < MIN_EVENTS:
        raise TooFewEventsError(f"{int(parent.sum())} events, fewer than the {MIN_EVENTS} needed for a regression")
    if {"slope", "intercept", "half_width"} <= set(pinned):
        slope, intercept, half_width = pinned["slope"], pinned["intercept"], pinned["half_width"]
    else:
        rows = np.flatnonzero(parent)
        rows = rows[::max(1, rows.size // int(gate.args.get("max_events", 10_000)))]
        fit_area, fit_height = area[rows], height[rows]
        slope_, intercept_ = robust_line(fit_area, fit_height[:, None])
        slope, intercept = float(slope_[0]), float(intercept_[0])
        residual = fit_height - intercept - slope * fit_area
        spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
        half_width = float(gate.args.get("mad_multiple", 4.0)) * spread
    residual = height - intercept - slope * area
    mask = parent & (np.abs(residual) <= half_width)
    return mask, {"model": f"{gate.dims[1]} = intercept + slope x {gate.dims[0]} (Huber)", "slope": slope,
                  "intercept": intercept, "half_width": half_width, "pinned": bool(pinned)}


def cuts(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict,
         cache: dict) -> tuple[np.ndarray, dict]:
    """One cut per dimension, ANDed. Cuts are found on the parent's events, or, with ``args.sequential``, each
    on the events that passed the cuts listed before it (e.g. CD25 on CD127lo cells). ``pinned`` maps a
    dimension to a fixed cut (a reviewer's override)."""
    realised = {}
    sequential = bool(gate.args.get("sequential", False))
    rows, columns = parent_events(parent, gate.parent, cache)
    passed = np.ones(rows.size, dtype=bool)  # of the parent's events, those that passed the cuts so far
    for cut in gate.cuts:
        column = dimension_index(adata, cut.dim)
        if column not in columns:
            columns[column] = adata.X[rows, column]
        values = columns[column]
        if cut.dim in pinned:
            value, method = float(pinned[cut.dim]), "pinned"
        else:
            key = (gate.name if sequential else gate.parent, *cut.key)
            if key not in cache:
                cache[key] = find_cut(values[passed] if sequential else values, cut.method, dict(cut.args))
            value, method = cache[key], cut.method
        passed &= values > value if cut.keep == "above" else values <= value
        realised[cut.dim] = {"keep": cut.keep, "method": method, "cut": value}
    keep = np.zeros(parent.size, dtype=bool)
    keep[rows[passed]] = True
    return keep, {"cuts": realised}


PARENT_EVENTS = "parent events"  # key of the per-parent rows and values in the template's cache


def parent_events(parent: np.ndarray, parent_name: str, cache: dict) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The parent's rows (X[rows, j] is ~5x faster than X[mask, j]) and a dict column -> the parent's values,
    kept in the template's cache so that gates on the same parent (naive / CM / EM / TEMRA) gather them once.
    ``apply_template`` drops them after the parent's last child gate."""
    shared = cache.setdefault(PARENT_EVENTS, {})
    if parent_name not in shared:
        shared[parent_name] = (np.flatnonzero(parent), {})
    return shared[parent_name]


def boolean(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, masks: dict) -> tuple[np.ndarray, dict]:
    """AND, OR or NOT of populations defined above, within the parent (``args: {op: and|or|not, of: [...]}``)."""
    op, names = gate.args["op"], list(gate.args["of"])
    missing = [n for n in names if n not in masks]
    if missing:
        raise TemplateError(f"Boolean population '{gate.name}' refers to {missing}, not defined above it.")
    if op == "and":
        combined = np.logical_and.reduce([masks[n] for n in names])
    elif op == "or":
        combined = np.logical_or.reduce([masks[n] for n in names])
    else:
        combined = ~np.logical_or.reduce([masks[n] for n in names])
    return parent & combined, {"op": op, "of": names}


def cluster(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict) -> tuple[np.ndarray, dict]:
    """2-D cluster gate: a Gaussian mixture on the parent's events; the component nearest ``args.target``
    ([x, y] in gating units) is the population, gated by the ellipse holding ``args.quantile`` of it.

    Args: components (default 3), target, quantile (default 0.95), max_events fitted (default 20000, every k-th
    event, so the result is deterministic), seed (default 0). ``pinned`` may fix ``mean`` and ``covariance``.
    """
    from sklearn.mixture import GaussianMixture

    columns = [dimension_index(adata, d) for d in gate.dims]
    values = adata.X[:, columns].astype(float)
    if {"mean", "covariance"} <= set(pinned):
        mean, covariance = np.asarray(pinned["mean"]), np.asarray(pinned["covariance"])
    else:
        fit_on = values[parent]
        if fit_on.shape[0] < 10 * int(gate.args.get("components", 3)):
            raise TooFewEventsError(f"{fit_on.shape[0]} events, too few for a {gate.args.get('components', 3)}-"
                                    "component mixture")
        step = max(1, fit_on.shape[0] // int(gate.args.get("max_events", 20_000)))
        mixture = GaussianMixture(n_components=int(gate.args.get("components", 3)), covariance_type="full",
                                  random_state=int(gate.args.get("seed", 0)), n_init=1).fit(fit_on[::step])
        nearest = int(np.argmin(np.linalg.norm(mixture.means_ - np.asarray(gate.args["target"]), axis=1)))
        mean, covariance = mixture.means_[nearest], mixture.covariances_[nearest]
    radius2 = float(chi2.ppf(float(gate.args.get("quantile", 0.95)), df=len(columns)))
    delta = values - mean
    distance2 = np.einsum("ij,jk,ik->i", delta, np.linalg.inv(covariance), delta)
    return parent & (distance2 <= radius2), {"ellipse": {"mean": mean.tolist(), "covariance": covariance.tolist(),
                                                         "distance_squared": radius2}}


def rectangle(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict) -> tuple[np.ndarray, dict]:
    """Static rectangle (or 1-D range): ``args: {min: [...], max: [...]}`` in gating units, null for open."""
    bounds = {**gate.args, **pinned}
    values = adata.X[:, [dimension_index(adata, d) for d in gate.dims]]
    mask = parent & static.in_rectangle(values, bounds.get("min", [None] * len(gate.dims)),
                                        bounds.get("max", [None] * len(gate.dims)))
    return mask, {"rectangle": {"min": bounds.get("min"), "max": bounds.get("max")}}


def polygon(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict) -> tuple[np.ndarray, dict]:
    """Static polygon on two dimensions: ``args: {vertices: [[x, y], ...]}`` in gating units."""
    vertices = np.asarray(pinned.get("vertices", gate.args["vertices"]), dtype=float)
    values = adata.X[:, [dimension_index(adata, d) for d in gate.dims]]
    return parent & static.in_polygon(values, vertices), {"polygon": {"vertices": vertices.tolist()}}


def ellipse(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict) -> tuple[np.ndarray, dict]:
    """Static ellipse: ``args: {mean: [x, y], covariance: [[..], [..]], distance_squared: r2}``."""
    spec = {**gate.args, **pinned}
    values = adata.X[:, [dimension_index(adata, d) for d in gate.dims]]
    mask = parent & static.in_ellipsoid(values, spec["mean"], np.asarray(spec["covariance"], dtype=float),
                                        float(spec["distance_squared"]))
    return mask, {"ellipse": {"mean": list(spec["mean"]), "covariance": spec["covariance"],
                              "distance_squared": float(spec["distance_squared"])}}
