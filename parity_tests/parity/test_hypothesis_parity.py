"""Property: for any shapes, options, mask and weights, a Keras layer stack equals the oracle (float32).

    KERAS_BACKEND=tensorflow pytest parity_tests/parity/test_hypothesis_parity.py

Hypothesis draws the cell (LSTM, GRU, SimpleRNN) and, for half the draws, options other
than Keras's defaults (activation among tanh, sigmoid, hard_sigmoid, relu, linear;
recurrent_activation among the bounded sigmoid, hard_sigmoid, tanh; GRU's reset_after;
use_bias), the layer kind (the plain
layer, the plain layer with go_backwards, Bidirectional with each merge mode),
return_sequences, return_state, one or two stacked layers,
five distinct sizes 1..8 for batch, time, features and the units of each
layer, a mask of random bits (or none), random initial states (or none) and
a seed for the weights (on JAX the sizes come from small pools: ``JAX_SIZES``).
50 examples a backend by default and 200 more with ``-m slow``, derandomized and
without an example database, so every CI run draws the same examples. The bound is
``FLOAT32_ABS`` times ``max(1, max |oracle output|)``, as ``bilstm verify``'s: the
unbounded activations (relu, linear) reach values where float32 rounding is
relative to their size.

The oracle runs in the backend's own convention for masked steps before a
row's first valid one (``keras_impl/parity/divergences.py``: h0 on JAX, 0 on
TensorFlow and torch), so every draw is compared as drawn, initial states and
random masks together. On a GPU, a draw that meets a predicted Keras GPU-path
divergence (``divergences.layer_divergence``) is rejected (``assume``); the
strict xfails of ``test_layer_parity.py`` hold those.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness
from keras_impl.parity.cases import MERGE_MODES, Dims, LayerCase
from keras_impl.parity.divergences import layer_divergence
from keras_impl.parity.tolerances import FLOAT32_ABS
from reference import ACTIVATIONS, CELLS

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()
# On JAX (run op by op on the CPU, see harness.default_compiled) every primitive is compiled once per
# shape: fresh sizes in every example cost about a second each. So JAX draws batch, features and units
# from small disjoint pools (still all different) and only the time length freely.
JAX_SIZES = ((2, 3), (1, 5), (4, 6), (7, 8))
GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh")


@st.composite
def cell_options(draw) -> dict:
    """A cell and its options: Keras's defaults in half the draws, every option drawn in the other half."""
    cell = draw(st.sampled_from(CELLS))
    options = {"cell": cell}
    if draw(st.booleans()):
        return options
    options["activation"] = draw(st.sampled_from(ACTIVATIONS))
    if cell != "simple_rnn":  # gates: bounded ones (a relu or linear gate lets an LSTM's state reach 1e19 in 9 steps)
        options["recurrent_activation"] = draw(st.sampled_from(GATE_ACTIVATIONS))
    if cell == "gru":
        options["reset_after"] = draw(st.booleans())
    options["use_bias"] = draw(st.booleans())
    return options


@st.composite
def layer_draws(draw):
    cell = draw(cell_options())
    kind = draw(st.sampled_from(["lstm", "lstm-backwards"] + [f"bidi-{m}" for m in MERGE_MODES]))
    bidirectional = kind.startswith("bidi")
    merge_mode = MERGE_MODES[[f"bidi-{m}" for m in MERGE_MODES].index(kind)] if bidirectional else None
    layers = 1 if bidirectional and merge_mode is None else draw(st.sampled_from([1, 2]))
    if BACKEND == "jax":  # see JAX_SIZES
        batch, features, u1, u2 = (draw(st.sampled_from(pool)) for pool in JAX_SIZES)
        time = draw(st.integers(1, 9).filter(lambda t: t not in (batch, features, u1, u2)))
    else:
        batch, time, features, u1, u2 = draw(st.lists(st.integers(1, 8), min_size=5, max_size=5, unique=True))
    dims = Dims(batch=batch, time=time, features=features, units=(u1, u2))
    masked = draw(st.booleans())
    mask = np.array(draw(st.lists(st.booleans(), min_size=batch * time, max_size=batch * time))).reshape(batch, time) \
        if masked else None
    case = LayerCase(bidirectional=bidirectional, go_backwards=kind == "lstm-backwards", merge_mode=merge_mode,
                     return_sequences=draw(st.booleans()), return_state=draw(st.booleans()),
                     initial_state=draw(st.booleans()), mask="random" if masked else "none", layers=layers, **cell)
    return case, dims, mask, draw(st.integers(0, 2**32 - 1))


def check_layer_draw(draw):
    case, dims, mask, seed = draw
    assume(layer_divergence(case, BACKEND, DEVICE) is None)  # a GPU-path prediction only (module docstring)
    assert keras.config.floatx() == "float32"
    expected, actual = harness.layer_parity(case, np.random.default_rng(seed), dims, mask=mask)
    # Absolute within [-1, 1]; relative to the largest output above it (relu and linear cells grow without
    # bound: an LSTM with relu gates reaches 111 in 8 steps, where float32 rounding alone is 5e-5).
    largest = max(float(np.max(np.abs(v), initial=0.0)) for v in expected.values())
    compare.assert_within(expected, actual, FLOAT32_ABS * max(1.0, largest), f"{case.id} {dims}")


# The default run: 50 draws (each compiles its own layer stack, so draws dominate this file's time);
# `-m slow` draws 200 more. derandomize=True: the same draws in every run, different between the two tests.
@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(layer_draws())
def test_random_layer_stack_matches_the_oracle(draw):
    check_layer_draw(draw)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(layer_draws())
def test_many_random_layer_stacks_match_the_oracle(draw):
    check_layer_draw(draw)
