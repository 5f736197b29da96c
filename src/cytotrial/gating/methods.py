"""Gate methods: each places one population's gate on its parent's events and returns its mask.

Every method takes the sample's events (AnnData; gating units in ``X``, linear values in
``layers['compensated']``), the parent's mask and the population's template entry, and returns the population's
mask (within the parent) and a JSON-ready record of the gate as realised on this sample.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
from scipy.stats import chi2

from ..numeric.robust_regression import robust_line
from . import mixture as mixture_fits
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


def cuts(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict, cache: dict,
         masks: dict) -> tuple[np.ndarray, dict]:
    """One cut per dimension, ANDed (``args.combine: any``: ORed, e.g. NK as CD56+ or CD16+). Cuts are found on
    the parent's events, or, with ``args.sequential``, each on the events that passed the cuts listed before it
    (e.g. CD14 on the low side-scatter events), or, with a cut's ``args.reference``, on the events of that
    population (an internal negative control: e.g. CD16 and CD56 cut at 4 robust SDs above the T cells).
    ``pinned`` maps a dimension to a fixed cut (a reviewer's override)."""
    realised = {}
    sequential = bool(gate.args.get("sequential", False))
    combine_any = gate.args.get("combine", "all") == "any"
    rows, columns = parent_events(parent, gate.parent, cache)
    passed = np.ones(rows.size, dtype=bool)  # of the parent's events, those that passed the cuts so far
    passed_any = np.zeros(rows.size, dtype=bool)
    for cut in gate.cuts:
        values = _parent_column(adata, rows, columns, cut.dim)
        note = ""
        args = dict(cut.args)
        reference = args.pop("reference", None)
        if cut.dim in pinned:
            value, method = float(pinned[cut.dim]), "pinned"
        else:
            key = (reference or (gate.name if sequential else gate.parent), *cut.key)
            if key not in cache:
                if reference:  # an internal negative control: the cut is found on that population's events
                    cut_on = adata.X[masks[reference], dimension_index(adata, cut.dim)]
                else:
                    cut_on = values[passed] if sequential else values
                cache[key] = find_cut(cut_on, cut.method, args)
            (value, note), method = cache[key], cut.method
        passes = values > value if cut.keep == "above" else values <= value
        passed &= passes
        passed_any |= passes
        realised[cut.dim] = {"keep": cut.keep, "method": method, "cut": value}
        if reference:
            realised[cut.dim]["reference"] = reference
        if note:
            realised[cut.dim]["note"] = note
    keep = np.zeros(parent.size, dtype=bool)
    keep[rows[passed_any if combine_any else passed]] = True
    notes = [f"{dim}: {c['note']}" for dim, c in realised.items() if c.get("note")]
    return keep, {"cuts": realised, **({"combine": "any"} if combine_any else {}),
                  **({"flag": "; ".join(notes)} if notes else {})}


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


DEFAULT_COMPONENTS = (2, 6)
MIN_EVENTS_PER_COMPONENT = 50  # fewer parent events lower the most components tried


def mixture(adata: ad.AnnData, parent: np.ndarray, gate: PopulationGate, pinned: dict,
            cache: dict) -> tuple[np.ndarray, dict]:
    """A population placed by a Gaussian mixture of its parent's events in two dimensions (openCyto's flowClust).

    ``args.target`` says where the population lies ({dim: low | mid | high | quantile}); the number of components
    (``args.components``, default 2-6) is chosen by BIC on the parent's binned events. Populations on the same
    parent, dimensions and settings share one fit: each component goes to the nearest target, and each population
    is the region where its components' summed density is the largest (a lone target competes with the parent's
    centre), or with ``args.posterior`` where its posterior is at least that (e.g. 0.1 for an inclusive gate that
    a later gate confirms). The region is traced as a polygon (realised gate: ``polygon.vertices``, gating units)
    and the events inside it are the population. If the best fit leaves a target without a component, the next
    fits by BIC are tried; failing that, each event goes to its nearest target and the gate is flagged.
    ``pinned`` may fix ``vertices``.
    """
    rows, columns = parent_events(parent, gate.parent, cache)
    values = np.column_stack([_parent_column(adata, rows, columns, dim) for dim in gate.dims]).astype(np.float64)
    if "vertices" in pinned:
        vertices, record = np.asarray(pinned["vertices"], dtype=float), {"mixture": {"pinned": True}}
    else:
        fit = cache.get(("mixture", gate.fit_key))
        if fit is None:
            fit = cache[("mixture", gate.fit_key)] = fit_partition(values, gate)
        posterior = gate.args.get("posterior")
        vertices, record = fit.region(gate.name, None if posterior is None else float(posterior))
    keep = np.zeros(parent.size, dtype=bool)
    if vertices.size:
        keep[rows[mixture_fits.in_polygon(values, vertices)]] = True
    return keep, {"polygon": {"vertices": vertices.tolist()}, **record}


def _parent_column(adata: ad.AnnData, rows: np.ndarray, columns: dict, dim: str) -> np.ndarray:
    column = dimension_index(adata, dim)
    if column not in columns:
        columns[column] = adata.X[rows, column]
    return columns[column]


def fit_partition(values: np.ndarray, gate: PopulationGate) -> "mixture_fits.Partition":
    """The mixture fit shared by the populations of ``gate.partition`` (see :func:`mixture`)."""
    finite = values[np.isfinite(values).all(axis=1)]
    if finite.shape[0] < MIN_EVENTS:
        raise TooFewEventsError(f"{finite.shape[0]} events, fewer than the {MIN_EVENTS} needed for a mixture")
    low, high = tuple(gate.args.get("components", DEFAULT_COMPONENTS))
    components = (low, max(low, min(high, finite.shape[0] // MIN_EVENTS_PER_COMPONENT)))
    return mixture_fits.Partition.fit(finite, list(gate.dims), [(name, dict(target)) for name, target in
                                                                 gate.partition], components)
