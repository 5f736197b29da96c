"""Preprocessing of simulated files: compensation, transforms, event QC against the simulator's truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cytotrial.io.panel import Panel
from cytotrial.preprocess import fit_batch_transforms, preprocess_fcs
from cytotrial.simulate.acquisition import draw_anomaly
from cytotrial.simulate.run import SampleSpec, simulate_sample
from cytotrial.simulate.trial import VISIT_DAYS, SimulationSettings, patient_number, rng_for
from cytotrial.transforms import estimate_logicle_w

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


def test_blocks_compensate_exactly_as_flowkit_does_the_whole_file(small_trial):
    import flowkit as fk

    from cytotrial.compensation import compensation_matrix
    from cytotrial.io.fcs import FcsEventBlocks, read_fcs
    from cytotrial.preprocess import iter_compensated, locate_panel

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
    assert np.array_equal(ours.astype(np.float32), theirs.astype(np.float32))  # as stored
    assert np.allclose(ours, theirs, rtol=4 * np.finfo(float).eps, atol=0)  # the same solve, up to rounding
    assert np.array_equal(np.concatenate([p[2] for p in pieces]), expected[:, located.time_column])


def test_preprocessed_events_equal_flowkit_compensation_and_transforms(small_trial, monkeypatch):
    import cytotrial.io.fcs
    from cytotrial.compensation import compensation_matrix
    from cytotrial.io.fcs import read_fcs
    from cytotrial.transforms import transform_from_params

    monkeypatch.setattr(cytotrial.io.fcs, "CHUNK_ROWS", 1_000)
    path = small_trial["samples"].fcs.iloc[1]
    batch = fit_batch_transforms([path], PANEL, {"source": "file"}, SETTINGS["transform"])
    adata, _ = preprocess_fcs(path, "s", PANEL, SETTINGS, study_day=28, batch_transforms=batch)
    sample = read_fcs(path)
    compensated = compensation_matrix(sample, {"source": "file"}, path).apply(sample)
    for j, record in enumerate(adata.var.to_dict("records")):
        column = compensated[:, sample.get_channel_index(record["channel"])]
        expected = transform_from_params(record).apply(column.reshape(-1, 1)).ravel()  # flowkit / flowutils
        assert np.array_equal(adata.X[:, j], expected.astype(np.float32)), record["channel"]
        assert np.array_equal(adata.layers["compensated"][:, j], column.astype(np.float32)), record["channel"]


@pytest.mark.parametrize("max_events", [1, 997, 5_000, 10**9])
def test_every_kth_event_is_the_subsample_of_the_whole_file(small_trial, max_events, monkeypatch):
    import cytotrial.io.fcs
    from cytotrial.preprocess import every_kth_event, read_compensated

    monkeypatch.setattr(cytotrial.io.fcs, "CHUNK_ROWS", 1_000)  # many blocks, most not a multiple of the step

    path = small_trial["samples"].fcs.iloc[0]
    whole = read_compensated(path, PANEL, {"source": "file"})
    step = max(1, whole.values.shape[0] // max_events)
    _, subset = every_kth_event(path, PANEL, {"source": "file"}, None, max_events)
    assert np.array_equal(subset, whole.values[::step][:max_events])
