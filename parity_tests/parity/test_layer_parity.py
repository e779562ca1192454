"""Keras 3 layers against the oracle, float32: the whole product of options (``keras_impl/parity/cases.py``).

    KERAS_BACKEND=jax pytest parity_tests/parity/test_layer_parity.py            # the covering subset
    KERAS_BACKEND=jax pytest -m slow parity_tests/parity/test_layer_parity.py    # the rest of the 520

The default run takes ``cases.covering_layer_cases`` (every layer kind x every mask,
each flag and depth both ways: 70 cases) and ``cases.leading_mask_cases`` (one case
for each layer kind, mask, depth and return_sequences where the backends' conventions
differ: 23, two of them among the 70), 91 cases; ``-m slow`` runs the other 429.

Each case draws its own weights, states and inputs (the ``rng`` fixture is
seeded from the test id), loads them into ``keras.layers.LSTM`` /
``Bidirectional`` and the oracle, and compares every named result.

At masked steps before a row's first valid one, Keras's backends output
different things (h0 on JAX, 0 on TensorFlow and torch:
``keras_impl/parity/divergences.py``); the oracle runs in the backend's own
convention, so those 46 cases (26 by default) are asserted like every other, and
``test_the_other_backends_convention_misses_keras`` shows that the convention
is what makes them pass. Only predicted GPU-path divergences are strict xfails.
"""
from __future__ import annotations

import os

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness
from keras_impl.parity.cases import LAYER_CASES, LayerCase, covering_layer_cases, leading_mask_cases
from keras_impl.parity.divergences import initial_output, layer_divergence, leading_mask_matters, xfail_params
from keras_impl.parity.tolerances import FLOAT32_ABS

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICE = device_name()

# Where the two conventions for leading masked steps give different results (46 cases).
LEADING_MASK_CASES = [c for c in LAYER_CASES if leading_mask_matters(c)]
# The default run: the covering subset and one leading-mask case of each structure; -m slow: the rest.
DEFAULT_CASES = covering_layer_cases(LAYER_CASES)
DEFAULT_CASES += [c for c in leading_mask_cases(LAYER_CASES, leading_mask_matters) if c not in DEFAULT_CASES]
DEFAULT_LEADING_MASK_CASES = [c for c in DEFAULT_CASES if leading_mask_matters(c)]
OTHER_CONVENTION = {"h0": "zeros", "zeros": "h0"}[initial_output(BACKEND)]

# The compiled path (jax.jit / tf.function), one case per layer kind and mask presence:
# return_sequences and return_state on, random initial states, interior holes.
COMPILED_CASES = [c for c in LAYER_CASES
                  if c.return_sequences and c.return_state and c.initial_state and c.layers == 1
                  and c.mask in ("none", "holes")]


@pytest.fixture(autouse=True)
def _float32():
    assert keras.config.floatx() == "float32", "a test left floatx changed"


def slow(params):
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.slow]) for p in params]


@pytest.mark.parametrize("case", xfail_params(DEFAULT_CASES, layer_divergence, BACKEND, DEVICE)
                         + slow(xfail_params([c for c in LAYER_CASES if c not in DEFAULT_CASES],
                                             layer_divergence, BACKEND, DEVICE)))
def test_layer_parity(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng)
    compare.assert_within(expected, actual, FLOAT32_ABS, case.id)


@pytest.mark.parametrize("case", xfail_params(COMPILED_CASES, layer_divergence, BACKEND, DEVICE))
def test_layer_parity_compiled(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng, compiled=True)
    compare.assert_within(expected, actual, FLOAT32_ABS, f"{case.id} (compiled)")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[] if c in DEFAULT_LEADING_MASK_CASES
                                               else [pytest.mark.slow]) for c in LEADING_MASK_CASES])
def test_the_other_backends_convention_misses_keras(case: LayerCase, rng):
    """The oracle in the other backends' convention is far outside the bound on every leading-mask case.

    So the convention is what test_layer_parity checks on these cases: were the
    oracle's ``initial_output`` ignored, or the harness to pick the wrong one, they would fail.
    """
    expected, actual = harness.layer_parity(case, rng, initial_output=OTHER_CONVENTION)
    worst = compare.worst(compare.errors(expected, actual))
    assert worst > 1000 * FLOAT32_ABS, f"{case.id}: initial_output={OTHER_CONVENTION!r} misses Keras by only {worst:.3g}"


def test_bidirectional_rejects_a_go_backwards_layer():
    """Why the product has no Bidirectional(LSTM(go_backwards=True)): Keras 3.15.1 refuses it.

    keras/src/layers/rnn/bidirectional.py L122 sets the backward copy's go_backwards
    to True whatever the wrapped layer says; _verify_layer_config then sees two copies
    that read the same way.
    """
    with pytest.raises(ValueError, match="go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(4, go_backwards=True))


@pytest.mark.parametrize("backend, device", [("jax", "gpu:0"), ("tensorflow", "gpu:0"), (BACKEND, "cpu")])
def test_only_predicted_gpu_divergences_are_xfails_and_they_are_strict_numeric(backend, device):
    """On a GPU the predicted cases are strict xfails that expect an AssertionError (a crash is not expected);
    on the CPU no case is one."""
    params = xfail_params(LAYER_CASES, layer_divergence, backend, device)
    marks = [m for p in params for m in p.marks]
    assert all(m.name == "xfail" and m.kwargs["strict"] and m.kwargs["raises"] is AssertionError for m in marks)
    assert all("keras/src/backend/" in m.kwargs["reason"] for m in marks)
    assert (len(marks) > 0) == (device != "cpu")


def test_cases_cover_the_product():
    """7 layer kinds x 2 x 2 x 2 x 5 masks x 2 depths, less the 40 stacked merge_mode=None cases."""
    assert len(LAYER_CASES) == 7 * 2 * 2 * 2 * 5 * 2 - 40
    assert len({c.id for c in LAYER_CASES}) == len(LAYER_CASES)
    assert len(COMPILED_CASES) == 14
    assert len(LEADING_MASK_CASES) == 46


def test_the_default_subset_covers_every_kind_mask_flag_and_leading_mask_structure():
    """What the default run keeps of the product (``-m slow`` runs the rest): each layer kind meets each
    mask kind, and each kind and each mask meets every flag and depth both ways; every structure
    (kind, mask, depth, return_sequences) in which the backends' leading-mask conventions differ is there."""
    from keras_impl.parity.cases import MASK_KINDS, layer_kind, layer_kinds
    assert len(DEFAULT_CASES) == len(set(DEFAULT_CASES)) == 91 and len(DEFAULT_LEADING_MASK_CASES) == 26
    flags = {"return_sequences": (True, False), "return_state": (True, False), "initial_state": (True, False),
             "layers": (1, 2), "mask": MASK_KINDS}
    for kind in layer_kinds():
        of_kind = [c for c in DEFAULT_CASES if layer_kind(c) == kind]
        for flag, values in flags.items():
            if flag == "layers" and kind[0] and kind[2] is None:
                values = (1,)  # a pair of tensors cannot feed a second layer
            assert {getattr(c, flag) for c in of_kind} == set(values), (kind, flag)
    for mask in MASK_KINDS:
        with_mask = [c for c in DEFAULT_CASES if c.mask == mask]
        for flag, values in flags.items():
            if flag != "mask":
                assert {getattr(c, flag) for c in with_mask} == set(values), (mask, flag)
    structure = lambda c: (layer_kind(c), c.mask, c.layers, c.return_sequences)  # noqa: E731
    assert {structure(c) for c in LEADING_MASK_CASES} == {structure(c) for c in DEFAULT_LEADING_MASK_CASES}
