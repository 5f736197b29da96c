"""Export one sample's realised gates (see :func:`cytotrial.quantify.realised_gates`) as a GatingML 2.0 file.

Each population becomes a flowkit gate with its parent kept (the gate kinds: :func:`export_gatingml`); the file
holds the spillover matrix used and one transform per channel, with the parameters recorded in the events' var
table. Populations whose status is not 'ok' (missing: too few events) are left out, with their descendants.
GatingML ids must be XML names, so population names are written with characters other than letters, digits,
'.', '-' and '_' replaced by '_' (the mapping is returned).
"""

from __future__ import annotations

import os
import re

import flowkit as fk
import numpy as np
import pandas as pd

from ..preprocess.transforms import transform_from_params
from . import static

MATRIX_ID = "spillover"
SINGLET_AREA_TOP = 4.0  # the singlet triangle spans area 0 .. this x the gating value of the top of scale


class GatingMLExportError(ValueError):
    """Realised gates that cannot be written as GatingML (unknown method, dimension or transform)."""


def export_gatingml(realised: dict, var: pd.DataFrame, spillover: dict | None, path: str | os.PathLike
                    ) -> dict[str, str]:
    """Write a sample's realised gates as a GatingML 2.0 file that flowkit (and FlowJo, Cytobank) can read.

    Parameters
    ----------
    realised
        The sample's realised gates: ``{"sample_id": ..., "gates": [record, ...]}`` as written by
        :func:`cytotrial.quantify.realised_gates`, records in template order (parents first).
    var
        The events' var table: one row per channel with 'channel', 'marker', 'transform' and the transform
        parameters ('t', 'w', 'm', 'a').
    spillover
        The spillover used, ``{"detectors": [...], "matrix": [[...]]}``; None or {} when the events were not
        compensated.
    path
        The GatingML file to write.

    Returns
    -------
    dict
        population -> gate id in the file, for every population written.

    Gate kinds:

    - ``cuts``: a RectangleGate in gating units (the channel's logicle / asinh / linear transform), one dimension
      per cut; ``keep: above`` (x > cut) becomes ``min`` and ``keep: below`` (x <= cut) becomes ``max``, each moved
      to the next larger float64 because GatingML rectangles are min-inclusive and max-exclusive;
    - ``boundary``: a RectangleGate on untransformed (linear, compensated) values; exclusive minima are moved up the
      same way;
    - ``singlets``: a PolygonGate on (area, height) in gating units approximating the band: for a ratio band
      (``ratio_min``, ``ratio_max``) the triangle (0, 0), (M, lo*M), (M, hi*M), i.e. lo <= height/area <= hi for
      0 < area <= M; for a regression band (``slope``, ``intercept``, ``half_width``) the parallelogram
      |height - intercept - slope*area| <= half_width for -M <= area <= M (M = 4 x the top of scale);
    - ``cluster``: an EllipsoidGate in gating units (``ellipse``: mean, covariance, distance_squared);
    - ``boolean`` (``op``: and | or | not, ``of``: populations): a BooleanGate; 'not' of several populations is
      written as 'and' of their complements, and 'and' / 'or' of one population repeats its reference (GatingML
      needs two operands).
    """
    writer = _Writer(realised, var, spillover)
    ids = writer.add_all()
    with open(path, "wb") as handle:
        fk.export_gatingml(writer.strategy, handle)
    return ids


class _Writer:
    """Builds the flowkit GatingStrategy of one sample's realised gates."""

    def __init__(self, realised: dict, var: pd.DataFrame, spillover: dict | None):
        if "gates" not in realised:
            raise GatingMLExportError("realised gates need a 'gates' list (as cytotrial.quantify.realised_gates "
                                      "writes them)")
        self.sample = str(realised.get("sample_id", "?"))
        self.records = realised["gates"]
        self.var = var
        self.strategy = fk.GatingStrategy()
        self.taken: set[str] = set()
        self.ids: dict[str, str] = {}
        self.paths: dict[str, tuple[str, ...]] = {"root": ("root",)}
        self.transform_ids: dict[str, str] = {}
        self.compensation = "uncompensated"
        if spillover and len(spillover.get("detectors", ())) > 0:
            self.compensation = self._unique(MATRIX_ID)
            self.strategy.add_comp_matrix(self.compensation, self._matrix(spillover))

    def add_all(self) -> dict[str, str]:
        """Add every 'ok' population whose parent was added; returns population -> gate id."""
        for record in self.records:
            name, parent = record["population"], record["parent"]
            if record.get("status", "ok") != "ok" or parent not in self.paths:
                continue
            gate_id = self._unique(name)
            gate = self._gate(record, gate_id)
            self.strategy.add_gate(gate, self.paths[parent])
            self.ids[name] = gate_id
            self.paths[name] = self.paths[parent] + (gate_id,)
        return dict(self.ids)

    def _gate(self, record: dict, gate_id: str):
        method = record.get("method")
        if method == "cuts" and record.get("combine") == "any":
            return self._either_cut(record, gate_id)
        if method == "cuts":
            return fk.gates.RectangleGate(gate_id, [self._cut_dimension(d, c, record)
                                                    for d, c in record["cuts"].items()])
        if method == "boundary":
            return fk.gates.RectangleGate(gate_id, [self._bound_dimension(d, b, record)
                                                    for d, b in record["bounds"].items()])
        if method == "singlets":
            return self._singlets(record, gate_id)
        if method in ("cluster", "ellipse"):
            return self._cluster(record, gate_id)
        if method == "rectangle":
            return self._rectangle(record, gate_id)
        if method in ("polygon", "mixture"):
            return self._polygon(record, gate_id)
        if method == "boolean":
            return self._boolean(record, gate_id)
        raise GatingMLExportError(f"sample {self.sample}: population '{record['population']}' has method "
                                  f"{method!r}, which cannot be exported to GatingML")

    def _cut_dimension(self, dim: str, cut: dict, record: dict) -> fk.Dimension:
        row = self._row(dim, record)
        value = float(cut["cut"])
        if cut["keep"] == "above":
            low, high = _just_above(value), None
        elif cut["keep"] == "below":
            low, high = None, _just_above(value)
        else:
            raise GatingMLExportError(f"sample {self.sample}: population '{record['population']}' keeps "
                                      f"{cut['keep']!r} of its cut on '{dim}'; use 'above' or 'below'")
        return fk.Dimension(row["channel"], self.compensation, self._transform(row), range_min=low, range_max=high)

    def _either_cut(self, record: dict, gate_id: str) -> fk.gates.PolygonGate:
        """Events passing either of two cuts: the plane without the quadrant that fails both, as a polygon."""
        (x_dim, x_cut), (y_dim, y_cut) = record["cuts"].items()
        rows = [self._row(d, record) for d in (x_dim, y_dim)]
        dims = [fk.Dimension(r["channel"], self.compensation, self._transform(r)) for r in rows]
        return fk.gates.PolygonGate(gate_id, dims, static.either_cut_polygon(x_cut, y_cut))

    def _bound_dimension(self, dim: str, bounds: dict, record: dict) -> fk.Dimension:
        row = self._row(dim, record)
        low = bounds.get("min")
        if bounds.get("min_exclusive") is not None:
            low = _just_above(float(bounds["min_exclusive"]))
        high = bounds.get("max", bounds.get("max_exclusive"))
        if low is None and high is None:
            raise GatingMLExportError(f"sample {self.sample}: population '{record['population']}' has no bound on "
                                      f"'{dim}' (expected min / min_exclusive / max / max_exclusive)")
        return fk.Dimension(row["channel"], self.compensation, None, range_min=low, range_max=high)

    def _singlets(self, record: dict, gate_id: str) -> fk.gates.PolygonGate:
        area, height = (self._row(d, record) for d in record["dims"][:2])
        top = SINGLET_AREA_TOP * _gating_value(area, float(area["range"]))
        if "ratio_min" in record:
            low, high = float(record["ratio_min"]), float(record["ratio_max"])
            vertices = [[0.0, 0.0], [top, low * top], [top, high * top]]
        elif "slope" in record:
            slope, intercept, half = (float(record[k]) for k in ("slope", "intercept", "half_width"))
            vertices = [[x, intercept + slope * x + side * half] for x, side in
                        ((-top, -1), (top, -1), (top, 1), (-top, 1))]
        else:
            raise GatingMLExportError(f"sample {self.sample}: singlets population '{record['population']}' has "
                                      "neither a ratio band (ratio_min, ratio_max) nor a regression band (slope, "
                                      "intercept, half_width)")
        dims = [fk.Dimension(r["channel"], self.compensation, self._transform(r)) for r in (area, height)]
        return fk.gates.PolygonGate(gate_id, dims, vertices)

    def _rectangle(self, record: dict, gate_id: str) -> fk.gates.RectangleGate:
        spec = record["rectangle"]
        mins, maxs = spec.get("min") or [None] * len(record["dims"]), spec.get("max") or [None] * len(record["dims"])
        dims = [fk.Dimension(r["channel"], self.compensation, self._transform(r), range_min=lo, range_max=hi)
                for r, lo, hi in zip((self._row(d, record) for d in record["dims"]), mins, maxs)]
        return fk.gates.RectangleGate(gate_id, dims)

    def _polygon(self, record: dict, gate_id: str) -> fk.gates.PolygonGate:
        dims = [fk.Dimension(r["channel"], self.compensation, self._transform(r))
                for r in (self._row(d, record) for d in record["dims"])]
        return fk.gates.PolygonGate(gate_id, dims, [[float(v) for v in vertex]
                                                    for vertex in record["polygon"]["vertices"]])

    def _cluster(self, record: dict, gate_id: str) -> fk.gates.EllipsoidGate:
        rows = [self._row(d, record) for d in record["dims"]]
        ellipse = record["ellipse"]
        dims = [fk.Dimension(r["channel"], self.compensation, self._transform(r)) for r in rows]
        return fk.gates.EllipsoidGate(gate_id, dims, [float(v) for v in ellipse["mean"]],
                                      [[float(v) for v in row] for row in ellipse["covariance"]],
                                      float(ellipse["distance_squared"]))

    def _boolean(self, record: dict, gate_id: str) -> fk.gates.BooleanGate:
        op, names = record.get("op"), list(record.get("of") or [])
        if op not in ("and", "or", "not") or not names:
            raise GatingMLExportError(f"sample {self.sample}: Boolean population '{record['population']}' needs "
                                      f"op (and, or, not) and the populations it combines ('of'); got {op!r}, {names}")
        for name in names:
            if name not in self.ids:
                raise GatingMLExportError(f"sample {self.sample}: Boolean population '{record['population']}' uses "
                                          f"'{name}', which is not an exported population defined above it")
        complement = op == "not"
        if op == "not" and len(names) > 1:
            op = "and"  # not (a or b) = (not a) and (not b)
        elif op == "not":
            complement = False
        if op != "not" and len(names) == 1:
            names = names * 2
        refs = [{"ref": self.ids[n], "path": self.paths[n][:-1], "complement": complement} for n in names]
        return fk.gates.BooleanGate(gate_id, op, refs)

    def _row(self, dim: str, record: dict) -> pd.Series:
        """The var row of a marker (var['marker']) or channel (var['channel'])."""
        for column in ("marker", "channel"):
            hits = self.var.index[self.var[column].astype(str) == dim]
            if len(hits):
                return self.var.loc[hits[0]]
        raise GatingMLExportError(f"sample {self.sample}: population '{record['population']}' uses '{dim}', which "
                                  f"is neither a marker nor a channel of the var table")

    def _transform(self, row: pd.Series) -> str:
        """Id of the channel's transform (added to the strategy on first use)."""
        channel = str(row["channel"])
        if channel not in self.transform_ids:
            transform_id = self._unique(f"{row['transform']}_{channel}")
            self.strategy.add_transform(transform_id, transform_from_params(_params(row)))
            self.transform_ids[channel] = transform_id
        return self.transform_ids[channel]

    def _matrix(self, spillover: dict) -> fk.Matrix:
        detectors = list(spillover["detectors"])
        markers = dict(zip(self.var["channel"].astype(str), self.var["marker"].fillna("").astype(str)))
        fluorochromes = [markers.get(d) or d for d in detectors]
        return fk.Matrix(np.asarray(spillover["matrix"], dtype=float), detectors, fluorochromes)

    def _unique(self, name: str) -> str:
        """An XML name (xs:ID) for ``name``, unique in the file."""
        base = re.sub(r"[^A-Za-z0-9._-]", "_", str(name))
        if not re.match(r"[A-Za-z_]", base):
            base = "_" + base
        candidate, n = base, 2
        while candidate in self.taken:
            candidate, n = f"{base}_{n}", n + 1
        self.taken.add(candidate)
        return candidate


def _just_above(value: float) -> float:
    """The next float64 above ``value``: x >= it exactly when x > value."""
    return float(np.nextafter(value, np.inf))


def _params(row: pd.Series) -> dict:
    return {k: (row[k] if k == "transform" else float(row[k])) for k in ("transform", "t", "w", "m", "a")
            if k in row.index and (k == "transform" or pd.notna(row[k]))}


def _gating_value(row: pd.Series, linear: float) -> float:
    return float(transform_from_params(_params(row)).apply(np.array([[linear]]))[0, 0])
