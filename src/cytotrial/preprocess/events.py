"""From one FCS file to compensated, transformed, quality-checked events in an AnnData (events x channels).

Steps: read -> find the panel's channels -> compensate (the configured matrix source) -> transform
(parameters fitted per acquisition batch, or per file) -> event QC (margins, flow rate, signal) -> de-identified
metadata.

Reading, compensation and transforms run on blocks of events (``io.fcs.FcsEventBlocks``, 8,192 events): each
block is decoded to float64, compensated and transformed there, and only the float32 results are kept, so a
file's float64 matrix is never held whole. The numbers are those of flowkit on the whole file: the same
spillover solve (by the matrix's inverse: the same values up to rounding) and flowkit's transforms (logicle
from a table of flowutils' own values, :mod:`cytotrial.preprocess.logicle`), so the float32 results are those
of flowkit, but for a rare unit in the last place of a compensated value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anndata as ad
import flowkit as fk
import numpy as np
import pandas as pd

from ..io.atomic import atomic_path
from ..io.deid import deidentify_keywords
from ..io.fcs import FcsEventBlocks, sha256_of
from ..io.panel import Panel
from .compensation import compensation_matrix
from .qc import QcResult, QcSettings, run_event_qc
from .transforms import channel_transform, fluorescence_transform, pooled_transform_parameters, scatter_transform


@dataclass(frozen=True)
class PanelChannels:
    """Where the panel's channels are in one file."""

    names: list[str]  # panel names: scatter channels, then markers
    channels: list[str]  # $PnN of each name
    columns: list[int]  # index of each channel among the file's parameters
    ranges: list[float]  # $PnR of each channel
    time_column: int


def locate_panel(fcs: FcsEventBlocks, panel: Panel) -> PanelChannels:
    """The panel's channels in ``fcs`` (PanelError naming the file and the missing marker if one is absent)."""
    by_name = panel.resolve(list(fcs.pnn_labels), list(fcs.pns_labels), str(fcs.path))
    names = [*panel.scatter, *panel.markers]
    channels = [by_name[n] for n in names]
    columns = [fcs.get_channel_index(c) for c in channels]
    return PanelChannels(names, channels, columns, [float(fcs.ranges[i]) for i in columns],
                         fcs.get_channel_index(by_name[panel.time]))


def spillover_record(matrix: fk.Matrix | None) -> dict:
    """The matrix used, as stored in the events' ``uns['spillover']`` ({} without compensation)."""
    return {} if matrix is None else {"detectors": list(matrix.detectors), "matrix": matrix.matrix.tolist()}


def iter_compensated(fcs: FcsEventBlocks, located: PanelChannels, matrix: fk.Matrix | None
                     ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first event index, compensated panel channels (float64, block x channels), time) per block of events.

    Compensation solves x S = y for the matrix's detectors of every event (S the spillover matrix, y the
    detectors' values), as flowkit's ``Matrix.apply`` does. Here S is inverted once per file (LAPACK getrf +
    getri; ``compensation_matrix`` has rejected singular and near-singular matrices) and each block is
    multiplied by one matrix that holds the inverse's columns for the panel's detectors and picks the other panel
    channels: one BLAS matrix product a block, no per-event triangular solve and no column copies. The values
    differ from flowkit's per-event solve by rounding only (on the 1M-event benchmark file: at most 1.5e-10 in
    values of ~1e2, one of 20 million float32 values one unit in the last place apart; tests bound both).
    """
    detectors = []
    if matrix is not None:  # from compensation_matrix, which checks that its detectors are the file's
        detectors = [fcs.get_channel_index(d) for d in matrix.detectors]
    # panel = block @ selection: a panel column that is a detector of the matrix is the detectors' values times
    # the inverse's column for it, any other (scatter) picks its own column
    selection = np.zeros((len(fcs.pnn_labels), len(located.columns)))
    inverse = np.linalg.inv(np.asarray(matrix.matrix, dtype=np.float64)) if detectors else None
    for k, column in enumerate(located.columns):
        if column in detectors:
            selection[detectors, k] = inverse[:, detectors.index(column)]
        else:
            selection[column, k] = 1.0
    # for blocks with a non-finite value (0 x inf is NaN): it must stay in its own column (and the detectors it
    # spills to), so the panel columns are picked and only the compensated ones multiplied
    compensated = [k for k, column in enumerate(located.columns) if column in detectors]
    detector_selection = selection[detectors][:, compensated]
    for start, block in fcs:
        if np.isfinite(block).all():
            panel = block @ selection
        else:
            panel = block[:, located.columns]
            if compensated:
                panel[:, compensated] = block[:, detectors] @ detector_selection
        yield start, panel, block[:, located.time_column]


@dataclass(frozen=True)
class CompensatedEvents:
    """The panel's channels of a whole file, compensated (linear units, float64)."""

    fcs: FcsEventBlocks
    names: list[str]
    channels: list[str]
    values: np.ndarray  # (n_events, n_names) float64
    ranges: list[float]
    time_s: np.ndarray  # (n_events,)
    spillover: dict  # the matrix used: detectors and values ({} without compensation)


def open_compensation(path: str | os.PathLike, panel: Panel, compensation: dict, matrix_path: str | None = None
                      ) -> tuple[FcsEventBlocks, PanelChannels, fk.Matrix | None]:
    """Open a file, find the panel's channels and the configured spillover matrix (nothing is read yet)."""
    fcs = FcsEventBlocks.open(path)
    located = locate_panel(fcs, panel)
    return fcs, located, compensation_matrix(fcs, compensation, str(path), matrix_path)


def read_compensated(path: str | os.PathLike, panel: Panel, compensation: dict,
                     matrix_path: str | None = None) -> CompensatedEvents:
    """All events of a file: the panel's channels compensated with the configured matrix, as float64."""
    fcs, located, matrix = open_compensation(path, panel, compensation, matrix_path)
    values = np.empty((fcs.event_count, len(located.columns)), dtype=np.float64)
    time_s = np.empty(fcs.event_count, dtype=np.float64)
    for start, block, time_block in iter_compensated(fcs, located, matrix):
        values[start:start + len(block)] = block
        time_s[start:start + len(block)] = time_block
    return CompensatedEvents(fcs, located.names, located.channels, values, located.ranges, time_s,
                             spillover_record(matrix))


def every_kth_event(path: str | os.PathLike, panel: Panel, compensation: dict, matrix_path: str | None,
                    *, max_events: int) -> tuple[PanelChannels, np.ndarray]:
    """Compensated panel channels of every k-th event, k = max(1, n // max_events), at most ``max_events``
    (``values[::k][:max_events]`` of :func:`read_compensated`, without holding the whole file)."""
    fcs, located, matrix = open_compensation(path, panel, compensation, matrix_path)
    step = max(1, fcs.event_count // max_events)
    last = step * max_events  # events from this index on are beyond max_events
    picked = []
    for start, block, _ in iter_compensated(fcs, located, matrix):
        first = -start % step
        picked.append(block[first:max(0, min(len(block), last - start)):step])
    values = np.concatenate(picked) if picked else np.empty((0, len(located.columns)))
    return located, values


def fit_batch_transforms(paths: list[str], panel: Panel, compensation: dict, transform: dict,
                         *, matrix_path: str | None = None, max_events_per_file: int = 50_000,
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
            located, subset = every_kth_event(path, panel, compensation, matrix_path, max_events=max_events_per_file)
        except BAD_FILE_ERRORS as err:
            if on_bad_file != "exclude":
                raise
            excluded.append({"file": os.path.basename(str(path)), "reason": str(err)})
            continue
        used += subset.shape[0]
        for j, name in enumerate(located.names):
            if name in pooled:
                pooled[name].append(subset[:, j])
                ranges[name] = located.ranges[j]
    if not ranges:  # every file of the batch is bad: they are all excluded when preprocessed
        return {"files": 0, "events_used": 0, "excluded": excluded, "markers": {}}
    values = {m: np.concatenate(v) for m, v in pooled.items()}
    return {"files": len(paths) - len(excluded), "events_used": used, "excluded": excluded,
            "markers": pooled_transform_parameters(values, ranges, transform)}


def transform_records(fcs: FcsEventBlocks, located: PanelChannels, matrix: fk.Matrix | None, panel: Panel,
                      *, transform: dict, batch_parameters: dict | None) -> list[dict]:
    """The transform of every panel channel, as recorded in the events' var table.

    Scatter: linear / $PnR. Fluorescence: the batch's parameters, or (``batch_parameters`` None) fitted on this
    file; a logicle W estimated from the data needs one pass over the file for the negative values.
    """
    markers = [j for j, name in enumerate(located.names) if name not in panel.scatter]
    negatives: dict[int, list[np.ndarray]] = {j: [] for j in markers}
    needs_data = batch_parameters is None and transform.get("fluorescence", "logicle") == "logicle" \
        and transform.get("logicle_w", "estimate") == "estimate"
    if needs_data:
        for _, block, _ in iter_compensated(fcs, located, matrix):
            for j in markers:
                negatives[j].append(block[block[:, j] < 0, j])
    records = []
    for j, (name, channel) in enumerate(zip(located.names, located.channels, strict=True)):
        t = located.ranges[j]
        if name in panel.scatter:
            params = scatter_transform(t)[1]
        elif batch_parameters is not None:
            params = batch_parameters[name]
        else:
            values = np.concatenate(negatives[j]) if negatives[j] else np.empty(0)
            params = fluorescence_transform(values, t, transform)[1]  # W depends on the negative values only
        records.append({"channel": channel, "marker": "" if name in panel.scatter else name,
                        "kind": "scatter" if name in panel.scatter else "fluorescence", "range": t, **params})
    return records


@dataclass
class EventArrays:
    """One file's events after compensation and transforms (float32), and the acquisition time."""

    transformed: np.ndarray  # (n_events, n_channels) float32, gating units
    compensated: np.ndarray  # (n_events, n_channels) float32, linear
    time_s: np.ndarray  # (n_events,) float64


def transform_events(fcs: FcsEventBlocks, located: PanelChannels, matrix: fk.Matrix | None,
                     records: list[dict]) -> EventArrays:
    """Compensate and transform every block of the file; keep float32 results only."""
    n, k = fcs.event_count, len(located.columns)
    out = EventArrays(np.empty((n, k), dtype=np.float32), np.empty((n, k), dtype=np.float32),
                      np.empty(n, dtype=np.float64))
    transforms: list[Callable[[np.ndarray, np.ndarray], None]] = [channel_transform(r) for r in records]
    for start, block, time_block in iter_compensated(fcs, located, matrix):
        stop = start + len(block)
        out.compensated[start:stop] = block
        out.time_s[start:stop] = time_block
        transformed = out.transformed[start:stop]
        for j, apply_into in enumerate(transforms):  # each column written in place, float64 -> float32
            apply_into(block[:, j], transformed[:, j])
    return out


def preprocess_fcs(path: str | os.PathLike, sample_id: str, panel: Panel, settings: dict,
                   *, study_day: int | None = None, batch_transforms: dict | None = None,
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
        The event QC of the file (margins measured on the stored float32 compensated values).
    """
    fcs, located, matrix = open_compensation(path, panel, settings.get("compensation", {"source": "file"}),
                                             matrix_path)
    batch_parameters = None if batch_transforms is None else batch_transforms["markers"]
    records = transform_records(fcs, located, matrix, panel, transform=settings.get("transform", {}),
                                batch_parameters=batch_parameters)
    events = transform_events(fcs, located, matrix, records)
    var = pd.DataFrame(records).set_index("channel", drop=False)
    var.index.name = None
    qc = run_event_qc(events.time_s, events.transformed, located.channels, np.array(located.ranges),
                      fluorescence_idx=var["kind"].to_numpy() == "fluorescence",
                      settings=QcSettings.from_dict(settings.get("qc", {})), linear=events.compensated)
    return assemble_anndata(events, qc, var, fcs, matrix=matrix, sample_id=sample_id, study_day=study_day,
                            settings=settings, scope="sample" if batch_transforms is None else "batch"), qc


def assemble_anndata(events: EventArrays, qc: QcResult, var: pd.DataFrame, fcs: FcsEventBlocks,
                     *, matrix: fk.Matrix | None, sample_id: str, study_day: int | None, settings: dict,
                     scope: str) -> ad.AnnData:
    """The events' AnnData (see :func:`preprocess_fcs`), with de-identified metadata."""
    n = len(events.time_s)  # names '0', '1', ... made one at a time (RangeIndex.astype(str) peaks at 1.6x)
    obs = pd.DataFrame({"time_s": events.time_s, "qc_keep": qc.keep},
                       index=pd.Index(np.fromiter(map(str, range(n)), dtype=object, count=n)))
    adata = ad.AnnData(X=events.transformed, obs=obs, var=var, layers={"compensated": events.compensated})
    deid_settings = settings.get("deidentification", {})
    metadata = deidentify_keywords(fcs.metadata, study_day, sha256_of(fcs.path),
                                   keep_instrument_serial=deid_settings.get("keep_instrument_serial", False),
                                   extra_whitelist=deid_settings.get("extra_whitelist"))
    adata.uns["sample_id"] = sample_id
    adata.uns["source_sha256"] = metadata.source_sha256
    adata.uns["metadata_json"] = json.dumps(metadata.as_record(), sort_keys=True)
    adata.uns["fcs_version"] = str(fcs.version)
    adata.uns["spillover"] = spillover_record(matrix)
    adata.uns["transform_scope"] = scope
    return adata


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write an AnnData atomically (temporary name, then rename)."""
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)
