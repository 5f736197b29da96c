"""The discovery step of the workflow: pool, cluster, compare with the gates, tabulate and plot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd

from ..stats.changes import response_groups
from .cluster import ClusteringSettings, cluster_events
from .concordance import cluster_abundance, cluster_annotation, cluster_marker_medians, concordance_summary
from .plots import RESPONSE_COLOURS, plot_cluster_heatmap, plot_umap_categories, plot_umap_markers
from .pool import DiscoveryError, pool_gated_events

DEFAULT_EXCLUDED_MARKERS = ("Live/Dead", "CD45")  # used to define the parent, not to split it


@dataclass
class Discovery:
    """Clustered pooled events and the tables describing the clusters."""

    clustered: ad.AnnData
    concordance: pd.DataFrame
    annotation: pd.DataFrame
    abundance: pd.DataFrame


def discover(paths: list[str | os.PathLike], sample_info: pd.DataFrame, settings: dict) -> Discovery:
    """Pool ``settings['parent']`` from every sample (at most ``max_cells``), cluster on ``markers`` (default:
    every fluorescence marker but viability and CD45), and compare clusters with the gated populations.

    ``settings``: parent, max_cells, markers, reference_populations, and :class:`ClusteringSettings` fields.
    """
    options = dict(settings)
    parent = options.pop("parent", "leukocytes")
    max_cells = int(options.pop("max_cells", 30_000))
    markers = options.pop("markers", None)
    reference = options.pop("reference_populations", ["CD4", "CD8", "B", "NK", "monocytes"])
    options.pop("enabled", None)
    clustering = ClusteringSettings.from_dict(options)
    pooled = pool_gated_events(paths, parent, max_cells, clustering.seed, sample_info=sample_info)
    if not markers:
        kinds = pooled.var["kind"].to_numpy()
        markers = [m for m, k in zip(pooled.var["marker"], kinds) if k == "fluorescence"
                   and m not in DEFAULT_EXCLUDED_MARKERS]
    clustered = cluster_events(pooled, list(markers), clustering)
    return Discovery(clustered, concordance_summary(clustered, list(reference)), cluster_annotation(clustered),
                     cluster_abundance(clustered))


def write_discovery_figures(result: Discovery, folder: str | os.PathLike, units: str) -> list[Path]:
    """UMAP by cluster (Leiden, FlowSOM), by visit and response; UMAP per marker; cluster heatmaps."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = result.clustered
    groups = {"Leiden clusters": "leiden", "FlowSOM metaclusters": "flowsom"}
    outputs = [folder / "umap_clusters.png", folder / "umap_visit_response.png", folder / "umap_markers.png"]
    plot_umap_categories(data, groups, outputs[0])
    context = {title: column for title, column in (("visit", "visit"), ("response", "response_group"),
                                                   ("dose cohort", "cohort")) if column in data.obs}
    if not context:
        raise DiscoveryError("the pooled events carry no visit, response or cohort to colour by")
    plot_umap_categories(data, context, outputs[1], colours={"response_group": RESPONSE_COLOURS})
    plot_umap_markers(data, outputs[2], units)
    for method, title in (("leiden", "Leiden clusters"), ("flowsom", "FlowSOM metaclusters")):
        path = folder / f"heatmap_{method}.png"
        plot_cluster_heatmap(cluster_marker_medians(data, method),
                             result.annotation[result.annotation.method == method], path,
                             f"{title}: median of each marker ({data.uns.get('parent', '')}, pooled)")
        outputs.append(path)
    return outputs


def sample_info_table(populations: pd.DataFrame, responses: pd.DataFrame) -> pd.DataFrame:
    """Per sample: patient, visit, cohort and response group ('responder' / 'non-responder'), index sample_id."""
    info = populations.drop_duplicates("sample_id")[["sample_id", "patient_id", "visit", "cohort"]]
    info = info.assign(response_group=info["patient_id"].map(response_groups(responses)).fillna(""))
    return info.set_index("sample_id")
