"""Figures of the run report: platelet swimmer plot, QC overview, trajectories, change heatmap.

Colours are shared by every figure: response groups (:data:`RESPONSE_COLOURS`); cohort colours and the trial's
wording come from the config (:class:`cytotrial.report.labels.TrialLabels`). Every function writes one PNG without software or date metadata (same inputs, same
bytes).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..stats.changes import response_groups
from .labels import TrialLabels

RESPONSE_COLOURS = {"responder": "#1b9e77", "non-responder": "#d95f02"}
PLATELET_BANDS = ([0, 30, 100, 10_000], ["#d7301f", "#fdae61", "#1a9850"],
                  ["< 30", "30-99", ">= 100 x10^9/L"])
DPI = 110


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure of ``width`` x ``height`` inches drawn without pyplot (Agg canvas)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> None:
    fig.savefig(path, format="png", metadata={"Software": None})


CATEGORY_MARKS = {"response after rescue": "*", "corticosteroid-dependent": "+"}
"""Mark after a non-responder's best response in the swimmer plot, by response category."""


def plot_swimmer(counts: pd.DataFrame, responses: pd.DataFrame, patients: pd.DataFrame,
                 path: str | os.PathLike, *, labels: TrialLabels = TrialLabels()) -> None:
    """One lane per patient (grouped by dose cohort): weekly platelet counts as coloured blocks, the confirmed
    response (outlined), its start (triangle) and loss (cross), rescue therapy (diamond) and the best response.

    ``counts``: the per-count annotations (:func:`cytotrial.response.annotate_counts`); ``responses``: one row
    per patient (:func:`cytotrial.response.derive_responses`).
    """
    info = patients[["patient_id", "cohort", "dose_1e6_per_kg"]].merge(responses, on="patient_id", how="left")
    info = info.sort_values(["cohort", "patient_id"], kind="stable").reset_index(drop=True)
    height = 1.9 + 0.32 * len(info)
    fig = new_figure(11, height)
    ax = fig.add_axes([0.2, 1.25 / height, 0.76, 1 - 1.7 / height])
    bounds, colours, band_labels = PLATELET_BANDS
    cmap, norm = ListedColormap(colours), BoundaryNorm(bounds, len(colours))
    last_week = max(float(counts.study_day.max()) / 7 if len(counts) else 0.0, 1.0)
    for lane, row in info.iterrows():
        y = len(info) - 1 - lane
        mine = counts[counts.patient_id == row.patient_id].dropna(subset=["platelets_1e9_per_L"])
        weeks = mine.study_day.to_numpy(float) / 7
        ax.scatter(weeks, np.full(weeks.size, y), c=mine.platelets_1e9_per_L, cmap=cmap, norm=norm, marker="s",
                   s=38, linewidths=0)
        excluded = mine.excluded_reason.fillna("").astype(str).str.contains("rescue").to_numpy()
        if "after_rescue" in mine:  # counts after a rescue are not the treatment's (excluded or not)
            excluded |= mine.after_rescue.astype(str).str.lower().eq("true").to_numpy()
        ax.scatter(weeks[excluded], np.full(int(excluded.sum()), y), marker="s", s=38, facecolors="none",
                   edgecolors="0.3", linewidths=0.6, hatch="////")
        if not pd.isna(row.get("response_day")):
            end = row.loss_day if not pd.isna(row.get("loss_day")) else mine.study_day.max()
            ax.plot([row.response_day / 7, end / 7], [y + 0.33, y + 0.33], color="black", lw=1.5)
            ax.plot(row.response_day / 7, y + 0.33, marker=">", color="black", ms=6)
            if not pd.isna(row.get("loss_day")):
                ax.plot(row.loss_day / 7, y + 0.33, marker="x", color="black", ms=6, mew=1.5)
        if not pd.isna(row.get("first_rescue_day")):
            ax.plot(row.first_rescue_day / 7, y - 0.33, marker="D", color="#2c7fb8", ms=5)
        label = str(row.get("best_response", "")) + CATEGORY_MARKS.get(str(row.get("response_category", "")), "")
        ax.text(last_week + 1.6, y, label, va="center", fontsize=8, weight="bold")
    ax.set_yticks(range(len(info)), [f"{r.patient_id}  ({r.cohort}, {r.dose_1e6_per_kg:g})"
                                     for r in info.iloc[::-1].itertuples()], fontsize=8)
    cohort_colours = labels.cohort_colours(info.cohort)
    for tick, cohort in zip(ax.get_yticklabels(), info.cohort.iloc[::-1]):
        tick.set_color(cohort_colours[str(cohort)])
    ax.set_xlim(-0.7, last_week + 3)
    ax.set_ylim(-0.8, len(info) - 0.2)
    ax.set_xlabel(f"week after {labels.day0}")
    ax.set_ylabel(f"patient\n(cohort, {labels.dose})", fontsize=9)
    ax.set_title("Platelet counts and response (IWG 2009) per patient", fontsize=11)
    handles = [Patch(color=c, label=f"platelets {l}") for c, l in zip(colours, band_labels)]
    handles += [Patch(color=cohort_colours[c], label=f"cohort {labels.cohort(c)}") for c in cohort_colours]
    handles += [Patch(facecolor="none", edgecolor="0.3", hatch="////", label="after rescue (not the treatment's)"),
                Line2D([], [], color="black", marker=">", label="confirmed response (line: duration)"),
                Line2D([], [], color="black", marker="x", ls="", label="loss of response"),
                Line2D([], [], color="#2c7fb8", marker="D", ls="", label="rescue therapy"),
                Line2D([], [], ls="", label="right: best response (CR, R, NR; NR*: response after rescue, "
                                            "NR+: corticosteroid-dependent)")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    _save(fig, path)


def plot_qc_overview(qc: pd.DataFrame, path: str | os.PathLike) -> None:
    """Events removed per sample by the event QC, by step (stacked %), flagged samples marked."""
    qc = qc.reset_index(drop=True)  # sample-sheet order: patients, then visits
    total = pd.to_numeric(qc["events_in"], errors="coerce").to_numpy(float)  # NaN for excluded samples
    steps = [(c, lab) for c, lab in (("margin_removed", "margin events"), ("flow_rate_removed", "flow rate"),
                                     ("signal_removed", "signal")) if c in qc.columns]
    fig = new_figure(max(8.0, 0.09 * len(qc) + 2), 4.2)
    ax = fig.add_axes([0.08, 0.25, 0.74, 0.65])
    bottom = np.zeros(len(qc))
    for (column, label), colour in zip(steps, ("#9ecae1", "#fd8d3c", "#756bb1")):
        share = np.nan_to_num(100 * pd.to_numeric(qc[column], errors="coerce").to_numpy(float)
                              / np.maximum(total, 1))
        ax.bar(np.arange(len(qc)), share, bottom=bottom, color=colour, width=0.85, label=label)
        bottom += share
    flagged = qc["flags"].fillna("").astype(str) != ""
    ax.scatter(np.flatnonzero(flagged), bottom[flagged] + 0.5, marker="v", color="#d00000", s=18,
               label="flagged sample")
    ax.set_xticks(np.arange(len(qc)), qc.sample_id, rotation=90, fontsize=5 if len(qc) > 40 else 7)
    ax.set_xlim(-0.8, len(qc) - 0.2)
    ax.set_ylim(0, max(1.0, float(np.nanmax(bottom)) * 1.12 + 0.5))
    ax.set_ylabel("events removed (% of events)")
    ax.set_xlabel("sample")
    ax.set_title(f"Event QC: {int(flagged.sum())} of {len(qc)} samples flagged; median removed "
                 f"{np.median(bottom):.1f} %", fontsize=10)
    fig.legend(loc="center right", fontsize=8, frameon=False)
    _save(fig, path)


def plot_trajectories(populations: pd.DataFrame, groups: pd.Series, focus: list[str], visits: list[str],
                      *, path: str | os.PathLike) -> None:
    """One panel per focus population: each patient's % of the denominator over visits coloured by response
    group, with the group medians in bold."""
    focus = [p for p in focus if (populations.population == p).any()]
    n_cols = min(3, len(focus))
    n_rows = int(np.ceil(len(focus) / n_cols))
    fig = new_figure(4.3 * n_cols + 1.6, 3.3 * n_rows + 0.4)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    x_of = {v: i for i, v in enumerate(visits)}
    for ax, population in zip(axes.flat, focus):
        data = populations[populations.population == population].dropna(subset=["percent_of"])
        data = data.assign(group=data.patient_id.map(groups).fillna(""), x=data.visit.map(x_of))
        for (_, group), rows in data.groupby(["patient_id", "group"], sort=True):
            rows = rows.sort_values("x")
            ax.plot(rows.x, rows.percent_of, color=RESPONSE_COLOURS.get(group, "0.6"), lw=0.8, alpha=0.45,
                    marker="o", ms=2)
        for group, colour in RESPONSE_COLOURS.items():
            medians = data[data.group == group].groupby("x").percent_of.median()
            ax.plot(medians.index, medians.values, color=colour, lw=2.6, label=f"{group}s, median")
        denominator = data.denominator.iloc[0] if len(data) else ""
        ax.set_title(population, fontsize=10)
        ax.set_xticks(range(len(visits)), visits, fontsize=8)
        ax.set_ylabel(f"% of {denominator}")
        ax.set_xlabel("visit")
    for ax in list(axes.flat)[len(focus):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=c, lw=2.6, label=f"{g}s (median; thin: patients)")
               for g, c in RESPONSE_COLOURS.items()]
    fig.legend(handles=handles, loc="upper center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    _save(fig, path)


def median_change_by_group(populations: pd.DataFrame, groups: pd.Series, baseline: str) -> pd.DataFrame:
    """Median change from baseline (percentage points) per response group, population and visit."""
    data = populations.dropna(subset=["percent_of"]).assign(group=populations.patient_id.map(groups))
    base = data[data.visit == baseline].set_index(["patient_id", "population"])["percent_of"]
    data = data[data.visit != baseline].copy()
    data["change"] = data.percent_of.to_numpy() - base.reindex(
        pd.MultiIndex.from_arrays([data.patient_id, data.population])).to_numpy()
    return (data.dropna(subset=["change"]).groupby(["group", "population", "visit"], sort=False)["change"]
            .median().rename("median_change").reset_index())


def plot_change_heatmap(populations: pd.DataFrame, groups: pd.Series, visits: list[str], baseline: str,
                        *, path: str | os.PathLike) -> None:
    """Populations x visits heatmaps of the median change from baseline (pp), one panel per response group,
    on a shared symmetric colour scale."""
    changes = median_change_by_group(populations, groups, baseline)
    names = list(dict.fromkeys(populations.population))
    later = [v for v in visits if v != baseline and (populations.visit == v).any()]
    limit = float(np.nanpercentile(np.abs(changes.median_change), 95)) if len(changes) else 1.0
    limit = limit or 1.0
    fig = new_figure(3.6 + 1.0 * len(later) * 2, 1.8 + 0.25 * len(names))
    axes = fig.subplots(1, 2, sharey=True)
    fig.subplots_adjust(left=1.6 / fig.get_figwidth(), right=0.82)
    for ax, group in zip(axes, RESPONSE_COLOURS):
        grid = (changes[changes.group == group].pivot(index="population", columns="visit", values="median_change")
                .reindex(index=names, columns=later))
        if grid.isna().all().all():
            ax.text(0.5, 0.5, f"no {group}s", transform=ax.transAxes, ha="center", va="center", color="0.4")
        image = ax.imshow(grid.to_numpy(float), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_xticks(range(len(later)), later, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(f"{group}s", color=RESPONSE_COLOURS[group], fontsize=10)
        ax.set_xlabel("visit")
    fig.colorbar(image, ax=list(axes), shrink=0.7).set_label(f"median change from {baseline} (percentage points)")
    fig.suptitle("Median change from baseline of each population (% of its denominator)", fontsize=10)
    _save(fig, path)


def write_report_figures(populations: pd.DataFrame, responses: pd.DataFrame, counts: pd.DataFrame,
                         patients: pd.DataFrame, *, qc: pd.DataFrame, visits: list[str], baseline: str,
                         focus: list[str], paths: dict[str, str | os.PathLike],
                         labels: TrialLabels = TrialLabels()) -> None:
    """The report's cohort, QC and immune-change figures; ``paths``: swimmer, qc, trajectories, heatmap."""
    groups = response_groups(responses)
    plot_swimmer(counts, responses, patients, paths["swimmer"], labels=labels)
    plot_qc_overview(qc, paths["qc"])
    plot_trajectories(populations, groups, focus, visits, path=paths["trajectories"])
    plot_change_heatmap(populations, groups, visits, baseline, path=paths["heatmap"])


def plot_volcano(comparison: pd.DataFrame, path: str | os.PathLike, measure: str = "change",
                 q_threshold: float = 0.05) -> None:
    """Responders vs non-responders: median difference (pp) against -log10 q, one point per population and
    visit, significant ones labelled (labels placed left/right of their point by sign to limit overlaps); the
    percentages only (``value`` percent_of) when the table holds other values too."""
    if "value" in comparison.columns:
        comparison = comparison[comparison.value == "percent_of"]
    data = comparison[(comparison.measure == measure)].dropna(subset=["median_difference", "q_value"])
    fig = new_figure(7.5, 5.2)
    ax = fig.add_axes([0.11, 0.11, 0.85, 0.8])
    score = -np.log10(np.clip(data.q_value.to_numpy(float), 1e-12, 1))
    significant = data.q_value.to_numpy(float) <= q_threshold
    ax.scatter(data.median_difference[~significant], score[~significant], s=14, color="0.65", linewidths=0,
               label=f"q > {q_threshold}")
    ax.scatter(data.median_difference[significant], score[significant], s=22, color="#c51b7d",
               label=f"q <= {q_threshold}")
    labelled = data.assign(score=score)[significant].sort_values("score", ascending=False).head(12)
    for row in labelled.itertuples():
        right = row.median_difference >= 0
        ax.annotate(f"{row.population} {row.visit}", (row.median_difference, row.score), fontsize=7,
                    xytext=(4 if right else -4, 0), textcoords="offset points", ha="left" if right else "right",
                    va="center")
    ax.axhline(-np.log10(q_threshold), color="0.4", lw=0.8, ls="--")
    ax.axvline(0, color="0.4", lw=0.8)
    what = "change from baseline" if measure == "change" else "value"
    ax.set_xlabel(f"median difference in {what}, responders - non-responders (percentage points)")
    ax.set_ylabel("-log10 q (Benjamini-Hochberg)")
    ax.set_title(f"Responders vs non-responders ({what}), per population and visit", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    _save(fig, path)


def plot_rmcorr(populations: pd.DataFrame, platelets: pd.DataFrame, rmcorr: pd.DataFrame, groups: pd.Series,
                *, population: str, path: str | os.PathLike) -> None:
    """A population against log platelet count at the same visits, one colour per response group; each
    patient's line has the common within-patient slope of the repeated-measures correlation. Samples and counts
    within a rescue therapy's window are left out, as in the correlation (``rmcorr`` is the percentages' table,
    or the rows with ``value`` percent_of)."""
    from ..stats.models import match_platelets
    from ..stats.rescue import outside_rescue_window

    data = outside_rescue_window(populations)
    data = data[(data.population == population) & (data.status == "ok")].dropna(subset=["percent_of"])
    data = match_platelets(data, platelets).dropna(subset=["log_platelets"])
    if "value" in rmcorr.columns:
        rmcorr = rmcorr[rmcorr.value == "percent_of"]
    stats = rmcorr.set_index("population").loc[population] if population in set(rmcorr.population) else None
    fig = new_figure(6.6, 4.8)
    ax = fig.add_axes([0.12, 0.12, 0.84, 0.78])
    for patient, rows in data.groupby("patient_id", sort=True):
        colour = RESPONSE_COLOURS.get(groups.get(patient, ""), "0.6")
        ax.scatter(rows.log_platelets, rows.percent_of, s=14, color=colour, alpha=0.8, linewidths=0)
        if stats is not None and len(rows) > 1 and np.isfinite(stats.slope):
            xs = np.array([rows.log_platelets.min(), rows.log_platelets.max()])
            ys = rows.percent_of.mean() + stats.slope * (xs - rows.log_platelets.mean())
            ax.plot(xs, ys, color=colour, lw=1, alpha=0.8)
    ticks = [5, 10, 20, 50, 100, 200]
    ax.set_xticks(np.log(ticks), [str(t) for t in ticks])
    ax.set_xlabel("platelet count at the visit (x10^9/L, log scale)")
    denominator = data.denominator.iloc[0] if len(data) else ""
    ax.set_ylabel(f"{population} (% of {denominator})")
    title = f"{population} vs platelets"
    if stats is not None:
        title += f": repeated-measures r = {stats.rm_r:.2f} (95 % CI {stats.ci_low:.2f} to {stats.ci_high:.2f}), " \
                 f"p = {stats.p_value:.2g}"
    ax.set_title(title, fontsize=9)
    handles = [Line2D([], [], color=c, marker="o", label=f"{g}s (line: patient, common slope)")
               for g, c in RESPONSE_COLOURS.items()]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="best")
    _save(fig, path)
