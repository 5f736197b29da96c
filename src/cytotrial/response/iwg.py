"""Platelet response of each patient by the IWG 2009 criteria (Rodeghiero et al., Blood 2009;113:2386).

Rules, with :class:`ResponseCriteria` defaults in brackets
-------------------------------------------------------------
* Days are study days; day 0 is the start of treatment. The **baseline** is the count on ``baseline_day`` [0]
  or, without one, the latest count in the ``baseline_window_days`` [7] before it; none is an error.
* Counts after ``baseline_day`` and up to ``window_days`` [last count] are evaluated. A count **qualifies for
  CR** when >= ``cr_threshold`` [100] and **for R** when >= ``r_threshold`` [30] and >= ``r_fold`` [2] x the
  baseline; a count on a day with bleeding qualifies for neither. A count qualifying for CR or R is a
  *response count*.
* **Rescue therapy**: counts from a rescue day up to ``rescue_exclusion_days`` [56] later (days d..d+55) are
  excluded: they qualify for nothing and are not evaluated at all (they neither confirm nor lose a response).
  The rescue itself breaks runs: counts before and after a rescue window are never consecutive. A patient in a
  response when rescue is given loses it on the rescue day (needing rescue is a loss; the time in the window is
  time out of response), so a response during or because of rescue is never counted.
* **Confirmation**: a response starts at the first count of a run of consecutive evaluated response counts that
  spans >= ``confirm_days`` [7] days (at least two counts). Consecutive means no evaluated non-qualifying count
  between them; days without a count (missing weeks) do not break a run. CR is confirmed in the same way on
  counts qualifying for CR. The response day is the first count of the run, not the confirming one.
* **Loss**: once in response, a single non-response count (a dip) changes nothing; the response is lost at the
  first of two or more consecutive evaluated non-response counts spanning >= ``loss_confirm_days`` [1] days
  (a count with bleeding is a non-response count and needs confirmation too), or at a rescue therapy. Loss of CR
  (``cr_loss_day``) is the same with counts below the CR criteria. After a loss a new confirmed run starts a
  new episode.
* **Outputs**: ``best_response`` is CR with any confirmed CR, else R with any confirmed response, else NR.
  ``response_day``, ``loss_day`` and ``duration_of_response_days`` describe the first response episode; the
  duration runs to the loss or, not lost (``duration_censored``), to the last evaluated count.
  ``proportion_time_in_response`` treats the response state as a step function that changes at counts: time in
  response runs from each episode's response day to its loss day (or the last count), divided by the follow-up
  (day 0 to the last count after baseline, excluded counts included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .settings import ResponseCriteria
from .table import PlateletTableError, validate_platelets

RESPONSE_COLUMNS: tuple[str, ...] = (
    "patient_id", "baseline_day", "baseline_platelets", "best_response", "responded", "response_day",
    "time_to_response_days", "cr_day", "loss_of_response", "loss_day", "cr_loss_day", "duration_of_response_days",
    "duration_censored", "n_response_episodes", "follow_up_days", "proportion_time_in_response", "n_counts",
    "n_excluded_rescue", "first_rescue_day", "reason")
"""Columns of :func:`derive_responses`, one row per patient."""

ANNOTATION_COLUMNS: tuple[str, ...] = (
    "patient_id", "study_day", "platelets_1e9_per_L", "rescue_therapy", "bleeding", "qualifies_CR",
    "qualifies_R", "excluded_reason", "in_response")
"""Columns of :func:`annotate_counts`, one row per row of the platelet table."""

_DAY_COLUMNS = ("baseline_day", "response_day", "time_to_response_days", "cr_day", "loss_day", "cr_loss_day",
                "duration_of_response_days", "follow_up_days", "first_rescue_day")


class MissingBaselineError(PlateletTableError):
    """No baseline count for one or more patients."""


@dataclass(frozen=True)
class _Episode:
    start: int  # first count of the confirmed run
    confirmed: int  # the count that confirmed it
    end: int | None  # first count of the confirmed loss, or the rescue day; None: not lost
    end_confirmed: int | None  # count that confirmed the loss (the rescue day for a rescue)
    rescue: bool


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
        (study days; NA when not applicable); ``duration_censored`` is NA for non-responders.
    annotations : DataFrame
        :data:`ANNOTATION_COLUMNS`, one row per table row sorted by patient and day. ``qualifies_*`` are False
        for rows that are not evaluated; ``excluded_reason`` is "" for evaluated counts, else one of "no count",
        "baseline", "before baseline day", "after window" or "rescue therapy on day D";
        ``in_response``: the patient is in a confirmed response at that day.

    Raises
    ------
    PlateletTableError
        For an invalid table; MissingBaselineError (a subclass) naming every patient without a baseline count.
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
    annotated = (pd.concat(annotations, ignore_index=True) if annotations
                 else pd.DataFrame(columns=list(ANNOTATION_COLUMNS)))
    return responses.reset_index(drop=True), annotated[list(ANNOTATION_COLUMNS)]


def derive_responses(platelets: pd.DataFrame, criteria: ResponseCriteria | None = None) -> pd.DataFrame:
    """Per-patient IWG 2009 platelet response: the first table of :func:`evaluate_responses`."""
    return evaluate_responses(platelets, criteria)[0]


def annotate_counts(platelets: pd.DataFrame, criteria: ResponseCriteria | None = None) -> pd.DataFrame:
    """Per-count annotations (e.g. for a swimmer plot): the second table of :func:`evaluate_responses`."""
    return evaluate_responses(platelets, criteria)[1]


def _baseline(rows: pd.DataFrame, criteria: ResponseCriteria) -> tuple[int, float] | None:
    """(day, count) of the baseline count of one patient, or None."""
    counted = rows[rows["platelets_1e9_per_L"].notna()]
    day = counted["study_day"]
    window = counted[(day <= criteria.baseline_day) & (day >= criteria.baseline_day - criteria.baseline_window_days)]
    if window.empty:
        return None
    last = window.iloc[-1]  # rows are sorted by day: the count on baseline_day if any, else the latest before
    return int(last["study_day"]), float(last["platelets_1e9_per_L"])


def _episodes(days: np.ndarray, qualifies: np.ndarray, rescue_days: list[int],
              criteria: ResponseCriteria) -> tuple[list[_Episode], list[list[int]]]:
    """Confirmed episodes and unconfirmed qualifying runs from the evaluated counts (sorted by day)."""
    # rescue sorts before a count on the same day (that count is excluded anyway)
    events = sorted([(d, 0, False) for d in rescue_days] + [(int(t), 1, bool(q)) for t, q in zip(days, qualifies)])
    episodes: list[_Episode] = []
    unconfirmed: list[list[int]] = []
    run: list[int] = []
    dip: list[int] = []
    start = confirmed = None
    for day, kind, qualifying in events:
        if kind == 0:  # rescue therapy: loses a response, breaks a run
            if start is not None:
                episodes.append(_Episode(start, confirmed, day, day, True))
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
        elif qualifying:
            dip = []
        else:
            dip.append(day)
            if len(dip) >= 2 and dip[-1] - dip[0] >= criteria.loss_confirm_days:
                episodes.append(_Episode(start, confirmed, dip[0], day, False))
                start, dip = None, []
    if start is not None:
        episodes.append(_Episode(start, confirmed, None, None, False))
    elif run:
        unconfirmed.append(run)
    return episodes, unconfirmed


def _evaluate_patient(patient_id: str, rows: pd.DataFrame, baseline: tuple[int, float],
                      criteria: ResponseCriteria) -> tuple[dict, pd.DataFrame]:
    c = criteria
    base_day, base = baseline
    day = rows["study_day"].to_numpy(dtype=np.int64)
    count = rows["platelets_1e9_per_L"].to_numpy(dtype=float)
    bleeding = rows["bleeding"].to_numpy(dtype=bool)
    in_window = np.ones(len(rows), bool) if c.window_days is None else day <= c.window_days
    rescue_days = sorted(int(d) for d in day[rows["rescue_therapy"].to_numpy(dtype=bool) & in_window])

    reason = np.full(len(rows), "", dtype=object)
    follow_up = ~np.isnan(count) & (day > c.baseline_day) & in_window
    for d in rescue_days:  # later rescues overwrite: the reason names the latest rescue covering the count
        reason[follow_up & (day >= d) & (day < d + c.rescue_exclusion_days)] = f"rescue therapy on day {d}"
    reason[~in_window] = "after window"
    reason[day <= c.baseline_day] = "before baseline day"
    reason[day == base_day] = "baseline"
    reason[np.isnan(count)] = "no count"
    evaluated = reason == ""

    with np.errstate(invalid="ignore"):
        q_cr = evaluated & ~bleeding & (count >= c.cr_threshold)
        q_r = evaluated & ~bleeding & (count >= c.r_threshold) & (count >= c.r_fold * base)
    episodes, unconfirmed = _episodes(day[evaluated], (q_cr | q_r)[evaluated], rescue_days, c)
    cr_episodes, _ = _episodes(day[evaluated], q_cr[evaluated], rescue_days, c)

    last_day = int(day[follow_up].max()) if follow_up.any() else None
    last_evaluated = int(day[evaluated].max()) if evaluated.any() else None
    in_response = np.zeros(len(rows), bool)
    time_in_response = 0
    for e in episodes:
        end = e.end if e.end is not None else last_day
        in_response |= (day >= e.start) & ((day < e.end) if e.end is not None else True)
        time_in_response += end - e.start
    first = episodes[0] if episodes else None
    best = "CR" if cr_episodes else ("R" if episodes else "NR")
    excluded_rescue = follow_up & pd.Series(reason).str.startswith("rescue").to_numpy()

    result = {
        "patient_id": patient_id, "baseline_day": base_day, "baseline_platelets": base, "best_response": best,
        "responded": first is not None,
        "response_day": first.start if first else None,
        "time_to_response_days": first.start if first else None,  # from day 0, the start of treatment
        "cr_day": cr_episodes[0].start if cr_episodes else None,
        "loss_of_response": bool(first and first.end is not None),
        "loss_day": first.end if first else None,
        "cr_loss_day": cr_episodes[0].end if cr_episodes else None,
        "duration_of_response_days": ((first.end if first.end is not None else last_evaluated) - first.start
                                      if first else None),
        "duration_censored": (first.end is None) if first else None,
        "n_response_episodes": len(episodes),
        "follow_up_days": last_day,
        "proportion_time_in_response": time_in_response / last_day if last_day and last_day > 0 else float("nan"),
        "n_counts": int(follow_up.sum()),
        "n_excluded_rescue": int(excluded_rescue.sum()),
        "first_rescue_day": rescue_days[0] if rescue_days else None,
        "reason": _reason(best, base, episodes, cr_episodes, unconfirmed, count[evaluated], rescue_days,
                          [int(d) for d in day[evaluated & bleeding]], last_evaluated, c),
    }
    annotated = pd.DataFrame({
        "patient_id": patient_id, "study_day": day, "platelets_1e9_per_L": count,
        "rescue_therapy": rows["rescue_therapy"].to_numpy(dtype=bool), "bleeding": bleeding,
        "qualifies_CR": q_cr, "qualifies_R": q_r, "excluded_reason": reason.astype(str),
        "in_response": in_response})
    return result, annotated


def _num(x: float) -> str:
    return f"{x:g}"


def _reason(best: str, base: float, episodes: list[_Episode], cr_episodes: list[_Episode],
            unconfirmed: list[list[int]], evaluated_counts: np.ndarray, rescue_days: list[int],
            bleeding_days: list[int], last_evaluated: int | None, c: ResponseCriteria) -> str:
    """One line explaining the call."""
    r_rule = f">= {_num(c.r_threshold)} and >= {_num(c.r_fold)}x baseline {_num(base)}"
    parts = []
    if episodes:
        first = episodes[0]
        if best == "CR":
            cr = cr_episodes[0]
            parts.append(f"CR confirmed on days {cr.start} and {cr.confirmed} (>= {_num(c.cr_threshold)})")
            if first.start < cr.start:
                parts.append(f"response from day {first.start} (R confirmed on day {first.confirmed})")
        else:
            parts.append(f"R confirmed on days {first.start} and {first.confirmed} ({r_rule})")
        if first.rescue:
            parts.append(f"lost on day {first.end} (rescue therapy)")
        elif first.end is not None:
            parts.append(f"lost on day {first.end} (confirmed on day {first.end_confirmed})")
        else:
            parts.append(f"not lost (censored at day {last_evaluated})")
        if len(episodes) > 1:
            parts.append(f"{len(episodes)} response episodes")
    elif unconfirmed:
        days = ", ".join(str(d) for run in unconfirmed for d in run)
        parts.append(f"NR: qualifying count(s) on day(s) {days} not confirmed (needs consecutive qualifying "
                     f"counts >= {c.confirm_days} days apart)")
    elif len(evaluated_counts):
        parts.append(f"NR: no count qualified (max {_num(float(np.max(evaluated_counts)))}; R needs {r_rule})")
    else:
        parts.append("NR: no evaluated count after baseline")
    if bleeding_days:
        parts.append(f"bleeding on day(s) {', '.join(map(str, bleeding_days))} (those counts do not qualify)")
    if rescue_days:
        windows = ", ".join(f"{d} (excluded to day {d + c.rescue_exclusion_days - 1})" for d in rescue_days)
        parts.append(f"rescue therapy on day {windows}")
    return "; ".join(parts)
