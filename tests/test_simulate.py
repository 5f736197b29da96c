"""The demo-trial simulator: design, truth, FCS files and clinical tables."""

from __future__ import annotations

import filecmp

import flowio
import flowkit as fk
import numpy as np
import pandas as pd
import pytest

from cytotrial.preprocess.compensation import parse_spill_text
from cytotrial.io.tables import read_tsv
from cytotrial.simulate import cells, instrument
from cytotrial.simulate.run import SampleSpec, simulate_events, simulate_trial
from cytotrial.simulate.trial import (COHORTS, SimulationSettings, assign_responses, leaf_fractions,
                                      platelet_counts, trial_design)
from cytotrial.simulate.truth import true_frequencies

from .conftest import REPO


def test_design_matches_the_seed_trial():
    patients, samples = trial_design()
    assert len(patients) == 18 and len(samples) == 126
    assert patients.groupby("cohort").size().to_dict() == {"A": 3, "B": 3, "C": 6, "E": 6}
    assert dict(zip(patients.cohort, patients.dose_1e6_per_kg)) == {"A": 0.5, "B": 1.0, "C": 2.0, "E": 2.0}
    assert list(samples.visit.unique()) == ["D0", "W2", "W4", "W8", "W12", "W16", "W28"]
    assert samples.sample_id.is_unique


def test_committed_demo_sheets_equal_the_design():
    patients, samples = trial_design()
    committed_samples = read_tsv(REPO / "config" / "samples.tsv", "sample sheet")
    committed_patients = read_tsv(REPO / "config" / "patients.tsv", "patient table")
    pd.testing.assert_frame_equal(committed_samples, samples, check_dtype=False)
    pd.testing.assert_frame_equal(committed_patients, patients, check_dtype=False)


def test_eight_of_eighteen_respond_more_at_higher_dose():
    patients, _ = trial_design()
    responses = assign_responses(patients, seed=SimulationSettings.seed)
    assert responses.responder.sum() == sum(c[3] for c in COHORTS) == 8
    rate = responses.merge(patients).groupby("dose_1e6_per_kg").responder.mean()
    assert rate[2.0] > rate[0.5]


def test_platelet_counts_follow_the_intended_response():
    patients, _ = trial_design()
    responses = assign_responses(patients, seed=1)
    counts = platelet_counts(responses, seed=1, missing_fraction=0.0)
    assert counts.week.max() == 28 and counts.groupby("patient_id").size().eq(29).all()
    baseline = counts[counts.week == 0].set_index("patient_id").platelets_1e9_per_L
    assert (baseline < 30).all()
    peak = counts.groupby("patient_id").platelets_1e9_per_L.max()
    for r in responses.itertuples():
        threshold = max(30, 2 * baseline[r.patient_id])
        if r.intended_response == "CR":
            assert peak[r.patient_id] >= 100
        if r.responder:
            weeks = counts[(counts.patient_id == r.patient_id) & (counts.platelets_1e9_per_L >= threshold)].week
            assert len(weeks) >= 2  # at least two qualifying counts, as IWG confirmation needs
    assert counts.rescue_therapy.sum() == responses.rescue_week.notna().sum() > 0


def test_missing_platelet_weeks_are_dropped_but_never_baseline():
    patients, _ = trial_design()
    counts = platelet_counts(assign_responses(patients, seed=3), seed=3, missing_fraction=0.2)
    assert counts[counts.week == 0].patient_id.nunique() == 18
    assert len(counts) < 18 * 29


def test_treg_rise_in_responders_after_dosing():
    settings = SimulationSettings()
    def treg_share(responder, visit):
        f = leaf_fractions("P07", visit, responder, 2.0, settings=settings)
        treg = sum(f[n] for n in ("Treg_naive", "Treg_CM", "Treg_EM"))
        cd4 = sum(v for k, v in f.items() if k.startswith(("CD4_", "Treg_")))
        return treg / cd4
    responder_rise = treg_share(True, "W8") / treg_share(True, "D0")
    non_responder_rise = treg_share(False, "W8") / treg_share(False, "D0")
    assert responder_rise > 1.3
    assert responder_rise > non_responder_rise


# Truth populations written out by hand from the leaf names of the labels legend (truth/labels.tsv), not taken from
# cytotrial.simulate.truth: population -> (parent, leaves).
CD4_LEAVES = ["CD4_Tconv_naive", "CD4_Tconv_CM", "CD4_Tconv_EM", "CD4_Tconv_TEMRA", "CD4_Tact",
              "Treg_naive", "Treg_CM", "Treg_EM"]
CD8_LEAVES = ["CD8_naive", "CD8_CM", "CD8_EM", "CD8_TEMRA"]
B_LEAVES = ["B_naive", "B_memory", "Breg", "Plasmablast"]
T_LEAVES = CD4_LEAVES + CD8_LEAVES + ["T_DN"]
LEUKOCYTE_LEAVES = T_LEAVES + B_LEAVES + ["NK_dim", "NK_bright", "Mono_classical", "Mono_intermediate",
                                          "Mono_nonclassical", "Neutrophil", "Eosinophil"]
HAND_TRUTH = {
    "cells": (None, LEUKOCYTE_LEAVES + ["doublet", "dead", "nonleukocyte"]),  # all but debris
    "singlets": ("cells", LEUKOCYTE_LEAVES + ["dead", "nonleukocyte"]),
    "live": ("singlets", LEUKOCYTE_LEAVES + ["nonleukocyte"]),
    "leukocytes": ("live", LEUKOCYTE_LEAVES),
    "lymphocytes": ("leukocytes", T_LEAVES + B_LEAVES + ["NK_dim", "NK_bright"]),
    "T": ("lymphocytes", T_LEAVES),
    "CD4": ("T", CD4_LEAVES),
    "CD8": ("T", CD8_LEAVES),
    "Treg": ("CD4", ["Treg_naive", "Treg_CM", "Treg_EM"]),
    "B": ("lymphocytes", B_LEAVES),
    "NK": ("lymphocytes", ["NK_dim", "NK_bright"]),
}
# Median compensated intensity of truth-labelled events, worked by hand from the simulator's configuration
# (cells.LEAVES phenotype words x cells.LEVELS x cells.MARKER_POSITIVE_LEVEL; variability 'none', lognormal cells
# whose median is the level): (leaves, marker) -> median.
TREG = ["Treg_naive", "Treg_CM", "Treg_EM"]
POSITIVE_MEDIANS = [
    (TREG, "FOXP3", 3000.0),           # FOXP3 '+': 1 x 3000
    (TREG, "CD25", 7500.0),            # CD25 'hi': 3 x 2500
    (TREG, "CD127", 450.0),            # CD127 'lo': 0.15 x 3000
    (TREG, "CD4", 6000.0),             # CD4 '+': 6000
    (["CD4_Tconv_naive"], "CD127", 3000.0),
    (CD8_LEAVES, "CD8", 12000.0),
    (T_LEAVES, "CD3", 8000.0),
    (B_LEAVES, "CD19", 6000.0),
]
NEGATIVE = [(["CD4_Tconv_naive"], "FOXP3"), (["CD4_Tconv_naive"], "CD25"), (CD8_LEAVES, "CD4"), (CD4_LEAVES, "CD8"),
            (B_LEAVES, "CD3"), (T_LEAVES, "CD19")]  # '-': autofluorescence and spillover residue only


def _flowio_compensated(path) -> tuple[np.ndarray, dict[str, int], dict]:
    """Events read by flowio (unscaled) and compensated with numpy by the file's own $SPILLOVER; marker -> column."""
    data = flowio.FlowData(str(path))
    raw = data.as_array(preprocess=False)
    fields = data.text["spillover"].split(",")
    n = int(fields[0])
    detectors, spill = fields[1:1 + n], np.array(fields[1 + n:], dtype=float).reshape(n, n)
    columns = [data.pnn_labels.index(d) for d in detectors]
    compensated = np.linalg.solve(spill.T, raw[:, columns].T).T  # observed = true @ spill
    return compensated, {data.pns_labels[c]: j for j, c in enumerate(columns)}, data.text


def test_truth_labels_describe_the_events_of_the_file(small_trial):
    """The truth of one file, checked against the file itself read by flowio: as many labels as $TOT events, and
    the events labelled Treg are CD4+ CD25hi CD127lo FOXP3+ in the raw data, at the levels the configuration
    gives (and so on for CD4, CD8, T and B cells)."""
    row = small_trial["samples"].iloc[0]
    labels = np.load(small_trial["dir"] / "truth" / f"{row.sample_id}.labels.npy")
    legend = read_tsv(small_trial["dir"] / "truth" / "labels.tsv", "labels").set_index("label")["code"]
    compensated, column, text = _flowio_compensated(row.fcs)
    assert labels.shape == (int(text["tot"]),) == (compensated.shape[0],)

    def medians(leaves, marker):
        events = np.isin(labels, legend[leaves].to_numpy())
        assert events.sum() >= 50, leaves
        return float(np.median(compensated[events, column[marker]]))

    for leaves, marker, level in POSITIVE_MEDIANS:
        assert medians(leaves, marker) == pytest.approx(level, rel=0.15), (leaves, marker)
    for leaves, marker in NEGATIVE:
        assert abs(medians(leaves, marker)) < 0.01 * cells.MARKER_POSITIVE_LEVEL[marker], (leaves, marker)


def test_truth_frequencies_are_the_counts_of_the_labels(small_trial):
    legend = read_tsv(small_trial["dir"] / "truth" / "labels.tsv", "labels").set_index("label")["code"]
    truth = read_tsv(small_trial["dir"] / "truth" / "frequencies.tsv", "truth")
    for sample_id in small_trial["samples"].sample_id:
        labels = np.load(small_trial["dir"] / "truth" / f"{sample_id}.labels.npy")
        rows = truth[truth.sample_id == sample_id].set_index("population")
        count = {name: int(np.isin(labels, legend[leaves].to_numpy()).sum()) for name, (_, leaves) in HAND_TRUTH.items()}
        for name, (parent, _) in HAND_TRUTH.items():
            parent_count = labels.size if parent is None else count[parent]
            assert (rows.loc[name, "parent"], rows.loc[name, "count"], rows.loc[name, "parent_count"]) == (
                parent or "root", count[name], parent_count), (sample_id, name)
            assert rows.loc[name, "percent_of_parent"] == pytest.approx(100 * count[name] / parent_count, rel=1e-5)
        assert 0 < count["Treg"] < count["CD4"] < count["T"] < count["lymphocytes"] < count["cells"] < labels.size


def test_true_frequencies_of_three_events_per_label_by_hand():
    """28 labels (24 leukocyte leaves, debris, doublet, dead, nonleukocyte), 3 events each: counted by hand."""
    assert len(cells.ALL_LABELS) == 28
    table = true_frequencies(np.repeat(np.arange(28), 3), "x").set_index("population")
    expected = {"cells": (81, 84), "singlets": (78, 81), "live": (75, 78), "leukocytes": (72, 75),
                "lymphocytes": (57, 72), "T": (39, 57), "CD4": (24, 39), "Treg": (9, 24), "CD8": (12, 39),
                "B": (12, 57), "Breg": (3, 12), "NK": (6, 57), "monocytes": (9, 72), "granulocytes": (6, 72),
                "CD4_EM": (9, 24)}  # CD4_EM: Tconv EM, Tact and Treg EM
    for name, (count, parent_count) in expected.items():
        assert (table.loc[name, "count"], table.loc[name, "parent_count"]) == (count, parent_count), name


def test_fcs_files_reread_with_flowkit_give_the_written_values(small_trial):
    settings = small_trial["settings"]
    row = small_trial["samples"].iloc[1]
    patient = small_trial["patients"].set_index("patient_id").loc[row.patient_id]
    responses = assign_responses(small_trial["patients"], settings.seed).set_index("patient_id")
    spec = SampleSpec(row.sample_id, row.patient_id, row.visit, row.batch, int(patient.enrolment_day),
                      float(patient.dose_1e6_per_kg), bool(responses.loc[row.patient_id, "responder"]), row.fcs, "")
    events, labels, in_anomaly, _ = simulate_events(spec, settings)
    sample = fk.Sample(row.fcs, subsample=0)
    assert sample.version == "3.1"
    assert list(sample.pnn_labels) == list(instrument.CHANNELS)
    assert [s for s in sample.pns_labels if s] == list(instrument.MARKERS)
    raw = sample.get_events(source="raw")
    np.testing.assert_array_equal(raw[:, :-1].astype(np.float32), events[:, :-1])
    # flowkit scales Time by $TIMESTEP into seconds
    np.testing.assert_allclose(raw[:, -1], events[:, -1] * instrument.TIMESTEP_S, rtol=1e-6)
    np.testing.assert_array_equal(np.load(small_trial["dir"] / "truth" / f"{row.sample_id}.labels.npy"), labels)
    np.testing.assert_array_equal(np.load(small_trial["dir"] / "truth" / f"{row.sample_id}.anomaly.npy"), in_anomaly)


def test_fcs_files_look_like_a_real_instrument_wrote_them(small_trial):
    sample = fk.Sample(small_trial["samples"].fcs.iloc[0], subsample=0)
    meta = sample.metadata
    detectors, matrix = parse_spill_text(meta["spillover"], "$SPILLOVER", "test")
    assert detectors == [d.channel for d in instrument.DETECTORS]
    np.testing.assert_allclose(matrix, instrument.spillover_matrix(), atol=1e-4)
    off_diagonal = matrix[~np.eye(len(matrix), dtype=bool)]
    assert np.allclose(np.diag(matrix), 1) and off_diagonal.max() < 1
    assert (off_diagonal > 0.2).sum() >= 3, "tandem dyes spill heavily into their neighbours"
    raw = sample.get_events(source="raw")
    assert raw[:, :-1].max() <= instrument.DETECTOR_RANGE - 1
    assert (raw[:, 4:-1] < 0).any(), "noise must produce negative values, as in real data"
    assert np.all(np.diff(raw[:, -1]) >= 0), "Time must not decrease"
    for identifying in ("src", "fil", "op", "date", "patient id"):
        assert identifying in meta  # the de-identifier has something to remove


def test_simulation_is_deterministic_whatever_the_workers(small_trial, tmp_path):
    patients = small_trial["patients"].iloc[:1]
    samples = small_trial["samples"][small_trial["samples"].patient_id.isin(patients.patient_id)].copy()
    samples["fcs"] = [str(tmp_path / "fcs" / f"{s}.fcs") for s in samples.sample_id]
    simulate_trial(patients, samples, tmp_path, small_trial["settings"], workers=1)
    for sample_id, fcs in zip(samples.sample_id, samples.fcs):
        assert filecmp.cmp(fcs, small_trial["dir"] / "fcs" / f"{sample_id}.fcs", shallow=False)
    # each patient's platelet counts do not depend on which other patients are simulated
    one = read_tsv(tmp_path / "clinical" / "platelets.tsv", "platelets")
    all_ = read_tsv(small_trial["dir"] / "clinical" / "platelets.tsv", "platelets")
    pd.testing.assert_frame_equal(one, all_[all_.patient_id.isin(patients.patient_id)].reset_index(drop=True))
    a = read_tsv(tmp_path / "truth" / "frequencies.tsv", "truth")
    b = read_tsv(small_trial["dir"] / "truth" / "frequencies.tsv", "truth")
    pd.testing.assert_frame_equal(a, b[b.sample_id.isin(samples.sample_id)].reset_index(drop=True))


def test_drift_changes_gains_between_runs_only():
    from cytotrial.simulate.run import batch_gains
    flat = SimulationSettings()
    drift = SimulationSettings(drift_sd=0.15)
    assert np.all(batch_gains("run001", flat)[0] == 1)
    g1, g2 = batch_gains("run001", drift)[0], batch_gains("run002", drift)[0]
    assert not np.allclose(g1, g2)
    np.testing.assert_array_equal(g1, batch_gains("run001", drift)[0])


def test_acquisition_anomalies_are_recorded_as_truth():
    from cytotrial.simulate.acquisition import apply_anomaly, arrival_times, draw_anomaly
    rng = np.random.default_rng(5)
    seconds = arrival_times(100_000, rng)
    clog = next(a for a in (draw_anomaly(rng, 1.0) for _ in range(20)) if a.kind == "clog")
    result = apply_anomaly(seconds, clog, rng)
    inside = result["in_anomaly"]
    rate_inside = inside.sum() / (np.ptp(result["seconds"][inside]))
    rate_outside = (~inside).sum() / (np.ptp(result["seconds"]) - np.ptp(result["seconds"][inside]))
    assert 0.08 < rate_inside / rate_outside < 0.25  # a clog: the event rate drops to ~15 %
    assert np.all(result["fluorescence_factor"][inside] < 1) and np.all(result["fluorescence_factor"][~inside] == 1)
    assert apply_anomaly(seconds, None, rng)["in_anomaly"].sum() == 0


def test_demo_trial_has_some_disturbed_acquisitions(small_trial, tmp_path):
    anomalies = read_tsv(small_trial["dir"] / "truth" / "anomalies.tsv", "anomaly truth")
    assert set(anomalies.sample_id) == set(small_trial["samples"].sample_id)
    settings = SimulationSettings(anomaly_probability=1.0, events_per_sample=20_000)
    spec = SampleSpec("P01_D0", "P01", "D0", "run000", 0, 0.5, False, str(tmp_path / "x.fcs"), str(tmp_path))
    _, _, in_anomaly, kind = simulate_events(spec, settings)
    assert kind in ("clog", "signal_shift")
    assert 0 < in_anomaly.sum() < 0.15 * in_anomaly.size


def test_files_carry_the_spillover_their_run_measured():
    from cytotrial.simulate.run import batch_gains, run_spillover
    drift = SimulationSettings(drift_sd=0.15)
    np.testing.assert_array_equal(run_spillover("run003", SimulationSettings()), instrument.spillover_matrix())
    true = np.random.default_rng(0).lognormal(7, 1, (500, len(instrument.DETECTORS)))
    gains, _ = batch_gains("run003", drift)
    raw = (true @ instrument.spillover_matrix()) * gains  # noise-free detection on a drifted run
    compensated = np.linalg.solve(run_spillover("run003", drift).T, raw.T).T
    # compensation with the run's matrix recovers the signals (to the 4 decimals the keyword holds)...
    np.testing.assert_allclose(compensated, true * gains, rtol=2e-3, atol=5)
    stale = np.linalg.solve(instrument.spillover_matrix().T, raw.T).T
    assert np.abs(stale - true * gains).max() > 100  # ...where the nominal matrix would leave spillover behind


def test_variability_scenarios_shift_days_only_when_they_say_so():
    from cytotrial.simulate.run import batch_gains, batch_staining, run_spillover
    from cytotrial.simulate.variability import SCENARIOS

    stable, shifted = SimulationSettings(variability="stable"), SimulationSettings(variability="shifted")
    assert np.all(batch_gains("run004", stable)[0] == 1) and batch_staining("run004", stable) is None
    gains = np.array([batch_gains(f"run{i:03d}", shifted)[0] for i in range(40)])
    scatter = np.array([batch_gains(f"run{i:03d}", shifted)[1] for i in range(40)])
    staining = np.array([batch_staining(f"run{i:03d}", shifted) for i in range(40)])
    foxp3 = instrument.MARKERS.index("FOXP3")
    assert 0.75 <= gains.min() and gains.max() <= 1.25 and np.ptp(gains[:, 0]) > 0.3
    assert 0.72 <= scatter.min() and scatter.max() <= 1.35
    assert 0.65 <= staining[:, foxp3].min() < 0.75 and staining[:, foxp3].max() <= 1.15
    others = np.delete(staining, foxp3, axis=1)
    assert 0.85 <= others.min() and others.max() <= 1.15
    # each run's file carries the spillover its drifted detectors measure: S_ij g_j / g_i
    g = batch_gains("run007", shifted)[0]
    np.testing.assert_allclose(run_spillover("run007", shifted),
                               np.round(instrument.spillover_matrix() * g[None, :] / g[:, None], 4))
    assert SCENARIOS["dirty"].short_file_probability > 0 and SCENARIOS["stable"].short_file_probability == 0


def test_each_seed_is_a_lab_with_its_own_phenotypes_and_continua():
    from cytotrial.simulate.run import lab_phenotypes

    a, b = (lab_phenotypes(SimulationSettings(seed=s, variability="stable")) for s in (1, 2))
    classic = lab_phenotypes(SimulationSettings())
    assert not np.allclose(a.means, b.means) and np.array_equal(classic.means, cells.classic_phenotypes().means)
    j = {m: i for i, m in enumerate(instrument.MARKERS)}
    i = {n: k for k, n in enumerate(cells.LEAF_NAMES)}
    for lab in (a, b):
        # Treg: CD25 above memory CD4, CD127 below it; memory CD4 CD25 between naive and Treg (a continuum)
        assert lab.means[i["Treg_CM"], j["CD25"]] > lab.means[i["CD4_Tconv_CM"], j["CD25"]] > 0
        assert lab.means[i["Treg_CM"], j["CD127"]] < lab.means[i["CD4_Tconv_CM"], j["CD127"]]
        assert lab.means[i["CD4_Tconv_naive"], j["CD25"]] == 0
        assert lab.means[i["Breg"], j["CD24"]] > lab.means[i["B_naive"], j["CD24"]]
        # a shoulder, not a separate peak: Treg CD25 within ~12x of memory CD25 (the classic words: 20x), and
        # memory CD25 spread wide (log-SD 0.8, classic 0.35)
        assert lab.means[i["Treg_CM"], j["CD25"]] / lab.means[i["CD4_Tconv_CM"], j["CD25"]] < 12
        assert lab.log_sds[i["CD4_Tconv_CM"], j["CD25"]] == 0.8


def test_varied_composition_has_lymphopenic_b_depleted_and_granulocyte_rich_samples():
    patients, _ = trial_design()
    lymph_leaves = [n for n in cells.LEAF_NAMES if n.startswith(("CD4_", "Treg_", "CD8_", "T_DN", "B_", "Breg",
                                                                 "Plasma", "NK_"))]
    b_leaves = ["B_naive", "B_memory", "Breg", "Plasmablast"]
    b_share, lymph_share = [], []
    for seed in range(1, 6):
        settings = SimulationSettings(seed=seed, variability="stable")
        for pid in patients.patient_id:
            f = leaf_fractions(pid, "D0", False, 1.0, settings=settings)
            lymph = sum(f[n] for n in lymph_leaves)
            b_share.append(sum(f[n] for n in b_leaves) / lymph)
            lymph_share.append(lymph)
    b_share, lymph_share = np.array(b_share), np.array(lymph_share)
    assert 0.04 < np.mean(b_share < 0.01) < 0.25  # B cells below 1 % of lymphocytes in about 1 patient in 8
    assert np.mean(lymph_share < 0.15) > 0.05  # lymphopenia
    classic = [sum(leaf_fractions(p, "D0", False, 1.0, settings=SimulationSettings())[n] for n in b_leaves)
               for p in patients.patient_id]
    assert min(classic) > 0.01


def test_dirty_samples_have_short_acquisitions_heavy_debris_and_dead_cells(tmp_path):
    dirty = SimulationSettings(seed=3, events_per_sample=20_000, variability="dirty")
    counts, debris, dead = [], [], []
    for number in range(1, 19):
        spec = SampleSpec(f"P{number:02d}_W4", f"P{number:02d}", "W4", "run010", 0, 1.0, False,
                          str(tmp_path / "x.fcs"), str(tmp_path))
        events, labels, _, _ = simulate_events(spec, dirty)
        counts.append(len(labels))
        debris.append(np.mean(labels == cells.LABEL_CODE["debris"]))
        dead.append(np.mean(labels == cells.LABEL_CODE["dead"]))
    counts, debris, dead = map(np.array, (counts, debris, dead))
    assert (counts < 0.35 * 20_000).any() and (counts > 0.9 * 20_000).sum() >= 12
    assert debris.max() > 0.15 and debris.max() <= 0.27 and dead.max() > 0.08 and dead.max() <= 0.16


def test_patients_beyond_the_design_respond_at_their_cohorts_rate():
    """A larger simulated trial (benchmarks/workflow_time.py --files > 126): patients beyond the 18 of the design
    respond at their cohort's rate in the design (C: 3 of 6), and the design's patients keep their truth."""
    import pandas as pd

    from cytotrial.simulate.trial import assign_responses, trial_design

    design, _ = trial_design()
    extra = pd.DataFrame({"patient_id": [f"P{n}" for n in range(100, 700)], "cohort": "C",
                          "dose_1e6_per_kg": 2.0, "enrolment_day": 0})
    both = assign_responses(pd.concat([design, extra], ignore_index=True), 7)
    alone = assign_responses(design, 7)
    assert both[both.patient_id.isin(design.patient_id)].reset_index(drop=True).equals(alone)
    beyond = both[~both.patient_id.isin(design.patient_id)]
    assert len(beyond) == 600
    # binomial(600, 0.5): sd 12.2 responders, so 300 +/- 49 is a 4-sd band
    assert 251 <= int(beyond.responder.sum()) <= 349


def test_simulating_a_sample_of_an_unknown_patient_is_refused(tmp_path):
    from cytotrial.simulate.run import simulate_trial
    from cytotrial.simulate.trial import SimulationSettings, trial_design

    patients, samples = trial_design(str(tmp_path / "fcs"), patients_per_cohort=1, visits=["D0"])
    with pytest.raises(ValueError, match=r"1 sample\(s\) of patients missing from the patient table"):
        simulate_trial(patients.iloc[1:], samples, tmp_path, SimulationSettings(events_per_sample=1000))
