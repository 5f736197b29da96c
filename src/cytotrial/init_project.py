"""``cytotrial init``: from a folder of FCS files to a project folder the workflow runs in.

Reads every file's HEADER and TEXT only (no events), lists channels and stain names ($PnS) across files, reports
files whose panel differs from the majority, proposes ``config/panel.yaml`` (aliases for the spellings found),
drafts ``config/samples.tsv`` (patient, visit and date from the file name or a keyword by a regular expression
with named groups; study day and acquisition batch from $DATE/$BTIM and the visit) and writes the project:
config (only what differs from the defaults), gating template, patient and platelet templates, and a report
of everything it could not infer.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .gating.template import load_template
from .io.fcs import FcsEventBlocks, FcsReadError
from .io.panel import normalise_name
from .io.tables import write_tsv

DEFAULT_PATTERN = r"^(?P<patient>[^_]+)_(?P<visit>[^_.]+)"
SPILLOVER_KEYWORDS = ("spillover", "spill", "comp")
VISIT_UNITS = {"d": 1, "w": 7, "m": 30}  # D14, W4, M6: days, weeks, months (30 days) after day 0


class InitError(ValueError):
    """The folder or the options do not allow a project to be written."""


@dataclass
class FileHeader:
    """What init uses of one FCS file: its channels, stain names and TEXT keywords."""

    path: Path
    channels: list[str]
    stains: list[str]
    keywords: dict[str, str]

    @property
    def signature(self) -> frozenset:
        return frozenset((c, normalise_name(s)) for c, s in zip(self.channels, self.stains))


@dataclass
class InitReport:
    """Lines for the user: what was found, what was inferred and how, and what could not be."""

    found: list[str] = field(default_factory=list)
    inferred: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)

    def text(self) -> str:
        sections = [("Found", self.found), ("Inferred (check)", self.inferred), ("To do before running", self.todo)]
        return "\n".join(f"{title}:\n" + "\n".join(f"  - {line}" for line in lines) + "\n"
                         for title, lines in sections if lines)


def read_headers(folder: Path, report: InitReport) -> list[FileHeader]:
    """HEADER and TEXT of every .fcs file under ``folder`` (no events); unreadable files are reported."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".fcs" and p.is_file())
    if not paths:
        raise InitError(f"{folder}: no .fcs files found (searched sub-folders too)")
    headers = []
    for path in paths:
        try:
            fcs = FcsEventBlocks.open(path)
        except FcsReadError as err:
            report.todo.append(f"{err} (left out of the sample sheet)")
            continue
        headers.append(FileHeader(path, list(fcs.pnn_labels), [s or "" for s in fcs.pns_labels], fcs.metadata))
    report.found.append(f"{len(paths)} FCS files under {folder}, {len(headers)} readable")
    return headers


def _scatter_or_time(channel: str) -> bool:
    return channel.upper().startswith(("FSC", "SSC")) or channel.lower() == "time"


def channel_listing(headers: list[FileHeader]) -> list[str]:
    """'PE-Cy7-A: CD127 (7 files), IL-7Ra (1 file)' for every channel ($PnN) of any file, stains as written."""
    stains: dict[str, Counter] = defaultdict(Counter)
    for header in headers:
        for channel, stain in zip(header.channels, header.stains):
            stains[channel][stain or "(no stain name)"] += 1
    return [f"{channel}: " + ", ".join(f"{stain} ({n} file{'s' if n > 1 else ''})" for stain, n in counts.most_common())
            for channel, counts in stains.items()]


def compare_panels(headers: list[FileHeader], report: InitReport) -> FileHeader:
    """The first file of the majority panel; files with another panel are reported with their differences."""
    counts = Counter(h.signature for h in headers)
    majority, n = counts.most_common(1)[0]
    reference = next(h for h in headers if h.signature == majority)
    report.found.append(f"{n} of {len(headers)} files share one panel ({len(reference.channels)} channels)")
    stain_of = dict(zip(reference.channels, reference.stains))
    for header in headers:
        if header.signature == majority:
            continue
        mine = dict(zip(header.channels, header.stains))
        differences = [f"lacks {c}" for c in stain_of if c not in mine]
        differences += [f"has {c} not in the others" for c in mine if c not in stain_of]
        differences += [f"{c} is stained {mine[c]!r}, not {stain_of[c]!r}" for c in mine
                        if c in stain_of and normalise_name(mine[c]) != normalise_name(stain_of[c])]
        report.inferred.append(f"{header.path.name}: panel differs from the majority: {'; '.join(differences)}")
    return reference


def propose_panel(headers: list[FileHeader], reference: FileHeader, report: InitReport) -> dict:
    """panel.yaml: scatter and time channels of the majority panel, its stained channels as markers with every
    other spelling found for them (same normalised name, or the same detector in other files) as aliases."""
    scatter = sorted(c for c in reference.channels if c.upper().startswith(("FSC", "SSC")))
    times = [c for c in reference.channels if c.lower() == "time"]
    if not times:
        raise InitError(f"{reference.path}: no channel named 'Time'; the event QC needs the acquisition time")
    spellings: dict[str, Counter] = defaultdict(Counter)  # normalised stain -> raw spellings
    on_detector: dict[str, set] = defaultdict(set)  # detector of the majority panel -> stains seen on it
    for header in headers:
        for channel, stain in zip(header.channels, header.stains):
            if stain and not _scatter_or_time(channel):
                spellings[normalise_name(stain)][stain] += 1
                on_detector[channel].add(stain)
    markers = {}
    for channel, stain in zip(reference.channels, reference.stains):
        if _scatter_or_time(channel):
            continue
        if not stain:
            report.todo.append(f"channel {channel} has no stain name ($PnS) in {reference.path.name} and is left "
                               "out of the panel; if it carries a marker, add it to config/panel.yaml as "
                               f"'MARKER: {{aliases: [], channel: {channel}}}'")
            continue
        key = normalise_name(stain)
        name = spellings[key].most_common(1)[0][0]
        others = {s for s in spellings[key] if s != name}
        others |= {s for s in on_detector[channel] if normalise_name(s) != key and normalise_name(s) not in
                   {normalise_name(t) for t in reference.stains}}  # another spelling on the same detector
        markers[name] = {"aliases": sorted(others)}
    aliased = {m: v["aliases"] for m, v in markers.items() if v["aliases"]}
    report.found.append(f"markers: {', '.join(markers)}")
    if aliased:
        report.inferred.append("aliases from the spellings found: " + "; ".join(
            f"{m}: {', '.join(a)}" for m, a in aliased.items()))
    return {"name": f"panel of {reference.path.parent.name}", "scatter": scatter, "time": times[0],
            "markers": markers}


def align_with_template(template_path: Path, panel: dict, report: InitReport) -> None:
    """Name markers as the gating template does (its spelling; the files' spellings become aliases) and report
    the template's dimensions that the panel lacks."""
    dims = {normalise_name(d): d for d in load_template(template_path).dims()}
    markers = {}
    for name, spec in panel["markers"].items():
        spelled = dims.get(normalise_name(name), name)
        markers[spelled] = {"aliases": sorted({*spec["aliases"], name} - {spelled})}
    panel["markers"] = markers
    known = {normalise_name(m) for m in markers} | {normalise_name(c) for c in panel["scatter"]}
    missing = sorted(d for key, d in dims.items() if key not in known)
    if missing:
        report.todo.append(f"the gating template config/gating/default.yaml uses {', '.join(missing)}, which the "
                           "panel does not have: adapt the template to your markers (or rename them in the panel)")


def parse_date(text: str | None) -> dt.date | None:
    """A calendar date as FCS files and file names write it ($DATE 09-JAN-2023, 2023-01-09, 20230109)."""
    text = (text or "").strip()
    for form in ("%d-%b-%Y", "%Y-%m-%d", "%Y%m%d", "%d-%b-%y", "%Y-%b-%d", "%d/%m/%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text.title() if "%b" in form else text, form).date()
        except ValueError:
            continue
    return None


def _sample_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", "_".join(parts)).strip("-_.") or "sample"


def match_samples(headers: list[FileHeader], pattern: str, keyword: str | None, report: InitReport) -> pd.DataFrame:
    """One row per file the pattern matches: sample_id, patient_id, visit, date, begin time, cytometer, fcs."""
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise InitError(f"--pattern {pattern!r} is not a regular expression: {err}") from None
    if not {"patient", "visit"} <= set(regex.groupindex):
        raise InitError(f"--pattern {pattern!r} needs the named groups (?P<patient>...) and (?P<visit>...); "
                        "(?P<date>...) is optional")
    rows, unmatched = [], []
    source = "file name" if keyword is None else f"keyword {keyword}"
    for header in headers:
        text = header.path.stem if keyword is None else header.keywords.get(keyword.lstrip("$").lower(), "")
        found = regex.search(text)
        if found is None:
            unmatched.append(header.path.name)
            continue
        groups = found.groupdict()
        date = parse_date(groups.get("date")) or parse_date(header.keywords.get("date"))
        rows.append({"sample_id": _sample_id(groups["patient"], groups["visit"]), "patient_id": groups["patient"],
                     "visit": groups["visit"], "date": date, "btim": header.keywords.get("btim", ""),
                     "cytometer": header.keywords.get("cyt", "").strip(), "fcs": str(header.path.resolve())})
    if unmatched:
        report.todo.append(f"{len(unmatched)} file(s) whose {source} the pattern {pattern!r} does not match, left out "
                           f"of the sample sheet: {', '.join(unmatched[:10])}{' ...' if len(unmatched) > 10 else ''}"
                           " (give --pattern with (?P<patient>...) and (?P<visit>...) groups)")
    if not rows:
        raise InitError(f"the pattern {pattern!r} matches no {source}; give --pattern (a regular expression with "
                        "named groups patient and visit, e.g. '_(?P<patient>P\\d+)_(?P<visit>D0|W\\d+)_')")
    samples = pd.DataFrame(rows)
    twice = samples[samples.duplicated(["patient_id", "visit"], keep="first")]
    for row in twice.itertuples():
        report.todo.append(f"{Path(row.fcs).name}: a second file for patient {row.patient_id} at {row.visit}; only "
                           "the first was kept (remove one, or tell them apart in the pattern)")
    return samples.drop(index=twice.index).reset_index(drop=True)


def visit_order(samples: pd.DataFrame, visits: list[str] | None, report: InitReport) -> list[str]:
    """The visits in study order: as given, else by their median day after each patient's first sample."""
    found = list(dict.fromkeys(samples.visit))
    if visits:
        unknown = sorted(set(found) - set(visits))
        if unknown:
            raise InitError(f"--visits {visits} lacks visit(s) {unknown} found in the file names")
        return [v for v in visits if v in found]
    if samples.date.notna().all():
        first = samples.groupby("patient_id").date.transform("min")
        offsets = samples.assign(days=[(d - f).days for d, f in zip(samples.date, first)])
        order = list(offsets.groupby("visit").days.median().sort_values(kind="stable").index)
        how = "their median day after each patient's first sample"
    else:
        order = sorted(found, key=lambda v: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", v)])
        how = "name (no acquisition dates)"
    report.inferred.append(f"visits in study order (by {how}): {', '.join(order)}; the first, {order[0]}, is the "
                           "baseline (give --visits to set another order)")
    return order


def _visit_day(visit: str) -> int | None:
    found = re.fullmatch(r"[A-Za-z]*?([DdWwMm])(\d+)", visit)
    return int(found.group(2)) * VISIT_UNITS[found.group(1).lower()] if found else None


def study_days(samples: pd.DataFrame, baseline: str, baseline_day: int, day0: dict[str, dt.date],
               *, report: InitReport) -> pd.Series | None:
    """Study day of each sample: from its date and the patient's day 0 (clinical table) or baseline sample; else
    from the visit's name (D14, W4, M6); None when neither is known."""
    if samples.date.notna().all():
        if day0 and set(samples.patient_id) <= set(day0):
            report.inferred.append("study days: acquisition date minus the patient's day0_date (clinical table)")
            return pd.Series([(d - day0[p]).days for d, p in zip(samples.date, samples.patient_id)], dtype=int)
        at_baseline = samples[samples.visit == baseline].set_index("patient_id").date
        without = sorted(set(samples.patient_id) - set(at_baseline.index))
        if not without:
            report.inferred.append(f"study days: acquisition date minus the patient's {baseline} date, "
                                   f"{baseline} being day {baseline_day} (--baseline-day); if day 0 of your "
                                   "study is another event, give --clinical with a day0_date column")
            return pd.Series([(d - at_baseline[p]).days + baseline_day for d, p in
                              zip(samples.date, samples.patient_id)], dtype=int)
        report.todo.append(f"patients {without} have no {baseline} sample: study days from the visit names instead")
    days = [_visit_day(v) for v in samples.visit]
    if None in days:
        report.todo.append("study days could not be inferred (no acquisition dates, visit names not like D14, W4, "
                           "M6): add a study_day column to config/samples.tsv")
        return None
    report.inferred.append("study days from the visit names (Dn: day n, Wn: week n, Mn: 30 n days)")
    return pd.Series(days, dtype=int)


def acquisition_batches(samples: pd.DataFrame, report: InitReport) -> pd.Series | None:
    """run01, run02, ...: one batch per acquisition day and cytometer, numbered in date (then $BTIM) order."""
    if samples.date.isna().any():
        report.todo.append("no acquisition date ($DATE, or a date group in the pattern) for some files: every file "
                           "is its own batch (transforms fitted per file); add a batch column to "
                           "config/samples.tsv to pool runs")
        return None
    keys = sorted(set(zip(samples.date, samples.cytometer)))
    names = {key: f"run{i:0{max(2, len(str(len(keys))))}d}" for i, key in enumerate(keys, start=1)}
    report.inferred.append(f"{len(keys)} acquisition batches: one per acquisition day and cytometer ($DATE, $CYT)")
    return pd.Series([names[k] for k in zip(samples.date, samples.cytometer)])


def read_clinical(path: Path | None, report: InitReport) -> tuple[pd.DataFrame | None, dict[str, dt.date]]:
    """Patients (patient_id, cohort, dose_1e6_per_kg) and day-0 dates from an optional clinical table."""
    if path is None:
        return None, {}
    table = pd.read_csv(path, sep=None, engine="python", dtype=str)
    if "patient_id" not in table:
        raise InitError(f"clinical table {path}: needs a patient_id column; it has {list(table.columns)}")
    if "dose_1e6_per_kg" not in table and "dose_per_kg" in table:
        table["dose_1e6_per_kg"] = pd.to_numeric(table["dose_per_kg"]) / 1e6
        report.inferred.append(f"{path.name}: dose_1e6_per_kg = dose_per_kg / 10^6")
    unused = [c for c in table if c not in ("patient_id", "cohort", "dose_1e6_per_kg", "dose_per_kg", "day0_date")]
    if unused:
        report.inferred.append(f"{path.name}: columns {unused} not used (known: patient_id, cohort, dose_1e6_per_kg "
                               "or dose_per_kg in cells/kg, day0_date)")
    day0 = {}
    if "day0_date" in table:
        day0 = {p: parse_date(d) for p, d in zip(table.patient_id, table.day0_date) if parse_date(d)}
    keep = [c for c in ("patient_id", "cohort", "dose_1e6_per_kg") if c in table]
    return table[keep], day0


def instruments(headers: list[FileHeader]) -> list[str]:
    """'$CYT X: n files' and 'CREATOR Y: n files' lines (no serial numbers)."""
    lines = []
    for key, label in (("cyt", "$CYT"), ("creator", "CREATOR")):
        counts = Counter(h.keywords.get(key, "").strip() or "(not given)" for h in headers)
        lines += [f"{label} {value}: {n} file(s)" for value, n in sorted(counts.items())]
    return lines


PATIENT_TEMPLATE_NOTE = ("patient_id (as in the sample sheet), cohort (any label), dose_1e6_per_kg (dose, x10^6 per "
                         "kg body weight); optional enrolment_day")
PLATELET_COLUMNS = ["patient_id", "study_day", "platelets_1e9_per_L", "rescue_therapy"]


def init_project(fcs_dir: str | Path, out: str | Path, *, pattern: str = DEFAULT_PATTERN,
                 pattern_keyword: str | None = None, visits: list[str] | None = None,
                 clinical: str | Path | None = None, baseline_day: int = 0, force: bool = False,
                 template: str | Path | None = None) -> InitReport:
    """Write a project folder for the FCS files under ``fcs_dir`` (see the module docstring); returns the report,
    also written to ``out``/init_report.txt."""
    fcs_dir, out = Path(fcs_dir), Path(out)
    if not fcs_dir.is_dir():
        raise InitError(f"{fcs_dir}: not a folder")
    if (out / "config").exists() and not force:
        raise InitError(f"{out / 'config'} exists; choose another --out or give --force to overwrite it")
    report = InitReport()
    headers = read_headers(fcs_dir, report)
    report.found += ["channels and stain names across files:"] + [f"  {line}" for line in channel_listing(headers)]
    reference = compare_panels(headers, report)
    panel = propose_panel(headers, reference, report)
    report.found += instruments(headers)
    samples = match_samples(headers, pattern, pattern_keyword, report)
    order = visit_order(samples, visits, report)
    patients, day0 = read_clinical(Path(clinical) if clinical else None, report)
    sheet = samples[["sample_id", "patient_id", "visit"]].copy()
    days = study_days(samples, order[0], baseline_day, day0, report=report)
    if days is not None:
        sheet["study_day"] = days
    batches = acquisition_batches(samples, report)
    if batches is not None:
        sheet["batch"] = batches
    sheet["fcs"] = samples.fcs
    sheet = sheet.assign(_order=sheet.visit.map({v: i for i, v in enumerate(order)})).sort_values(
        ["patient_id", "_order"], kind="stable").drop(columns="_order")
    config: dict = {"visits": order}
    if not any(k in reference.keywords for k in SPILLOVER_KEYWORDS):
        config["compensation"] = {"source": "none"}
        report.todo.append("the files carry no spillover matrix ($SPILLOVER/$SPILL): compensation is off "
                           "(source: none); give compensation: {source: matrix, matrix: FILE} if they need one")
    template = Path(template) if template else Path(__file__).resolve().parents[2] / "config/gating/default.yaml"
    if not template.is_file():
        raise InitError(f"gating template {template} not found; give --template (a gating template YAML)")
    align_with_template(template, panel, report)
    _write_project(out, config, panel, sheet, patients=patients, template=template)
    if patients is None or patients.drop(columns="patient_id").isna().any().any() or \
            not {"cohort", "dose_1e6_per_kg"} <= set(patients):
        report.todo.append(f"fill in config/patients.tsv: {PATIENT_TEMPLATE_NOTE}")
    report.todo.append("fill in config/platelets.tsv: one row per patient and count, " + ", ".join(PLATELET_COLUMNS)
                       + " (see config/README.md); then run: snakemake --cores 8 --directory " + str(out))
    (out / "init_report.txt").write_text(report.text())
    return report


def _write_project(out: Path, config: dict, panel: dict, sheet: pd.DataFrame, *, patients: pd.DataFrame | None,
                   template: Path) -> None:
    (out / "config" / "gating").mkdir(parents=True, exist_ok=True)
    (out / "config" / "config.yaml").write_text(
        "# Written by cytotrial init: only what differs from the workflow's defaults (workflow/schemas/defaults.yaml;\n"
        "# every key in config/README.md). Relative paths are read from this project folder.\n"
        + yaml.safe_dump(config, sort_keys=False))
    (out / "config" / "panel.yaml").write_text(
        "# Proposed by cytotrial init from the files' stain names ($PnS); markers are matched without regard to case\n"
        "# and punctuation, aliases list the other spellings found.\n" + yaml.safe_dump(panel, sort_keys=False))
    write_tsv(sheet, out / "config" / "samples.tsv")
    ids = pd.DataFrame({"patient_id": list(dict.fromkeys(sheet.patient_id))})
    table = ids.merge(patients, on="patient_id", how="left") if patients is not None else ids
    for column in ("cohort", "dose_1e6_per_kg"):
        if column not in table:
            table[column] = ""
    write_tsv(table, out / "config" / "patients.tsv")
    if not (out / "config" / "platelets.tsv").exists():
        (out / "config" / "platelets.tsv").write_text("\t".join(PLATELET_COLUMNS) + "\n")
    shutil.copy(template, out / "config" / "gating" / "default.yaml")
    readme = Path(__file__).resolve().parents[2] / "config" / "README.md"
    if readme.is_file():
        shutil.copy(readme, out / "config" / "README.md")

