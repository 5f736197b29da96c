"""Gate review: outlier flags on synthetic population tables, and the small-multiples figure."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Ellipse, Rectangle

from cytotrial.report.gate_review import ReviewPanel, gate_geometry, panel_artists, plot_gate_review
from cytotrial.simulate.trial import trial_design
from cytotrial.stats.outliers import flag_population_outliers

VISITS = ["D0", "W2", "W4", "W8", "W12", "W16", "W28"]
TIME_COURSE = dict(zip(VISITS, [0.0, 0.5, 0.9, 1.0, 1.0, 0.7, 0.4], strict=True))
POPULATIONS = {"CD4": 55.0, "Treg": 6.0, "B": 9.0, "NK_bright": 0.6}


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _table(seed: int = 7) -> pd.DataFrame:
    """18 patients x 7 visits (demo batches) x 4 populations: patient effect, visit noise and a Treg rise."""
    rng = np.random.default_rng(seed)
    _, samples = trial_design()
    rows = []
    patient_effect = {(p, pop): rng.normal(0, 0.3) for p in samples["patient_id"].unique() for pop in POPULATIONS}
    for sample in samples.itertuples():
        for population, mean in POPULATIONS.items():
            rise = 0.4 * TIME_COURSE[sample.visit] if population == "Treg" else 0.0
            y = _logit(mean / 100) + patient_effect[sample.patient_id, population] + rise + rng.normal(0, 0.12)
            rows.append({"sample_id": sample.sample_id, "patient_id": sample.patient_id, "visit": sample.visit,
                         "batch": sample.batch, "population": population,
                         "denominator_count": 20000, "percent_of": 100 / (1 + np.exp(-y)),
                         "status": "ok", "reason": ""})
    return pd.DataFrame(rows)


def _row(table: pd.DataFrame, sample_id: str, population: str) -> pd.Series:
    return table[(table["sample_id"] == sample_id) & (table["population"] == population)].iloc[0]


def test_planted_treg_outlier_is_flagged_by_batch_and_trajectory():
    table = _table()
    target = (table["sample_id"] == "P06_W8") & (table["population"] == "Treg")
    table.loc[target, "percent_of"] *= 5
    flagged = flag_population_outliers(table)
    row = _row(flagged, "P06_W8", "Treg")
    assert row["outlier"]
    assert "batch run" in row["outlier_reason"] and "trajectory" in row["outlier_reason"]
    assert "P06's other 6 visits" in row["outlier_reason"]
    assert not _row(flagged, "P06_W8", "CD4")["outlier"]
    assert flagged["outlier"].mean() < 0.02


def test_trajectory_alone_flags_a_jump_when_the_batch_cannot_be_tested():
    table = _table()
    target = (table["sample_id"] == "P10_W12") & (table["population"] == "B")
    table.loc[target, "percent_of"] /= 4
    table.loc[table["sample_id"] == "P10_W12", "batch"] = "a batch of one"
    row = _row(flag_population_outliers(table), "P10_W12", "B")
    assert row["outlier"] and row["outlier_reason"].startswith("trajectory:")


def test_a_jump_within_a_patient_that_its_batch_does_not_confirm_is_not_flagged():
    table = _table()
    target = (table["sample_id"] == "P10_W12") & (table["population"] == "B")
    table.loc[target, "percent_of"] /= 3  # far from P10's other visits (z > 4), within the batch's spread
    scores = flag_population_outliers(table, keep_scores=True)
    row = _row(scores, "P10_W12", "B")
    assert abs(row["trajectory_z"]) > 4 > abs(row["batch_z"])
    assert not row["outlier"]


def test_a_gate_failing_at_every_visit_of_a_patient_is_flagged_by_the_patient_test():
    table = _table()
    failed = (table["patient_id"] == "P05") & (table["population"] == "Treg")
    table.loc[failed, "percent_of"] = 0.05  # Treg 0.05 % of CD4 at all 7 visits, the others ~6 %
    flagged = flag_population_outliers(table)
    rows = flagged[failed.to_numpy()]
    assert rows["outlier"].all() and rows["outlier_reason"].str.startswith("patient: P05's median 0.0525% vs 7.15% median of 17 other patients").all()
    assert not flagged[(flagged["patient_id"] != "P05") & (flagged["population"] == "Treg")]["outlier"].any()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_data_rarely_flagged(seed):
    flagged = flag_population_outliers(_table(seed))
    assert flagged["outlier"].mean() < 0.02
    assert (flagged["outlier_reason"] != "").sum() == flagged["outlier"].sum()


def test_missing_values_never_flagged_and_rows_kept_in_order():
    table = _table()
    missing = table.index[::37]
    table.loc[missing, "percent_of"] = np.nan
    table.loc[missing, "status"] = "missing"
    table.loc[(table["sample_id"] == "P03_W4") & (table["population"] == "NK_bright"), "percent_of"] = np.nan
    flagged = flag_population_outliers(table, batch_z=0.2, trajectory_z=0.2)  # flags most of the rest
    assert list(flagged.index) == list(table.index)
    assert not flagged.loc[missing, "outlier"].any()
    assert (flagged.loc[missing, "outlier_reason"] == "").all()
    assert flagged["outlier"].sum() > len(table) / 3


def test_flags_do_not_depend_on_row_order():
    table = _table()
    table.loc[(table["sample_id"] == "P12_W2") & (table["population"] == "NK_bright"), "percent_of"] = 5.0
    ordered = flag_population_outliers(table, keep_scores=True)
    shuffled = flag_population_outliers(table.sample(frac=1, random_state=0), keep_scores=True).loc[table.index]
    pd.testing.assert_frame_equal(ordered, shuffled)
    assert _row(ordered, "P12_W2", "NK_bright")["outlier"]


def test_tight_batch_does_not_flag_small_differences():
    rows = [{"sample_id": f"S{i}", "patient_id": f"P{i}", "batch": "run1", "population": "CD4",
             "percent_of": 50.0 + 0.01 * i} for i in range(6)]
    rows.append({"sample_id": "S6", "patient_id": "P6", "batch": "run1", "population": "CD4", "percent_of": 52.0})
    flagged = flag_population_outliers(pd.DataFrame(rows))
    assert not flagged["outlier"].any()  # 0.08 logit units: below the 0.2 floor's 4 z


def test_missing_column_is_reported():
    with pytest.raises(ValueError, match="batch"):
        flag_population_outliers(pd.DataFrame({"patient_id": [], "population": [], "percent_of": []}))


def _panels(n_patients: int = 18, n_events: int = 5000) -> list[ReviewPanel | None]:
    """126 panels: 2-D cut, 1-D cut, singlet, cluster and boundary gates, one missing, one outlier, one empty cell."""
    rng = np.random.default_rng(0)
    panels: list[ReviewPanel | None] = []
    for p in range(n_patients):
        for v, visit in enumerate(VISITS):
            kind = (p + v) % 5
            x = np.r_[rng.normal(0.7, 0.05, n_events // 2), rng.normal(0.25, 0.05, n_events - n_events // 2)]
            y = rng.normal(0.5, 0.15, n_events)
            args = {"sample_id": f"P{p:02d}_{visit}", "label": f"P{p:02d} {visit}", "percent_of_parent": 48.3}
            if kind == 0:
                panel = ReviewPanel(x=x, y=y, x_name="CD4", y_name="CD8", method="cuts",
                                    geometry={"CD4": ("above", 0.45), "CD8": ("below", 0.6),
                                              "CD3": ("above", 0.4)}, **args)
            elif kind == 1:
                panel = ReviewPanel(x=x, y=None, x_name="CD3", y_name=None, method="cuts",
                                    geometry={"CD3": ("above", 0.45)}, **args)
            elif kind == 2:
                area = rng.uniform(0.1, 0.6, n_events)
                band = ({"ratio": "FSC-H/FSC-A", "ratio_min": 0.72, "ratio_max": 0.9} if p % 2 else
                        {"slope": 0.8, "intercept": 0.01, "half_width": 0.03})
                panel = ReviewPanel(x=area, y=area * rng.normal(0.8, 0.03, n_events), x_name="FSC-A",
                                    y_name="FSC-H", method="singlets", geometry=band, **args)
            elif kind == 3:
                panel = ReviewPanel(x=x, y=y, x_name="CD14", y_name="SSC-A", method="cluster",
                                    geometry={"mean": [0.7, 0.5], "covariance": [[0.0025, 0.001], [0.001, 0.02]],
                                              "distance_squared": 5.99}, **args)
            else:
                panel = ReviewPanel(x=x, y=y, x_name="FSC-A", y_name="SSC-A", method="boundary",
                                    geometry={"FSC-A": (0.0, 0.99), "SSC-A": (0.0, 0.99)}, **args)
            panels.append(panel)
    panels[3].status, panels[3].reason, panels[3].percent_of_parent = "missing", "parent 'T' has 3 events", np.nan
    panels[3].x, panels[3].y = np.array([]), np.array([])
    panels[10].outlier = True
    panels[10].outlier_reason = "batch run012: 30.1% vs 6.02% median of 5 others (z=+5.3)"
    if len(panels) > 20:
        panels[20] = None
    return panels


def _limits(arts) -> tuple[tuple[float, float], tuple[float, float]]:
    """A panel's x and y limits (gating units), read from its drawn frame."""
    (frame,) = arts["frame"]
    (x0, y0), (x1, y1) = _patch_points(frame).min(axis=0), _patch_points(frame).max(axis=0)
    return (x0, x1), (y0, y1)


def _cut_lines(arts) -> tuple[list[float], list[float]]:
    """x of the vertical and y of the horizontal lines drawn across a panel (the dashed cuts), from the artists."""
    (left, right), (low, high) = _limits(arts)
    vertical, horizontal = [], []
    for line in arts["lines"]:
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if xs.size == 2 and xs[0] == xs[1] and np.allclose(ys, [low, high]):  # spans the panel's height
            vertical.append(float(xs[0]))
        elif ys.size == 2 and ys[0] == ys[1] and np.allclose(xs, [left, right]):
            horizontal.append(float(ys[0]))
    return vertical, horizontal


def _outlines(arts, kind) -> list:
    """The gate's outlined patches (no face) of one kind (Rectangle, Ellipse, Polygon) of a panel."""
    return [p for p in arts["patches"] if isinstance(p, kind) and (p.get_fill() is False or
                                                                  p.get_facecolor()[3] == 0)]


def _patch_points(patch) -> np.ndarray:
    """The outline of a patch in data coordinates (its path through its own transform)."""
    return patch.get_patch_transform().transform(patch.get_path().vertices)


def _on_figure(artist) -> np.ndarray:
    """Where a patch lies on the figure (pixels): its path through its full transform."""
    return artist.get_transform().transform(artist.get_path().vertices)


def _title(arts, side: str) -> str:
    return next((t.get_text() for t in arts["titles"] if t.get_ha() == side), "")


def test_gate_review_figure_is_a_deterministic_png(tmp_path):
    panels = _panels()
    assert len(panels) == 126
    labels = {"CD4": "CD4 BUV496 (logicle)", "CD8": "CD8 BUV805 (logicle)"}
    ticks = {"CD4": [(0.2, "0"), (0.6, "10^3"), (0.8, "10^4")]}
    plot_gate_review("CD4", "T", panels, tmp_path / "a.png", axis_labels=labels, axis_ticks=ticks)
    plot_gate_review("CD4", "T", panels, tmp_path / "b.png", axis_labels=labels, axis_ticks=ticks)
    first = (tmp_path / "a.png").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert first == (tmp_path / "b.png").read_bytes()  # (speed: benchmarks, not tests)


def test_gate_review_has_a_titled_panel_per_sample_in_patient_rows(tmp_path):
    panels = _panels()
    ticks = {"CD4": [(0.2, "0"), (0.6, "10^3"), (0.8, "10^4")]}
    fig = plot_gate_review("CD4", "T", panels, tmp_path / "a.png", columns=7, title="demo", axis_ticks=ticks)
    arts = [panel_artists(fig, index) for index in range(len(panels))]
    framed = [i for i, a in enumerate(arts) if a["frame"]]
    assert len(framed) == 125 and 20 not in framed  # 18 patients x 7 visits, one empty cell
    corners = {i: _on_figure(arts[i]["frame"][0]).min(axis=0) for i in framed}  # lower left, pixels
    assert len({round(c[1], 3) for c in corners.values()}) == 18  # a row per patient
    assert len({round(c[0], 3) for c in corners.values()}) == 7  # a column per visit
    assert all(corners[i][0] < corners[i + 1][0] for i in framed if i % 7 != 6 and i + 1 in corners)
    assert all(corners[i][1] > corners[i + 7][1] for i in framed if i + 7 in corners)  # patients top to bottom
    texts = [t.get_text() for t in fig.texts if not t.get_gid()]
    assert texts[0] == "Gate review: CD4 (of T)"
    assert texts[1].startswith("demo - 125 samples, 1 flagged as outliers, 1 missing\n")
    assert "also gated on (not shown): CD3 above cut" in texts[1]
    assert texts[-2:] == ["CD4", "CD8"]  # the shared axis labels (no axis_labels given: the dims)
    assert "Flagged outliers:\nP01 W8 (P01_W8): batch run012: 30.1% vs 6.02% median of 5 others (z=+5.3)" in texts
    for index, (a, panel) in enumerate(zip(arts, panels)):
        if panel is None:  # an empty grid cell keeps the visits aligned: nothing drawn in it
            assert index == 20 and not any(a.values())
            continue
        assert _title(a, "left") == panel.label
        assert _title(a, "right") == ("missing" if panel.status == "missing" else "48.3%")
        (left, right), (low, high) = _limits(a)
        assert left < right and low < high
        bottom = all(panels[j] is None for j in range(index + 7, len(panels), 7))  # no panel below it
        x_ticks = [t.get_text() for t in a["ticks"] if t.get_va() == "top"]  # x ticks: bottom panels only
        assert x_ticks == ["0", "10^3", "10^4"] if bottom and panel.x_name == "CD4" else bool(x_ticks) == bottom
        assert bool([t for t in a["ticks"] if t.get_ha() == "right"]) == (index % 7 == 0 and panel.y is not None)
    assert [t.get_text() for t in arts[3]["texts"]] == ["parent 'T' has 3 events"]
    assert arts[3]["background"] and not arts[4]["background"]  # the missing panel is greyed, under the image of
    assert arts[3]["background"][0].get_zorder() < fig.axes[0].get_zorder()  # its events (drawn by the canvas)
    assert arts[10]["frame"][0].get_edgecolor()[:3] == (208 / 255, 0.0, 0.0)
    assert arts[11]["frame"][0].get_edgecolor()[:3] == (0.0, 0.0, 0.0)


def test_each_gate_is_drawn_where_its_geometry_says(tmp_path):
    """Cut lines at the cuts, the kept rectangle on the kept side, the ellipse at Mahalanobis distance^2 = 5.99
    and the singlet band's lines on y = intercept + slope x +/- half width, read back from the drawn artists."""
    panels = _panels(n_patients=3, n_events=400)  # patients 0-2: every kind of gate at least once
    fig = plot_gate_review("CD4", "T", panels, tmp_path / "a.png")
    kinds_seen = set()
    for index, panel in enumerate(panels):
        if panel is None or panel.status != "ok":
            continue
        kinds_seen.add(panel.method)
        arts = panel_artists(fig, index)
        (left, right), (low, high) = _limits(arts)
        assert all(a.get_clip_box() is not None for a in arts["patches"] + arts["lines"])  # clipped to the panel
        vertical, horizontal = _cut_lines(arts)
        if panel.method == "cuts" and panel.y is not None:  # CD4 above 0.45, CD8 below 0.6 (CD3 not shown)
            assert (vertical, horizontal) == ([0.45], [0.6])
            (box,) = _outlines(arts, Rectangle)
            (x0, y0), (x1, y1) = _patch_points(box).min(axis=0), _patch_points(box).max(axis=0)
            assert x0 == pytest.approx(0.45) and x1 == pytest.approx(right)
            assert y0 == pytest.approx(low) and y1 == pytest.approx(0.6)
        elif panel.method == "cuts":  # a histogram with one cut
            assert (vertical, horizontal) == ([0.45], [])
        elif panel.method == "cluster":
            (ellipse,) = _outlines(arts, Ellipse)
            points = _patch_points(ellipse)[:-1:3] - np.array(panel.geometry["mean"])  # on-curve Bezier points
            assert len(points) >= 8
            inverse = np.linalg.inv(np.array(panel.geometry["covariance"]))
            distance2 = np.einsum("ij,jk,ik->i", points, inverse, points)
            np.testing.assert_allclose(distance2, 5.99, rtol=1e-9)
        elif panel.method == "boundary":
            (box,) = _outlines(arts, Rectangle)
            lower, upper = _patch_points(box).min(axis=0), _patch_points(box).max(axis=0)
            np.testing.assert_allclose(lower, [max(0.0, left), max(0.0, low)])
            np.testing.assert_allclose(upper, [min(0.99, right), min(0.99, high)])
        elif panel.method == "singlets":
            edges = [line for line in arts["lines"] if len(line.get_xdata()) == 2]
            assert len(edges) == 2
            g = panel.geometry
            for line, sign in zip(edges, (-1, 1)):
                xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
                if "slope" in g:
                    expected = g["intercept"] + g["slope"] * xs + sign * g["half_width"]
                else:  # y = ratio x, ratio_min below, ratio_max above
                    expected = (g["ratio_min"] if sign < 0 else g["ratio_max"]) * xs
                np.testing.assert_allclose(ys, expected, rtol=1e-12)
    assert kinds_seen == {"cuts", "singlets", "cluster", "boundary"}


def test_a_panel_is_drawn_inside_its_frame(tmp_path):
    """A panel's gating units map onto its frame on the figure: the cut line's pixels lie at the cut's fraction
    of the frame's width, and the density image fills the frame."""
    panels = _panels(n_patients=2, n_events=400)
    fig = plot_gate_review("CD4", "T", panels, tmp_path / "a.png")
    arts = panel_artists(fig, 0)  # a 2-D cut: CD4 above 0.45
    (left, right), _ = _limits(arts)
    frame = _on_figure(arts["frame"][0])
    (line,) = [l for l in arts["lines"] if l.get_xdata()[0] == l.get_xdata()[1]]
    pixels = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
    fraction = (pixels[0, 0] - frame[:, 0].min()) / np.ptp(frame[:, 0])
    assert fraction == pytest.approx((0.45 - left) / (right - left))
    np.testing.assert_allclose(pixels[:, 1], [frame[:, 1].min(), frame[:, 1].max()])
    (image,) = arts["image"]
    x0, x1, y0, y1 = image.get_extent()
    corners = image.axes.transData.transform([[x0, y0], [x1, y1]])
    np.testing.assert_allclose(corners, [frame.min(axis=0), frame.max(axis=0)])


def test_a_realised_gate_record_is_drawn_at_its_cut(tmp_path):
    """From a gates JSON record to the drawn figure: the dashed line lies at the record's cut."""
    record = {"population": "T", "method": "cuts",
              "cuts": {"CD3": {"keep": "above", "method": "valley", "cut": 0.4123, "cut_linear": 812.0}}}
    rng = np.random.default_rng(1)
    panel = ReviewPanel(sample_id="P01_D0", label="P01 D0", x=rng.normal(0.5, 0.2, 500), y=None, x_name="CD3",
                        y_name=None, method="cuts", geometry=gate_geometry(record), percent_of_parent=61.34)
    fig = plot_gate_review("T", "lymphocytes", [panel], tmp_path / "t.png", columns=1)
    arts = panel_artists(fig, 0)
    assert _cut_lines(arts) == ([0.4123], [])
    assert (_title(arts, "left"), _title(arts, "right")) == ("P01 D0", "61.3%")


def test_gate_review_handles_no_panels_and_a_short_last_row(tmp_path):
    fig = plot_gate_review("T", "lymphocytes", [], tmp_path / "empty.png")
    assert not any(panel_artists(fig, 0).values())
    panels = [p for p in _panels(n_patients=2, n_events=200) if p is not None][:9]
    fig = plot_gate_review("T", "lymphocytes", panels, tmp_path / "short.png", columns=7, title="tiny")
    assert [bool(panel_artists(fig, i)["frame"]) for i in range(14)] == [True] * 9 + [False] * 5
    assert [_title(panel_artists(fig, i), "left") for i in range(9)] == [p.label for p in panels]
    assert (tmp_path / "empty.png").stat().st_size > 0 and (tmp_path / "short.png").stat().st_size > 0


def test_gate_geometry_from_realised_records():
    cuts = {"method": "cuts", "cuts": {"CD4": {"keep": "above", "method": "valley", "cut": 0.41, "cut_linear": 900}}}
    assert gate_geometry(cuts) == {"CD4": ("above", 0.41)}
    singlets = {"method": "singlets", "ratio": "FSC-H/FSC-A", "ratio_min": 0.7, "ratio_max": 0.9}
    assert gate_geometry(singlets) == {"ratio": "FSC-H/FSC-A", "ratio_min": 0.7, "ratio_max": 0.9}
    boundary = {"method": "boundary", "bounds": {"FSC-A": {"min_exclusive": 0.0, "max_exclusive": 262143.0}}}
    lo, hi = gate_geometry(boundary, {"FSC-A": 262144.0})["FSC-A"]
    assert lo == 0.0 and hi == pytest.approx(262143 / 262144)
    line = {"method": "singlets", "model": "FSC-H = intercept + slope x FSC-A (Huber)", "slope": 0.8,
            "intercept": 0.01, "half_width": 0.03, "pinned": False}
    assert gate_geometry(line) == {"slope": 0.8, "intercept": 0.01, "half_width": 0.03}
    ellipse = {"mean": [0.5, 0.4], "covariance": [[1, 0], [0, 1]], "distance_squared": 5.99}
    assert gate_geometry({"method": "cluster", "ellipse": ellipse}) == ellipse
    assert gate_geometry({"method": "boolean", "op": "and", "of": ["CD4", "CD8"]}) == {}


def test_axis_ticks_sit_where_flowkit_puts_the_original_values():
    """Decade ticks of a logicle (x) and an asinh (y) axis at the positions flowkit's transforms give the values
    0, 10^2, 10^3, ...; scatter ticks every 50k of the range, as value / range (worked by hand)."""
    import json

    import flowkit as fk

    from cytotrial.report.review_figures import axis_ticks_in_original_units

    logicle = {"transform": "logicle", "t": 262144.0, "w": 0.8, "m": 4.5, "a": 0.0}
    asinh = {"transform": "asinh", "t": 262144.0, "m": 4.5, "a": 0.2}
    first = ReviewPanel(sample_id="s", label="s", x=np.zeros(1), y=np.zeros(1), x_name="CD4", y_name="CD8",
                        method="cuts")
    arrays = {"CD4__xtransform": np.array(json.dumps(logicle)), "CD4__ytransform": np.array(json.dumps(asinh))}
    ticks = axis_ticks_in_original_units("CD4", {"s": ({}, arrays)}, first)
    values = np.array([[0.0], [1e2], [1e3], [1e4], [1e5]])
    expected_x = fk.transforms.LogicleTransform(param_t=262144.0, param_w=0.8, param_m=4.5, param_a=0.0).apply(values)
    expected_y = fk.transforms.AsinhTransform(param_t=262144.0, param_m=4.5, param_a=0.2).apply(values)
    assert [label for _, label in ticks["CD4"]] == ["0", "1e2", "1e3", "1e4", "1e5"]
    np.testing.assert_array_equal([p for p, _ in ticks["CD4"]], expected_x.ravel())
    np.testing.assert_array_equal([p for p, _ in ticks["CD8"]], expected_y.ravel())
    scatter = {"CD4__xtransform": np.array(json.dumps({"transform": "linear", "t": 262144.0, "a": 0.0}))}
    first.y_name = None
    ticks = axis_ticks_in_original_units("CD4", {"s": ({}, scatter)}, first)
    assert ticks["CD4"] == [(0.0, "0"), (50_000 / 262144, "50k"), (100_000 / 262144, "100k"),
                            (150_000 / 262144, "150k"), (200_000 / 262144, "200k"), (250_000 / 262144, "250k")]
