"""Compensation from an external matrix file and from single-stain controls (AutoSpill-style)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cytotrial.preprocess.compensation import (CompensationError, controls_from_manifest, read_matrix_file,
                                    spillover_from_controls, to_flowkit_matrix, write_spillover_report)
from cytotrial.preprocess.compensation.autospill import residual_slopes
from cytotrial.io.fcs import read_fcs
from cytotrial.simulate import instrument
from cytotrial.simulate.controls import simulate_single_stain_controls

DETECTORS = [d.channel for d in instrument.DETECTORS]
MARKERS = [d.marker for d in instrument.DETECTORS]
SAMPLE_PNN = list(instrument.CHANNELS)
TRUE = instrument.spillover_matrix()
THREE = np.array([[1.0, 0.2, 0.03], [0.01, 1.0, 0.25], [0.0, 0.05, 1.0]])


def _write_csv(path, header, rows, sep=",", row_names=None, corner=""):
    lines = [sep.join(([corner] if row_names else []) + header)]
    for i, row in enumerate(rows):
        cells = [f"{v:g}" for v in row]
        lines.append(sep.join(([row_names[i]] if row_names else []) + cells))
    path.write_text("\n".join(lines) + "\n")
    return path


# --- external matrix files ---------------------------------------------------------------------------------------

def test_flowjo_csv_with_row_names_in_fractions(tmp_path):
    names = ["FITC-A", "PE-A", "PE-Cy5-A"]
    path = _write_csv(tmp_path / "comp.csv", names, THREE, row_names=names)
    matrix = read_matrix_file(path, SAMPLE_PNN)
    assert matrix.detectors == ["FITC-A", "PE-A", "PE-Cy5-A"]
    np.testing.assert_allclose(matrix.matrix, THREE)


def test_percent_values_are_converted_to_fractions(tmp_path):
    names = ["FITC-A", "PE-A", "PE-Cy5-A"]
    path = _write_csv(tmp_path / "comp.csv", names, THREE * 100, row_names=names)
    np.testing.assert_allclose(read_matrix_file(path, SAMPLE_PNN).matrix, THREE)


def test_tsv_without_row_names_and_with_a_title_line(tmp_path):
    path = _write_csv(tmp_path / "comp.tsv", ["FITC-A", "PE-A", "PE-Cy5-A"], THREE, sep="\t")
    path.write_text("Compensation Matrix\n" + path.read_text())
    np.testing.assert_allclose(read_matrix_file(path, SAMPLE_PNN).matrix, THREE)


def test_comp_prefix_marker_suffix_and_case_are_tolerated(tmp_path):
    header = ["Comp-FITC-A", "pe-a :: CD25", "PE-Cy5-A :: CD38"]
    rows = ["FITC-A :: CD45RA", "Comp-PE-A", "pe-cy5-a"]
    path = _write_csv(tmp_path / "comp.csv", header, THREE, row_names=rows, corner="Compensation")
    matrix = read_matrix_file(path, SAMPLE_PNN)
    assert matrix.detectors == ["FITC-A", "PE-A", "PE-Cy5-A"]
    assert matrix.fluorochromes == ["", "CD25", "CD38"]
    np.testing.assert_allclose(matrix.matrix, THREE)


def test_rows_are_put_in_column_order_and_matrix_in_sample_order(tmp_path):
    header = ["PE-A", "FITC-A", "PE-Cy5-A"]  # not in sample ($PnN) order
    file_matrix = THREE[np.ix_([1, 0, 2], [1, 0, 2])]
    rows = ["PE-Cy5-A", "PE-A", "FITC-A"]  # rows shuffled differently from the columns
    path = _write_csv(tmp_path / "comp.csv", header, file_matrix[[2, 0, 1]], row_names=rows)
    matrix = read_matrix_file(path, SAMPLE_PNN)
    assert matrix.detectors == ["FITC-A", "PE-A", "PE-Cy5-A"]
    np.testing.assert_allclose(matrix.matrix, THREE)


def test_fcs_spill_text_file(tmp_path):
    path = tmp_path / "spill.txt"
    path.write_text(instrument.spillover_keyword(TRUE) + "\n")
    matrix = read_matrix_file(path, SAMPLE_PNN, markers=[""] * 4 + MARKERS + [""])
    assert matrix.detectors == DETECTORS and matrix.fluorochromes == MARKERS
    np.testing.assert_allclose(matrix.matrix, TRUE, atol=5e-4)


def test_unmatched_names_are_listed(tmp_path):
    path = _write_csv(tmp_path / "comp.csv", ["FITC-A", "PE-Texas-Red-A", "Alexa700-A"], THREE)
    with pytest.raises(CompensationError) as err:
        read_matrix_file(path, SAMPLE_PNN)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "['PE-Texas-Red-A', 'Alexa700-A']" in message
    assert "match no detector" in message


def test_singular_matrix_is_reported(tmp_path):
    path = _write_csv(tmp_path / "comp.csv", ["FITC-A", "PE-A"], [[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(CompensationError, match=r"comp\.csv: the spillover matrix is singular .*duplicated"):
        read_matrix_file(path, SAMPLE_PNN)


@pytest.mark.parametrize(("text", "expected"), [
    ("FITC-A,PE-A\n1,0.2\n", "not square"),
    ("FITC-A,PE-A\n1,n/a\n0.1,1\n", "non-numeric value 'n/a'"),
    ("FITC-A,PE-A\n1,0.2\n0.1,0.5\n", "neither all 1 (fractions) nor all 100 (percent)"),
    ("", "empty"),
])
def test_malformed_tables_are_reported(tmp_path, text, expected):
    path = tmp_path / "comp.csv"
    path.write_text(text)
    with pytest.raises(CompensationError, match="^" + re.escape(f"{path}: ") + ".*" + re.escape(expected)):
        read_matrix_file(path, SAMPLE_PNN)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(CompensationError, match="not found. Check compensation.matrix"):
        read_matrix_file(tmp_path / "absent.csv", SAMPLE_PNN)


# --- simulated single-stain controls ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bead_controls(tmp_path_factory):
    out = tmp_path_factory.mktemp("bead_controls")
    paths = simulate_single_stain_controls(out, events_per_control=15000, seed=7, kind="beads")
    controls, unstained = controls_from_manifest(out / "controls.tsv")
    return {"dir": out, "paths": paths, "controls": controls, "unstained": unstained,
            "estimate": spillover_from_controls(controls, unstained)}


@pytest.fixture(scope="module")
def cell_controls(tmp_path_factory):
    out = tmp_path_factory.mktemp("cell_controls")
    simulate_single_stain_controls(out, events_per_control=12000, seed=8, kind="cells")
    return controls_from_manifest(out / "controls.tsv")


def test_controls_are_written_with_a_manifest(bead_controls):
    manifest = pd.read_csv(bead_controls["dir"] / "controls.tsv", sep="\t").fillna("")
    assert [p.name for p in bead_controls["paths"]] == ["unstained.fcs", *(f"{d}.fcs" for d in DETECTORS)]
    assert list(manifest.detector) == ["", *DETECTORS] and list(manifest.marker) == ["", *MARKERS]
    fitc = read_fcs(bead_controls["controls"]["FITC-A"])
    assert list(fitc.pnn_labels) == SAMPLE_PNN and fitc.event_count == 15000
    values = fitc.get_events(source="raw")[:, SAMPLE_PNN.index("FITC-A")]
    assert 0.45 < np.mean(values > 5000) < 0.55  # about half the beads carry antibody
    assert values.max() < instrument.DETECTOR_RANGE - 1  # positives are bright but not saturated


def test_autospill_recovers_the_instrument_matrix_from_beads(bead_controls):
    estimate = bead_controls["estimate"]
    error = np.abs(estimate.matrix - TRUE)
    print(f"beads: max |error| {error.max():.2g}, max |residual slope| {np.abs(estimate.residual_slopes).max():.2g}, "
          f"{estimate.iterations} rounds")
    assert estimate.detectors == tuple(DETECTORS)
    assert error.max() < 0.01
    assert estimate.converged and np.abs(estimate.residual_slopes).max() < 0.005
    np.testing.assert_array_equal(np.diag(estimate.matrix), 1.0)


def test_autospill_recovers_the_instrument_matrix_from_cells(cell_controls):
    controls, unstained = cell_controls
    estimate = spillover_from_controls(controls, unstained, detectors=DETECTORS)
    error = np.abs(estimate.matrix - TRUE)
    print(f"cells: max |error| {error.max():.2g}, max |residual slope| {np.abs(estimate.residual_slopes).max():.2g}")
    assert error.max() < 0.01
    assert estimate.converged and np.abs(estimate.residual_slopes).max() < 0.005


def test_bead_matrix_leaves_no_slope_in_independent_cell_controls(bead_controls, cell_controls):
    controls, _ = cell_controls
    events = []
    for i, detector in enumerate(DETECTORS):
        raw = read_fcs(controls[detector]).get_events(source="raw")[:, 4:21].astype(float)
        events.append(raw[raw[:, i] > 3000])  # the positive cells
    slopes = residual_slopes(events, bead_controls["estimate"].matrix)
    assert np.abs(slopes).max() < 0.005


def test_compensated_positives_sit_at_the_unstained_median(bead_controls):
    matrix = to_flowkit_matrix(bead_controls["estimate"], DETECTORS, MARKERS)
    columns = [SAMPLE_PNN.index(d) for d in DETECTORS]
    blank = read_fcs(bead_controls["unstained"])
    blank.apply_compensation(matrix)
    blank_median = np.median(blank.get_events(source="comp")[:, columns], axis=0)
    for i, detector in enumerate(["BV605-A", "PE-A", "PE-Cy5-A", "APC-A"]):
        sample = read_fcs(bead_controls["controls"][detector])
        raw = sample.get_events(source="raw")[:, columns]
        sample.apply_compensation(matrix)
        compensated = sample.get_events(source="comp")[:, columns]
        primary = DETECTORS.index(detector)
        positive = compensated[:, primary] > 5000
        shift = np.abs(np.median(compensated[positive], axis=0) - blank_median)
        raw_shift = np.abs(np.median(raw[positive], axis=0) - blank_median)
        shift[primary] = raw_shift[primary] = 0
        level = np.median(compensated[positive, primary])
        assert shift.max() < 0.001 * level, (detector, DETECTORS[shift.argmax()], shift.max())
        assert raw_shift.max() > 0.05 * level  # without compensation the spillover is plain to see


def test_report_round_trips_through_the_matrix_reader(bead_controls, tmp_path):
    estimate = bead_controls["estimate"]
    write_spillover_report(estimate, tmp_path / "matrix.tsv", tmp_path / "slopes.tsv")
    matrix = read_matrix_file(tmp_path / "matrix.tsv", SAMPLE_PNN)
    np.testing.assert_allclose(matrix.matrix, estimate.matrix, atol=1e-5)
    slopes = pd.read_csv(tmp_path / "slopes.tsv", sep="\t")
    assert list(slopes.columns) == ["dye", "detector", "spillover", "residual_slope"]
    assert len(slopes) == 17 * 16 and slopes.residual_slope.abs().max() < 0.005


def test_a_control_without_positives_is_reported(bead_controls):
    controls = dict(bead_controls["controls"], **{"PE-A": bead_controls["unstained"]})
    with pytest.raises(CompensationError, match=r"unstained\.fcs \(PE-A control\): only \d+ events are brighter"):
        spillover_from_controls(controls, bead_controls["unstained"])


def test_a_missing_control_is_reported(bead_controls):
    controls = {d: p for d, p in bead_controls["controls"].items() if d != "FITC-A"}
    with pytest.raises(CompensationError, match="Give one control per detector"):
        spillover_from_controls(controls, bead_controls["unstained"], detectors=DETECTORS)
