"""Discovery figures: UMAP coloured by a category or a marker, and the cluster x marker heatmap."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd

from ..report.figures import RESPONSE_COLOURS as REPORT_RESPONSE_COLOURS
from ..report.figures import new_figure

RESPONSE_COLOURS = {**REPORT_RESPONSE_COLOURS, "": "#999999"}  # and grey for patients without a response


def plot_umap_categories(clustered: ad.AnnData, columns: dict[str, str], path: str | os.PathLike,
                         colours: dict[str, dict[str, str]] | None = None) -> Figure:
    """One UMAP panel per obs column (title -> column), points coloured by category with a legend; returns the
    Figure written."""
    umap = clustered.obsm["X_umap"]
    fig = new_figure(4.6 * len(columns), 4.4)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    for ax, (title, column) in zip(axes, columns.items()):
        values = clustered.obs[column].astype(str).to_numpy()
        categories = sorted(pd.unique(values), key=lambda c: (len(c), c))
        palette = (colours or {}).get(column) or _palette(categories)
        for category in categories:
            inside = values == category
            ax.scatter(umap[inside, 0], umap[inside, 1], s=1.5, color=palette.get(category, "#999999"),
                       label=category or "unknown", linewidths=0, rasterized=True)
        if column in ("leiden", "flowsom"):
            for category in categories:
                centre = np.median(umap[values == category], axis=0)
                ax.text(*centre, category, fontsize=7, ha="center", va="center", weight="bold")
        else:
            ax.legend(markerscale=6, fontsize=7, loc="best", frameon=False)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return fig


def plot_umap_markers(clustered: ad.AnnData, path: str | os.PathLike, units: str = "logicle") -> Figure:
    """One UMAP panel per marker, coloured by its value (gating units; 1st-99th percentile colour range); returns the
    Figure written."""
    umap = clustered.obsm["X_umap"]
    markers = list(clustered.var_names)
    n_cols = min(5, len(markers))
    n_rows = int(np.ceil(len(markers) / n_cols))
    fig = new_figure(3.0 * n_cols, 2.8 * n_rows)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(markers):
            ax.set_axis_off()
            continue
        values = np.asarray(clustered.X[:, index], dtype=float)
        low, high = np.percentile(values, [1, 99])
        points = ax.scatter(umap[:, 0], umap[:, 1], c=values, s=1, cmap="viridis", vmin=low, vmax=high,
                            linewidths=0, rasterized=True)
        fig.colorbar(points, ax=ax, shrink=0.8).set_label(f"{units}", fontsize=7)
        ax.set_title(markers[index], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return fig


def plot_cluster_heatmap(medians: pd.DataFrame, annotation: pd.DataFrame, path: str | os.PathLike,
                         title: str) -> Figure:
    """Clusters x markers median heatmap, each marker scaled 0-1 over clusters; rows labelled with the cluster,
    its best-matching gated population and F1. Returns the Figure written."""
    scaled = (medians - medians.min()) / (medians.max() - medians.min()).replace(0, 1)
    labels = {r.cluster: (f"{r.cluster}: {r.annotation} (F1 {r.f1:.2f}, {r.percent_of_events:.1f} %)"
                          if r.annotation != "unmatched" else
                          f"{r.cluster}: unmatched ({r.percent_of_events:.1f} %)") for r in annotation.itertuples()}
    fig = new_figure(1.2 + 0.42 * medians.shape[1] + 2.6, 1.4 + 0.3 * medians.shape[0])
    ax = fig.add_axes([2.9 / fig.get_figwidth(), 0.9 / fig.get_figheight(),
                       1 - 4.0 / fig.get_figwidth(), 1 - 1.4 / fig.get_figheight()])
    image = ax.imshow(scaled.to_numpy(), aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(medians.shape[1]), list(medians.columns), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(medians.shape[0]), [labels.get(c, c) for c in medians.index], fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.6).set_label("median, scaled per marker (0-1)", fontsize=8)
    fig.savefig(path, format="png", metadata={"Software": None})
    return fig


def _palette(categories: list[str]) -> dict[str, str]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"] if len(categories) > 10 else colormaps["tab10"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(categories)}
