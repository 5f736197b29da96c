"""The Excel workbook: README first, frozen headers, filters, formats, widths, and every column described."""

from __future__ import annotations

import time

import numpy as np
import openpyxl
import pandas as pd
import pytest

from cytotrial.report.workbook import (COLUMN_DESCRIPTIONS, FORMATS, NO_DESCRIPTION, missing_descriptions,
                                       write_workbook)
from cytotrial.response import RESPONSE_COLUMNS
from cytotrial.stats.changes import CHANGE_TEST_COLUMNS, COMPARISON_COLUMNS, PRIMARY_COLUMNS, change_tables
from cytotrial.stats.analysis import STATISTICS_TABLES
from cytotrial.stats.immune_change import CHANGE_COLUMNS
from cytotrial.stats.models import (ASSOCIATION_COLUMNS, MODEL_COLUMNS, RMCORR_COLUMNS, change_association_table,
                                    count_model_table, mixed_model_table, rmcorr_table)
from cytotrial.stats.rescue import FLAG_COLUMNS

VISITS = ["D0", "W4", "W12"]
POPULATION_COLUMNS = ["sample_id", "patient_id", "visit", "study_day", "batch", "cohort", "dose_1e6_per_kg",
                      "population", "parent", "count", "parent_count", "percent_of_parent", "denominator",
                      "denominator_count", "percent_of", "status", "reason"]


def _populations(n_patients=8, seed=5):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        for visit, day in zip(VISITS, [-1, 28, 84], strict=True):
            for population, parent, share in [("CD4", "T", 0.6), ("Treg", "CD4", 0.04 * (1 + (i % 2) * (day > 0)))]:
                parent_count = int(rng.integers(3000, 6000))
                count = int(rng.binomial(parent_count, share))
                rows.append({"sample_id": f"P{i}_{visit}", "patient_id": f"P{i}", "visit": visit, "study_day": day,
                             "batch": "run001", "cohort": "AB"[i % 2], "dose_1e6_per_kg": 0.5 * (1 + i % 2),
                             "population": population, "parent": parent, "count": count,
                             "parent_count": parent_count, "percent_of_parent": 100 * count / parent_count,
                             "denominator": parent, "denominator_count": parent_count,
                             "percent_of": 100 * count / parent_count, "status": "ok", "reason": ""})
    populations = pd.DataFrame(rows)
    responses = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n_patients)],
                              "responded": [i % 2 == 1 for i in range(n_patients)]})
    platelets = populations[["patient_id", "study_day"]].drop_duplicates().assign(
        study_day=lambda d: d["study_day"].clip(lower=0), platelets_1e9_per_L=lambda d: 10 + d.index % 7 * 5.0)
    return populations, responses, platelets


@pytest.fixture(scope="module")
def all_tables():
    populations, responses, platelets = _populations()
    tables = change_tables(populations, responses, VISITS, "D0")
    grouped = populations.assign(response_group=populations["patient_id"].map(
        responses.set_index("patient_id")["responded"]).map({True: "responder", False: "non-responder"}))
    tables["mixed_model"] = mixed_model_table(grouped, VISITS, "D0")
    tables["count_model"] = count_model_table(grouped, VISITS, "D0")
    tables["rmcorr"] = rmcorr_table(grouped, platelets)
    tables["platelet_change"] = change_association_table(grouped, platelets, VISITS, "D0")
    tables["populations"] = grouped
    return tables


def test_every_column_of_our_tables_is_described(all_tables):
    assert missing_descriptions(all_tables) == {}
    declared = [*CHANGE_TEST_COLUMNS, *COMPARISON_COLUMNS, *PRIMARY_COLUMNS, *MODEL_COLUMNS, *RMCORR_COLUMNS,
                *ASSOCIATION_COLUMNS, *RESPONSE_COLUMNS, *CHANGE_COLUMNS, *POPULATION_COLUMNS, *FLAG_COLUMNS,
                *(c for columns in STATISTICS_TABLES.values() for c in columns)]
    assert [c for c in declared if c not in COLUMN_DESCRIPTIONS] == []


def test_workbook_layout(tmp_path, all_tables):
    tables = {**all_tables, "extra": pd.DataFrame({"mystery": [1.5], "p_value": [3e-7], "n": [4],
                                                   "flag": [pd.NA]})}
    path = write_workbook(tables, tmp_path / "changes.xlsx", notes={"changes": "All patients."}, max_width=30)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["README", *tables]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == sheet.dimensions
        cap = 100 if sheet.title == "README" else 30  # the README's description column is wider
        assert all(d.width <= cap for d in sheet.column_dimensions.values())
    readme = pd.DataFrame(list(book["README"].values)[1:], columns=["sheet", "column", "description"])
    assert readme.iloc[0].tolist() == ["changes", None, "All patients."]
    described = readme.dropna(subset=["column"])
    assert len(described) == sum(t.shape[1] for t in tables.values())
    assert described.set_index(["sheet", "column"]).loc[("extra", "mystery"), "description"] == NO_DESCRIPTION
    assert (described[described["sheet"] != "extra"]["description"] != NO_DESCRIPTION).all()

    extra = book["extra"]
    assert [c.value for c in extra[1]] == ["mystery", "p_value", "n", "flag"]
    assert [c.number_format for c in extra[2]][:3] == [FORMATS["number"], FORMATS["pvalue"], FORMATS["int"]]
    assert extra["B2"].value == pytest.approx(3e-7) and extra["D2"].value is None
    changes = book["changes"]
    header = [c.value for c in changes[1]]
    assert changes.cell(row=2, column=header.index("median") + 1).number_format == "0.00"
    assert changes.cell(row=2, column=header.index("n") + 1).number_format == "0"
    assert all(d.width <= 30 for k, d in changes.column_dimensions.items())
    fdr = changes.column_dimensions[changes.cell(row=1, column=header.index("fdr_family") + 1).column_letter]
    assert fdr.width == 30  # long text capped
    assert changes.column_dimensions["C"].width >= len("population") + 2


def test_cell_contents_are_deterministic(tmp_path, all_tables):
    first = write_workbook(all_tables, tmp_path / "a.xlsx")
    time.sleep(2.1)  # zip entries are dated to 2 s, openpyxl's created / modified properties to 1 s
    second = write_workbook(all_tables, tmp_path / "b.xlsx")
    a, b = openpyxl.load_workbook(first), openpyxl.load_workbook(second)
    for name in a.sheetnames:
        assert list(a[name].values) == list(b[name].values)
    assert first.read_bytes() == second.read_bytes()  # no time of writing in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xlsx", "b.xlsx"]  # no temporary file left
    assert a.properties.created.year == 1980 and a.properties.modified.year == 1980


def test_bad_sheet_names_and_tables(tmp_path):
    table = pd.DataFrame({"n": [1]})
    for name in ["README", "readme", "a" * 32, "bad/name", ""]:
        with pytest.raises(ValueError, match="sheet name"):
            write_workbook({name: table}, tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="repeated"):
        write_workbook({"Sheet": table, "sheet": table}, tmp_path / "x.xlsx")
    with pytest.raises(TypeError, match="not a DataFrame"):
        write_workbook({"s": [1, 2]}, tmp_path / "x.xlsx")
