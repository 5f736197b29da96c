"""Assemble the gate review figures of a run: one figure per gate, one panel per sample (patients x visits)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from .gate_review import ReviewPanel, gate_geometry, plot_gate_review


def load_sample_review(gates_json: str | os.PathLike, review_npz: str | os.PathLike,
                       population: str | None = None) -> tuple[dict, dict]:
    """A sample's realised gates (population -> record) and its review events (npz arrays): only those of
    ``population`` when given, so a figure of thousands of samples reads one gate's events from each."""
    gates = {g["population"]: g for g in json.loads(open(gates_json).read())["gates"]}
    if population is not None:
        gates = {population: gates[population]} if population in gates else {}
    with np.load(review_npz) as arrays:
        keys = [k for k in arrays.files if population is None or k.rsplit("__", 1)[0] == population]
        return gates, {key: arrays[key] for key in keys}


def review_panels(population: str, populations: pd.DataFrame, reviews: dict[str, tuple[dict, dict]],
                  visits: list[str]) -> list[ReviewPanel | None]:
    """The panels of one gate's figure: one row per patient, one column per visit (None where no sample).

    Parameters
    ----------
    populations
        Merged population table with ``flagged`` and ``flag_reason`` columns (gate QC and outliers; older
        tables: ``outlier`` and ``outlier_reason``).
    reviews
        sample_id -> (gates by population, review arrays), from :func:`load_sample_review`.
    """
    rows = populations[populations.population == population].set_index("sample_id")
    visits = [v for v in visits if (rows.visit == v).any()]
    panels: list[ReviewPanel | None] = []
    for patient in sorted(rows.patient_id.unique()):
        by_visit = rows[rows.patient_id == patient].reset_index().set_index("visit")
        for visit in visits:
            if visit not in by_visit.index:
                panels.append(None)
                continue
            row = by_visit.loc[visit]
            gates, arrays = reviews[row.sample_id]
            record = gates[population]
            dims = list(record["dims"])[:2] or [f"{record.get('op', record['method'])} of "
                                                 f"{', '.join(record.get('of', []))}"]  # a Boolean gate: no axes
            x = arrays.get(f"{population}__x", np.empty(0, np.float32))
            y = arrays.get(f"{population}__y") if len(dims) > 1 else None
            # a boundary gate's upper bound is the detector range minus one ($PnR - 1), recorded per dimension
            ranges = ({d: b["max_exclusive"] + 1 for d, b in record.get("bounds", {}).items()}
                      if record["method"] == "boundary" else None)
            panels.append(ReviewPanel(
                sample_id=row.sample_id, label=f"{patient} {visit}", x=x, y=y, x_name=dims[0],
                y_name=dims[1] if len(dims) > 1 else None,
                method="polygon" if record.get("combine") == "any" else record["method"],
                geometry=gate_geometry(record, ranges) if record["status"] == "ok" else {},
                percent_of_parent=float(row.percent_of_parent) if not pd.isna(row.percent_of_parent) else math.nan,
                status=record["status"], reason=record.get("reason", ""),
                outlier=bool(row.get("flagged", row.get("outlier", False))),
                outlier_reason=str(row.get("flag_reason", row.get("outlier_reason", "")) or "")))
    return panels


def render_gate_review(population: str, populations: pd.DataFrame, reviews: dict[str, tuple[dict, dict]],
                       visits: list[str], *, path: str | os.PathLike, fluorescence_units: str = "logicle") -> None:
    """Write one gate's review figure.

    Axes are labelled with their units: scatter as linear / range, fluorescence as ``fluorescence_units`` (the
    configured transform); a static template's gates (rectangle, polygon, ellipse) are drawn in the template's own
    units."""
    parent = populations.loc[populations.population == population, "parent"].iloc[0]
    panels = review_panels(population, populations, reviews, visits)
    dims = next((p for p in panels if p is not None), None)
    labels = {}
    static = dims is not None and dims.method in ("rectangle", "polygon", "ellipse") and any(
        str(g[0].get(population, {}).get("source", "")).startswith("static") for g in reviews.values())
    if dims is not None:
        for name in (dims.x_name, dims.y_name):
            if name and static:
                labels[name] = f"{name} (template units)"
            elif name:
                labels[name] = (f"{name} (linear / range)" if name.startswith(("FSC", "SSC"))
                                else f"{name} ({fluorescence_units})")
    columns = len([v for v in visits if (populations.visit == v).any()])
    ticks = {} if static else axis_ticks_in_original_units(population, reviews, dims)
    for name in ticks:  # ticks carry the original values: say so in the label
        scale = "linear" if name.startswith(("FSC", "SSC")) else fluorescence_units
        labels[name] = f"{name} ({scale} scale; ticks in original units)"
    plot_gate_review(population, parent, panels, path, axis_labels=labels, columns=columns, axis_ticks=ticks)


def render_gate_reviews(figures: dict[str, str], populations: pd.DataFrame, gates: list[str], reviews: list[str],
                        *, visits: list[str], fluorescence_units: str = "logicle", log=None) -> None:
    """Write the review figure of every gate in one process (rule review_gates): ``figures`` maps each figure's
    path to its population; ``gates`` and ``reviews`` are every sample's realised gates (JSON) and review events
    (npz), in the same order. Each figure is :func:`render_gate_review` on the events of its gate alone, read per
    figure as in a job of its own, and written under a temporary name first."""
    from ..io.atomic import atomic_path

    for path, population in figures.items():
        loaded = {os.path.basename(g).removesuffix(".json"): load_sample_review(g, r, population)
                  for g, r in zip(gates, reviews, strict=True)}
        with atomic_path(path, suffix=".png") as tmp:
            render_gate_review(population, populations, loaded, visits, path=tmp, fluorescence_units=fluorescence_units)
        if log is not None:
            log.info("%s: %d samples", population, len(loaded))


def axis_ticks_in_original_units(population: str, reviews: dict, first) -> dict[str, list[tuple[float, str]]]:
    """Tick positions (gating units) labelled with original values: decades for logicle/asinh axes (0, 10^2 ..
    10^5), 50k steps of the detector range for scatter; from the first sample's recorded transform."""
    if first is None:
        return {}
    ticks = {}
    for axis, name in (("x", first.x_name), ("y", first.y_name)):
        record = next((arrays[f"{population}__{axis}transform"] for _, arrays in reviews.values()
                       if f"{population}__{axis}transform" in arrays), None)
        if name is None or record is None:
            continue
        params = json.loads(str(record))
        if params.get("transform") == "linear":  # scatter: value / range
            top = float(params.get("range") or params.get("t"))
            values = np.arange(0, top + 1, 50_000.0)
            ticks[name] = [(v / top, f"{v / 1000:.0f}k" if v else "0") for v in values]
            continue
        values = np.array([0.0] + [10.0 ** k for k in range(2, 7) if 10.0 ** k <= float(params["t"]) * 1.01])
        positions = _fluorescence_positions(values, params)
        ticks[name] = [(float(p), "0" if v == 0 else f"1e{int(np.log10(v))}") for p, v in zip(positions, values)]
    return ticks


def _fluorescence_positions(values: np.ndarray, params: dict) -> np.ndarray:
    """``values`` on a recorded logicle or asinh axis: flowutils' transforms, as flowkit's Transform.apply
    calls them (flowkit itself is not imported: its import would cost this job more than a figure)."""
    import flowutils

    column = np.asarray(values, dtype=float).reshape(-1, 1)
    if params["transform"] == "logicle":
        return flowutils.transforms.logicle(column, None, t=params["t"], m=params["m"], w=params["w"],
                                            a=params["a"]).ravel()
    if params["transform"] == "asinh":
        return flowutils.transforms.asinh(column, None, t=params["t"], m=params["m"], a=params["a"]).ravel()
    raise ValueError(f"unknown transform {params['transform']!r}")
