"""GatingML 2.0 import into a plain gating plan, evaluated with our own gate geometry.

:func:`load_gatingml` parses a GatingML 2.0 file with flowkit and converts it into a :class:`GatingPlan`: for every
gate id its parent, dimensions (channel, compensation reference, transform reference, or a ratio dimension) and
geometry (the kinds: :class:`PlanGate`), plus the transforms and spillover matrices. :func:`evaluate_plan`
computes, for one sample, each dimension's compensated and transformed values (flowkit's Matrix and transform
objects) and the gate membership with :mod:`cytotrial.gating.static` (not flowkit's GatingStrategy).
:func:`export_gatingml` (in :mod:`cytotrial.gating.gatingml_export`) writes a sample's realised gates.
Not flowkit's GatingStrategy: it takes 4.5x as long for equal memberships (benchmarks/results/static_gating.json).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import flowkit as fk
import numpy as np

from . import static
from .gatingml_export import export_gatingml

__all__ = ["GatingMLError", "GatingPlan", "PlanDimension", "PlanGate", "PlanMatrix", "PlanTransform",
           "PlanEvents", "evaluate_plan", "export_gatingml", "load_gatingml"]

UNCOMPENSATED = "uncompensated"
FCS_SPILLOVER = "FCS"


class GatingMLError(ValueError):
    """A GatingML file cannot be read, or a gate in it cannot be evaluated on a sample."""


@dataclass(frozen=True)
class PlanDimension:
    """One gate dimension: a channel (or a ratio of two), its compensation and its transform."""

    channel: str | None  # fcs-dimension name ($PnN, $PnS or a matrix fluorochrome); None for a ratio dimension
    compensation: str = UNCOMPENSATED  # 'uncompensated', 'FCS' (the file's spillover) or a matrix id
    transform: str | None = None  # transform id applied to the (compensated) values
    ratio: str | None = None  # id of the ratio transform that defines a new dimension


@dataclass(frozen=True)
class PlanTransform:
    """A GatingML transform: kind ('linear', 'log', 'asinh', 'logicle', 'hyperlog', 'ratio') and parameters."""

    id: str
    kind: str
    params: dict = field(hash=False)  # t, w, m, a as the kind needs; a, b, c for a ratio
    dims: tuple[str, ...] = ()  # ratio only: numerator and denominator channels


@dataclass(frozen=True)
class PlanMatrix:
    """A spillover matrix: rows and columns follow ``detectors``; ``fluorochromes`` name the rows' dyes."""

    id: str
    detectors: tuple[str, ...]
    fluorochromes: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class PlanGate:
    """One population: id, parent id (None at the root), kind, dimensions and geometry (see module doc).

    Gate kinds and their ``geometry``:

    =========  ============================================================================================
    rectangle  ``min``, ``max``: one bound (or None, open) per dimension; ``complement``
    polygon    ``vertices``: [[x, y], ...]; ``complement``
    ellipsoid  ``mean``, ``covariance``, ``distance_square``
    quadrant   ``quadrant_gate`` (owning QuadrantGate id), ``dividers`` (ids), ``values`` (per divider),
               ``ranges``: [min, max] per divider; one plan gate per quadrant, dims = the dividers' dimensions
    boolean    ``operation`` ('and', 'or', 'not'), ``operands``: [{'gate': id, 'complement': bool}, ...]
    =========  ============================================================================================
    """

    id: str
    parent: str | None
    kind: str
    dims: tuple[PlanDimension, ...]
    geometry: dict = field(hash=False)


@dataclass(frozen=True)
class GatingPlan:
    """Everything needed to gate a sample; gates are in file hierarchy order (parents before children)."""

    source: str
    gates: dict[str, PlanGate] = field(hash=False)
    transforms: dict[str, PlanTransform] = field(hash=False)
    matrices: dict[str, PlanMatrix] = field(hash=False)

    def as_dict(self) -> dict:
        """The plan as plain (JSON-ready) containers."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------- import


def read_gating_strategy(source: str) -> fk.GatingStrategy:
    """flowkit's parse of a GatingML 2.0 file; GatingMLError naming the file when it cannot be read."""
    try:
        return fk.parse_gating_xml(source)
    except (ValueError, KeyError, OSError, SyntaxError, fk.exceptions.FlowKitException) as err:
        raise GatingMLError(f"{source}: not a readable GatingML 2.0 file: {err}") from None


def load_gatingml(path: str | os.PathLike) -> GatingPlan:
    """Parse a GatingML 2.0 file (flowkit) into a :class:`GatingPlan`.

    Raises
    ------
    GatingMLError
        The file is not valid GatingML 2.0, or uses something the plan cannot describe (e.g. spectral matrices).
    """
    source = str(path)
    strategy = read_gating_strategy(source)
    transforms = {tid: _plan_transform(source, tid, t) for tid, t in strategy.transformations.items()}
    matrices = {mid: _plan_matrix(source, mid, m) for mid, m in strategy.comp_matrices.items()}
    gates: dict[str, PlanGate] = {}
    for gate_id, ancestors in strategy.get_gate_ids():
        try:
            gate = strategy.get_gate(gate_id, ancestors)
        except fk.exceptions.QuadrantReferenceError:
            continue  # a single quadrant: converted with its QuadrantGate
        parent = ancestors[-1] if ancestors and ancestors[-1] != "root" else None
        for plan_gate in _plan_gates(source, gate, parent):
            gates[plan_gate.id] = plan_gate
    return GatingPlan(source, gates, transforms, matrices)


def _plan_transform(source: str, transform_id: str, transform) -> PlanTransform:
    t = fk.transforms
    if isinstance(transform, t.RatioTransform):
        return PlanTransform(transform_id, "ratio", {"a": transform.param_a, "b": transform.param_b,
                                                     "c": transform.param_c}, tuple(transform.dimensions))
    kinds = [(t.LogicleTransform, "logicle", "twma"), (t.HyperlogTransform, "hyperlog", "twma"),
             (t.AsinhTransform, "asinh", "tma"), (t.LogTransform, "log", "tm"), (t.LinearTransform, "linear", "ta")]
    for cls, kind, names in kinds:
        if isinstance(transform, cls):
            return PlanTransform(transform_id, kind, {n: float(getattr(transform, f"param_{n}")) for n in names})
    raise GatingMLError(f"{source}: transform '{transform_id}' ({type(transform).__name__}) is not supported")


def _plan_matrix(source: str, matrix_id: str, matrix) -> PlanMatrix:
    if not isinstance(matrix, fk.Matrix):
        raise GatingMLError(f"{source}: matrix '{matrix_id}' ({type(matrix).__name__}) is not supported; only "
                            "square spillover matrices are")
    values = tuple(tuple(float(v) for v in row) for row in np.asarray(matrix.matrix, dtype=float))
    return PlanMatrix(matrix_id, tuple(matrix.detectors), tuple(matrix.fluorochromes), values)


def _plan_dimension(dim) -> PlanDimension:
    compensation = dim.compensation_ref or UNCOMPENSATED
    if isinstance(dim, fk.RatioDimension):
        return PlanDimension(None, compensation, dim.transformation_ref, dim.ratio_ref)
    if isinstance(dim, fk.QuadrantDivider):
        return PlanDimension(dim.dimension_ref, compensation, dim.transformation_ref)
    return PlanDimension(dim.id, compensation, dim.transformation_ref)


def _plan_gates(source: str, gate, parent: str | None) -> list[PlanGate]:
    """Our description of one flowkit gate (a QuadrantGate gives one plan gate per quadrant)."""
    g = fk.gates
    dims = tuple(_plan_dimension(d) for d in gate.dimensions)
    name = gate.gate_name
    if isinstance(gate, g.RectangleGate):
        geometry = {"min": [getattr(d, "min", None) for d in gate.dimensions],
                    "max": [getattr(d, "max", None) for d in gate.dimensions],
                    "complement": bool(getattr(gate, "use_complement", False))}
        return [PlanGate(name, parent, "rectangle", dims, geometry)]
    if isinstance(gate, g.PolygonGate):
        geometry = {"vertices": [[float(c) for c in v] for v in gate.vertices],
                    "complement": bool(getattr(gate, "use_complement", False))}
        return [PlanGate(name, parent, "polygon", dims, geometry)]
    if isinstance(gate, g.EllipsoidGate):
        geometry = {"mean": [float(c) for c in gate.coordinates],
                    "covariance": [[float(v) for v in row] for row in gate.covariance_matrix],
                    "distance_square": float(gate.distance_square)}
        return [PlanGate(name, parent, "ellipsoid", dims, geometry)]
    if isinstance(gate, g.QuadrantGate):
        return _plan_quadrants(gate, dims, parent)
    if isinstance(gate, g.BooleanGate):
        operands = [{"gate": ref["ref"], "complement": bool(ref["complement"])} for ref in gate.gate_refs]
        return [PlanGate(name, parent, "boolean", (), {"operation": gate.type, "operands": operands})]
    raise GatingMLError(f"{source}: gate '{name}' ({type(gate).__name__}) is not supported")


def _plan_quadrants(gate, dims: tuple[PlanDimension, ...], parent: str | None) -> list[PlanGate]:
    dividers = [d.id for d in gate.dimensions]
    values = [[float(v) for v in d.values] for d in gate.dimensions]
    plan = []
    for quadrant_id, quadrant in gate.quadrants.items():
        ranges = [list(quadrant.get_divider_range(d)) if d in quadrant.divider_refs else [None, None]
                  for d in dividers]
        geometry = {"quadrant_gate": gate.gate_name, "dividers": dividers, "values": values, "ranges": ranges}
        plan.append(PlanGate(quadrant_id, parent, "quadrant", dims, geometry))
    return plan


# -------------------------------------------------------------------------------------------- evaluate


def evaluate_plan(plan: GatingPlan, sample) -> dict[str, np.ndarray]:
    """Membership of every gate of the plan in one sample.

    ``sample`` is a flowkit Sample or an event source such as
    :class:`cytotrial.gating.plan_engine.AnnDataEvents` (see :class:`FlowkitEvents`). Each dimension is
    compensated as its own compensation reference says ('FCS': the file's $SPILLOVER / $SPILL, uncompensated
    when the file has none), then transformed; ratio dimensions are computed from the
    compensated channels before their transform. Membership is computed by :mod:`cytotrial.gating.static` and
    ANDed with the parent's.

    Returns
    -------
    dict
        gate id (each quadrant by its own id) -> (n_events,) bool, in plan order.
    """
    events = sample if isinstance(sample, PlanEvents) else PlanEvents(plan, sample)
    masks: dict[str, np.ndarray] = {}
    for gate_id in plan.gates:
        _evaluate(plan, gate_id, events, masks, stack=())
    return {gate_id: masks[gate_id] for gate_id in plan.gates}


def _evaluate(plan: GatingPlan, gate_id: str, events: PlanEvents, masks: dict, *, stack: tuple[str, ...]) -> None:
    """Evaluate a gate after its parent and Boolean operands (depth first, memoised in ``masks``)."""
    if gate_id in masks:
        return
    if gate_id in stack:
        raise GatingMLError(f"{plan.source}: gate '{gate_id}' depends on itself ({' -> '.join(stack + (gate_id,))})")
    gate = plan.gates[gate_id]
    needed = ([gate.parent] if gate.parent else []) + [o["gate"] for o in gate.geometry.get("operands", [])]
    for other in needed:
        if other not in plan.gates:
            raise GatingMLError(f"{plan.source}: gate '{gate_id}' refers to gate '{other}', which is not defined")
        _evaluate(plan, other, events, masks, stack=stack + (gate_id,))
    mask = _membership(plan, gate, events, masks)
    masks[gate_id] = mask & masks[gate.parent] if gate.parent else mask


def _membership(plan: GatingPlan, gate: PlanGate, events: PlanEvents, masks: dict) -> np.ndarray:
    geometry = gate.geometry
    if gate.kind == "boolean":
        operands = geometry["operands"]
        return static.combine_boolean(geometry["operation"], [masks[o["gate"]] for o in operands],
                                      [o["complement"] for o in operands])
    values = np.column_stack([events.values(dim, gate.id) for dim in gate.dims])
    if gate.kind == "rectangle":
        return static.in_rectangle(values, geometry["min"], geometry["max"], geometry.get("complement", False))
    if gate.kind == "polygon":
        return static.in_polygon(values, np.asarray(geometry["vertices"]), geometry.get("complement", False))
    if gate.kind == "ellipsoid":
        return static.in_ellipsoid(values, geometry["mean"], np.asarray(geometry["covariance"]),
                                   geometry["distance_square"])
    if gate.kind == "quadrant":
        return static.quadrant_masks(values, {gate.id: [tuple(r) for r in geometry["ranges"]]})[gate.id]
    raise GatingMLError(f"{plan.source}: gate '{gate.id}' has unknown kind '{gate.kind}'")


class PlanEvents:
    """One sample's events, compensated per reference and transformed per dimension (cached).

    Pass it to :func:`evaluate_plan` instead of the sample to read the gates' dimension values afterwards
    (:meth:`values`)."""

    def __init__(self, plan: GatingPlan, sample):
        self.plan = plan
        self.sample = sample if hasattr(sample, "file_compensated") else FlowkitEvents(sample)
        self.pnn = list(self.sample.pnn)
        self.pns = list(self.sample.pns)
        self._compensated: dict[str, np.ndarray] = {}
        self._transforms = {tid: _flowkit_transform(t) for tid, t in plan.transforms.items() if t.kind != "ratio"}
        self._cache: dict[PlanDimension, np.ndarray] = {}

    def values(self, dim: PlanDimension, gate_id: str) -> np.ndarray:
        """(n_events,) values of one gate dimension, compensated and transformed."""
        if dim not in self._cache:
            values = self._ratio(dim, gate_id) if dim.ratio else self._channel(dim.channel, dim.compensation, gate_id)
            if dim.transform is not None:
                if dim.transform not in self._transforms:
                    raise GatingMLError(f"{self.plan.source}: gate '{gate_id}' uses transform '{dim.transform}', "
                                        f"which is not defined (transforms: {sorted(self._transforms)})")
                values = self._transforms[dim.transform].apply(values.reshape(-1, 1)).ravel()
            self._cache[dim] = values
        return self._cache[dim]

    def _ratio(self, dim: PlanDimension, gate_id: str) -> np.ndarray:
        spec = self.plan.transforms.get(dim.ratio)
        if spec is None or spec.kind != "ratio":
            raise GatingMLError(f"{self.plan.source}: gate '{gate_id}' has a new dimension from '{dim.ratio}', "
                                "which is not a ratio transform of the file")
        x, y = (self._channel(name, dim.compensation, gate_id) for name in spec.dims)
        p = spec.params
        with np.errstate(divide="ignore", invalid="ignore"):
            return p["a"] * ((x - p["b"]) / (y - p["c"]))

    def _channel(self, name: str, compensation: str, gate_id: str) -> np.ndarray:
        return self._compensated_events(compensation, gate_id)[:, self._index(name, compensation, gate_id)]

    def _index(self, name: str, compensation: str, gate_id: str) -> int:
        for labels in (self.pnn, self.pns, [label.replace("/", "_") for label in self.pnn]):
            if name in labels:
                return labels.index(name)
        matrix = self.plan.matrices.get(compensation)
        if matrix is not None and name in matrix.fluorochromes:
            detector = matrix.detectors[matrix.fluorochromes.index(name)]
            if detector in self.pnn:
                return self.pnn.index(detector)
        raise GatingMLError(f"{self.plan.source}: gate '{gate_id}' uses dimension '{name}', which is not a channel "
                            f"of sample '{self.sample.id}' (channels: {self.pnn})")

    def _compensated_events(self, reference: str, gate_id: str) -> np.ndarray:
        if reference == UNCOMPENSATED:
            return self.sample.raw(self.plan.source, gate_id)
        if reference not in self._compensated:
            try:
                if reference == FCS_SPILLOVER:
                    self._compensated[reference] = self.sample.file_compensated(self.plan.source, gate_id)
                else:
                    self._compensated[reference] = self.sample.compensated_with(self._matrix(reference, gate_id))
            except (fk.exceptions.FlowKitException, ValueError) as err:
                raise GatingMLError(f"{self.plan.source}: gate '{gate_id}': cannot compensate sample "
                                    f"'{self.sample.id}' with '{reference}': {err}") from None
        return self._compensated[reference]

    def _matrix(self, reference: str, gate_id: str) -> fk.Matrix:
        spec = self.plan.matrices.get(reference)
        if spec is None:
            raise GatingMLError(f"{self.plan.source}: gate '{gate_id}' uses compensation '{reference}', which is "
                                "neither 'uncompensated', 'FCS' nor a matrix of the file "
                                f"({sorted(self.plan.matrices)})")
        return fk.Matrix(np.array(spec.values), list(spec.detectors), list(spec.fluorochromes))


class FlowkitEvents:
    """A flowkit Sample as the event source of :func:`evaluate_plan`.

    An event source has ``id``, ``pnn`` and ``pns`` (channel names and labels, one per column) and gives the
    raw events, the events compensated with the file's own spillover, and the events compensated with a
    given matrix (see :class:`cytotrial.gating.plan_engine.AnnDataEvents` for preprocessed events).
    """

    def __init__(self, sample: fk.Sample):
        self.fk_sample = sample
        self.id = sample.id
        self.pnn = list(sample.pnn_labels)
        self.pns = list(sample.pns_labels)

    def raw(self, source: str, gate_id: str) -> np.ndarray:
        return self.fk_sample.get_events(source="raw")

    def file_compensated(self, source: str, gate_id: str) -> np.ndarray:
        """Compensated with $SPILLOVER / $SPILL; uncompensated when the file has none (GatingML 2.0)."""
        meta = self.fk_sample.get_metadata()
        spill = meta.get("spillover", meta.get("spill"))
        if spill is None:
            return self.raw(source, gate_id)
        fluoro = list(self.fk_sample.fluoro_indices)
        matrix = fk.Matrix(spill, [self.pnn[i] for i in fluoro], [self.pns[i] for i in fluoro],
                           null_channels=self.fk_sample.null_channels)
        return matrix.apply(self.fk_sample)

    def compensated_with(self, matrix: fk.Matrix) -> np.ndarray:
        return matrix.apply(self.fk_sample)


def _flowkit_transform(spec: PlanTransform):
    """The flowkit transform object of a plan transform (not for ratios)."""
    p, t = spec.params, fk.transforms
    builders = {
        "linear": lambda: t.LinearTransform(param_t=p["t"], param_a=p["a"]),
        "log": lambda: t.LogTransform(param_t=p["t"], param_m=p["m"]),
        "asinh": lambda: t.AsinhTransform(param_t=p["t"], param_m=p["m"], param_a=p["a"]),
        "logicle": lambda: t.LogicleTransform(param_t=p["t"], param_w=p["w"], param_m=p["m"], param_a=p["a"]),
        "hyperlog": lambda: t.HyperlogTransform(param_t=p["t"], param_w=p["w"], param_m=p["m"], param_a=p["a"]),
    }
    if spec.kind not in builders:
        raise GatingMLError(f"transform '{spec.id}' has unknown kind '{spec.kind}'")
    return builders[spec.kind]()
