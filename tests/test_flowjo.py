"""FlowJo 10 workspaces: import agrees with flowkit's own workspace analysis (and FlowJo's recorded counts),
export round trip through flowkit, error texts. Data: tests/data/flowjo (FlowKit's test workspaces, see README)."""

from __future__ import annotations

import io
import lzma
import time
import warnings
from pathlib import Path

import flowkit as fk
import numpy as np
import pandas as pd
import pytest
from lxml import etree

from cytotrial.gating.flowjo import export_flowjo_workspace, load_flowjo_template, workspace_sample
from cytotrial.gating.gatingml import GatingMLError, evaluate_plan, export_gatingml, load_gatingml
from cytotrial.preprocess.transforms import transform_from_params

DATA = Path(__file__).parent / "data" / "flowjo"
LINE_FCS = DATA / "data_set_simple_line_100.fcs"
EIGHT_COLOUR_SAMPLE = "101_DEN084Y5_15_E01_008_clean.fcs"
DT = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
TR = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"


@pytest.fixture(scope="module")
def diamond_fcs(tmp_path_factory) -> Path:
    """FlowKit's 200,000-event diamond file, stored xz-compressed."""
    path = tmp_path_factory.mktemp("flowjo") / "test_data_diamond_01.fcs"
    path.write_bytes(lzma.decompress((DATA / "test_data_diamond_01.fcs.xz").read_bytes()))
    return path


def _flowkit_memberships(wsp: Path, sample: fk.Sample) -> dict[tuple, np.ndarray]:
    """flowkit's own analysis of the workspace: (gate name, gate path) -> membership."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = fk.Workspace(str(wsp), fcs_samples=[sample])
    workspace.analyze_samples(sample_id=sample.id, use_mp=False)
    return {(name, tuple(path)): workspace.get_gate_membership(sample.id, name, path)
            for name, path in workspace.get_gate_ids(sample.id)}


def _flowkit_keys(plan) -> dict[str, tuple]:
    """Plan gate id -> flowkit's (gate name, gate path), following the plan's parents."""
    def names(gate_id):
        gate = plan.gates[gate_id]
        return (names(gate.parent) if gate.parent else ("root",)) + (gate_id.split("/")[-1],)
    return {gate_id: (names(gate_id)[-1], names(gate_id)[:-1]) for gate_id in plan.gates}


def _assert_same_as_flowkit(wsp: Path, events: fk.Sample, **kwargs) -> dict[str, np.ndarray]:
    """Our plan's memberships equal flowkit's, event by event, for every gate of the workspace."""
    plan = load_flowjo_template(wsp, **kwargs)
    ours = evaluate_plan(plan, events)
    theirs = _flowkit_memberships(wsp, events)
    keys = _flowkit_keys(plan)
    assert sorted(keys.values()) == sorted(theirs), "the plan has flowkit's gate tree"
    for gate_id, key in keys.items():
        np.testing.assert_array_equal(ours[gate_id], theirs[key], err_msg=gate_id)
    return ours


def _flowjo_counts(wsp: Path) -> dict[str, int]:
    """The population counts FlowJo recorded in the workspace's (first) sample."""
    node = etree.parse(str(wsp)).getroot().find("SampleList/Sample/SampleNode")
    return {p.get("name"): int(p.get("count")) for p in node.iter("Population")}


# ------------------------------------------------------------------------------------ import: real data


@pytest.mark.parametrize("wsp, fcs, flowjo_counts", [
    ("simple_poly_and_rect_v2_poly50.wsp", "line", False),  # FlowJo saved it without its data (counts 0)
    ("single_ellipse_51_events.wsp", "line", True),
    ("simple_diamond_example_quad_gate.wsp", "diamond", True),
    ("test_data_diamond_asinh_rect.wsp", "diamond", True),
    ("test_data_diamond_biex_rect.wsp", "diamond", True),
])
def test_real_workspace_gates_like_flowkit_and_flowjo(wsp, fcs, flowjo_counts, diamond_fcs):
    sample = fk.Sample(str(LINE_FCS if fcs == "line" else diamond_fcs), use_flowjo_labels=True)
    ours = _assert_same_as_flowkit(DATA / wsp, sample)
    assert all(0 < mask.sum() < mask.size for gate, mask in ours.items() if gate != "rect1")
    if flowjo_counts:
        assert {gate: int(mask.sum()) for gate, mask in ours.items()} == _flowjo_counts(DATA / wsp)


def _synthetic_sample(wsp: Path, sample_id: str, n: int = 40_000) -> fk.Sample:
    """Events with the workspace sample's channels, uniform (in gating units) around its gates, un-compensated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = fk.Workspace(str(wsp), load_missing_file_data=True)
    strategy = workspace.get_gating_strategy(sample_id)
    keywords = workspace.get_keywords(sample_id)
    channels = [keywords[f"$P{i}N"] for i in range(1, int(keywords["$PAR"]) + 1)]
    low, high = {}, {}
    for name, path in strategy.get_gate_ids():
        gate = strategy.get_gate(name, path)
        if isinstance(gate, fk.gates.PolygonGate):
            vertices = np.asarray(gate.vertices, dtype=float)
            bounds = zip(vertices.min(axis=0), vertices.max(axis=0))
        elif isinstance(gate, fk.gates.RectangleGate):
            bounds = ((d.min, d.max) for d in gate.dimensions)
        else:
            continue
        for dim, (lo, hi) in zip(gate.dimensions, bounds):
            low[dim.id] = min(low.get(dim.id, np.inf), np.inf if lo is None else lo)
            high[dim.id] = max(high.get(dim.id, -np.inf), -np.inf if hi is None else hi)
    rng = np.random.default_rng(7)
    events = rng.uniform(0, 262144, (n, len(channels)))
    for channel in low:
        xform = strategy.get_transform(channel)
        scale = np.ptp(xform.apply(np.array([[0.0], [262144.0]])))  # the axis in gating units
        lo, hi = low[channel], high[channel]
        lo, hi = (lo if np.isfinite(lo) else hi), (hi if np.isfinite(hi) else lo)
        margin = 0.1 * (hi - lo) if hi > lo else 0.05 * scale  # a lone quadrant divider: both sides of it
        events[:, channels.index(channel)] = xform.inverse(rng.uniform(lo - margin, hi + margin, (n, 1))).ravel()
    matrix = workspace.get_comp_matrix(sample_id)
    detectors = [channels.index(d) for d in matrix.detectors]
    events[:, detectors] = events[:, detectors] @ matrix.matrix
    return fk.Sample(events, sample_id=sample_id, channel_labels=channels)


def test_eight_colour_tree_with_compensation_booleans_and_repeated_names():
    """FlowJo's 8-colour ICS tree (logicle, 'Comp-' channels, and/or/not gates) on synthetic events."""
    wsp = DATA / "8_color_ICS_boolean_gate_testing.wsp"
    ours = _assert_same_as_flowkit(wsp, _synthetic_sample(wsp, EIGHT_COLOUR_SAMPLE), group="DEN",
                                   sample=EIGHT_COLOUR_SAMPLE)
    assert sum(mask.sum() > 50 for mask in ours.values()) == len(ours)
    plan = load_flowjo_template(wsp)
    assert {"CD4+/CD107a+", "CD8+/CD107a+", "TNFa+-/CD107a+", "CD107a+ & IFNg+"} <= set(plan.gates)
    cd3 = plan.gates["CD3+"]
    assert [(d.channel, d.compensation, d.transform) for d in cd3.dims] == [
        ("CD3 APC-H7 FLR-A", "Acquisition-defined", "CD3 APC-H7 FLR-A"), ("SSC-A", "uncompensated", "SSC-A")]
    assert plan.transforms["CD3 APC-H7 FLR-A"].kind == "logicle"
    both = plan.gates["CD107a+ & IFNg+"]
    assert both.geometry["operation"] == "and" and both.parent == "CD4+"
    assert [o["gate"] for o in both.geometry["operands"]] == ["CD4+/CD107a+", "CD4+/IFNg+"]


def test_biex_rectangles_under_a_reused_quadrant_are_exact():
    wsp = DATA / "reused_quad_gate_with_child.wsp"
    ours = _assert_same_as_flowkit(wsp, _synthetic_sample(wsp, EIGHT_COLOUR_SAMPLE))
    assert all(mask.sum() > 500 for mask in ours.values())
    assert all(d.transform is None for d in load_flowjo_template(wsp).gates["good cells"].dims)


def test_biex_polygons_and_flowjo_log_transform(tmp_path):
    """Polygons on biex axes (written by flowkit's own FlowJo writer) are approximated within 0.1 %; biex
    rectangles and FlowJo log (GatingML flog) are exact."""
    rng = np.random.default_rng(2)
    biex = fk.transforms.WSPBiexTransform(negative=0.5, width=-30)
    n = 100_000
    events = np.column_stack([biex.inverse(rng.uniform(0, 4096, (n, 2))), 10 ** rng.uniform(0.1, 5.4, n),
                              rng.uniform(0, 1e5, n)])  # FL3-A above the log transform's offset (1)
    channels = ["FL1-A", "FL2-A", "FL3-A", "FSC-A"]
    sample = fk.Sample(events, sample_id="biex.fcs", channel_labels=channels)
    strategy = fk.GatingStrategy()
    for channel in channels:
        strategy.add_transform(channel, biex if channel < "FL3" else fk.transforms.LinearTransform(1e5, 0))
    dims = {c: fk.Dimension(c, transformation_ref=c) for c in channels}
    polygons = {"biex_poly": ("FL1-A", "FL2-A", [[300, 200], [3900, 1000], [1500, 3800], [100, 3000]]),
                "mixed_poly": ("FL1-A", "FSC-A", [[0, 0.1], [3000, 0.2], [2000, 0.9], [500, 0.95]]),
                "log_poly": ("FL3-A", "FSC-A", [[0.05, 0.1], [0.9, 0.2], [0.6, 0.9], [0.01, 0.95]])}
    for name, (x, y, vertices) in polygons.items():
        strategy.add_gate(fk.gates.PolygonGate(name, [dims[x], dims[y]], vertices), ("root",))
    strategy.add_gate(fk.gates.RectangleGate("biex_rect", [fk.Dimension("FL2-A", None, "FL2-A", 0, 1500)]),
                      ("root", "biex_poly"))
    buffer = io.BytesIO()
    fk.Session(gating_strategy=strategy, fcs_samples=[sample]).export_wsp(buffer, "All Samples")
    root = etree.fromstring(buffer.getvalue())  # FL3-A gets a FlowJo log transform (flowkit cannot write one)
    for element in [e for e in root.iter("{*}linear") if e.find("{*}parameter").get(f"{{{DT}}}name") == "FL3-A"]:
        element.tag = f"{{{TR}}}log"
        element.attrib.clear()
        element.attrib.update({f"{{{TR}}}offset": "1", f"{{{TR}}}decades": "5.5"})
    wsp = tmp_path / "biex.wsp"
    wsp.write_bytes(etree.tostring(root))

    plan = load_flowjo_template(wsp)
    assert plan.transforms["FL3-A"].kind == "log" and "FL1-A" not in plan.transforms
    ours = evaluate_plan(plan, sample)
    theirs = {name: mask for (name, _), mask in _flowkit_memberships(wsp, sample).items()}
    np.testing.assert_array_equal(ours["log_poly"], theirs["log_poly"])
    np.testing.assert_array_equal(ours["biex_rect"] & theirs["biex_poly"], theirs["biex_rect"] & ours["biex_poly"])
    for name in ("biex_poly", "mixed_poly", "biex_rect"):
        differ = int((ours[name] != theirs[name]).sum())
        assert ours[name].sum() > 10_000 and differ <= 0.001 * ours[name].sum(), (name, differ)


# ------------------------------------------------------------------------------------ export round trip


def _round_trip_input(tmp_path: Path) -> tuple[Path, fk.Sample]:
    """A GatingML file as our exporter writes it (+ a quadrant gate) and a compensated 6-channel sample."""
    rng = np.random.default_rng(3)
    channels = ["FSC-A", "FSC-H", "SSC-A", "FL1-A", "FL2-A", "FL3-A"]
    params = [{"transform": "linear", "t": 262144.0, "a": 0.0}] * 3 + [
        {"transform": "logicle", "t": 262144.0, "w": 0.5, "m": 4.5, "a": 0.0},
        {"transform": "asinh", "t": 262144.0, "m": 4.5, "a": 0.5},
        {"transform": "logicle", "t": 262144.0, "w": 0.8, "m": 4.5, "a": 0.0}]
    var = pd.DataFrame([{"channel": c, "marker": m, "range": 262144.0, **p} for c, m, p in
                        zip(channels, ["", "", "", "CD3", "CD4", "CD8"], params)]).set_index("channel", drop=False)
    gating = rng.uniform(-0.05, 1.05, (40_000, 6))
    gating[:, 1] = gating[:, 0] * rng.normal(0.8, 0.06, 40_000)
    events = np.column_stack([transform_from_params(p).inverse(gating[:, [j]]).ravel() for j, p in enumerate(params)])
    spill = np.array([[1.0, 0.1, 0.02], [0.05, 1.0, 0.1], [0.0, 0.2, 1.0]])
    events[:, 3:] = events[:, 3:] @ spill
    gates = [
        {"population": "boundary", "parent": "root", "method": "boundary", "dims": ["FSC-A", "SSC-A"],
         "bounds": {d: {"min_exclusive": 0.0, "max_exclusive": 262143.0} for d in ("FSC-A", "SSC-A")}},
        {"population": "cells", "parent": "boundary", "method": "cuts", "dims": ["FSC-A"],
         "cuts": {"FSC-A": {"keep": "above", "cut": 0.1}}},
        {"population": "singlets", "parent": "cells", "method": "singlets", "dims": ["FSC-A", "FSC-H"],
         "ratio_min": 0.7, "ratio_max": 0.9},
        {"population": "T", "parent": "singlets", "method": "cuts", "dims": ["CD3"],
         "cuts": {"CD3": {"keep": "above", "cut": 0.4}}},
        {"population": "CD4 box", "parent": "T", "method": "rectangle", "dims": ["CD4", "CD8"],
         "rectangle": {"min": [0.5, 0.1], "max": [0.95, 0.5]}},
        {"population": "poly", "parent": "T", "method": "polygon", "dims": ["CD4", "CD8"],
         "polygon": {"vertices": [[0.1, 0.5], [0.6, 0.55], [0.4, 0.95], [0.15, 0.8]]}},
        {"population": "blob", "parent": "T", "method": "cluster", "dims": ["CD4", "CD8"],
         "ellipse": {"mean": [0.5, 0.5], "covariance": [[0.02, 0.01], [0.01, 0.03]], "distance_squared": 4.0}},
        {"population": "blob low", "parent": "blob", "method": "cuts", "dims": ["CD8"],
         "cuts": {"CD8": {"keep": "below", "cut": 0.5}}},
        {"population": "either", "parent": "T", "method": "boolean", "op": "or", "of": ["CD4 box", "poly"]},
        {"population": "either CD8", "parent": "either", "method": "cuts", "dims": ["CD8"],
         "cuts": {"CD8": {"keep": "above", "cut": 0.3}}},
    ]
    ours_path = tmp_path / "ours.xml"
    export_gatingml({"sample_id": "rt", "gates": gates}, var, {"detectors": channels[3:], "matrix": spill.tolist()},
                    ours_path)
    strategy = fk.parse_gating_xml(str(ours_path))
    t_path = ("root", "boundary", "cells", "singlets", "T")
    dividers = [fk.QuadrantDivider("cd4_div", "FL2-A", "spillover", [0.45], "asinh_FL2-A"),
                fk.QuadrantDivider("cd8_div", "FL3-A", "spillover", [0.55], "logicle_FL3-A")]
    quadrants = [fk.gates.Quadrant(f"Q{'p' if a else 'n'}{'p' if b else 'n'}", ["cd4_div", "cd8_div"],
                                   [[0.45, None] if a else [None, 0.45], [0.55, None] if b else [None, 0.55]])
                 for a in (True, False) for b in (True, False)]
    strategy.add_gate(fk.gates.QuadrantGate("quad", dividers, quadrants), t_path)
    strategy.add_gate(fk.gates.RectangleGate("quad_child", [fk.Dimension("FL1-A", "spillover", "logicle_FL1-A", 0.7)]),
                      t_path + ("quad", "Qpp"))
    path = tmp_path / "P01.gating.xml"
    with open(path, "wb") as handle:
        fk.export_gatingml(strategy, handle)
    return path, fk.Sample(events, sample_id="P01.fcs", channel_labels=channels)


def test_export_round_trip_through_flowkit(tmp_path):
    gatingml, sample = _round_trip_input(tmp_path)
    ours = evaluate_plan(load_gatingml(gatingml), sample)
    wsp = tmp_path / "P01.wsp"
    wsp.write_text("an older workspace")
    with pytest.warns(UserWarning, match=r"\['either', 'either_CD8'\] cannot be written"):
        skipped = export_flowjo_workspace(gatingml, sample, wsp)
    assert skipped == ["either", "either_CD8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P01.gating.xml", "P01.wsp", "ours.xml"]  # no temp
    theirs = _flowkit_memberships(wsp, sample)
    expected_tree = {"boundary", "cells", "singlets", "T", "CD4_box", "poly", "blob", "blob_low",
                     "Qpp", "Qpn", "Qnp", "Qnn", "quad_child"}
    assert {name for name, _ in theirs} == expected_tree
    for (name, path), mask in theirs.items():
        assert 100 < ours[name].sum() < ours[name].size, name
        if name.startswith("blob"):  # the ellipse is a 72-gon on its boundary
            assert abs(int(mask.sum()) - int(ours[name].sum())) <= 0.005 * ours[name].sum(), name
        else:
            np.testing.assert_array_equal(mask, ours[name], err_msg=name)
    assert theirs[("quad_child", ("root", "boundary", "cells", "singlets", "T", "Qpp"))].sum() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = fk.Workspace(str(wsp), fcs_samples=[sample])
    xforms = workspace.get_transforms(sample.id)
    assert isinstance(xforms["FL2-A"], fk.transforms.AsinhTransform) and xforms["FL2-A"].param_a == 0.5
    assert isinstance(xforms["FL1-A"], fk.transforms.LogicleTransform)
    np.testing.assert_allclose(workspace.get_comp_matrix(sample.id).matrix,
                               fk.parse_gating_xml(str(gatingml)).comp_matrices["spillover"].matrix)
    # and our own import of the written workspace gates as the GatingML did
    again = evaluate_plan(load_flowjo_template(wsp), sample)
    for name in expected_tree - {"blob", "blob_low"}:
        np.testing.assert_array_equal(again[name], ours[name], err_msg=name)
    # written again a second later: the same bytes (no time of writing in the workspace)
    time.sleep(1.1)
    with pytest.warns(UserWarning, match="cannot be written"):
        export_flowjo_workspace(gatingml, sample, tmp_path / "again.wsp")
    assert (tmp_path / "again.wsp").read_bytes() == wsp.read_bytes()


# ------------------------------------------------------------------------------------------- errors


def test_error_texts_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(GatingMLError, match=r"missing\.wsp: FlowJo workspace not found"):
        load_flowjo_template(tmp_path / "missing.wsp")
    gatingml = tmp_path / "gates.xml"
    strategy = fk.GatingStrategy()
    strategy.add_gate(fk.gates.RectangleGate("r", [fk.Dimension("FSC-A", range_min=1.0)]), ("root",))
    with open(gatingml, "wb") as handle:
        fk.export_gatingml(strategy, handle)
    with pytest.raises(GatingMLError, match=r"gates\.xml: not a FlowJo workspace \(root element 'Gating-ML'.*"
                                            r"load_gatingml"):
        load_flowjo_template(gatingml)
    with pytest.raises(GatingMLError, match=r"data_set_simple_line_100\.fcs: not a FlowJo workspace \(not readable"):
        load_flowjo_template(LINE_FCS)
    broken = tmp_path / "broken.wsp"
    broken.write_text("<Workspace><Groups/></Workspace>")
    with pytest.raises(GatingMLError, match=r"broken\.wsp: FlowJo workspace cannot be read by flowkit"):
        load_flowjo_template(broken)
    wsp = DATA / "8_color_ICS_boolean_gate_testing.wsp"
    with pytest.raises(GatingMLError, match=r"no sample group 'Stim'; groups: \['All Samples', 'DEN'\]"):
        load_flowjo_template(wsp, group="Stim")
    with pytest.raises(GatingMLError, match=r"group 'DEN' has no sample 'x\.fcs'; its samples: \['101_DEN"):
        load_flowjo_template(wsp, group="DEN", sample="x.fcs")
    sample = fk.Sample(str(LINE_FCS))
    with pytest.raises(GatingMLError, match=r"nothing\.xml: not a readable GatingML 2\.0 file"):
        export_flowjo_workspace(tmp_path / "nothing.xml", sample, tmp_path / "out.wsp")
    assert not (tmp_path / "out.wsp").exists()


def test_unexportable_compensation_is_refused(tmp_path):
    strategy = fk.GatingStrategy()
    strategy.add_comp_matrix("m", fk.Matrix(np.eye(2), ["channel_A", "channel_B"], ["A", "B"]))
    strategy.add_gate(fk.gates.RectangleGate("raw", [fk.Dimension("channel_A", "uncompensated", None, 1.0)]),
                      ("root",))
    path = tmp_path / "raw.xml"
    with open(path, "wb") as handle:
        fk.export_gatingml(strategy, handle)
    with pytest.raises(GatingMLError, match=r"'raw' uses 'channel_A' with compensation 'uncompensated'"):
        export_flowjo_workspace(path, fk.Sample(str(LINE_FCS)), tmp_path / "raw.wsp")


@pytest.mark.parametrize("n_events", [1, 9, 10, 99, 1_000, 12_345, 184_683])
def test_a_workspace_sample_has_the_keywords_of_the_events_sample(tmp_path, n_events):
    """The workflow writes a sample's workspace from workspace_sample (its events are not converted): the
    workspace is byte for byte the one written from flowkit's Sample of the real events, whatever the number of
    events (the keywords' offsets grow a digit at 10, 100, ... events)."""
    gatingml, _ = _round_trip_input(tmp_path)
    channels = ["FSC-A", "FSC-H", "SSC-A", "FL1-A", "FL2-A", "FL3-A"]
    events = np.random.default_rng(n_events).normal(500.0, 200.0, size=(n_events, len(channels)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_flowjo_workspace(gatingml, fk.Sample(events, sample_id="P01.fcs", channel_labels=channels),
                                tmp_path / "theirs.wsp")
        export_flowjo_workspace(gatingml, workspace_sample("P01.fcs", channels, n_events), tmp_path / "ours.wsp")
    assert (tmp_path / "ours.wsp").read_bytes() == (tmp_path / "theirs.wsp").read_bytes()
    assert f'name="$TOT" value="{n_events}"' in (tmp_path / "ours.wsp").read_text()
