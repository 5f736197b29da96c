"""Median fluorescence intensity (MFI) of every marker in every gated population of one sample."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from ..gating.engine import GatingResult

MFI_COLUMNS = ["sample_id", "population", "marker", "channel", "events", "mfi", "mfi_gating_units"]


def population_mfi(result: GatingResult, adata: ad.AnnData, sample_id: str) -> pd.DataFrame:
    """Median of every fluorescence marker within every gated population.

    ``mfi`` is the median of the compensated linear values (what FlowJo reports as the median of a
    compensated parameter); ``mfi_gating_units`` the median in the transformed (logicle/asinh) units gates are
    placed in. Missing populations and empty ones have NA medians (and 0 or NA events), never 0.

    Returns
    -------
    DataFrame
        :data:`MFI_COLUMNS`, one row per population (template order) and marker (panel order).
    """
    fluorescence = np.flatnonzero(adata.var["kind"].to_numpy() == "fluorescence")
    markers = adata.var["marker"].to_numpy()[fluorescence]
    channels = adata.var["channel"].to_numpy()[fluorescence] if "channel" in adata.var else \
        adata.var_names.to_numpy()[fluorescence]
    index_type = np.int32 if adata.n_obs < 2**31 else np.intp  # the populations' rows: 4 bytes per event
    rows = {g["population"]: np.flatnonzero(result.masks[g["population"]]).astype(index_type)
            for g in result.gates if g["status"] == "ok"}
    medians = {population: np.full((2, fluorescence.size), np.nan) for population in rows}
    for layer, values in enumerate((adata.layers["compensated"], adata.X)):
        for k, j in enumerate(fluorescence):  # one contiguous channel at a time, never a copy of the matrix
            column = np.ascontiguousarray(np.asarray(values)[:, j])
            for population, population_rows in rows.items():
                if population_rows.size:
                    medians[population][layer, k] = _median(column.take(population_rows))
    columns = {c: [] for c in MFI_COLUMNS}
    for gate in result.gates:
        ok = gate["status"] == "ok"
        events = float(rows[gate["population"]].size) if ok else np.nan
        linear_medians, transformed_medians = medians[gate["population"]] if ok else \
            np.full((2, fluorescence.size), np.nan)
        n = fluorescence.size
        for column, values in (("sample_id", [sample_id] * n), ("population", [gate["population"]] * n),
                               ("marker", list(markers)), ("channel", list(channels)), ("events", [events] * n),
                               ("mfi", list(linear_medians)), ("mfi_gating_units", list(transformed_medians))):
            columns[column].extend(values)
    table = pd.DataFrame(columns)
    table["events"] = table["events"].astype("Float64").astype("Int64")
    return table


def _median(values: np.ndarray) -> float:
    """np.median of a 1-D copy (overwritten), with one partition point instead of numpy's three: the same value,
    about 15x faster on a million events."""
    n = values.size
    if n == 0 or np.isnan(values).any():
        return float(np.median(values))
    k = n // 2
    values.partition(k)
    if n % 2:
        return float(values[k])
    return float(np.mean(np.array([values[:k].max(), values[k]], dtype=values.dtype)))
