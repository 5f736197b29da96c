"""A one-page HTML summary of a run: cohort, samples, a trajectory figure and the immune-change table."""

from __future__ import annotations

import base64
import html
import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..io.atomic import atomic_path  # noqa: E402
from .labels import TrialLabels  # noqa: E402


def trajectory_figure(populations: pd.DataFrame, population: str, visits: list[str],
                      labels: TrialLabels = TrialLabels()) -> bytes:
    """PNG of one population's % of its denominator per patient over visits, one line per patient, by cohort."""
    data = populations[populations.population == population].dropna(subset=["percent_of"])
    denominator = data["denominator"].iloc[0] if len(data) else ""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    positions = {v: i for i, v in enumerate(visits)}
    colours = labels.cohort_colours(populations["cohort"].dropna())
    for (patient, cohort), rows in data.groupby(["patient_id", "cohort"], sort=True):
        rows = rows.assign(x=rows.visit.map(positions)).sort_values("x")
        ax.plot(rows.x, rows.percent_of, marker="o", ms=3, lw=1, alpha=0.8, color=colours[str(cohort)])
    medians = data.groupby("visit")["percent_of"].median().reindex(visits)
    ax.plot(range(len(visits)), medians.values, color="black", lw=2.5, label="median, all patients")
    for cohort, colour in colours.items():
        if (data["cohort"].astype(str) == cohort).any():
            ax.plot([], [], color=colour, label=f"cohort {labels.cohort(cohort)}")
    ax.set_xticks(range(len(visits)), visits)
    key = labels.visit_key(visits)
    ax.set_xlabel(f"visit ({key})" if key else "visit", fontsize=9 if len(key) < 90 else 7)
    ax.set_ylabel(f"{population} (% of {denominator})")
    ax.set_title(f"{population} per patient over the trial")
    ax.legend(fontsize=8, frameon=False, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


MAX_FLAG_ROWS = 300


def flagged_gates_section(populations: pd.DataFrame) -> list[str]:
    """HTML of the flagged values (gate QC and outliers): how many, by population, and the list with reasons."""
    if "flagged" not in populations:
        return []
    flagged = populations[populations["flagged"].astype(bool)]
    parts = ["<h2>Flagged gates and values</h2>",
             f"<p>{len(flagged)} of {len(populations)} sample x population values flagged, in "
             f"{flagged['sample_id'].nunique()} of {populations['sample_id'].nunique()} samples: gate QC (a cut "
             "that fell back, a mixture without a component near its target) or far from the batch and the "
             "patient's other visits, or the patient far from the others. Each is framed in red on its gate "
             "review figure.</p>"]
    if len(flagged):
        counts = flagged.groupby("population", sort=False).size().rename("flagged").reset_index()
        parts.append(counts.to_html(index=False, border=0))
        listed = flagged[["sample_id", "population", "percent_of", "flag_reason"]].head(MAX_FLAG_ROWS)
        parts.append(listed.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="NA", border=0))
        if len(flagged) > MAX_FLAG_ROWS:
            parts.append(f"<p>... and {len(flagged) - MAX_FLAG_ROWS} more (results/tables/populations.tsv, "
                         "column flagged).</p>")
    return parts


def render_summary(populations: pd.DataFrame, changes: pd.DataFrame, qc: pd.DataFrame, visits: list[str],
                   *, focus_populations: list[str], path: str | os.PathLike, labels: TrialLabels = TrialLabels()
                   ) -> None:
    """Write the HTML summary: counts, event QC, trajectory figures of ``focus_populations``, immune changes."""
    n_samples = populations["sample_id"].nunique()
    n_patients = populations["patient_id"].nunique()
    cohorts = populations.drop_duplicates("patient_id").groupby("cohort")["patient_id"].count()
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>cytotrial summary</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>",
        "<h1>cytotrial run summary</h1>",
        f"<p>{n_samples} samples from {n_patients} patients; cohorts: "
        + ", ".join(f"{html.escape(labels.cohort(c))} ({n})" for c, n in cohorts.items()) + ".</p>",
    ]
    flagged = qc[qc["flags"].fillna("") != ""]
    parts.append("<h2>Event QC</h2>")
    parts.append(f"<p>Events removed by the event QC (margins, flow rate, signal): median "
                 f"{qc['percent_removed'].median():.2f} %, at most {qc['percent_removed'].max():.2f} %. "
                 f"{len(flagged)} of {len(qc)} samples flagged.</p>")
    if len(flagged):
        parts.append(flagged[["sample_id", "events_in", "events_out", "percent_removed", "flags"]].to_html(
            index=False, float_format=lambda v: f"{v:.3g}", border=0))
    parts += flagged_gates_section(populations)
    for population in focus_populations:
        if (populations.population == population).any():
            png = base64.b64encode(trajectory_figure(populations, population, visits, labels)).decode()
            parts.append(f"<h2>{html.escape(population)}</h2><img alt='{html.escape(population)} trajectories' "
                         f"src='data:image/png;base64,{png}'>")
    parts.append("<h2>Immune changes by visit (% of the reporting denominator)</h2>")
    parts.append(changes.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="NA", border=0))
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) + "\n")
