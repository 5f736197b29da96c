"""Unsupervised discovery: pooling, clustering and concordance with the gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
    assert len(paths) == 5 and all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert set(result.clustered.obs.response_group) == {"responder", "non-responder"}
    with pytest.raises(DiscoveryError, match="unknown clustering setting"):
        discover(event_files, info, {"parent": "lymphocytes", "resolution": 1})
