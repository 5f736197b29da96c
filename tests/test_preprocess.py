"""Preprocessing of simulated files: compensation, transforms, event QC against the simulator's truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import fit_batch_transforms, preprocess_fcs
from cytotrial.simulate.acquisition import draw_anomaly
from cytotrial.simulate.run import SampleSpec, simulate_sample
from cytotrial.simulate.trial import VISIT_DAYS, SimulationSettings, patient_number, rng_for
from cytotrial.preprocess.transforms import estimate_logicle_w

from .conftest import REPO

PANEL = Panel.from_yaml(REPO / "config" / "panel.yaml")
SETTINGS = {"transform": {"fluorescence": "logicle"}}


def test_logicle_width_follows_estimate_logicle():
    values = np.concatenate([-np.linspace(1, 1000, 1000), np.linspace(0, 1e5, 9000)])
    r = abs(np.quantile(values[values < 0], 0.05))
    assert estimate_logicle_w(values, 262144, 4.5) == pytest.approx((4.5 - np.log10(262144 / r)) / 2, rel=1e-9)
    assert estimate_logicle_w(np.linspace(0, 1e5, 100), 262144) == 0.0


def _disturbed_spec(tmp_path, kind: str, settings: SimulationSettings) -> SampleSpec:
    """The first demo sample whose acquisition the simulator disturbs with ``kind``."""
    for patient in range(1, 19):
        for visit_index, visit in enumerate(VISIT_DAYS):
            anomaly = draw_anomaly(rng_for(settings.seed, 10, patient, visit_index), settings.anomaly_probability)
            if anomaly is not None and anomaly.kind == kind:
                pid = f"P{patient:02d}"
                return SampleSpec(f"{pid}_{visit}", pid, visit, "run001", 0, 1.0, False,
                                  str(tmp_path / f"{pid}_{visit}.fcs"), str(tmp_path))
    raise AssertionError(f"no {kind} in the demo design")


@pytest.mark.parametrize("kind", ["clog", "signal_shift"])
def test_event_qc_removes_the_simulated_disturbance(tmp_path, kind):
    settings = SimulationSettings(events_per_sample=150_000, anomaly_probability=1.0)
    spec = _disturbed_spec(tmp_path, kind, settings)
    simulate_sample(spec, settings)
    truth = np.load(tmp_path / f"{spec.sample_id}.anomaly.npy")
    _, qc = preprocess_fcs(spec.fcs, spec.sample_id, PANEL, SETTINGS)
    removed = ~qc.keep
    if qc.margins is not None:
        removed &= ~qc.margins.mask
    recall = (removed & truth).sum() / truth.sum()
    precision = (removed & truth).sum() / removed.sum()
    assert recall > 0.9 and precision > 0.9, (recall, precision, qc.summary_row(spec.sample_id))


def test_batch_transforms_are_recorded_and_applied(small_trial):
    files = list(small_trial["samples"].fcs[:2])
    batch = fit_batch_transforms(files, PANEL, {"source": "file"}, SETTINGS["transform"])
    assert batch["files"] == 2 and set(batch["markers"]) == set(PANEL.markers)
    assert all(0 < p["w"] < 2.25 and p["t"] == 262144 for p in batch["markers"].values())
    adata, _ = preprocess_fcs(files[0], "s", PANEL, SETTINGS, study_day=28, batch_transforms=batch)
    cd4 = adata.var.set_index("marker").loc["CD4"]
    assert cd4["w"] == batch["markers"]["CD4"]["w"] and adata.uns["transform_scope"] == "batch"
    metadata = json.loads(adata.uns["metadata_json"])
    assert metadata["study_day"] == 28 and "$SRC" in metadata["dropped"] and "$SRC" not in metadata["keywords"]


def assert_float32_equal_but_rare_last_unit(ours: np.ndarray, theirs: np.ndarray) -> None:
    """float32 values equal but for at most one in a million, and those one unit in the last place apart."""
    ours32, theirs32 = ours.astype(np.float32), theirs.astype(np.float32)
    differ = ours32 != theirs32
    assert differ.sum() <= max(1, ours.size // 1_000_000), differ.sum()
    assert np.array_equal(np.nextafter(theirs32[differ], ours32[differ]), ours32[differ])


def test_blocks_compensate_as_flowkit_does_the_whole_file(small_trial):
    import flowkit as fk

    from cytotrial.preprocess.compensation import compensation_matrix
    from cytotrial.io.fcs import FcsEventBlocks, read_fcs
    from cytotrial.preprocess.events import iter_compensated, locate_panel

    path = small_trial["samples"].fcs.iloc[0]
    sample = read_fcs(path)
    expected = compensation_matrix(sample, {"source": "file"}, path).apply(sample)  # flowkit, whole file
    blocks = FcsEventBlocks.open(path, chunk_rows=999)
    located = locate_panel(blocks, PANEL)
    matrix = compensation_matrix(blocks, {"source": "file"}, path)
    assert isinstance(matrix, fk.Matrix)
    pieces = list(iter_compensated(blocks, located, matrix))
    assert len(pieces) == -(-sample.event_count // 999) > 2
    ours, theirs = np.concatenate([p[1] for p in pieces]), expected[:, located.columns]
    assert_float32_equal_but_rare_last_unit(ours, theirs)  # as stored
    # the same solution up to rounding: within 1e-14 of the event's largest detector value (raw)
    detectors = [sample.get_channel_index(d) for d in matrix.detectors]
    largest = np.abs(sample.get_events("raw")[:, detectors]).max(axis=1, keepdims=True)
    assert (np.abs(ours - theirs) <= 1e-14 * largest).all()
    assert not np.array_equal(ours, np.asarray(sample.get_events("raw"))[:, located.columns])  # compensated
    assert np.array_equal(np.concatenate([p[2] for p in pieces]), expected[:, located.time_column])


def test_preprocessed_events_equal_flowkit_compensation_and_transforms(small_trial, monkeypatch):
    import cytotrial.io.fcs
    from cytotrial.preprocess.compensation import compensation_matrix
    from cytotrial.io.fcs import read_fcs
    from cytotrial.preprocess.transforms import transform_from_params

    monkeypatch.setattr(cytotrial.io.fcs, "CHUNK_ROWS", 1_000)
    path = small_trial["samples"].fcs.iloc[1]
    batch = fit_batch_transforms([path], PANEL, {"source": "file"}, SETTINGS["transform"])
    adata, _ = preprocess_fcs(path, "s", PANEL, SETTINGS, study_day=28, batch_transforms=batch)
    sample = read_fcs(path)
    compensated = compensation_matrix(sample, {"source": "file"}, path).apply(sample)
    for j, record in enumerate(adata.var.to_dict("records")):
        column = compensated[:, sample.get_channel_index(record["channel"])]
        expected = transform_from_params(record).apply(column.reshape(-1, 1)).ravel()  # flowkit / flowutils
        assert_float32_equal_but_rare_last_unit(adata.X[:, j], expected)
        assert_float32_equal_but_rare_last_unit(adata.layers["compensated"][:, j], column)


@pytest.mark.parametrize("max_events", [1, 997, 5_000, 10**9])
def test_every_kth_event_is_the_subsample_of_the_whole_file(small_trial, max_events, monkeypatch):
    import cytotrial.io.fcs
    from cytotrial.preprocess.events import every_kth_event, read_compensated

    monkeypatch.setattr(cytotrial.io.fcs, "CHUNK_ROWS", 1_000)  # many blocks, most not a multiple of the step

    path = small_trial["samples"].fcs.iloc[0]
    whole = read_compensated(path, PANEL, {"source": "file"})
    step = max(1, whole.values.shape[0] // max_events)
    _, subset = every_kth_event(path, PANEL, {"source": "file"}, None, max_events=max_events)
    assert np.array_equal(subset, whole.values[::step][:max_events])


def test_compensation_keeps_a_non_finite_value_in_its_own_columns():
    """One matrix product a block, but a NaN or inf in a scatter channel must not spread to the others (0 x inf is
    NaN), and one in a detector reaches only the detectors it is compensated with."""
    import flowkit as fk

    from cytotrial.preprocess.events import PanelChannels, iter_compensated

    names = ["FSC-A", "SSC-A", "FL1-A", "FL2-A", "FL3-A", "Time"]
    rng = np.random.default_rng(2)
    finite = np.column_stack([rng.uniform(1e4, 2e5, (50, 5)), np.arange(50.0)])
    with_nan = finite.copy()
    with_nan[7, 0], with_nan[9, 3] = np.nan, np.inf

    class Blocks:
        pnn_labels = names

        def __init__(self, *blocks):
            self.blocks = blocks

        def get_channel_index(self, label):
            return names.index(label)

        def __iter__(self):
            start = 0
            for block in self.blocks:
                yield start, block.copy()
                start += len(block)

    spill = np.array([[1.0, 0.12, 0.02], [0.05, 1.0, 0.2], [0.0, 0.03, 1.0]])
    matrix = fk.Matrix(spill, ["FL1-A", "FL2-A", "FL3-A"])
    located = PanelChannels(["FSC-A", "SSC-A", "CD3", "CD4"], ["FSC-A", "SSC-A", "FL3-A", "FL1-A"], [0, 1, 4, 2],
                            [262144.0] * 4, 5)
    pieces = list(iter_compensated(Blocks(finite, with_nan), located, matrix))
    expected = np.linalg.solve(spill.T, finite[:, 2:5].T).T  # x S = y, per event
    for _, panel, time in pieces:
        assert np.array_equal(time, np.arange(50.0))
    ours, theirs = pieces[0][1], pieces[1][1]
    np.testing.assert_allclose(ours[:, 2:], expected[:, [2, 0]], rtol=1e-13)
    assert np.array_equal(ours[:, :2], finite[:, :2])
    bad = ~np.isfinite(theirs)
    assert bad[7].tolist() == [True, False, False, False]  # NaN FSC-A stays in FSC-A
    assert bad[9].tolist() == [False, False, True, True]  # inf in FL2-A reaches the compensated detectors only
    assert bad.sum() == 3
    np.testing.assert_allclose(theirs[np.isfinite(theirs)], ours[np.isfinite(theirs)], rtol=1e-13)
