"""Absolute counts (cells/uL of blood) from a reference population counted by the haematology analyser, or from
counting beads.

Dual-platform counting: a population's cells/uL = its events / the reference population's events x the
reference's cells/uL from the blood count (e.g. lymphocytes_per_uL for populations within lymphocytes, wbc_per_uL
for leukocyte populations). Each population uses the first configured reference that is itself or one of its
ancestors, so list the narrower reference first (lymphocytes before leukocytes).
Single-platform counting with beads: cells/uL = events / bead events x beads/uL of the tube (applies to every
population, as beads are not an ancestor of cells).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class AbsoluteCountError(ValueError):
    """The absolute-count settings or the blood-count table are inconsistent."""


def absolute_counts(populations: pd.DataFrame, references: list[dict], blood_counts: pd.DataFrame | None,
                    source: str = "blood count table") -> pd.DataFrame:
    """Add ``abs_count`` (cells/uL) and ``abs_reference`` to a merged population table.

    Parameters
    ----------
    populations
        Long table: sample_id, population, parent, count (one row per sample and population).
    references
        In order of preference: ``{"population": name, "column": blood-count column}`` (applies to the population
        and its descendants) or ``{"population": beads, "per_uL": beads per uL}`` (applies to all).
    blood_counts
        sample_id and the referenced columns (cells/uL); None when there is none (no reference by column then).

    Returns
    -------
    DataFrame
        ``populations`` with ``abs_count`` (NA where no reference applies, the reference is missing in the sample
        or has no events) and ``abs_reference`` (e.g. "lymphocytes x lymphocytes_per_uL"; "" when none applies).
    """
    table = populations.copy()
    names = set(table["population"])
    parents = dict(zip(table["population"], table["parent"]))
    for number, ref in enumerate(references, start=1):
        if ref.get("population") not in names:
            raise AbsoluteCountError(f"absolute_counts reference {number} names population '{ref.get('population')}'"
                                     f", which the gating template does not define ({sorted(names)}).")
        if ("column" in ref) == ("per_uL" in ref):
            raise AbsoluteCountError(f"absolute_counts reference {number} ('{ref['population']}'): give either "
                                     "'column' (a blood-count column, cells/uL) or 'per_uL' (counting beads per uL).")
        if "column" in ref and (blood_counts is None or ref["column"] not in blood_counts.columns):
            have = [] if blood_counts is None else [c for c in blood_counts.columns if c != "sample_id"]
            raise AbsoluteCountError(f"absolute_counts reference {number} uses column '{ref['column']}', which the "
                                     f"{source} does not have (columns: {have}). Fix the column name or the table.")
    choice = {population: _reference_for(population, parents, references) for population in names}
    counts = table.pivot_table(index="sample_id", columns="population", values="count", aggfunc="first")
    per_ul = blood_counts.set_index("sample_id") if blood_counts is not None else pd.DataFrame()
    values, labels = [], []
    for row in table[["sample_id", "population", "count"]].itertuples(index=False):
        ref = choice[row.population]
        if ref is None or pd.isna(row.count):
            values.append(np.nan)
            labels.append("" if ref is None else _label(ref))
            continue
        ref_events = counts.at[row.sample_id, ref["population"]] if row.sample_id in counts.index else np.nan
        ref_per_ul = ref.get("per_uL", np.nan)
        if "column" in ref:
            ref_per_ul = per_ul.at[row.sample_id, ref["column"]] if row.sample_id in per_ul.index else np.nan
        ok = not pd.isna(ref_events) and ref_events > 0 and not pd.isna(ref_per_ul)
        values.append(float(row.count) / float(ref_events) * float(ref_per_ul) if ok else np.nan)
        labels.append(_label(ref))
    table["abs_count"] = values
    table["abs_reference"] = labels
    return table


def _reference_for(population: str, parents: dict[str, str], references: list[dict]) -> dict | None:
    """The first reference (in the configured order) that applies: beads, or the population or an ancestor."""
    lineage, node = set(), population
    while node not in lineage:
        lineage.add(node)
        if node not in parents:
            break
        node = parents[node]
    return next((ref for ref in references if "per_uL" in ref or ref["population"] in lineage), None)


def _label(ref: dict) -> str:
    return (f"{ref['population']} x {ref['column']}" if "column" in ref
            else f"{ref['population']} x {ref['per_uL']:g} beads/uL")
