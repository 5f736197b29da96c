"""Exact nonparametric estimates and tests for small trials: Hodges-Lehmann intervals, trend tests, AUC.

:func:`hodges_lehmann_paired` / :func:`hodges_lehmann_two_sample` (estimate and distribution-free interval from
order statistics, as R's ``wilcox.test(conf.int = TRUE, exact = TRUE)``), :func:`jonckheere_terpstra` (ordered
k-group trend test, exact without ties), :func:`cochran_armitage_exact` (exact conditional trend test of a response
rate, as StatXact's) and :func:`auc_delong` (ROC AUC with DeLong's variance and a logit-scale 95 % interval).

Written here because scipy and statsmodels have neither the HL interval, the exact JT or Cochran-Armitage
distributions nor DeLong's interval; tests/test_stats_nonparametric.py checks them against brute-force
enumeration, scipy's exact tests and R's published examples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from scipy import stats
from statsmodels.stats.nonparametric import jonckheere_terpstra as jt_asymptotic

EXACT_MAX_N = 25
"""Largest sample (each group for two-sample statistics) whose null distribution is enumerated exactly."""


def _finite(values: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(values), dtype=float)
    return values[np.isfinite(values)]


@lru_cache(maxsize=256)
def signed_rank_counts(n: int) -> np.ndarray:
    """Number of sign patterns of n untied ranks giving each signed-rank statistic V = 0 .. n(n+1)/2 (cached:
    read-only)."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.int64)
    counts[0] = 1
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    counts.flags.writeable = False
    return counts


def _multiply_binomial(poly: np.ndarray, a: int, b: int) -> np.ndarray:
    """poly times the Gaussian binomial [a + b choose b]_q = prod_{i=1..b} (1 - q^(a+i)) / (1 - q^i)."""
    out = np.concatenate([poly, np.zeros(a * b, dtype=np.int64)])
    for i in range(1, b + 1):
        shifted = np.zeros_like(out)
        shifted[a + i:] = out[:-(a + i)]
        out = out - shifted  # x (1 - q^(a+i))
        for k in range(i, out.size):  # / (1 - q^i): b[k] = a[k] + b[k - i]
            out[k] += out[k - i]
    return out


def inversion_counts(sizes: Sequence[int]) -> np.ndarray:
    """Null counts of the Jonckheere-Terpstra statistic (between-group pairs in increasing order) for untied data
    in groups of ``sizes``; for two groups, of the Mann-Whitney U. Sums to the multinomial coefficient."""
    return _inversion_counts(tuple(int(s) for s in sizes))


@lru_cache(maxsize=256)
def _inversion_counts(sizes: tuple[int, ...]) -> np.ndarray:
    poly = np.ones(1, dtype=np.int64)
    total = sizes[0]
    for size in sizes[1:]:
        poly = _multiply_binomial(poly, total, size)
        total += size
    poly.flags.writeable = False
    return poly


def _critical_rank(counts: np.ndarray, alpha: float) -> tuple[int, float]:
    """R's qsignrank / qwilcox(alpha / 2) (at least 1) and the achieved confidence 1 - 2 P(S <= k - 1)."""
    cdf = np.cumsum(counts) / counts.sum()
    k = max(int(np.searchsorted(cdf, alpha / 2 - 1e-12)), 1)  # smallest k with P(S <= k) >= alpha / 2
    return k, float(1 - 2 * cdf[k - 1])


def _interval(values: np.ndarray, counts: np.ndarray, level: float) -> tuple[float, float, float]:
    ordered = np.sort(values)
    k, achieved = _critical_rank(counts, 1 - level)
    return float(ordered[k - 1]), float(ordered[ordered.size - k]), achieved


def hodges_lehmann_paired(differences: Iterable[float], level: float = 0.95) -> dict:
    """Hodges-Lehmann pseudo-median of paired differences with its exact confidence interval.

    All finite differences are used (zeros too). Above :data:`EXACT_MAX_N` values the interval uses the normal
    approximation of the signed-rank statistic's quantile.

    Returns
    -------
    dict
        estimate, ci_low, ci_high, confidence (achieved), n; NaN when there is no difference.

    the Hodges-Lehmann estimate (median of
      the Walsh averages, or of all pairwise differences) with the distribution-free confidence interval from order
      statistics, as R's ``wilcox.test(conf.int = TRUE, exact = TRUE)``: the bounds are the k-th smallest and
      largest, k from the exact null distribution of the signed-rank or Mann-Whitney statistic; the achieved
      confidence (>= the nominal, < it only when no interval reaches it) is returned.
    """
    d = _finite(differences)
    out = {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "confidence": np.nan, "n": int(d.size)}
    if not d.size:
        return out
    i, j = np.triu_indices(d.size)
    walsh = (d[i] + d[j]) / 2
    out["estimate"] = float(np.median(walsh))
    if d.size <= EXACT_MAX_N:
        low, high, achieved = _interval(walsh, signed_rank_counts(d.size), level)
    else:
        n = d.size
        k = _normal_rank(n * (n + 1) / 4, n * (n + 1) * (2 * n + 1) / 24, level)
        low, high, achieved = float(np.sort(walsh)[k - 1]), float(np.sort(walsh)[walsh.size - k]), level
    out.update(ci_low=low, ci_high=high, confidence=achieved)
    return out


def _normal_rank(mean: float, variance: float, level: float) -> int:
    return max(int(np.floor(mean - stats.norm.ppf(0.5 + level / 2) * np.sqrt(variance))), 1)


def hodges_lehmann_two_sample(x: Iterable[float], y: Iterable[float], level: float = 0.95) -> dict:
    """Hodges-Lehmann difference in location of ``x`` minus ``y`` (median of all pairwise differences) with its
    exact confidence interval (normal approximation above :data:`EXACT_MAX_N` per group).

    Returns
    -------
    dict
        estimate, ci_low, ci_high, confidence (achieved), n_x, n_y; NaN when a sample is empty.
    """
    x, y = _finite(x), _finite(y)
    out = {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "confidence": np.nan, "n_x": int(x.size),
           "n_y": int(y.size)}
    if not x.size or not y.size:
        return out
    differences = np.subtract.outer(x, y).ravel()
    out["estimate"] = float(np.median(differences))
    if max(x.size, y.size) <= EXACT_MAX_N:
        low, high, achieved = _interval(differences, inversion_counts([x.size, y.size]), level)
    else:
        m, n = x.size, y.size
        k = _normal_rank(m * n / 2, m * n * (m + n + 1) / 12, level)
        ordered = np.sort(differences)
        low, high, achieved = float(ordered[k - 1]), float(ordered[ordered.size - k]), level
    out.update(ci_low=low, ci_high=high, confidence=achieved)
    return out


def _two_sided(counts: np.ndarray, observed: int) -> float:
    """Two-sided p of an integer statistic with a symmetric null distribution given as counts."""
    total = counts.sum()
    lower, upper = counts[:observed + 1].sum() / total, counts[observed:].sum() / total
    return float(min(1.0, 2 * min(lower, upper)))


def jonckheere_terpstra(groups: Sequence[Iterable[float]]) -> tuple[float, float, str]:
    """Two-sided Jonckheere-Terpstra test of a monotone trend over ``groups`` (in their order).

    Returns
    -------
    (J, p, method)
        J = sum over group pairs g < h of #(x_g < x_h) + 0.5 #(ties); method "exact" (no ties, every group of at
        most :data:`EXACT_MAX_N`) or "normal approx." (statsmodels, tie-corrected); NaN with fewer than two
        non-empty groups or when every value is tied.

    ordered k-group trend test: exact null distribution (a q-multinomial
      coefficient: the statistic counts between-group inversions) without ties, else statsmodels' tie-corrected
      normal approximation.
    """
    samples = [s for s in (_finite(g) for g in groups) if s.size]
    if len(samples) < 2:
        return np.nan, np.nan, "fewer than 2 groups"
    statistic = sum(float(np.sum(np.sign(np.subtract.outer(samples[h], samples[g])) + 1) / 2)
                    for g in range(len(samples)) for h in range(g + 1, len(samples)))
    pooled = np.concatenate(samples)
    if np.unique(pooled).size == 1:
        return statistic, np.nan, "all values tied"
    if np.unique(pooled).size == pooled.size and max(s.size for s in samples) <= EXACT_MAX_N:
        counts = inversion_counts([s.size for s in samples])
        return statistic, _two_sided(counts, int(round(statistic))), "exact"
    result = jt_asymptotic(samples, alternative="two-sided")
    return float(result.statistic), float(result.pvalue), "normal approx."


def cochran_armitage_exact(responders: Sequence[int], totals: Sequence[int],
                           scores: Sequence[float]) -> dict:
    """Exact conditional Cochran-Armitage trend test of response rates over ordered groups.

    Conditional on the total number of responders, T = sum(score_g x responders_g) has a multivariate
    hypergeometric null distribution, enumerated exactly.

    Returns
    -------
    dict
        statistic (T), expected (E[T]), p_value (two-sided: P(|T - E| >= |t - E|)), p_increasing (P(T >= t)).
    """
    responders, totals = [int(r) for r in responders], [int(n) for n in totals]
    scores = [float(s) for s in scores]
    if any(r < 0 or r > n for r, n in zip(responders, totals, strict=True)):
        raise ValueError(f"responders {responders} must lie between 0 and the group sizes {totals}")
    total_responders = sum(responders)
    distribution = {(0, 0.0): 1}  # (responders so far, T so far) -> number of ways
    for n, score in zip(totals, scores, strict=True):
        step: dict[tuple[int, float], int] = {}
        for (r, t), ways in distribution.items():
            for x in range(0, min(n, total_responders - r) + 1):
                key = (r + x, round(t + score * x, 9))
                step[key] = step.get(key, 0) + ways * math.comb(n, x)
        distribution = step
    outcomes = {t: ways for (r, t), ways in distribution.items() if r == total_responders}
    denominator = math.comb(sum(totals), total_responders)
    observed = round(sum(s * r for s, r in zip(scores, responders, strict=True)), 9)
    expected = total_responders * sum(s * n for s, n in zip(scores, totals, strict=True)) / sum(totals)
    tolerance = 1e-7
    two_sided = sum(w for t, w in outcomes.items() if abs(t - expected) >= abs(observed - expected) - tolerance)
    increasing = sum(w for t, w in outcomes.items() if t >= observed - tolerance)
    return {"statistic": observed, "expected": expected, "p_value": min(1.0, two_sided / denominator),
            "p_increasing": min(1.0, increasing / denominator)}


def auc_delong(positives: Iterable[float], negatives: Iterable[float], level: float = 0.95) -> dict:
    """AUC of a marker (P(positive > negative) + P(tie) / 2) with DeLong's standard error and a logit-scale CI.

    Returns
    -------
    dict
        auc, std_error, ci_low, ci_high, n_positive, n_negative; the CI is NaN when AUC is 0 or 1 (no logit
        interval), the variance is 0 (e.g. every value tied) or a group has fewer than 2 values.
    """
    x, y = _finite(positives), _finite(negatives)
    out = {"auc": np.nan, "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_positive": int(x.size),
           "n_negative": int(y.size)}
    if not x.size or not y.size:
        return out
    psi = (np.sign(np.subtract.outer(x, y)) + 1) / 2  # 1 above, 0.5 tie, 0 below
    auc = float(psi.mean())
    out["auc"] = auc
    if x.size < 2 or y.size < 2:
        return out
    variance = psi.mean(axis=1).var(ddof=1) / x.size + psi.mean(axis=0).var(ddof=1) / y.size
    out["std_error"] = float(np.sqrt(variance))
    if 0 < auc < 1 and variance > 0:
        half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(variance) / (auc * (1 - auc))
        centre = np.log(auc / (1 - auc))
        out.update(ci_low=float(1 / (1 + np.exp(-(centre - half)))), ci_high=float(1 / (1 + np.exp(-(centre + half)))))
    return out
