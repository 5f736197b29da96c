"""`cytotrial init` on files with another naming scheme and channel order: the project it writes runs to the
report with no edits but the clinical tables."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys

import flowkit as fk
import numpy as np
import pandas as pd
import pytest
import yaml

from cytotrial.cli import main
from cytotrial.io.fcs_writer import write_fcs
from cytotrial.gating.template import load_template
from cytotrial.io.panel import Panel, normalise_name

from .conftest import REPO

PATTERN = r"(?P<date>\d{8})_(?P<patient>P\d+)_(?P<visit>[A-Z]+\d+)_"
RESPELLED = {"FOXP3": "FoxP3", "HLA-DR": "HLA DR"}  # other spellings in every file
KEPT_KEYWORDS = ("spillover", "timestep", "cyt", "date", "btim", "etim", "creator")


def rename_and_reorder(small_trial, folder) -> dict[str, str]:
    """Each file of the small trial as `20250303_P01_D0_PB-Treg12c_001.fcs`, channels in another order, stains
    spelled otherwise, and in one file CD127 named 'IL-7Ra'. Returns file name -> sample id."""
    folder.mkdir()
    names = {}
    rng = np.random.default_rng(5)
    for i, row in enumerate(small_trial["samples"].itertuples()):
        sample = fk.Sample(row.fcs, subsample=0)
        order = rng.permutation(len(sample.pnn_labels))
        stains = [RESPELLED.get(s, s) for s in sample.pns_labels]
        if i == 1:
            stains = ["IL-7Ra" if s == "CD127" else s for s in stains]
        raw = sample.get_events(source="raw")
        raw[:, sample.time_index] /= float(sample.metadata["timestep"])  # back to Time ticks, as written
        keywords = {f"${k.upper()}" if k != "creator" else "CREATOR": sample.metadata[k] for k in KEPT_KEYWORDS}
        date = dt.datetime.strptime(sample.metadata["date"], "%d-%b-%Y").date()
        name = f"{date:%Y%m%d}_{row.patient_id}_{row.visit}_PB-Treg12c_001.fcs"
        write_fcs(folder / name, raw[:, order], [sample.pnn_labels[j] for j in order], [stains[j] for j in order],
                  keywords=keywords)
        names[name] = row.sample_id
    return names


@pytest.fixture(scope="module")
def initialised(small_trial, tmp_path_factory):
    base = tmp_path_factory.mktemp("init")
    names = rename_and_reorder(small_trial, base / "fcs")
    project = base / "mytrial"
    assert main(["init", str(base / "fcs"), "--out", str(project), "--pattern", PATTERN, "--baseline-day", "-1"]) == 0
    return project, names


def test_init_drafts_the_sample_sheet_and_panel(initialised, small_trial):
    project, names = initialised
    sheet = pd.read_csv(project / "config/samples.tsv", sep="\t")
    design = small_trial["samples"].set_index("sample_id")
    assert sorted(sheet.sample_id) == sorted(design.index)
    sheet = sheet.set_index("sample_id")
    assert (sheet.patient_id == design.loc[sheet.index, "patient_id"]).all()
    assert (sheet.visit == design.loc[sheet.index, "visit"]).all()
    assert (sheet.study_day == design.loc[sheet.index, "study_day"]).all()  # D0 -1, W4 28 as the simulator's
    # batches: one per acquisition day (each sample of the small trial is acquired on a day of its own)
    assert sheet.batch.nunique() == len(sheet) and sheet.batch.str.fullmatch(r"run\d\d").all()
    assert {names[p.split("/")[-1]] for p in sheet.fcs} == set(sheet.index)
    config = yaml.safe_load((project / "config/config.yaml").read_text())
    assert config == {"visits": ["D0", "W4"]}  # only what differs from the defaults
    proposed = Panel.from_yaml(project / "config/panel.yaml")
    demo = Panel.from_yaml(REPO / "config/panel.yaml")
    assert {normalise_name(m) for m in proposed.markers} == {normalise_name(m) for m in demo.markers}
    assert load_template(REPO / "config/gating/default.yaml").dims() <= {*proposed.markers, *proposed.scatter}
    assert proposed.markers["CD127"] == ("IL-7Ra",) and proposed.markers["FOXP3"] == ("FoxP3",)
    assert proposed.scatter == demo.scatter and proposed.time == "Time"
    report = (project / "init_report.txt").read_text()
    assert "PE-Cy7-A is stained 'IL-7Ra', not 'CD127'" in report, report
    assert "PE-Cy7-A: CD127 (7 files), IL-7Ra (1 file)" in report and "Time: (no stain name) (8 files)" in report
    assert "$CYT LSRFortessa X-20: 8 file(s)" in report and "R66020000017" not in report
    patients = pd.read_csv(project / "config/patients.tsv", sep="\t")
    assert list(patients.columns) == ["patient_id", "cohort", "dose_1e6_per_kg"] and patients.cohort.isna().all()


def test_init_explains_what_it_cannot_infer(initialised, tmp_path):
    project, names = initialised
    code = main(["init", str(project.parent / "fcs"), "--out", str(tmp_path / "x"), "--pattern", r"(?P<patient>Q\d)"])
    assert code == 1
    folder = tmp_path / "some"
    folder.mkdir()
    for k, name in enumerate(list(names)[:3]):  # the first named otherwise: the pattern does not match it
        shutil.copy(project.parent / "fcs" / name, folder / (name.replace("_PB", "-PB") if k == 0 else name))
    (folder / "broken.fcs").write_bytes(b"FCS3.1" + b" " * 20)
    from cytotrial.init_project import init_project
    report = init_project(folder, tmp_path / "p", pattern=PATTERN)
    messages = report.text()
    assert "broken.fcs" in messages and "too short to be an FCS file" in messages
    assert "pattern" in messages and "does not match" in messages
    assert "fill in config/patients.tsv" in messages and "fill in config/platelets.tsv" in messages


def test_empty_patient_cells_are_named(initialised):
    project, _ = initialised
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(project)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "line 2: cohort of patient 'P01' is empty" in output, output[-2000:]


def test_the_initialised_project_runs_to_the_report(initialised, small_trial):
    """From the repository root, as the README says: `snakemake --directory DIR`, then `--report`."""
    project, _ = initialised
    work = project.parent / "run"
    shutil.copytree(project, work)
    small_trial["patients"].to_csv(work / "config/patients.tsv", sep="\t", index=False)
    shutil.copy(small_trial["dir"] / "clinical/platelets.tsv", work / "config/platelets.tsv")
    command = [sys.executable, "-m", "snakemake", "--directory", str(work), "--cores", "2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = subprocess.run([*command[:-2], "--report", str(work / "report.html")], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert report.returncode == 0 and (work / "report.html").stat().st_size > 100_000, report.stderr[-2000:]
    populations = pd.read_csv(work / "results/tables/populations.tsv", sep="\t")
    truth = pd.read_csv(small_trial["dir"] / "truth/frequencies.tsv", sep="\t")
    treg = populations[populations.population == "Treg"].set_index("sample_id").percent_of
    true_treg = truth[truth.population == "Treg"].set_index("sample_id").percent_of_parent
    assert len(treg) == 8 and (treg - true_treg[treg.index]).abs().max() < 1.0
    summary = (work / "results/report/summary.html").read_text()
    assert "infusion" not in summary and "8 samples from 4 patients" in summary  # no demo wording without labels in the config


def test_a_clinical_table_fills_the_patients_and_sets_day_0(initialised, small_trial, tmp_path):
    """Doses in cells/kg become x10^6/kg; study days count from each patient's day0_date."""
    project, names = initialised
    patients = small_trial["patients"]
    first_dates = {}
    for name in names:  # the D0 file's date is the day before day 0 in the simulator's trial
        date, patient, visit = name.split("_")[:3]
        if visit == "D0":
            first_dates[patient] = dt.datetime.strptime(date, "%Y%m%d").date() + dt.timedelta(days=1)
    clinical = pd.DataFrame({"patient_id": patients.patient_id, "cohort": patients.cohort,
                             "dose_per_kg": patients.dose_1e6_per_kg * 1e6,
                             "day0_date": [first_dates[p].isoformat() for p in patients.patient_id],
                             "sex": "F"})
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    from cytotrial.init_project import init_project
    report = init_project(project.parent / "fcs", tmp_path / "p", pattern=PATTERN, clinical=tmp_path / "clinical.csv")
    written = pd.read_csv(tmp_path / "p/config/patients.tsv", sep="\t")
    assert written.to_dict("list") == {"patient_id": list(patients.patient_id), "cohort": list(patients.cohort),
                                       "dose_1e6_per_kg": list(patients.dose_1e6_per_kg)}
    sheet = pd.read_csv(tmp_path / "p/config/samples.tsv", sep="\t").set_index("sample_id")
    design = small_trial["samples"].set_index("sample_id")
    assert (sheet.study_day == design.loc[sheet.index, "study_day"]).all()
    text = report.text()
    assert "day0_date (clinical table)" in text and "['sex'] not used" in text
    assert "fill in config/patients.tsv" not in text
