"""IWG 2009 platelet response: hand-worked cases for every rule, bad inputs and the demo trial's truth."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from cytotrial.response import (
    ANNOTATION_COLUMNS,
    RESPONSE_COLUMNS,
    BleedingNotRecordedWarning,
    MissingBaselineError,
    PlateletTableError,
    ResponseCriteria,
    annotate_counts,
    derive_responses,
    evaluate_responses,
    load_platelets,
    validate_platelets,
)

REPO = Path(__file__).resolve().parents[1]


def table(counts: dict[int, float | None], patient: str = "P1", rescue: tuple[int, ...] = (),
          bleeding: tuple[int, ...] | None = (), steroids: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Platelet table of one patient from {study_day: count}; None is a row without a count. Bleeding is recorded
    (0 but on the ``bleeding`` days) unless ``bleeding`` is None (no column); ``steroids``: days flagged
    corticosteroid-dependent (None: no column)."""
    days = sorted(set(counts) | set(rescue))
    frame = pd.DataFrame({"patient_id": patient, "week": [d // 7 for d in days], "study_day": days,
                          "platelets_1e9_per_L": [counts.get(d) for d in days],
                          "rescue_therapy": [int(d in rescue) for d in days]})
    if bleeding is not None:
        frame["bleeding"] = [int(d in bleeding) for d in days]
    if steroids is not None:
        frame["corticosteroid_dependent"] = [int(d in steroids) for d in days]
    return frame


def weekly(*counts: float | None) -> dict[int, float]:
    """{7 * week: count} from week 0; None is a missing week (no row)."""
    return {7 * w: c for w, c in enumerate(counts) if c is not None}


def one(counts: dict[int, float | None], criteria: ResponseCriteria | None = None, **kwargs) -> pd.Series:
    result = derive_responses(table(counts, **kwargs), criteria)
    assert len(result) == 1
    return result.iloc[0]


# --- response and confirmation -------------------------------------------------------------------------------

def test_cr_confirmed_and_lost():
    r = one(weekly(10, 20, 120, 130, 15, 12))
    assert r.best_response == "CR" and r.responded
    assert r.response_day == 14 and r.time_to_response_days == 14 and r.cr_day == 14
    assert r.loss_of_response and r.loss_day == 28 and r.cr_loss_day == 28
    assert r.duration_of_response_days == 14 and not r.duration_censored
    assert r.reason == "CR confirmed on days 14 and 21 (>= 100); lost on day 28 (confirmed on day 35)"


def test_r_confirmed_censored():
    r = one(weekly(15, 40, 45, 50))  # 40 >= 30 and >= 2 x 15
    assert r.best_response == "R" and r.responded and r.response_day == 7
    assert not r.loss_of_response and pd.isna(r.loss_day)
    assert r.duration_of_response_days == 14 and r.duration_censored  # day 7 to the last count, day 21
    assert r.proportion_time_in_response == pytest.approx(14 / 21)
    assert r.reason == ("R confirmed on days 7 and 14 (>= 30 and >= 2x baseline 15); "
                        "not lost (censored at day 21)")


def test_single_high_count_is_not_confirmed():
    r = one(weekly(10, 12, 150, 12, 11))
    assert r.best_response == "NR" and not r.responded
    assert pd.isna(r.response_day) and pd.isna(r.duration_censored) and not r.loss_of_response
    assert "day(s) 14 not confirmed" in r.reason


def test_qualifying_counts_less_than_7_days_apart_are_not_confirmed():
    r = one({0: 10, 14: 50, 18: 55, 28: 12, 35: 12})
    assert r.best_response == "NR"
    assert "day(s) 14, 18 not confirmed" in r.reason
    # a third count 7 days after the first confirms it; the response starts at the first count
    r = one({0: 10, 14: 50, 18: 55, 21: 60, 28: 12, 35: 12})
    assert r.best_response == "R" and r.response_day == 14 and r.loss_day == 28
    assert "R confirmed on days 14 and 21" in r.reason


def test_missing_week_does_not_break_a_run():
    r = one(weekly(10, 50, None, 55, 60))  # week 2 not measured
    assert r.best_response == "R" and r.response_day == 7
    assert "confirmed on days 7 and 21" in r.reason
    # ... and a missing week does not confirm one either
    assert one(weekly(10, 50, None, 12, 11)).best_response == "NR"


def test_non_qualifying_count_between_breaks_a_run():
    r = one(weekly(10, 50, 12, 50, 12))
    assert r.best_response == "NR" and "day(s) 7, 21 not confirmed" in r.reason


def test_r_needs_twice_baseline_and_30():
    assert one(weekly(20, 35, 38, 36)).best_response == "NR"  # >= 30 but < 2 x 20
    assert "max 38" in one(weekly(20, 35, 38, 36)).reason
    assert one(weekly(20, 40, 41)).best_response == "R"  # exactly 2 x baseline is enough
    assert one(weekly(10, 25, 28, 29)).best_response == "NR"  # >= 2 x 10 but < 30
    assert one(weekly(10, 30, 30)).best_response == "R"  # exactly 30 is enough


def test_confirm_days_setting():
    criteria = ResponseCriteria(confirm_days=14)
    assert one(weekly(10, 50, 50, 12, 12), criteria).best_response == "NR"
    r = one(weekly(10, 50, 50, 50, 12, 12), criteria)
    assert r.best_response == "R" and "confirmed on days 7 and 21" in r.reason


# --- loss ----------------------------------------------------------------------------------------------------

def test_single_dip_is_not_a_loss():
    r = one(weekly(10, 50, 50, 12, 50, 50))
    assert r.best_response == "R" and not r.loss_of_response and r.duration_censored
    assert r.duration_of_response_days == 28
    assert r.proportion_time_in_response == pytest.approx(28 / 35)  # the dip stays in response
    # a dip at the last count cannot be confirmed: still censored
    assert not one(weekly(10, 50, 50, 12)).loss_of_response


def test_confirmed_loss_duration_and_proportion():
    r = one(weekly(10, 50, 50, 12, 11, 12))
    assert r.loss_of_response and r.loss_day == 21 and not r.duration_censored
    assert r.duration_of_response_days == 14  # day 7 to day 21
    assert r.proportion_time_in_response == pytest.approx(14 / 35)  # in response days 7..21 of 0..35
    assert r.follow_up_days == 35 and r.n_counts == 5
    assert r.reason.endswith("lost on day 21 (confirmed on day 28)")


def test_loss_across_a_missing_week():
    r = one(weekly(10, 50, 50, 12, None, 11))
    assert r.loss_day == 21 and "confirmed on day 35" in r.reason


def test_loss_confirm_days_setting():
    counts = {0: 10, 7: 50, 14: 50, 21: 12, 22: 12, 28: 12}
    assert one(counts).loss_day == 21 and "confirmed on day 22" in one(counts).reason
    r = one(counts, ResponseCriteria(loss_confirm_days=2))
    assert r.loss_day == 21 and "confirmed on day 28" in r.reason


def test_new_episode_after_loss():
    r = one(weekly(10, 50, 50, 12, 11, 60, 70, 80))
    assert r.n_response_episodes == 2 and r.response_day == 7 and r.loss_day == 21
    assert r.duration_of_response_days == 14 and not r.duration_censored  # the first episode
    assert r.proportion_time_in_response == pytest.approx((14 + 14) / 49)  # days 7..21 and 35..49
    annotations = annotate_counts(table(weekly(10, 50, 50, 12, 11, 60, 70, 80)))
    assert annotations.in_response.tolist() == [False, True, True, False, False, True, True, True]


def test_best_response_cr_after_r():
    r = one(weekly(10, 50, 60, 120, 130, 50))
    assert r.best_response == "CR" and r.response_day == 7 and r.cr_day == 21
    assert pd.isna(r.cr_loss_day)  # one count below 100 at the end: not confirmed
    assert r.reason.startswith("CR confirmed on days 21 and 28 (>= 100); response from day 7")


def test_cr_lost_to_r_is_still_a_response():
    r = one(weekly(10, 120, 130, 60, 70, 65))
    assert r.best_response == "CR" and r.cr_loss_day == 21
    assert not r.loss_of_response and r.duration_censored and r.duration_of_response_days == 28


def test_cr_counts_not_consecutive_give_r():
    r = one(weekly(10, 120, 60, 120, 60))
    assert r.best_response == "R" and pd.isna(r.cr_day)


# --- rescue therapy -----------------------------------------------------------------------------------------

def test_response_after_rescue_is_not_the_treatments():
    # rescue on day 14; counts of 150 from day 14 on: a CR confirmed on days 14 and 21, after the rescue
    counts = weekly(10, 12, 150, 150, 150, 150, 150, 150, 150, 150, 150, 150)
    r = one(counts, rescue=(14,))
    assert r.best_response == "NR" and not r.responded and r.response_category == "response after rescue"
    assert r.response_after_rescue == "CR" and r.response_after_rescue_day == 14
    assert pd.isna(r.response_day) and r.n_response_episodes == 0 and r.proportion_time_in_response == 0
    assert r.first_rescue_day == 14 and r.n_excluded_rescue == 0 and r.n_counts == 11
    assert r.evaluable_until_day == 14  # time to response is censored at the rescue
    assert r.reason == ("NR: no count qualified (max 12; R needs >= 30 and >= 2x baseline 10); response after "
                        "rescue: CR confirmed on days 14 and 21, not attributed to the treatment; rescue therapy "
                        "on day(s) 14")
    annotations = annotate_counts(table(counts, rescue=(14,))).set_index("study_day")
    assert annotations.loc[63, "excluded_reason"] == "" and annotations.loc[63, "qualifies_CR"]
    assert annotations.loc[63, "after_rescue"] and not annotations.loc[7, "after_rescue"]
    assert annotations.loc[63, "in_response_after_rescue"] and not annotations.in_response.any()
    # with the romiplostim trials' 8-week re-evaluation, days 14..69 are excluded and day 70 on counts again
    reevaluated = ResponseCriteria(rescue_reevaluation_days=56)
    r = one(counts, reevaluated, rescue=(14,))
    assert r.best_response == "CR" and r.response_category == "CR" and r.response_day == 70
    assert r.n_excluded_rescue == 8 and r.response_after_rescue == "" and r.evaluable_until_day == 70
    assert r.proportion_time_in_response == pytest.approx(7 / 77)
    annotations = annotate_counts(table(counts, rescue=(14,)), reevaluated).set_index("study_day")
    assert annotations.loc[63, "excluded_reason"] == "rescue therapy on day 14"
    assert not annotations.loc[63, "qualifies_CR"]
    assert annotations.loc[70, "excluded_reason"] == "" and annotations.loc[70, "in_response"]
    assert annotations.loc[0, "excluded_reason"] == "baseline"
    assert "rescue therapy on day 14 (excluded to day 69)" in r.reason


def test_treatment_response_before_rescue_stays_a_response():
    # R from day 7, rescue on day 28 ends it; a later CR after the rescue is not the treatment's
    r = one(weekly(10, 50, 50, 50, 150, 150, 150), rescue=(28,))
    assert r.best_response == "R" and r.response_category == "R" and r.response_day == 7 and r.loss_day == 28
    assert r.response_after_rescue == "CR" and r.response_after_rescue_day == 28
    assert r.n_response_episodes == 1 and r.evaluable_until_day == 7
    assert r.proportion_time_in_response == pytest.approx(21 / 42)


def test_rescue_during_response_is_a_loss():
    r = one(weekly(10, 50, 50, 50, 50, 50), rescue=(28,))
    assert r.responded and r.response_day == 7 and r.loss_of_response and r.loss_day == 28
    assert r.duration_of_response_days == 21 and not r.duration_censored
    assert "lost on day 28 (rescue therapy)" in r.reason


def test_rescue_breaks_a_run():
    # rescue on day 10 on a row without a count; day 7 and day 70 are evaluated but not consecutive
    counts = {0: 10, 7: 50, 10: None, 70: 50, 77: 50}
    reevaluated = ResponseCriteria(rescue_reevaluation_days=56)
    r = one(counts, reevaluated, rescue=(10,))
    assert r.response_day == 70 and r.n_excluded_rescue == 0 and r.first_rescue_day == 10
    assert one({0: 10, 7: 50, 10: None, 70: 50}, reevaluated, rescue=(10,)).best_response == "NR"
    # by default, a response confirmed after the rescue is a response after rescue
    assert one(counts, rescue=(10,)).response_category == "response after rescue"


# --- bleeding ------------------------------------------------------------------------------------------------

def test_bleeding_count_does_not_qualify():
    r = one(weekly(10, 120, 130, 140), bleeding=(7,))
    assert r.best_response == "CR" and r.response_day == 14
    assert "bleeding on day(s) 7" in r.reason
    assert one(weekly(10, 120, 130), bleeding=(14,)).best_response == "NR"


def test_bleeding_ends_a_response_that_day():
    r = one(weekly(10, 120, 130, 120, 125), bleeding=(21,))
    assert r.loss_of_response and r.loss_day == 21 and r.cr_loss_day == 21
    assert r.duration_of_response_days == 14 and not r.duration_censored
    assert "lost on day 21 (bleeding)" in r.reason and "bleeding on day(s) 21" in r.reason
    # the counts after it start a new run: days 28 and 35 confirm a second episode
    r = one(weekly(10, 120, 130, 120, 125, 130), bleeding=(21,))
    assert r.n_response_episodes == 2 and r.proportion_time_in_response == pytest.approx((14 + 7) / 35)


def test_bleeding_not_recorded_is_said_on_every_row_and_warned():
    frame = pd.concat([table(weekly(10, 120, 130), patient="P1", bleeding=None),
                       table(weekly(10, 12, 11), patient="P2", bleeding=None)])
    with pytest.warns(BleedingNotRecordedWarning, match=r"patient\(s\) P1, P2: CR and R require documented"):
        responses = derive_responses(frame)
    assert responses.bleeding_record.tolist() == ["bleeding not recorded"] * 2
    assert all(reason.endswith("; bleeding not recorded") for reason in responses.reason)
    assert responses.best_response.tolist() == ["CR", "NR"]  # the counts still qualify
    # a recorded table: no warning; an empty cell names its day
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert one(weekly(10, 120, 130)).bleeding_record == "recorded"
    partial = table(weekly(10, 120, 130))
    partial["bleeding"] = partial["bleeding"].astype(object)
    partial.loc[2, "bleeding"] = ""
    with pytest.warns(BleedingNotRecordedWarning, match="P1"):
        r = derive_responses(partial).iloc[0]
    assert r.bleeding_record == "bleeding not recorded on day(s) 14"
    with pytest.warns(BleedingNotRecordedWarning):
        annotations = annotate_counts(partial)
    assert annotations.bleeding.isna().tolist() == [False, False, True]


# --- corticosteroid dependence -------------------------------------------------------------------------------

def test_corticosteroid_dependence_per_count_makes_nr():
    r = one(weekly(10, 50, 50, 50), steroids=(14,))
    assert r.best_response == "NR" and not r.responded and r.response_category == "corticosteroid-dependent"
    assert r.corticosteroid_dependent and pd.isna(r.response_day) and r.n_response_episodes == 0
    assert r.evaluable_until_day == 21
    assert r.reason.startswith("NR: corticosteroid-dependent (day(s) 14); by the counts alone: R confirmed on "
                               "days 7 and 14")
    # a flag on the baseline day only is before treatment; none after it: not dependent
    r = one(weekly(10, 50, 50, 50), steroids=(0,))
    assert r.best_response == "R" and not r.corticosteroid_dependent


def test_corticosteroid_dependence_per_patient_and_after_window():
    days = (0, 7, 14, 21)
    r = one(weekly(10, 120, 130, 125), steroids=days)  # the same flag on every row of the patient
    assert r.response_category == "corticosteroid-dependent" and r.best_response == "NR"
    r = one(weekly(10, 120, 130, 125, 125), ResponseCriteria(window_days=21), steroids=(28,))
    assert r.best_response == "CR" and not r.corticosteroid_dependent  # flagged after the window


# --- baseline ------------------------------------------------------------------------------------------------

def test_missing_baseline_is_an_error():
    with pytest.raises(MissingBaselineError, match=r"patient\(s\) P7:.*Add a baseline count row \(study_day 0\)"):
        derive_responses(table({7: 50, 14: 60}, patient="P7"))
    with pytest.raises(MissingBaselineError, match="P7"):  # a count 8 days before is outside the window
        derive_responses(table({-8: 10, 7: 50, 14: 60}, patient="P7"))
    with pytest.raises(MissingBaselineError, match="P7"):  # a day-0 row without a count is no baseline
        derive_responses(table({0: None, 7: 50, 14: 60}, patient="P7"))


def test_baseline_from_window():
    r = one({-10: 50, -3: 12, -1: None, 7: 30, 14: 30})
    assert r.baseline_day == -3 and r.baseline_platelets == 12 and r.best_response == "R"
    r = one({-3: 12, -1: 20, 7: 30, 14: 30})  # the latest count before day 0
    assert r.baseline_day == -1 and r.baseline_platelets == 20 and r.best_response == "NR"


def test_baseline_day_setting():
    r = one({-1: 20, 0: 10, 7: 30, 14: 30}, ResponseCriteria(baseline_day=-1))
    assert r.baseline_platelets == 20 and r.best_response == "NR"  # day 0 is after baseline: evaluated, 10


def test_window_days_are_written_in_the_table():
    counts = weekly(10, 12, 12, 12, 150, 150)
    r = one(counts)
    assert r.best_response == "CR" and r.assessment_window_end_day == 35  # no window: the last count
    r = one(counts, ResponseCriteria(window_days=28))
    assert r.best_response == "NR" and r.follow_up_days == 28 and r.n_counts == 4
    assert r.assessment_window_end_day == 28


# --- outputs -------------------------------------------------------------------------------------------------

def test_output_shape_order_and_annotations():
    frame = pd.concat([table(weekly(10, 50, 50), patient="P2"), table(weekly(10, 12, 12), patient="P10")])
    responses, annotations = evaluate_responses(frame)
    assert list(responses.columns) == list(RESPONSE_COLUMNS)
    assert responses.patient_id.tolist() == ["P10", "P2"]
    assert responses.responded.tolist() == [False, True]
    assert list(annotations.columns) == list(ANNOTATION_COLUMNS)
    assert annotations.patient_id.tolist() == ["P10"] * 3 + ["P2"] * 3
    p2 = annotations[annotations.patient_id == "P2"]
    assert p2.qualifies_R.tolist() == [False, True, True] and p2.in_response.tolist() == [False, True, True]
    assert responses.equals(derive_responses(frame.sample(frac=1, random_state=1)))  # row order does not matter


def test_no_count_after_baseline():
    r = one({0: 10})
    assert r.best_response == "NR" and r.n_counts == 0 and math.isnan(r.proportion_time_in_response)
    assert r.reason == "NR: no evaluated count after baseline"


# --- settings and bad inputs ---------------------------------------------------------------------------------

def test_criteria_from_dict():
    assert ResponseCriteria.from_dict({"confirm_days": 8}).confirm_days == 8
    assert ResponseCriteria.from_dict(None) == ResponseCriteria()
    with pytest.raises(ValueError, match="unknown response setting.*confirmation_days; known settings: cr_thr"):
        ResponseCriteria.from_dict({"confirmation_days": 8})
    with pytest.raises(ValueError, match="confirm_days must be a whole number of days >= 0, not -1"):
        ResponseCriteria(confirm_days=-1)
    with pytest.raises(ValueError, match="window_days must be"):
        ResponseCriteria(window_days=0)
    with pytest.raises(ValueError, match="rescue_reevaluation_days must be a whole number of days > 0 or null"):
        ResponseCriteria(rescue_reevaluation_days=0)
    with pytest.raises(ValueError, match="rescue_exclusion_days was replaced by rescue_reevaluation_days"):
        ResponseCriteria.from_dict({"rescue_exclusion_days": 56})


def test_missing_columns_are_named():
    with pytest.raises(PlateletTableError, match="missing column.s. rescue_therapy; a platelet table needs"):
        derive_responses(table(weekly(10, 50)).drop(columns="rescue_therapy"))


def test_bad_values_are_named():
    frame = table(weekly(10, 50, 60), patient="P3")
    frame["platelets_1e9_per_L"] = frame["platelets_1e9_per_L"].astype(object)
    frame.loc[1, "platelets_1e9_per_L"] = "abc"
    frame.loc[2, "platelets_1e9_per_L"] = -5
    with pytest.raises(PlateletTableError) as err:
        validate_platelets(frame, source="t.tsv")
    text = str(err.value)
    assert "platelet table t.tsv has 2 problem(s)" in text
    assert "row 2 (patient P3): platelets_1e9_per_L 'abc' is not a finite number" in text
    assert "row 3 (patient P3): platelets_1e9_per_L -5 is negative" in text
    frame = table(weekly(10, 50), patient="P3")
    frame.loc[1, "rescue_therapy"] = 2
    with pytest.raises(PlateletTableError, match=r"row 2 \(patient P3\): rescue_therapy 2 must be 0 or 1"):
        derive_responses(frame)
    frame = table(weekly(10, 50), patient="P3", steroids=())
    frame.loc[0, "corticosteroid_dependent"] = 3
    frame.loc[1, "bleeding"] = -1
    with pytest.raises(PlateletTableError) as err:
        derive_responses(frame)
    assert "row 1 (patient P3): corticosteroid_dependent 3 must be 0 or 1 (or empty)" in str(err.value)
    assert "row 2 (patient P3): bleeding -1 must be 0 or 1 (or empty)" in str(err.value)


def test_duplicate_rows_are_an_error():
    frame = pd.concat([table(weekly(10, 50, 60), patient="P4"), table({7: 55}, patient="P4")])
    with pytest.raises(PlateletTableError, match=r"patient P4 has more than one row for study day 7 "
                                                 r"\(row 2 and row 4\)"):
        derive_responses(frame)


def test_load_platelets_names_file_and_line(tmp_path):
    path = tmp_path / "platelets.tsv"
    path.write_text("patient_id\tweek\tstudy_day\tplatelets_1e9_per_L\trescue_therapy\n"
                    "P1\t0\t0\t10\t0\n"
                    "P1\t1\t7\t\t1\n"
                    "P1\t2\t14\t<5\t0\n"
                    "P1\t3\t21.5\t40\t0\n")
    with pytest.raises(PlateletTableError) as err:
        load_platelets(path)
    text = str(err.value)
    assert f"platelet table {path} has 2 problem(s)" in text
    assert "line 4 (patient P1): platelets_1e9_per_L '<5' is not a finite number" in text
    assert "line 5 (patient P1): study_day '21.5' is not a whole number of days" in text
    path.write_text("patient_id\tstudy_day\tplatelets\n")
    with pytest.raises(PlateletTableError, match=f"{path}: missing column.s. platelets_1e9_per_L, rescue_therapy"):
        load_platelets(path)
    with pytest.raises(FileNotFoundError, match="platelet table not found"):
        load_platelets(tmp_path / "absent.tsv")


def test_load_platelets_reads_a_good_file(tmp_path):
    path = tmp_path / "platelets.tsv"
    table(weekly(10, 50, None, 60), rescue=(7,), bleeding=()).to_csv(path, sep="\t", index=False)
    loaded = load_platelets(path)
    assert loaded.study_day.tolist() == [0, 7, 21] and loaded.rescue_therapy.tolist() == [False, True, False]
    assert loaded.bleeding.dtype == "boolean" and not loaded.bleeding.any() and loaded.bleeding.notna().all()
    assert not loaded.corticosteroid_dependent.any()  # no column: not dependent


# --- the demo trial --------------------------------------------------------------------------------------------

def test_demo_trial_agrees_with_truth(tmp_path):
    """The demo trial's platelet table (the simulator's, default seed and settings of config/config.yaml) gives
    each patient's true response."""
    import yaml

    from cytotrial.simulate.trial import assign_responses, platelet_counts, trial_design

    from cytotrial.config import with_defaults

    demo = with_defaults(REPO / "config" / "config.yaml")["demo"]
    patients, _ = trial_design(str(tmp_path))
    truth = assign_responses(patients, demo["seed"])
    path = tmp_path / "platelets.tsv"
    platelet_counts(truth, demo["seed"], demo["missing_platelet_fraction"]).to_csv(path, sep="\t", index=False)
    responses = derive_responses(load_platelets(path)).set_index("patient_id")
    truth = truth.set_index("patient_id")
    assert sorted(responses.index) == sorted(truth.index)
    truth = truth.loc[responses.index]
    assert responses.responded.tolist() == truth.responder.astype(bool).tolist()
    assert responses.best_response.tolist() == truth.intended_response.tolist()
    assert responses.baseline_platelets.tolist() == truth.baseline_platelets.astype(float).tolist()
    # the simulated responses run from onset_week to loss_week (in this demo those weeks all have a count)
    responders = truth[truth.responder.astype(bool)]
    assert responses.loc[responders.index, "response_day"].tolist() == (7 * responders.onset_week).astype(int).tolist()
    lost = responders[responders.loss_week.notna()]
    assert responses.loc[lost.index, "loss_day"].tolist() == (7 * lost.loss_week).astype(int).tolist()
    assert not responses.loc[responders.index.difference(lost.index), "loss_of_response"].any()
    rescued = truth[truth.rescue_week.notna()]
    assert responses.loc[rescued.index, "first_rescue_day"].tolist() == (7 * rescued.rescue_week).astype(int).tolist()
    # the simulated rescues lift the counts for 3 weeks: a response after rescue, NR for the treatment
    assert (responses.loc[rescued.index, "response_category"] == "response after rescue").all()
    assert (responses.bleeding_record == "recorded").all()  # the demo documents bleeding on every count
