"""The seed-count rule: a verdict that the number of seeds cannot reach says so.

With S paired seeds the smallest exact two-sided p of a test of the differences' signs is
2 / 2^S; Holm's correction over m tests makes the smallest adjusted p m * 2 / 2^S. Every
figure below is computed by hand. docs/tutorial.md's small example (5 seeds) reported
"inconclusive" beside intervals far from zero and never said that 5 seeds cannot reach p < 0.05.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from keras_impl.experiments import stats
from keras_impl.experiments.report import (ALPHA, claims, compare_claims, merge_claims, seed_floor, verdict_rule,
                                           why_inconclusive)
from keras_impl.experiments.summary import holm_family_size

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run


@pytest.mark.parametrize("seeds, p", [(1, 1.0), (5, 0.0625), (6, 0.03125), (10, 2 / 1024), (20, 2 / 1048576)])
def test_smallest_p_is_two_over_two_to_the_seeds(seeds, p):
    assert stats.smallest_p(seeds) == p


def test_smallest_holm_p_multiplies_by_the_number_of_tests():
    assert holm_family_size(3) == 15 and holm_family_size(4) == 30 and holm_family_size(2) == 5  # pairs x 5 metrics
    assert stats.smallest_holm_p(5, 15) == 15 * 2 / 32 == 0.9375    # compare at 5 seeds
    assert stats.smallest_holm_p(5, 30) == 1.0                     # merge-modes at 5 seeds: capped at 1
    assert stats.smallest_holm_p(9, 15) == 30 / 512                # 0.0586: not yet below 0.05
    assert stats.smallest_holm_p(10, 15) == 30 / 1024              # 0.0293
    # The committed 20-seed figures of docs/tutorial.md: the smallest Holm p they show is this floor.
    assert f"{stats.smallest_holm_p(20, 15):.2g}" == "2.9e-05" and f"{stats.smallest_holm_p(20, 30):.2g}" == "5.7e-05"


@pytest.mark.parametrize("tests, seeds", [(1, 6), (5, 8), (15, 10), (30, 11)])
def test_seeds_needed(tests, seeds):
    # 1 test: 2/2^5 = 0.0625, 2/2^6 = 0.031; 5: 10/128 = 0.078, 10/256 = 0.039;
    # 15: 30/512 = 0.059, 30/1024 = 0.029; 30: 60/1024 = 0.059, 60/2048 = 0.029
    assert stats.seeds_needed(tests, ALPHA) == seeds
    assert stats.smallest_holm_p(seeds - 1, tests) >= ALPHA > stats.smallest_holm_p(seeds, tests)


def test_wilcoxon_reaches_the_floor_and_no_lower():
    # five differences of one sign: the most extreme of the 2^5 sign patterns, with its mirror: p = 2/32
    assert stats.wilcoxon_p([-0.193, -0.19, -0.2, -0.185, -0.197]) == pytest.approx(0.0625)
    # six: one small difference of the other sign has rank 1, T = 1: P(T <= 1) = #{{}, {1}} / 64, two-sided 4/64
    assert stats.wilcoxon_p([-0.01, 0.2, 0.3, 0.4, 0.5, 0.6]) == pytest.approx(4 / 64)


def sign_flip_p(differences) -> float:
    """Exact two-sided sign-flip permutation p of the mean of paired differences (every one of the 2^S patterns)."""
    d = np.asarray(differences, dtype=np.float64)
    observed = abs(d.sum())
    sums = [abs((np.array(signs) * np.abs(d)).sum()) for signs in itertools.product((-1, 1), repeat=d.size)]
    return sum(s >= observed - 1e-12 for s in sums) / 2 ** d.size


def test_a_sign_flip_permutation_test_has_the_same_floor():
    """Why the report keeps Wilcoxon: the exact sign-flip test cannot go below 2 / 2^S either."""
    same_sign = [-0.193, -0.19, -0.2, -0.185, -0.197]
    assert sign_flip_p(same_sign) == stats.smallest_p(5) == 0.0625
    assert sign_flip_p([0.3, 0.1, 0.2, 0.25, 0.15, 0.22]) == stats.smallest_p(6)


# ---------------------------------------------------------------- the verdicts say why

def pair(a, b, metric, diff, low, high, p_holm, n):
    return {"a": a, "b": b, "metric": metric, "diff": diff, "ci_low": low, "ci_high": high, "p": p_holm, "p_holm": p_holm,
            "n": n}


def tutorial_results(seeds: int, p_compare: float, p_merge: float) -> dict:
    """docs/tutorial.md's committed 20-seed figures, with the seed count and Holm p values chosen by hand."""
    compare = [pair("lstm_reversed", "lstm", "mean_loss", 0.026, 0.022, 0.029, p_compare, seeds),
               pair("bilstm", "lstm", "updates_to_90", -140.2, -148.4, -131.9, p_compare, seeds),
               pair("bilstm", "lstm_reversed", "updates_to_90", -158.0, -170.6, -145.4, p_compare, seeds),
               pair("bilstm", "lstm", "last50_loss", -0.155, -0.165, -0.145, p_compare, seeds),
               pair("bilstm", "lstm_reversed", "last50_loss", -0.198, -0.209, -0.187, p_compare, seeds)]
    merge = [pair("bilstm_sum", "bilstm_mul", "mean_loss", -0.197, -0.202, -0.192, p_merge, seeds),
             pair("bilstm_sum", "bilstm_ave", "mean_loss", -0.041, -0.043, -0.040, p_merge, seeds),
             pair("bilstm_concat", "bilstm_mul", "mean_loss", -0.185, -0.190, -0.179, p_merge, seeds),
             pair("bilstm_concat", "bilstm_ave", "mean_loss", -0.029, -0.032, -0.025, p_merge, seeds)]
    losses = {"sum": 0.311, "concat": 0.324, "ave": 0.352, "mul": 0.508}
    return {"demo-bilstm": {"meta": {"updates": 1000}, "summary": {"models": {"bilstm": {"heldout_step_accuracy": {
                "mean": 0.948, "ci_low": 0.945, "ci_high": 0.950}}}}},
            "compare": {"summary": {"models": {"lstm": {"mean_loss": {"mean": 0.481}}}, "pairs": compare, "tests": 15}},
            "merge-modes": {"summary": {"models": {f"bilstm_{m}": {"mean_loss": {"mean": v}} for m, v in losses.items()},
                                        "pairs": merge, "tests": 30}}}


def test_the_committed_twenty_seed_verdicts_hold():
    """docs/tutorial.md: every claim supported at 20 seeds (Holm p 2.9e-05 and 5.7e-05, the floors); no reason needed."""
    results = tutorial_results(20, stats.smallest_holm_p(20, 15), stats.smallest_holm_p(20, 30))
    rows = claims(results)
    assert [r["verdict"] for r in rows] == ["supported"] * 5
    assert not any("why" in r for r in rows)
    assert "Holm p 2.9e-05" in rows[2]["measured"] and "Holm p 5.7e-05" in rows[4]["measured"]


def test_five_seeds_say_why_the_claims_are_inconclusive():
    """The tutorial's 5-seed example: intervals far from zero, Holm p 1; the verdict names the seed count."""
    results = tutorial_results(5, 1.0, 1.0)
    rows = claims(results)
    assert [r["verdict"] for r in rows] == ["supported", "supported", "inconclusive", "inconclusive", "inconclusive"]
    assert rows[2]["why"] == ("5 seeds: the smallest possible Holm-adjusted p over 15 tests is 0.938, not below 0.05; "
                              "use 10 or more seeds")
    assert rows[4]["why"] == ("5 seeds: the smallest possible Holm-adjusted p over 30 tests is 1, not below 0.05; "
                              "use 11 or more seeds")
    assert seed_floor(results["compare"]["summary"]) == (5, 15, 0.9375)


def test_an_interval_that_excludes_zero_beside_a_p_that_is_not_significant_is_explained():
    # 12 seeds allow Holm p 15 * 2 / 4096 = 0.0073 < 0.05: here the p value itself is the reason
    summary = {"pairs": [pair("bilstm", "lstm", "last50_loss", -0.02, -0.03, -0.01, 0.2, 12)], "tests": 15}
    why = why_inconclusive(summary["pairs"], summary)
    assert "bilstm - lstm's interval excludes zero, but its Holm-adjusted p (0.2) is not below 0.05" in why
    assert "corrected for all 15 tests" in why
    # an interval that includes zero needs no explanation
    summary["pairs"][0].update(ci_low=-0.03, ci_high=0.01)
    assert why_inconclusive(summary["pairs"], summary) is None


@pytest.mark.parametrize("seeds", range(2, 14))
@pytest.mark.parametrize("p_holm", [1.0, 0.3, 0.06, 0.01])
def test_no_inconclusive_verdict_beside_an_interval_that_excludes_zero_goes_unexplained(seeds, p_holm):
    results = tutorial_results(seeds, p_holm, p_holm)
    for row in compare_claims(results["compare"]["summary"], "lstm") + merge_claims(results["merge-modes"]["summary"],
                                                                                   "lstm"):
        if row["verdict"] == "inconclusive":  # every interval here excludes zero
            assert row.get("why"), row
            if stats.smallest_holm_p(seeds, 30 if "Merge" in row["claim"] else 15) >= ALPHA:
                assert f"{seeds} seeds" in row["why"]


def test_the_report_states_its_rule_and_its_floor():
    five = verdict_rule(tutorial_results(5, 1.0, 1.0))
    assert "the smallest p any test of their signs can give is 2 / 2^5 = 0.0625" in five
    assert "compare, 15 tests: 0.938; merge-modes, 30 tests: 1" in five
    assert "At 5 seeds no difference in compare or merge-modes can be significant" in five and "Use 11 or more" in five
    assert "*A is better than B*: **supported** when every difference" in five
    assert "sign-flip permutation test of the mean difference has the same floor" in five
    twenty = verdict_rule(tutorial_results(20, 1e-4, 1e-4))
    assert "2 / 2^20 = 1.91e-06" in twenty and "every verdict can be reached at this seed count" in twenty
