"""Gates fitted on the pooled events of an acquisition batch (template option ``pool: batch``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from cytotrial.gating.cuts import find_cut
from cytotrial.gating.engine import apply_template
from cytotrial.gating.methods import dimension_index
from cytotrial.gating.pooling import fit_pooled_gates
from cytotrial.gating.template import TemplateError, load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def batch(small_trial) -> dict:
    """Three preprocessed samples (QC-kept events), as if acquired in one batch."""
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    samples = {}
    for row in small_trial["samples"].head(3).itertuples():
        adata, _ = preprocess_fcs(row.fcs, row.sample_id, panel, {"transform": {"fluorescence": "logicle"}})
        samples[row.sample_id] = adata[adata.obs["qc_keep"].to_numpy()].copy()
    return dict(sorted(samples.items()))


def _template(tmp_path, pooled: dict[str, str]):
    raw = yaml.safe_load((REPO / "config" / "gating" / "default.yaml").read_text())
    for entry in raw["populations"]:
        if entry["name"] in pooled:
            entry["pool"] = pooled[entry["name"]]
    path = tmp_path / "pooled.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_template(path)


def test_pooled_cut_is_the_cut_of_the_batch_events_together(batch, tmp_path):
    template = _template(tmp_path, {"Treg": "batch"})
    fitted = fit_pooled_gates(batch, template, "day1")
    assert set(fitted) == {"Treg"} and fitted["Treg"]["samples"] == list(batch)
    # by hand: each sample's CD25hi_CD127lo events, FOXP3, concatenated (all fewer than 50,000: no thinning)
    values = []
    for adata in batch.values():
        parent = apply_template(adata, template).masks["CD25hi_CD127lo"]
        values.append(adata.X[parent, dimension_index(adata, "FOXP3")])
    gate = next(p for p in template.populations if p.name == "Treg")
    expected = find_cut(np.concatenate(values), "valley", dict(gate.cuts[0].args)).value
    assert fitted["Treg"]["FOXP3"] == pytest.approx(expected)
    assert fitted["Treg"]["events"] == sum(v.size for v in values)
    for adata in batch.values():
        result = apply_template(adata, template, pooled=fitted)
        record = next(g for g in result.gates if g["population"] == "Treg")
        assert record["cuts"]["FOXP3"] == {"keep": "above", "method": "pooled", "cut": pytest.approx(expected)}
        assert record["pooled"] == "fitted on the pooled events of batch day1"
        unpooled = next(g for g in apply_template(adata, template).gates if g["population"] == "Treg")
        assert abs(record["count"] - unpooled["count"]) <= 0.1 * unpooled["count"]  # same biology, one cut


def test_a_small_sample_borrows_the_batch_gate(batch, tmp_path):
    """A sample with few B cells is gated with the batch's Breg polygon, fitted on every sample's B cells."""
    from matplotlib.path import Path as MplPath

    template = _template(tmp_path, {"Breg": "batch"})
    small = dict(batch)
    first = next(iter(small))
    b_cells = np.flatnonzero(apply_template(small[first], template).masks["B"])
    keep = np.ones(small[first].n_obs, dtype=bool)
    keep[b_cells[25:]] = False  # 25 B cells: enough to report, too few to fit a mixture on
    small[first] = small[first][keep].copy()
    fitted = fit_pooled_gates(small, template, "day1")
    b_counts = [int(apply_template(adata, template).masks["B"].sum()) for adata in small.values()]
    assert fitted["Breg"]["events"] == sum(b_counts) and b_counts[0] < 100
    result = apply_template(small[first], template, pooled=fitted)
    record = next(g for g in result.gates if g["population"] == "Breg")
    assert record["status"] == "ok" and record["pooled"] == "fitted on the pooled events of batch day1"
    assert record["polygon"]["vertices"] == fitted["Breg"]["vertices"]
    b = result.masks["B"]
    values = small[first].X[b][:, [dimension_index(small[first], d) for d in ("CD38", "CD24")]]
    inside = MplPath(np.array(fitted["Breg"]["vertices"])).contains_points(values)  # matplotlib's own test
    assert (result.masks["Breg"][b] == inside).all() and 0 < inside.sum() < b_counts[0]


def test_reviewer_override_wins_over_the_pooled_gate(batch, tmp_path):
    template = _template(tmp_path, {"Treg": "batch"})
    fitted = fit_pooled_gates(batch, template, "day1")
    adata = next(iter(batch.values()))
    result = apply_template(adata, template, {"Treg": {"FOXP3": 0.9, "reason": "review"}}, pooled=fitted)
    record = next(g for g in result.gates if g["population"] == "Treg")
    assert record["cuts"]["FOXP3"]["cut"] == 0.9 and record["cuts"]["FOXP3"]["method"] == "pinned"
    assert "pooled" not in record and record["override"] == "review"


def test_pooled_gates_below_pooled_gates_see_the_batch_parents(batch, tmp_path):
    template = _template(tmp_path, {"CD4": "batch", "Treg": "batch"})
    fitted = fit_pooled_gates(batch, template, "day1")
    assert list(fitted) == ["CD4", "Treg"] and set(fitted["CD4"]) >= {"CD4", "CD8"}


def test_only_data_driven_gates_can_be_pooled(tmp_path):
    with pytest.raises(TemplateError, match=r"'boundary'.*pool: batch.*boundary gate.*\['cluster', 'cuts', 'mixture', "
                                            r"'singlets'\]"):
        _template(tmp_path, {"boundary": "batch"})
    with pytest.raises(TemplateError, match=r"populations\[1\]/pool|pool"):
        _template(tmp_path, {"cells": "day"})
