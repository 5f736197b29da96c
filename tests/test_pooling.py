"""Gates fitted on the pooled events of an acquisition batch (template option ``pool: batch``)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from cytotrial.gating.engine import apply_template
from cytotrial.gating.methods import dimension_index
from cytotrial.gating.pooling import fit_pooled_gates
from cytotrial.gating.template import TemplateError, load_template
from cytotrial.io.panel import Panel
from cytotrial.preprocess.events import preprocess_fcs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def batch(small_trial) -> dict:
    """Three preprocessed samples (QC-kept events), as if acquired in one batch."""
    panel = Panel.from_yaml(REPO / "config" / "panel.yaml")
    samples = {}
    for row in small_trial["samples"].head(3).itertuples():
        adata, _ = preprocess_fcs(row.fcs, row.sample_id, panel, {"transform": {"fluorescence": "logicle"}})
        samples[row.sample_id] = adata[adata.obs["qc_keep"].to_numpy()].copy()
    return dict(sorted(samples.items()))


def _template(tmp_path, pooled: dict[str, str]):
    raw = yaml.safe_load((REPO / "config" / "gating" / "default.yaml").read_text())
    for entry in raw["populations"]:
        if entry["name"] in pooled:
            entry["pool"] = pooled[entry["name"]]
    path = tmp_path / "pooled.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_template(path)


SD = 0.5  # both peaks of the synthetic marker M: N(0, SD) negatives and N(4, SD) positives


def _peaks(n_low: int, n_high: int) -> np.ndarray:
    """Normal quantiles at (i + 0.5) / n: no random draws, and the pooled data of two mirrored samples are exactly
    symmetric about 2. The largest negative is 0 + 3.3 SD = 1.65 and the smallest positive 2.4 (n <= 900), so
    every cut between them keeps exactly the n_high positives."""
    def quantiles(n):
        return norm.ppf((np.arange(n) + 0.5) / n, scale=SD)
    return np.r_[quantiles(n_low), 4 + quantiles(n_high)]


def _events(values: np.ndarray) -> ad.AnnData:
    var = pd.DataFrame({"marker": ["M"], "range": [262144.0]}, index=["FL1-A"])
    return ad.AnnData(X=values[:, None].astype(np.float32), var=var)


def _one_gate_template(tmp_path) -> object:
    path = tmp_path / "one_gate.yaml"
    path.write_text("populations:\n"
                    "  - {name: pos, parent: root, method: cuts, pool: batch, cuts: {M: {keep: above, method: valley}}}\n")
    return load_template(path)


def _valley_of_smoothed_mixture(n_low: int, n_high: int) -> tuple[float, float]:
    """By scipy, not by the code under test: the minimum between the peaks of the mixture density the KDE
    estimates (each N(mu, SD) convolved with the Gaussian kernel: N(mu, sqrt(SD^2 + bw^2))), with bw by
    Silverman's rule (R's bw.nrd0) computed here with numpy. Returns (valley, bw)."""
    x = _peaks(n_low, n_high)
    q75, q25 = np.percentile(x, [75, 25])
    bw = 0.9 * min(x.std(ddof=1), (q75 - q25) / 1.34) * x.size ** -0.2
    scale = np.hypot(SD, bw)
    def density(z):
        return n_low * norm.pdf(z, 0, scale) + n_high * norm.pdf(z, 4, scale)
    return minimize_scalar(density, bounds=(0.5, 3.5), method="bounded", options={"xatol": 1e-9}).x, bw


def test_pooled_cut_is_the_valley_of_the_batch_events_together(tmp_path):
    """Sample A is 90 % negative, sample B 90 % positive: alone, each one's valley leans towards its minor peak;
    pooled, the two peaks are equal and the data symmetric about 2, so the valley is at 2 (within the half grid
    step of the density grid: the grid's centres straddle 2)."""
    template = _one_gate_template(tmp_path)
    batch = {"A": _events(_peaks(900, 100)), "B": _events(_peaks(100, 900))}
    fitted = fit_pooled_gates(batch, template, "day1")
    assert set(fitted) == {"pos"}
    assert {k: v for k, v in fitted["pos"].items() if k != "M"} == {"batch": "day1", "samples": ["A", "B"],
                                                                     "events": 2000}
    _, bw = _valley_of_smoothed_mixture(1000, 1000)
    pooled = _peaks(1000, 1000)
    half_step = (np.ptp(pooled) + 6 * bw) / 512 / 2  # the grid: [min - 3 bw, max + 3 bw] in 512 bins
    assert abs(fitted["pos"]["M"] - 2.0) <= half_step * (1 + 1e-9), (fitted["pos"]["M"], half_step)
    for sample_id, n_positive in (("A", 100), ("B", 900)):
        own = next(g for g in apply_template(batch[sample_id], template).gates if g["population"] == "pos")
        expected_own, _ = _valley_of_smoothed_mixture(1000 - n_positive, n_positive)
        assert own["cuts"]["M"]["cut"] == pytest.approx(expected_own, abs=0.015)  # 2 grid steps (0.0075)
        assert abs(expected_own - 2.0) > 0.15  # alone, a sample's valley is elsewhere: pooling matters
        record = next(g for g in apply_template(batch[sample_id], template, pooled=fitted).gates
                      if g["population"] == "pos")
        assert record["cuts"]["M"] == {"keep": "above", "method": "pooled", "cut": fitted["pos"]["M"]}
        assert record["pooled"] == "fitted on the pooled events of batch day1"
        assert record["count"] == n_positive  # every positive, no negative (see _peaks)


def test_each_sample_contributes_every_kth_event_at_most_max_events(tmp_path):
    template = _one_gate_template(tmp_path)
    batch = {"A": _events(_peaks(800, 200)), "B": _events(_peaks(200, 800)), "empty": _events(np.array([]))}
    fitted = fit_pooled_gates(batch, template, "day2", max_events_per_sample=100)
    # 1,000 events each: every 10th, 100 a sample; the empty (excluded) sample contributes nothing
    assert fitted["pos"]["events"] == 200 and fitted["pos"]["samples"] == ["A", "B"]
    # every 10th of A then B: 20 + 80 positives vs 80 + 20 negatives, symmetric about 2 again
    assert abs(fitted["pos"]["M"] - 2.0) < 0.1


def test_pooled_batch_cut_is_applied_to_each_sample_of_the_trial(batch, tmp_path):
    template = _template(tmp_path, {"Treg": "batch"})
    fitted = fit_pooled_gates(batch, template, "day1")
    assert set(fitted) == {"Treg"} and fitted["Treg"]["samples"] == list(batch)
    cut = fitted["Treg"]["FOXP3"]
    for adata in batch.values():
        result = apply_template(adata, template, pooled=fitted)
        record = next(g for g in result.gates if g["population"] == "Treg")
        assert record["cuts"]["FOXP3"] == {"keep": "above", "method": "pooled", "cut": cut}
        parent = result.masks["CD25hi_CD127lo"]
        foxp3 = adata.X[:, list(adata.var["marker"]).index("FOXP3")]
        assert record["count"] == int(np.count_nonzero(parent & (foxp3 > cut)))  # counted here with numpy


def test_a_small_sample_borrows_the_batch_gate(batch, tmp_path):
    """A sample with few B cells is gated with the batch's Breg polygon, fitted on every sample's B cells."""
    from matplotlib.path import Path as MplPath

    template = _template(tmp_path, {"Breg": "batch"})
    small = dict(batch)
    first = next(iter(small))
    b_cells = np.flatnonzero(apply_template(small[first], template).masks["B"])
    keep = np.ones(small[first].n_obs, dtype=bool)
    keep[b_cells[25:]] = False  # 25 B cells: enough to report, too few to fit a mixture on
    small[first] = small[first][keep].copy()
    fitted = fit_pooled_gates(small, template, "day1")
    b_counts = [int(apply_template(adata, template).masks["B"].sum()) for adata in small.values()]
    assert fitted["Breg"]["events"] == sum(b_counts) and b_counts[0] < 100
    result = apply_template(small[first], template, pooled=fitted)
    record = next(g for g in result.gates if g["population"] == "Breg")
    assert record["status"] == "ok" and record["pooled"] == "fitted on the pooled events of batch day1"
    assert record["polygon"]["vertices"] == fitted["Breg"]["vertices"]
    b = result.masks["B"]
    values = small[first].X[b][:, [dimension_index(small[first], d) for d in ("CD38", "CD24")]]
    inside = MplPath(np.array(fitted["Breg"]["vertices"])).contains_points(values)  # matplotlib's own test
    assert (result.masks["Breg"][b] == inside).all() and 0 < inside.sum() < b_counts[0]


def test_reviewer_override_wins_over_the_pooled_gate(batch, tmp_path):
    template = _template(tmp_path, {"Treg": "batch"})
    fitted = fit_pooled_gates(batch, template, "day1")
    adata = next(iter(batch.values()))
    result = apply_template(adata, template, {"Treg": {"FOXP3": 0.9, "reason": "review"}}, pooled=fitted)
    record = next(g for g in result.gates if g["population"] == "Treg")
    assert record["cuts"]["FOXP3"]["cut"] == 0.9 and record["cuts"]["FOXP3"]["method"] == "pinned"
    assert "pooled" not in record and record["override"] == "review"


def test_pooled_gates_below_pooled_gates_see_the_batch_parents(batch, tmp_path):
    template = _template(tmp_path, {"CD4": "batch", "Treg": "batch"})
    fitted = fit_pooled_gates(batch, template, "day1")
    assert list(fitted) == ["CD4", "Treg"] and set(fitted["CD4"]) >= {"CD4", "CD8"}


def test_only_data_driven_gates_can_be_pooled(tmp_path):
    path = tmp_path / "pooled.yaml"
    with pytest.raises(TemplateError) as err:
        _template(tmp_path, {"boundary": "batch"})
    assert str(err.value) == (f"{path}: population 'boundary' (entry 1) has pool: batch, but a boundary gate is not "
                              "fitted to the data; only ['cluster', 'cuts', 'mixture', 'singlets'] gates can be pooled.")
    with pytest.raises(TemplateError) as err:
        _template(tmp_path, {"cells": "day"})
    assert str(err.value) == f"{path}: invalid gating template at populations/1/pool: 'day' is not one of ['sample', 'batch']"
