"""Bad input gets one clear error naming the file, row or column and the fix (issue: reliability)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cytotrial.preprocess.exclusion import BAD_FILE_ERRORS
from cytotrial.io.fcs import FcsReadError, read_fcs
from cytotrial.io.panel import Panel, PanelError
from cytotrial.preprocess.events import fit_batch_transforms, preprocess_fcs
from cytotrial.response import PlateletTableError, derive_responses, load_platelets
from cytotrial.io.sheets import SheetError, load_patients, load_samples, missing_fcs_files

REPO = Path(__file__).resolve().parents[1]
PANEL = Panel.from_yaml(REPO / "config" / "panel.yaml")


def test_missing_and_corrupt_fcs_name_the_file(tmp_path):
    with pytest.raises(FcsReadError, match=r"nothere\.fcs"):
        read_fcs(tmp_path / "nothere.fcs")
    (tmp_path / "broken.fcs").write_bytes(b"FCS3.1    garbage")
    with pytest.raises(FcsReadError, match=r"broken\.fcs"):
        read_fcs(tmp_path / "broken.fcs")
    assert issubclass(FcsReadError, BAD_FILE_ERRORS)


def test_fcs_of_the_wrong_panel_names_the_missing_marker(small_trial, tmp_path):
    panel = tmp_path / "panel.yaml"
    text = (REPO / "config" / "panel.yaml").read_text().replace("FOXP3", "GATA3")
    panel.write_text(text)
    fcs = small_trial["samples"].fcs.iloc[0]
    with pytest.raises(PanelError, match=r"GATA3") as err:
        preprocess_fcs(fcs, "s", Panel.from_yaml(panel), {})
    assert Path(fcs).name in str(err.value)


def test_batch_fit_leaves_out_a_bad_file_only_when_told(small_trial, tmp_path):
    good = list(small_trial["samples"].fcs[:2])
    bad = tmp_path / "bad.fcs"
    bad.write_bytes(Path(good[0]).read_bytes()[:3000])
    alone = fit_batch_transforms(good, PANEL, {"source": "file"}, {"fluorescence": "logicle"})
    mixed = fit_batch_transforms([*good, str(bad)], PANEL, {"source": "file"}, {"fluorescence": "logicle"},
                                 on_bad_file="exclude")
    assert mixed["markers"] == alone["markers"] and mixed["files"] == 2
    assert mixed["excluded"][0]["file"] == "bad.fcs" and "bad.fcs" in mixed["excluded"][0]["reason"]
    with pytest.raises(FcsReadError, match="bad.fcs"):
        fit_batch_transforms([*good, str(bad)], PANEL, {"source": "file"}, {"fluorescence": "logicle"})


def _sheet(tmp_path, rows: str) -> Path:
    path = tmp_path / "samples.tsv"
    path.write_text("sample_id\tpatient_id\tvisit\tfcs\n" + rows)
    return path


def test_sample_sheet_problems_name_the_line(tmp_path):
    (tmp_path / "patients.tsv").write_text("patient_id\tcohort\tdose_1e6_per_kg\nP01\tA\t0.5\n")
    patients = load_patients(tmp_path / "patients.tsv")
    sheet = _sheet(tmp_path, "s1\tP01\tD0\ta.fcs\ns1\tP02\tW5\tb.fcs\n")
    with pytest.raises(SheetError) as err:
        load_samples(sheet, ["D0", "W4"], patients)
    text = str(err.value)
    assert "line 2: sample_id 's1' is used more than once" in text
    assert "line 3: visit 'W5' is not one of the config's visits" in text
    assert "line 3: patient_id 'P02' is not in the patient table" in text
    samples = load_samples(_sheet(tmp_path, f"s1\tP01\tD0\t{tmp_path / 'a.fcs'}\n"), ["D0"], patients)
    assert missing_fcs_files(samples, "samples.tsv") == {
        "s1": f"samples.tsv line 2: FCS file '{tmp_path / 'a.fcs'}' of sample 's1' does not exist"}


def test_clinical_table_problems_name_patient_and_line(tmp_path):
    path = tmp_path / "platelets.tsv"
    path.write_text("patient_id\tweek\tstudy_day\tplatelets_1e9_per_L\trescue_therapy\n"
                    "P01\t0\t0\t12\t0\nP01\t1\t7\tlow\t0\n")
    with pytest.raises(PlateletTableError, match=r"(?s)platelets.tsv.*line 3 \(patient P01\).*'low'"):
        load_platelets(path)
    path.write_text("patient_id\tweek\tstudy_day\tplatelets_1e9_per_L\trescue_therapy\nP01\t1\t7\t40\t0\n")
    with pytest.raises(PlateletTableError, match=r"(?s)P01.*baseline"):
        derive_responses(load_platelets(path))


def test_unknown_marker_in_the_template_names_it(small_trial, tmp_path):
    from cytotrial.gating.engine import apply_template
    from cytotrial.gating.template import TemplateError, load_template

    template = tmp_path / "t.yaml"
    template.write_text("populations:\n  - {name: x, parent: root, method: cuts, cuts: {CD999: {keep: above}}}\n")
    adata, _ = preprocess_fcs(small_trial["samples"].fcs.iloc[0], "s", PANEL, {})
    with pytest.raises(TemplateError, match=r"'CD999'.*neither a panel marker nor a channel.*FOXP3"):
        apply_template(adata, load_template(template))


def test_preprocess_sample_files_writes_or_excludes(small_trial, tmp_path):
    """The rule's library call: a good file gets its events, QC and metadata; a truncated one, with
    on_bad_file: exclude, gets every output saying why, and with fail raises the error naming the file."""
    import json
    import logging

    import anndata as ad
    import pandas as pd

    from cytotrial.steps.preprocess_sample import preprocess_sample_files

    names = ("events", "qc_row", "qc_details", "qc_plot", "metadata")
    suffixes = {"events": ".h5ad", "qc_row": ".tsv", "qc_details": ".json", "qc_plot": ".png", "metadata": ".json"}
    log = logging.getLogger("test")
    good = small_trial["samples"].fcs.iloc[0]
    bad = tmp_path / "bad.fcs"
    bad.write_bytes(Path(good).read_bytes()[:3000])
    panel = REPO / "config" / "panel.yaml"
    for sample, fcs in (("good", good), ("bad", bad)):
        outputs = {name: str(tmp_path / f"{sample}_{name}{suffixes[name]}") for name in names}
        preprocess_sample_files(sample, str(fcs), str(panel), {}, study_day=28, transforms_path=None, matrix_path=None,
                                on_bad_file="exclude", outputs=outputs, log=log)
        assert all(Path(path).stat().st_size > 0 for path in outputs.values())
        row = pd.read_csv(outputs["qc_row"], sep="\t").iloc[0]
        events = ad.read_h5ad(outputs["events"])
        metadata = json.loads(Path(outputs["metadata"]).read_text())
        if sample == "good":
            assert events.n_obs == metadata["events"] > 20_000 and metadata["study_day"] == 28
        else:
            assert events.n_obs == 0 and row["flags"].startswith("excluded: ") and "bad.fcs" in row["flags"]
            assert "bad.fcs" in metadata["excluded"]
            assert "bad.fcs" in json.loads(Path(outputs["qc_details"]).read_text())["excluded"]
    outputs = {name: str(tmp_path / f"fail_{name}{suffixes[name]}") for name in names}
    with pytest.raises(FcsReadError, match="bad.fcs"):
        preprocess_sample_files("bad", str(bad), str(panel), {}, study_day=None, transforms_path=None, matrix_path=None,
                                on_bad_file="fail", outputs=outputs, log=log)
    assert not any(Path(path).exists() for path in outputs.values())
