"""Platelet response of each patient by the IWG 2009 criteria (Rodeghiero et al., Blood 2009;113:2386).

From platelet counts by study day, with bleeding, rescue-therapy and corticosteroid records: the baseline, the
assessment window, CR / R qualification, confirmation, loss, responses after rescue, and per patient the best
response, response day, duration and time in response. The rules, with the :class:`ResponseCriteria` defaults,
are in :func:`evaluate_responses`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .settings import ResponseCriteria
from .table import PlateletTableError, validate_platelets

RESPONSE_COLUMNS: tuple[str, ...] = (
    "patient_id", "baseline_day", "baseline_platelets", "best_response", "response_category", "responded",
    "response_day", "time_to_response_days", "cr_day", "loss_of_response", "loss_day", "cr_loss_day",
    "duration_of_response_days", "duration_censored", "n_response_episodes", "follow_up_days",
    "proportion_time_in_response", "evaluable_until_day", "n_counts", "n_excluded_rescue", "first_rescue_day",
    "response_after_rescue", "response_after_rescue_day", "corticosteroid_dependent", "bleeding_record",
    "assessment_window_end_day", "reason")
"""Columns of :func:`derive_responses`, one row per patient."""

ANNOTATION_COLUMNS: tuple[str, ...] = (
    "patient_id", "study_day", "platelets_1e9_per_L", "rescue_therapy", "bleeding", "corticosteroid_dependent",
    "qualifies_CR", "qualifies_R", "excluded_reason", "after_rescue", "in_response", "in_response_after_rescue")
"""Columns of :func:`annotate_counts`, one row per row of the platelet table."""

RESPONSE_AFTER_RESCUE = "response after rescue"
CORTICOSTEROID_DEPENDENT = "corticosteroid-dependent"
BLEEDING_RECORDED, BLEEDING_NOT_RECORDED = "recorded", "bleeding not recorded"

_DAY_COLUMNS = ("baseline_day", "response_day", "time_to_response_days", "cr_day", "loss_day", "cr_loss_day",
                "duration_of_response_days", "follow_up_days", "evaluable_until_day", "first_rescue_day",
                "response_after_rescue_day", "assessment_window_end_day")


class MissingBaselineError(PlateletTableError):
    """No baseline count for one or more patients."""


class BleedingNotRecordedWarning(UserWarning):
    """Evaluated counts without a bleeding record: CR and R need documented absence of bleeding."""


@dataclass(frozen=True)
class _Episode:
    start: int  # first count of the confirmed run
    confirmed: int  # the count that confirmed it
    end: int | None  # first count of the confirmed loss, the bleeding count or the rescue day; None: not lost
    end_confirmed: int | None  # count that confirmed the loss (the bleeding or rescue day itself)
    cause: str | None  # "counts", "bleeding", "rescue"; None: not lost


def evaluate_responses(platelets: pd.DataFrame,
                       criteria: ResponseCriteria | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-patient IWG response and per-count annotations (see the module docstring for the rules).

    Parameters
    ----------
    platelets
        Platelet table (``load_platelets`` or a DataFrame with the same columns; checked again here).
    criteria
        Thresholds and time rules; None: the IWG defaults.

    Returns
    -------
    responses : DataFrame
        :data:`RESPONSE_COLUMNS`, one row per patient sorted by patient_id. Day columns are nullable integers
        (study days; NA when not applicable); ``duration_censored`` is NA for non-responders;
        ``response_category`` is CR, R, NR, "response after rescue" or "corticosteroid-dependent" (both NR in
        ``best_response``); ``bleeding_record`` is "recorded", "bleeding not recorded" or names the evaluated
        counts without a record.
    annotations : DataFrame
        :data:`ANNOTATION_COLUMNS`, one row per table row sorted by patient and day. ``qualifies_*`` are False
        for rows that are not evaluated; ``excluded_reason`` is "" for evaluated counts, else one of "no count",
        "baseline", "before baseline day", "after window" or "rescue therapy on day D" (with
        ``rescue_reevaluation_days``); ``after_rescue``: on or after the patient's first rescue therapy;
        ``in_response``: in a confirmed response of the treatment at that day; ``in_response_after_rescue``: in
        a response first confirmed after rescue therapy.

    Raises
    ------
    PlateletTableError
        For an invalid table; MissingBaselineError (a subclass) naming every patient without a baseline count.

    Warns
    -----
    BleedingNotRecordedWarning
        When evaluated counts have no bleeding record (no ``bleeding`` column, or empty cells), naming the
        patients.

    Rules, with :class:`ResponseCriteria` defaults in brackets
    -------------------------------------------------------------
    * Days are study days; day 0 is the start of treatment. The **baseline** is the count on ``baseline_day`` [0]
      or, without one, the latest count in the ``baseline_window_days`` [7] before it; none is an error.
    * **Assessment window**: counts after ``baseline_day`` and up to ``window_days`` [each patient's last count; the
      workflow sets the protocol's last visit] are evaluated; the end of the window is written in the table. A
      count **qualifies for CR** when >= ``cr_threshold`` [100] and **for R** when >= ``r_threshold`` [30] and
      >= ``r_fold`` [2] x the baseline; a count on a day with bleeding qualifies for neither. A count qualifying for
      CR or R is a *response count*.
    * **Bleeding** must be documented (column ``bleeding``, 0/1): a count without a record still qualifies, but the
      patient's ``bleeding_record`` says "bleeding not recorded" (no record at all) or names the days without one,
      and :func:`evaluate_responses` warns (:class:`BleedingNotRecordedWarning`).
    * **Rescue therapy** ends a response on its day and breaks runs: counts before and after it are never
      consecutive. By default (IWG) a response first confirmed on or after the first rescue therapy is not
      attributable to the treatment: it is reported as a **response after rescue** (``response_category``,
      ``response_after_rescue``) and is NR for every treatment analysis (``best_response``, ``responded``). With
      ``rescue_reevaluation_days`` N, counts from each rescue day d to d + N - 1 are excluded (they qualify for
      nothing, neither confirm nor lose a response) and responses confirmed from d + N on are the treatment's.
    * **Corticosteroid dependence** (column ``corticosteroid_dependent`` = 1 on any row in the window): the patient
      is NR (``response_category`` "corticosteroid-dependent"), whatever the counts.
    * **Confirmation**: a response starts at the first count of a run of consecutive evaluated response counts that
      spans >= ``confirm_days`` [7] days (at least two counts). Consecutive means no evaluated non-qualifying count
      between them; days without a count (missing weeks) do not break a run. CR is confirmed in the same way on
      counts qualifying for CR. The response day is the first count of the run, not the confirming one.
    * **Loss**: once in response, a single non-response count (a dip) changes nothing; the response is lost at the
      first of two or more consecutive evaluated non-response counts spanning >= ``loss_confirm_days`` [1] days, at
      a count with bleeding (that day, no confirmation needed), or at a rescue therapy. Loss of CR (``cr_loss_day``)
      is the same with counts below the CR criteria. After a loss a new confirmed run starts a new episode.
    * **Outputs**: ``best_response`` is CR with any confirmed CR of the treatment, else R with any confirmed response
      of the treatment, else NR. ``response_day``, ``loss_day`` and ``duration_of_response_days`` describe the
      treatment's first response episode; the duration runs to the loss or, not lost (``duration_censored``), to the
      last evaluated count. ``proportion_time_in_response`` treats the response state as a step function that
      changes at counts: time in the treatment's response episodes, divided by the follow-up (day 0 to the last
      count after baseline, excluded counts included). ``evaluable_until_day`` is the last day a treatment response
      could start (the response day, else the first rescue therapy without re-evaluation, else the last evaluated
      count): the censoring time of time to response.
    """
    criteria = criteria or ResponseCriteria()
    table = validate_platelets(platelets)
    results, annotations, no_baseline = [], [], []
    for patient_id, rows in table.groupby("patient_id", sort=True):
        baseline = _baseline(rows, criteria)
        if baseline is None:
            no_baseline.append(str(patient_id))
            continue
        result, annotated = _evaluate_patient(str(patient_id), rows, baseline, criteria)
        results.append(result)
        annotations.append(annotated)
    if no_baseline:
        first = criteria.baseline_day - criteria.baseline_window_days
        raise MissingBaselineError(
            f"no baseline platelet count for patient(s) {', '.join(no_baseline)}: the baseline is the count on "
            f"study day {criteria.baseline_day} or the latest one on days {first}..{criteria.baseline_day}. Add a "
            f"baseline count row (study_day {criteria.baseline_day}) for each of them, or widen "
            f"response.baseline_window_days")
    responses = pd.DataFrame(results, columns=list(RESPONSE_COLUMNS))
    for column in _DAY_COLUMNS:
        responses[column] = responses[column].astype("Int64")
    responses["duration_censored"] = responses["duration_censored"].astype("boolean")
    responses["proportion_time_in_response"] = responses["proportion_time_in_response"].astype(float)
    _warn_unrecorded_bleeding(responses)
    annotated = (pd.concat(annotations, ignore_index=True) if annotations
                 else pd.DataFrame(columns=list(ANNOTATION_COLUMNS)))
    return responses.reset_index(drop=True), annotated[list(ANNOTATION_COLUMNS)]


def derive_responses(platelets: pd.DataFrame, criteria: ResponseCriteria | None = None) -> pd.DataFrame:
    """Per-patient IWG 2009 platelet response: the first table of :func:`evaluate_responses`."""
    return evaluate_responses(platelets, criteria)[0]


def annotate_counts(platelets: pd.DataFrame, criteria: ResponseCriteria | None = None) -> pd.DataFrame:
    """Per-count annotations (e.g. for a swimmer plot): the second table of :func:`evaluate_responses`."""
    return evaluate_responses(platelets, criteria)[1]


def _warn_unrecorded_bleeding(responses: pd.DataFrame) -> None:
    unrecorded = responses.loc[responses["bleeding_record"] != BLEEDING_RECORDED, "patient_id"].tolist()
    if unrecorded:
        warnings.warn(BleedingNotRecordedWarning(
            f"bleeding is not recorded for evaluated platelet counts of patient(s) {', '.join(unrecorded)}: CR and "
            f"R require documented absence of bleeding, so their responses rest on counts alone (column "
            f"bleeding_record of the response table). Add a bleeding column (0/1 on every count) to the platelet "
            f"table."), stacklevel=3)


def _baseline(rows: pd.DataFrame, criteria: ResponseCriteria) -> tuple[int, float] | None:
    """(day, count) of the baseline count of one patient, or None."""
    counted = rows[rows["platelets_1e9_per_L"].notna()]
    day = counted["study_day"]
    window = counted[(day <= criteria.baseline_day) & (day >= criteria.baseline_day - criteria.baseline_window_days)]
    if window.empty:
        return None
    last = window.iloc[-1]  # rows are sorted by day: the count on baseline_day if any, else the latest before
    return int(last["study_day"]), float(last["platelets_1e9_per_L"])


def _episodes(days: np.ndarray, qualifies: np.ndarray, bleeding: np.ndarray, rescue_days: list[int],
              *, criteria: ResponseCriteria) -> tuple[list[_Episode], list[list[int]]]:
    """Confirmed episodes and unconfirmed qualifying runs from the evaluated counts (sorted by day)."""
    # rescue sorts before a count on the same day
    events = sorted([(d, 0, False, False) for d in rescue_days]
                    + [(int(t), 1, bool(q), bool(b)) for t, q, b in zip(days, qualifies, bleeding, strict=True)])
    episodes: list[_Episode] = []
    unconfirmed: list[list[int]] = []
    run: list[int] = []
    dip: list[int] = []
    start = confirmed = None
    for day, kind, qualifying, bleeds in events:
        if kind == 0:  # rescue therapy: loses a response, breaks a run
            if start is not None:
                episodes.append(_Episode(start, confirmed, day, day, "rescue"))
                start = None
            elif run:
                unconfirmed.append(run)
            run, dip = [], []
        elif start is None:
            if not qualifying:
                if run:
                    unconfirmed.append(run)
                run = []
                continue
            run.append(day)
            if len(run) >= 2 and day - run[0] >= criteria.confirm_days:
                start, confirmed, run, dip = run[0], day, [], []
        elif bleeds:  # bleeding ends a response that day
            episodes.append(_Episode(start, confirmed, day, day, "bleeding"))
            start, dip = None, []
        elif qualifying:
            dip = []
        else:
            dip.append(day)
            if len(dip) >= 2 and dip[-1] - dip[0] >= criteria.loss_confirm_days:
                episodes.append(_Episode(start, confirmed, dip[0], day, "counts"))
                start, dip = None, []
    if start is not None:
        episodes.append(_Episode(start, confirmed, None, None, None))
    elif run:
        unconfirmed.append(run)
    return episodes, unconfirmed


def _excluded_reasons(day: np.ndarray, count: np.ndarray, in_window: np.ndarray, base_day: int,
                      *, rescue_days: list[int], c: ResponseCriteria) -> np.ndarray:
    """Why each row is not evaluated ("" for evaluated counts)."""
    reason = np.full(len(day), "", dtype=object)
    follow_up = ~np.isnan(count) & (day > c.baseline_day) & in_window
    if c.rescue_reevaluation_days is not None:
        for d in rescue_days:  # later rescues overwrite: the reason names the latest rescue covering the count
            reason[follow_up & (day >= d) & (day < d + c.rescue_reevaluation_days)] = f"rescue therapy on day {d}"
    reason[~in_window] = "after window"
    reason[day <= c.baseline_day] = "before baseline day"
    reason[day == base_day] = "baseline"
    reason[np.isnan(count)] = "no count"
    return reason


def _in_episodes(day: np.ndarray, episodes: list[_Episode]) -> np.ndarray:
    inside = np.zeros(len(day), bool)
    for e in episodes:
        inside |= (day >= e.start) & ((day < e.end) if e.end is not None else True)
    return inside


def _bleeding_record(day: np.ndarray, recorded: np.ndarray, evaluated: np.ndarray) -> str:
    missing = evaluated & ~recorded
    if not missing.any():
        return BLEEDING_RECORDED
    if not recorded.any():
        return BLEEDING_NOT_RECORDED
    return f"{BLEEDING_NOT_RECORDED} on day(s) {', '.join(str(int(d)) for d in day[missing])}"


def _best(episodes: list[_Episode], cr_episodes: list[_Episode]) -> str:
    return "CR" if cr_episodes else ("R" if episodes else "NR")


def _evaluate_patient(patient_id: str, rows: pd.DataFrame, baseline: tuple[int, float],
                      criteria: ResponseCriteria) -> tuple[dict, pd.DataFrame]:
    c = criteria
    base_day, base = baseline
    day = rows["study_day"].to_numpy(dtype=np.int64)
    count = rows["platelets_1e9_per_L"].to_numpy(dtype=float)
    recorded = rows["bleeding"].notna().to_numpy()
    bleeding = rows["bleeding"].fillna(False).to_numpy(dtype=bool)
    in_window = np.ones(len(rows), bool) if c.window_days is None else day <= c.window_days
    rescue_days = sorted(int(d) for d in day[rows["rescue_therapy"].to_numpy(dtype=bool) & in_window])
    steroid_days = [int(d) for d in day[rows["corticosteroid_dependent"].to_numpy(dtype=bool) & in_window
                                        & (day > c.baseline_day)]]

    reason = _excluded_reasons(day, count, in_window, base_day, rescue_days=rescue_days, c=c)
    follow_up = ~np.isnan(count) & (day > c.baseline_day) & in_window
    evaluated = reason == ""
    with np.errstate(invalid="ignore"):
        q_cr = evaluated & ~bleeding & (count >= c.cr_threshold)
        q_r = evaluated & ~bleeding & (count >= c.r_threshold) & (count >= c.r_fold * base)
    episodes, unconfirmed = _episodes(day[evaluated], (q_cr | q_r)[evaluated], bleeding[evaluated], rescue_days,
                                      criteria=c)
    cr_episodes, _ = _episodes(day[evaluated], q_cr[evaluated], bleeding[evaluated], rescue_days, criteria=c)

    # without re-evaluation nothing confirmed on or after the first rescue is the treatment's
    attribution_end = rescue_days[0] if rescue_days and c.rescue_reevaluation_days is None else None

    def attributable(e: _Episode) -> bool:
        return attribution_end is None or e.confirmed < attribution_end

    after = [e for e in episodes if not attributable(e)]
    after_cr = [e for e in cr_episodes if not attributable(e)]
    by_counts = [e for e in episodes if attributable(e)]
    by_counts_cr = [e for e in cr_episodes if attributable(e)]
    treatment, treatment_cr = ([], []) if steroid_days else (by_counts, by_counts_cr)

    last_day = int(day[follow_up].max()) if follow_up.any() else None
    last_evaluated = int(day[evaluated].max()) if evaluated.any() else None
    time_in_response = sum((e.end if e.end is not None else last_day) - e.start for e in treatment)
    first = treatment[0] if treatment else None
    best = _best(treatment, treatment_cr)
    after_best = _best(after, after_cr) if after else ""
    category = CORTICOSTEROID_DEPENDENT if steroid_days else (best if best != "NR" or not after
                                                               else RESPONSE_AFTER_RESCUE)
    record = _bleeding_record(day, recorded, evaluated)
    candidates = [first.start] if first else [d for d in (attribution_end, last_evaluated) if d is not None][:1]
    before_rescue = evaluated & (day < attribution_end) if attribution_end is not None else evaluated

    result = {
        "patient_id": patient_id, "baseline_day": base_day, "baseline_platelets": base, "best_response": best,
        "response_category": category, "responded": first is not None,
        "response_day": first.start if first else None,
        "time_to_response_days": first.start if first else None,  # from day 0, the start of treatment
        "cr_day": treatment_cr[0].start if treatment_cr else None,
        "loss_of_response": bool(first and first.end is not None),
        "loss_day": first.end if first else None,
        "cr_loss_day": treatment_cr[0].end if treatment_cr else None,
        "duration_of_response_days": ((first.end if first.end is not None else last_evaluated) - first.start
                                      if first else None),
        "duration_censored": (first.end is None) if first else None,
        "n_response_episodes": len(treatment),
        "follow_up_days": last_day,
        "proportion_time_in_response": time_in_response / last_day if last_day and last_day > 0 else float("nan"),
        "evaluable_until_day": candidates[0] if candidates else None,
        "n_counts": int(follow_up.sum()),
        "n_excluded_rescue": int((follow_up & pd.Series(reason).str.startswith("rescue").to_numpy()).sum()),
        "first_rescue_day": rescue_days[0] if rescue_days else None,
        "response_after_rescue": after_best,
        "response_after_rescue_day": after[0].start if after else None,
        "corticosteroid_dependent": bool(steroid_days),
        "bleeding_record": record,
        "assessment_window_end_day": c.window_days if c.window_days is not None else last_day,
        "reason": _reason(_Outcome(base, by_counts, by_counts_cr, after, after_cr,
                                   [r for r in unconfirmed if attribution_end is None or r[0] < attribution_end],
                                   count[before_rescue], rescue_days,
                                   [int(d) for d in day[evaluated & bleeding]], steroid_days, record,
                                   last_evaluated), c),
    }
    annotated = pd.DataFrame({
        "patient_id": patient_id, "study_day": day, "platelets_1e9_per_L": count,
        "rescue_therapy": rows["rescue_therapy"].to_numpy(dtype=bool), "bleeding": rows["bleeding"].to_numpy(),
        "corticosteroid_dependent": rows["corticosteroid_dependent"].to_numpy(dtype=bool),
        "qualifies_CR": q_cr, "qualifies_R": q_r, "excluded_reason": reason.astype(str),
        "after_rescue": day >= rescue_days[0] if rescue_days else np.zeros(len(rows), bool),
        "in_response": _in_episodes(day, treatment), "in_response_after_rescue": _in_episodes(day, after)})
    annotated["bleeding"] = annotated["bleeding"].astype("boolean")
    return result, annotated


@dataclass(frozen=True)
class _Outcome:
    """What the reason of one patient is written from."""

    base: float
    episodes: list[_Episode]  # confirmed before any rescue (or with re-evaluation), by the counts alone
    cr_episodes: list[_Episode]
    after: list[_Episode]  # first confirmed on or after a rescue therapy (not attributable)
    after_cr: list[_Episode]
    unconfirmed: list[list[int]]
    evaluated_counts: np.ndarray  # counts that could have been the treatment's response
    rescue_days: list[int]
    bleeding_days: list[int]
    steroid_days: list[int]
    bleeding_record: str
    last_evaluated: int | None


def _num(x: float) -> str:
    return f"{x:g}"


def _days(days: list[int]) -> str:
    return ", ".join(map(str, days))


def _counts_part(o: _Outcome, c: ResponseCriteria) -> list[str]:
    """The response by the platelet counts (before any rescue unless re-evaluated)."""
    r_rule = f">= {_num(c.r_threshold)} and >= {_num(c.r_fold)}x baseline {_num(o.base)}"
    if not o.episodes:
        if o.unconfirmed:
            days = _days([d for run in o.unconfirmed for d in run])
            return [f"NR: qualifying count(s) on day(s) {days} not confirmed (needs consecutive qualifying "
                    f"counts >= {c.confirm_days} days apart)"]
        if len(o.evaluated_counts):
            return [f"NR: no count qualified (max {_num(float(np.max(o.evaluated_counts)))}; R needs {r_rule})"]
        return ["NR: no evaluated count before rescue therapy" if o.rescue_days and c.rescue_reevaluation_days is None
                else "NR: no evaluated count after baseline"]
    first = o.episodes[0]
    parts = []
    if o.cr_episodes:
        cr = o.cr_episodes[0]
        parts.append(f"CR confirmed on days {cr.start} and {cr.confirmed} (>= {_num(c.cr_threshold)})")
        if first.start < cr.start:
            parts.append(f"response from day {first.start} (R confirmed on day {first.confirmed})")
    else:
        parts.append(f"R confirmed on days {first.start} and {first.confirmed} ({r_rule})")
    if first.cause in ("rescue", "bleeding"):
        parts.append(f"lost on day {first.end} ({'rescue therapy' if first.cause == 'rescue' else 'bleeding'})")
    elif first.end is not None:
        parts.append(f"lost on day {first.end} (confirmed on day {first.end_confirmed})")
    else:
        parts.append(f"not lost (censored at day {o.last_evaluated})")
    if len(o.episodes) > 1:
        parts.append(f"{len(o.episodes)} response episodes")
    return parts


def _reason(o: _Outcome, c: ResponseCriteria) -> str:
    """One line explaining the call."""
    parts = _counts_part(o, c)
    if o.steroid_days:
        parts = [f"NR: corticosteroid-dependent (day(s) {_days(o.steroid_days)}); by the counts alone: "
                 + "; ".join(parts)]
    if o.after:
        kind = "CR" if o.after_cr else "R"
        e = o.after_cr[0] if o.after_cr else o.after[0]
        parts.append(f"response after rescue: {kind} confirmed on days {e.start} and {e.confirmed}, not "
                     f"attributed to the treatment")
    if o.bleeding_days:
        parts.append(f"bleeding on day(s) {_days(o.bleeding_days)} (those counts do not qualify)")
    if o.rescue_days:
        if c.rescue_reevaluation_days is None:
            parts.append(f"rescue therapy on day(s) {_days(o.rescue_days)}")
        else:
            windows = ", ".join(f"{d} (excluded to day {d + c.rescue_reevaluation_days - 1})" for d in o.rescue_days)
            parts.append(f"rescue therapy on day {windows}")
    if o.bleeding_record != BLEEDING_RECORDED:
        parts.append(o.bleeding_record)
    return "; ".join(parts)
