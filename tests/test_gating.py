"""Cut-point methods, templates and the gating engine, against hand-made data and simulator truth."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from cytotrial.gating.cuts import find_cut, tail_cut, valley_cut
from cytotrial.gating.engine import apply_template
from cytotrial.gating.template import TemplateError, load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess import preprocess_fcs
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
    assert find_cut(values, "fixed", {"value": 7}) == 7
    assert find_cut(values, "quantile", {"q": 0.25}) == 25
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
