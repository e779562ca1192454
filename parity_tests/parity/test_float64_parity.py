"""float64 Keras against the oracle: ``keras.config.set_floatx("float64")`` (and JAX's x64 mode).

    KERAS_BACKEND=tensorflow pytest parity_tests/parity/test_float64_parity.py
    KERAS_BACKEND=jax pytest parity_tests/parity/test_float64_parity.py -m slow   # the whole product

TensorFlow computes in float64 throughout and meets ``FLOAT64_ABS`` (1e-10;
measured 3e-16). JAX and torch drop to float32 inside Keras's type promotion
and meet the measured ``FLOAT64_DEMOTED_ABS`` (see ``tolerances.py`` for the
cause). The oracle runs in the backend's convention for leading masked steps
(``harness.layer_parity``), so no case is excused. The default run covers every layer kind with every
mask with return_sequences, return_state and random initial states, one or two layers in turn so that
each kind and each mask meets both depths (35 layer cases), and every model direction (each merge mode)
one layer deep without a mask and with one mask kind, each mask kind in turn (12); ``-m slow`` runs the
rest of the float64 product. The structures themselves are covered in float32 (test_layer_parity.py,
test_model_parity.py); what float64 adds is the dtype's path through Keras and its bound.
"""
from __future__ import annotations

import os

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness
from keras_impl.parity.cases import LAYER_CASES, MASK_KINDS, MODEL_CASES, LayerCase, ModelCase, layer_kind, layer_kinds
from keras_impl.parity.divergences import layer_divergence, model_divergence, xfail_params
from keras_impl.parity.tolerances import bound

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()
TOL = bound("output", "float64", BACKEND)


KINDS = list(layer_kinds())
MODEL_KINDS = list(dict.fromkeys((c.direction, c.merge_mode) for c in MODEL_CASES))


def _default_layer(c: LayerCase) -> bool:
    k, m = KINDS.index(layer_kind(c)), MASK_KINDS.index(c.mask)
    depth = 1 if c.bidirectional and c.merge_mode is None else 1 + (k + m) % 2  # no stacked merge_mode=None
    return c.return_sequences and c.return_state and c.initial_state and c.layers == depth


def _default_model(c: ModelCase) -> bool:
    k = MODEL_KINDS.index((c.direction, c.merge_mode))
    return c.layers == 1 and c.mask in ("none", MASK_KINDS[1 + k % 4])


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


def test_the_default_subset_meets_every_kind_mask_and_depth():
    layers = [c for c in LAYER_CASES if _default_layer(c)]
    assert len(layers) == 35 and {(layer_kind(c), c.mask) for c in layers} == {(k, m) for k in KINDS for m in MASK_KINDS}
    for kind in KINDS:
        assert {c.layers for c in layers if layer_kind(c) == kind} == ({1} if kind[0] and kind[2] is None else {1, 2})
    for mask in MASK_KINDS:
        assert {c.layers for c in layers if c.mask == mask} == {1, 2}, mask
    models = [c for c in MODEL_CASES if _default_model(c)]
    assert len(models) == 12 and {c.mask for c in models} == set(MASK_KINDS)
    assert {(c.direction, c.merge_mode) for c in models if c.mask == "none"} == set(MODEL_KINDS)
