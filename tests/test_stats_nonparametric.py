"""Hodges-Lehmann intervals, Jonckheere-Terpstra, exact Cochran-Armitage and DeLong's AUC, checked against brute-force
enumeration, scipy's exact tests and hand-worked values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from cytotrial.stats.nonparametric import (auc_delong, cochran_armitage_exact, hodges_lehmann_paired,
                                           hodges_lehmann_two_sample, inversion_counts, jonckheere_terpstra,
                                           signed_rank_counts)

# Hollander & Wolfe (1973) depression scores, the example of R's ?wilcox.test (paired, n = 9)
X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def _brute_signed_rank(n):
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=int)
    for signs in itertools.product([0, 1], repeat=n):
        counts[sum(r for r, s in zip(range(1, n + 1), signs) if s)] += 1
    return counts


def _brute_inversions(sizes):
    labels = [g for g, size in enumerate(sizes) for _ in range(size)]
    counts = {}
    for order in set(itertools.permutations(labels)):
        j = sum(order[a] < order[b] for a in range(len(order)) for b in range(a + 1, len(order)))
        counts[j] = counts.get(j, 0) + 1
    return np.array([counts.get(k, 0) for k in range(max(counts) + 1)])


def test_null_distributions_equal_brute_force_enumeration():
    for n in (1, 4, 7):
        np.testing.assert_array_equal(signed_rank_counts(n), _brute_signed_rank(n))
    for sizes in ([2, 3], [1, 2, 2], [2, 2, 3]):
        np.testing.assert_array_equal(inversion_counts(sizes), _brute_inversions(sizes))
    assert inversion_counts([3, 3, 12]).sum() == math.factorial(18) // (6 * 6 * math.factorial(12))


def test_paired_hodges_lehmann_interval_by_hand_and_by_test_inversion():
    d = np.subtract(X, Y)
    result = hodges_lehmann_paired(d)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(9) for j in range(i, 9)])
    # P(V <= 5) = 10/512 < 0.025 <= P(V <= 6) = 14/512: k = 6, bounds the 6th and 40th of 45 Walsh averages
    assert result["ci_low"] == walsh[5] and result["ci_high"] == walsh[39]
    assert result["confidence"] == pytest.approx(1 - 20 / 512)
    assert result["estimate"] == pytest.approx(np.median(walsh))
    # the interval is the set of shifts the exact signed-rank test (scipy) does not reject at 1 - 0.961
    inside = [result["ci_low"] + 1e-9, result["estimate"], result["ci_high"] - 1e-9]
    outside = [result["ci_low"] - 1e-9, result["ci_high"] + 1e-9]
    assert all(stats.wilcoxon(d - mu, method="exact").pvalue > 20 / 512 for mu in inside)
    assert all(stats.wilcoxon(d - mu, method="exact").pvalue <= 20 / 512 + 1e-12 for mu in outside)


def test_two_sample_hodges_lehmann_interval_by_test_inversion():
    x = np.array([0.8, 1.9, 2.3, 3.1, 3.7, 4.4])
    y = np.array([-0.4, 0.2, 0.9, 1.1, 1.6])
    result = hodges_lehmann_two_sample(x, y)
    differences = np.sort(np.subtract.outer(x, y).ravel())
    assert result["estimate"] == pytest.approx(np.median(differences))
    alpha = 1 - result["confidence"]
    assert 0 < alpha <= 0.05
    inside = [result["ci_low"] + 1e-9, result["ci_high"] - 1e-9]
    outside = [result["ci_low"] - 1e-9, result["ci_high"] + 1e-9]
    assert all(stats.mannwhitneyu(x - s, y, method="exact").pvalue > alpha for s in inside)
    assert all(stats.mannwhitneyu(x - s, y, method="exact").pvalue <= alpha + 1e-12 for s in outside)


def test_hodges_lehmann_small_samples_report_the_confidence_reached():
    result = hodges_lehmann_paired([0.3, 0.1, 0.2])  # 8 sign patterns: at best 1 - 2/8 = 75 %
    assert (result["ci_low"], result["ci_high"]) == (0.1, 0.3) and result["confidence"] == pytest.approx(0.75)
    assert np.isnan(hodges_lehmann_two_sample([], [1.0])["estimate"])


def test_jonckheere_terpstra_exact_by_enumeration_and_statsmodels_with_ties():
    groups = [[1.2, 0.4], [2.2, 0.9, 1.5], [3.1, 2.0]]
    j, p, method = jonckheere_terpstra(groups)
    # pairs in increasing order: (g1, g2) 5 of 6, (g1, g3) 4 of 4, (g2, g3) 5 of 6 -> J = 14
    assert (j, method) == (14.0, "exact")
    labels = np.repeat([0, 1, 2], [2, 3, 2])
    values = np.concatenate(groups)
    null = []
    for order in itertools.permutations(range(7)):  # every assignment of the values to the groups
        permuted = values[list(order)]
        null.append(sum(permuted[a] < permuted[b] for a in range(7) for b in range(7) if labels[a] < labels[b]))
    null = np.array(null)
    expected = min(1.0, 2 * min(np.mean(null <= j), np.mean(null >= j)))
    assert p == pytest.approx(expected)
    tied = [[1, 2], [2, 3, 3], [3, 4]]
    j, p, method = jonckheere_terpstra(tied)
    # (g1, g2): 1 < 2, 3, 3 and 2 < 3, 3, 2 = 2 (half) -> 5.5; (g1, g3): 4; (g2, g3): 2 < 3, 4; 3 = 3 (half) and
    # 3 < 4, twice -> 2 + 2 x 1.5 = 5; J = 14.5
    assert method == "normal approx." and j == 14.5
    from statsmodels.stats.nonparametric import jonckheere_terpstra as reference
    assert p == pytest.approx(reference(tied, alternative="two-sided").pvalue)
    j, p, method = jonckheere_terpstra([[2.0], [2.0, 2.0], [2.0]])  # nothing to test (statsmodels raises)
    assert np.isnan(p) and method == "all values tied" and j == 2.5


def test_exact_cochran_armitage_equals_enumeration_and_fisher_for_two_groups():
    result = cochran_armitage_exact([0, 1, 5], [3, 3, 12], [0.5, 1.0, 2.0])
    scores = [0.5] * 3 + [1.0] * 3 + [2.0] * 12
    t_obs = 0.5 * 0 + 1.0 * 1 + 2.0 * 5
    null = np.array([sum(scores[i] for i in chosen) for chosen in itertools.combinations(range(18), 6)])
    expected = null.mean()
    assert result["statistic"] == pytest.approx(t_obs) and result["expected"] == pytest.approx(expected)
    assert result["p_value"] == pytest.approx(np.mean(np.abs(null - expected) >= abs(t_obs - expected) - 1e-9))
    assert result["p_increasing"] == pytest.approx(np.mean(null >= t_obs - 1e-9))
    # with two groups the one-sided exact test is Fisher's exact test
    two = cochran_armitage_exact([1, 6], [6, 8], [0.0, 1.0])
    assert two["p_increasing"] == pytest.approx(stats.fisher_exact([[6, 2], [1, 5]], alternative="greater").pvalue)
    with pytest.raises(ValueError, match="between 0 and the group sizes"):
        cochran_armitage_exact([4], [3], [1.0])


def test_auc_and_delong_standard_error_by_hand():
    positives, negatives = [3.0, 5.0, 4.0], [1.0, 4.0]
    # psi rows (positives) x columns (negatives): [1, 0], [1, 1], [1, 0.5] -> AUC 4.5/6
    result = auc_delong(positives, negatives)
    assert result["auc"] == pytest.approx(0.75)
    from sklearn.metrics import roc_auc_score
    assert result["auc"] == pytest.approx(roc_auc_score([1, 1, 1, 0, 0], positives + negatives))
    # V10 = 0.5, 1, 0.75 (var 0.0625); V01 = 1, 0.5 (var 0.125): var = 0.0625 / 3 + 0.125 / 2
    assert result["std_error"] == pytest.approx(np.sqrt(0.0625 / 3 + 0.125 / 2))
    half = 1.959963984540054 * result["std_error"] / (0.75 * 0.25)
    assert result["ci_low"] == pytest.approx(1 / (1 + np.exp(-(np.log(3) - half))))
    separated = auc_delong([5, 6], [1, 2])
    assert separated["auc"] == 1 and np.isnan(separated["ci_low"])
