"""The verdict rules of REPORT.md (``keras_impl/experiments/report.py``) on hand-made comparisons.

No training here: each test writes the paired difference, its 95% CI and its
Holm-adjusted p value by hand and states the verdict the documented rule gives.
alpha = 0.05; the equivalence margin is 10% of the reference model's mean loss.
"""
from __future__ import annotations

import math

import pytest

from keras_impl.experiments.report import (ALPHA, EQUIVALENCE_MARGIN, accuracy_verdict, alike_verdict,
                                           better_verdict, claims)

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

NAN = float("nan")


def pair(diff, ci_low, ci_high, p_holm, a="a", b="b", metric="mean_loss"):
    return {"a": a, "b": b, "metric": metric, "diff": diff, "ci_low": ci_low, "ci_high": ci_high, "p_holm": p_holm}


def test_the_documented_constants():
    assert ALPHA == 0.05 and EQUIVALENCE_MARGIN == 0.10


# ---------------------------------------------------------------- "A is better than B"

@pytest.mark.parametrize("rows, smaller_is_better, verdict", [
    # every named difference favours the claim and is significant
    ([pair(-0.2, -0.3, -0.1, 0.001), pair(-0.1, -0.15, -0.05, 0.01)], True, "supported"),
    ([pair(140, 130, 150, 1e-4)], False, "supported"),                       # larger is better
    # one of them is not significant: not every difference the claim names holds
    ([pair(-0.2, -0.3, -0.1, 0.001), pair(-0.1, -0.2, 0.01, 0.2)], True, "inconclusive"),
    # significant, but just at alpha is not below it
    ([pair(-0.2, -0.3, -0.1, ALPHA)], True, "inconclusive"),
    # one significant the other way outweighs any number in favour
    ([pair(-0.2, -0.3, -0.1, 0.001), pair(0.1, 0.05, 0.15, 0.01)], True, "not supported"),
    ([pair(-5, -8, -2, 0.001)], False, "not supported"),                     # larger is better, and it is smaller
    # the other way but not significant: only inconclusive
    ([pair(0.1, -0.05, 0.25, 0.3)], True, "inconclusive"),
    # no comparison, or no p value (nan): never supported
    ([], True, "inconclusive"),
    ([pair(-0.2, NAN, NAN, NAN)], True, "inconclusive"),
    # a zero difference favours nobody, however small p is
    ([pair(0.0, -0.1, 0.1, 0.001)], True, "inconclusive"),
])
def test_better_verdict(rows, smaller_is_better, verdict):
    assert better_verdict(rows, smaller_is_better) == verdict


# ---------------------------------------------------------------- "A and B behave alike"

@pytest.mark.parametrize("row, reference_mean, verdict", [
    # margin = 0.1 * 0.3 = 0.03: the CI [-0.01, 0.02] lies inside it
    (pair(0.005, -0.01, 0.02, 0.6), 0.3, "supported"),
    # significant but inside the margin: still alike (practically equivalent)
    (pair(0.02, 0.015, 0.025, 0.001), 0.3, "supported"),
    # the margin is relative to |reference mean|: a negative reference mean gives the same margin
    (pair(0.02, 0.015, 0.025, 0.001), -0.3, "supported"),
    # the CI touches the margin (0.03): not strictly inside, and not significant: inconclusive
    (pair(0.01, -0.01, 0.03, 0.2), 0.3, "inconclusive"),
    # the CI crosses the margin but the difference is not significant
    (pair(0.02, -0.01, 0.05, 0.2), 0.3, "inconclusive"),
    # significant and larger than the margin: not alike
    (pair(0.05, 0.04, 0.06, 0.001), 0.3, "not supported"),
    (pair(-0.05, -0.06, -0.04, 0.001), 0.3, "not supported"),
    # larger than the margin but not significant: inconclusive, not "not supported"
    (pair(0.05, -0.01, 0.11, 0.2), 0.3, "inconclusive"),
    # significant, its CI reaching past the margin, but the difference itself inside it
    (pair(0.025, 0.01, 0.04, 0.01), 0.3, "inconclusive"),
    # no CI (one seed): never supported
    (pair(0.0, NAN, NAN, NAN), 0.3, "inconclusive"),
])
def test_alike_verdict(row, reference_mean, verdict):
    assert alike_verdict(row, reference_mean) == verdict


# ---------------------------------------------------------------- "accuracy between about 90% and 100%"

@pytest.mark.parametrize("cell, verdict", [
    ({"mean": 0.95, "ci_low": 0.94, "ci_high": 0.96}, "supported"),
    ({"mean": 0.91, "ci_low": 0.90, "ci_high": 0.92}, "supported"),      # the bound itself is inside [0.9, 1]
    ({"mean": 0.91, "ci_low": 0.89, "ci_high": 0.93}, "inconclusive"),   # straddles 0.9
    ({"mean": 0.85, "ci_low": 0.80, "ci_high": 0.899}, "not supported"),  # wholly below
    ({"mean": 0.85, "ci_low": 0.80, "ci_high": 0.90}, "inconclusive"),   # reaches 0.9
    ({"mean": 0.95, "ci_low": NAN, "ci_high": NAN}, "inconclusive"),     # one seed: no interval
])
def test_accuracy_verdict(cell, verdict):
    assert accuracy_verdict(cell) == verdict


# ---------------------------------------------------------------- the claims, from a hand-made results dict

def results(reversed_minus_lstm, bilstm_minus_lstm_updates=pair(-140, -150, -130, 1e-4),
            merge_p=1e-4):
    """A results dict of the shape ``bilstm reproduce`` builds, with every number chosen by hand."""
    compare_pairs = [
        pair(*reversed_minus_lstm, a="lstm_reversed", b="lstm"),
        {**bilstm_minus_lstm_updates, "a": "bilstm", "b": "lstm", "metric": "updates_to_90"},
        pair(-120, -130, -110, 1e-4, a="bilstm", b="lstm_reversed", metric="updates_to_90"),
        pair(-0.15, -0.16, -0.14, 1e-4, a="bilstm", b="lstm", metric="last50_loss"),
        # stored the other way round: find_pair flips it to bilstm - lstm_reversed = -0.2
        pair(0.2, 0.19, 0.21, 1e-4, a="lstm_reversed", b="bilstm", metric="last50_loss"),
    ]
    merge_pairs = [pair(-0.05, -0.06, -0.04, merge_p, a=f"bilstm_{g}", b=f"bilstm_{b}")
                   for g in ("sum", "concat") for b in ("mul", "ave")]
    losses = {"sum": 0.20, "concat": 0.21, "ave": 0.25, "mul": 0.27}
    return {
        "demo-bilstm": {"meta": {"updates": 1000},
                        "summary": {"models": {"bilstm": {"heldout_step_accuracy":
                                                          {"mean": 0.948, "ci_low": 0.945, "ci_high": 0.950}}}}},
        "compare": {"summary": {"models": {"lstm": {"mean_loss": {"mean": 0.30}}}, "pairs": compare_pairs}},
        "merge-modes": {"summary": {"models": {f"bilstm_{m}": {"mean_loss": {"mean": v}} for m, v in losses.items()},
                                    "pairs": merge_pairs}},
    }


def verdicts(res) -> list[str]:
    return [c["verdict"] for c in claims(res)]


def test_claims_on_hand_made_results():
    # reversed - lstm = +0.026 [0.022, 0.029], significant, inside the margin 0.03 (10% of the LSTM's 0.30)
    rows = claims(results((0.026, 0.022, 0.029, 3e-5)))
    assert [r["verdict"] for r in rows] == ["supported"] * 5
    assert "inside the margin" in rows[1]["measured"] and "+/-0.030" in rows[1]["measured"]
    assert "bilstm_sum, bilstm_concat, bilstm_ave, bilstm_mul" in rows[4]["measured"]  # the ranking, lowest first


def test_claims_follow_the_rules_when_the_numbers_change():
    # outside the margin and significant: the "alike" claim is not supported
    assert verdicts(results((0.05, 0.04, 0.06, 1e-4)))[1] == "not supported"
    # the BiLSTM needs MORE updates than the LSTM (significant): "falls sooner" is not supported
    assert verdicts(results((0.0, -0.01, 0.01, 0.9), bilstm_minus_lstm_updates=pair(30, 20, 40, 1e-3)))[2] == "not supported"
    # the merge-mode differences are not significant after Holm: inconclusive
    assert verdicts(results((0.0, -0.01, 0.01, 0.9), merge_p=0.2))[4] == "inconclusive"


def test_margin_is_ten_percent_of_the_reference_mean():
    margin = EQUIVALENCE_MARGIN * 0.30
    just_inside = pair(0.0, -margin + 1e-9, margin - 1e-9, 0.5)
    just_outside = pair(0.0, -margin - 1e-9, margin - 1e-9, 0.5)
    assert alike_verdict(just_inside, 0.30) == "supported"
    assert alike_verdict(just_outside, 0.30) == "inconclusive"
    assert math.isclose(margin, 0.03)
