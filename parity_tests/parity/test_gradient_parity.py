"""The oracle's gradients against each backend's own autodiff through the compiled Keras model.

GradientTape on TensorFlow, ``jax.value_and_grad`` over ``stateless_call`` on
JAX, ``loss.backward()`` on torch (``training_checks.keras_loss_and_grads``);
the loss is the compiled ``binary_crossentropy``, masked where a Masking layer
puts a mask on the output. Every model kind, with and without masks (right and
left padding, holes and a fully masked row in one batch), one and two layers;
random non-zero weights, B=4, T=7, D=5, U=3 (then 6).

float32: within ``GRADIENT_FLOAT32_REL`` of the largest entry, per tensor.
float64: within ``GRADIENT_FLOAT64_ABS`` where Keras computes in float64
throughout (TensorFlow). On JAX and torch Keras maps float64 results to float32
(``keras/src/backend/common/dtypes.py`` ``BIT64_TO_BIT32_DTYPE``): those cases
are held to the measured ``GRADIENT_FLOAT64_DEMOTED_ABS`` (``tolerances.bound``).
"""
from __future__ import annotations

import pytest

from parity_tests.conftest import BACKEND
from keras_impl.parity import compare
from keras_impl.parity.tolerances import bound, float64_exact
from keras_impl.parity.training_checks import GRADIENT_CASES, gradient_parity

CASES = {case.id: case for case in GRADIENT_CASES}
# On JAX every case compiles its own scan and its transpose (seconds each on the 2-core CI machine): the
# default suite keeps the masked one-layer case of every kind (every merge mode) and two stacked ones (masked
# go_backwards, unmasked mul), which run every code path the other cases do; `-m slow` adds the rest
# (bidirectional_concat-masking-2layers, the costliest, among them). TensorFlow and torch run every case.
JAX_DEFAULT = [case.id for case in GRADIENT_CASES if (case.masked and case.layers == 1)
               or case.id in ("lstm_go_backwards-masking-2layers", "bidirectional_mul-no_mask-2layers")]
FLOAT32_PARAMS = [pytest.param(case_id, marks=[pytest.mark.slow] if BACKEND == "jax" and case_id not in JAX_DEFAULT else [])
                  for case_id in CASES]
# float64: every case where Keras computes float64 (TensorFlow). Elsewhere Keras computes float64 in float32
# inside (the figure is float32's, and float32 covers every kind above): two masked one-layer cases, a plain
# and a Bidirectional one, by default; every case with `-m slow`.
FLOAT64_DEMOTED_DEFAULT = ("lstm-masking-1layer", "bidirectional_concat-masking-1layer")
FLOAT64_PARAMS = [pytest.param(case_id, marks=[] if float64_exact(BACKEND) or case_id in FLOAT64_DEMOTED_DEFAULT
                               else [pytest.mark.slow])
                  for case_id in CASES]


@pytest.mark.parametrize("case_id", FLOAT32_PARAMS)
def test_float32_gradients_match_the_oracle(case_id, rng, backend):
    expected, actual = gradient_parity(CASES[case_id], rng, "float32")
    compare.assert_within(expected, actual, bound("gradient", "float32", backend), f"{case_id} float32 on {backend}")


@pytest.mark.parametrize("case_id", FLOAT64_PARAMS)
def test_float64_gradients_match_the_oracle(case_id, rng, backend):
    expected, actual = gradient_parity(CASES[case_id], rng, "float64")
    compare.assert_within(expected, actual, bound("gradient", "float64", backend), f"{case_id} float64 on {backend}")


def test_the_default_cases_exist():
    """The ids the default selection names are cases (a renamed case must not drop out of the default run)."""
    assert set(JAX_DEFAULT) <= set(CASES) and len(JAX_DEFAULT) == 8
    assert set(FLOAT64_DEMOTED_DEFAULT) <= set(CASES)
