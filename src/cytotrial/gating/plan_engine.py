"""Static gating templates (a GatingML 2.0 file or a FlowJo 10 workspace) applied to preprocessed events.

The workflow gates the events that passed event QC in each sample's preprocessed AnnData. A static template's
gates carry their own compensation and transform references, so they are evaluated on those events by
:func:`cytotrial.gating.gatingml.evaluate_plan` through :class:`AnnDataEvents`: 'FCS' compensation is the
compensation the preprocessing applied (the file's spillover, or the configured matrix), 'uncompensated' and
other matrices start from the raw values recovered by re-applying that spillover.
The result is a :class:`~cytotrial.gating.engine.GatingResult` like the adaptive engine's, so tables, review
figures and exports treat both kinds of template alike.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import flowkit as fk
import numpy as np
from flowutils.compensate import compensate

from .engine import GatingResult, root_mask
from .gatingml import GatingMLError, GatingPlan, PlanEvents, PlanGate, evaluate_plan, load_gatingml
from .template import GatingTemplate, TemplateError, load_template

STATIC_SUFFIXES = {".xml": "GatingML 2.0", ".wsp": "FlowJo 10 workspace"}
KIND_METHOD = {"rectangle": "rectangle", "polygon": "polygon", "ellipsoid": "ellipse", "quadrant": "rectangle",
               "boolean": "boolean"}


@dataclass(frozen=True)
class StaticTemplate:
    """A static gating template: the gating plan of a GatingML file or FlowJo workspace.

    Its gates are the same on every sample, so the template file itself is what a reviewer opens in FlowJo.
    """

    plan: GatingPlan
    min_parent_events: int = 20

    @property
    def names(self) -> list[str]:
        return list(self.plan.gates)


def load_gating_template(path: str | os.PathLike, workspace_group: str = "All Samples"
                         ) -> GatingTemplate | StaticTemplate:
    """The workflow's gating template: adaptive YAML, or a static GatingML (.xml) / FlowJo (.wsp) template."""
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_template(path)
    if suffix == ".xml":
        return StaticTemplate(load_gatingml(path))
    if suffix == ".wsp":
        from .flowjo import load_flowjo_template

        return StaticTemplate(load_flowjo_template(path, group=workspace_group))
    raise TemplateError(f"gating template '{path}': unknown kind of file; use a YAML template (.yaml), a GatingML "
                        "2.0 file (.xml) or a FlowJo 10 workspace (.wsp).")


class AnnDataEvents:
    """A preprocessed sample (AnnData from :func:`cytotrial.preprocess.events.preprocess_fcs`) as a plan's event source.

    Columns are the AnnData's channels: ``pnn`` = var 'channel' ($PnN), ``pns`` = var 'marker'.
    """

    def __init__(self, adata: ad.AnnData):
        self.adata = adata
        self.id = str(adata.uns.get("sample_id", "?"))
        self.pnn = [str(c) for c in adata.var["channel"]] if "channel" in adata.var else list(adata.var_names)
        self.pns = [str(m) for m in adata.var["marker"]]
        self._raw: np.ndarray | None = None

    def file_compensated(self, source: str, gate_id: str) -> np.ndarray:
        return np.asarray(self.adata.layers["compensated"], dtype=np.float64)

    def raw(self, source: str, gate_id: str) -> np.ndarray:
        """Uncompensated values: the compensated values times the spillover the preprocessing removed."""
        if self._raw is None:
            compensated = self.file_compensated(source, gate_id)
            spillover = self.adata.uns.get("spillover") or {}
            detectors = list(spillover.get("detectors", []))
            absent = [d for d in detectors if d not in self.pnn]
            if absent:
                raise GatingMLError(f"{source}: gate '{gate_id}' needs uncompensated (or differently compensated) "
                                    f"values of sample '{self.id}', but its spillover includes detectors the "
                                    f"preprocessed events do not keep ({absent}). Gate on the file's compensation "
                                    "('FCS') or add those detectors to the panel.")
            raw = compensated.copy()
            if detectors:
                columns = [self.pnn.index(d) for d in detectors]
                raw[:, columns] = compensated[:, columns] @ np.asarray(spillover["matrix"], dtype=np.float64)
            self._raw = raw
        return self._raw

    def compensated_with(self, matrix: fk.Matrix) -> np.ndarray:
        missing = [d for d in matrix.detectors if d not in self.pnn]
        if missing:
            raise ValueError(f"the matrix names detectors {missing}, which are not channels of the sample")
        raw = self.raw("matrix", "")
        return compensate(raw.copy(), np.asarray(matrix.matrix, dtype=np.float64),
                          [self.pnn.index(d) for d in matrix.detectors])


def apply_plan(adata: ad.AnnData, template: StaticTemplate, root: np.ndarray | None = None) -> GatingResult:
    """Gate one sample's events with a static template.

    Every plan gate becomes a population named by its gate id, with its parent (or 'root'). As with the adaptive
    engine, a population whose parent has fewer than ``template.min_parent_events`` events is reported missing.
    ``GatingResult.display`` holds, per (population, dimension), the values in the gate's own units for review
    figures. ``root`` (bool per event) restricts gating to those events, as :func:`~.engine.apply_template`.
    """
    plan = template.plan
    events = PlanEvents(plan, AnnDataEvents(adata))
    masks_by_id = evaluate_plan(plan, events)
    masks = {"root": root_mask(adata.n_obs, root)}
    gates, display, missing = [], {}, set()
    for gate in plan.gates.values():
        parent = gate.parent or "root"
        parent_count = int(masks[parent].sum())
        record = {"population": gate.id, "parent": parent, "percent_of": parent, "method": KIND_METHOD[gate.kind],
                  "source": f"static gatingml template {Path(plan.source).name}",
                  "dims": [_dim_name(d) for d in gate.dims], "parent_count": parent_count, "override": "",
                  **_geometry(gate)}
        if parent in missing or parent_count < template.min_parent_events:
            missing.add(gate.id)
            masks[gate.id] = np.zeros(adata.n_obs, dtype=bool)
            reason = (f"parent '{parent}' is missing" if parent in missing
                      else f"parent '{parent}' has {parent_count} events (< {template.min_parent_events})")
            gates.append({**record, "count": None, "status": "missing", "reason": reason})
            continue
        masks[gate.id] = masks_by_id[gate.id] & masks["root"]
        for dim in gate.dims[:2]:
            display[(gate.id, _dim_name(dim))] = events.values(dim, gate.id).astype(np.float32)
        gates.append({**record, "count": int(masks[gate.id].sum()), "status": "ok", "reason": ""})
    return GatingResult(masks, gates, display)


def _dim_name(dim) -> str:
    return dim.channel if dim.channel is not None else str(dim.ratio)


def _geometry(gate: PlanGate) -> dict:
    """The gate's geometry in the record form review figures draw (gate units)."""
    g = gate.geometry
    if gate.kind in ("rectangle", "quadrant"):
        lows, highs = (g["min"], g["max"]) if gate.kind == "rectangle" else zip(*g["ranges"])
        return {"rectangle": {"min": list(lows), "max": list(highs)}, "complement": bool(g.get("complement"))}
    if gate.kind == "polygon":
        return {"polygon": {"vertices": [list(map(float, v)) for v in g["vertices"]]},
                "complement": bool(g.get("complement"))}
    if gate.kind == "ellipsoid":
        return {"ellipse": {"mean": list(map(float, g["mean"])), "covariance": np.asarray(g["covariance"]).tolist(),
                            "distance_squared": float(g["distance_square"])}}
    return {"op": g["operation"], "of": [o["gate"] for o in g["operands"]]}


def review_file_names(populations: list[str]) -> dict[str, str]:
    """A file name (without suffix) for each population's review figure: the name with characters other than
    letters, digits, '_', '-', '+' and '.' replaced by '_', made unique with a numeric suffix."""
    names: dict[str, str] = {}
    for population in populations:
        base = re.sub(r"[^A-Za-z0-9_+.-]", "_", population).strip(".") or "gate"
        name, number = base, 1
        while name in names:
            number += 1
            name = f"{base}_{number}"
        names[name] = population
    return names
