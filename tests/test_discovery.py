"""Unsupervised discovery: pooling, clustering and concordance with the gates."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from cytotrial.discovery.plots import plot_cluster_heatmap, plot_umap_categories, plot_umap_markers
from cytotrial.discovery import (ClusteringSettings, DiscoveryError, cluster_abundance, cluster_annotation,
                                 cluster_events, concordance_summary, discover, pool_gated_events,
                                 write_discovery_figures)
from cytotrial.gating.engine import apply_template
from cytotrial.gating.template import load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs, write_h5ad
from cytotrial.quantify import event_anndata

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def event_files(small_trial, tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("events")
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    paths = []
    for row in small_trial["samples"].head(4).itertuples():
        adata, _ = preprocess_fcs(row.fcs, row.sample_id, panel, {"transform": {"fluorescence": "logicle"}})
        adata = adata[adata.obs["qc_keep"].to_numpy()].copy()
        write_h5ad(event_anndata(apply_template(adata, template), adata, row.sample_id, 8000),
                   out / f"{row.sample_id}.h5ad")
        paths.append(out / f"{row.sample_id}.h5ad")
    return paths


def test_pool_is_balanced_bounded_and_order_independent(event_files):
    pooled = pool_gated_events(event_files, "lymphocytes", max_cells=2000)
    assert pooled.n_obs <= 2000 and pooled.obs["lymphocytes"].all()
    assert pooled.obs.sample_id.value_counts().max() == 500
    shuffled = pool_gated_events(list(reversed(event_files)), "lymphocytes", max_cells=2000)
    assert list(shuffled.obs_names) == list(pooled.obs_names)
    with pytest.raises(DiscoveryError, match="'basophils' is not gated"):
        pool_gated_events(event_files, "basophils", max_cells=2000)


def test_pooled_events_are_the_files_events(event_files):
    """Every pooled event carries the values, memberships and channels anndata's own reader gives that event of
    its file (the pool reads the files element by element)."""
    pooled = pool_gated_events(event_files, "lymphocytes", max_cells=2000)
    for path in event_files:
        whole = ad.read_h5ad(path)
        names = [n for n in pooled.obs_names if n.startswith(f"{whole.uns['sample_id']}-")]
        assert len(names) == 500
        np.testing.assert_array_equal(pooled[names].X, whole[names].X)
        np.testing.assert_array_equal(pooled[names].layers["compensated"], whole[names].layers["compensated"])
        columns = [c for c in whole.obs.columns if c != "sample_id"]
        pd.testing.assert_frame_equal(pooled[names].obs[columns], whole[names].obs[columns])
    first = ad.read_h5ad(sorted(map(str, event_files))[0])  # channels and populations: of the first file
    pd.testing.assert_frame_equal(pooled.var, first.var)
    assert pooled.uns["populations"] == dict(first.uns["populations"])


def test_clusters_recover_the_gated_lineages(event_files):
    pooled = pool_gated_events(event_files, "lymphocytes", max_cells=4000)
    markers = ["CD3", "CD4", "CD8", "CD19", "CD56", "CD16", "CD45RA", "CCR7"]
    clustered = cluster_events(pooled, markers, ClusteringSettings(flowsom_metaclusters=8))
    again = cluster_events(pooled, markers, ClusteringSettings(flowsom_metaclusters=8))
    assert (clustered.obs.leiden == again.obs.leiden).all() and (clustered.obs.flowsom == again.obs.flowsom).all()
    np.testing.assert_array_equal(clustered.obsm["X_umap"], again.obsm["X_umap"])
    summary = concordance_summary(clustered, ["CD4", "CD8", "B", "NK"]).set_index("method")
    # clusters split lineages into subsets (naive/memory), which the index penalises; random labels give ~0
    assert (summary.adjusted_rand_index > 0.35).all() and (summary.normalized_mutual_info > 0.6).all(), summary
    annotation = cluster_annotation(clustered)
    assert "lymphocytes" not in set(annotation.best_population)  # the pooled parent itself says nothing
    big = annotation[(annotation.method == "flowsom") & (annotation.percent_of_events > 5)]
    assert (big.f1 > 0.5).mean() >= 0.5, big
    abundance = cluster_abundance(clustered)
    per_sample = abundance.groupby(["sample_id", "method"]).percent_of_sample.sum()
    np.testing.assert_allclose(per_sample.to_numpy(), 100.0)


def test_discover_and_figures(event_files, tmp_path):
    info = pd.DataFrame({"sample_id": [p.stem for p in event_files], "patient_id": "P", "visit": ["D0", "W4"] * 2,
                         "cohort": "A", "response_group": ["responder", "non-responder"] * 2}).set_index("sample_id")
    result = discover(event_files, info, {"parent": "lymphocytes", "max_cells": 2000, "flowsom_metaclusters": 6,
                                          "reference_populations": ["CD4", "CD8", "B", "NK"]})
    paths = write_discovery_figures(result, tmp_path, "logicle")
    assert [p.name for p in paths] == ["umap_clusters.png", "umap_visit_response.png", "umap_markers.png",
                                       "heatmap_leiden.png", "heatmap_flowsom.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert set(result.clustered.obs.response_group) == {"responder", "non-responder"}
    with pytest.raises(DiscoveryError, match="unknown clustering setting"):
        discover(event_files, info, {"parent": "lymphocytes", "resolution": 1})


def _clustered(n: int = 60) -> ad.AnnData:
    """Hand-made clustered events: UMAP coordinates, two clusterings, visit and response, three markers."""
    rng = np.random.default_rng(3)
    obs = pd.DataFrame({"leiden": pd.Categorical(np.repeat(["0", "1", "2"], n // 3)),
                        "flowsom": pd.Categorical(np.tile(["1", "2"], n // 2)),
                        "visit": np.tile(["D0", "W4", "W12"], n // 3),
                        "response_group": np.repeat(["responder", "non-responder"], n // 2)},
                       index=[f"e{i}" for i in range(n)])
    data = ad.AnnData(X=rng.normal(size=(n, 3)).astype(np.float32), obs=obs,
                      var=pd.DataFrame(index=["CD3", "CD4", "CD8"]))
    data.obsm["X_umap"] = rng.uniform(-5, 5, size=(n, 2))
    return data


def _points(ax) -> list[np.ndarray]:
    return [np.asarray(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def test_umap_category_figure_has_a_panel_per_column_with_each_category_at_its_events(tmp_path):
    data = _clustered()
    fig = plot_umap_categories(data, {"Leiden clusters": "leiden", "response": "response_group"}, tmp_path / "u.png",
                               colours={"response_group": {"responder": "#1b9e77", "non-responder": "#d95f02"}})
    assert [ax.get_title() for ax in fig.axes] == ["Leiden clusters", "response"]
    umap, leiden, response = data.obsm["X_umap"], data.obs["leiden"].astype(str), data.obs["response_group"]
    clusters_ax, response_ax = fig.axes
    # one point set per category, at that category's UMAP coordinates, in the order shown
    for points, category in zip(_points(clusters_ax), ["0", "1", "2"], strict=True):
        np.testing.assert_array_equal(points, umap[(leiden == category).to_numpy()])
    labels = {t.get_text(): t.get_position() for t in clusters_ax.texts}  # cluster names at their median
    for category in ("0", "1", "2"):
        np.testing.assert_allclose(labels[category], np.median(umap[(leiden == category).to_numpy()], axis=0))
    assert [t.get_text() for t in response_ax.get_legend().get_texts()] == ["responder", "non-responder"]
    for points, category in zip(_points(response_ax), ["responder", "non-responder"], strict=True):
        np.testing.assert_array_equal(points, umap[(response == category).to_numpy()])
    colours = [tuple(c.get_facecolor()[0]) for c in response_ax.collections]
    assert colours == [(27 / 255, 158 / 255, 119 / 255, 1.0), (217 / 255, 95 / 255, 2 / 255, 1.0)]


def test_umap_marker_figure_colours_each_panel_by_its_marker(tmp_path):
    data = _clustered()
    fig = plot_umap_markers(data, tmp_path / "m.png", units="logicle")
    panels = [ax for ax in fig.axes if ax.get_title()]
    colourbars = [ax for ax in fig.axes if ax.get_ylabel() == "logicle"]
    assert [ax.get_title() for ax in panels] == ["CD3", "CD4", "CD8"] and len(colourbars) == 3
    for j, ax in enumerate(panels):
        (points,) = ax.collections
        np.testing.assert_array_equal(points.get_offsets(), data.obsm["X_umap"])
        np.testing.assert_array_equal(points.get_array(), data.X[:, j].astype(float))
        np.testing.assert_allclose(points.get_clim(), np.percentile(data.X[:, j].astype(float), [1, 99]))


def test_cluster_heatmap_shows_medians_scaled_per_marker_and_names_the_matched_population(tmp_path):
    medians = pd.DataFrame({"CD3": [1.0, 3.0, 2.0], "CD4": [0.5, 0.5, 0.5]}, index=["0", "1", "2"])
    annotation = pd.DataFrame({"cluster": ["0", "1", "2"], "annotation": ["CD4", "unmatched", "B"],
                               "f1": [0.91, 0.1, 0.755], "percent_of_events": [50.0, 30.04, 19.96]})
    fig = plot_cluster_heatmap(medians, annotation, tmp_path / "h.png", "Leiden clusters: median of each marker")
    ax = next(a for a in fig.axes if a.get_title())
    assert ax.get_title() == "Leiden clusters: median of each marker"
    (image,) = ax.images
    # by hand: CD3 (1, 3, 2) -> (0, 1, 0.5); CD4 constant -> 0 (no division by zero)
    np.testing.assert_array_equal(image.get_array(), [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0: CD4 (F1 0.91, 50.0 %)", "1: unmatched (30.0 %)",
                                                            "2: B (F1 0.76, 20.0 %)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CD3", "CD4"]
