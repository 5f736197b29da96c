"""Generate the demo trial: one FCS file per sample, its ground truth, and the clinical tables."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_path
from ..io.fcs_writer import write_fcs
from ..io.tables import write_tsv
from . import cells, instrument
from .acquisition import apply_anomaly, arrival_times, draw_anomaly
from .trial import (VISIT_DAYS, SimulationSettings, assign_responses, blood_count, leaf_fractions, patient_number,
                    platelet_counts, rng_for)
from .truth import true_frequencies
from .variability import Variability, variability_from

log = logging.getLogger(__name__)

TRIAL_START = dt.date(2025, 3, 3)


@dataclass(frozen=True)
class SampleSpec:
    """Everything needed to generate one sample, picklable for worker processes."""

    sample_id: str
    patient_id: str
    visit: str
    batch: str
    enrolment_day: int
    dose: float
    responder: bool
    fcs: str
    truth_dir: str


def _artefact_counts(n_total: int, rng: np.random.Generator, varied: Variability) -> tuple[int, int, int, int, int]:
    """Events of each kind: debris, doublets, dead cells, non-leukocytes and live leukocytes."""
    shares = [rng.uniform(*varied.debris_share), rng.uniform(0.03, 0.06), rng.uniform(*varied.dead_share),
              rng.uniform(0.01, 0.03)]
    n = rng.multinomial(n_total, [*shares, 1 - sum(shares)])
    return tuple(int(v) for v in n)


def _heights(area: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pulse heights of single events: a fixed fraction of the area, as for a fixed pulse width."""
    ratio = np.array([0.82, 0.86]) * (1 + 0.025 * rng.standard_normal(area.shape))
    return area * ratio


def simulate_events(spec: SampleSpec, settings: SimulationSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Raw events of one sample, in :data:`instrument.CHANNELS` order, their label codes and anomaly truth.

    Returns
    -------
    events : ndarray, shape (n_events, 22), float32
    labels : ndarray, shape (n_events,), uint8
        Codes into :data:`cells.ALL_LABELS`.
    in_anomaly : ndarray, shape (n_events,), bool
        Events acquired during a disturbance (clog, signal shift), see :mod:`.acquisition`.
    kind : str
        The disturbance ('clog', 'signal_shift'), or '' for none.
    """
    number = patient_number(spec.patient_id)
    visit_index = list(VISIT_DAYS).index(spec.visit)
    rng = rng_for(settings.seed, 7, number, visit_index)
    varied = settings.varied
    fractions = leaf_fractions(spec.patient_id, spec.visit, spec.responder, spec.dose, settings=settings)
    p = np.array([fractions[name] for name in cells.LEAF_NAMES])
    n_total = int(round(settings.events_per_sample * rng.uniform(0.95, 1.05) *
                        short_acquisition_fraction(settings, number, visit_index)))
    n_debris, n_doublets, n_dead, n_nonleukocytes, n_cells = _artefact_counts(n_total, rng, varied)
    phenotypes = lab_phenotypes(settings)
    staining = batch_staining(spec.batch, settings)

    def draw(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cells.draw_cells(codes, rng, phenotypes, staining)

    live_codes = rng.choice(len(p), size=n_cells, p=p)
    live_signal, live_area = draw(live_codes)
    dead_signal, dead_area = cells.kill_cells(*draw(rng.choice(len(p), size=n_dead, p=p)), rng)
    first = draw(rng.choice(len(p), size=n_doublets, p=p))
    second = draw(rng.choice(len(p), size=n_doublets, p=p))
    debris_signal, debris_area = cells.draw_debris(n_debris, rng)
    other_signal, other_area = cells.draw_nonleukocytes(n_nonleukocytes, rng)

    single_area = np.vstack([live_area, dead_area, debris_area, other_area])
    doublet_area = first[1] + second[1]
    doublet_height = np.maximum(_heights(first[1], rng), _heights(second[1], rng)) * rng.uniform(1.0, 1.2, (n_doublets, 1))
    area = np.vstack([single_area, doublet_area])
    height = np.vstack([_heights(single_area, rng), doublet_height])
    signal = np.vstack([live_signal, dead_signal, debris_signal, other_signal, first[0] + second[0]])
    labels = np.concatenate([live_codes,
                             np.full(n_dead, cells.LABEL_CODE["dead"]),
                             np.full(n_debris, cells.LABEL_CODE["debris"]),
                             np.full(n_nonleukocytes, cells.LABEL_CODE["nonleukocyte"]),
                             np.full(n_doublets, cells.LABEL_CODE["doublet"])]).astype(np.uint8)

    order = rng.permutation(labels.size)
    anomaly_rng = rng_for(settings.seed, 10, number, visit_index)
    probability = settings.anomaly_probability if varied.anomaly_probability is None else varied.anomaly_probability
    anomaly = draw_anomaly(anomaly_rng, probability)
    acquisition = apply_anomaly(arrival_times(labels.size, rng), anomaly, anomaly_rng)
    order = order[acquisition["keep"]]
    fluorescence_gains, scatter_gains = batch_gains(spec.batch, settings)
    fluorescence = instrument.detect_fluorescence(signal[order] * acquisition["fluorescence_factor"][:, None],
                                                  instrument.spillover_matrix(), rng, instrument.NoiseModel(),
                                                  gains=fluorescence_gains)
    scatter = np.column_stack([area[order, 0], height[order, 0], area[order, 1], height[order, 1]])
    scatter = scatter * acquisition["scatter_factor"][:, None] * np.repeat(scatter_gains, 2)
    scatter = scatter * (1 + 0.01 * rng.standard_normal(scatter.shape))
    np.clip(scatter, 0, instrument.DETECTOR_RANGE - 1, out=scatter)
    time = np.floor(acquisition["seconds"] / instrument.TIMESTEP_S)
    events = np.column_stack([scatter, fluorescence, time]).astype(np.float32)
    return events, labels[order], acquisition["in_anomaly"], "" if anomaly is None else anomaly.kind


def batch_gains(batch: str, settings: SimulationSettings) -> tuple[np.ndarray, np.ndarray]:
    """Detector gains (17) and FSC, SSC gains (2) of one acquisition run: 1.0 unless instrument drift between
    days (``drift_sd``) or day-to-day shifts (the variability's ``detector_gain``, ``scatter_gain``) are
    simulated."""
    n = len(instrument.DETECTORS)
    varied = settings.varied
    if settings.drift_sd > 0:
        rng = rng_for(settings.seed, 8, _batch_digest(batch))
        return np.exp(settings.drift_sd * rng.standard_normal(n)), np.exp(settings.drift_sd / 2 * rng.standard_normal(2))
    if varied.shifts_days:
        rng = rng_for(settings.seed, 21, _batch_digest(batch))
        return rng.uniform(*varied.detector_gain, n), rng.uniform(*varied.scatter_gain, 2)
    return np.ones(n), np.ones(2)


def batch_staining(batch: str, settings: SimulationSettings) -> np.ndarray | None:
    """Staining strength of each marker on one acquisition run (None: all 1)."""
    varied = settings.varied
    if not varied.shifts_days:
        return None
    rng = rng_for(settings.seed, 24, _batch_digest(batch))
    ranges = [varied.staining_by_marker.get(marker, varied.staining) for marker in instrument.MARKERS]
    return np.array([rng.uniform(*r) for r in ranges])


def _batch_digest(batch: str) -> int:
    return int(hashlib.sha256(batch.encode()).hexdigest()[:8], 16)


def short_acquisition_fraction(settings: SimulationSettings, patient: int, visit_index: int) -> float:
    """The share of the planned events a sample was acquired with: below 1 when the acquisition stopped early."""
    varied = settings.varied
    if varied.short_file_probability <= 0:
        return 1.0
    rng = rng_for(settings.seed, 25, patient, visit_index)
    return float(rng.uniform(*varied.short_file_fraction)) if rng.random() < varied.short_file_probability else 1.0


@functools.lru_cache(maxsize=4)
def _lab_phenotypes(seed: int, variability: str) -> cells.Phenotypes:
    return cells.lab_phenotypes(variability_from(json.loads(variability)), rng_for(seed, 20))


def lab_phenotypes(settings: SimulationSettings) -> cells.Phenotypes:
    """The simulated lab's phenotypes (the same for every sample of a seed and variability)."""
    return _lab_phenotypes(settings.seed, json.dumps(settings.variability, sort_keys=True))


def run_spillover(batch: str, settings: SimulationSettings) -> np.ndarray:
    """The spillover matrix the instrument measures on an acquisition run: with detector gains g, a dye's
    spillover into detector j relative to its own detector i is S_ij x g_j / g_i (the run's compensation
    controls see the drifted gains; diagonal stays 1)."""
    gains, _ = batch_gains(batch, settings)
    return np.round(instrument.spillover_matrix() * gains[None, :] / gains[:, None], 4)


def fcs_keywords(spec: SampleSpec, n_events: int, duration_s: float, settings: SimulationSettings) -> dict[str, str]:
    """TEXT keywords as BD FACSDiva writes them, including the identifying ones a de-identifier must remove."""
    seed = settings.seed
    acquired = TRIAL_START + dt.timedelta(days=spec.enrolment_day + VISIT_DAYS[spec.visit])
    rng = rng_for(seed, 9, patient_number(spec.patient_id))
    mrn = f"MRN{rng.integers(10**6, 10**7)}"
    initials = "".join(chr(ord("A") + int(i)) for i in rng.integers(0, 26, 2))
    begin = dt.datetime.combine(acquired, dt.time(9, 30)) + dt.timedelta(minutes=7 * patient_number(spec.patient_id))
    end = begin + dt.timedelta(seconds=int(duration_s) + 1)
    keywords = {
        "$CYT": "LSRFortessa X-20", "$CYTSN": "R66020000017", "$DATE": acquired.strftime("%d-%b-%Y").upper(),
        "$BTIM": begin.strftime("%H:%M:%S"), "$ETIM": end.strftime("%H:%M:%S"),
        "$SRC": f"{initials} {mrn}", "$FIL": f"{acquired:%Y%m%d}_{initials}_{spec.visit}.fcs",
        "$OP": "Synthetic Operator", "$INST": "Synthetic University Hospital Flow Core",
        "$EXP": "Dr Synthetic Investigator", "$PROJ": "UC-MSC ITP phase I", "$SMNO": f"{mrn}-{spec.visit}",
        "$COM": "synthetic data written by the cytotrial simulator", "$TIMESTEP": f"{instrument.TIMESTEP_S}",
        "$SPILLOVER": instrument.spillover_keyword(run_spillover(spec.batch, settings)),
        "CREATOR": "cytotrial simulator (FACSDiva-like)", "PATIENT ID": mrn, "SAMPLE ID": f"{initials}-{spec.visit}",
        "EXPERIMENT NAME": "ITP UC-MSC immune monitoring", "TUBE NAME": "Treg-B-NK 17c",
        "CASE NUMBER": f"{rng.integers(1000, 9999)}",
    }
    return {**keywords, **instrument.channel_keywords()}


def simulate_sample(spec: SampleSpec, settings: SimulationSettings) -> tuple[pd.DataFrame, dict]:
    """Write one sample's FCS file, per-event labels and anomaly truth.

    Returns the sample's true population frequencies and a row for the anomaly truth table.
    """
    events, labels, in_anomaly, kind = simulate_events(spec, settings)
    duration = float(events[-1, -1]) * instrument.TIMESTEP_S
    markers = [None] * 4 + [d.marker for d in instrument.DETECTORS] + [None]
    write_fcs(spec.fcs, events, list(instrument.CHANNELS), markers,
              keywords=fcs_keywords(spec, len(events), duration, settings))
    truth_dir = Path(spec.truth_dir)
    with atomic_path(truth_dir / f"{spec.sample_id}.labels.npy", suffix=".npy") as tmp:
        np.save(tmp, labels)
    with atomic_path(truth_dir / f"{spec.sample_id}.anomaly.npy", suffix=".npy") as tmp:
        np.save(tmp, in_anomaly)
    time_s = events[:, -1].astype(float) * instrument.TIMESTEP_S
    anomaly = {"sample_id": spec.sample_id, "events": int(labels.size), "kind": kind,
               "events_in_anomaly": int(in_anomaly.sum()),
               "start_s": float(time_s[in_anomaly].min()) if in_anomaly.any() else None,
               "end_s": float(time_s[in_anomaly].max()) if in_anomaly.any() else None}
    return true_frequencies(labels, spec.sample_id), anomaly


def _simulate_sample_args(args: tuple[SampleSpec, SimulationSettings]) -> tuple[pd.DataFrame, dict]:
    return simulate_sample(*args)


def simulate_trial(patients: pd.DataFrame, samples: pd.DataFrame, out_dir: str | os.PathLike,
                   settings: SimulationSettings, *, workers: int = 1) -> None:
    """Generate every sample of the sample sheet plus truth and clinical tables under ``out_dir``.

    Writes ``fcs`` paths from the sample sheet, and under ``out_dir``: truth/{sample}.labels.npy,
    truth/{sample}.anomaly.npy, truth/labels.tsv, truth/frequencies.tsv, truth/anomalies.tsv (acquisition
    disturbances), truth/patients.tsv, clinical/platelets.tsv and
    clinical/blood_counts.tsv. The result does not depend on ``workers``.
    """
    out = Path(out_dir)
    responses = assign_responses(patients, settings.seed)
    merged = samples.merge(patients, on="patient_id", validate="many_to_one").merge(
        responses[["patient_id", "responder"]], on="patient_id", validate="many_to_one")
    if len(merged) != len(samples):
        lost = sorted(set(samples.sample_id) - set(merged.sample_id))
        raise ValueError(f"simulate: {len(lost)} sample(s) of patients missing from the patient table, e.g. "
                         f"{lost[:3]}; add the patients (patient_id, cohort, dose_1e6_per_kg, enrolment_day)")
    specs = [SampleSpec(r.sample_id, r.patient_id, r.visit, r.batch, int(r.enrolment_day), float(r.dose_1e6_per_kg),
                        bool(r.responder), r.fcs, str(out / "truth")) for r in merged.itertuples()]
    jobs = [(spec, settings) for spec in specs]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_simulate_sample_args, jobs, chunksize=1))
    else:
        results = [_simulate_sample_args(job) for job in jobs]
    log.info("wrote %d FCS files", len(specs))

    (out / "truth").mkdir(parents=True, exist_ok=True)
    (out / "clinical").mkdir(parents=True, exist_ok=True)
    write_tsv(pd.DataFrame({"code": range(len(cells.ALL_LABELS)), "label": cells.ALL_LABELS}),
              out / "truth" / "labels.tsv")
    truth = pd.concat([frequencies for frequencies, _ in results], ignore_index=True)
    write_tsv(truth, out / "truth" / "frequencies.tsv")
    write_tsv(pd.DataFrame([anomaly for _, anomaly in results]), out / "truth" / "anomalies.tsv")
    write_tsv(responses, out / "truth" / "patients.tsv")
    write_tsv(platelet_counts(responses, settings.seed, settings.missing_platelet_fraction),
              out / "clinical" / "platelets.tsv")
    lymphocyte_fraction = truth[truth.population == "lymphocytes"].set_index("sample_id")["percent_of_parent"] / 100
    counts = [{"sample_id": s.sample_id, **blood_count(s.patient_id, s.visit, settings.seed,
                                                        float(lymphocyte_fraction[s.sample_id]))} for s in specs]
    write_tsv(pd.DataFrame(counts), out / "clinical" / "blood_counts.tsv")

