"""Mixture gates (openCyto flowClust-like), data-relative valley options and gate QC flags, on data whose answer is
known: sampled from given Gaussians, checked against those parameters, scikit-learn and matplotlib."""

from __future__ import annotations

import textwrap

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.path import Path as MplPath
from sklearn.mixture import GaussianMixture

from cytotrial.gating.cuts import find_cut, find_valley
from cytotrial.gating.engine import apply_template
from cytotrial.gating.mixture import GRID, Partition, bin_events, fit_mixture, in_polygon, select_mixture
from cytotrial.gating.template import TemplateError, load_template
from cytotrial.quantify import population_table

MEANS = np.array([[0.2, 0.3], [0.6, 0.35], [0.45, 0.75]])
SDS = np.array([[0.05, 0.04], [0.06, 0.05], [0.04, 0.06]])
WEIGHTS = np.array([0.6, 0.3, 0.1])


def _three_clusters(n: int = 60_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=WEIGHTS)
    return MEANS[labels] + SDS[labels] * rng.standard_normal((n, 2)), labels


def test_binned_em_recovers_the_generating_mixture_and_agrees_with_scikit_learn():
    values, _ = _three_clusters()
    fit = fit_mixture(bin_events(values), 3)
    order = np.argsort(fit.means[:, 0])
    truth = np.argsort(MEANS[:, 0])
    np.testing.assert_allclose(fit.means[order], MEANS[truth], atol=0.006)
    np.testing.assert_allclose(fit.weights[order], WEIGHTS[truth], atol=0.01)
    np.testing.assert_allclose(np.sqrt(np.diagonal(fit.covariances[order], axis1=1, axis2=2)), SDS[truth], rtol=0.08)
    reference = GaussianMixture(3, random_state=0).fit(values)
    np.testing.assert_allclose(fit.means[order], reference.means_[np.argsort(reference.means_[:, 0])], atol=0.006)


def test_bic_picks_the_number_of_clusters():
    values, _ = _three_clusters()
    assert select_mixture(bin_events(values), (2, 6))[0].k == 3


@pytest.mark.parametrize("vertices", [
    [[0, 0], [4, 0], [4, 4], [0, 4]],
    [[0, 0], [4, 4], [4, 0], [0, 4]],  # self-crossing bow tie
    [[1, 1], [9, 1], [9, 8], [3, 8], [3, 4], [6, 4], [6, 6], [1, 6]],  # crossing edges leave a hole
])
def test_compiled_point_in_polygon_follows_gatingml_on_vertices_and_edges(vertices):
    from flowutils import gating as flowutils_gating

    grid = np.mgrid[-1:10:0.5, -1:10:0.5].reshape(2, -1).T  # many points on edges and vertices
    points = np.vstack([grid, np.asarray(vertices, float), np.random.default_rng(0).uniform(-1, 10, (2000, 2))])
    expected = flowutils_gating.points_in_polygon(np.asarray(vertices, float), points)
    np.testing.assert_array_equal(in_polygon(points, np.asarray(vertices, float)), expected)


def test_compiled_point_in_polygon_equals_matplotlib():
    rng = np.random.default_rng(3)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 17))
    vertices = np.column_stack([np.cos(angles), np.sin(angles)]) * rng.uniform(0.3, 1.0, (17, 1))
    points = rng.uniform(-1.1, 1.1, (20_000, 2))
    np.testing.assert_array_equal(in_polygon(points, vertices), MplPath(vertices).contains_points(points))


def test_two_equal_components_split_at_their_bisector():
    rng = np.random.default_rng(1)
    values = np.vstack([rng.normal([0.3, 0.5], 0.06, (20_000, 2)), rng.normal([0.7, 0.5], 0.06, (20_000, 2))])
    partition = Partition.fit(values, ["x", "y"], [("left", {"x": "low"}), ("right", {"x": "high"})], (2, 2))
    vertices, record = partition.region("left")
    assert record["mixture"]["components"] == 2 and "flag" not in record
    grid = np.column_stack([g.ravel() for g in np.meshgrid(np.linspace(0.1, 0.9, 81), np.linspace(0.3, 0.7, 41))])
    clear = np.abs(grid[:, 0] - 0.5) > 0.02  # by symmetry the boundary is x = 0.5; allow the tracing grid's step
    np.testing.assert_array_equal(in_polygon(grid[clear], vertices), grid[clear, 0] < 0.5)


def test_partition_gives_each_target_its_cluster():
    values, labels = _three_clusters()
    targets = [("a", {"x": "low", "y": "low"}), ("b", {"x": "high", "y": "low"}), ("c", {"x": "mid", "y": "high"})]
    partition = Partition.fit(values, ["x", "y"], targets, (2, 6))
    for index, (name, _) in enumerate(targets):
        gated = in_polygon(values, partition.region(name)[0])
        true = labels == index
        assert 2 * (gated & true).sum() / (gated.sum() + true.sum()) > 0.99, name


def test_a_lone_target_competes_with_the_centre_and_posterior_widens_it():
    values, labels = _three_clusters()
    partition = Partition.fit(values, ["x", "y"], [("top", {"x": "mid", "y": "high"})], (2, 6))
    strict = in_polygon(values, partition.region("top")[0])
    inclusive = in_polygon(values, partition.region("top", posterior=0.05)[0])
    true = labels == 2
    assert 2 * (strict & true).sum() / (strict.sum() + true.sum()) > 0.99
    assert (inclusive >= strict).all() and inclusive.sum() > strict.sum()


def test_a_lone_target_takes_no_component_that_lies_back_towards_the_centre():
    # transitional B (CD38 high, CD24 high) beside plasmablasts (CD38 very high, CD24 low): the plasmablasts are
    # nearer the (high, high) target than the naive B centre, but not beyond the centre in CD24
    rng = np.random.default_rng(4)
    naive = rng.normal([0.4, 0.4], 0.04, (16_000, 2))
    transitional = rng.normal([0.55, 0.6], 0.04, (2_000, 2))
    plasmablasts = rng.normal([0.85, 0.3], 0.03, (1_000, 2))
    values = np.vstack([naive, transitional, plasmablasts])
    partition = Partition.fit(values, ["CD38", "CD24"], [("Breg", {"CD38": "high", "CD24": "high"})], (2, 6))
    gated = in_polygon(values, partition.region("Breg")[0])
    assert gated[16_000:18_000].mean() > 0.95 and gated[18_000:].mean() < 0.01 and gated[:16_000].mean() < 0.01


def test_without_a_component_per_target_each_event_goes_to_the_nearest_target():
    rng = np.random.default_rng(5)
    values = rng.normal([0.5, 0.5], [0.1, 0.05], (4000, 2))  # one blob, four memory-like targets, at most 2 components
    targets = [("naive", {"x": "high", "y": "high"}), ("CM", {"x": "low", "y": "high"}),
               ("EM", {"x": "low", "y": "low"}), ("TEMRA", {"x": "high", "y": "low"})]
    partition = Partition.fit(values, ["x", "y"], targets, (2, 2))
    assert partition.mixture is None and partition.flag.startswith("fall-back: at most 2 components for 4 targets")
    low, high = np.quantile(values, 0.02, axis=0), np.quantile(values, 0.98, axis=0)  # by hand: the quadrants of
    corners = np.array([[high[0], high[1]], [low[0], high[1]], [low[0], low[1]], [high[0], low[1]]])  # the corners
    nearest = np.argmin((((values[:, None] - corners[None]) / (high - low)) ** 2).sum(axis=2), axis=1)
    for index, (name, _) in enumerate(targets):
        vertices, record = partition.region(name)
        assert record["flag"] == partition.flag and record["mixture"]["components"] == 0
        differ = in_polygon(values, vertices) != (nearest == index)
        step = (partition.high - partition.low) / (GRID - 1)  # the boundary is traced on this grid
        near_boundary = (np.abs(values - (low + high) / 2) <= step).any(axis=1)
        assert differ.sum() < 0.02 * values.shape[0] and near_boundary[differ].all(), name


def test_a_lone_target_fall_back_cuts_the_corner_at_the_bisector():
    """One target in a corner (low x, high y) and too few components: the events nearer to the target than to
    the parent's centre, by hand; the region reaches two edges of the data, which stay open beyond them."""
    rng = np.random.default_rng(8)
    values = rng.normal([0.5, 0.5], [0.1, 0.05], (4000, 2))
    partition = Partition.fit(values, ["x", "y"], [("corner", {"x": "low", "y": "high"})], (2, 2))
    assert partition.mixture is None and partition.flag.startswith("fall-back")
    low, mid, high = (np.quantile(values, q, axis=0) for q in (0.02, 0.5, 0.98))
    target = np.array([low[0], high[1]])
    scale = high - low
    nearer = (((values - target) / scale) ** 2).sum(axis=1) < (((values - mid) / scale) ** 2).sum(axis=1)
    vertices, _ = partition.region("corner")
    gated = in_polygon(values, vertices)
    assert nearer.sum() > 100  # the corner holds events
    step = (partition.high - partition.low) / (GRID - 1)
    assert (gated != nearer).sum() < 0.02 * nearer.sum(), (gated.sum(), nearer.sum())
    assert vertices[:, 0].min() < values[:, 0].min() and vertices[:, 1].max() > values[:, 1].max()  # left open
    assert step.max() < 0.05

def _events(values: np.ndarray, names: list[str]) -> ad.AnnData:
    var = pd.DataFrame({"marker": names, "channel": [f"{n}-A" for n in names], "range": 262144.0},
                       index=[f"{n}-A" for n in names])
    return ad.AnnData(X=values.astype(np.float32), var=var, layers={"compensated": values.astype(np.float32)})


def _template(tmp_path, body: str):
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return load_template(path)


def test_mixture_gate_keeps_the_events_inside_its_realised_polygon(tmp_path):
    values, labels = _three_clusters(20_000)
    events = _events(values, ["CD25", "CD127"])
    template = _template(tmp_path, """
        populations:
          - {name: top, parent: root, method: mixture, dims: [CD25, CD127], args: {target: {CD127: high}}}
        """)
    result = apply_template(events, template)
    record = result.gates[0]
    inside = MplPath(np.array(record["polygon"]["vertices"])).contains_points(values.astype(np.float32))
    np.testing.assert_array_equal(result.masks["top"], inside)
    assert record["flag"] == "" and abs(result.masks["top"].mean() - (labels == 2).mean()) < 0.01


def test_cuts_combined_with_any_and_on_a_reference_population(tmp_path):
    rng = np.random.default_rng(2)
    negative = rng.normal(0.2, 0.02, (5000, 2))  # the reference population: negative for both markers
    either = np.vstack([rng.normal([0.2, 0.6], 0.02, (500, 2)), rng.normal([0.6, 0.2], 0.02, (300, 2)),
                        rng.normal(0.2, 0.02, (200, 2))])
    values = np.vstack([negative, either])
    is_reference = np.r_[np.ones(5000), np.zeros(1000)].astype(bool)
    events = _events(np.column_stack([values, is_reference]), ["CD56", "CD16", "ref"])
    template = _template(tmp_path, """
        populations:
          - {name: T, parent: root, method: cuts, cuts: {ref: {keep: above, method: fixed, args: {value: 0.5}}}}
          - {name: others, parent: root, method: cuts, cuts: {ref: {keep: below, method: fixed, args: {value: 0.5}}}}
          - name: NK
            parent: others
            method: cuts
            args: {combine: any}
            cuts:
              CD56: {keep: above, method: tail, args: {reference: T, side: upper, sd_multiple: 4}}
              CD16: {keep: above, method: tail, args: {reference: T, side: upper, sd_multiple: 4}}
        """)
    result = apply_template(events, template)
    record = next(g for g in result.gates if g["population"] == "NK")
    for dim in ("CD56", "CD16"):  # mode + 4 robust SDs of the reference's values: 0.2 + 4 x 0.02
        assert record["cuts"][dim]["cut"] == pytest.approx(0.28, abs=0.006)
        assert record["cuts"][dim]["reference"] == "T"
    assert record["combine"] == "any" and result.masks["NK"].sum() == 800


@pytest.mark.parametrize("body, message", [
    ("""
     - {name: a, parent: root, method: cuts, cuts: {x: {keep: above, method: tail, args: {reference: b}}}}
     - {name: b, parent: root, method: cuts, cuts: {x: {keep: above}}}
     """, "reference population 'b', which is not defined above it"),
    ("""
     - name: a
       parent: root
       method: cuts
       args: {combine: any}
       cuts: {x: {keep: above}, y: {keep: above}, z: {keep: above}}
     """, "combine: any, which needs exactly two cuts"),
    ("""
     - {name: a, parent: root, method: mixture, dims: [x, y], args: {target: {z: high}}}
     """, r"mixture target on \['z'\], which are not among its dims"),
])
def test_template_errors_for_the_new_options(tmp_path, body, message):
    with pytest.raises(TemplateError, match=message):
        _template(tmp_path, "populations:\n" + textwrap.indent(textwrap.dedent(body), "  "))


def _peaks(*components, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(mean, sd, n) for mean, sd, n in components])


def test_valley_on_one_side_takes_the_nearest_peak_first():
    # lymphocytes (0.05), monocytes (0.18), granulocytes (0.55): the lymphocytes' edge is before the monocytes,
    # although the granulocyte peak is taller
    values = _peaks((0.05, 0.01, 20_000), (0.18, 0.03, 5000), (0.55, 0.09, 60_000))
    cut = find_valley(values, peak="lowest", side="above")
    assert 0.08 < cut.value < 0.14 and cut.note == ""
    assert find_valley(values, peak="lowest", side="above", choose="tallest").value > 0.25


def test_valley_choose_deepest_skips_a_shallow_dip():
    # two live populations with a shallow dip (the tallest is the lower one), dead cells far above
    values = _peaks((0.15, 0.05, 60_000), (0.38, 0.05, 30_000), (0.8, 0.03, 3000))
    assert 0.55 < find_valley(values, side="above", choose="deepest", max_valley_ratio=0.5).value < 0.72
    assert find_valley(values, side="above", choose="nearest", max_valley_ratio=0.5).value < 0.35


def test_reference_above_skips_a_debris_peak_that_is_not_a_cell_peak():
    # debris near 0 (tall), lymphocytes at 0.2 and granulocytes at 0.42 on a linear scatter scale
    values = _peaks((0.03, 0.015, 40_000), (0.2, 0.02, 20_000), (0.42, 0.05, 30_000))
    assert 0.05 < find_valley(values, peak="lowest", side="below", reference_above=0.35).value < 0.15
    assert find_valley(values, peak="lowest", side="below").note  # without it, debris is the lowest peak


def test_no_valley_falls_back_to_a_tail_cut_and_says_so():
    values = _peaks((0.3, 0.02, 20_000))
    cut = find_valley(values, side="above", sd_multiple=4)
    assert cut.value == pytest.approx(0.38, abs=0.005)
    assert cut.note == "no density valley above the tallest peak: cut at 4 robust SDs above the tallest peak"
    assert find_cut(values, "valley", {"side": "above", "sd_multiple": 4}) == cut


def test_tail_from_the_highest_peak_with_its_outer_spread():
    # two live peaks, no dead peak: the tail is measured on the upper side of the brighter one
    values = _peaks((0.15, 0.05, 30_000), (0.4, 0.02, 30_000))
    cut = find_valley(values, side="above", max_valley_ratio=0.01, tail_from="highest", tail_spread="outer",
                      sd_multiple=4)
    assert cut.value == pytest.approx(0.48, abs=0.006)


def test_a_fall_back_is_flagged_in_the_population_table(tmp_path):
    events = _events(_peaks((0.3, 0.02, 20_000))[:, None], ["CD19"])
    template = _template(tmp_path, """
        populations:
          - {name: B, parent: root, method: cuts, cuts: {CD19: {keep: above, method: valley, args: {side: above}}}}
        """)
    table = population_table(apply_template(events, template), "S1")
    assert table.loc[0, "gate_flag"] == ("CD19: no density valley above the tallest peak: cut at 3 robust SDs "
                                         "above the tallest peak")
    assert table.loc[0, "status"] == "ok" and table.loc[0, "count"] > 0
