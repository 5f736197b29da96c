"""Population MFI, absolute counts, QC columns and the AnnData views."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cytotrial.gating.engine import apply_template
from cytotrial.gating.template import load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs
from cytotrial.quantify import (AbsoluteCountError, absolute_counts, add_qc_columns, event_anndata,
                                population_anndata, population_mfi, population_table)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gated(small_trial):
    fcs = str(small_trial["samples"].fcs.iloc[0])
    adata, _ = preprocess_fcs(fcs, "P01_D0", Panel.from_yaml(REPO / "config" / "panel.yaml"),
                              {"transform": {"fluorescence": "logicle"}})
    adata = adata[adata.obs["qc_keep"].to_numpy()].copy()
    return adata, apply_template(adata, load_template(REPO / "config" / "gating" / "default.yaml"))


def test_mfi_is_the_median_of_the_population_events(gated):
    adata, result = gated
    table = population_mfi(result, adata, "P01_D0")
    fluorescence = adata.var[adata.var.kind == "fluorescence"]
    assert len(table) == len(result.gates) * len(fluorescence)
    cd4 = result.masks["CD4"]
    j = list(adata.var.marker).index("CD4")
    row = table[(table.population == "CD4") & (table.marker == "CD4")].iloc[0]
    assert row.mfi == pytest.approx(float(np.median(adata.layers["compensated"][cd4, j])))
    assert row.mfi_gating_units == pytest.approx(float(np.median(adata.X[cd4, j])))
    assert row.events == int(cd4.sum())
    treg_foxp3 = table[(table.population == "Treg") & (table.marker == "FOXP3")].mfi.iloc[0]
    cd4_foxp3 = table[(table.population == "CD4") & (table.marker == "FOXP3")].mfi.iloc[0]
    assert treg_foxp3 > 5 * cd4_foxp3  # FOXP3 is bright on Treg only


def test_mfi_of_a_missing_population_is_na_not_zero(gated):
    adata, _ = gated
    template = load_template(REPO / "config" / "gating" / "default.yaml")
    sparse = apply_template(adata[:300].copy(), template)
    table = population_mfi(sparse, adata[:300].copy(), "s")
    missing = {g["population"] for g in sparse.gates if g["status"] != "ok"}
    assert missing and table[table.population.isin(missing)].mfi.isna().all()


def _long(counts: dict[str, dict[str, int | None]], parents: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"sample_id": s, "population": p, "parent": parents[p], "count": c}
                         for s, by_population in counts.items() for p, c in by_population.items()])


PARENTS = {"leukocytes": "live", "lymphocytes": "leukocytes", "T": "lymphocytes", "monocytes": "leukocytes",
           "live": "root"}


def test_absolute_counts_use_the_narrowest_reference_by_hand():
    table = _long({"s1": {"live": 1200, "leukocytes": 1000, "lymphocytes": 300, "T": 210, "monocytes": 80},
                   "s2": {"live": 900, "leukocytes": 800, "lymphocytes": 0, "T": None, "monocytes": 40}}, PARENTS)
    blood = pd.DataFrame({"sample_id": ["s1", "s2"], "wbc_per_uL": [6000, 5000],
                          "lymphocytes_per_uL": [1800, np.nan]})
    refs = [{"population": "lymphocytes", "column": "lymphocytes_per_uL"},
            {"population": "leukocytes", "column": "wbc_per_uL"}]
    out = absolute_counts(table, refs, blood).set_index(["sample_id", "population"])
    assert out.loc[("s1", "T"), "abs_count"] == pytest.approx(210 / 300 * 1800)  # 1260 cells/uL
    assert out.loc[("s1", "lymphocytes"), "abs_count"] == pytest.approx(1800)
    assert out.loc[("s1", "monocytes"), "abs_count"] == pytest.approx(80 / 1000 * 6000)
    assert out.loc[("s1", "T"), "abs_reference"] == "lymphocytes x lymphocytes_per_uL"
    assert pd.isna(out.loc[("s1", "live"), "abs_count"]) and out.loc[("s1", "live"), "abs_reference"] == ""
    assert pd.isna(out.loc[("s2", "T"), "abs_count"])  # population missing
    assert pd.isna(out.loc[("s2", "lymphocytes"), "abs_count"])  # no lymphocyte count in the blood count
    assert out.loc[("s2", "monocytes"), "abs_count"] == pytest.approx(40 / 800 * 5000)


def test_counting_beads_apply_to_every_population():
    parents = {**PARENTS, "beads": "root"}
    table = _long({"s1": {"live": 1200, "leukocytes": 1000, "lymphocytes": 300, "T": 210, "monocytes": 80,
                          "beads": 500}}, parents)
    out = absolute_counts(table, [{"population": "beads", "per_uL": 1000}], None).set_index("population")
    assert out.loc["T", "abs_count"] == pytest.approx(210 / 500 * 1000)
    assert out.loc["T", "abs_reference"] == "beads x 1000 beads/uL"


def test_absolute_count_settings_errors_name_the_problem():
    table = _long({"s1": {"live": 10, "leukocytes": 8, "lymphocytes": 3, "T": 2, "monocytes": 1}}, PARENTS)
    blood = pd.DataFrame({"sample_id": ["s1"], "wbc_per_uL": [6000]})
    with pytest.raises(AbsoluteCountError, match=r"'granulocytes'.*does not define"):
        absolute_counts(table, [{"population": "granulocytes", "column": "wbc_per_uL"}], blood)
    with pytest.raises(AbsoluteCountError, match=r"column 'lymphs'.*counts.tsv.*\['wbc_per_uL'\]"):
        absolute_counts(table, [{"population": "lymphocytes", "column": "lymphs"}], blood, source="counts.tsv")


def test_qc_columns_join_by_sample():
    table = _long({"s1": {"live": 10}, "s2": {"live": 5}}, PARENTS)
    qc = pd.DataFrame({"sample_id": ["s1", "s2"], "percent_removed": [1.5, 80.0], "flags": ["", "removed>70%"]})
    out = add_qc_columns(table, qc)
    assert out.qc_percent_removed.tolist() == [1.5, 80.0] and out.qc_flags.tolist() == ["", "removed>70%"]


def test_population_anndata_layers_match_the_long_tables(gated, tmp_path):
    adata, result = gated
    rows = []
    for sample_id, patient in (("P01_D0", "P01"), ("P01_W4", "P01")):
        table = population_table(result, sample_id).assign(patient_id=patient, visit=sample_id[-2:], study_day=0,
                                                           batch="b", cohort="A", dose_1e6_per_kg=0.5)
        rows.append(table)
    populations = pd.concat(rows, ignore_index=True)
    populations.loc[populations.sample_id == "P01_W4", "count"] = 7
    mfi = pd.concat([population_mfi(result, adata, s) for s in ("P01_D0", "P01_W4")], ignore_index=True)
    responses = pd.DataFrame({"patient_id": ["P01"], "best_response": ["R"], "responded": [True]})
    matrix = population_anndata(populations, mfi, responses)
    assert matrix.shape == (2, len(result.gates))
    assert list(matrix.obs.best_response) == ["R", "R"]
    j = list(matrix.var_names).index("Treg")
    treg = populations[(populations.sample_id == "P01_D0") & (populations.population == "Treg")].iloc[0]
    assert matrix.X[0, j] == pytest.approx(treg.percent_of)
    assert matrix.layers["count"][1, j] == 7
    assert "mfi_Live_Dead" in matrix.layers and matrix.uns["mfi_layers"]["mfi_Live_Dead"] == "Live/Dead"
    matrix.write_h5ad(tmp_path / "p.h5ad")
    back = ad.read_h5ad(tmp_path / "p.h5ad")
    np.testing.assert_array_equal(back.layers["count"], matrix.layers["count"])


def test_event_anndata_subsample_is_seeded_and_keeps_memberships(gated):
    adata, result = gated
    events = event_anndata(result, adata, "P01_D0", max_events=5000)
    again = event_anndata(result, adata, "P01_D0", max_events=5000)
    other = event_anndata(result, adata, "P02_D0", max_events=5000)
    assert events.n_obs == 5000 and list(events.obs_names) == list(again.obs_names)
    assert list(events.obs_names) != list(other.obs_names)  # seeded by the sample id
    rows = np.array([int(name.split("-")[1]) for name in events.obs_names])
    assert (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(events.obs["Treg"].to_numpy(), result.masks["Treg"][rows])
    np.testing.assert_array_equal(events.X, adata.X[rows])
    assert events.uns["populations"]["Treg"] == "CD25hi_CD127lo" and events.uns["events_gated"] == adata.n_obs
    foxp3 = adata.var[adata.var.marker == "FOXP3"].iloc[0]
    assert events.uns["transforms"][foxp3.channel] == {"transform": "logicle", "t": foxp3.t, "w": foxp3.w,
                                                      "m": foxp3.m, "a": foxp3.a}


def test_every_mfi_equals_numpy_median_of_the_population(gated):
    adata, result = gated
    table = population_mfi(result, adata, "P01_D0").set_index(["population", "marker"])
    markers = list(adata.var.marker)
    for gate in result.gates:
        if gate["status"] != "ok" or not result.masks[gate["population"]].any():
            continue
        mask = result.masks[gate["population"]]
        for marker in adata.var.marker[adata.var.kind == "fluorescence"]:
            j = markers.index(marker)
            row = table.loc[(gate["population"], marker)]
            assert row.mfi == float(np.median(adata.layers["compensated"][mask, j])), (gate["population"], marker)
            assert row.mfi_gating_units == float(np.median(adata.X[mask, j])), (gate["population"], marker)
