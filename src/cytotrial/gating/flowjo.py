"""FlowJo 10 workspaces (.wsp): import a sample's gating tree as a :class:`GatingPlan`, export realised gates.

:func:`load_flowjo_template` reads a workspace with flowkit (no FCS files needed): flowkit moves FlowJo's gates
into transformed space, strips the 'Comp-' prefix (compensating with the workspace matrix) and makes FlowJo
ellipses polygons. Gate ids are the population names, qualified by the shortest unique end of their path
('CD4+/IL2+') when a name repeats. FlowJo 'log' is GatingML 'flog' (T = offset x 10^decades, M = decades); FlowJo
'biex' (a lookup table, no GatingML equivalent) is undone: such dimensions are gated on linear values, rectangle
bounds mapped back exactly, polygon edges sampled at ``BIEX_EDGE_POINTS`` points and mapped back (approximate).

:func:`export_flowjo_workspace` writes a GatingML 2.0 file's gates with flowkit's FlowJo writer: ellipses become
``ELLIPSE_VERTICES``-gons on their boundary, quadrants rectangles, asinh FlowJo 'fasinh'; Boolean gates (and the
gates below them) are left out with a warning.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import os
import tempfile
import uuid
import warnings
from array import array

import flowio
import flowkit as fk
import numpy as np
from lxml import etree

from .gatingml import (GatingMLError, GatingPlan, PlanGate, PlanTransform, _plan_gates, _plan_matrix, _plan_transform,
                       read_gating_strategy)

__all__ = ["BIEX_EDGE_POINTS", "ELLIPSE_VERTICES", "export_flowjo_workspace", "load_flowjo_template"]

BIEX_EDGE_POINTS = 64  # points per polygon edge when a biex dimension is mapped back to linear values
ELLIPSE_VERTICES = 72  # vertices of the polygon that replaces an ellipse in an exported workspace
_TRANSFORMS_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
_DATATYPE_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"


def load_flowjo_template(wsp_path: str | os.PathLike, group: str = "All Samples", sample: str | None = None
                         ) -> GatingPlan:
    """The gating tree of one sample of a FlowJo 10 workspace (.wsp; FCS files not needed) as a :class:`GatingPlan`.

    The sample is ``sample`` (a sample name of ``group``, usually its FCS file name) or else the group's first
    sample in flowkit's (sorted) order. Raises :class:`GatingMLError` when the file is missing or not a readable
    workspace, the group or sample is not in it, or it uses something the plan cannot describe (spectral matrix).
    """
    source = str(wsp_path)
    workspace = _read_workspace(source)
    sample_id = _pick_sample(workspace, source, group, sample)
    strategy = workspace.get_gating_strategy(sample_id)
    label = f"{source} (sample {sample_id})"
    transforms, biex = {}, {}
    for tid, xform in strategy.transformations.items():
        if isinstance(xform, fk.transforms.WSPBiexTransform):
            biex[tid] = xform
        elif isinstance(xform, fk.transforms.WSPLogTransform):
            transforms[tid] = PlanTransform(tid, "log", {"t": float(xform.offset * 10 ** xform.decades),
                                                         "m": float(xform.decades)})
        else:
            transforms[tid] = _plan_transform(label, tid, xform)
    matrices = {mid: _plan_matrix(label, mid, m) for mid, m in strategy.comp_matrices.items()}
    gate_ids = [(name, tuple(path)) for name, path in strategy.get_gate_ids()]
    ids = _unique_ids(gate_ids)
    gates: dict[str, PlanGate] = {}
    for name, path in gate_ids:
        gate = strategy.get_gate(name, path)
        parent = ids[(path[-1], path[:-1])] if len(path) > 1 else None
        plan_gate = dataclasses.replace(_plan_gates(label, gate, parent)[0], id=ids[(name, path)])  # no quadrants
        if plan_gate.kind == "boolean":
            try:
                operands = [{"gate": ids[(ref["ref"], tuple(ref["path"]))], "complement": bool(ref["complement"])}
                            for ref in gate.gate_refs]
            except KeyError as err:
                raise GatingMLError(f"{label}: Boolean gate '{name}' refers to {err}, which is not a gate of the "
                                    "sample; fix the Boolean gate in FlowJo") from None
            plan_gate = dataclasses.replace(plan_gate, geometry={**plan_gate.geometry, "operands": operands})
        gates[plan_gate.id] = _undo_biex(label, plan_gate, biex)
    return GatingPlan(label, gates, transforms, matrices)


def _read_workspace(source: str) -> fk.Workspace:
    if not os.path.isfile(source):
        raise GatingMLError(f"{source}: FlowJo workspace not found; give the path of a FlowJo 10 .wsp file")
    try:
        root = etree.parse(source).getroot().tag
    except (OSError, etree.XMLSyntaxError) as err:
        raise GatingMLError(f"{source}: not a FlowJo workspace (not readable XML: {err}); in FlowJo use "
                            "File > Save As... to write a .wsp file") from None
    if root != "Workspace":
        raise GatingMLError(f"{source}: not a FlowJo workspace (root element '{etree.QName(root).localname}', "
                            "expected 'Workspace'); GatingML files are read with load_gatingml")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flowkit warns about every FCS file it was not given
            return fk.Workspace(source, load_missing_file_data=True)
    except Exception as err:  # flowkit's parser fails with many error types on malformed workspaces
        raise GatingMLError(f"{source}: FlowJo workspace cannot be read by flowkit ({type(err).__name__}: {err}); "
                            "save it again with FlowJo 10 using linear, log, logicle, biex or ArcSinh "
                            "transforms") from None


def _pick_sample(workspace: fk.Workspace, source: str, group: str, sample: str | None) -> str:
    groups = workspace.get_sample_groups()
    if group not in groups:
        raise GatingMLError(f"{source}: the workspace has no sample group '{group}'; groups: {groups}")
    members = workspace.get_sample_ids(group_name=group, loaded_only=False)
    if (sample is None and not members) or (sample is not None and sample not in members):
        raise GatingMLError(f"{source}: group '{group}' has {f'no sample {sample!r}' if sample else 'no samples'}; "
                            f"its samples: {members}; groups: {groups}")
    return sample if sample is not None else members[0]


def _unique_ids(gate_ids: list[tuple[str, tuple[str, ...]]]) -> dict[tuple[str, tuple[str, ...]], str]:
    """(name, path) -> the name, or the shortest end of 'ancestor/.../name' that no other gate shares."""
    full = {gid: gid[1][1:] + (gid[0],) for gid in gate_ids}
    ids = {}
    for gid, parts in full.items():
        for k in range(1, len(parts) + 1):
            if sum(other[-k:] == parts[-k:] for other in full.values()) == 1:
                break
        ids[gid] = "/".join(parts[-k:])
    return ids


def _undo_biex(label: str, gate: PlanGate, biex: dict) -> PlanGate:
    """The gate on linear values in every dimension with a FlowJo biex transform."""
    flags = [dim.transform in biex for dim in gate.dims]
    if not any(flags):
        return gate
    dims = tuple(dataclasses.replace(d, transform=None) if f else d for d, f in zip(gate.dims, flags))
    geometry = dict(gate.geometry)
    if gate.kind == "rectangle":
        for key in ("min", "max"):
            geometry[key] = [_linear_bound(biex[d.transform], b, key == "min") if f and b is not None else b
                             for d, f, b in zip(gate.dims, flags, geometry[key])]
    elif gate.kind == "polygon":
        vertices = np.asarray(geometry["vertices"], dtype=float)
        steps = np.arange(BIEX_EDGE_POINTS) / BIEX_EDGE_POINTS
        edges = np.roll(vertices, -1, axis=0) - vertices
        dense = (vertices[:, None, :] + steps[None, :, None] * edges[:, None, :]).reshape(-1, vertices.shape[1])
        for j, (dim, flag) in enumerate(zip(gate.dims, flags)):
            if flag:
                dense[:, j] = biex[dim.transform].inverse(dense[:, j].reshape(-1, 1)).ravel()
        geometry["vertices"] = dense.tolist()
    else:
        raise GatingMLError(f"{label}: gate '{gate.id}' ({gate.kind}) uses a FlowJo biex transform, which is only "
                            "supported for rectangle and polygon gates; use Logicle or ArcSinh in FlowJo")
    return dataclasses.replace(gate, dims=dims, geometry=geometry)


def _linear_bound(xform, bound: float, is_min: bool) -> float | None:
    """Linear bound equivalent to ``xform(x) >= bound`` (min) or ``xform(x) < bound`` (max) for the clamped table."""
    low, high = xform.apply(np.array([[-1e300], [1e300]])).ravel()
    if bound <= low:
        return None if is_min else -np.inf
    if bound > high:
        return np.inf if is_min else None
    return float(xform.inverse(np.array([[bound]]))[0, 0])


class _AsinhForFlowJo(fk.transforms.LinearTransform):
    """An asinh transform flowkit's FlowJo writer accepts (it writes 'linear'; rewritten to 'fasinh' after)."""

    def __init__(self, asinh: fk.transforms.AsinhTransform):
        super().__init__(param_t=asinh.param_t, param_a=asinh.param_a)
        self.asinh = asinh

    def apply(self, events):
        return self.asinh.apply(events)

    def inverse(self, events):
        return self.asinh.inverse(events)


def workspace_sample(sample_id: str, channel_labels: list[str], n_events: int) -> fk.Sample:
    """A flowkit Sample of ``n_events`` events of these channels ($PnN), all 0: the keywords a FlowJo workspace
    keeps of a sample are those of ``fk.Sample(events, sample_id=..., channel_labels=...)`` on the real events
    ($TOT, $PAR, offsets), and the workspace holds no events, so they are not converted (flowkit converts an
    array to a Python list and back, a tenth of a second per 100,000 events)."""
    buffer = io.BytesIO()
    flowio.create_fcs(buffer, array("f", bytes(4 * int(n_events) * len(channel_labels))),
                      channel_names=list(channel_labels))
    return fk.Sample(flowio.FlowData(buffer), sample_id=sample_id)


def export_flowjo_workspace(gatingml_path: str | os.PathLike, sample: fk.Sample, path: str | os.PathLike,
                            group: str = "All Samples") -> list[str]:
    """Write the gates of a GatingML 2.0 file as a FlowJo 10 workspace holding one sample (written atomically).

    Returns the ids of the gates left out (Boolean gates, ellipsoids of more than 2 dimensions, and the gates
    below them); a warning lists them too.
    """
    source = str(gatingml_path)
    strategy = read_gating_strategy(source)
    if len(strategy.comp_matrices) > 1:
        raise GatingMLError(f"{source}: {len(strategy.comp_matrices)} compensation matrices; a FlowJo workspace "
                            "sample has one, so write the gates with a single matrix")
    out, g = fk.GatingStrategy(), fk.gates
    for tid, xform in strategy.transformations.items():
        out.add_transform(tid, _AsinhForFlowJo(xform) if isinstance(xform, fk.transforms.AsinhTransform) else xform)
    matrix = next(iter(strategy.comp_matrices.items()), None)
    if matrix is not None:
        out.add_comp_matrix(*matrix)
    gates = []
    for name, gate_path in strategy.get_gate_ids():
        try:
            gates.append((name, tuple(gate_path), strategy.get_gate(name, gate_path)))
        except fk.exceptions.QuadrantReferenceError:
            continue  # a quadrant: written with its QuadrantGate
    refs = {getattr(d, "dimension_ref", None) or d.id: d.transformation_ref  # channel -> its one FlowJo transform
            for _, _, gate in reversed(gates) for d in getattr(gate, "dimensions", []) if d.transformation_ref}
    skipped, paths, asinh_channels = [], {("root",): ("root",)}, {}
    for name, gate_path, gate in gates:
        parent = paths.get(gate_path)
        if parent is None or isinstance(gate, g.BooleanGate) or (isinstance(gate, g.EllipsoidGate)
                                                                  and len(gate.dimensions) != 2):
            skipped.append(name)
            continue
        for new in _flowjo_gates(source, gate, matrix, refs, strategy=strategy):
            asinh_channels.update({d.id: out.transformations[d.transformation_ref].asinh for d in new.dimensions
                                   if isinstance(out.transformations.get(d.transformation_ref), _AsinhForFlowJo)})
            out.add_gate(new, parent)
            paths[gate_path + ((name, new.gate_name) if isinstance(gate, g.QuadrantGate) else (name,))] = \
                parent + (new.gate_name,)
    buffer = io.BytesIO()
    try:
        fk.Session(gating_strategy=out, fcs_samples=[sample]).export_wsp(buffer, group)
    except (ValueError, NotImplementedError) as err:
        raise GatingMLError(f"{source}: the gates cannot be written as a FlowJo workspace: {err}") from None
    root = etree.fromstring(buffer.getvalue())
    _fix_workspace(root, out, asinh_channels)
    _write_atomically(path, etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True))
    if skipped:
        warnings.warn(f"{source}: gates {skipped} cannot be written to a FlowJo workspace (Boolean gates, "
                      "ellipsoids of more than 2 dimensions and the gates below them) and were left out",
                      stacklevel=2)
    return skipped


def _flowjo_gates(source: str, gate, matrix, refs: dict, *, strategy: fk.GatingStrategy) -> list:
    """Rectangle / polygon gates that replace ``gate``, each dimension in its channel's one transform."""
    g = fk.gates
    detectors = set(matrix[1].detectors) if matrix else set()
    for dim in gate.dimensions:
        if isinstance(dim, fk.RatioDimension):
            raise GatingMLError(f"{source}: gate '{gate.gate_name}' has a ratio dimension, which FlowJo cannot read")
        channel = getattr(dim, "dimension_ref", None) or dim.id
        if dim.compensation_ref == "FCS" or (channel in detectors and dim.compensation_ref == "uncompensated"):
            raise GatingMLError(f"{source}: gate '{gate.gate_name}' uses '{channel}' with compensation "
                                f"'{dim.compensation_ref}'; a FlowJo workspace compensates every detector of its "
                                "single matrix, so write the gates with that matrix as compensation reference")
    if isinstance(gate, g.RectangleGate):  # bounds on untransformed values move into the channel's transform
        def move(d, xform):
            return fk.Dimension(d.id, d.compensation_ref, refs[d.id], *(
                None if v is None else float(xform.apply(np.array([[v]]))[0, 0]) for v in (d.min, d.max)))
        return [g.RectangleGate(gate.gate_name, [move(d, strategy.get_transform(refs[d.id])) if d.transformation_ref
                                                 is None and d.id in refs else d for d in gate.dimensions])]
    if isinstance(gate, g.PolygonGate):
        return [gate]
    if isinstance(gate, g.EllipsoidGate):
        angles = 2 * np.pi * np.arange(ELLIPSE_VERTICES) / ELLIPSE_VERTICES
        try:
            factor = np.linalg.cholesky(np.asarray(gate.covariance_matrix, dtype=float))
        except np.linalg.LinAlgError:
            raise GatingMLError(f"{source}: ellipsoid '{gate.gate_name}' has a covariance matrix that is not "
                                "positive definite") from None
        circle = np.column_stack([np.cos(angles), np.sin(angles)]) * np.sqrt(float(gate.distance_square))
        vertices = np.asarray(gate.coordinates, dtype=float) + circle @ factor.T
        return [g.PolygonGate(gate.gate_name, gate.dimensions, vertices.tolist())]
    return [g.RectangleGate(quadrant_id, [  # a QuadrantGate: one rectangle per quadrant
        fk.Dimension(d.dimension_ref, d.compensation_ref, d.transformation_ref, *quadrant.get_divider_range(d.id))
        for d in gate.dimensions if d.id in quadrant.divider_refs]) for quadrant_id, quadrant in gate.quadrants.items()]


# The workspace's modification date: fixed, so that the same gates give the same bytes on every run (flowkit writes
# the time of writing).
WORKSPACE_DATE = "Thu Jan 01 00:00:00 UTC 1970"


def _fix_workspace(root, strategy: fk.GatingStrategy, asinh_channels: dict) -> None:
    """Asinh as FlowJo 'fasinh', no 'Comp-' prefix on channels outside the matrix, the matrix in the sample too,
    a fixed modification date."""
    if root.get("modDate") is not None:
        root.set("modDate", WORKSPACE_DATE)
    detectors = {d for m in strategy.comp_matrices.values() for d in m.detectors}
    parameter = f"{{{_DATATYPE_NS}}}name"
    for matrix in root.findall(f"Matrices/{{{_TRANSFORMS_NS}}}spilloverMatrix"):  # FlowJo gives each an id
        matrix.set(f"{{{_TRANSFORMS_NS}}}id", str(uuid.uuid5(uuid.NAMESPACE_URL, matrix.get("name"))))
        for data_set in root.iter("DataSet"):  # FlowJo (and flowkit) read a sample's matrix after its DataSet
            data_set.addnext(copy.deepcopy(matrix))
    for element in list(root.iter(f"{{{_TRANSFORMS_NS}}}linear")):
        name = element.find(f"{{{_DATATYPE_NS}}}parameter").get(parameter)
        xform = asinh_channels.get(name.removeprefix("Comp-"))  # an AsinhTransform
        if xform is not None:
            element.tag = f"{{{_TRANSFORMS_NS}}}fasinh"
            element.attrib.clear()  # the attributes FlowJo 10 writes for its ArcSinh transform
            element.attrib.update({f"{{{_TRANSFORMS_NS}}}{k}": str(v) for k, v in (
                ("length", 256), ("maxRange", xform.param_t), ("T", xform.param_t), ("A", xform.param_a),
                ("M", xform.param_m), ("W", -10))})
    for element in root.iter(f"{{{_DATATYPE_NS}}}fcs-dimension"):
        name = element.get(parameter)
        if name.startswith("Comp-") and name.removeprefix("Comp-") not in detectors:
            element.set(parameter, name.removeprefix("Comp-"))


def _write_atomically(path: str | os.PathLike, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".flowjo-", suffix=".wsp.tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)  # still there: os.replace is the last step
        raise
