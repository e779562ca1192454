"""The `upstream crash` verdict of `bilstm parity`: only a predicted crash, of the predicted kind, earns it.

Keras 3.15.1 crashes on JAX for a float64 SimpleRNN without a mask under a trace
(keras_impl/parity/divergences.py, JAX_FLOAT64_SIMPLE_RNN_SCAN_REASON: keras/src/backend/jax/rnn.py L183-198).
`bilstm parity --cell simple_rnn --dtype float64 --backend jax` once printed those rows as FAIL with a nan
error; they are now `upstream crash`, named with the reason, and leave the exit status alone. Anything
else that goes wrong on such a row is still a FAIL, and a fixed upstream is compared as usual.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from keras_impl.parity import checks
from keras_impl.parity.divergences import JAX_FLOAT64_SIMPLE_RNN_SCAN_REASON, jax_float64_scan_crash
from keras_impl.parity.rows import UPSTREAM_CRASH, CheckOptions, measure
from keras_impl.parity.tolerances import Bound

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
OPTIONS = CheckOptions(backend="jax", device="cpu", dtype="float64", quick=True, cell="simple_rnn")
BOUND = Bound("abs", 1e-6)
REASON = "Keras crashes here (a test reason)"


def crashing(exc):
    def compare_fn():
        raise exc
    return compare_fn


def agreeing(error):
    return lambda: ({"y": np.zeros(3)}, {"y": np.full(3, error)})


def wrapped_type_error():
    try:
        raise TypeError("scan carry dtype")
    except TypeError as cause:
        wrapper = RuntimeError("Unable to automatically build the model")  # as Keras's fit raises it
        wrapper.__context__ = cause
        return wrapper


def test_a_predicted_crash_of_the_predicted_kind_is_an_upstream_crash_naming_the_reason():
    for exc in (TypeError("scan carry dtype"), wrapped_type_error()):
        row = measure("layer", "c", BOUND, OPTIONS, crashing(exc), predicted_crash=REASON)
        assert row.verdict == UPSTREAM_CRASH and REASON in row.note and type(exc).__name__ in row.note, row


def test_an_unpredicted_crash_or_a_wrong_result_is_still_a_fail():
    assert measure("layer", "c", BOUND, OPTIONS, crashing(TypeError("x"))).verdict == "FAIL"
    unrelated = crashing(RuntimeError("out of memory"))  # a RuntimeError not caused by the TypeError predicted
    assert measure("layer", "c", BOUND, OPTIONS, unrelated, predicted_crash=REASON).verdict == "FAIL"
    wrong_shape = crashing(AssertionError("shapes differ"))
    assert measure("layer", "c", BOUND, OPTIONS, wrong_shape, predicted_crash=REASON).verdict == "FAIL"
    with pytest.raises(ValueError):  # not the predicted kind of crash: not absorbed at all
        measure("layer", "c", BOUND, OPTIONS, crashing(ValueError("x")), predicted_crash=REASON)


def test_a_predicted_crash_that_does_not_happen_is_compared_and_says_so():
    fixed = measure("layer", "c", BOUND, OPTIONS, agreeing(1e-9), predicted_crash=REASON)
    assert fixed.verdict == "pass" and "did not happen" in fixed.note
    assert measure("layer", "c", BOUND, OPTIONS, agreeing(1e-3), predicted_crash=REASON).verdict == "FAIL"


def test_the_summary_counts_upstream_crashes_apart_and_the_notes_give_the_reason():
    rows = [measure("layer", "a", BOUND, OPTIONS, agreeing(1e-9)),
            measure("layer", "b", BOUND, OPTIONS, crashing(TypeError("t")), predicted_crash=REASON)]
    summary = checks.summary(rows)
    assert "PARITY OK: 2 checks, 1 pass, 0 FAIL, 1 upstream crash" in summary and "nan" not in summary, summary
    assert any(line.startswith("upstream crash (1 rows") and REASON in line
               for line in checks.notes(rows, "jax", "cpu", True, ("simple_rnn",)))


def test_the_prediction_covers_exactly_the_configuration_keras_crashes_in():
    assert jax_float64_scan_crash("simple_rnn", masked=False, backend="jax", dtype="float64", traced=True) \
        == JAX_FLOAT64_SIMPLE_RNN_SCAN_REASON
    for args in [("lstm", False, "jax", "float64"), ("gru", False, "jax", "float64"),
                 ("simple_rnn", True, "jax", "float64"), ("simple_rnn", False, "torch", "float64"),
                 ("simple_rnn", False, "jax", "float32")]:
        cell, masked, backend, dtype = args
        assert jax_float64_scan_crash(cell, masked=masked, backend=backend, dtype=dtype, traced=True) is None, args


@pytest.mark.skipif(BACKEND != "jax", reason="the crash is JAX's (keras/src/backend/jax/rnn.py L183-198)")
def test_the_real_crash_on_jax_is_reported_as_an_upstream_crash():
    from keras_impl.parity import harness
    layer = [c for c in checks.layer_configurations(False, "simple_rnn") if c.mask == "none"][:1]
    assert layer, "the simple_rnn layer set has an unmasked case"
    with harness.floatx("float64"):
        rows = [measure("layer", c.id, BOUND, OPTIONS,
                        lambda c=c: harness.layer_parity(c, np.random.default_rng(0), compiled=True),
                        predicted_crash=checks.crash_reason(OPTIONS, masked=False)) for c in layer]
    assert [r.verdict for r in rows] == [UPSTREAM_CRASH], rows
