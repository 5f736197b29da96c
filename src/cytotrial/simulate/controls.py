"""Single-stain compensation controls acquired on the simulated cytometer.

One unstained control and one single-stained control per dye, through the same instrument as the trial samples
(:func:`instrument.detect_fluorescence`: spillover, photon and electronic noise, clipping at the detector range).

Kinds
-----
beads  compensation beads: tight scatter, about half the beads capture antibody and are bright in the dye's
       detector, the other half are negative; 2 % bead doublets.
cells  PBMC-like lymphocytes: cell autofluorescence, a minority (about 20 %) positive for the marker, brighter
       than in the trial panel as a good control should be; 5 % debris.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.fcs_writer import write_fcs
from ..io.tables import write_tsv
from . import instrument
from .acquisition import arrival_times
from .cells import AUTOFLUORESCENCE_SPECTRUM
from .trial import rng_for

KINDS = ("beads", "cells")
MANIFEST_NAME = "controls.tsv"
UNSTAINED_NAME = "unstained.fcs"
_AF_SPECTRUM = np.array([AUTOFLUORESCENCE_SPECTRUM[d.marker] for d in instrument.DETECTORS])


def simulate_single_stain_controls(out_dir: str | os.PathLike, events_per_control: int = 20000, seed: int = 20250303,
                                   kind: str = "beads") -> list[Path]:
    """Write the unstained and the 17 single-stained controls as FCS 3.1 files, plus a manifest.

    Files are ``unstained.fcs`` and ``<detector>.fcs`` (e.g. ``FITC-A.fcs``) under ``out_dir``, with the same
    channels as trial samples (FSC-A, FSC-H, SSC-A, SSC-H, 17 detectors, Time). The manifest ``controls.tsv`` has
    one row per file: ``file`` (relative to ``out_dir``), ``role`` (unstained or single_stain), ``detector``,
    ``dye``, ``marker`` (empty for the unstained control), ``kind`` and ``events``.

    Returns
    -------
    list of Path
        The FCS files, unstained control first, then the detectors in :data:`instrument.DETECTORS` order.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for index, detector in enumerate([None, *instrument.DETECTORS]):
        rng = rng_for(seed, 21, KINDS.index(kind), index)
        stained = None if detector is None else index - 1
        events = control_events(events_per_control, stained, kind, rng)
        name = UNSTAINED_NAME if detector is None else f"{detector.channel}.fcs"
        markers = [None] * 4 + [d.marker for d in instrument.DETECTORS] + [None]
        write_fcs(out / name, events, list(instrument.CHANNELS), markers, keywords=_keywords(name, detector, kind))
        paths.append(out / name)
        rows.append({"file": name, "role": "unstained" if detector is None else "single_stain",
                     "detector": "" if detector is None else detector.channel,
                     "dye": "" if detector is None else detector.channel.removesuffix("-A"),
                     "marker": "" if detector is None else detector.marker, "kind": kind, "events": len(events)})
    write_tsv(pd.DataFrame(rows), out / MANIFEST_NAME)
    return paths


def control_events(n_events: int, stained: int | None, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Raw events of one control, in :data:`instrument.CHANNELS` order.

    Parameters
    ----------
    stained
        Index into :data:`instrument.DETECTORS` of the dye, or None for the unstained control.

    Returns
    -------
    ndarray, shape (n_events, 22), float32
    """
    draw = _draw_beads if kind == "beads" else _draw_cells
    signal, area, height = draw(n_events, stained, rng)
    fluorescence = instrument.detect_fluorescence(signal, instrument.spillover_matrix(), rng,
                                                  instrument.NoiseModel(), gains=np.ones(len(instrument.DETECTORS)))
    scatter = np.column_stack([area[:, 0], height[:, 0], area[:, 1], height[:, 1]])
    scatter *= 1 + instrument.NoiseModel().scatter_cv * rng.standard_normal(scatter.shape)
    np.clip(scatter, 0, instrument.DETECTOR_RANGE - 1, out=scatter)
    time = np.floor(arrival_times(n_events, rng) / instrument.TIMESTEP_S)
    return np.column_stack([scatter, fluorescence, time]).astype(np.float32)


def _draw_beads(n: int, stained: int | None, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """True signal (n, 17), scatter area (n, 2) and height (n, 2) of capture beads, 2 % as doublets."""
    def singles(m: int) -> tuple[np.ndarray, np.ndarray]:
        signal = 30.0 * np.exp(0.2 * rng.standard_normal((m, 1))) * _AF_SPECTRUM[None, :]
        if stained is not None:
            positive = rng.random(m) < 0.5
            brightness = 40000.0 * np.exp(0.15 * rng.standard_normal(m))
            signal[:, stained] += np.where(positive, brightness, 0.0)
        area = np.array([60000.0, 20000.0]) * np.exp(rng.standard_normal((m, 2)) * np.array([0.03, 0.05]))
        return signal, area

    n_doublets = int(round(0.02 * n))
    signal, area = singles(n - n_doublets)
    first, second = singles(n_doublets), singles(n_doublets)
    height = np.vstack([area * 0.85, np.maximum(first[1], second[1]) * 0.85 * rng.uniform(1.0, 1.2, (n_doublets, 1))])
    signal = np.vstack([signal, first[0] + second[0]])
    area = np.vstack([area, first[1] + second[1]])
    order = rng.permutation(n)
    return signal[order], area[order], height[order]


def _draw_cells(n: int, stained: int | None, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """True signal (n, 17), scatter area (n, 2) and height (n, 2) of lymphocytes, 5 % debris."""
    n_debris = int(round(0.05 * n))
    n_cells = n - n_debris
    cell_af = 40.0 * np.exp(0.4 * rng.standard_normal((n_cells, 1))) * _AF_SPECTRUM[None, :]
    debris_af = 20.0 * np.exp(0.6 * rng.standard_normal((n_debris, 1))) * _AF_SPECTRUM[None, :]
    signal = np.vstack([cell_af, debris_af])
    if stained is not None:
        positive = rng.random(n_cells) < 0.2
        brightness = 15000.0 * np.exp(0.35 * rng.standard_normal(n_cells))
        signal[:n_cells, stained] += np.where(positive, brightness, 0.0)
    cells = np.array([55000.0, 14000.0]) * np.exp(rng.standard_normal((n_cells, 2)) * np.array([0.10, 0.18]))
    debris = np.array([9000.0, 5000.0]) * np.exp(rng.standard_normal((n_debris, 2)) * np.array([0.7, 0.9]))
    area = np.vstack([cells, debris])
    height = area * np.array([0.82, 0.86]) * (1 + 0.025 * rng.standard_normal(area.shape))
    order = rng.permutation(n)
    return signal[order], area[order], height[order]


def _keywords(name: str, detector: instrument.Detector | None, kind: str) -> dict[str, str]:
    tube = "Unstained Control" if detector is None else f"{detector.channel.removesuffix('-A')} Stained Control"
    keywords = {
        "$CYT": "LSRFortessa X-20", "$CYTSN": "R66020000017", "$TIMESTEP": f"{instrument.TIMESTEP_S}",
        "$DATE": dt.date(2025, 3, 3).strftime("%d-%b-%Y").upper(), "$FIL": name,
        "CREATOR": "cytotrial simulator (FACSDiva-like)", "TUBE NAME": tube,
        "EXPERIMENT NAME": f"Compensation controls ({kind})",
    }
    return {**keywords, **instrument.channel_keywords()}
