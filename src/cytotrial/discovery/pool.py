"""A pooled, per-sample-balanced subsample of one gated population across samples."""

from __future__ import annotations

import os
import zlib

import anndata as ad
import h5py
import numpy as np
import pandas as pd


class DiscoveryError(ValueError):
    """The discovery settings do not fit the gated events (unknown population or marker)."""


def pool_gated_events(paths: list[str | os.PathLike], parent: str, max_cells: int, seed: int = 0,
                      *, sample_info: pd.DataFrame | None = None) -> ad.AnnData:
    """Events of ``parent`` from every sample's event AnnData, the same number from each sample.

    Each sample contributes ``max_cells // n_samples`` events of ``parent`` (all of them if it has fewer), drawn
    without replacement by a generator seeded from ``seed`` and the sample id, so the pool is the same whatever
    the order of the files and at most ``max_cells`` events (memory bounded). Samples in which ``parent`` is
    missing contribute nothing and are listed in ``uns['skipped']``; excluded samples (bad files) are left out
    before the share per sample is set, so the pool is that of a run without them.

    Parameters
    ----------
    paths
        Event AnnData files (:func:`cytotrial.quantify.event_anndata`).
    sample_info
        Optional per-sample columns (index sample_id; e.g. patient, visit, response) copied into ``obs``.

    Returns
    -------
    AnnData
        pooled events x channels (X gating units), obs: sample_id, population memberships, ``sample_info``.
    """
    paths = [p for p in sorted(map(str, paths)) if not _excluded_reason(p)]
    if not paths:
        raise DiscoveryError("no event files to pool (all samples excluded)")
    per_sample = max(1, int(max_cells) // len(paths))  # excluded samples do not count
    parts, skipped, populations = [], [], None
    for path in paths:
        events = _read_events(path, with_populations=populations is None)
        populations = events.uns["populations"] if populations is None else populations
        sample_id = str(events.uns["sample_id"])
        if parent not in events.obs.columns:
            raise DiscoveryError(f"{path}: population '{parent}' is not gated in the events (populations: "
                                 f"{[c for c in events.obs.columns if c != 'sample_id']}); set discovery.parent "
                                 "to one of them.")
        rows = np.flatnonzero(events.obs[parent].to_numpy(dtype=bool))
        if parent in events.uns.get("missing_populations", []) or rows.size == 0:
            skipped.append(sample_id)
            continue
        if rows.size > per_sample:
            rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(sample_id.encode())]))
            rows = np.sort(rng.choice(rows, size=per_sample, replace=False))
        parts.append(events[rows].copy())
    if not parts:
        raise DiscoveryError(f"population '{parent}' is missing in every sample; nothing to cluster")
    pooled = ad.concat(parts, join="inner", merge="first")
    pooled.obs["sample_id"] = pooled.obs["sample_id"].astype(str)
    if sample_info is not None:
        info = sample_info.reindex(pooled.obs["sample_id"].to_numpy())
        for column in info.columns:
            pooled.obs[column] = info[column].to_numpy()
    pooled.uns["parent"] = parent
    pooled.uns["populations"] = dict(populations)
    pooled.uns["skipped"] = skipped
    pooled.uns["cells_per_sample"] = per_sample
    return pooled


def _excluded_reason(path: str) -> str:
    """``uns['excluded']`` of an event file (its reason for being excluded; "" if it is not), read alone: reading
    the whole file to learn this would cost as much again as pooling it."""
    with h5py.File(path, "r") as handle:
        return str(ad.io.read_elem(handle["uns/excluded"])) if "excluded" in handle.get("uns", {}) else ""


def _read_events(path: str, *, with_populations: bool) -> ad.AnnData:
    """An event file (:func:`cytotrial.quantify.event_anndata`) as ``ad.read_h5ad`` reads it, but of ``uns`` only the
    sample id, the missing populations and (``with_populations``) the population tree: its per-channel transform
    parameters are half the cost of reading a file, and a pool drops them."""
    keys = ["sample_id", "missing_populations"] + (["populations"] if with_populations else [])
    with h5py.File(path, "r") as handle:
        parts = {key: ad.io.read_elem(handle[key]) for key in ("X", "obs", "var", "layers")}
        uns = {key: ad.io.read_elem(handle["uns"][key]) for key in keys if key in handle["uns"]}
    return ad.AnnData(**parts, uns=uns)
