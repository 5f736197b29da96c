"""Static templates (GatingML 2.0 files) applied to preprocessed events, as the workflow's gate_sample does."""

from __future__ import annotations

from pathlib import Path

import flowkit as fk
import numpy as np
import pytest

from cytotrial.gating.engine import apply_template
from cytotrial.gating.gatingml import GatingMLError, evaluate_plan, load_gatingml
from cytotrial.gating.gatingml_export import export_gatingml
from cytotrial.gating.plan_engine import AnnDataEvents, StaticTemplate, apply_plan, load_gating_template
from cytotrial.gating.review import review_events
from cytotrial.gating.template import TemplateError, load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs
from cytotrial.quantify import population_table, realised_gates

REPO = Path(__file__).resolve().parents[1]
PANEL = Panel.from_yaml(REPO / "config" / "panel.yaml")


@pytest.fixture(scope="module")
def gated(small_trial, tmp_path_factory) -> dict:
    """One sample preprocessed and gated with the default template; its realised gates exported as GatingML."""
    out = tmp_path_factory.mktemp("static")
    fcs = str(small_trial["samples"].fcs.iloc[0])
    adata, _ = preprocess_fcs(fcs, "P01_D0", PANEL, {"transform": {"fluorescence": "logicle"}})
    result = apply_template(adata, load_template(REPO / "config" / "gating" / "default.yaml"))
    ids = export_gatingml(realised_gates(result, adata), adata.var, adata.uns["spillover"], out / "gates.xml")
    return {"fcs": fcs, "adata": adata, "result": result, "ids": ids, "xml": out / "gates.xml"}


def test_exported_gates_as_static_template_reproduce_the_adaptive_counts(gated):
    """A sample's realised gates, read back as a static template and applied to the same preprocessed events,
    give the adaptive engine's populations (up to the 6 significant digits the gates are stored with)."""
    template = load_gating_template(gated["xml"])
    assert isinstance(template, StaticTemplate)
    static = apply_plan(gated["adata"], template)
    by_id = {g["population"]: g for g in static.gates}
    for gate in gated["result"].gates:
        if gate["status"] != "ok":
            continue
        mine = by_id[gated["ids"][gate["population"]]]
        assert mine["status"] == "ok"
        assert abs(mine["count"] - gate["count"]) <= max(2, 0.002 * gate["count"]), gate["population"]
    table = population_table(static, "P01_D0")
    assert (table.status == "ok").all() and len(table) == len(gated["ids"])


def test_preprocessed_events_gate_like_the_fcs_file_in_every_compensation(gated, tmp_path):
    """'FCS', 'uncompensated' and a named matrix evaluated on the preprocessed events (raw values recovered by
    re-applying the spillover) equal the same plan evaluated by flowkit on the original file."""
    adata = gated["adata"]
    spill = adata.uns["spillover"]
    detectors = list(spill["detectors"])
    fitc, pe = detectors[0], detectors[1]
    strategy = fk.GatingStrategy()
    strategy.add_comp_matrix("m", fk.Matrix(np.asarray(spill["matrix"]) * 0.9 + np.eye(len(detectors)) * 0.1,
                                            detectors, detectors))
    for gate_id, comp in (("on_file", "FCS"), ("on_raw", "uncompensated"), ("on_matrix", "m")):
        dims = [fk.Dimension(fitc, compensation_ref=comp, range_min=500),
                fk.Dimension(pe, compensation_ref=comp, range_max=2000)]
        strategy.add_gate(fk.gates.RectangleGate(gate_id, dims), ("root",))
    path = tmp_path / "comp.xml"
    with open(path, "wb") as handle:
        fk.export_gatingml(strategy, handle)
    plan = load_gatingml(path)
    ours = evaluate_plan(plan, AnnDataEvents(adata))
    theirs = evaluate_plan(plan, fk.Sample(gated["fcs"], subsample=0))
    for gate_id in ("on_file", "on_raw", "on_matrix"):
        assert ours[gate_id].sum() > 100
        differ = int(np.count_nonzero(ours[gate_id] != theirs[gate_id]))
        assert differ <= 3, (gate_id, differ)  # float32 storage of the compensated values


def test_static_review_events_are_in_the_gates_own_units(gated):
    static = apply_plan(gated["adata"], load_gating_template(gated["xml"]))
    arrays = review_events(static, gated["adata"])
    cd4 = gated["ids"]["CD4"]
    assert f"{cd4}__x" in arrays and arrays[f"{cd4}__x"].size > 0
    record = next(g for g in static.gates if g["population"] == cd4)
    assert record["method"] == "rectangle" and len(record["rectangle"]["min"]) == 2


def test_small_parent_is_missing_not_zero(gated):
    template = load_gating_template(gated["xml"])
    sparse = StaticTemplate(template.plan, min_parent_events=10**9)
    gates = apply_plan(gated["adata"], sparse).gates
    assert all(g["status"] == "missing" and g["count"] is None for g in gates)
    n = gated["adata"].n_obs
    assert gates[0]["reason"] == f"parent 'root' has {n} events (< 1000000000)"
    assert gates[1]["reason"] == "parent 'boundary' is missing"


def test_unknown_template_kind_and_missing_channel_are_named(gated, tmp_path):
    with pytest.raises(TemplateError, match=r"template.csv.*\.yaml.*\.xml.*\.wsp"):
        load_gating_template(tmp_path / "template.csv")
    strategy = fk.GatingStrategy()
    strategy.add_gate(fk.gates.RectangleGate("g", [fk.Dimension("BV999-A", range_min=1)]), ("root",))
    with open(tmp_path / "bad.xml", "wb") as handle:
        fk.export_gatingml(strategy, handle)
    with pytest.raises(GatingMLError, match=r"bad.xml.*'g'.*BV999-A.*P01_D0"):
        apply_plan(gated["adata"], load_gating_template(tmp_path / "bad.xml"))


def test_a_flowjo_workspace_is_a_static_template():
    template = load_gating_template(REPO / "tests" / "data" / "flowjo" / "simple_diamond_example_quad_gate.wsp")
    assert isinstance(template, StaticTemplate) and len(template.names) == 4
    with pytest.raises(GatingMLError, match="group"):
        load_gating_template(REPO / "tests" / "data" / "flowjo" / "simple_diamond_example_quad_gate.wsp",
                             workspace_group="No such group")


def test_root_mask_gives_the_masks_of_the_subset(gated):
    """Gating all events with the QC-kept ones as root equals gating a copy of the QC-kept events, for the
    adaptive engine and for a static template (what gate_sample relies on to avoid the copy)."""
    adata = gated["adata"]
    keep = adata.obs["qc_keep"].to_numpy()
    assert 0 < (~keep).sum()
    subset = adata[keep].copy()
    adaptive = load_template(REPO / "config" / "gating" / "default.yaml")
    static = load_gating_template(gated["xml"])
    for whole, part in ((apply_template(adata, adaptive, root=keep), apply_template(subset, adaptive)),
                        (apply_plan(adata, static, root=keep), apply_plan(subset, static))):
        assert whole.masks.keys() == part.masks.keys()
        for name, mask in whole.masks.items():
            assert not mask[~keep].any() and np.array_equal(mask[keep], part.masks[name]), name
        assert population_table(whole, "s").equals(population_table(part, "s"))
        assert whole.gates == part.gates
