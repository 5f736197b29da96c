"""Event QC (margins, flow rate, signal) on synthetic acquisitions with planted problems."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cytotrial.preprocess.qc import SUMMARY_COLUMNS, QcSettings, find_margin_events, run_event_qc
from cytotrial.preprocess.qc.flow_rate import find_flow_rate_anomalies
from cytotrial.preprocess.qc.plot import plot_event_qc
from cytotrial.preprocess.qc.runs import drop_short_runs, fill_short_gaps, true_runs

RANGE = 262144.0
NAMES = ["FSC-A", "SSC-A", "FITC-A", "PE-A", "APC-A", "BV421-A"]
FLUO = [2, 3, 4, 5]
RANGES = np.full(len(NAMES), RANGE)


def acquisition(seed: int = 0, duration: float = 120.0, rate: float = 2000.0, clog=None, burst=None, shift=None,
                tick: float = 0.01):
    """Synthetic events: Poisson arrival times (thinned for a clog / burst) on 10 ms ticks, transformed values
    on 0..1 (scatter normal, fluorescence a 70/30 negative/positive mixture), linear = values x $PnR.

    ``clog`` / ``burst``: (start_s, end_s, rate factor); ``shift``: (start_s, end_s, channel, shift).
    """
    rng = np.random.default_rng(seed)
    top = rate * max(1.0, burst[2] if burst else 1.0)
    t = np.sort(rng.uniform(0, duration, rng.poisson(duration * top)))
    factor = np.ones(t.size)
    for stretch in (clog, burst):
        if stretch:
            factor[(t >= stretch[0]) & (t < stretch[1])] = stretch[2]
    t = t[rng.random(t.size) < factor * rate / top]
    if tick:
        t = np.floor(t / tick) * tick
    n = t.size
    values = np.empty((n, len(NAMES)), dtype=np.float32)
    values[:, 0] = rng.normal(0.35, 0.08, n)
    values[:, 1] = rng.normal(0.2, 0.06, n)
    for j in FLUO:
        values[:, j] = np.where(rng.random(n) < 0.3, rng.normal(0.65, 0.06, n), rng.normal(0.25, 0.05, n))
    np.clip(values, 0.001, 0.999, out=values)
    if shift:
        values[(t >= shift[0]) & (t < shift[1]), shift[2]] += shift[3]
    return t, values, (values * RANGE).astype(np.float32)


def qc(t, values, linear, **settings):
    return run_event_qc(t, values, NAMES, RANGES, fluorescence_idx=FLUO, settings=QcSettings.from_dict(settings),
                        linear=linear)


def recall_precision(result, planted: np.ndarray) -> tuple[float, float]:
    removed = ~result.keep
    hits = np.count_nonzero(removed & planted)
    return hits / planted.sum(), hits / max(1, removed.sum())


# --- settings -------------------------------------------------------------------------------------------------

def test_settings_defaults_and_from_dict():
    assert QcSettings.from_dict(None) == QcSettings() == QcSettings.from_dict({})
    s = QcSettings.from_dict({"steps": ["margins", "signal"], "signal_channels": ["PE-A"], "signal_mad": 4})
    assert s.steps == ("margins", "signal") and s.signal_channels == ("PE-A",) and s.signal_mad == 4
    assert QcSettings.from_dict(s.to_dict()) == s
    d = QcSettings().to_dict()
    assert (d["max_margin_percent"], d["max_removed_percent"], d["min_events"]) == (10.0, 70.0, 5000)


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match=r"unknown qc setting\(s\): events_per_bim.*known settings: steps"):
        QcSettings.from_dict({"events_per_bim": 1000})
    with pytest.raises(ValueError, match="unknown step"):
        QcSettings.from_dict({"steps": ["margins", "peaks"]})
    with pytest.raises(ValueError, match="margin_channels"):
        QcSettings.from_dict({"margin_channels": "everything"})
    with pytest.raises(ValueError, match="signal_mad"):
        QcSettings.from_dict({"signal_mad": 0})


# --- whole QC on clean and disturbed acquisitions --------------------------------------------------------------

def test_clean_acquisition_keeps_almost_everything():
    for seed in (0, 1):
        t, values, linear = acquisition(seed)
        result = qc(t, values, linear)
        assert result.percent_removed < 2.0
        assert result.flags == [] and result.warnings == [] and result.notes == []
        assert result.events_in == t.size
        assert result.events_out == result.keep.sum() == t.size - sum(result.removed_by_step.values())


def test_clog_is_found_and_its_events_removed():
    t, values, linear = acquisition(0, clog=(40.37, 50.37, 0.1))
    result = qc(t, values, linear)
    planted = (t >= 40.37) & (t < 50.37)
    recall, precision = recall_precision(result, planted)
    assert recall > 0.9 and precision > 0.9
    assert result.removed_by_step["flow_rate"] == pytest.approx(planted.sum(), rel=0.1)
    assert result.removed_by_step["signal"] == 0
    (start, end), = result.flow_rate.removed_intervals       # one stretch, close to the planted one
    assert start == pytest.approx(40.37, abs=0.3) and end == pytest.approx(50.37, abs=0.3)
    clogged_bins = (result.flow_rate.bin_edges[:-1] >= 41) & (result.flow_rate.bin_edges[1:] <= 50)
    assert result.flow_rate.anomalous[clogged_bins].all()
    assert not result.flags


def test_burst_is_found_and_its_events_removed():
    t, values, linear = acquisition(1, burst=(70.13, 75.13, 3.0))
    result = qc(t, values, linear)
    recall, precision = recall_precision(result, (t >= 70.13) & (t < 75.13))
    assert recall > 0.9 and precision > 0.9
    assert result.flow_rate.rate[result.flow_rate.anomalous].min() > result.flow_rate.upper


def test_signal_shift_in_one_channel_is_found():
    t, values, linear = acquisition(2, shift=(30.3, 40.3, 3, 0.05))
    result = qc(t, values, linear)
    recall, precision = recall_precision(result, (t >= 30.3) & (t < 40.3))
    assert recall > 0.9 and precision > 0.9
    assert result.removed_by_step["flow_rate"] == 0
    outlying = result.signal.outlying_bins()
    assert outlying["PE-A"] >= 20 and sum(outlying.values()) == outlying["PE-A"]


def test_bimodal_channel_fools_bin_medians_but_not_bin_means():
    t, values, linear = acquisition(13)
    rng = np.random.default_rng(13)
    values[:, 4] = np.where(rng.random(t.size) < 0.48, rng.normal(0.7, 0.04, t.size), rng.normal(0.2, 0.04, t.size))
    by_median = qc(t, values, linear, signal_statistic="median")
    assert by_median.signal.outlying_bins()["APC-A"] >= 5     # the median jumps between the two modes
    assert by_median.percent_removed > 5
    by_mean = qc(t, values, linear)                           # the default
    assert by_mean.signal.statistic == "mean" and by_mean.percent_removed < 2


def test_saturated_events_are_margins_with_counts_per_channel():
    t, values, linear = acquisition(3)
    rng = np.random.default_rng(3)
    fsc, pe, ssc = (rng.choice(t.size, k, replace=False) for k in (300, 200, 100))
    linear[fsc, 0] = RANGE - 1
    linear[pe, 3] = RANGE - 1
    linear[ssc, 1] = 0.0
    result = qc(t, values, linear)
    margins = result.margins
    assert margins.counts() == {"FSC-A": 300, "SSC-A": 100, "FITC-A": 0, "PE-A": 200, "APC-A": 0, "BV421-A": 0}
    assert margins.table()[3] == {"channel": "PE-A", "top": 200, "bottom": 0, "top_threshold": RANGE - 1,
                                  "bottom_threshold": None}
    planted = np.zeros(t.size, dtype=bool)
    planted[np.concatenate([fsc, pe, ssc])] = True
    np.testing.assert_array_equal(margins.mask, planted)
    assert result.removed_by_step["margins"] == planted.sum()
    assert not result.keep[planted].any()
    assert result.percent_margins == pytest.approx(100 * planted.sum() / t.size)
    assert not result.flags


def test_margin_channels_tolerance_and_floors():
    linear = np.array([[262143.0, 10.0], [262100.0, -5.0], [5.0, 262143.0], [0.0, 3.0]], dtype=np.float32)
    exact = find_margin_events(linear, [RANGE, RANGE], ["FSC-A", "PE-A"], floors=[0.0, np.nan])
    np.testing.assert_array_equal(exact.mask, [True, False, True, True])
    scatter_only = find_margin_events(linear, [RANGE, RANGE], ["FSC-A", "PE-A"], channels=[0], floors=[0.0, 0.0])
    np.testing.assert_array_equal(scatter_only.mask, [True, False, False, True])
    assert scatter_only.counts() == {"FSC-A": 2}
    tolerant = find_margin_events(linear, [RANGE, RANGE], ["FSC-A", "PE-A"], top_tolerance=0.001)
    np.testing.assert_array_equal(tolerant.mask, [True, True, True, False])


# --- flags ------------------------------------------------------------------------------------------------------

def test_margin_and_removed_flags_fire_above_their_limits():
    t, values, linear = acquisition(4, duration=30)
    rng = np.random.default_rng(4)
    for fraction, flagged in ((0.09, False), (0.12, True)):
        sat = linear.copy()
        sat[rng.random(t.size) < fraction, 0] = RANGE - 1
        result = qc(t, values, sat)
        assert any(f.startswith("margins ") and f.endswith("% > 10%") for f in result.flags) == flagged
        assert not any(f.startswith("removed ") for f in result.flags)
    sat = linear.copy()
    sat[rng.random(t.size) < 0.75, 1] = 0.0
    result = qc(t, values, sat)
    assert result.percent_removed > 70
    assert f"removed {result.percent_removed:.1f}% > 70%" in result.flags
    assert f"margins {result.percent_margins:.1f}% > 10%" in result.flags
    assert not qc(t, values, sat, max_removed_percent=80, max_margin_percent=80).flags


def test_too_few_events_flag():
    t, values, linear = acquisition(5, duration=2.0)        # about 4000 events
    result = qc(t, values, linear)
    assert result.flags == [f"too few events: {result.events_out} < 5000"]
    assert result.summary_row("S")["flags"] == result.flags[0]
    assert not qc(t, values, linear, min_events=1000).flags


def test_time_going_backwards_and_gaps_are_reported():
    t, values, linear = acquisition(6, duration=60)
    cut = t.searchsorted(30.0)
    gapped = np.where(t < 30.0, t, t + 5.0)                  # 5 s without events at 30 s
    assert qc(gapped, values, linear).warnings == ["time gaps: 1 (5.0 s without events)"]
    assert qc(gapped, values, linear).flow_rate.removed_intervals.size
    restarted = np.concatenate([t[cut:], t[:cut]])           # the clock restarts half way
    result = qc(restarted, values, linear)
    assert result.flow_rate.backward_steps == 1
    assert "time goes backwards 1 time(s)" in result.warnings


def test_drift_is_reported_not_removed():
    t, values, linear = acquisition(7)
    values[:, 4] += (0.1 * t / t.max()).astype(np.float32)
    result = qc(t, values, linear)
    assert result.signal.drift == {"APC-A": "increasing"}
    assert result.warnings == ["drift: APC-A increasing"]
    values[:, 4] -= (0.2 * t / t.max()).astype(np.float32)
    assert qc(t, values, linear).signal.drift == {"APC-A": "decreasing"}


# --- API --------------------------------------------------------------------------------------------------------

def test_steps_can_be_disabled_and_margins_need_linear_values():
    t, values, linear = acquisition(8, duration=30)
    linear[:100, 0] = RANGE - 1
    with pytest.raises(ValueError, match="linear values"):
        run_event_qc(t, values, NAMES, RANGES, fluorescence_idx=FLUO)
    result = run_event_qc(t, values, NAMES, RANGES, fluorescence_idx=FLUO, settings={"steps": ["flow_rate", "signal"]})
    assert result.removed_by_step["margins"] == 0 and result.margins is None
    result = qc(t, values, linear, steps=["margins"])
    assert result.removed_by_step == {"margins": 100, "flow_rate": 0, "signal": 0}
    assert result.flow_rate is None and result.signal is None
    with pytest.raises(ValueError, match="CD3"):
        qc(t, values, linear, signal_channels=["CD3"])
    as_mask = run_event_qc(t, values, NAMES, RANGES, fluorescence_idx=np.isin(np.arange(len(NAMES)), FLUO),
                           settings={"margin_channels": "fluorescence"}, linear=linear)
    assert as_mask.margins.channels == tuple(NAMES[2:]) and as_mask.removed_by_step["margins"] == 0


def test_summary_row_has_stable_columns():
    t, values, linear = acquisition(9, duration=30)
    result = qc(t, values, linear)
    row = result.summary_row("P01_D0")
    assert tuple(row) == SUMMARY_COLUMNS
    assert row["sample_id"] == "P01_D0" and row["events_in"] == t.size and row["flags"] == ""
    details = json.loads(json.dumps(result.details(), allow_nan=False))
    assert details["removed_by_step"] == result.removed_by_step
    assert details["flow_rate"]["bin_s"] == pytest.approx(0.25) and details["signal"]["events_per_bin"] == t.size // 100


def test_result_and_plot_are_deterministic(tmp_path):
    t, values, linear = acquisition(10, clog=(20.0, 25.0, 0.1), shift=(40.0, 45.0, 2, 0.05))
    first, second = qc(t, values, linear), qc(t, values, linear)
    np.testing.assert_array_equal(first.keep, second.keep)
    assert first.summary_row("S") == second.summary_row("S")
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path, result in zip(paths, (first, second), strict=True):
        plot_event_qc(result, t, path, title="S")
    data = paths[0].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert b"Software" not in data
    assert data == paths[1].read_bytes()


def test_plot_copes_with_skipped_steps(tmp_path):
    t, values, linear = acquisition(11, duration=0.2)
    result = qc(t, values, linear)
    assert result.notes and result.signal.skipped
    plot_event_qc(result, t, tmp_path / "tiny.png")
    assert (tmp_path / "tiny.png").read_bytes()[:4] == b"\x89PNG"


# --- building blocks --------------------------------------------------------------------------------------------

def test_run_helpers():
    mask = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0], dtype=bool)
    starts, ends = true_runs(mask)
    assert starts.tolist() == [0, 2, 7] and ends.tolist() == [1, 4, 8]
    assert fill_short_gaps(mask, 1).astype(int).tolist() == [1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert fill_short_gaps(mask, 3).astype(int).tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 0]
    assert drop_short_runs(mask, 2).astype(int).tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0]


def test_flow_rate_bins_follow_the_time_ticks():
    t, _, _ = acquisition(12, duration=60, rate=1000.0)
    result = find_flow_rate_anomalies(t)
    assert result.time_resolution == pytest.approx(0.01)
    assert result.bin_s == pytest.approx(0.5)                # 500 events at 1000 / s, whole ticks
    assert not result.mask.any() and not result.skipped
    fixed = find_flow_rate_anomalies(t, bin_s=1.0, refine=1)
    assert fixed.bin_s == pytest.approx(1.0) and fixed.counts.sum() == t.size


@pytest.mark.parametrize("statistic", ["mean", "median"])
@pytest.mark.parametrize("n", [999, 70_500, 130_001])
def test_bin_levels_of_a_selection_equal_those_of_its_copy(statistic, n):
    from cytotrial.preprocess.qc.signal import bin_levels

    rng = np.random.default_rng(n)
    values = rng.normal(size=(n, 6)).astype(np.float32)
    rows = np.flatnonzero(rng.random(n) < 0.9)
    columns = np.array([0, 2, 5])
    levels, bounds = bin_levels(values, 1000, statistic, rows=rows, columns=columns)
    expected, expected_bounds = bin_levels(values[rows][:, columns], 1000, statistic)
    assert np.array_equal(levels, expected) and np.array_equal(bounds, expected_bounds)
    selected = values[rows][:, columns]
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):  # each bin by hand
        if statistic == "mean":
            assert np.allclose(levels[i], selected[a:b].mean(axis=0, dtype=np.float64), rtol=0, atol=1e-12)
        else:
            assert np.array_equal(levels[i], np.sort(selected[a:b], axis=0)[(b - a) // 2])
