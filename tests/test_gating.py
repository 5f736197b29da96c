"""Cut-point methods, templates and the gating engine, against hand-made data and simulator truth."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from cytotrial.gating.cuts import find_cut, tail_cut, valley_cut
from cytotrial.gating.engine import apply_template
from cytotrial.gating.template import TemplateError, load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs
from cytotrial.simulate.cells import LABEL_CODE
from cytotrial.simulate.truth import population_mask

from .conftest import REPO



def test_valley_lies_between_two_peaks():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.2, 0.03, 7000), rng.normal(0.6, 0.05, 3000)])
    assert 0.3 < valley_cut(values) < 0.45


def test_valley_range_selects_which_peaks_count():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.1, 0.02, 5000), rng.normal(0.4, 0.02, 5000), rng.normal(0.8, 0.02, 1000)])
    assert 0.2 < valley_cut(values) < 0.3
    assert 0.5 < valley_cut(values, range=(0.3, 1.0)) < 0.7


def test_single_peak_falls_back_to_a_tail_cut():
    rng = np.random.default_rng(0)
    values = rng.normal(0.3, 0.02, 10000)
    assert valley_cut(values, single_peak="upper_tail", sd_multiple=3) == pytest.approx(0.36, abs=0.01)
    assert valley_cut(values, single_peak="lower_tail", sd_multiple=3) == pytest.approx(0.24, abs=0.01)


def test_tail_cut_ignores_the_tail_when_measuring_spread():
    rng = np.random.default_rng(0)
    main = rng.normal(0.3, 0.02, 9500)
    tail = rng.uniform(0.4, 0.8, 500)
    cut = tail_cut(np.concatenate([main, tail]), side="upper", sd_multiple=3)
    assert cut == pytest.approx(0.36, abs=0.015)  # the SD of all values (0.06) would put it near 0.48


def test_find_cut_fixed_quantile_and_unknown():
    values = np.arange(101, dtype=float)
    assert find_cut(values, "fixed", {"value": 7}) == (7.0, "")
    assert find_cut(values, "quantile", {"q": 0.25}).value == 25
    with pytest.raises(ValueError, match="unknown cut method 'kmeans'"):
        find_cut(values, "kmeans", {})


def _template(tmp_path, body: str):
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_template_errors_name_the_population(tmp_path):
    with pytest.raises(TemplateError, match="'T' .*parent 'lymphs', which is not defined above"):
        load_template(_template(tmp_path, """
            populations:
              - {name: T, parent: lymphs, method: cuts, cuts: {CD3: {keep: above}}}
        """))
    with pytest.raises(TemplateError, match="invalid gating template at populations/0/method"):
        load_template(_template(tmp_path, """
            populations:
              - {name: T, parent: root, method: flowsom}
        """))
    with pytest.raises(TemplateError, match="percent_of 'B', which is not one of its ancestors"):
        load_template(_template(tmp_path, """
            populations:
              - {name: B, parent: root, method: cuts, cuts: {CD19: {keep: above}}}
              - {name: T, parent: root, method: cuts, cuts: {CD3: {keep: above}}, percent_of: B}
        """))


def test_default_template_loads_and_reports_treg_of_cd4():
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    treg = next(p for p in template.populations if p.name == "Treg")
    assert treg.parent == "CD25hi_CD127lo" and treg.percent_of == "CD4"
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    assert template.dims() <= set(panel.markers) | set(panel.scatter)


@pytest.fixture(scope="module")
def gated(small_trial):
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    out = {}
    for sample_id in small_trial["samples"].sample_id:
        adata, _ = preprocess_fcs(small_trial["dir"] / "fcs" / f"{sample_id}.fcs", sample_id, panel,
                                  {"transform": {"fluorescence": "logicle"}})
        labels = np.load(small_trial["dir"] / "truth" / f"{sample_id}.labels.npy")
        out[sample_id] = (adata, apply_template(adata, template), labels)
    return out


@pytest.mark.parametrize("population, denominator, tolerance_pp", [
    ("lymphocytes", "leukocytes", 2.0), ("T", "lymphocytes", 2.0), ("CD4", "T", 1.0), ("CD8", "T", 1.0),
    ("Treg", "CD4", 1.0), ("B", "lymphocytes", 1.0), ("NK", "lymphocytes", 2.0), ("monocytes", "leukocytes", 1.0),
])
def test_default_template_recovers_true_frequencies(gated, population, denominator, tolerance_pp):
    for sample_id, (_, result, labels) in gated.items():
        gated_pct = 100 * result.masks[population].sum() / result.masks[denominator].sum()
        true_pct = 100 * population_mask(labels, population).sum() / population_mask(labels, denominator).sum()
        assert abs(gated_pct - true_pct) < tolerance_pp, (sample_id, gated_pct, true_pct)


def test_every_population_is_inside_its_parent(gated):
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    for _, result, _ in gated.values():
        for population in template.populations:
            assert not (result.masks[population.name] & ~result.masks[population.parent]).any()


def test_small_parent_is_missing_not_zero(gated, tmp_path):
    adata, _, _ = next(iter(gated.values()))
    template = load_template(_template(tmp_path, """
        min_parent_events: 50
        populations:
          - {name: bright, parent: root, method: cuts, cuts: {CD3: {keep: above, method: quantile, args: {q: 0.9999}}}}
          - {name: brighter, parent: bright, method: cuts, cuts: {CD3: {keep: above, method: valley}}}
          - {name: brightest, parent: brighter, method: cuts, cuts: {CD3: {keep: above, method: valley}}}
    """))
    result = apply_template(adata, template)
    gates = {g["population"]: g for g in result.gates}
    assert gates["bright"]["status"] == "ok"
    assert gates["brighter"]["status"] == "missing" and gates["brighter"]["count"] is None
    assert "has 3 events (< 50)" in gates["brighter"]["reason"] or "events (< 50)" in gates["brighter"]["reason"]
    assert gates["brightest"]["reason"] == "parent 'brighter' is missing"


def test_unknown_marker_in_template_is_a_clear_error(gated, tmp_path):
    adata, _, _ = next(iter(gated.values()))
    template = load_template(_template(tmp_path, """
        populations:
          - {name: x, parent: root, method: cuts, cuts: {CD123: {keep: above}}}
    """))
    with pytest.raises(TemplateError, match="uses 'CD123', which is neither a panel marker nor a channel"):
        apply_template(adata, template)


def test_singlet_band_excludes_true_doublets(gated):
    for sample_id, (_, result, labels) in gated.items():
        singlets, cells = result.masks["singlets"], result.masks["cells"]
        doublets = labels == LABEL_CODE["doublet"]
        assert (singlets & doublets).sum() < 0.25 * (cells & doublets).sum(), sample_id
        assert (cells & ~doublets & ~singlets).sum() < 0.01 * (cells & ~doublets).sum(), sample_id
        gate = next(g for g in result.gates if g["population"] == "singlets")
        assert 0.6 < gate["slope"] < 1.0 and gate["half_width"] > 0


def test_boolean_and_cluster_gates(gated, tmp_path):
    adata, _, labels = next(iter(gated.values()))
    template = load_template(_template(tmp_path, """
        populations:
          - {name: cd3, parent: root, method: cuts, cuts: {CD3: {keep: above, method: valley}}}
          - {name: cd19, parent: root, method: cuts, cuts: {CD19: {keep: above, method: valley}}}
          - {name: either, parent: root, method: boolean, args: {op: or, of: [cd3, cd19]}}
          - {name: neither, parent: root, method: boolean, args: {op: not, of: [cd3, cd19]}}
          - {name: both, parent: root, method: boolean, args: {op: and, of: [cd3, cd19]}}
          - name: granulocytes
            parent: root
            method: cluster
            dims: [FSC-A, SSC-A]
            args: {components: 4, target: [0.4, 0.5], quantile: 0.99}
    """))
    result = apply_template(adata, template)
    m = result.masks
    np.testing.assert_array_equal(m["either"], m["cd3"] | m["cd19"])
    np.testing.assert_array_equal(m["neither"], ~(m["cd3"] | m["cd19"]))
    np.testing.assert_array_equal(m["both"], m["cd3"] & m["cd19"])
    granulocytes = np.isin(labels, [LABEL_CODE["Neutrophil"], LABEL_CODE["Eosinophil"]])
    found = m["granulocytes"]
    assert (found & granulocytes).sum() / found.sum() > 0.9 and (found & granulocytes).sum() / granulocytes.sum() > 0.8


def test_overrides_pin_a_cut_for_one_sample(gated, tmp_path):
    from cytotrial.gating.overrides import load_overrides

    template = load_template(REPO / "config" / "gating" / "default.yaml")
    adata, result, _ = next(iter(gated.values()))
    path = tmp_path / "overrides.yaml"
    path.write_text("overrides:\n  - {sample: s1, population: Treg, cuts: {FOXP3: 0.9}, reason: test}\n")
    overrides = load_overrides(path, template, {"s1", "s2"})
    pinned = apply_template(adata, template, overrides["s1"])
    treg = next(g for g in pinned.gates if g["population"] == "Treg")
    assert treg["cuts"]["FOXP3"] == {"keep": "above", "method": "pinned", "cut": 0.9} and treg["override"] == "test"
    assert pinned.masks["Treg"].sum() < result.masks["Treg"].sum()
    np.testing.assert_array_equal(pinned.masks["CD4"], result.masks["CD4"])  # other gates unchanged
    for bad, message in [("{sample: s9, population: Treg, cuts: {FOXP3: 1}, reason: x}", "sample 's9'"),
                         ("{sample: s1, population: Treg, cuts: {CD3: 1}, reason: x}", "has no cut on \\['CD3'\\]"),
                         ("{sample: s1, population: boundary, cuts: {FSC-A: 1}, reason: x}", "cannot be pinned"),
                         ("{sample: s1, population: Treg, cuts: {FOXP3: 1}}", "say why")]:
        path.write_text(f"overrides:\n  - {bad}\n")
        with pytest.raises(TemplateError, match=message):
            load_overrides(path, template, {"s1"})


def test_static_rectangle_polygon_and_ellipse(gated, tmp_path):
    adata, _, _ = next(iter(gated.values()))
    template = load_template(_template(tmp_path, """
        populations:
          - {name: box, parent: root, method: rectangle, dims: [CD4, CD8], args: {min: [0.4, null], max: [null, 0.3]}}
          - {name: square, parent: root, method: polygon, dims: [CD4, CD8],
             args: {vertices: [[0.4, -1], [2, -1], [2, 0.3], [0.4, 0.3]]}}
          - {name: round, parent: root, method: ellipse, dims: [CD4, CD8],
             args: {mean: [0.6, 0.1], covariance: [[0.01, 0], [0, 0.01]], distance_squared: 1}}
    """))
    result = apply_template(adata, template)
    x, y = adata.X[:, list(adata.var.marker).index("CD4")], adata.X[:, list(adata.var.marker).index("CD8")]
    np.testing.assert_array_equal(result.masks["box"], (x >= 0.4) & (y < 0.3))
    assert (result.masks["square"] != result.masks["box"]).sum() <= 2  # only boundary events may differ
    np.testing.assert_array_equal(result.masks["round"], (x - 0.6) ** 2 + (y - 0.1) ** 2 <= 0.01)


@pytest.mark.parametrize("n", [0, 1, 5, 999, 1000, 1001, 4321])
def test_compact_rows_equals_boolean_indexing(n):
    from cytotrial.steps.gate_sample import compact_rows

    rng = np.random.default_rng(n)
    values = rng.normal(size=(n, 3)).astype(np.float32)
    for keep in (rng.random(n) < 0.7, np.ones(n, bool), np.zeros(n, bool)):
        assert np.array_equal(compact_rows(values.copy(), keep, block_rows=1000), values[keep])


def test_qc_kept_events_equals_a_subset_copy(small_trial):
    from cytotrial.steps.gate_sample import qc_kept_events

    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    adata, _ = preprocess_fcs(str(small_trial["samples"].fcs.iloc[0]), "s", panel,
                              {"transform": {"fluorescence": "logicle"}})
    assert 0 < (~adata.obs["qc_keep"]).sum()
    expected = adata[adata.obs["qc_keep"].to_numpy()].copy()
    kept = qc_kept_events(adata)
    assert np.array_equal(kept.X, expected.X)
    assert np.array_equal(kept.layers["compensated"], expected.layers["compensated"])
    assert kept.obs.equals(expected.obs) and kept.var.equals(expected.var)
    assert kept.uns.keys() == expected.uns.keys()
