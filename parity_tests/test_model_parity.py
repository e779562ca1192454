"""``keras_impl.build_model(spec)`` against ``reference.model_forward``, float32.

    KERAS_BACKEND=torch pytest parity_tests/test_model_parity.py

Direction (forward, backward, bidirectional with sum, mul, concat, ave) x mask
(none: no Masking layer; right, left, holes, a fully masked row: ``Masking(0.0)``
over zero-padded inputs) x one or two stacked layers. ``merge_mode=None`` has no
model-level case: it returns a pair of tensors, which the Dense head cannot take
(``ModelSpec`` refuses it). Initial states are zero at model level, so the
leading-masked-step divergence of the layer suite cannot arise.
"""
from __future__ import annotations

import os

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness
from keras_impl.parity.cases import MODEL_CASES, ModelCase
from keras_impl.parity.divergences import model_divergence, xfail_params
from keras_impl.parity.tolerances import FLOAT32_ABS

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()
COMPILED_CASES = [c for c in MODEL_CASES if c.layers == 1 and c.mask in ("none", "right")]


@pytest.fixture(autouse=True)
def _float32():
    assert keras.config.floatx() == "float32", "a test left floatx changed"


@pytest.mark.parametrize("case", xfail_params(MODEL_CASES, model_divergence, BACKEND, DEVICE))
def test_model_parity(case: ModelCase, rng):
    expected, actual = harness.model_parity(case, rng)
    compare.assert_within(expected, actual, FLOAT32_ABS, case.id)


@pytest.mark.parametrize("case", xfail_params(COMPILED_CASES, model_divergence, BACKEND, DEVICE))
def test_model_parity_compiled(case: ModelCase, rng):
    expected, actual = harness.model_parity(case, rng, compiled=True)
    compare.assert_within(expected, actual, FLOAT32_ABS, f"{case.id} (compiled)")


def test_model_merge_mode_none_is_refused():
    """The documented gap: no model-level merge_mode=None, because the spec refuses it."""
    from reference import ModelSpec
    with pytest.raises(ValueError, match="merge_mode"):
        ModelSpec(merge_mode=None)
