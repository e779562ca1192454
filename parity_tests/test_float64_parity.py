"""float64 Keras against the oracle: ``keras.config.set_floatx("float64")`` (and JAX's x64 mode).

    KERAS_BACKEND=tensorflow pytest parity_tests/test_float64_parity.py
    KERAS_BACKEND=jax pytest parity_tests/test_float64_parity.py -m slow   # the whole product

TensorFlow computes in float64 throughout and meets ``FLOAT64_ABS`` (1e-10;
measured 3e-16). JAX and torch drop to float32 inside Keras's type promotion
and meet the measured ``FLOAT64_DEMOTED_ABS`` (see ``tolerances.py`` for the
cause). The oracle runs in the backend's convention for leading masked steps
(``harness.layer_parity``), so no case is excused. The default run covers every layer kind, mask and depth with
return_sequences, return_state and random initial states (65 layer cases) and
every one-layer model (30); ``-m slow`` runs the whole float64 product.
"""
from __future__ import annotations

import os

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness
from keras_impl.parity.cases import LAYER_CASES, MODEL_CASES, LayerCase, ModelCase
from keras_impl.parity.divergences import layer_divergence, model_divergence, xfail_params
from keras_impl.parity.tolerances import bound

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()
TOL = bound("output", "float64", BACKEND)


def _default_layer(c: LayerCase) -> bool:
    return c.return_sequences and c.return_state and c.initial_state


def _default_model(c: ModelCase) -> bool:
    return c.layers == 1


@pytest.fixture(autouse=True)
def float64():
    """floatx and dtype policy float64 (JAX: x64 mode) for one test, restored afterwards."""
    with harness.floatx("float64"):
        yield
    assert keras.config.floatx() == "float32"


def _split(cases, is_default, divergence):
    params = xfail_params(cases, divergence, BACKEND, DEVICE)
    default = [p for p, c in zip(params, cases) if is_default(c)]
    slow = [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.slow])
            for p, c in zip(params, cases) if not is_default(c)]
    return default + slow


@pytest.mark.parametrize("case", _split(LAYER_CASES, _default_layer, layer_divergence))
def test_layer_parity_float64(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng)
    compare.assert_within(expected, actual, TOL, f"{case.id} float64")


@pytest.mark.parametrize("case", _split(MODEL_CASES, _default_model, model_divergence))
def test_model_parity_float64(case: ModelCase, rng):
    expected, actual = harness.model_parity(case, rng)
    compare.assert_within(expected, actual, TOL, f"{case.id} float64")
