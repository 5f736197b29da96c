"""From one FCS file to compensated, transformed, quality-checked events in an AnnData (events x channels).

Steps: read (flowkit) -> find the panel's channels -> compensate (the configured matrix source) -> transform
(parameters fitted per acquisition batch, or per file) -> event QC (margins, flow rate, signal) -> de-identified
metadata.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import anndata as ad
import flowkit as fk
import numpy as np
import pandas as pd

from .compensation import compensation_matrix
from .io.atomic import atomic_path
from .io.deid import deidentify_keywords
from .io.fcs import read_fcs, sha256_of
from .io.panel import Panel
from .qc import QcResult, QcSettings, run_event_qc
from .transforms import fluorescence_transform, pooled_transform_parameters, scatter_transform, transform_from_params


@dataclass(frozen=True)
class CompensatedEvents:
    """The panel's channels of one file, compensated (linear units)."""

    sample: fk.Sample
    names: list[str]  # panel names: scatter channels, then markers
    channels: list[str]  # $PnN of each name
    values: np.ndarray  # (n_events, n_names) float64
    ranges: list[float]  # $PnR of each channel
    time_s: np.ndarray  # (n_events,)
    spillover: dict  # the matrix used: detectors and values ({} without compensation)


def read_compensated(path: str | os.PathLike, panel: Panel, compensation: dict,
                     matrix_path: str | None = None) -> CompensatedEvents:
    """Read a file, find the panel's channels and compensate them with the configured matrix."""
    source = str(path)
    sample = read_fcs(path)
    by_name = panel.resolve(list(sample.pnn_labels), list(sample.pns_labels), source)
    matrix = compensation_matrix(sample, compensation, source, matrix_path)
    events = matrix.apply(sample) if matrix is not None else sample.get_events(source="raw")
    names = [*panel.scatter, *panel.markers]
    channels = [by_name[n] for n in names]
    columns = [sample.get_channel_index(c) for c in channels]
    ranges = [float(sample.channels.loc[i, "pnr"]) for i in columns]
    time_s = sample.get_events(source="raw")[:, sample.get_channel_index(by_name[panel.time])]
    spill = {} if matrix is None else {"detectors": list(matrix.detectors), "matrix": matrix.matrix.tolist()}
    return CompensatedEvents(sample, names, channels, events[:, columns], ranges, time_s, spill)


def fit_batch_transforms(paths: list[str], panel: Panel, compensation: dict, transform: dict,
                         matrix_path: str | None = None, max_events_per_file: int = 50_000,
                         on_bad_file: str = "fail") -> dict:
    """Transform parameters for a batch (acquisition run), fitted on the files' pooled events.

    Each file contributes at most ``max_events_per_file`` events (every k-th event, so the result is
    deterministic). With ``on_bad_file='exclude'`` a file that cannot be read (corrupt, wrong panel, bad
    spillover) is left out and listed under 'excluded', so the batch's parameters are those of the batch without
    it. Returns a JSON-ready record: files, events used, excluded files and, per marker, the parameters.
    """
    from .exclusion import BAD_FILE_ERRORS

    pooled: dict[str, list[np.ndarray]] = {m: [] for m in panel.markers}
    ranges: dict[str, float] = {}
    used = 0
    excluded = []
    for path in sorted(paths):
        try:
            events = read_compensated(path, panel, compensation, matrix_path)
        except BAD_FILE_ERRORS as err:
            if on_bad_file != "exclude":
                raise
            excluded.append({"file": os.path.basename(str(path)), "reason": str(err)})
            continue
        step = max(1, events.values.shape[0] // max_events_per_file)
        subset = events.values[::step][:max_events_per_file]
        used += subset.shape[0]
        for j, name in enumerate(events.names):
            if name in pooled:
                pooled[name].append(subset[:, j])
                ranges[name] = events.ranges[j]
    if not ranges:  # every file of the batch is bad: they are all excluded when preprocessed
        return {"files": 0, "events_used": 0, "excluded": excluded, "markers": {}}
    values = {m: np.concatenate(v) for m, v in pooled.items()}
    return {"files": len(paths) - len(excluded), "events_used": used, "excluded": excluded,
            "markers": pooled_transform_parameters(values, ranges, transform)}


def _transform_columns(events: CompensatedEvents, panel: Panel, transform: dict,
                       batch_parameters: dict | None) -> tuple[np.ndarray, list[dict]]:
    transformed = np.empty(events.values.shape, dtype=np.float32)
    records = []
    for j, (name, channel) in enumerate(zip(events.names, events.channels, strict=True)):
        values = events.values[:, j]
        if name in panel.scatter:
            xform, params = scatter_transform(events.ranges[j])
        elif batch_parameters is not None:
            params = batch_parameters[name]
            xform = transform_from_params(params)
        else:
            xform, params = fluorescence_transform(values, events.ranges[j], transform)
        transformed[:, j] = xform.apply(values.reshape(-1, 1)).ravel()
        records.append({"channel": channel, "marker": "" if name in panel.scatter else name,
                        "kind": "scatter" if name in panel.scatter else "fluorescence",
                        "range": events.ranges[j], **params})
    return transformed, records


def preprocess_fcs(path: str | os.PathLike, sample_id: str, panel: Panel, settings: dict,
                   study_day: int | None = None, batch_transforms: dict | None = None,
                   matrix_path: str | None = None) -> tuple[ad.AnnData, QcResult]:
    """Read, compensate, transform and quality-check one FCS file.

    Parameters
    ----------
    settings
        The config sections ``compensation``, ``transform``, ``qc`` and ``deidentification``.
    study_day
        Day of the blood draw relative to the first infusion; replaces the calendar date of the file.
    batch_transforms
        Transform parameters of the file's batch (from :func:`fit_batch_transforms`); None fits them on this
        file alone.

    Returns
    -------
    AnnData
        n_events x n_channels (scatter and panel fluorescence channels). ``X``: transformed values (float32,
        logicle/asinh for fluorescence, linear / $PnR for scatter); ``layers['compensated']``: linear compensated
        values; ``obs``: ``time_s`` and ``qc_keep`` (passed the event QC); ``var``: channel, marker, kind and
        transform parameters; ``uns``: sample id, source SHA-256, ``metadata_json`` (de-identified: technical keywords,
        study day, acquisition duration, names of the dropped keywords), FCS version, spillover used, transform
        scope.
    QcResult
        The event QC of the file.
    """
    events = read_compensated(path, panel, settings.get("compensation", {"source": "file"}), matrix_path)
    batch_parameters = None if batch_transforms is None else batch_transforms["markers"]
    transformed, records = _transform_columns(events, panel, settings.get("transform", {}), batch_parameters)
    var = pd.DataFrame(records).set_index("channel", drop=False)
    var.index.name = None
    qc = run_event_qc(events.time_s, transformed, events.channels, np.array(events.ranges),
                      var["kind"].to_numpy() == "fluorescence", QcSettings.from_dict(settings.get("qc", {})),
                      linear=events.values)
    obs = pd.DataFrame({"time_s": events.time_s, "qc_keep": qc.keep},
                       index=pd.RangeIndex(events.values.shape[0]).astype(str))
    adata = ad.AnnData(X=transformed, obs=obs, var=var, layers={"compensated": events.values.astype(np.float32)})
    deid_settings = settings.get("deidentification", {})
    metadata = deidentify_keywords(events.sample.metadata, study_day, sha256_of(path),
                                   keep_instrument_serial=deid_settings.get("keep_instrument_serial", False),
                                   extra_whitelist=deid_settings.get("extra_whitelist"))
    adata.uns["sample_id"] = sample_id
    adata.uns["source_sha256"] = metadata.source_sha256
    adata.uns["metadata_json"] = json.dumps(metadata.as_record(), sort_keys=True)
    adata.uns["fcs_version"] = str(events.sample.version)
    adata.uns["spillover"] = events.spillover
    adata.uns["transform_scope"] = "sample" if batch_transforms is None else "batch"
    return adata, qc


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write an AnnData atomically (temporary name, then rename)."""
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)
