"""Comparing named results, the oracle's against Keras's: the one place an error is measured.

Both sides are dicts of arrays with the same names (``L0.output``, ``loss``,
``weights[2] update``, ...). Per name the error is

    abs:  max |actual - expected|
    rel:  max |actual - expected| / max |expected|     (the absolute error where expected is all zero)

A name missing on one side is an ``AssertionError`` that lists both sides; a
shape mismatch is an infinite error and a nan stays nan, so neither can pass a bound.
"""
from __future__ import annotations

import numpy as np

from keras_impl.parity.tolerances import Bound

KINDS = ("abs", "rel")


def errors(expected: dict, actual: dict, kind: str = "abs") -> dict[str, float]:
    """The error of every name (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected 'abs' or 'rel'")
    if set(expected) != set(actual):
        raise AssertionError(f"result names differ: oracle {sorted(expected)}, Keras {sorted(actual)}")
    out = {}
    for name, want in expected.items():
        want, got = np.asarray(want, np.float64), np.asarray(actual[name], np.float64)
        if got.shape != want.shape:
            out[name] = float("inf")
            continue
        if not want.size:
            out[name] = 0.0
            continue
        error = float(np.max(np.abs(got - want)))
        scale = float(np.max(np.abs(want))) if kind == "rel" else 0.0
        out[name] = error / scale if scale > 0 else error
    return out


def worst(errors_by_name: dict[str, float]) -> float:
    """The largest error; nan if any is nan (Python's ``max`` would depend on the order)."""
    return float(np.max(list(errors_by_name.values()))) if errors_by_name else 0.0


def assert_within(expected: dict, actual: dict, bound: Bound | float, label: str = "") -> float:
    """Raise, naming every array whose error is not within ``bound``; return the worst error.

    ``bound``: a ``tolerances.Bound`` (its kind says abs or rel), or a number for an absolute bound.
    """
    if not isinstance(bound, Bound):
        bound = Bound("abs", float(bound))
    errs = errors(expected, actual, bound.kind)
    bad = {k: e for k, e in errs.items() if not e <= bound.value}  # `not <=` also catches nan
    if bad:
        detail = "; ".join(
            f"{k}: {e:.3g}" + (f" (shape Keras {np.shape(actual[k])} vs oracle {np.shape(expected[k])})"
                               if e == float("inf") else "")
            for k, e in sorted(bad.items(), key=lambda kv: (-kv[1] if kv[1] == kv[1] else float("-inf"), kv[0])))
        raise AssertionError(f"{label}: {bound.kind} error over {bound.value:g}: {detail}"
                             + (f" [{bound.cause}]" if bound.cause else ""))
    return worst(errs)
