"""Spillover computed from single-stain controls, AutoSpill-style (Roca et al., Nat Commun 12:2890, 2021).

Controls are gated on scatter, each detector is regressed robustly on the control's primary detector, and the
matrix is refined on the compensated controls until the residual slopes vanish (the steps:
:func:`spillover_from_controls`). Written here because AutoSpill is an R package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import flowkit as fk
import numpy as np
import pandas as pd

from ...io.fcs import read_fcs
from ...io.tables import read_tsv, write_tsv
from ...numeric.robust_regression import robust_line
from .keywords import CompensationError, check_invertible

ControlSource = str | os.PathLike | fk.Sample | pd.DataFrame | np.ndarray
SCATTER_CHANNELS = ("FSC-A", "SSC-A")
_SATURATION_FRACTION = 0.995
_POSITIVE_QUANTILE = 99.5


@dataclass(frozen=True)
class SpilloverEstimate:
    """A spillover matrix estimated from single-stain controls.

    Attributes
    ----------
    detectors
        Primary detector of every control; rows (dyes) and columns (detectors) of the matrices, in this order.
    matrix
        (n_dyes, n_detectors) spillover fractions, diagonal 1.
    residual_slopes
        (n_dyes, n_detectors) slopes of every compensated detector on the compensated primary, diagonal 0, left
        after compensating the controls with ``matrix``.
    iterations
        Compensate-and-regress rounds used (round 1 is the initial estimate on uncompensated events).
    converged
        Whether max |residual slope| fell below the tolerance.
    max_slope_history
        Max |residual slope| of every round.
    positive_events
        (n_dyes,) positive events of each control used in the regression.
    """

    detectors: tuple[str, ...]
    matrix: np.ndarray
    residual_slopes: np.ndarray
    iterations: int
    converged: bool
    max_slope_history: tuple[float, ...]
    positive_events: np.ndarray


@dataclass(frozen=True)
class _Control:
    fluorescence: np.ndarray  # (n, d) raw values of the detectors, float64
    scatter: np.ndarray | None  # (n, 2) FSC-A, SSC-A
    saturation: np.ndarray  # (d,) values at or above which a detector is saturated


def spillover_from_controls(controls: Mapping[str, ControlSource], unstained: ControlSource,
                            detectors: Sequence[str] | None = None, *, tolerance: float = 1e-4,
                            max_iterations: int = 25, scatter_z: float | None = 3.0,
                            min_positive_events: int = 200, max_events: int = 10000) -> SpilloverEstimate:
    """Estimate the spillover matrix from single-stain controls, AutoSpill-style (see the module docstring).

    Parameters
    ----------
    controls
        Primary detector ($PnN) -> control: FCS path, flowkit Sample, DataFrame with $PnN columns, or an
        (n_events, n_detectors) array with columns in ``detectors`` order (no scatter gate then).
    unstained
        The unstained control, in any of the same forms.
    detectors
        Order of the matrix rows and columns; by default the order of ``controls``. Must name exactly the
        controls' detectors: every detector needs its own control.
    tolerance
        Stop when max |residual slope| is below this.
    scatter_z
        Half-width of the scatter gate in robust SDs of log FSC-A and log SSC-A; None for no scatter gate.
    min_positive_events
        Fewest positive events a control may have.
    max_events
        Most positive (and most negative) events of a control used in the regression.

    Raises
    ------
    CompensationError
        For a missing detector, a control without enough positive events, or a singular result.

    Algorithm
    ---------
    1. Every control (and the unstained control) is gated on scatter: events within ``scatter_z`` robust SDs of the
       median log FSC-A and log SSC-A, which drops doublets and debris. Events with any detector at saturation
       (>= 99.5 % of $PnR) are dropped.
    2. Positive events of a control are those above the unstained control's 99.5th percentile in the control's
       primary detector. The regression uses the positives plus as many of the control's own negative events (or
       unstained events, when the control has too few negatives) to anchor the autofluorescence intercept.
    3. Round 1 regresses every detector on the primary detector of the uncompensated events with a robust (Huber,
       iteratively reweighted least squares) line; the slopes are the initial spillover row of that dye.
    4. Every further round compensates the controls with the current matrix S, regresses every compensated detector
       on the compensated primary (the residual slopes R, zero diagonal), and refines S <- (I + R) S with each row
       rescaled to a diagonal of 1, until max |R| < ``tolerance`` or ``max_iterations`` rounds.
    """
    order = list(controls) if detectors is None else list(detectors)
    if sorted(order) != sorted(controls):
        raise CompensationError(f"single-stain controls: controls are given for {sorted(controls)} but the matrix "
                                f"detectors are {sorted(order)}. Give one control per detector.")
    blank = _gate(_load(unstained, order, "unstained control"), scatter_z)
    thresholds = np.percentile(blank, _POSITIVE_QUANTILE, axis=0)
    events, n_positive = [], []
    for i, detector in enumerate(order):
        control = _gate(_load(controls[detector], order, f"{detector} control"), scatter_z)
        selected, n_pos = _regression_events(control, blank, i, thresholds[i], min_positive=min_positive_events,
                                             max_events=max_events, what=_describe(controls[detector], detector))
        events.append(selected)
        n_positive.append(n_pos)
    matrix, slopes, history = _refine(events, tolerance, max_iterations)
    check_invertible(matrix, "single-stain controls")
    return SpilloverEstimate(tuple(order), matrix, slopes, len(history), history[-1] < tolerance, tuple(history),
                             np.array(n_positive))


def residual_slopes(events: Sequence[np.ndarray], matrix: np.ndarray) -> np.ndarray:
    """Robust slopes of every compensated detector on the compensated primary detector of each control.

    Parameters
    ----------
    events
        One (n_i, d) array of raw detector values per control; control i's primary detector is column i.
    matrix
        (d, d) spillover matrix used to compensate.

    Returns
    -------
    ndarray, shape (d, d)
        Row i: slopes for control i; diagonal 0.
    """
    slopes = np.zeros_like(matrix)
    for i, raw in enumerate(events):
        compensated = np.linalg.solve(matrix.T, raw.T).T
        slopes[i], _ = robust_line(compensated[:, i], compensated)
        slopes[i, i] = 0.0
    return slopes


def to_flowkit_matrix(estimate: SpilloverEstimate, detectors: Sequence[str] | None = None,
                      markers: Sequence[str | None] | None = None) -> fk.Matrix:
    """The estimate as a flowkit Matrix, reordered to ``detectors`` (default: the estimate's order).

    ``markers`` ($PnS, same order as ``detectors``) become the fluorochrome labels.
    """
    order = list(estimate.detectors) if detectors is None else list(detectors)
    if sorted(order) != sorted(estimate.detectors):
        raise CompensationError(f"single-stain controls: the estimated matrix covers {list(estimate.detectors)}, "
                                f"not {order}. Acquire a control for every detector of the samples.")
    index = [estimate.detectors.index(d) for d in order]
    labels = [m or "" for m in markers] if markers is not None else None
    return fk.Matrix(estimate.matrix[np.ix_(index, index)].copy(), order, labels)


def write_spillover_report(estimate: SpilloverEstimate, matrix_path_tsv: str | os.PathLike,
                           slopes_path_tsv: str | os.PathLike) -> None:
    """Write the matrix and its residual slopes as TSV.

    The matrix file has a ``dye`` column (the control's primary detector) and one column per detector, so
    :func:`cytotrial.preprocess.compensation.read_matrix_file` reads it back. The slopes file is long: ``dye``,
    ``detector``, ``spillover``, ``residual_slope``, one row per off-diagonal pair.
    """
    names = list(estimate.detectors)
    wide = pd.DataFrame(estimate.matrix, columns=names)
    wide.insert(0, "dye", names)
    write_tsv(wide, matrix_path_tsv)
    rows = [{"dye": dye, "detector": det, "spillover": estimate.matrix[i, j],
             "residual_slope": estimate.residual_slopes[i, j]}
            for i, dye in enumerate(names) for j, det in enumerate(names) if i != j]
    write_tsv(pd.DataFrame(rows), slopes_path_tsv)


def controls_from_manifest(manifest: str | os.PathLike) -> tuple[dict[str, Path], Path]:
    """Single-stain controls and the unstained control listed in a manifest TSV.

    The manifest has columns ``file`` (relative to the manifest's folder, or absolute), ``role`` (unstained or
    single_stain) and ``detector``, as :func:`cytotrial.simulate.controls.simulate_single_stain_controls` writes.
    """
    table = read_tsv(manifest, "compensation control manifest").fillna("")
    missing = {"file", "role", "detector"} - set(table.columns)
    if missing:
        raise CompensationError(f"{manifest}: the control manifest lacks column(s) {sorted(missing)}. It needs "
                                "file, role (unstained or single_stain) and detector.")
    folder = Path(manifest).parent
    unstained = table[table.role == "unstained"]
    if len(unstained) != 1:
        raise CompensationError(f"{manifest}: {len(unstained)} rows have role 'unstained'; exactly one is needed.")
    stained = table[table.role == "single_stain"]
    return ({r.detector: folder / r.file for r in stained.itertuples()}, folder / unstained.file.iloc[0])


def _refine(events: list[np.ndarray], tolerance: float, max_iterations: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Iterate compensate -> residual slopes -> S <- (I + R) S from S = I."""
    n = len(events)
    matrix = np.eye(n)
    history: list[float] = []
    for _ in range(max_iterations):
        slopes = residual_slopes(events, matrix)
        history.append(float(np.max(np.abs(slopes))))
        if history[-1] < tolerance:
            break
        matrix = (np.eye(n) + slopes) @ matrix
        matrix /= np.diag(matrix)[:, None]
    else:
        slopes = residual_slopes(events, matrix)
        history.append(float(np.max(np.abs(slopes))))
    return matrix, slopes, history


def _regression_events(values: np.ndarray, blank: np.ndarray, primary: int, threshold: float, *, min_positive: int,
                       max_events: int, what: str) -> tuple[np.ndarray, int]:
    """Positive events (n_pos, d) of a gated control plus as many negative ones (its own, else unstained)."""
    positive = values[values[:, primary] > threshold]
    if len(positive) < min_positive:
        raise CompensationError(f"{what}: only {len(positive)} events are brighter in its primary detector than "
                                f"99.5 % of the unstained control ({threshold:.4g}); at least {min_positive} are "
                                "needed. Check that the control is stained with the right dye, or use brighter "
                                "beads.")
    negative = values[values[:, primary] <= threshold]
    if len(negative) < min_positive:
        negative = blank
    positive, negative = _spread(positive, max_events), _spread(negative, min(len(positive), max_events))
    return np.vstack([positive, negative]), len(positive)


def _spread(values: np.ndarray, n: int) -> np.ndarray:
    """At most n rows of ``values``, evenly spaced (deterministic)."""
    if len(values) <= n:
        return values
    return values[np.linspace(0, len(values) - 1, n).astype(int)]


def _gate(control: _Control, scatter_z: float | None) -> np.ndarray:
    """Detector values of the unsaturated events within the scatter gate, shape (n_kept, d)."""
    keep = np.all(control.fluorescence < control.saturation, axis=1)
    if scatter_z is not None and control.scatter is not None:
        logs = np.log10(np.clip(control.scatter, 1.0, None))
        median = np.median(logs, axis=0)
        sd = 1.4826 * np.median(np.abs(logs - median), axis=0)
        keep &= np.all(np.abs(logs - median) <= scatter_z * np.maximum(sd, 1e-6), axis=1)
    return control.fluorescence[keep]


def _load(source: ControlSource, detectors: list[str], what: str) -> _Control:
    """Raw detector values, scatter and saturation levels of one control."""
    if isinstance(source, np.ndarray):
        if source.ndim != 2 or source.shape[1] != len(detectors):
            raise CompensationError(f"{what}: an array control must have shape (n_events, {len(detectors)}), "
                                    f"one column per detector in matrix order; it has {source.shape}.")
        values = source.astype(np.float64)
        return _Control(values, None, _SATURATION_FRACTION * values.max(axis=0))
    if isinstance(source, (str, os.PathLike)):
        what = f"{source} ({what})"
        source = read_fcs(source)
    elif isinstance(source, fk.Sample):
        what = f"{source.id} ({what})"
    if isinstance(source, fk.Sample):
        names = list(source.pnn_labels)
        frame = pd.DataFrame(source.get_events(source="raw"), columns=names)
        ranges = {n: float(source.channels.loc[i, "pnr"]) for i, n in enumerate(names)}
    else:
        frame, ranges = source, {}
    missing = [d for d in detectors if d not in frame.columns]
    if missing:
        raise CompensationError(f"{what}: no parameter named {missing} (it has {list(frame.columns)}). Acquire "
                                "the controls with the same detectors as the samples.")
    values = frame[detectors].to_numpy(np.float64)
    saturation = np.array([_SATURATION_FRACTION * ranges.get(d, values[:, j].max()) for j, d in enumerate(detectors)])
    has_scatter = set(SCATTER_CHANNELS) <= set(frame.columns)
    scatter = frame[list(SCATTER_CHANNELS)].to_numpy(np.float64) if has_scatter else None
    return _Control(values, scatter, saturation)


def _describe(source: ControlSource, detector: str) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"{source} ({detector} control)"
    return f"{detector} control"
