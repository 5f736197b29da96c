"""Change-from-baseline tests, group comparisons and the primary endpoint, on hand-worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cytotrial.stats.changes import (CHANGE_TEST_COLUMNS, COMPARISON_COLUMNS, PRIMARY_COLUMNS, add_response_groups,
                                     bh_qvalues, change_tables, change_tests, family_qvalues, mann_whitney,
                                     primary_endpoint, response_comparison, wilcoxon_signed_rank)

# Hollander & Wolfe (1973) depression scores, the example of R's ?wilcox.test:
# wilcox.test(x, y, paired = TRUE) gives V = 40, p-value = 0.03906 (exact).
X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def _table(values, population="Treg", denominator="CD4"):
    return pd.DataFrame([{"patient_id": p, "visit": v, "population": population, "denominator": denominator,
                          "percent_of": x, "status": "ok"} for p, v, x in values])


def _normal_p(v, n, ties):
    """Two-sided normal-approximation p of V with tie and continuity correction (R's wilcox.test)."""
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - sum(t ** 3 - t for t in ties) / 48
    z = (v - mean - np.sign(v - mean) * 0.5) / np.sqrt(var)
    return 2 * stats.norm.sf(abs(z))


def test_wilcoxon_exact_matches_r_and_hand_count():
    v, p, method = wilcoxon_signed_rank(np.subtract(X, Y))
    # negative differences -0.147 (rank 3) and -0.08 (rank 2): V = 45 - 5 = 40;
    # P(V <= 5) = 10 subsets of {1..9} / 2^9, two-sided 20/512
    assert (v, method) == (40.0, "exact")
    assert p == pytest.approx(20 / 512) and round(p, 5) == 0.03906
    assert wilcoxon_signed_rank([0.3, 0.1, 0.2]) == (6.0, pytest.approx(0.25), "exact")


def test_wilcoxon_ties_and_zeros_use_normal_approximation():
    # zero dropped; |1| tied twice -> ranks 1.5, 1.5, 3, 4, 5; V = 1.5 + 3 + 4 + 5
    v, p, method = wilcoxon_signed_rank([0, 1, 2, 3, 4, -1])
    assert (v, method) == (13.5, "normal approx.")
    assert p == pytest.approx(_normal_p(13.5, 5, [2]))
    assert np.isnan(wilcoxon_signed_rank([0, 0])[1])


def test_mann_whitney_exact_and_ties():
    assert mann_whitney([1, 2, 3], [4, 5, 6]) == (0.0, pytest.approx(2 / 20), "exact")  # 2 of C(6,3) orderings
    u, p, method = mann_whitney([1, 2, 2, 5], [2, 3, 4])
    assert method == "normal approx." and u == pytest.approx(4.0)  # 0 + 2 x (0.5 tie) + 3
    assert p == pytest.approx(stats.mannwhitneyu([1, 2, 2, 5], [2, 3, 4], method="asymptotic").pvalue)
    assert np.isnan(mann_whitney([], [1.0])[1])


def test_bh_qvalues_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 0.02, 0.02, 0.04, 0.04 after the step-up minimum; NaN ignored
    q = bh_qvalues([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(q[:4], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])
    np.testing.assert_allclose(bh_qvalues([0.01, 0.02, 0.03, 0.04, 0.05]), [0.05] * 5)


def test_change_tests_exact_wilcoxon_through_the_table_and_descriptives():
    rows = [(f"P{i}", "D0", y) for i, y in enumerate(Y)] + [(f"P{i}", "W4", x) for i, x in enumerate(X)]
    rows += [("P0", "W2", 1.0), ("P1", "W2", 2.0), ("P2", "W2", 0.5)]  # changes +0.122, +1.353, -0.098
    table = change_tests(_table(rows), ["D0", "W2", "W4"], "D0")
    assert list(table.columns) == CHANGE_TEST_COLUMNS
    w4 = table.set_index("visit").loc["W4"]
    assert (w4["wilcoxon_v"], w4["p_method"], w4["n_paired"]) == (40.0, "exact", 9)
    assert w4["p_value"] == pytest.approx(20 / 512)
    w2 = table.set_index("visit").loc["W2"]
    # ranks 2 and 3 positive: V = 5; P(V >= 5) = {2,3}, {1,2,3} of 8 sign patterns; two-sided 0.5
    assert w2["wilcoxon_v"] == 5.0 and w2["p_value"] == pytest.approx(0.5)
    # BH over the family of W2 and W4: q(W4) = 2 x 0.0390625, q(W2) = 0.5
    assert w4["q_value"] == pytest.approx(2 * 20 / 512) and w2["q_value"] == pytest.approx(0.5)
    # Hodges-Lehmann: the median of the 45 Walsh averages, interval their 6th and 40th (exact, n = 9)
    d = np.subtract(X, Y)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(9) for j in range(i, 9)])
    assert w4["hl_estimate"] == pytest.approx(np.median(walsh))
    assert (w4["hl_ci_low"], w4["hl_ci_high"]) == (pytest.approx(walsh[5]), pytest.approx(walsh[39]))
    assert np.isnan(table.set_index("visit").loc["D0", "hl_estimate"])
    assert (table["value"] == "percent_of").all()
    assert table.set_index("visit").loc["D0", "p_method"] == "baseline"


def _two_groups():
    rows, responded = [], {}
    for i, (base, change) in enumerate([(4.0, 3.0), (5.0, 4.0), (6.0, 5.0), (4.5, 0.0), (5.5, 1.0), (3.5, 2.0)]):
        pid = f"P{i}"
        responded[pid] = i < 3
        rows += [(pid, "D0", base), (pid, "W4", base + change), (pid, "W12", base + change + 0.5 * (i < 3))]
    populations = _table(rows).assign(cohort=["A"] * 9 + ["B"] * 9)
    responses = pd.DataFrame({"patient_id": list(responded), "responded": list(responded.values())})
    return populations, responses


def test_split_by_response_group_and_cohort():
    populations, responses = _two_groups()
    grouped = add_response_groups(populations, responses)
    table = change_tests(grouped, ["D0", "W4", "W12"], "D0", by="response_group")
    assert set(table["group"]) == {"responder", "non-responder"}
    responders_w4 = table[(table["group"] == "responder") & (table["visit"] == "W4")].iloc[0]
    assert responders_w4["median_change"] == 4.0 and responders_w4["p_value"] == pytest.approx(0.25)
    assert table["q_value"].notna().sum() == 4  # one family: 2 groups x 2 post-baseline visits
    cohorts = change_tests(grouped, ["D0", "W4", "W12"], "D0", by="cohort")
    assert list(dict.fromkeys(cohorts["group"])) == ["A", "B"]


def test_responders_vs_nonresponders_on_value_and_change():
    populations, responses = _two_groups()
    table = response_comparison(add_response_groups(populations, responses), ["D0", "W4", "W12"], "D0")
    assert list(table.columns) == COMPARISON_COLUMNS
    assert list(table["measure"]) == ["value"] * 3 + ["change"] * 2
    change_w4 = table[(table["measure"] == "change") & (table["visit"] == "W4")].iloc[0]
    # changes 3, 4, 5 vs 0, 1, 2: U = 9, exact p = 2 / C(6, 3)
    assert change_w4["mann_whitney_u"] == 9 and change_w4["p_value"] == pytest.approx(0.1)
    assert change_w4["rank_biserial"] == 1 and change_w4["median_difference"] == 3.0
    baseline = table[(table["measure"] == "value") & (table["visit"] == "D0")].iloc[0]
    assert baseline["median_responders"] == 5.0 and baseline["median_nonresponders"] == 4.5
    change_q = table.loc[table["measure"] == "change", "q_value"]
    np.testing.assert_allclose(change_q, bh_qvalues(table.loc[table["measure"] == "change", "p_value"]))
    # HL difference of the W4 changes: 3, 4, 5 minus 0, 1, 2 -> median of the 9 differences, 3
    assert change_w4["hl_estimate"] == 3.0 and change_w4["hl_ci_low"] == 1.0 and change_w4["hl_ci_high"] == 5.0


def test_primary_endpoint_is_its_own_test_outside_the_family():
    populations, responses = _two_groups()
    populations = populations[~((populations["patient_id"] == "P5") & (populations["visit"] == "W12"))]
    grouped = add_response_groups(populations, responses)
    family = response_comparison(grouped, ["D0", "W4", "W12"], "D0")
    endpoint = {"population": "Treg", "visits": ["W4", "W12"], "value": "percent_of"}
    table = primary_endpoint(grouped, "D0", endpoint, family=family)
    assert list(table.columns) == PRIMARY_COLUMNS
    assert list(table["role"]) == ["primary immunological endpoint", "supportive", "supportive"]
    assert table["endpoint"].iloc[0].startswith("primary immunological endpoint: Treg percent_of, change from D0, "
                                                "mean of W4+W12 (patients with D0, W4, W12)")
    primary = table.iloc[0]
    # complete cases: P5 (no W12) is left out. Mean changes: responders 3.25, 4.25, 5.25; non-responders 0, 1
    assert primary["n_left_out"] == 1 and primary["n_nonresponders"] == 2
    assert primary["median_change_responders"] == 4.25 and primary["median_change_nonresponders"] == 0.5
    assert primary["p_value"] == pytest.approx(2 / 10) and primary["significant"] is False  # U = 6 of C(5, 2)
    # HL: the 6 differences 2.25, 3.25, 3.25, 4.25, 4.25, 5.25 -> 3.75; with 10 orderings the widest interval
    # (min, max) is all there is: confidence 1 - 2 x P(U = 0) = 0.8
    assert primary["hl_estimate"] == pytest.approx(3.75)
    assert (primary["hl_ci_low"], primary["hl_ci_high"]) == (2.25, 5.25)
    assert primary["hl_confidence"] == pytest.approx(0.8)
    assert np.isnan(primary["q_value_in_family"])
    w12 = table.set_index("visit").loc["W12"]
    expected_q = family.query("measure == 'change' and visit == 'W12'")["q_value"].iloc[0]
    assert w12["n_nonresponders"] == 2 and w12["q_value_in_family"] == pytest.approx(expected_q)
    # every patient with any endpoint visit (P5: W4 only, mean change 2)
    table = primary_endpoint(grouped, "D0", {**endpoint, "complete_cases": False}, family=family)
    primary = table.iloc[0]
    assert primary["n_left_out"] == 0 and primary["median_change_nonresponders"] == 1.0
    assert primary["p_value"] == pytest.approx(0.1) and primary["hl_estimate"] == pytest.approx(3.25)


def test_family_qvalues_leave_listed_populations_out():
    table = pd.DataFrame({"population": ["A", "B", "C", "D"], "p_value": [0.01, 0.04, 0.03, 0.02]})
    out = family_qvalues(table, "f", {"D": "complement of C"})
    # family A, B, C: sorted 0.01, 0.03, 0.04 (m = 3) -> q 0.03, 0.04, 0.04
    np.testing.assert_allclose(out["q_value"].to_numpy()[:3], [0.03, 0.04, 0.04])
    assert np.isnan(out["q_value"].iloc[3])
    assert out["fdr_family"].tolist() == ["f", "f", "f", "outside FDR: complement of C"]


def test_change_tables_bundle():
    populations, responses = _two_groups()
    tables = change_tables(populations, responses, ["D0", "W4", "W12"], "D0")
    assert list(tables) == ["changes", "changes_by_response", "changes_by_cohort", "response_comparison",
                            "primary_endpoint"]


def test_missing_rows_and_bad_input():
    populations, responses = _two_groups()
    with_missing = pd.concat([populations, _table([("P9", "W4", 9.0)]).assign(status="missing")])
    assert change_tests(with_missing, ["D0", "W4"], "D0").set_index("visit").loc["W4", "n"] == 6
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['percent_of'\]"):
        change_tests(populations.drop(columns="percent_of"), ["D0"], "D0")
    with pytest.raises(ValueError, match="more than one row"):
        change_tests(pd.concat([populations, populations.iloc[:1]]), ["D0"], "D0")
    with pytest.raises(ValueError, match=r"response table lacks column\(s\) \['responded'\]"):
        add_response_groups(populations, responses.drop(columns="responded"))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['response_group'\]"):
        response_comparison(populations, ["D0"], "D0")
    with pytest.raises(ValueError, match="lacks key"):
        primary_endpoint(add_response_groups(populations, responses), "D0", {"population": "Treg"})
