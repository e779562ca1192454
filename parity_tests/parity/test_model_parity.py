"""``keras_impl.build_model(spec)`` against ``reference.model_forward``, float32.

    KERAS_BACKEND=torch pytest parity_tests/parity/test_model_parity.py

Direction (forward, backward, bidirectional with sum, mul, concat, ave) x mask
(none: no Masking layer; right, left, holes, a fully masked row: ``Masking(0.0)``
over zero-padded inputs) x one or two stacked layers. ``merge_mode=None`` has no
model-level case: it returns a pair of tensors, which the Dense head cannot take
(``ModelSpec`` refuses it). Initial states are zero at model level, so the
leading-masked-step divergence of the layer suite cannot arise.

The default run takes ``cases.covering_model_cases`` (30: every direction with every mask
kind, one or two layers in turn); ``-m slow`` runs the other 30.
"""
from __future__ import annotations

import os

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness
from keras_impl.parity.cases import MASK_KINDS, MODEL_CASES, ModelCase, covering_model_cases
from keras_impl.parity.divergences import model_divergence, xfail_params
from keras_impl.parity.tolerances import FLOAT32_ABS

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()
COMPILED_CASES = [c for c in MODEL_CASES if c.layers == 1 and c.mask in ("none", "right")]
DEFAULT_CASES = covering_model_cases(MODEL_CASES)


@pytest.fixture(autouse=True)
def _float32():
    assert keras.config.floatx() == "float32", "a test left floatx changed"


@pytest.mark.parametrize("case", xfail_params(DEFAULT_CASES, model_divergence, BACKEND, DEVICE)
                         + [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.slow])
                            for p in xfail_params([c for c in MODEL_CASES if c not in DEFAULT_CASES],
                                                  model_divergence, BACKEND, DEVICE)])
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


def test_the_default_subset_meets_every_direction_mask_and_depth():
    """Each direction (each merge mode) with each mask kind, and each of them at both depths."""
    assert len(DEFAULT_CASES) == len(set(DEFAULT_CASES)) == 30
    kinds = {(c.direction, c.merge_mode) for c in MODEL_CASES}
    assert {(c.direction, c.merge_mode, c.mask) for c in DEFAULT_CASES} == {(*k, m) for k in kinds for m in MASK_KINDS}
    for kind in kinds:
        assert {c.layers for c in DEFAULT_CASES if (c.direction, c.merge_mode) == kind} == {1, 2}, kind
    for mask in MASK_KINDS:
        assert {c.layers for c in DEFAULT_CASES if c.mask == mask} == {1, 2}, mask
