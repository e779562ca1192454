"""Keras 3.15.1 layers against the oracle, every cell: LSTM, GRU and SimpleRNN, alone or in ``Bidirectional``.

    KERAS_BACKEND=jax pytest parity_tests/parity/test_layer_parity.py            # the default selection
    KERAS_BACKEND=jax pytest -m slow parity_tests/parity/test_layer_parity.py    # the rest of the products

One template (``keras_impl/parity/harness.py``, cases in ``keras_impl/parity/cases.py``):
each case draws its own random, non-zero weights, states and inputs (the ``rng``
fixture is seeded from the test id), loads them into ``keras.layers.LSTM`` / ``GRU`` /
``SimpleRNN`` (alone or in ``Bidirectional``) and into the oracle
(``reference.lstm_forward`` / ``gru_forward`` / ``simple_rnn_forward`` /
``bidirectional_forward``), and compares every named output and state. The layer
tests are parametrised over the cell: a case's id names it (an LSTM case with
Keras's defaults keeps its plain id, ``lstm-...`` or ``bidi-...``; any other starts
with the cell and its options, ``gru[reset_after=False]-bidi-sum-...``).

Which cases run by default (``-m slow`` runs the rest):

* LSTM, Keras's defaults (``cases.LAYER_CASES``, the whole product of options: 520):
  ``cases.covering_layer_cases`` (every layer kind x every mask, each flag and depth
  both ways: 70 cases) and ``cases.leading_mask_cases`` (one case for each layer kind,
  mask, depth and return_sequences where the backends' conventions differ: 23, two of
  them among the 70), 91 cases; 429 slow.
* GRU, SimpleRNN and the LSTM's other options (``cases.CELL_VARIANTS``: GRU's
  defaults, reset_after=False, hard_sigmoid with relu; SimpleRNN's defaults, relu
  without bias; LSTM hard_sigmoid with linear): ``cases.representative_layer_cases``
  (every merge mode and plain layer, go_backwards included, x every mask kind with
  states in and out, each kind's last output over a fully masked row, two stacked
  layers; each other option set on every layer kind); the rest of each product slow.
  Then, for these cells, models (``build_model`` with ``cell=``), float64, gradients
  against each backend's autodiff and a 100-update Adam trajectory per cell (the
  LSTM's are in ``test_model_parity.py``, ``test_float64_parity.py``,
  ``test_gradient_parity.py``, ``test_trajectory_parity.py``).

At masked steps before a row's first valid one, Keras's backends output different
things (h0 on JAX, 0 on TensorFlow and torch: ``keras_impl/parity/divergences.py``).
That belongs to Keras's RNN loop, not the cell: the oracle runs in the backend's own
convention, so those cases (46 of the LSTM product, 26 by default) are asserted like
every other, and ``test_the_other_backends_convention_misses_keras`` shows, for every
cell, that the convention is what makes them pass. Only predicted GPU-path
divergences are strict xfails, and the JAX float64 SimpleRNN crash in ``lax.scan``.
"""
from __future__ import annotations

import keras
import pytest

from keras_impl.backend import device_name
from keras_impl.parity import compare, harness, training_checks
from keras_impl.parity.cases import (CELL_VARIANTS, LAYER_CASES, LayerCase, ModelCase, covering_layer_cases,
                                     leading_mask_cases, model_cases, representative_layer_cases, variant_cases)
from keras_impl.parity.divergences import (initial_output, jax_float64_scan_crash, layer_divergence,
                                           leading_mask_matters, model_divergence, xfail_params)
from keras_impl.parity.tolerances import FLOAT32_ABS, bound
from parity_tests.conftest import BACKEND

DEVICE = device_name()
OTHER_CONVENTION = {"h0": "zeros", "zeros": "h0"}[initial_output(BACKEND)]

# ---- the LSTM with Keras's defaults: the whole product of options
# Where the two conventions for leading masked steps give different results (46 cases).
LEADING_MASK_CASES = [c for c in LAYER_CASES if leading_mask_matters(c)]
# The default run: the covering subset and one leading-mask case of each structure; -m slow: the rest.
DEFAULT_CASES = covering_layer_cases(LAYER_CASES)
DEFAULT_CASES += [c for c in leading_mask_cases(LAYER_CASES, leading_mask_matters) if c not in DEFAULT_CASES]
DEFAULT_LEADING_MASK_CASES = [c for c in DEFAULT_CASES if leading_mask_matters(c)]
# The compiled path (jax.jit / tf.function), one case per layer kind and mask presence:
# return_sequences and return_state on, random initial states, interior holes.
COMPILED_CASES = [c for c in LAYER_CASES
                  if c.return_sequences and c.return_state and c.initial_state and c.layers == 1
                  and c.mask in ("none", "holes")]

# ---- GRU, SimpleRNN and the LSTM's other options (cases.CELL_VARIANTS)
CELLS = list(CELL_VARIANTS)  # gru, simple_rnn, lstm (its non-default options)
DEFAULT_CELL_CASES = [c for cell in CELLS for c in representative_layer_cases(cell)]
SLOW_CELL_CASES = [c for cell in CELLS for c in variant_cases(cell) if c not in set(DEFAULT_CELL_CASES)]
# The compiled path (jax.jit / tf.function; torch stays eager): a Bidirectional with holes, one per
# GRU and SimpleRNN option set.
CELL_COMPILED_CASES = [c for c in DEFAULT_CELL_CASES if c.bidirectional and c.merge_mode == "sum"
                       and c.mask == "holes" and c.return_sequences and c.layers == 1 and c.cell != "lstm"]
# The GRU's and SimpleRNN's leading-mask cases among their default ones: plain layers, left and right padding.
CELL_LEADING_MASK_CASES = [c for c in DEFAULT_CELL_CASES if c.cell != "lstm" and leading_mask_matters(c)
                           and not c.bidirectional and c.mask in ("left", "right")]
# How far the other convention must miss, in float32 bounds: the factors the LSTM and the cell suites were
# written with (merged, neither loosened).
OTHER_CONVENTION_MISSES_BY = {"lstm": 1000, "gru": 100, "simple_rnn": 100}


@pytest.fixture(autouse=True)
def _float32():
    assert keras.config.floatx() == "float32", "a test left floatx changed"


def slow(params):
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.slow]) for p in params]


def smoke_cases(cases: list[LayerCase]) -> list[LayerCase]:
    """One case per cell and merge mode (make smoke), with Keras's default options: of each, the first
    Bidirectional case with interior holes in the mask, states in and out and sequences, else the first."""
    chosen = {}
    richest_first = sorted(cases, key=lambda c: (c.mask != "holes", not c.initial_state, not c.return_sequences))
    for c in richest_first:
        if c.bidirectional and c.merge_mode is not None and not c.cell_config.options():
            chosen.setdefault((c.cell, c.merge_mode), c)
    return list(chosen.values())


def smoke(params, cases):
    """``params`` with the ``smoke`` mark on the cases ``smoke_cases`` picks."""
    picked = {c.id for c in smoke_cases(cases)}
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.smoke]) if p.id in picked else p
            for p in params]


# ---------------------------------------------------------------- layers, every cell

@pytest.mark.parametrize("case", smoke(xfail_params(DEFAULT_CASES + DEFAULT_CELL_CASES, layer_divergence, BACKEND, DEVICE),
                                           DEFAULT_CASES + DEFAULT_CELL_CASES)
                         + slow(xfail_params([c for c in LAYER_CASES if c not in DEFAULT_CASES] + SLOW_CELL_CASES,
                                             layer_divergence, BACKEND, DEVICE)))
def test_layer_parity(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng)
    compare.assert_within(expected, actual, FLOAT32_ABS, case.id)


@pytest.mark.parametrize("case", xfail_params(COMPILED_CASES + CELL_COMPILED_CASES, layer_divergence, BACKEND, DEVICE))
def test_layer_parity_compiled(case: LayerCase, rng):
    expected, actual = harness.layer_parity(case, rng, compiled=True)
    compare.assert_within(expected, actual, FLOAT32_ABS, f"{case.id} (compiled)")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[] if c in DEFAULT_LEADING_MASK_CASES
                                               else [pytest.mark.slow]) for c in LEADING_MASK_CASES]
                         + [pytest.param(c, id=c.id) for c in CELL_LEADING_MASK_CASES])
def test_the_other_backends_convention_misses_keras(case: LayerCase, rng):
    """The oracle in the other backends' convention is far outside the bound on every leading-mask case.

    So the convention is what test_layer_parity checks on these cases: were the
    oracle's ``initial_output`` ignored, or the harness to pick the wrong one, they would fail.
    GRU and SimpleRNN share the LSTM's difference: it is Keras's RNN loop's.
    """
    expected, actual = harness.layer_parity(case, rng, initial_output=OTHER_CONVENTION)
    worst = compare.worst(compare.errors(expected, actual, "abs"))
    assert worst > OTHER_CONVENTION_MISSES_BY[case.cell] * FLOAT32_ABS, \
        f"{case.id}: initial_output={OTHER_CONVENTION!r} misses Keras by only {worst:.3g}"


def test_bidirectional_rejects_a_go_backwards_layer():
    """Why the product has no Bidirectional(LSTM(go_backwards=True)): Keras 3.15.1 refuses it.

    keras/src/layers/rnn/bidirectional.py L122 sets the backward copy's go_backwards
    to True whatever the wrapped layer says; _verify_layer_config then sees two copies
    that read the same way.
    """
    with pytest.raises(ValueError, match="go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(4, go_backwards=True))


def test_gru_cell_and_state_counts_match_keras(rng):
    """GRU and SimpleRNN return one state a direction: Keras's Bidirectional gives (y, h_f, h_b)."""
    case = next(c for c in DEFAULT_CELL_CASES if c.cell == "gru" and c.bidirectional and c.merge_mode == "sum"
                and c.return_state and c.layers == 1)
    expected, actual = harness.layer_parity(case, rng)
    assert sorted(actual) == sorted(expected) == ["L0.h_b", "L0.h_f", "L0.output"]


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
    """What the default run keeps of the LSTM product (``-m slow`` runs the rest): each layer kind meets each
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


# ---------------------------------------------------------------- models: GRU, SimpleRNN, the LSTM's other options

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


# ---------------------------------------------------------------- float64: GRU and SimpleRNN

FLOAT64_LAYER_CASES = [c for c in CELL_COMPILED_CASES if not c.cell_config.options()]
FLOAT64_MODEL_CASES = [c for c in DEFAULT_MODEL_CASES if c.direction == "bidirectional" and c.merge_mode == "sum"
                       and c.layers == 1]


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


# ---------------------------------------------------------------- training: GRU and SimpleRNN

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


def test_smoke_takes_one_default_case_per_cell_and_merge_mode():
    """make smoke's parity cases: every cell meets every merge mode once, all from the default selection."""
    from reference import CELLS as ALL_CELLS, MERGE_MODES
    picked = smoke_cases(DEFAULT_CASES + DEFAULT_CELL_CASES)
    assert sorted((c.cell, c.merge_mode) for c in picked) == sorted((c, m) for c in ALL_CELLS for m in MERGE_MODES)

