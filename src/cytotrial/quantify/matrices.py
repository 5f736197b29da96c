"""AnnData views: samples x populations (every statistic as a layer) and one sample's gated events."""

from __future__ import annotations

import re
import zlib

import anndata as ad
import numpy as np
import pandas as pd

from ..gating.engine import GatingResult

SAMPLE_COLUMNS = ["sample_id", "patient_id", "visit", "study_day", "batch", "cohort", "dose_1e6_per_kg"]
RESPONSE_COLUMNS = ["best_response", "responded", "time_to_response_days", "loss_of_response"]
LAYERS = ["count", "parent_count", "percent_of_parent", "percent_of", "abs_count"]


def population_anndata(populations: pd.DataFrame, mfi: pd.DataFrame | None = None,
                       responses: pd.DataFrame | None = None) -> ad.AnnData:
    """Samples x populations: ``X`` = % of the reporting denominator, one layer per statistic.

    Parameters
    ----------
    populations
        Merged long population table (:func:`cytotrial.quantify.merge_population_tables`, with ``abs_count``
        when absolute counts are configured).
    mfi
        Merged long MFI table (sample_id, population, marker, mfi); each marker becomes a layer ``mfi_<marker>``.
    responses
        Per-patient response (patient_id, best_response, responded, ...), joined to the samples in ``obs``.

    Returns
    -------
    AnnData
        obs: one row per sample (sheet, patient and response columns), in the table's order; var: populations
        (parent, denominator) in template order; layers: :data:`LAYERS` present in the table, ``mfi_<marker>``
        (characters other than letters, digits, '_.+-' replaced by '_'; ``uns['mfi_layers']`` maps them back);
        missing values are NaN.
    """
    samples = list(dict.fromkeys(populations["sample_id"]))
    names = list(dict.fromkeys(populations["population"]))
    obs = populations.drop_duplicates("sample_id").set_index("sample_id", drop=False)
    obs = obs[[c for c in SAMPLE_COLUMNS if c in obs.columns]].loc[samples]
    if responses is not None:
        keep = ["patient_id"] + [c for c in RESPONSE_COLUMNS if c in responses.columns]
        obs = obs.reset_index(drop=True).merge(responses[keep], on="patient_id", how="left",
                                               validate="many_to_one").set_index("sample_id", drop=False)
    obs.index = obs.index.astype(str)
    obs.index.name = None
    var = populations.drop_duplicates("population").set_index("population")[["parent", "denominator"]].loc[names]
    var.index.name = None
    layers = {}
    for column in LAYERS:
        if column in populations.columns:
            layers[column] = _matrix(populations, column, samples, names)
    mfi_layers = {}
    if mfi is not None and len(mfi):
        for marker in dict.fromkeys(mfi["marker"]):
            name = "mfi_" + re.sub(r"[^A-Za-z0-9_.+-]", "_", str(marker))  # '/' would nest groups in h5ad
            mfi_layers[name] = str(marker)
            layers[name] = _matrix(mfi[mfi["marker"] == marker], "mfi", samples, names)
    adata = ad.AnnData(X=layers.get("percent_of", _matrix(populations, "percent_of", samples, names)),
                       obs=_plain_columns(obs), var=var, layers=layers)
    adata.uns["mfi_layers"] = mfi_layers  # layer -> marker
    return adata


def _matrix(table: pd.DataFrame, column: str, samples: list[str], names: list[str]) -> np.ndarray:
    wide = table.pivot_table(index="sample_id", columns="population", values=column, aggfunc="first", dropna=False)
    return wide.reindex(index=samples, columns=names).to_numpy(dtype=np.float64)


def _plain_columns(obs: pd.DataFrame) -> pd.DataFrame:
    """Nullable and object columns as types h5ad stores (strings, floats)."""
    obs = obs.copy()
    for column in obs.columns:
        if obs[column].dtype == object or str(obs[column].dtype) in ("boolean", "string"):
            obs[column] = obs[column].astype(str).replace({"<NA>": "", "nan": "", "None": ""})
        elif str(obs[column].dtype).startswith("Int"):
            obs[column] = obs[column].astype("float64")
    return obs


def event_anndata(result: GatingResult, adata: ad.AnnData, sample_id: str, max_events: int,
                  *, seed: int = 0) -> ad.AnnData:
    """One sample's gated events, subsampled for pooled analysis.

    At most ``max_events`` events are kept, drawn without replacement by a generator seeded from ``seed`` and
    the sample id (deterministic, independent of other samples), in their acquisition order.

    Returns
    -------
    AnnData
        events x channels: ``X`` gating units, ``layers['compensated']`` linear values; ``obs``: sample_id and
        one bool column per population (membership; False for a missing population, listed in
        ``uns['missing_populations']``); ``var``: channels with their transform parameters; ``uns``: sample id,
        populations with parents, events before subsampling, ``transforms`` (channel -> transform and parameters).
    """
    gated = np.flatnonzero(result.masks["root"])  # the events gated (QC-kept): event i is the i-th of them
    n = gated.size
    positions = np.arange(n)
    if n > max_events:
        rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(sample_id.encode())]))
        positions = np.sort(rng.choice(n, size=max_events, replace=False))
    rows = gated[positions]
    membership = {g["population"]: result.masks[g["population"]][rows] for g in result.gates}
    obs = pd.DataFrame({"sample_id": pd.Categorical([sample_id] * rows.size), **membership},
                       index=[f"{sample_id}-{i}" for i in positions])
    events = ad.AnnData(X=np.asarray(adata.X[rows], dtype=np.float32), obs=obs, var=adata.var.copy(),
                        layers={"compensated": np.asarray(adata.layers["compensated"][rows], dtype=np.float32)})
    events.uns["sample_id"] = sample_id
    events.uns["populations"] = {g["population"]: g["parent"] for g in result.gates}
    events.uns["missing_populations"] = [g["population"] for g in result.gates if g["status"] != "ok"]
    events.uns["events_gated"] = int(n)
    params = [c for c in ("transform", "t", "w", "m", "a", "cofactor") if c in adata.var.columns]
    events.uns["transforms"] = {str(channel): {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
                                               if not (isinstance(v, float) and np.isnan(v))}
                                for channel, row in adata.var[params].iterrows()}
    return events
