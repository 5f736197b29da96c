"""Clustering of pooled events: scanpy kNN graph, UMAP and Leiden; FlowSOM (SOM + consensus metaclusters)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, fields

import anndata as ad
import numpy as np

from .pool import DiscoveryError


@dataclass(frozen=True)
class ClusteringSettings:
    """Settings of :func:`cluster_events` (config section ``discovery``)."""

    n_neighbors: int = 15
    leiden_resolution: float = 0.5
    flowsom_grid: int = 10  # a grid x grid self-organising map
    flowsom_metaclusters: int = 15
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> ClusteringSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise DiscoveryError(f"discovery: unknown clustering setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


def cluster_events(pooled: ad.AnnData, markers: list[str], settings: ClusteringSettings) -> ad.AnnData:
    """Cluster pooled events on ``markers`` (gating units), deterministically.

    Returns
    -------
    AnnData
        pooled events x ``markers``: obs gains ``leiden`` and ``flowsom`` (metacluster) labels as categories
        (strings of integers), obsm ``X_umap``; uns the settings.
    """
    import scanpy as sc

    available = list(pooled.var["marker"])
    unknown = [m for m in markers if m not in available]
    if unknown:
        raise DiscoveryError(f"discovery.markers {unknown} are not panel markers ({[m for m in available if m]})")
    columns = [available.index(m) for m in markers]
    data = ad.AnnData(X=np.asarray(pooled.X[:, columns], dtype=np.float32), obs=pooled.obs.copy())
    data.var_names = markers
    data.uns.update({k: pooled.uns[k] for k in ("parent", "populations", "skipped", "cells_per_sample")
                     if k in pooled.uns})
    # exact kNN (scikit-learn): deterministic, and scanpy 1.11's pynndescent path fails with scipy 1.17 sparse arrays
    sc.pp.neighbors(data, n_neighbors=settings.n_neighbors, use_rep="X", transformer="sklearn",
                    random_state=settings.seed)
    sc.tl.umap(data, random_state=settings.seed)
    sc.tl.leiden(data, resolution=settings.leiden_resolution, flavor="igraph", n_iterations=2, directed=False,
                 random_state=settings.seed)
    data.obs["flowsom"] = _flowsom(data, settings)
    data.uns["clustering"] = {f.name: getattr(settings, f.name) for f in fields(settings)}
    data.uns["clustering"]["markers"] = list(markers)
    return data


def _flowsom(data: ad.AnnData, settings: ClusteringSettings):
    import flowsom

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        fsom = flowsom.FlowSOM(data.copy(), cols_to_use=None, xdim=settings.flowsom_grid,  # all (the markers)
                               ydim=settings.flowsom_grid, n_clusters=settings.flowsom_metaclusters,
                               seed=settings.seed)
    labels = np.asarray(fsom.get_cell_data().obs["metaclustering"]).astype(int)
    import pandas as pd

    return pd.Categorical(labels.astype(str), categories=[str(i) for i in sorted(set(labels))])
