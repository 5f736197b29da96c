"""Population statistics of one gated sample, and the merged table of all samples."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd

from ..gating.engine import GatingResult
from ..gating.methods import dimension_index
from ..preprocess.transforms import inverse_transform

POPULATION_COLUMNS = ["sample_id", "population", "parent", "count", "parent_count", "percent_of_parent",
                      "denominator", "denominator_count", "percent_of", "status", "reason", "gate_flag"]


def population_table(result: GatingResult, sample_id: str) -> pd.DataFrame:
    """Count, % of parent and % of the reporting denominator of every gated population.

    The denominator is the named ancestor the template reports the population against (``percent_of``; e.g.
    Treg as % of CD4), the parent by default. A missing population has NA counts and percentages and a reason.
    ``gate_flag`` says why the gate deserves a look ('' when it was placed as its method intends): a fall-back
    taken, a cut clipped to its range, a mixture without a component near its target.

    Returns
    -------
    DataFrame
        One row per population, in template order, with :data:`POPULATION_COLUMNS`.
    """
    counts = {"root": int(np.count_nonzero(result.masks["root"]))}
    counts.update({g["population"]: g["count"] for g in result.gates})
    rows = []
    for gate in result.gates:
        missing = gate["status"] != "ok"
        count = None if missing else gate["count"]
        parent_count = gate["parent_count"]
        denominator_count = counts[gate["percent_of"]]
        rows.append({"sample_id": sample_id, "population": gate["population"], "parent": gate["parent"],
                     "count": count, "parent_count": parent_count,
                     "percent_of_parent": _percent(count, parent_count),
                     "denominator": gate["percent_of"], "denominator_count": denominator_count,
                     "percent_of": _percent(count, denominator_count),
                     "status": gate["status"], "reason": gate["reason"], "gate_flag": gate.get("flag", "")})
    table = pd.DataFrame(rows, columns=POPULATION_COLUMNS)
    for column in ("count", "denominator_count"):
        table[column] = table[column].astype("Int64")
    return table


def _percent(count: int | None, total: int | None) -> float:
    return np.nan if count is None or not total else 100.0 * count / total


def realised_gates(result: GatingResult, adata: ad.AnnData) -> dict:
    """Every gate as applied to this sample, with cut points in gating units and in original (linear) units."""
    gates = []
    for gate in result.gates:
        record = {k: _plain(v) for k, v in gate.items()}
        for dim, cut in record.get("cuts", {}).items():
            j = dimension_index(adata, dim)
            cut["cut_linear"] = float(inverse_transform(adata.var.iloc[j].to_dict(), np.array([cut["cut"]]))[0])
        gates.append(record)
    return {"sample_id": adata.uns["sample_id"], "source_sha256": adata.uns["source_sha256"], "gates": gates}


def _plain(value):
    """numpy scalars and nested containers as plain Python, floats rounded to 6 significant digits."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(f"{float(value):.6g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def merge_population_tables(paths: list[str | os.PathLike], samples: pd.DataFrame,
                            patients: pd.DataFrame, visits: list[str]) -> pd.DataFrame:
    """All samples' population tables in one long table with the sample sheet and patient columns.

    Rows are ordered by patient, visit (in the configured order) and population (template order).
    """
    tables = [pd.read_csv(p, sep="\t", dtype={"sample_id": str}, keep_default_na=False, na_values=[""])
              for p in paths]
    merged = pd.concat(tables, ignore_index=True)
    merged["reason"] = merged["reason"].fillna("")
    merged["gate_flag"] = merged["gate_flag"].fillna("") if "gate_flag" in merged else ""
    info = samples[["sample_id", "patient_id", "visit", "study_day", "batch"]].merge(
        patients[["patient_id", "cohort", "dose_1e6_per_kg"]], on="patient_id", how="left", validate="many_to_one")
    merged = info.merge(merged, on="sample_id", how="inner", validate="one_to_many")
    population_order = {name: i for i, name in enumerate(dict.fromkeys(merged["population"]))}
    merged["_visit"] = merged["visit"].map({v: i for i, v in enumerate(visits)})
    merged["_population"] = merged["population"].map(population_order)
    merged = merged.sort_values(["patient_id", "_visit", "_population"], kind="stable")
    for column in ("count", "denominator_count"):
        merged[column] = merged[column].astype("Int64")
    return merged.drop(columns=["_visit", "_population"]).reset_index(drop=True)


def add_qc_columns(populations: pd.DataFrame, qc: pd.DataFrame) -> pd.DataFrame:
    """Add each sample's event-QC outcome: ``qc_percent_removed`` and ``qc_flags`` ('' when none)."""
    columns = qc.set_index("sample_id")[["percent_removed", "flags"]]
    table = populations.copy()
    table["qc_percent_removed"] = table["sample_id"].map(columns["percent_removed"])
    table["qc_flags"] = table["sample_id"].map(columns["flags"]).fillna("")
    return table
