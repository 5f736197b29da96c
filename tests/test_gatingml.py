"""GatingML 2.0: static geometry, import evaluated by our own code on the compliance set, export round trip."""

from __future__ import annotations

from pathlib import Path

import flowkit as fk
import numpy as np
import pandas as pd
import pytest
import yaml
from flowutils import gating as flowutils_gating

from cytotrial.gating import static
from cytotrial.gating.engine import apply_template
from cytotrial.gating.gatingml import GatingMLError, evaluate_plan, export_gatingml, load_gatingml
from cytotrial.gating.template import load_template
from cytotrial.io.fcs import read_fcs
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs, read_compensated
from cytotrial.quantify import realised_gates
from cytotrial.preprocess.transforms import fluorescence_transform, scatter_transform, transform_from_params

from .conftest import REPO

COMPLIANCE_CANDIDATES = [Path(__file__).resolve().parents[2] / "shared" / "gatingml_compliance",
                         Path("/work/shared/gatingml_compliance")]
COMPLIANCE = next((p for p in COMPLIANCE_CANDIDATES if (p / "data1.fcs").exists()), None)
needs_compliance = pytest.mark.skipif(
    COMPLIANCE is None, reason="GatingML 2.0 compliance data (flowkit data/gate_ref) not found at "
    + " or ".join(str(p) for p in COMPLIANCE_CANDIDATES))
GML_FILES = sorted(p.name for p in (COMPLIANCE / "gml").glob("*.xml")) if COMPLIANCE else []
INVALID_FILES = {"gml_range_gate_attr_testing.xml"}  # not schema-valid (a <sample> element around the gate)
TRUTH_ALIASES = {"ParRectangle1": "ParQuadRect"}  # gate id -> name of its truth file


# ------------------------------------------------------------------------------------------- static geometry


def test_rectangle_bounds_are_min_inclusive_max_exclusive_and_may_be_open():
    values = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [np.nan, 5.0]])
    assert static.in_rectangle(values, [1.0, None], [2.0, None]).tolist() == [False, True, False, False]
    assert static.in_rectangle(values[:, 0], [None], [2.0], complement=True).tolist() == [False, False, True, True]


@pytest.mark.parametrize("vertices", [
    [[0, 0], [4, 0], [4, 4], [0, 4]],
    [[0, 0], [4, 4], [4, 0], [0, 4]],  # self-crossing bow tie
    [[1, 1], [9, 1], [9, 8], [3, 8], [3, 4], [6, 4], [6, 6], [1, 6]],  # crossing edges leave a hole
])
def test_polygon_matches_flowkit_on_vertices_edges_and_grid(vertices):
    grid = np.mgrid[-1:10:0.5, -1:10:0.5].reshape(2, -1).T
    points = np.vstack([grid, np.asarray(vertices, float), np.random.default_rng(0).uniform(-1, 10, (2000, 2))])
    expected = flowutils_gating.points_in_polygon(np.asarray(vertices, float), points)
    np.testing.assert_array_equal(static.in_polygon(points, np.asarray(vertices)), expected)


def test_ellipsoid_boundary_is_inclusive_and_boolean_complements():
    points = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    inside = static.in_ellipsoid(points, [0, 0], np.diag([1.0, 4.0]), 1.0)
    assert inside.tolist() == [True, True, False]
    a, b = np.array([True, True, False]), np.array([True, False, False])
    assert static.combine_boolean("and", [a, b], [False, True]).tolist() == [False, True, False]
    assert static.combine_boolean("NOT", [b]).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="exactly one operand"):
        static.combine_boolean("not", [a, b])


def test_divider_range_follows_gatingml_locations():
    assert static.divider_range([10.0, 20.0], 15) == (10.0, 20.0)
    assert static.divider_range([10.0, 20.0], 5) == (None, 10.0)
    assert static.divider_range([10.0, 20.0], 20) == (20.0, None)


# ------------------------------------------------------------------------------------------ compliance set


@pytest.fixture(scope="module")
def data1() -> fk.Sample:
    return fk.Sample(str(COMPLIANCE / "data1.fcs"))


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    return {p.stem.removeprefix("Results_"): np.loadtxt(p, dtype=int).astype(bool)
            for p in (COMPLIANCE / "truth").glob("Results_*.txt")}


def _truth_for(gate_id: str, truth: dict) -> np.ndarray | None:
    return truth.get(TRUTH_ALIASES.get(gate_id, gate_id))


@needs_compliance
@pytest.mark.parametrize("gml", [f for f in GML_FILES if f not in INVALID_FILES])
def test_compliance_gates_equal_truth_and_flowkit(gml, data1, truth):
    path = COMPLIANCE / "gml" / gml
    masks = evaluate_plan(load_gatingml(path), data1)
    flowkit_results = fk.parse_gating_xml(str(path)).gate_sample(data1)
    assert masks, f"{gml}: no gates"
    for gate_id, mask in masks.items():
        assert mask.shape == (data1.event_count,)
        np.testing.assert_array_equal(mask, flowkit_results.get_gate_membership(gate_id),
                                      err_msg=f"{gml}: gate {gate_id} differs from flowkit")
        expected = _truth_for(gate_id, truth)
        if gml != "gml_ellipse2_gate.xml":  # the only gate of the set without a truth file
            assert expected is not None, f"{gml}: no truth file for gate {gate_id}"
        if expected is not None:
            np.testing.assert_array_equal(mask, expected, err_msg=f"{gml}: gate {gate_id} differs from the truth")


@needs_compliance
def test_every_truth_file_is_checked(truth):
    checked = set()
    for gml in GML_FILES:
        if gml not in INVALID_FILES:
            checked.update(TRUTH_ALIASES.get(g, g) for g in load_gatingml(COMPLIANCE / "gml" / gml).gates)
    assert set(truth) <= checked


@needs_compliance
def test_plan_describes_hierarchy_quadrants_ratios_and_matrices():
    plan = load_gatingml(COMPLIANCE / "gml" / "gml_all_gates.xml")
    assert plan.gates["ParAnd3"].parent == "Range1" and plan.gates["ScalePar1"].parent == "ScaleRect1"
    quadrant = plan.gates["FL2P-FL4N"]
    assert quadrant.kind == "quadrant" and quadrant.geometry["quadrant_gate"] == "Quadrant1"
    assert [d.channel for d in quadrant.dims] == ["FL2-H", "FL4-H"]
    ratio = plan.gates["RatRange1a"].dims[0]
    assert ratio.channel is None and plan.transforms[ratio.ratio].dims == ("FL2-H", "FL2-A")
    assert plan.transforms[ratio.transform].kind == "log"
    assert plan.gates["And3"].geometry["operands"][1] == {"gate": "Ellipse1", "complement": True}
    assert "MySpill" in plan.matrices and plan.gates["Rectangle4"].dims[0].compensation == "MySpill"
    nested = load_gatingml(COMPLIANCE / "gml" / "gml_parent_quadrant_rect_gate.xml")
    assert nested.gates["ParRectangle1"].parent == "FL2P-FL4P"


@needs_compliance
def test_invalid_gatingml_names_the_file():
    with pytest.raises(GatingMLError, match="gml_range_gate_attr_testing.xml: not a readable GatingML 2.0"):
        load_gatingml(COMPLIANCE / "gml" / "gml_range_gate_attr_testing.xml")


# --------------------------------------------------------------------------------------- export round trip

PANEL = Panel.from_yaml(REPO / "config" / "panel.yaml")


def _sig6(value: float) -> float:
    """Rounded as the realised-gates JSON stores floats."""
    return float(f"{float(value):.6g}")


@pytest.fixture(scope="module", params=["logicle", "asinh"])
def simulated(small_trial, request) -> dict:
    """One simulated file: compensated values, var table (logicle or asinh), gating-unit values, realised gates."""
    path = str(small_trial["samples"].fcs.iloc[0])
    events = read_compensated(path, PANEL, {"source": "file"})
    records = []
    for j, (name, channel) in enumerate(zip(events.names, events.channels)):
        scatter = name in PANEL.scatter
        params = (scatter_transform(events.ranges[j]) if scatter else
                  fluorescence_transform(events.values[:, j], events.ranges[j], {"fluorescence": request.param}))[1]
        records.append({"channel": channel, "marker": "" if scatter else name,
                        "kind": "scatter" if scatter else "fluorescence", "range": events.ranges[j], **params})
    var = pd.DataFrame(records).set_index("channel", drop=False)
    gating = np.column_stack([transform_from_params(r).apply(events.values[:, [j]]).ravel()
                              for j, r in enumerate(records)])
    column = {n: j for j, n in enumerate(events.names)}
    return {"events": events, "sample": read_fcs(path), "var": var, "x": gating, "linear": events.values, "col": column,
            "realised": _realised(gating, events, column)}


def _realised(x: np.ndarray, events, col: dict) -> dict:
    """Hand-made realised gates: boundary, a scatter cut, a ratio singlet band, cuts on CD3, on CD4 and CD8."""
    top = {d: events.ranges[col[d]] - 1 for d in ("FSC-A", "SSC-A")}
    cells = _sig6(np.quantile(x[:, col["FSC-A"]], 0.1))
    ratio = x[:, col["FSC-H"]] / np.where(x[:, col["FSC-A"]] > 0, x[:, col["FSC-A"]], np.nan)
    median = np.nanmedian(ratio)
    spread = 1.4826 * np.nanmedian(np.abs(ratio - median))
    cut = {m: _sig6(np.quantile(x[:, col[m]], q)) for m, q in (("CD3", 0.5), ("CD4", 0.6), ("CD8", 0.7))}
    gates = [
        {"population": "boundary", "parent": "root", "method": "boundary", "dims": ["FSC-A", "SSC-A"],
         "bounds": {d: {"min_exclusive": 0.0, "max_exclusive": top[d]} for d in top}},
        {"population": "cells", "parent": "boundary", "method": "cuts", "dims": ["FSC-A"],
         "cuts": {"FSC-A": {"keep": "above", "method": "quantile", "cut": cells}}},
        {"population": "singlets", "parent": "cells", "method": "singlets", "dims": ["FSC-A", "FSC-H"],
         "ratio": "FSC-H/FSC-A", "ratio_min": _sig6(median - 4 * spread), "ratio_max": _sig6(median + 4 * spread)},
        {"population": "T cells", "parent": "singlets", "method": "cuts", "dims": ["CD3"],
         "cuts": {"CD3": {"keep": "above", "method": "valley", "cut": cut["CD3"]}}},
        {"population": "CD4+CD8-", "parent": "T cells", "method": "cuts", "dims": ["CD4", "CD8"],
         "cuts": {"CD4": {"keep": "above", "method": "valley", "cut": cut["CD4"]},
                  "CD8": {"keep": "below", "method": "valley", "cut": cut["CD8"]}}},
        {"population": "not_CD4", "parent": "T cells", "method": "boolean", "op": "not", "of": ["CD4+CD8-"]},
        {"population": "rare", "parent": "CD4+CD8-", "method": "cuts", "dims": ["FOXP3"], "status": "missing",
         "count": None, "reason": "parent has too few events"},
    ]
    return {"sample_id": "P01_D0", "gates": [{"status": "ok", **g} for g in gates]}


def _own_condition(record: dict, data: dict, masks: dict) -> np.ndarray:
    """A population's own condition, computed directly from its realised values (without its parent)."""
    x, lin, col = data["x"], data["linear"], data["col"]
    if record["method"] == "boundary":
        return np.logical_and.reduce([(lin[:, col[d]] > b["min_exclusive"]) & (lin[:, col[d]] < b["max_exclusive"])
                                      for d, b in record["bounds"].items()])
    if record["method"] == "cuts":
        return np.logical_and.reduce([x[:, col[d]] > c["cut"] if c["keep"] == "above" else x[:, col[d]] <= c["cut"]
                                      for d, c in record["cuts"].items()])
    if record["method"] == "singlets":
        area, height = x[:, col["FSC-A"]], x[:, col["FSC-H"]]
        ratio = np.divide(height, area, out=np.zeros_like(area), where=area > 0)
        return (ratio >= record["ratio_min"]) & (ratio <= record["ratio_max"])
    return ~masks[record["of"][0]]


def test_export_round_trip_counts_match_our_masks(simulated, tmp_path):
    path = tmp_path / "P01_D0.gating.xml"
    ids = export_gatingml(simulated["realised"], simulated["var"], simulated["events"].spillover, path)
    assert ids == {"boundary": "boundary", "cells": "cells", "singlets": "singlets", "T cells": "T_cells",
                   "CD4+CD8-": "CD4_CD8-", "not_CD4": "not_CD4"}  # the missing population is left out
    strategy = fk.parse_gating_xml(str(path))
    results = strategy.gate_sample(simulated["sample"])
    cd4 = simulated["var"].set_index("marker").loc["CD4"]
    written = strategy.transformations[f"{cd4['transform']}_{cd4['channel']}"]
    assert type(written).__name__.lower() == f"{cd4['transform']}transform"
    assert all(getattr(written, f"param_{k}") == cd4[k] for k in ("t", "m", "a"))
    assert cd4["transform"] == "asinh" or written.param_w == cd4["w"]
    assert np.allclose(next(iter(strategy.comp_matrices.values())).matrix, simulated["events"].spillover["matrix"])

    ours = {"root": np.ones(simulated["x"].shape[0], bool)}
    theirs = {"root": ours["root"]}
    for record in simulated["realised"]["gates"][:-1]:
        name, parent = record["population"], record["parent"]
        ours[name] = ours[parent] & _own_condition(record, simulated, ours)
        theirs[name] = results.get_gate_membership(ids[name])
        assert 100 < ours[name].sum() < ours[parent].sum(), name
        differ = int(np.count_nonzero(theirs[name] != ours[name]))
        assert differ <= 1, (name, record["method"], differ)  # the README: at most one event a gate
        if record["method"] != "singlets":  # exact, given the same parent (and operand) events
            np.testing.assert_array_equal(theirs[name], theirs[parent] & _own_condition(record, simulated, theirs),
                                          err_msg=name)
    # our own import of the exported file gates the sample as flowkit does
    plan_masks = evaluate_plan(load_gatingml(path), simulated["sample"])
    for name, gate_id in ids.items():
        np.testing.assert_array_equal(plan_masks[gate_id], theirs[name], err_msg=name)


def test_export_of_engine_gates_reproduces_engine_counts(small_trial, tmp_path):
    """The default template plus Boolean and cluster populations, gated by the engine, exported and gated by
    flowkit: the same events up to the 6 significant digits the realised gates are stored with."""
    fcs = str(small_trial["samples"].fcs.iloc[0])
    adata, _ = preprocess_fcs(fcs, "P01_D0", PANEL, {"transform": {"fluorescence": "logicle"}})
    template = yaml.safe_load((REPO / "config" / "gating" / "default.yaml").read_text())
    template["populations"] += [
        {"name": "notTB", "parent": "lymphocytes", "method": "boolean", "args": {"op": "not", "of": ["T", "B"]}},
        {"name": "T_or_B", "parent": "lymphocytes", "method": "boolean", "args": {"op": "or", "of": ["T", "B"]}},
        {"name": "CD4+only", "parent": "T", "method": "boolean", "args": {"op": "and", "of": ["CD4"]}},
        {"name": "scatter_cluster", "parent": "singlets", "method": "cluster", "dims": ["FSC-A", "SSC-A"],
         "args": {"target": [0.25, 0.05]}},
    ]
    (tmp_path / "template.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
    result = apply_template(adata, load_template(tmp_path / "template.yaml"))
    path = tmp_path / "P01_D0.gating.xml"
    ids = export_gatingml(realised_gates(result, adata), adata.var, adata.uns["spillover"], path)
    ok = [g for g in result.gates if g["status"] == "ok"]
    assert set(ids) == {g["population"] for g in ok} and ids["CD4+only"] == "CD4_only"
    flowkit_results = fk.parse_gating_xml(str(path)).gate_sample(fk.Sample(fcs))
    for gate in ok:
        mask = flowkit_results.get_gate_membership(ids[gate["population"]])
        differ = int(np.count_nonzero(mask != result.masks[gate["population"]]))
        assert differ <= 1, (gate["population"], gate["method"], differ)  # the README: at most one event a gate


def test_static_gates_export_and_gate_the_same_events_in_flowkit(small_trial, tmp_path):
    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.gatingml_export import export_gatingml
    from cytotrial.gating.template import load_template
    from cytotrial.io.panel import Panel
    from cytotrial.preprocess.events import preprocess_fcs
    from cytotrial.quantify import realised_gates

    repo = Path(__file__).resolve().parents[1]
    fcs = small_trial["samples"].fcs.iloc[0]
    adata, _ = preprocess_fcs(fcs, "s", Panel.from_yaml(repo / "config" / "panel.yaml"),
                              {"transform": {"fluorescence": "logicle"}})
    template_path = tmp_path / "t.yaml"
    template_path.write_text("""
populations:
  - {name: box, parent: root, method: rectangle, dims: [CD4, CD8], args: {min: [0.4, null], max: [null, 0.3]}}
  - {name: square, parent: root, method: polygon, dims: [CD4, CD8], args: {vertices: [[0.4, -1], [2, -1], [2, 0.3], [0.4, 0.3]]}}
  - {name: round, parent: root, method: ellipse, dims: [CD4, CD8], args: {mean: [0.6, 0.1], covariance: [[0.01, 0], [0, 0.01]], distance_squared: 1}}
""")
    result = apply_template(adata, load_template(template_path))
    ids = export_gatingml(realised_gates(result, adata), adata.var, adata.uns["spillover"], tmp_path / "g.xml")
    strategy = fk.parse_gating_xml(str(tmp_path / "g.xml"))
    gated = strategy.gate_sample(fk.Sample(fcs, subsample=0))
    for population in ("box", "square", "round"):
        differ = int(np.count_nonzero(gated.get_gate_membership(ids[population]) != result.masks[population]))
        assert differ <= 1, (population, differ)  # the README: at most one event a gate
