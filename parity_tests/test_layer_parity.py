"""Keras 3 layers against the oracle, float32: the whole product of options (``keras_impl/parity/cases.py``).

    KERAS_BACKEND=jax pytest parity_tests/test_layer_parity.py

Each case draws its own weights, states and inputs (the ``rng`` fixture is
seeded from the test id), loads them into ``keras.layers.LSTM`` /
``Bidirectional`` and the oracle, and compares every named result.
Cases that Keras itself answers differently on this backend are strict xfails
(``keras_impl/parity/divergences.py``).
"""
from __future__ import annotations

import os

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import harness
from keras_impl.parity.cases import LAYER_CASES, LayerCase
from keras_impl.parity.divergences import layer_divergence, xfail_params
from keras_impl.parity.tolerances import FLOAT32_ABS

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()

# The compiled path (jax.jit / tf.function), one case per layer kind and mask presence:
# return_sequences and return_state on, random initial states, interior holes.
COMPILED_CASES = [c for c in LAYER_CASES
                  if c.return_sequences and c.return_state and c.initial_state and c.layers == 1
                  and c.mask in ("none", "holes")]


@pytest.fixture(autouse=True)
def _float32():
    assert keras.config.floatx() == "float32", "a test left floatx changed"


@pytest.mark.parametrize("case", xfail_params(LAYER_CASES, layer_divergence, BACKEND, DEVICE))
def test_layer_parity(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng)
    harness.assert_close(expected, actual, FLOAT32_ABS, case.id)


@pytest.mark.parametrize("case", xfail_params(COMPILED_CASES, layer_divergence, BACKEND, DEVICE))
def test_layer_parity_compiled(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng, compiled=True)
    harness.assert_close(expected, actual, FLOAT32_ABS, f"{case.id} (compiled)")


def test_bidirectional_rejects_a_go_backwards_layer():
    """Why the product has no Bidirectional(LSTM(go_backwards=True)): Keras 3.15.1 refuses it.

    keras/src/layers/rnn/bidirectional.py L122 sets the backward copy's go_backwards
    to True whatever the wrapped layer says; _verify_layer_config then sees two copies
    that read the same way.
    """
    with pytest.raises(ValueError, match="go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(4, go_backwards=True))


def test_cases_cover_the_product():
    """7 layer kinds x 2 x 2 x 2 x 5 masks x 2 depths, less the 40 stacked merge_mode=None cases."""
    assert len(LAYER_CASES) == 7 * 2 * 2 * 2 * 5 * 2 - 40
    assert len({c.id for c in LAYER_CASES}) == len(LAYER_CASES)
    assert len(COMPILED_CASES) == 14
