"""Paired statistics over seeds: every model of a comparison saw the same sequences for a seed.

For seeds s = 1 .. S and a metric m, the paired difference d_s = m_A(s) - m_B(s):

    mean  = (1/S) sum_s d_s
    95% CI = mean -/+ t_{0.975, S-1} * sd(d) / sqrt(S)         (Student t; needs S >= 2),
             cut to the values the mean can take (an accuracy's to [0, 1], a difference of two to [-1, 1])
    p      = Wilcoxon signed-rank test of d (two-sided; exact for small S without ties)

Holm's step-down correction over the m tests of one family: sort the p values
p_(1) <= ... <= p_(m); adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).

The floor of these tests. Under the null hypothesis each of the S paired
differences is as likely positive as negative, so a test of their signs and
sizes has 2^S equally likely sign patterns: when all S differences share a
sign, the observed pattern and its mirror are the two most extreme, and the
exact two-sided p is 2 / 2^S, the smallest any such test can give (Wilcoxon's
signed-rank test and an exact sign-flip permutation test of the mean alike).
Holm multiplies the smallest p of a family by m, so no adjusted p can fall
below min(1, m * 2 / 2^S): with too few seeds no difference can be significant
(5 seeds, 15 tests: 0.94), whatever the data (``smallest_holm_p``, ``seeds_needed``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps


def mean_ci(values, confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """(mean, low, high) of the mean of ``values`` (NaNs dropped); low = high = NaN for fewer than 2 values.

    ``bounds`` (lowest, highest): the values the metric can take (accuracies: 0, 1); the
    interval is cut to them, since the mean of such values cannot lie outside.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high


def mean_ci_band(curves: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column (mean, low, high) of curves (S, N): the band of a loss plot. S = 1 gives a zero-width band."""
    curves = np.asarray(curves, dtype=np.float64)
    mean = curves.mean(axis=0)
    if curves.shape[0] < 2:
        return mean, mean, mean
    half = sps.t.ppf(0.5 + confidence / 2, curves.shape[0] - 1) * curves.std(axis=0, ddof=1) / math.sqrt(curves.shape[0])
    return mean, mean - half, mean + half


def wilcoxon_p(differences) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences; NaN when it cannot be computed."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size < 2:
        return float("nan")
    if np.all(d == 0):
        return 1.0  # identical results: no evidence of a difference
    return float(sps.wilcoxon(d).pvalue)


def smallest_p(seeds: int) -> float:
    """The smallest exact two-sided p a paired test of signs can give with ``seeds`` differences: 2 / 2^seeds."""
    return min(1.0, 2.0 / 2.0 ** seeds)


def smallest_holm_p(seeds: int, tests: int) -> float:
    """The smallest Holm-adjusted p of a family of ``tests`` paired tests over ``seeds`` seeds: tests * 2 / 2^seeds."""
    return min(1.0, tests * smallest_p(seeds))


def seeds_needed(tests: int, alpha: float) -> int:
    """The fewest seeds with which a family of ``tests`` paired tests can reach a Holm-adjusted p below ``alpha``."""
    seeds = 1
    while smallest_holm_p(seeds, tests) >= alpha:
        seeds += 1
    return seeds


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p values, same order as given; NaN stays NaN and does not count as a test."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running = 0.0
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def paired_comparison(a, b, bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """Paired difference a - b: mean, 95% CI, Wilcoxon p, the seeds used (pairs with a NaN are dropped).

    ``bounds``: the range of a and b; the difference's interval is cut to
    [low - high, high - low] (two accuracies differ by at most 1).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a - b
    d = d[~np.isnan(d)]
    spread = None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])
    mean, low, high = mean_ci(d, bounds=spread)
    return {"diff": mean, "ci_low": low, "ci_high": high, "p": wilcoxon_p(d), "n": int(d.size)}
