"""Clusters compared with gated populations, cluster phenotypes and abundance per sample."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

METHODS = ("leiden", "flowsom")


MIN_MATCH_F1 = 0.5  # below this, a cluster is 'unmatched': no gated population describes it


def population_columns(clustered: ad.AnnData) -> list[str]:
    """The gated populations carried as bool membership columns of ``obs``."""
    return [c for c in clustered.obs.columns if clustered.obs[c].dtype == bool]


def candidate_populations(clustered: ad.AnnData) -> list[str]:
    """Gated populations below the pooled parent (its ancestors contain every pooled event, so say nothing)."""
    parents = dict(clustered.uns.get("populations", {}))
    parent = clustered.uns.get("parent")
    columns = population_columns(clustered)
    if not parents or parent is None:
        return columns

    def below(name: str) -> bool:
        seen = set()
        while name in parents and name not in seen:
            seen.add(name)
            name = parents[name]
            if name == parent:
                return True
        return False

    return [c for c in columns if below(c)]


def reference_labels(clustered: ad.AnnData, reference_populations: list[str]) -> np.ndarray:
    """Each event's label: the first of ``reference_populations`` that contains it, else 'other'."""
    labels = np.full(clustered.n_obs, "other", dtype=object)
    for population in reversed(reference_populations):
        labels[clustered.obs[population].to_numpy(dtype=bool)] = population
    return labels


def concordance_summary(clustered: ad.AnnData, reference_populations: list[str]) -> pd.DataFrame:
    """Adjusted Rand index and normalised mutual information between each clustering and the gated labels.

    The gated labels are mutually exclusive reference populations (:func:`reference_labels`), e.g. CD4 T, CD8 T,
    B, NK, monocytes and 'other'.
    """
    missing = [p for p in reference_populations if p not in clustered.obs.columns]
    if missing:
        raise ValueError(f"discovery.reference_populations {missing} are not gated populations "
                         f"({population_columns(clustered)})")
    truth = reference_labels(clustered, reference_populations)
    rows = []
    for method in METHODS:
        labels = clustered.obs[method].astype(str).to_numpy()
        rows.append({"method": method, "clusters": int(pd.unique(labels).size), "events": int(labels.size),
                     "reference": " / ".join([*reference_populations, "other"]),
                     "adjusted_rand_index": float(adjusted_rand_score(truth, labels)),
                     "normalized_mutual_info": float(normalized_mutual_info_score(truth, labels))})
    return pd.DataFrame(rows)


def cluster_annotation(clustered: ad.AnnData) -> pd.DataFrame:
    """Per clustering and cluster, the gated population below the pooled parent that matches it best (highest F1
    over the pooled events).

    Columns: method, cluster, events, percent_of_events, best_population, f1, precision (share of the cluster's
    events in the population), recall (share of the population's events in the cluster), annotation (the best
    population, or 'unmatched' when its F1 < :data:`MIN_MATCH_F1`, e.g. a cell type the template does not gate).
    """
    populations = candidate_populations(clustered)
    membership = clustered.obs[populations].to_numpy(dtype=bool)
    sizes = membership.sum(axis=0)
    rows = []
    for method in METHODS:
        labels = clustered.obs[method].astype(str).to_numpy()
        for cluster in _ordered(labels):
            inside = labels == cluster
            both = membership[inside].sum(axis=0)
            f1 = 2 * both / np.maximum(inside.sum() + sizes, 1)
            best = int(np.argmax(f1))
            rows.append({"method": method, "cluster": cluster, "events": int(inside.sum()),
                         "percent_of_events": 100.0 * inside.sum() / labels.size,
                         "best_population": populations[best] if f1[best] > 0 else "", "f1": float(f1[best]),
                         "precision": float(both[best] / inside.sum()),
                         "recall": float(both[best] / sizes[best]) if sizes[best] else np.nan,
                         "annotation": populations[best] if f1[best] >= MIN_MATCH_F1 else "unmatched"})
    return pd.DataFrame(rows)


def cluster_marker_medians(clustered: ad.AnnData, method: str) -> pd.DataFrame:
    """Clusters x markers: median of each marker (gating units) in each cluster, clusters in numeric order."""
    labels = clustered.obs[method].astype(str).to_numpy()
    frame = pd.DataFrame(np.asarray(clustered.X), columns=list(clustered.var_names))
    frame["cluster"] = labels
    medians = frame.groupby("cluster", sort=False).median()
    return medians.loc[_ordered(labels)]


def cluster_abundance(clustered: ad.AnnData) -> pd.DataFrame:
    """Per sample, clustering and cluster: events and % of the sample's pooled events (every cluster listed)."""
    rows = []
    samples = sorted(pd.unique(clustered.obs["sample_id"].astype(str)))
    for method in METHODS:
        table = pd.crosstab(clustered.obs["sample_id"].astype(str), clustered.obs[method].astype(str))
        table = table.reindex(index=samples, columns=_ordered(clustered.obs[method].astype(str).to_numpy()),
                              fill_value=0)
        totals = table.sum(axis=1)
        for sample_id, counts in table.iterrows():
            for cluster, count in counts.items():
                rows.append({"sample_id": sample_id, "method": method, "cluster": cluster, "events": int(count),
                             "percent_of_sample": 100.0 * count / totals[sample_id]})
    return pd.DataFrame(rows)


def _ordered(labels: np.ndarray) -> list[str]:
    return sorted(pd.unique(labels), key=lambda c: (len(c), c))
