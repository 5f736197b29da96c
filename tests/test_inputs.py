"""Panels, sample sheets and FCS reading: tolerant where real files differ, clear errors where input is bad."""

from __future__ import annotations

import pytest

from cytotrial.io.fcs import FcsReadError, read_fcs
from cytotrial.io.panel import Panel, PanelError
from cytotrial.io.sheets import SheetError, last_visit_day, load_patients, load_samples

from .conftest import REPO

VISITS = ["D0", "W2", "W4"]


def test_panel_matches_stain_names_ignoring_case_punctuation_and_aliases():
    panel = Panel("p", ("FSC-A",), "Time", {"FOXP3": (), "HLA-DR": (), "Live/Dead": ("Zombie Aqua",)})
    resolved = panel.resolve(["FSC-A", "APC-A", "BV786-A", "BV510-A", "Time"],
                             [None, "FoxP3", "HLA DR", "zombie-aqua", None], "f.fcs")
    assert resolved == {"FOXP3": "APC-A", "HLA-DR": "BV786-A", "Live/Dead": "BV510-A", "FSC-A": "FSC-A",
                        "Time": "Time"}


def test_panel_missing_marker_names_file_and_closest_names():
    panel = Panel("p", ("FSC-A",), "Time", {"CD127": (), "CD25": ()})
    with pytest.raises(PanelError, match=r"f\.fcs: the panel 'p' needs 'CD127' \(closest in file: CD12"):
        panel.resolve(["FSC-A", "PE-A", "PE-Cy7-A", "Time"], [None, "CD25", "CD12", None], "f.fcs")


def test_default_panel_loads():
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    assert len(panel.markers) == 17 and "FOXP3" in panel.markers


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sample_sheet_problems_are_listed_by_line(tmp_path):
    patients = load_patients(_write(tmp_path, "patients.tsv", "patient_id\tcohort\tdose_1e6_per_kg\nP1\tA\t0.5\n"))
    sheet = _write(tmp_path, "samples.tsv", "sample_id\tpatient_id\tvisit\tfcs\n"
                   "s1\tP1\tD0\ta.fcs\ns1\tP1\tW2\tb.fcs\ns3\tP9\tW4\tc.fcs\ns4\tP1\tWeek4\td.fcs\n")
    with pytest.raises(SheetError) as err:
        load_samples(sheet, VISITS, patients)
    message = str(err.value)
    assert "line 2: sample_id 's1' is used more than once" in message
    assert "line 4: patient_id 'P9' is not in the patient table" in message
    assert "line 5: visit 'Week4' is not one of the config's visits" in message


def test_sample_sheet_missing_column_and_file(tmp_path):
    patients = load_patients(_write(tmp_path, "patients.tsv", "patient_id\tcohort\tdose_1e6_per_kg\nP1\tA\t0.5\n"))
    with pytest.raises(SheetError, match=r"lacks column\(s\) \['fcs'\]"):
        load_samples(_write(tmp_path, "s.tsv", "sample_id\tpatient_id\tvisit\ns1\tP1\tD0\n"), VISITS, patients)
    with pytest.raises(FileNotFoundError, match="sample sheet not found: .*nope.tsv"):
        load_samples(tmp_path / "nope.tsv", VISITS, patients)


def test_duplicate_patient_rows(tmp_path):
    with pytest.raises(SheetError, match=r"patient_id \['P1'\] appears more than once \(lines 2, 3\)"):
        load_patients(_write(tmp_path, "p.tsv", "patient_id\tcohort\tdose_1e6_per_kg\nP1\tA\t0.5\nP1\tB\t1\n"))


def test_unreadable_fcs_files_get_one_clear_error(tmp_path, small_trial):
    with pytest.raises(FcsReadError, match="missing.fcs: FCS file not found"):
        read_fcs(tmp_path / "missing.fcs")
    with pytest.raises(FcsReadError, match="too short to be an FCS file"):
        read_fcs(_write(tmp_path, "short.fcs", "FCS3.1"))
    with pytest.raises(FcsReadError, match="does not start with 'FCSx.x'"):
        read_fcs(_write(tmp_path, "text.fcs", "sample_id\tvalue\n" * 10))
    good = (small_trial["dir"] / "fcs" / f"{small_trial['samples'].sample_id.iloc[0]}.fcs").read_bytes()
    truncated = tmp_path / "truncated.fcs"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(FcsReadError, match="truncated.fcs: cannot be read as FCS"):
        read_fcs(truncated)


def test_panel_falls_back_to_explicit_channels_when_stains_are_missing():
    panel = Panel("p", ("FSC-A",), "Time", {"CD4": (), "CD8": ()}, {"CD4": "PerCP-Cy5.5-A", "CD8": "APC-H7-A"})
    resolved = panel.resolve(["FSC-A", "APC-H7-A", "PerCP-Cy5.5-A", "Time"], [None, "", "CD4", None], "f.fcs")
    assert resolved["CD4"] == "PerCP-Cy5.5-A" and resolved["CD8"] == "APC-H7-A"


def test_files_of_one_panel_with_other_channel_order_and_stain_spelling_give_the_same_events(small_trial, tmp_path):
    import flowkit as fk
    import numpy as np
    from cytotrial.io.fcs_writer import write_fcs
    from cytotrial.preprocess.events import preprocess_fcs

    original = small_trial["samples"].fcs.iloc[0]
    sample = fk.Sample(original, subsample=0)
    order = np.random.default_rng(1).permutation(len(sample.pnn_labels))
    respelled = {"FOXP3": "FoxP3", "HLA-DR": "HLA DR", "Live/Dead": "Zombie Aqua", "CCR7": "CD197"}
    stains = [respelled.get(s, s) for s in sample.pns_labels]
    raw = sample.get_events(source="raw")
    raw[:, -1] /= float(sample.metadata["timestep"])  # back to Time ticks, as written
    keywords = {"$SPILLOVER": sample.metadata["spillover"], "$TIMESTEP": sample.metadata["timestep"]}
    permuted = tmp_path / "permuted.fcs"
    write_fcs(permuted, raw[:, order], [sample.pnn_labels[i] for i in order], [stains[i] for i in order],
              keywords=keywords)
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    settings = {"transform": {"fluorescence": "logicle"}}
    a, qc_a = preprocess_fcs(original, "a", panel, settings)
    b, qc_b = preprocess_fcs(permuted, "b", panel, settings)
    assert list(a.var["marker"]) == list(b.var["marker"])
    np.testing.assert_allclose(a.X, b.X, atol=1e-6)
    np.testing.assert_array_equal(qc_a.keep, qc_b.keep)


def test_last_visit_day_is_the_latest_day_of_the_last_visit_sampled():
    import pandas as pd

    samples = pd.DataFrame({"visit": ["D0", "W2", "W4", "W4", "D0"], "study_day": [-1, 14, 27, 30, 0]})
    assert last_visit_day(samples, ["D0", "W2", "W4", "W8"]) == 30  # W8 has no sample: W4, its latest day
    assert last_visit_day(samples[samples.visit != "W4"], ["D0", "W2", "W4"]) == 14
    assert last_visit_day(samples.drop(columns="study_day"), ["D0", "W2", "W4"]) is None
