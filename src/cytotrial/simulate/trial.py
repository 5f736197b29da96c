"""The simulated trial: design, responders, weekly platelet counts and each sample's leukocyte composition.

Modelled on a phase I dose-escalation trial of UC-MSCs in refractory ITP: cohorts A (0.5 x10^6 cells/kg, 3
patients), B (1.0, 3), C (2.0, 6, expanded after a dose-limiting toxicity) and E (expansion at 2.0, 6); blood drawn
one day before the first infusion (D0) and at weeks 2, 4, 8, 12, 16 and 28; platelet counts weekly to week 28.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cells import LEAF_NAMES
from .variability import Variability, variability_from

VISIT_DAYS: dict[str, int] = {"D0": -1, "W2": 14, "W4": 28, "W8": 56, "W12": 84, "W16": 112, "W28": 196}
"""Study day of each blood draw; day 0 is the first infusion."""

COHORTS: tuple[tuple[str, float, int, int], ...] = (
    # (cohort, dose x10^6 cells/kg, patients, responders)
    ("A", 0.5, 3, 1),
    ("B", 1.0, 3, 1),
    ("C", 2.0, 6, 3),
    ("E", 2.0, 6, 3),
)
ENROLMENT_INTERVAL_DAYS = 14
FOLLOW_UP_WEEKS = 28

# Time course of the immune effect of the cells, as a fraction of its peak, by visit.
EFFECT_TIME_COURSE: dict[str, float] = {"D0": 0.0, "W2": 0.5, "W4": 0.9, "W8": 1.0, "W12": 1.0, "W16": 0.7, "W28": 0.4}


@dataclass(frozen=True)
class SimulationSettings:
    """Knobs of the demo trial (the ``demo:`` section of the workflow config)."""

    seed: int = 20261125
    events_per_sample: int = 200_000
    treg_rise_responders: float = 0.5
    treg_rise_nonresponders: float = 0.1
    drift_sd: float = 0.0
    missing_platelet_fraction: float = 0.04
    anomaly_probability: float = 0.1
    variability: str | dict = "none"  # a scenario of :mod:`cytotrial.simulate.variability`, or one with overrides

    @property
    def varied(self) -> Variability:
        """The variability model these settings name."""
        return variability_from(self.variability)


def trial_design(fcs_dir: str = "resources/demo/fcs", patients_per_cohort: int | None = None,
                 visits: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients and samples of the demo trial.

    Parameters
    ----------
    fcs_dir
        Folder the FCS files are written to (the ``fcs`` column of the sample sheet).
    patients_per_cohort
        Take only the first N patients of every cohort (tiny demos for tests); None keeps the full design.
    visits
        Visits to draw blood at; None keeps all seven.

    Returns
    -------
    patients : DataFrame
        patient_id, cohort, dose_1e6_per_kg, enrolment_day.
    samples : DataFrame
        sample_id, patient_id, visit, study_day, batch, fcs.
    """
    rows = []
    number = 0
    for cohort, dose, n_patients, _ in COHORTS:
        for k in range(n_patients):
            number += 1
            if patients_per_cohort is not None and k >= patients_per_cohort:
                continue
            rows.append({"patient_id": f"P{number:02d}", "cohort": cohort, "dose_1e6_per_kg": dose,
                         "enrolment_day": (number - 1) * ENROLMENT_INTERVAL_DAYS})
    patients = pd.DataFrame(rows)
    visit_names = list(VISIT_DAYS) if visits is None else visits
    unknown = [v for v in visit_names if v not in VISIT_DAYS]
    if unknown:
        raise ValueError(f"unknown visit(s) {unknown}; the demo trial has {list(VISIT_DAYS)}")
    samples = []
    for patient in patients.itertuples():
        for visit in visit_names:
            acquisition_day = patient.enrolment_day + VISIT_DAYS[visit]
            sample_id = f"{patient.patient_id}_{visit}"
            samples.append({"sample_id": sample_id, "patient_id": patient.patient_id, "visit": visit,
                            "study_day": VISIT_DAYS[visit],
                            # samples are acquired in weekly runs on the cytometer
                            "batch": f"run{(acquisition_day + 1) // 7:03d}",
                            "fcs": f"{fcs_dir}/{sample_id}.fcs"})
    return patients, pd.DataFrame(samples)


def patient_number(patient_id: str) -> int:
    return int(patient_id.lstrip("P"))


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible random stream for one purpose (e.g. one patient, one sample)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def assign_responses(patients: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Which patients respond, how, and when; the clinical truth of the demo trial.

    The number of responders per cohort follows :data:`COHORTS` (8 of 18 in the full design); among responders
    about a third reach complete response (>= 100 x10^9/L) and a quarter later lose response; among
    non-responders about a third receive rescue therapy and one has a single, unconfirmed high count.
    Patients are drawn from the full design so a subset (tiny demo) keeps each patient's truth. A patient beyond
    the design (a larger simulated trial) responds with its cohort's rate in the design, from a stream of its own.
    """
    full, _ = trial_design()
    rng = rng_for(seed, 1)
    truth = []
    rates = {cohort: n_responders / n for cohort, _, n, n_responders in COHORTS}
    extra = patients[~patients.patient_id.isin(full.patient_id)]
    unknown = sorted(set(extra.cohort) - set(rates))
    if unknown:
        raise ValueError(f"simulated patients of cohort(s) {unknown}: the simulator knows cohorts {sorted(rates)}")
    for cohort, _, _, n_responders in COHORTS:
        ids = full.loc[full.cohort == cohort, "patient_id"].tolist()
        responders = set(rng.choice(ids, size=n_responders, replace=False).tolist())
        beyond = extra.loc[extra.cohort == cohort, "patient_id"].tolist()
        responders |= {pid for pid in beyond if rng_for(seed, 9, patient_number(pid)).random() < rates[cohort]}
        for pid in ids + beyond:
            prng = rng_for(seed, 2, patient_number(pid))
            responder = pid in responders
            complete = responder and prng.random() < 0.4
            onset = int(prng.integers(2, 9)) if responder else None
            loss = int(min(onset + prng.integers(8, 14), FOLLOW_UP_WEEKS - 2)) if responder and prng.random() < 0.25 else None
            rescue = int(prng.integers(8, 20)) if not responder and prng.random() < 0.35 else None
            spike = int(prng.integers(4, 24)) if not responder and rescue is None and prng.random() < 0.3 else None
            truth.append({"patient_id": pid, "responder": responder,
                          "intended_response": "CR" if complete else ("R" if responder else "NR"),
                          "onset_week": onset, "loss_week": loss, "rescue_week": rescue, "single_spike_week": spike,
                          "baseline_platelets": round(float(prng.uniform(6, 28)), 0)})
    truth = pd.DataFrame(truth)
    return truth[truth.patient_id.isin(patients.patient_id)].reset_index(drop=True)


def platelet_counts(responses: pd.DataFrame, seed: int, missing_fraction: float) -> pd.DataFrame:
    """Weekly platelet counts (x10^9/L) from week 0 (start of treatment) to week 28 with rescue-therapy and bleeding
    flags (bleeding: on about a third of the counts below 20 outside a response, from a stream of its own)."""
    rows = []
    for p in responses.itertuples():
        rng = rng_for(seed, 3, patient_number(p.patient_id))
        bleeding_rng = rng_for(seed, 8, patient_number(p.patient_id))
        baseline = p.baseline_platelets
        threshold = max(30.0, 2 * baseline)
        for week in range(FOLLOW_UP_WEEKS + 1):
            value = baseline * np.exp(0.25 * rng.standard_normal())
            value = min(value, 0.85 * threshold)
            responding = p.responder and week >= p.onset_week and (pd.isna(p.loss_week) or week < p.loss_week)
            if week == 0:
                value = baseline
            elif responding and p.intended_response == "CR":
                value = max(105.0, rng.uniform(105, 260))
            elif responding:
                value = min(max(1.1 * threshold, rng.uniform(1.1 * threshold, 95.0)), 95.0)
            if not pd.isna(p.rescue_week) and p.rescue_week <= week < p.rescue_week + 3:
                value = rng.uniform(60, 160)
            if not pd.isna(p.single_spike_week) and week == p.single_spike_week:
                value = rng.uniform(threshold + 5, threshold + 40)
            # the single unconfirmed spike is never the missing count (drawn anyway: the other weeks keep their values)
            missing = week > 0 and rng.random() < missing_fraction and week != p.single_spike_week
            bleeds = bleeding_rng.random() < 1 / 3 and value < 20 and not responding
            rows.append({"patient_id": p.patient_id, "week": week, "study_day": 7 * week,
                         "platelets_1e9_per_L": None if missing else round(float(max(value, 1.0)), 0),
                         "rescue_therapy": int(not pd.isna(p.rescue_week) and week == p.rescue_week),
                         "bleeding": int(bleeds)})
    table = pd.DataFrame(rows)
    return table.dropna(subset=["platelets_1e9_per_L"]).reset_index(drop=True)


# Hierarchical composition of live leukocytes: each node splits into children with these baseline weights.
COMPOSITION_TREE: dict[str, dict[str, float]] = {
    "leukocytes": {"granulocytes": 0.59, "monocytes": 0.07, "lymphocytes": 0.34},
    "granulocytes": {"Neutrophil": 0.95, "Eosinophil": 0.05},
    "monocytes": {"Mono_classical": 0.84, "Mono_intermediate": 0.06, "Mono_nonclassical": 0.10},
    "lymphocytes": {"T": 0.70, "B": 0.12, "NK": 0.18},
    "T": {"CD4": 0.62, "CD8": 0.31, "T_DN": 0.07},
    "CD4": {"Treg": 0.040, "CD4_Tact": 0.03, "CD4_Tconv": 0.93},
    "Treg": {"Treg_naive": 0.25, "Treg_CM": 0.55, "Treg_EM": 0.20},
    "CD4_Tconv": {"CD4_Tconv_naive": 0.45, "CD4_Tconv_CM": 0.30, "CD4_Tconv_EM": 0.19, "CD4_Tconv_TEMRA": 0.06},
    "CD8": {"CD8_naive": 0.40, "CD8_CM": 0.10, "CD8_EM": 0.25, "CD8_TEMRA": 0.25},
    "B": {"B_naive": 0.62, "B_memory": 0.28, "Breg": 0.08, "Plasmablast": 0.02},
    "NK": {"NK_bright": 0.08, "NK_dim": 0.92},
}
VISIT_SD = 0.08  # within-patient, visit-to-visit log-SD


def leaf_fractions(patient_id: str, visit: str, responder: bool, dose: float,
                   *, settings: SimulationSettings) -> dict[str, float]:
    """Fraction of each leaf among live leukocytes for one sample.

    Branch weights vary between patients (``variability.patient_sd``) and, less, between visits. After dosing,
    Treg (share of CD4) rise by ``treg_rise_*`` x the effect time course, more at higher dose; Breg (share of B)
    rise by half as much. The variability model may make a patient lymphopenic or B-depleted, and a sample
    granulocyte-rich.
    """
    number = patient_number(patient_id)
    patient_rng = rng_for(settings.seed, 4, number)
    visit_rng = rng_for(settings.seed, 5, number, list(VISIT_DAYS).index(visit))
    amplitude = settings.treg_rise_responders if responder else settings.treg_rise_nonresponders
    effect = amplitude * EFFECT_TIME_COURSE[visit] * (0.8 + 0.1 * dose)
    factors = composition_factors(patient_id, visit, settings)
    fractions = {"leukocytes": 1.0}
    for node, children in COMPOSITION_TREE.items():
        names = list(children)
        weights = np.array([children[c] for c in names])
        weights = weights * np.exp(settings.varied.patient_sd * patient_rng.standard_normal(len(names)))
        weights = weights * np.exp(VISIT_SD * visit_rng.standard_normal(len(names)))
        weights = weights * np.array([factors.get(name, 1.0) for name in names])
        if node == "CD4":
            weights[names.index("Treg")] *= 1 + effect
        if node == "B":
            weights[names.index("Breg")] *= 1 + effect / 2
        for name, share in zip(names, weights / weights.sum(), strict=True):
            fractions[name] = fractions[node] * share
    return {leaf: fractions[leaf] for leaf in LEAF_NAMES}


def composition_factors(patient_id: str, visit: str, settings: SimulationSettings) -> dict[str, float]:
    """Multipliers of composition-tree branches for one sample: a lymphopenic or B-depleted patient (all
    visits), a granulocyte-rich sample. Empty without such variability."""
    varied = settings.varied
    number = patient_number(patient_id)
    patient_rng = rng_for(settings.seed, 22, number)
    sample_rng = rng_for(settings.seed, 23, number, list(VISIT_DAYS).index(visit))
    factors = {}
    draws = patient_rng.random(2), patient_rng.uniform(0, 1, 2)
    if draws[0][0] < varied.lymphopenia_probability:
        factors["lymphocytes"] = float(np.interp(draws[1][0], [0, 1], varied.lymphopenia_factor))
    if draws[0][1] < varied.b_depletion_probability:
        factors["B"] = float(np.interp(draws[1][1], [0, 1], varied.b_depletion_factor))
    if sample_rng.random() < varied.granulocyte_rich_probability:
        factors["granulocytes"] = float(sample_rng.uniform(*varied.granulocyte_rich_factor))
    return factors


def blood_count(patient_id: str, visit: str, seed: int, lymphocyte_fraction: float) -> dict[str, float]:
    """Leukocytes and lymphocytes per microlitre from the routine blood count drawn with the sample."""
    rng = rng_for(seed, 6, patient_number(patient_id), list(VISIT_DAYS).index(visit))
    wbc = 6500.0 * np.exp(0.2 * rng.standard_normal())
    return {"wbc_per_uL": round(wbc, 0), "lymphocytes_per_uL": round(wbc * lymphocyte_fraction, 0)}
