"""Self-contained HTML pages for the Snakemake report: a table page and the provenance page."""

from __future__ import annotations

import datetime as dt
import html
import importlib.metadata
import os

import pandas as pd
import yaml

STYLE = ("<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:12px}"
         "td,th{border:1px solid #ccc;padding:2px 6px}th{background:#f2f2f2;position:sticky;top:0}"
         "td.n{text-align:right}pre{background:#f7f7f7;padding:8px;font-size:12px}</style>")
PACKAGES = ["cytotrial", "flowkit", "flowio", "anndata", "scanpy", "flowsom", "igraph", "snakemake", "numpy",
            "pandas", "scipy", "statsmodels", "scikit-learn", "matplotlib", "openpyxl"]


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}"
            f"</head><body><h2>{html.escape(title)}</h2>{body}</body></html>\n")


def table_html(table: pd.DataFrame, title: str, max_rows: int = 5000) -> str:
    """The table as an HTML page (numbers right-aligned, 4 significant digits), at most ``max_rows`` rows."""
    shown = table.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for values in shown.itertuples(index=False):
        cells = []
        for value in values:
            if isinstance(value, float):
                cells.append("<td class='n'></td>" if pd.isna(value) else f"<td class='n'>{value:.4g}</td>")
            elif isinstance(value, (int,)) and not isinstance(value, bool):
                cells.append(f"<td class='n'>{value}</td>")
            else:
                cells.append(f"<td>{html.escape('' if pd.isna(value) else str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = (f"<p>{len(table)} rows" + (f"; the first {max_rows} are shown (all are in the TSV)" if len(table) > max_rows
                                      else "") + ".</p>")
    return _page(title, note + f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def software_versions() -> dict[str, str]:
    """Installed versions of the packages the workflow uses."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_html(config: dict, input_files: pd.DataFrame, run_date: dt.date | None = None) -> str:
    """Software versions, the configuration, the input files (SHA-256, de-identified) and the run date."""
    run_date = run_date or dt.date.today()
    versions = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                       for k, v in software_versions().items())
    body = (f"<p>Run on {run_date.isoformat()}.</p><h3>Software</h3><table><tr><th>package</th><th>version</th></tr>"
            f"{versions}</table><h3>Configuration</h3><pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}"
            "</pre><h3>Input files</h3>")
    files = table_html(input_files, "input files")
    return _page("Provenance", body + files[files.index("<p>"):files.index("</body>")])


def write_html(text: str, path: str | os.PathLike) -> None:
    from ..io.atomic import atomic_path

    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(text)
