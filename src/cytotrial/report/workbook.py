"""An Excel workbook of result tables: one sheet per table and a README sheet describing every column.

Every sheet has a frozen header row, an autofilter over its table, column widths fitted to the content (capped)
and number formats by column kind (:data:`COLUMN_KINDS`): percentages and other values in percent units 0.00,
p and q values 0.0000 (scientific below 1e-4), counts and other integers without decimals, rank statistics 0.0,
model estimates, correlations and other decimals 0.000. The README sheet (first) lists sheet, column and
description for every column of every sheet, from :data:`COLUMN_DESCRIPTIONS` (or a caller's dict); a column
without one reads :data:`NO_DESCRIPTION`.
Cell contents are deterministic; the file's bytes are not (the xlsx zip holds timestamps).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl.styles import Alignment, Font

from .labels import TrialLabels

NO_DESCRIPTION = "(no description)"
README = "README"
MAX_WIDTH = 50
README_DESCRIPTION_WIDTH = 100
# The times written into a workbook instead of the time of writing: the zip format's earliest date for its entries,
# and the same day as the document's created / modified properties.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
WORKBOOK_DATE = "1980-01-01T00:00:00Z"

_P = "p or q value"
COLUMN_DESCRIPTIONS: dict[str, str] = {
    # population table: absolute counts, QC and outlier columns
    "abs_count": "Absolute count, cells per uL of blood: count / reference population count x its cells/uL.",
    "abs_reference": "The reference of abs_count (population x blood-count column, or counting beads per uL).",
    "qc_percent_removed": "% of the sample's events removed by the event QC.",
    "qc_flags": "Event-QC flags of the sample (empty when none).",
    "outlier": "True when the value is far from its acquisition batch and from the patient's other visits, or the "
               "patient's values are far from the other patients'.",
    "outlier_reason": "Why the value is flagged as an outlier.",
    "gate_flag": "Gate QC: why this sample's gate deserves a look (a fall-back taken, a cut clipped to its range, a "
                 "mixture without a component near its target); empty when the gate was placed as intended.",
    "flagged": "True when the gate QC or the outlier test flags the value: look at its gate review panel.",
    "flag_reason": "The gate QC and outlier reasons, in words.",
    "in_rescue_window": "The sample was drawn on the day of a rescue therapy or up to statistics."
                        "rescue_sample_window_days after it: left out of the primary and change analyses.",
    "rescue_window_reason": "Which rescue therapy the sample follows, and by how many days.",
    "excluded": "Why the file was excluded from the run (on_bad_file: exclude); empty when it was not.",
    # event QC table
    "events_in": "Events in the FCS file.",
    "margin_removed": "Events removed as margin events (at the top of a detector's range or at/below 0).",
    "flow_rate_removed": "Events removed in flow-rate anomalies (clogs, bubbles).",
    "signal_removed": "Events removed in signal anomalies (sudden shifts of the median signal).",
    "events_out": "Events kept after the event QC.",
    "percent_removed": "% of the events removed by the event QC.",
    "percent_margins": "% of the events that are margin events.",
    "flags": "Event-QC flags: > 10 % margins, > 70 % removed, too few events.",
    "warnings": "Event-QC warnings (e.g. signal drift) that do not remove events.",
    # identifiers and design
    "sample_id": "Sample identifier (patient_visit).",
    "patient_id": "Patient identifier.",
    "visit": "Visit label; in a primary-endpoint row, the visits summarised; in baseline_predictors, the baseline "
             "visit.",
    "study_day": "Study day of the blood draw (day 0 as the trial defines it).",
    "batch": "Acquisition run (cytometer batch) of the sample.",
    "cohort": "Dose cohort.",
    "dose_1e6_per_kg": "Dose, x10^6 per kg body weight.",
    # population table
    "population": "Cell population (gate) name.",
    "parent": "Parent gate of the population.",
    "count": "Events in the population.",
    "parent_count": "Events in the parent gate.",
    "percent_of_parent": "Population as % of its parent gate.",
    "denominator": "Reporting denominator population (e.g. CD4 for Treg); percentages are % of it.",
    "denominator_count": "Events in the reporting denominator.",
    "percent_of": "Population as % of its reporting denominator.",
    "status": "ok, or missing when the population could not be quantified (see reason).",
    "reason": "Why a value is missing (population table) or how the response was reached (response table).",
    "response_group": "responder (IWG CR or R) or non-responder (NR); empty without a response evaluation.",
    "responder": "1 for responders, 0 for non-responders (model covariate).",
    # descriptive statistics and paired tests
    "split": "Patient attribute the table is split by (all = no split).",
    "group": "Level of the split (all, responder / non-responder, a cohort or a dose level); in time_to_response, "
             "the baseline group.",
    "n": "Patients with a value (at the visit; in correlations, with both values; in rescue_sensitivity, in the "
         "test; in response_rates and time_to_response, patients in the group).",
    "median": "Median of the value across patients (% of denominator for percentages).",
    "q1": "First quartile (25th percentile, linear interpolation) of the value.",
    "q3": "Third quartile (75th percentile, linear interpolation) of the value.",
    "n_paired": "Patients with a value at both baseline and the visit.",
    "median_change": "Median within-patient change from baseline (visit - baseline; percentage points).",
    "q1_change": "First quartile of the within-patient change from baseline.",
    "q3_change": "Third quartile of the within-patient change from baseline.",
    "median_percent_change": "Median of 100 x change / baseline value (patients with a baseline of 0 left out).",
    "wilcoxon_v": "Wilcoxon signed-rank statistic V: sum of the ranks of the positive changes (as R).",
    "hl_estimate": "Hodges-Lehmann estimate: of a change, the median of its Walsh averages; of responders vs "
                   "non-responders, the median of all responder - non-responder differences.",
    "hl_ci_low": "Lower bound of the exact (distribution-free, order-statistic) confidence interval of hl_estimate.",
    "hl_ci_high": "Upper bound of the exact confidence interval of hl_estimate.",
    "hl_confidence": "Confidence the exact interval achieves (>= 0.95; lower only when no interval of the sample "
                     "size reaches 95 %).",
    "p_value": "Two-sided p value of the row's test (see p_method, measure or model).",
    "p_method": "How p was computed: exact null distribution, or normal approximation with tie and continuity "
                "correction (ties, zero differences or more than 25 values).",
    "q_value": "Benjamini-Hochberg q value within the family named in fdr_family (or within the sheet); empty for "
               "populations outside the FDR families.",
    "fdr_family": "The set of tests the q values are adjusted over, or why the row is outside every family "
                  "(a duplicate gate, the last of a set of complements: statistics.exclude_from_fdr / complements).",
    # group comparisons
    "measure": "value: the population's value at the visit; change: its change from baseline.",
    "n_responders": "Responders with a value (or a change).",
    "n_nonresponders": "Non-responders with a value (or a change).",
    "median_responders": "Median in responders (value or change, see measure).",
    "median_nonresponders": "Median in non-responders (value or change, see measure).",
    "median_difference": "Median in responders minus median in non-responders.",
    "rank_biserial": "Rank-biserial correlation 2U/(n1 n2) - 1: > 0 when responders rank higher (-1..1).",
    "mann_whitney_u": "Mann-Whitney U of the responders (R's W for wilcox.test(responders, non-responders)).",
    # primary endpoint
    "endpoint": "The declared primary endpoint: population, value and visits.",
    "role": "primary immunological endpoint: the single pre-specified test (not FDR-adjusted); supportive: the same "
            "comparison at one visit, in every patient with that visit.",
    "value": "The value analysed: percent_of (% of the reporting denominator), abs_count (cells/uL) or ratio (of "
             "two populations' counts, statistics.ratios).",
    "n_left_out": "Patients with a response group and some endpoint change but not every endpoint visit, left out "
                  "of the primary test (complete cases).",
    "median_change_responders": "Median change from baseline in responders (per-patient mean over the visits "
                                "for the primary row).",
    "median_change_nonresponders": "Median change from baseline in non-responders (per-patient mean over the "
                                   "visits for the primary row).",
    "alpha": "Significance level of the primary test.",
    "significant": "Primary test p <= alpha (empty for supportive rows).",
    "q_value_in_family": "q value of the same comparison in the exploratory responder vs non-responder change "
                         "family.",
    # models
    "model": "The model fitted, with its scale, correlation structure and inference.",
    "term": "Fixed-effect term: Intercept (baseline, non-responders), visit[V] (change at V in non-responders), "
            "responder (baseline difference), visit[V]:responder (extra change at V in responders); visit x "
            "responder (joint F): all interaction terms at once; visit[mean V1+V2]:responder: their mean over the "
            "primary endpoint's visits.",
    "estimate": "Estimate on the model's scale (logit of the proportion, or log of a count or ratio).",
    "std_error": "Standard error of the estimate.",
    "ci_low": "Lower bound of the 95 % confidence interval of the row's estimate (model estimate, rm_r, response "
              "rate (Clopper-Pearson) or cumulative response (Kaplan-Meier, log-log)).",
    "ci_high": "Upper bound of the 95 % confidence interval of the row's estimate (as ci_low).",
    "statistic": "Test statistic: t (Satterthwaite df in the mixed model, patients - 1 df in the GEE), or F for the "
                 "joint visit x responder row.",
    "df_numerator": "Numerator degrees of freedom of an F test (the joint visit x responder row); empty for t tests.",
    "effect_measure": "What effect is: odds ratio (logit scale; odds for the Intercept) or ratio of geometric "
                      "means (log scale; geometric mean for the Intercept).",
    "effect": "exp(estimate): the estimate back-transformed (odds ratio, or ratio of geometric means).",
    "effect_ci_low": "exp(ci_low): lower bound of the 95 % CI of effect.",
    "effect_ci_high": "exp(ci_high): upper bound of the 95 % CI of effect.",
    "n_obs": "Observations (samples) used.",
    "n_patients": "Patients (clusters) used.",
    "converged": "The optimiser reported convergence.",
    "fit_warnings": "Warnings and errors raised while fitting (convergence, boundary, singular covariance).",
    # correlations with platelets
    "rm_r": "Repeated-measures correlation (Bakdash & Marusich 2017) of the value with log platelets.",
    "df": "Degrees of freedom: of rm_r, observations - patients - 1; of a model's t test (Satterthwaite in the "
          "mixed model, patients - 1 in the GEE) or the denominator of its F test.",
    "slope": "Common within-patient slope of the value on log platelets (value units per log unit).",
    "spearman_rho": "Spearman correlation across patients of the change in the value with the change in log "
                    "platelets (visit - baseline).",
    "platelets_1e9_per_L": "Platelet count (x10^9/L) nearest the sample's study day within 3 days.",
    "platelet_day": "Study day of the matched platelet count.",
    "log_platelets": "Natural log of the matched platelet count (counts below 1 set to 1).",
    # response table (cytotrial.response)
    "baseline_day": "Study day of the baseline platelet count.",
    "baseline_platelets": "Baseline platelet count (x10^9/L).",
    "best_response": "Best IWG 2009 response of the treatment: CR, R or NR (a response after rescue therapy and a "
                     "corticosteroid-dependent patient are NR).",
    "response_category": "CR, R, NR, 'response after rescue' (first confirmed on or after rescue therapy, not the "
                         "treatment's) or 'corticosteroid-dependent' (both NR for every treatment analysis).",
    "responded": "Confirmed response (CR or R) of the treatment at any time in the assessment window.",
    "response_day": "Study day of the first count of the first confirmed response.",
    "time_to_response_days": "Days from treatment start to response_day.",
    "cr_day": "Study day of the first confirmed complete response.",
    "loss_of_response": "The first response episode was lost.",
    "loss_day": "Study day the first response was lost.",
    "cr_loss_day": "Study day the complete response was lost.",
    "duration_of_response_days": "Days from response to loss, or to the last count when not lost.",
    "duration_censored": "The response was not lost by the last count (duration censored).",
    "n_response_episodes": "Confirmed response episodes.",
    "follow_up_days": "Days from treatment start to the last count.",
    "proportion_time_in_response": "Share of follow-up spent in response.",
    "n_counts": "Platelet counts evaluated.",
    "n_excluded_rescue": "Counts excluded after rescue therapy (only with response.rescue_reevaluation_days).",
    "first_rescue_day": "Study day of the first rescue therapy.",
    # rescue sensitivity, dose response, response rates, predictors, time to response
    "analysis": "The analysis repeated: the primary immunological endpoint or the paired change in all patients.",
    "rescue_window_samples": "left out: samples drawn after rescue therapy excluded (as in every other table); "
                             "kept: included.",
    "n_rescue_window_samples": "Samples of the population and visit(s) drawn within the rescue window.",
    "dose_levels": "The dose levels (dose_1e6_per_kg of the patient table) in increasing order; cohorts at one dose are one "
                   "level.",
    "n_by_dose": "Patients with a change at each dose level, in the order of dose_levels.",
    "median_change_by_dose": "Median change from baseline at each dose level, in the order of dose_levels.",
    "jt_statistic": "Jonckheere-Terpstra statistic: pairs of patients at a lower and a higher dose with the higher "
                    "change at the higher dose (ties count 1/2); p two-sided, exact without ties.",
    "grouping": "all patients, a dose level, a cohort, or the trend over dose levels.",
    "n_complete_response": "Patients with a complete response (CR) of the treatment.",
    "response_rate": "Responders (CR or R of the treatment) / patients; its CI is Clopper-Pearson (exact).",
    "n_response_after_rescue": "Patients whose only response was first confirmed after rescue therapy (NR).",
    "n_corticosteroid_dependent": "Patients flagged corticosteroid-dependent (NR).",
    "trend_statistic": "Exact Cochran-Armitage statistic: sum over dose levels of dose x responders.",
    "p_increasing": "One-sided exact p of a response rate increasing with dose.",
    "auc": "Area under the ROC curve of the baseline value for response: P(responder > non-responder) + ties/2; "
           "> 0.5: higher in responders.",
    "auc_ci_low": "Lower bound of the 95 % CI of auc (DeLong's variance, logit scale; empty at 0 or 1).",
    "auc_ci_high": "Upper bound of the 95 % CI of auc.",
    "baseline_median": "Median baseline value splitting the patients (<= median, > median).",
    "n_responded": "Patients in the group with a treatment response in the window.",
    "n_at_risk": "Patients still without a response and not censored just before the day.",
    "n_responded_on_day": "Patients whose response started on the day (its first confirmed count).",
    "n_censored_on_day": "Patients censored on the day: without a treatment response by the first rescue therapy "
                         "or the last evaluated count.",
    "cumulative_response": "Kaplan-Meier cumulative probability of a response by the day (1 - survival).",
    "logrank_chi2": "Log-rank chi-square (1 df) comparing the two groups' times to response.",
    "evaluable_until_day": "Last study day a treatment response could start: the response day, else the first "
                           "rescue therapy, else the last evaluated count (censoring time of time to response).",
    "response_after_rescue": "Best response (CR or R) first confirmed on or after rescue therapy; empty if none.",
    "response_after_rescue_day": "Study day of the first count of the response after rescue.",
    "corticosteroid_dependent": "The platelet table flags the patient corticosteroid-dependent after baseline in "
                                "the window (IWG: a non-responder).",
    "bleeding_record": "'recorded' when every evaluated count has a bleeding record, else 'bleeding not recorded' "
                       "(no record: CR and R rest on the counts alone) or the days without one.",
    "assessment_window_end_day": "Last study day evaluated (response.window_days, by default the protocol's last "
                                 "visit; without one, the patient's last count).",
}
"""Description of every column the stats, response and population tables produce."""

_INT = {"n", "n_paired", "n_responders", "n_nonresponders", "n_obs", "n_patients", "count", "parent_count",
        "n_left_out", "n_rescue_window_samples", "n_complete_response", "n_response_after_rescue",
        "n_corticosteroid_dependent", "n_responded", "n_at_risk", "n_responded_on_day", "n_censored_on_day",
        "df_numerator",
        "denominator_count", "study_day", "baseline_day", "response_day", "time_to_response_days", "cr_day",
        "loss_day", "cr_loss_day", "duration_of_response_days", "n_response_episodes", "follow_up_days", "n_counts",
        "n_excluded_rescue", "first_rescue_day", "platelet_day", "responder", "evaluable_until_day",
        "response_after_rescue_day", "assessment_window_end_day"}
_PERCENT = {"median", "q1", "q3", "median_change", "q1_change", "q3_change", "median_percent_change",
            "hl_estimate", "hl_ci_low", "hl_ci_high",
            "median_responders", "median_nonresponders", "median_difference", "median_change_responders",
            "median_change_nonresponders", "percent_of", "percent_of_parent"}
_PVALUE = {"p_value", "q_value", "q_value_in_family", "alpha", "p_increasing"}
_RANK = {"wilcoxon_v", "mann_whitney_u", "jt_statistic"}
COLUMN_KINDS: dict[str, str] = {**{c: "int" for c in _INT}, **{c: "percent" for c in _PERCENT},
                                **{c: "pvalue" for c in _PVALUE}, **{c: "rank" for c in _RANK}}
"""Number format kind of a column; columns not listed are formatted by dtype (integer or 0.000)."""

FORMATS = {"int": "0", "percent": "0.00", "pvalue": "[<0.0001]0.00E+00;0.0000", "rank": "0.0", "number": "0.000"}
_BAD_SHEET_CHARACTERS = re.compile(r"[\[\]:*?/\\]")


def column_kind(name: str, series: pd.Series) -> str | None:
    """'int', 'percent', 'pvalue', 'rank', 'number' or None (text, booleans) for a column."""
    if name in COLUMN_KINDS:
        return COLUMN_KINDS[name]
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "number"
    return None


def trial_descriptions(labels: TrialLabels, visits: list[str]) -> dict[str, str]:
    """:data:`COLUMN_DESCRIPTIONS` with the trial's wording (config ``labels``) for visit, study day, cohort, dose."""
    key = labels.visit_key(visits)
    cohorts = "; ".join(f"{c}: {labels.cohort(c)}" for c in labels.cohorts if labels.cohort(c) != c)
    return {**COLUMN_DESCRIPTIONS,
            "visit": f"Visit label, in study order {', '.join(visits)}{f' ({key})' if key else ''}; in a "
                     "primary-endpoint row, the visits summarised.",
            "study_day": f"Study day of the blood draw (day 0 = {labels.day0}).",
            "cohort": f"Dose cohort{f' ({cohorts})' if cohorts else ''}.",
            "dose_1e6_per_kg": f"{labels.dose[:1].upper()}{labels.dose[1:]}."}


def missing_descriptions(tables: Mapping[str, pd.DataFrame],
                         descriptions: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Sheet -> columns without a description (empty dict: every column is described)."""
    descriptions = COLUMN_DESCRIPTIONS if descriptions is None else descriptions
    missing = {name: [c for c in table.columns if c not in descriptions] for name, table in tables.items()}
    return {name: columns for name, columns in missing.items() if columns}


def readme_table(tables: Mapping[str, pd.DataFrame], descriptions: Mapping[str, str] | None = None,
                 notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """sheet, column, description: a note row per sheet (column empty) when given, then one row per column."""
    descriptions = COLUMN_DESCRIPTIONS if descriptions is None else descriptions
    rows = []
    for name, table in tables.items():
        if notes and name in notes:
            rows.append({"sheet": name, "column": "", "description": notes[name]})
        rows += [{"sheet": name, "column": str(c), "description": descriptions.get(c, NO_DESCRIPTION)}
                 for c in table.columns]
    return pd.DataFrame(rows, columns=["sheet", "column", "description"])


def _check_sheet_names(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name or len(name) > 31 or _BAD_SHEET_CHARACTERS.search(name):
            raise ValueError(f"sheet name {name!r} is not valid in Excel: 1-31 characters, none of []:*?/\\")
        if name.lower() == README.lower() or name.lower() in seen:
            raise ValueError(f"sheet name {name!r} is reserved or repeated (names are case-insensitive)")
        seen.add(name.lower())


def _cell_text(value, kind: str | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating) and kind is not None:
        if kind == "int":
            return f"{value:.0f}"
        if kind == "pvalue" and 0 < abs(value) < 1e-4:
            return f"{value:.2E}"
        decimals = {"percent": 2, "pvalue": 4, "rank": 1}.get(kind, 3)
        return f"{value:.{decimals}f}"
    return str(value)


def _prepare(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns with pd.NA / NaN become None (written as empty cells)."""
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object or isinstance(table[column].dtype, pd.CategoricalDtype):
            table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table


def _format_sheet(sheet, table: pd.DataFrame, max_width: int, wrap: str | None = None) -> None:
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for j, name in enumerate(table.columns, start=1):
        kind = column_kind(str(name), table[name])
        letter = sheet.cell(row=1, column=j).column_letter
        sheet.cell(row=1, column=j).font = Font(bold=True)
        texts = [_cell_text(v, kind) for v in table[name].tolist()]
        limit = README_DESCRIPTION_WIDTH if name == wrap else max_width
        width = max([len(str(name)), *map(len, texts)]) + 2
        sheet.column_dimensions[letter].width = min(max(width, 6), limit)
        if kind is None and name != wrap:
            continue
        for i in range(2, len(table) + 2):
            cell = sheet.cell(row=i, column=j)
            if kind is not None:
                cell.number_format = FORMATS[kind]
            else:
                cell.alignment = Alignment(wrap_text=True, vertical="top")


def write_workbook(tables: Mapping[str, pd.DataFrame], path: str | os.PathLike,
                   descriptions: Mapping[str, str] | None = None, notes: Mapping[str, str] | None = None,
                   *, max_width: int = MAX_WIDTH) -> Path:
    """Write ``tables`` to an xlsx workbook: README sheet first, then one sheet per table in the given order.

    Parameters
    ----------
    tables
        Sheet name (Excel rules: 1-31 characters, none of []:*?/\\, not README) -> table; the index is not written.
    descriptions
        Column -> description for the README (default :data:`COLUMN_DESCRIPTIONS`); others read "(no description)".
    notes
        Optional sheet -> one-line description, listed in the README above the sheet's columns.
    max_width
        Cap of column widths, in characters.

    Returns
    -------
    Path
        ``path``.
    """
    _check_sheet_names(list(tables))
    for name, table in tables.items():
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"table {name!r} is a {type(table).__name__}, not a DataFrame")
    path = Path(path)
    readme = readme_table(tables, descriptions, notes)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        readme.to_excel(writer, sheet_name=README, index=False)
        _format_sheet(writer.sheets[README], readme, max_width, wrap="description")
        for name, table in tables.items():
            prepared = _prepare(table.reset_index(drop=True))
            prepared.to_excel(writer, sheet_name=name, index=False)
            _format_sheet(writer.sheets[name], prepared, max_width)
    _remove_write_times(path)
    return path


def _remove_write_times(path: Path) -> None:
    """Rewrite an xlsx file without the times of writing that openpyxl puts in it (each zip entry's date, the
    document's created and modified properties): all become WORKBOOK_DATE, so the same tables give the same bytes
    on every run."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    temporary = path.with_name(f".{path.name}.dated")
    with zipfile.ZipFile(temporary, "w") as target:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*", rb"\g<1>" + WORKBOOK_DATE.encode(),
                              data)
            undated = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            undated.compress_type, undated.external_attr = info.compress_type, info.external_attr
            target.writestr(undated, data)
    os.replace(temporary, path)
