"""From one FCS file to compensated, transformed events in an AnnData (events x channels)."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd

from .compensation import spillover_from_keywords
from .io.atomic import atomic_path
from .io.fcs import read_fcs, sha256_of
from .io.panel import Panel
from .transforms import fluorescence_transform, scatter_transform

# FCS keywords kept in outputs: technical ones only (identifying ones such as $SRC, $FIL, $OP, $DATE never are).
TECHNICAL_KEYWORDS = ("$CYT", "$TOT", "$PAR", "$MODE", "$DATATYPE", "$BYTEORD", "$TIMESTEP", "$SPILLOVER")


def preprocess_fcs(path: str | os.PathLike, sample_id: str, panel: Panel, transform_settings: dict,
                   compensation_source: str = "file") -> ad.AnnData:
    """Read, compensate and transform one FCS file.

    Returns
    -------
    AnnData
        n_events x n_channels (scatter and panel fluorescence channels). ``X``: transformed values (float32,
        logicle/asinh for fluorescence, linear /$PnR for scatter); ``layers['compensated']``: linear
        compensated values; ``obs['time_s']``: acquisition time; ``var``: channel, marker, kind and transform
        parameters; ``uns``: sample id, source SHA-256, FCS version, technical keywords, spillover used.
    """
    source = str(path)
    sample = read_fcs(path)
    channels_by_name = panel.resolve(list(sample.pnn_labels), list(sample.pns_labels), source)
    if compensation_source == "file":
        matrix = spillover_from_keywords(sample, source)
        sample.apply_compensation(matrix)
        compensated = sample.get_events(source="comp")
        spill = {"detectors": list(matrix.detectors), "matrix": matrix.matrix.tolist()}
    elif compensation_source == "none":
        compensated = sample.get_events(source="raw")
        spill = {}
    else:
        raise ValueError(f"compensation.source must be 'file' or 'none', not {compensation_source!r}")

    names = [*panel.scatter, *panel.markers]
    channels = [channels_by_name[n] for n in names]
    columns = [sample.get_channel_index(c) for c in channels]
    ranges = {c: float(sample.channels.loc[sample.get_channel_index(c), "pnr"]) for c in channels}
    transforms, records = {}, []
    for name, channel, column in zip(names, channels, columns, strict=True):
        t = ranges[channel]
        if name in panel.scatter:
            xform, params = scatter_transform(t)
        else:
            xform, params = fluorescence_transform(compensated[:, column], t, transform_settings)
        transforms[channel] = xform
        records.append({"channel": channel, "marker": "" if name in panel.scatter else name,
                        "kind": "scatter" if name in panel.scatter else "fluorescence", "range": t, **params})
    sample.apply_transform(transforms)
    transformed = sample.get_events(source="xform")

    var = pd.DataFrame(records).set_index("channel", drop=False)
    var.index.name = None
    obs = pd.DataFrame({"time_s": sample.get_events(source="raw")[:, sample.get_channel_index(channels_by_name[panel.time])]},
                       index=pd.RangeIndex(sample.event_count).astype(str))
    adata = ad.AnnData(X=transformed[:, columns].astype(np.float32), obs=obs, var=var,
                       layers={"compensated": compensated[:, columns].astype(np.float32)})
    adata.uns["sample_id"] = sample_id
    adata.uns["source_sha256"] = sha256_of(path)
    adata.uns["fcs_version"] = str(sample.version)
    adata.uns["keywords"] = {k: str(sample.metadata[k.lstrip("$").lower()]) for k in TECHNICAL_KEYWORDS
                             if k.lstrip("$").lower() in sample.metadata}
    adata.uns["spillover"] = spill
    return adata


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write an AnnData atomically (temporary name, then rename)."""
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)
