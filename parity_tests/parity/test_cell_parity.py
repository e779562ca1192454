"""GRU, SimpleRNN and the LSTM's other options: Keras 3.15.1 against the oracle on the installed backend.

    KERAS_BACKEND=torch pytest parity_tests/parity/test_cell_parity.py            # the representative subset
    KERAS_BACKEND=torch pytest -m slow parity_tests/parity/test_cell_parity.py    # the whole products

The same template as the LSTM suites (``keras_impl/parity/harness.py``): the same
random, non-zero weights into ``keras.layers.GRU`` / ``SimpleRNN`` / ``LSTM`` (alone
or in ``Bidirectional``) and into ``reference.gru_forward`` / ``simple_rnn_forward``
/ ``lstm_forward`` / ``bidirectional_forward``, every named output and state compared.
Option sets: ``cases.CELL_VARIANTS`` (GRU: Keras's defaults, reset_after=False,
hard_sigmoid with relu; SimpleRNN: defaults, relu without bias; LSTM: hard_sigmoid
with linear).

Default run (``cases.representative_layer_cases``): every merge mode and plain layer
(go_backwards included) x every mask kind with states in and out, each kind's last
output over a fully masked row, two stacked layers; each other option set on every
layer kind. Then models (``build_model`` with ``cell=``), float64, gradients against
each backend's autodiff, and a 100-update Adam trajectory per cell. ``-m slow``: the
whole layer product of every option set and the whole model product.

The leading-masked-step difference between backends (``divergences.py``, 1) belongs
to Keras's RNN loop, not the cell, and is the same for GRU and SimpleRNN: the oracle
runs in the backend's convention, and a test shows that the other one misses.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness, training_checks
from keras_impl.parity.cases import (CELL_VARIANTS, LayerCase, ModelCase, model_cases, representative_layer_cases,
                                     variant_cases)
from keras_impl.parity.divergences import (initial_output, jax_float64_scan_crash, layer_divergence,
                                           leading_mask_matters, model_divergence, xfail_params)
from keras_impl.parity.tolerances import FLOAT32_ABS, bound
from parity_tests.conftest import BACKEND

DEVICE = device_name()
CELLS = list(CELL_VARIANTS)  # gru, simple_rnn, lstm (its non-default options)

DEFAULT_LAYER_CASES = [c for cell in CELLS for c in representative_layer_cases(cell)]
SLOW_LAYER_CASES = [c for cell in CELLS for c in variant_cases(cell) if c not in set(DEFAULT_LAYER_CASES)]

ALL_MODEL_CASES = [c for cell in CELLS for options in CELL_VARIANTS[cell] for c in model_cases(cell, **options)]
def _default_options(case) -> bool:
    return case.spec().cell_config.options() == ""


# Default: Keras's defaults in every direction with right padding, one layer, and a concat
# Bidirectional twice stacked with holes; each other option set forward with right padding.
DEFAULT_MODEL_CASES = [c for c in ALL_MODEL_CASES
                       if (c.layers == 1 and c.mask == "right" and (_default_options(c) or c.direction == "forward"))
                       or (c.cell != "lstm" and _default_options(c) and c.layers == 2 and c.mask == "holes"
                           and c.direction == "bidirectional" and c.merge_mode == "concat")]
SLOW_MODEL_CASES = [c for c in ALL_MODEL_CASES if c not in set(DEFAULT_MODEL_CASES)]

# The compiled path (jax.jit / tf.function; torch stays eager): a Bidirectional with holes, one per
# GRU and SimpleRNN option set.
COMPILED_LAYER_CASES = [c for c in DEFAULT_LAYER_CASES if c.bidirectional and c.merge_mode == "sum"
                        and c.mask == "holes" and c.return_sequences and c.layers == 1 and c.cell != "lstm"]
FLOAT64_LAYER_CASES = [c for c in COMPILED_LAYER_CASES if not c.cell_config.options()]
FLOAT64_MODEL_CASES = [c for c in DEFAULT_MODEL_CASES if c.direction == "bidirectional" and c.merge_mode == "sum"
                       and c.layers == 1]


@pytest.fixture(autouse=True)
def _float32():
    assert keras.config.floatx() == "float32", "a test left floatx changed"


def slow(params):
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.slow]) for p in params]


# ---------------------------------------------------------------- layers

@pytest.mark.parametrize("case", xfail_params(DEFAULT_LAYER_CASES, layer_divergence, BACKEND, DEVICE)
                         + slow(xfail_params(SLOW_LAYER_CASES, layer_divergence, BACKEND, DEVICE)))
def test_layer_parity(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng)
    compare.assert_within(expected, actual, FLOAT32_ABS, case.id)


@pytest.mark.parametrize("case", xfail_params(COMPILED_LAYER_CASES, layer_divergence, BACKEND, DEVICE))
def test_layer_parity_compiled(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng, compiled=True)
    compare.assert_within(expected, actual, FLOAT32_ABS, f"{case.id} (compiled)")


LEADING_MASK_CASES = [c for c in DEFAULT_LAYER_CASES if c.cell != "lstm" and leading_mask_matters(c)
                      and not c.bidirectional and c.mask in ("left", "right")]


@pytest.mark.parametrize("case", LEADING_MASK_CASES, ids=lambda c: c.id)
def test_the_other_backends_convention_misses_keras(case: LayerCase, rng):
    """GRU and SimpleRNN share the LSTM's leading-masked-step difference (it is Keras's RNN loop's):
    the oracle in the other backends' convention misses this backend by far more than the bound."""
    other = {"h0": "zeros", "zeros": "h0"}[initial_output(BACKEND)]
    expected, actual = harness.layer_parity(case, rng, initial_output=other)
    assert compare.worst(compare.errors(expected, actual, "abs")) > 100 * FLOAT32_ABS


def test_gru_cell_and_state_counts_match_keras(rng):
    """GRU and SimpleRNN return one state a direction: Keras's Bidirectional gives (y, h_f, h_b)."""
    case = next(c for c in DEFAULT_LAYER_CASES if c.cell == "gru" and c.bidirectional and c.merge_mode == "sum"
                and c.return_state and c.layers == 1)
    expected, actual = harness.layer_parity(case, rng)
    assert sorted(actual) == sorted(expected) == ["L0.h_b", "L0.h_f", "L0.output"]


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("case", xfail_params(DEFAULT_MODEL_CASES, model_divergence, BACKEND, DEVICE)
                         + slow(xfail_params(SLOW_MODEL_CASES, model_divergence, BACKEND, DEVICE)))
def test_model_parity(case: ModelCase, rng):
    expected, actual = harness.model_parity(case, rng)
    compare.assert_within(expected, actual, FLOAT32_ABS, case.id)


def test_build_model_uses_the_spec_cell():
    from reference import ModelSpec
    from keras_impl.models import build_model
    model = build_model(ModelSpec(timesteps=4, features=2, units=3, cell="gru", reset_after=False,
                                  recurrent_activation="hard_sigmoid"))
    inner = model.get_layer("recurrent_0").forward_layer
    assert type(inner).__name__ == "GRU" and inner.reset_after is False
    assert inner.recurrent_activation.__name__ == "hard_sigmoid"
    assert [w.shape for w in model.get_weights()] == [tuple(s) for s in ModelSpec(
        timesteps=4, features=2, units=3, cell="gru", reset_after=False).weight_shapes()]


# ---------------------------------------------------------------- float64

@pytest.mark.parametrize("case", FLOAT64_LAYER_CASES, ids=lambda c: c.id)
def test_layer_parity_float64(case: LayerCase, rng):
    with harness.floatx("float64"):
        expected, actual = harness.layer_parity(case, rng)
    compare.assert_within(expected, actual, bound("output", "float64", BACKEND), f"{case.id} float64")


def _scan_crash_params(cells):
    params = []
    for cell in cells:
        reason = jax_float64_scan_crash(cell, masked=False, backend=BACKEND, dtype="float64", traced=True)
        marks = [pytest.mark.xfail(strict=True, raises=TypeError, reason=reason)] if reason else []
        params.append(pytest.param(cell, id=cell, marks=marks))
    return params


@pytest.mark.parametrize("cell", _scan_crash_params(["simple_rnn", "gru"]))
def test_compiled_float64_layer_without_a_mask(cell, rng):
    """Keras compiled, float64, no mask: on JAX the SimpleRNN crashes in lax.scan (an upstream bug, pinned:
    divergences.JAX_FLOAT64_SIMPLE_RNN_SCAN_REASON); GRU, and every backend else, match the oracle."""
    case = LayerCase(False, False, None, True, True, True, "none", 1, cell)
    with harness.floatx("float64"):
        expected, actual = harness.layer_parity(case, rng, compiled=True)
    compare.assert_within(expected, actual, bound("output", "float64", BACKEND), f"{case.id} float64 compiled")


@pytest.mark.parametrize("case", FLOAT64_MODEL_CASES, ids=lambda c: c.id)
def test_model_parity_float64(case: ModelCase, rng):
    with harness.floatx("float64"):
        expected, actual = harness.model_parity(case, rng)
    compare.assert_within(expected, actual, bound("output", "float64", BACKEND), f"{case.id} float64")


# ---------------------------------------------------------------- training

GRADIENT_CASES = [c for cell in ("gru", "simple_rnn") for c in training_checks.CELL_GRADIENT_CASES[cell]]
# Default (each gradient costs JAX a compilation, seconds): a masked GRU Bidirectional(mul) with
# reset_after=False and a masked SimpleRNN Bidirectional(sum) with relu and no bias; -m slow: every
# kind, masked and not, two stacked layers, hard_sigmoid, and float64.
DEFAULT_GRADIENT = [c for c in GRADIENT_CASES if c.cell_options and c.kind != "lstm"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[] if c in DEFAULT_GRADIENT else [pytest.mark.slow])
                                  for c in GRADIENT_CASES])
def test_float32_gradients_match_the_oracle(case, rng):
    expected, actual = training_checks.gradient_parity(case, rng, "float32")
    compare.assert_within(expected, actual, bound("gradient", "float32", BACKEND), f"{case.id} float32")


@pytest.mark.slow
@pytest.mark.parametrize("case", DEFAULT_GRADIENT, ids=lambda c: c.id)
def test_float64_gradients_match_the_oracle(case, rng):
    expected, actual = training_checks.gradient_parity(case, rng, "float64")
    compare.assert_within(expected, actual, bound("gradient", "float64", BACKEND), f"{case.id} float64")


@pytest.mark.parametrize("cell", list(training_checks.CELL_TRAJECTORIES))
def test_float32_trajectory_matches_the_oracle(cell, rng):
    case = training_checks.CELL_TRAJECTORIES[cell]
    expected, actual = training_checks.trajectory_parity(case, rng, "float32")
    compare.assert_within(expected, actual, bound("trajectory", "float32", BACKEND), f"{case.id} float32")
