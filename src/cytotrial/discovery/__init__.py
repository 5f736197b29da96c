"""Unsupervised discovery on pooled gated events: scanpy neighbours/UMAP/Leiden and FlowSOM, compared with gates.

* :mod:`.pool` — a per-sample-balanced subsample of one gated population from every sample;
* :mod:`.cluster` — UMAP, Leiden and FlowSOM metaclusters (fixed seeds);
* :mod:`.concordance` — clusters vs gated populations (adjusted Rand index, best-matching population),
  cluster marker medians and cluster abundance per sample;
* :mod:`.plots` — UMAP panels and the cluster marker heatmap.
"""

from .cluster import ClusteringSettings, cluster_events
from .concordance import cluster_abundance, cluster_annotation, cluster_marker_medians, concordance_summary
from .pool import DiscoveryError, pool_gated_events
from .run import Discovery, discover, write_discovery_figures

__all__ = ["ClusteringSettings", "Discovery", "DiscoveryError", "discover", "write_discovery_figures", "cluster_abundance", "cluster_annotation", "cluster_events",
           "cluster_marker_medians", "concordance_summary", "pool_gated_events"]
