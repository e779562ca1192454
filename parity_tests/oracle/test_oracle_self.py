"""The oracle against itself: each public function agrees with a slower, more literal composition, for
every cell (LSTM, GRU, SimpleRNN) and the option sets that change its equations. NumPy only.

No Keras here: these tests pin the oracle's own semantics (those of ``docs/keras-behaviour.md``) so that
a parity failure against Keras points at Keras or at the layout, not at the oracle. Each cell's step
against its equations written out here from Keras's source, the time loop against stepping the cell by
hand, masking, ``go_backwards``, ``return_state``, the two ``initial_output`` conventions and the
Bidirectional merge against literal loops, BPTT against central finite differences for every option set,
and the named errors for bad input. The fused LSTM against the literal loop: ``test_lstm_fused.py``.

Sizes differ in every dimension (B=3, T=7, D=4, U=5), weights are random and non-symmetric, initial
states non-zero; the finite-difference tests use test_gradcheck's smaller MIXED_MASK sizes (one forward
pass per checked entry).
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from reference.activations import activate
from reference.cells import Cell, CellWeights
from reference.recurrent import run_cell
from reference.rnn import backward
from keras_impl.parity.tolerances import FLOAT64_SELF_ABS, GRADCHECK_REL
from parity_tests.oracle.test_gradcheck import MIXED_MASK, chosen_indices, relative_error
from parity_tests.oracle.test_gradcheck import numeric_gradient as gradcheck_stencil


B, T, D, U = 3, 7, 4, 5
MASKS = {
    "right_padding": np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]], bool),
    "left_padding": np.array([[1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]], bool),
    "holes": np.array([[1, 0, 1, 1, 0, 1, 1], [0, 1, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1, 0]], bool),
    "fully_masked_row": np.array([[1, 1, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]], bool),
}
# Every cell with the option sets that change its equations; "lstm" is Keras's default LSTM (the fast loop).
CELLS = {
    "lstm": Cell("lstm"),
    "lstm_hard_sigmoid_linear": Cell("lstm", recurrent_activation="hard_sigmoid", activation="linear"),
    "lstm_sigmoid_no_bias": Cell("lstm", activation="sigmoid", use_bias=False),
    "gru": Cell("gru"),
    "gru_reset_before": Cell("gru", reset_after=False),
    "gru_hard_sigmoid_relu": Cell("gru", recurrent_activation="hard_sigmoid", activation="relu"),
    "gru_no_bias": Cell("gru", use_bias=False),
    "simple_rnn": Cell("simple_rnn"),
    "simple_rnn_relu": Cell("simple_rnn", activation="relu"),
    "simple_rnn_linear_no_bias": Cell("simple_rnn", activation="linear", use_bias=False),
}
# The options change neither the merge nor the alignment of the two directions: one cell of each kind.
KINDS = ["lstm", "gru", "simple_rnn"]
MASK_NAMES = pytest.mark.parametrize("mask_name", list(MASKS))
SOME_MASK_NAMES = pytest.mark.parametrize("mask_name", [None, *MASKS], ids=lambda m: m or "no_mask")


def close(actual, expected, what=""):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=FLOAT64_SELF_ABS, err_msg=what)


def draw(cell: Cell, rng, features=D, units=U):
    """(kernel, recurrent_kernel, bias or None), random and away from zero."""
    arrays = []
    for _, shape in cell.weight_roles(features, units):
        w = rng.uniform(-0.6, 0.6, size=shape)
        arrays.append(w + np.where(w >= 0, 0.05, -0.05))
    return tuple(arrays) if cell.use_bias else (*arrays, None)


def draw_states(cell: Cell, rng, directions=1, batch=B, units=U):
    """Non-zero initial states, ``cell.state_names`` order, forward direction first."""
    return [rng.uniform(-0.8, 0.8, size=(batch, units)) for _ in range(directions * len(cell.state_names))]


# ---------------------------------------------------------------- the equations, written out from Keras's source

ACTIVATIONS = {  # keras/src/activations/activations.py; hard_sigmoid: keras/src/backend/numpy/nn.py L115-122
    "tanh": np.tanh,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "hard_sigmoid": lambda a: np.clip(a / 6 + 0.5, 0, 1),
    "relu": lambda a: np.maximum(a, 0),
    "linear": lambda a: a,
}


def textbook_step(cell: Cell, x_t, states, kernel, recurrent_kernel, bias):
    """One step of ``cell`` written out independently of ``reference``, gates by name; states in, states out."""
    act, ract = ACTIVATIONS[cell.activation], ACTIVATIONS[cell.recurrent_activation]
    units = recurrent_kernel.shape[0]
    bias = np.zeros(cell.bias_shape(units)) if bias is None else bias
    if cell.kind == "lstm":  # keras/src/layers/rnn/lstm.py L221-228 and L286: g = act(a_g), h' = o act(c')
        h, c = states
        W_i, W_f, W_c, W_o = np.split(kernel, 4, axis=1)
        R_i, R_f, R_c, R_o = np.split(recurrent_kernel, 4, axis=1)
        b_i, b_f, b_c, b_o = np.split(bias, 4)
        i = ract(x_t @ W_i + h @ R_i + b_i)
        f = ract(x_t @ W_f + h @ R_f + b_f)
        g = act(x_t @ W_c + h @ R_c + b_c)
        o = ract(x_t @ W_o + h @ R_o + b_o)
        c = f * c + i * g
        return o * act(c), c
    if cell.kind == "gru":  # keras/src/layers/rnn/gru.py L257-294 (implementation=2), both reset_after forms
        (h,) = states
        W_z, W_r, W_h = np.split(kernel, 3, axis=1)
        R_z, R_r, R_h = np.split(recurrent_kernel, 3, axis=1)
        if cell.reset_after:
            (bi_z, bi_r, bi_h), (br_z, br_r, br_h) = np.split(bias[0], 3), np.split(bias[1], 3)
            z = ract(x_t @ W_z + bi_z + h @ R_z + br_z)
            r = ract(x_t @ W_r + bi_r + h @ R_r + br_r)
            hh = act(x_t @ W_h + bi_h + r * (h @ R_h + br_h))
        else:
            b_z, b_r, b_h = np.split(bias, 3)
            z = ract(x_t @ W_z + b_z + h @ R_z)
            r = ract(x_t @ W_r + b_r + h @ R_r)
            hh = act(x_t @ W_h + b_h + (r * h) @ R_h)
        return (z * h + (1 - z) * hh,)
    (h,) = states  # keras/src/layers/rnn/simple_rnn.py L154-172: act(x W + b + h R)
    return (act(x_t @ kernel + bias + h @ recurrent_kernel),)


def textbook_loop(cell: Cell, x, weights, states, mask=None, zero_output=False):
    """Time-ordered loop over ``textbook_step`` with Keras's masking rule: (outputs (B, T, U), final states)."""
    states, outputs = tuple(states), []
    for t in range(x.shape[1]):
        new = textbook_step(cell, x[:, t], states, *weights)
        m = np.ones((x.shape[0], 1), bool) if mask is None else mask[:, t, None]
        states = tuple(np.where(m, n, s) for n, s in zip(new, states))
        outputs.append(np.where(m, states[0], 0.0) if zero_output else states[0])
    return np.stack(outputs, axis=1), states


def keras_previous_output_loop(cell: Cell, x, weights, states, mask, initial_output):
    """Keras's masked loop as TensorFlow and torch write it (keras/src/backend/tensorflow/rnn.py L341-391):
    a masked step repeats ``prev_output``, which starts at zeros ("zeros") or at h0 ("h0", JAX's
    ``output_tm1 = states[0]``) and is each step's output. Returns (outputs (B, T, U), final states)."""
    states = tuple(states)
    prev_output = np.zeros_like(states[0]) if initial_output == "zeros" else states[0]
    outputs = []
    for t in range(x.shape[1]):
        new = textbook_step(cell, x[:, t], states, *weights)
        m = mask[:, t, None]
        output = np.where(m, new[0], prev_output)
        states = tuple(np.where(m, n, s) for n, s in zip(new, states))
        outputs.append(output)
        prev_output = output
    return np.stack(outputs, axis=1), states


def forward_fn(cell: Cell):
    """The public function for ``cell`` with its options bound (a None bias is use_bias=False)."""
    if cell.kind == "gru":
        return lambda *a, **k: reference.gru_forward(*a, reset_after=cell.reset_after, activation=cell.activation,
                                                     recurrent_activation=cell.recurrent_activation, **k)
    if cell.kind == "simple_rnn":
        return lambda *a, **k: reference.simple_rnn_forward(*a, activation=cell.activation, **k)
    return lambda *a, **k: reference.lstm_forward(*a, activation=cell.activation,
                                                  recurrent_activation=cell.recurrent_activation, **k)


def bidirectional_fn(cell: Cell):
    """``reference.bidirectional_forward`` with ``cell`` and its options bound."""
    return lambda *a, **k: reference.bidirectional_forward(*a, cell=cell.kind, activation=cell.activation,
                                                           recurrent_activation=cell.recurrent_activation,
                                                           reset_after=cell.reset_after, **k)


def public_step(name: str):
    """The oracle's public one-step function for ``CELLS[name]``: ``lstm_cell`` for the default LSTM."""
    if name == "lstm":
        return lambda x_t, states, W, R, b: reference.lstm_cell(x_t, *states, W, R, b)[:2]
    return lambda x_t, states, W, R, b: reference.cell_step(CELLS[name], x_t, states, W, R, b)


def test_hard_sigmoid_is_keras_3s():
    # keras/src/backend/numpy/nn.py L115-122: clip(x / 6 + 0.5, 0, 1); Keras 2's was clip(0.2 x + 0.5, 0, 1).
    a = np.array([-4.0, -3.0, -1.5, 0.0, 1.5, 2.5, 3.0, 4.0])
    np.testing.assert_array_equal(activate("hard_sigmoid", a), [0.0, 0.0, 0.25, 0.5, 0.75, 2.5 / 6 + 0.5, 1.0, 1.0])


# The cells of the loop tests and two option sets that only the step test needs: SimpleRNN's linear with a
# bias, the LSTM's activation on both the candidate and the cell state (relu) with hard_sigmoid gates.
EQUATION_CELLS = {**CELLS, "simple_rnn_linear": Cell("simple_rnn", activation="linear"),
                  "lstm_relu_hard_sigmoid": Cell("lstm", activation="relu", recurrent_activation="hard_sigmoid")}


@pytest.mark.parametrize("name", EQUATION_CELLS)
def test_cell_matches_textbook_equations(name, rng):
    cell = EQUATION_CELLS[name]
    W, R, b = draw(cell, rng)
    x_t, states = rng.normal(size=(B, D)), draw_states(cell, rng)
    got = reference.cell_step(cell, x_t, states, W, R, b)
    want = textbook_step(cell, x_t, states, W, R, b)
    assert len(got) == len(cell.state_names)
    for state, a, e in zip(cell.state_names, got, want):
        close(a, e, state)
    if name == "lstm":  # the public one-step function of the default LSTM, and its gates
        h_new, c_new, gates = reference.lstm_cell(x_t, *states, W, R, b)
        close(h_new, want[0], "lstm_cell h")
        close(c_new, want[1], "lstm_cell c")
        assert gates.shape == (B, 4 * U)


def test_the_two_gru_forms_differ(rng):
    # The same numbers in both forms (the recurrent bias dropped) must give different states: reset_after matters.
    x_t, h = rng.normal(size=(B, D)), rng.uniform(-0.8, 0.8, (B, U))
    W, R, b = draw(Cell("gru"), rng)
    (after,) = reference.cell_step(Cell("gru"), x_t, (h,), W, R, np.stack([b[0], np.zeros(3 * U)]))
    (before,) = reference.cell_step(Cell("gru", reset_after=False), x_t, (h,), W, R, b[0])
    assert np.abs(after - before).max() > 1e-3


@pytest.mark.parametrize("name", CELLS)
def test_cell_is_pure(name, rng):
    cell = CELLS[name]
    W, R, b = draw(cell, rng)
    x_t, states = rng.normal(size=(B, D)), draw_states(cell, rng)
    arrays = [a for a in (x_t, *states, W, R, b) if a is not None]
    before = [a.copy() for a in arrays]
    public_step(name)(x_t, states, W, R, b)
    for a, was in zip(arrays, before):
        np.testing.assert_array_equal(a, was)


# ---------------------------------------------------------------- the loop

@pytest.mark.parametrize("name", CELLS)
def test_stepping_the_cell_equals_the_sequence_loop(name, rng):
    cell = CELLS[name]
    W, R, b = draw(cell, rng)
    x, states = rng.normal(size=(B, T, D)), tuple(draw_states(cell, rng))
    out, *final = forward_fn(cell)(x, W, R, b, initial_state=list(states), return_sequences=True, return_state=True)
    step = public_step(name)
    for t in range(T):
        states = step(x[:, t], states, W, R, b)
        close(out[:, t], states[0], f"output at t={t}")
    assert len(final) == len(cell.state_names), "return_state gives one array per state"
    for state, got, want in zip(cell.state_names, final, states):
        close(got, want, f"{state}_T")


@pytest.mark.parametrize("name", CELLS)
def test_sequence_loop_matches_textbook_loop(name, rng):
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x = rng.normal(size=(B, T, D))
    out, *final = forward_fn(cell)(x, *weights, initial_state=init, return_sequences=True, return_state=True)
    out_ref, final_ref = textbook_loop(cell, x, weights, init)
    close(out, out_ref, "outputs")
    for state, a, e in zip(cell.state_names, final, final_ref):
        close(a, e, state)


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("name", CELLS)
def test_return_state_order_is_output_then_states(name, rng, return_sequences):
    """(output, h) or (output, h, c): the states in ``state_names`` order, the last output equal to h."""
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x = rng.normal(size=(B, T, D))
    result = forward_fn(cell)(x, *weights, initial_state=init, return_sequences=return_sequences, return_state=True)
    assert isinstance(result, tuple) and len(result) == 1 + len(cell.state_names)
    _, final_ref = textbook_loop(cell, x, weights, init)
    for state, a, e in zip(cell.state_names, result[1:], final_ref):
        close(a, e, state)
    last = result[0][:, -1] if return_sequences else result[0]
    close(last, result[1], "last output equals h")
    if cell.kind == "lstm":
        assert not np.allclose(result[1], result[2])  # h and c really are different arrays


def test_initial_state_order_is_h_then_c(rng):
    weights, (h0, c0) = draw(CELLS["lstm"], rng), draw_states(CELLS["lstm"], rng)
    x = rng.normal(size=(B, 1, D))
    out = reference.lstm_forward(x, *weights, initial_state=[h0, c0])
    h_ref, _ = textbook_step(CELLS["lstm"], x[:, 0], (h0, c0), *weights)
    close(out, h_ref)
    swapped = reference.lstm_forward(x, *weights, initial_state=[c0, h0])
    assert np.abs(swapped - out).max() > 1e-3


def test_lstm_forward_with_default_options_takes_the_fast_loop_and_others_do_not():
    assert Cell("lstm").fast_lstm
    assert not Cell("lstm", activation="relu").fast_lstm and not Cell("lstm", use_bias=False).fast_lstm
    assert not Cell("gru").fast_lstm


@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@pytest.mark.parametrize("zero_output", [False, True], ids=["previous_output", "zero_output"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@SOME_MASK_NAMES
@pytest.mark.parametrize("name", CELLS)
def test_inference_loop_equals_training_loop(name, rng, mask_name, go_backwards, zero_output, initial_output):
    """``keep_cache=False`` (what the forward functions run) keeps two cell states instead of T: same numbers,
    no cache."""
    cell = CELLS[name]
    x, weights, init = rng.normal(size=(B, T, D)), draw(cell, rng), tuple(draw_states(cell, rng))
    mask = None if mask_name is None else MASKS[mask_name]
    kwargs = dict(go_backwards=go_backwards, zero_output_for_mask=zero_output, initial_output=initial_output)
    out, final, cache = run_cell(cell, x, weights, init, mask, **kwargs)
    out_inf, final_inf, no_cache = run_cell(cell, x, weights, init, mask, keep_cache=False, **kwargs)
    assert cache is not None and no_cache is None
    assert len(final) == len(final_inf) == len(cell.state_names)
    for what, a, b in zip(("outputs", *cell.state_names), (out_inf, *final_inf), (out, *final)):
        np.testing.assert_array_equal(a, b, err_msg=what)


# ---------------------------------------------------------------- go_backwards

@SOME_MASK_NAMES
@pytest.mark.parametrize("name", CELLS)
def test_go_backwards_equals_forward_on_flipped_input(name, rng, mask_name):
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x = rng.normal(size=(B, T, D))
    mask = None if mask_name is None else MASKS[mask_name]
    backward_run = forward_fn(cell)(x, *weights, initial_state=init, mask=mask, go_backwards=True,
                                    return_sequences=True, return_state=True)
    flipped = forward_fn(cell)(x[:, ::-1], *weights, initial_state=init, mask=None if mask is None else mask[:, ::-1],
                               return_sequences=True, return_state=True)
    assert len(backward_run) == len(flipped) == 1 + len(cell.state_names)
    for what, a, b in zip(("outputs (processing order)", *cell.state_names), backward_run, flipped):
        close(a, b, what)


@pytest.mark.parametrize("name", CELLS)
def test_go_backwards_last_output_is_state_after_reading_first_step(name, rng):
    cell = CELLS[name]
    weights = draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    last = forward_fn(cell)(x, *weights, go_backwards=True)
    zeros = [np.zeros((B, U)) for _ in cell.state_names]
    _, final = textbook_loop(cell, x[:, ::-1], weights, zeros)
    close(last, final[0])


# ---------------------------------------------------------------- masking

@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("name", CELLS)
def test_all_ones_mask_equals_no_mask(name, rng, return_sequences):
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x = rng.normal(size=(B, T, D))
    kwargs = dict(initial_state=init, return_sequences=return_sequences, return_state=True)
    with_mask = forward_fn(cell)(x, *weights, mask=np.ones((B, T), bool), **kwargs)
    without = forward_fn(cell)(x, *weights, **kwargs)
    assert len(with_mask) == len(without) == 1 + len(cell.state_names)
    for a, b in zip(with_mask, without):
        close(a, b)


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("name", KINDS)
def test_all_ones_mask_equals_no_mask_bidirectional(name, rng, return_sequences):
    cell = CELLS[name]
    fwd, bwd, init = draw(cell, rng), draw(cell, rng), draw_states(cell, rng, directions=2)
    x = rng.normal(size=(B, T, D))
    kwargs = dict(initial_state=init, return_sequences=return_sequences, return_state=True)
    with_mask = bidirectional_fn(cell)(x, fwd, bwd, mask=np.ones((B, T), int), **kwargs)
    without = bidirectional_fn(cell)(x, fwd, bwd, **kwargs)
    assert len(with_mask) == len(without) == 1 + 2 * len(cell.state_names)
    for a, b in zip(with_mask, without):
        close(a, b)


@MASK_NAMES
@pytest.mark.parametrize("zero_output", [False, True], ids=["previous_output", "zero_output"])
@pytest.mark.parametrize("name", CELLS)
def test_masked_steps_carry_state_and_output(name, rng, mask_name, zero_output):
    """At a masked step the state is carried; the output is the previous one (h0 at leading steps) or 0."""
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    out, *final = forward_fn(cell)(x, *weights, initial_state=init, mask=mask, return_sequences=True,
                                   return_state=True, zero_output_for_mask=zero_output)
    out_ref, final_ref = textbook_loop(cell, x, weights, init, mask, zero_output)
    close(out, out_ref, "outputs")
    for state, a, e in zip(cell.state_names, final, final_ref):
        close(a, e, state)
    carried = np.concatenate([init[0][:, None], out[:, :-1]], axis=1)  # (B, T, U): the output one step earlier
    expected_at_masked = np.zeros_like(out) if zero_output else carried
    np.testing.assert_array_equal(out[~mask], expected_at_masked[~mask])


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@MASK_NAMES
@pytest.mark.parametrize("name", CELLS)
def test_initial_output_is_the_first_previous_output(name, rng, mask_name, initial_output, go_backwards,
                                                     return_sequences):
    """``initial_output`` against a literal transcription of Keras's previous-output loop, both conventions."""
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    out, *final = forward_fn(cell)(x, *weights, initial_state=init, mask=mask, go_backwards=go_backwards,
                                   return_sequences=return_sequences, return_state=True,
                                   initial_output=initial_output)
    flip = (lambda a: a[:, ::-1]) if go_backwards else (lambda a: a)  # processing order
    out_ref, final_ref = keras_previous_output_loop(cell, flip(x), weights, init, flip(mask), initial_output)
    close(out, out_ref if return_sequences else out_ref[:, -1], "outputs")
    for state, a, e in zip(cell.state_names, final, final_ref):
        close(a, e, state)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@MASK_NAMES
@pytest.mark.parametrize("name", CELLS)
def test_the_two_conventions_differ_only_before_the_first_valid_step(name, rng, mask_name, go_backwards):
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    kwargs = dict(initial_state=init, mask=mask, go_backwards=go_backwards, return_sequences=True, return_state=True)
    (out_h0, *states_h0), (out_zeros, *states_zeros) = (
        forward_fn(cell)(x, *weights, initial_output=io, **kwargs) for io in ("h0", "zeros"))
    for a, b in zip(states_h0, states_zeros, strict=True):
        np.testing.assert_array_equal(a, b)  # the states never depend on the convention
    in_order = mask[:, ::-1] if go_backwards else mask  # processing order
    seen = np.logical_or.accumulate(in_order, axis=1)
    np.testing.assert_array_equal(out_zeros[seen], out_h0[seen])
    assert np.all(out_zeros[~seen] == 0.0)
    np.testing.assert_array_equal(out_h0[~seen], np.broadcast_to(init[0][:, None], out_h0.shape)[~seen])


@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("name", KINDS)
def test_bidirectional_initial_output(name, rng, return_sequences, initial_output):
    """With return_sequences the copies zero masked steps (no convention shows); without, a row with
    no valid step outputs h0 of each direction, or 0."""
    cell = CELLS[name]
    fwd, bwd, init = draw(cell, rng), draw(cell, rng), draw_states(cell, rng, directions=2)
    x, mask = rng.normal(size=(B, T, D)), MASKS["fully_masked_row"]
    kwargs = dict(merge_mode=None, initial_state=init, mask=mask, return_sequences=return_sequences,
                  return_state=True)
    y_f, y_b, *rest = bidirectional_fn(cell)(x, fwd, bwd, initial_output=initial_output, **kwargs)
    other = bidirectional_fn(cell)(x, fwd, bwd, initial_output={"h0": "zeros", "zeros": "h0"}[initial_output],
                                   **kwargs)
    assert len(rest) == len(other[2:]) == 2 * len(cell.state_names)
    for a, b in zip(rest, other[2:]):
        np.testing.assert_array_equal(a, b)
    if return_sequences:
        np.testing.assert_array_equal(y_f, other[0])
        np.testing.assert_array_equal(y_b, other[1])
    else:
        h0_f, h0_b = init[0], init[len(cell.state_names)]
        expected_f, expected_b = (h0_f[1], h0_b[1]) if initial_output == "h0" else (0.0, 0.0)
        np.testing.assert_array_equal(y_f[1], np.broadcast_to(expected_f, (U,)))
        np.testing.assert_array_equal(y_b[1], np.broadcast_to(expected_b, (U,)))
        close(y_f[[0, 2]], other[0][[0, 2]])  # rows with valid steps: the last output is the state either way


def test_initial_output_is_checked_by_name(rng):
    weights = draw(CELLS["lstm"], rng)
    x = rng.normal(size=(B, T, D))
    with pytest.raises(ValueError, match="initial_output"):
        reference.lstm_forward(x, *weights, initial_output="zero")
    with pytest.raises(TypeError, match="initial_output"):
        reference.bidirectional_forward(x, weights, weights, initial_output=None)


@MASK_NAMES
@pytest.mark.parametrize("name", CELLS)
def test_masked_final_state_equals_the_cell_on_the_valid_steps_alone(name, rng, mask_name):
    """Dropping the masked steps from each row gives the same final state, both directions: against the
    forward function on the valid steps alone and against stepping the cell by hand over them."""
    cell = CELLS[name]
    weights, init = draw(cell, rng), draw_states(cell, rng)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    for go_backwards in (False, True):
        _, *final = forward_fn(cell)(x, *weights, initial_state=init, mask=mask, go_backwards=go_backwards,
                                     return_state=True)
        for row in range(B):
            row_init = [s[row:row + 1] for s in init]
            valid_steps = np.flatnonzero(mask[row])[::-1 if go_backwards else 1]
            stepped = tuple(row_init)
            for t in valid_steps:
                stepped = reference.cell_step(cell, x[row:row + 1, t], stepped, *weights)
            if valid_steps.size == 0:
                alone = row_init
            else:
                _, *alone = forward_fn(cell)(x[row:row + 1, mask[row]], *weights, initial_state=row_init,
                                             go_backwards=go_backwards, return_state=True)
            for state, got, by_hand, by_layer in zip(cell.state_names, final, stepped, alone, strict=True):
                where = f"{state} row {row} go_backwards={go_backwards}"
                close(got[row], np.reshape(by_hand, -1), f"{where} (stepped by hand)")
                close(got[row], np.reshape(by_layer, -1), f"{where} (valid steps alone)")


# ---------------------------------------------------------------- Bidirectional

def separate_directions(cell: Cell, x, fwd, bwd, init, mask, return_sequences):
    """Both directions with the single-layer function, as Keras's Bidirectional runs them."""
    n = len(cell.state_names)
    zero = return_sequences  # Bidirectional sets zero_output_for_mask = return_sequences on both copies
    y_f, *s_f = forward_fn(cell)(x, *fwd, initial_state=init[:n], mask=mask, return_sequences=return_sequences,
                                 return_state=True, zero_output_for_mask=zero)
    y_b, *s_b = forward_fn(cell)(x, *bwd, initial_state=init[n:], mask=mask, go_backwards=True,
                                 return_sequences=return_sequences, return_state=True, zero_output_for_mask=zero)
    if return_sequences:
        y_b = y_b[:, ::-1]  # back to time order
    return y_f, y_b, (*s_f, *s_b)


MERGES = {
    "concat": lambda f, b: np.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "ave": lambda f, b: 0.5 * (f + b),
    "mul": lambda f, b: f * b,
}


def test_the_merges_written_here_are_the_models():
    assert set(MERGES) == set(reference.MODEL_MERGE_MODES)


@SOME_MASK_NAMES
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("merge_mode", [*MERGES, None], ids=str)
@pytest.mark.parametrize("name", KINDS)
def test_bidirectional_is_the_merge_of_two_directions(name, rng, merge_mode, return_sequences, mask_name):
    cell = CELLS[name]
    fwd, bwd, init = draw(cell, rng), draw(cell, rng), draw_states(cell, rng, directions=2)
    x = rng.normal(size=(B, T, D))
    mask = None if mask_name is None else MASKS[mask_name]
    result = bidirectional_fn(cell)(x, fwd, bwd, merge_mode=merge_mode, initial_state=init, mask=mask,
                                    return_sequences=return_sequences, return_state=True)
    y_f, y_b, states_ref = separate_directions(cell, x, fwd, bwd, init, mask, return_sequences)
    if merge_mode is None:
        assert len(result) == 2 + len(states_ref)
        outputs, got_states = result[:2], result[2:]
        close(outputs[0], y_f, "forward half")
        close(outputs[1], y_b, "backward half")
    else:
        assert len(result) == 1 + len(states_ref)
        outputs, got_states = result[0], result[1:]
        close(outputs, MERGES[merge_mode](y_f, y_b), f"merged {merge_mode}")
    names = [f"{s}_{d}" for d in "fb" for s in cell.state_names]  # one set of states a direction
    for what, a, b in zip(names, got_states, states_ref, strict=True):
        close(a, b, what)


@pytest.mark.parametrize("name", KINDS)
def test_bidirectional_without_return_state_is_the_merged_array(name, rng):
    cell = CELLS[name]
    fwd, bwd = draw(cell, rng), draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    y = bidirectional_fn(cell)(x, fwd, bwd, return_sequences=True)
    assert isinstance(y, np.ndarray) and y.shape == (B, T, 2 * U)
    pair = bidirectional_fn(cell)(x, fwd, bwd, merge_mode=None)
    assert isinstance(pair, tuple) and [p.shape for p in pair] == [(B, U), (B, U)]


@pytest.mark.parametrize("name", KINDS)
def test_bidirectional_backward_half_is_time_aligned_by_hand(name, rng):
    """Independent of the single-layer functions: the backward half at t has read x[T-1] .. x[t]."""
    cell = CELLS[name]
    fwd, bwd, init = draw(cell, rng), draw(cell, rng), draw_states(cell, rng, directions=2)
    x = rng.normal(size=(B, T, D))
    _, y_b = bidirectional_fn(cell)(x, fwd, bwd, merge_mode=None, initial_state=init, return_sequences=True)
    for t in range(T):
        _, final = textbook_loop(cell, x[:, t:][:, ::-1], bwd, init[len(cell.state_names):])
        close(y_b[:, t], final[0], f"backward half at t={t}")


@MASK_NAMES
@pytest.mark.parametrize("name", KINDS)
def test_bidirectional_sequences_are_zero_at_masked_steps(name, rng, mask_name):
    cell = CELLS[name]
    fwd, bwd, init = draw(cell, rng), draw(cell, rng), draw_states(cell, rng, directions=2)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    y_f, y_b = bidirectional_fn(cell)(x, fwd, bwd, merge_mode=None, initial_state=init, mask=mask,
                                      return_sequences=True)
    for half, which in ((y_f, "forward"), (y_b, "backward")):
        assert np.all(half[~mask] == 0.0), f"{which} half not zero at masked steps"
        assert np.all(np.abs(half[mask]) > 0.0), f"{which} half zero at a valid step"


@pytest.mark.parametrize("name", KINDS)
def test_bidirectional_last_output_not_zeroed_by_mask(name, rng):
    """Without return_sequences Keras keeps zero_output_for_mask False: a right-padded row returns its last valid h."""
    cell = CELLS[name]
    fwd, bwd, init = draw(cell, rng), draw(cell, rng), draw_states(cell, rng, directions=2)
    x, mask = rng.normal(size=(B, T, D)), MASKS["right_padding"]
    y_f, y_b, *final = bidirectional_fn(cell)(x, fwd, bwd, merge_mode=None, initial_state=init, mask=mask,
                                              return_state=True)
    close(y_f, final[0])
    close(y_b, final[len(cell.state_names)])
    assert np.all(np.abs(y_f) > 0)


def test_a_none_bias_is_use_bias_false(rng):
    cell = Cell("gru", use_bias=False)
    (W1, R1, _), (W2, R2, _) = draw(cell, rng), draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    pair = reference.bidirectional_forward(x, (W1, R1, None), (W2, R2, None), cell="gru", return_sequences=True)
    zero_bias = reference.bidirectional_forward(x, (W1, R1, np.zeros((2, 3 * U))), (W2, R2, np.zeros((2, 3 * U))),
                                                cell="gru", return_sequences=True)
    close(pair, zero_bias)


# ---------------------------------------------------------------- the model

def manual_model(spec, weights, x, mask):
    """``model_forward`` composed by hand from the public layer functions."""
    cell = spec.cell_config
    if spec.mask_value is not None:
        mask = np.any(x != spec.mask_value, axis=-1)
        x = np.where(mask[..., None], x, 0.0)
    n = cell.weight_count  # a direction's arrays: no bias array for use_bias=False

    def layer_weights(k):
        return (*weights[k:k + n], None) if n == 2 else tuple(weights[k:k + n])

    h, k = x, 0
    for _ in spec.layer_units:
        if spec.bidirectional:
            h = bidirectional_fn(cell)(h, layer_weights(k), layer_weights(k + n), merge_mode=spec.merge_mode,
                                       mask=mask, return_sequences=True)
            k += 2 * n
        else:
            h = forward_fn(cell)(h, *layer_weights(k), mask=mask, go_backwards=spec.direction == "backward",
                                 return_sequences=True)
            k += n
    logits = h @ weights[k] + weights[k + 1]  # (B, T, 1)
    return 1.0 / (1.0 + np.exp(-logits))


MODEL_SPECS = {
    "forward_1layer": reference.ModelSpec(timesteps=T, features=D, units=U, direction="forward"),
    "backward_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, 6), direction="backward"),
    "bi_concat_2layers_masking": reference.ModelSpec(timesteps=T, features=D, units=(U, 6), mask_value=0.0),
    "bi_sum_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, 6), merge_mode="sum"),
    "bi_ave_masking": reference.ModelSpec(timesteps=T, features=D, units=U, merge_mode="ave", mask_value=-1.0),
    "bi_mul_2layers_masking": reference.ModelSpec(timesteps=T, features=D, units=(U, 6), merge_mode="mul",
                                                  mask_value=0.5),
    "backward_masking": reference.ModelSpec(timesteps=T, features=D, units=(U, 6), direction="backward",
                                            mask_value=0.0),
    "gru_reset_before_bi_concat_2layers_masking": reference.ModelSpec(timesteps=T, features=D, units=(U, 6),
                                                                      cell="gru", reset_after=False, mask_value=0.0),
    "gru_no_bias_backward": reference.ModelSpec(timesteps=T, features=D, units=U, cell="gru", use_bias=False,
                                                direction="backward"),
    "simple_rnn_relu_bi_sum_masking": reference.ModelSpec(timesteps=T, features=D, units=U, cell="simple_rnn",
                                                          activation="relu", merge_mode="sum", mask_value=0.0),
    "lstm_sigmoid_no_bias_forward_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, 6),
                                                                activation="sigmoid", use_bias=False,
                                                                direction="forward"),
}


@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_model_forward_equals_manual_composition(rng, name):
    spec = MODEL_SPECS[name]
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(B, T, D))
    if spec.mask_value is not None:
        x[~MASKS["holes"]] = spec.mask_value  # whole masked steps hold the mask value
        x[0, 0, 0] = spec.mask_value          # one feature equal to it does not mask the step
    probs = reference.model_forward(spec, weights, x)
    assert probs.shape == (B, T, 1)
    close(probs, manual_model(spec, weights, x, None))


def test_masking_layer_equals_explicit_mask_on_zeroed_input(rng):
    masked_spec = MODEL_SPECS["bi_concat_2layers_masking"]
    plain_spec = reference.ModelSpec(timesteps=T, features=D, units=(U, 6))
    weights = reference.random_weights(masked_spec, rng)
    x, mask = rng.normal(size=(B, T, D)), MASKS["holes"]
    x[~mask] = 0.0
    close(reference.model_forward(masked_spec, weights, x),
          reference.model_forward(plain_spec, weights, x, mask=mask))


# ---------------------------------------------------------------- BPTT

# Finite differences cost a forward pass per checked entry: test_gradcheck's smaller sizes and its MIXED_MASK
# (right padding, left padding, holes, a fully masked row).
GB, GT = MIXED_MASK.shape
GD, GU = 2, 3
# The default LSTM's gradients are test_gradcheck's: here every other option set.
OPTION_CELLS = {name: cell for name, cell in CELLS.items() if name != "lstm"}

# test_gradcheck's fourth-order stencil with a step 100x smaller: relu and hard_sigmoid have corners, and
# a stencil 2 STEP wide that straddles one reads a wrong slope (seen at 1e-3 on a relu SimpleRNN). At 1e-5
# the rounding error (1e-16 / STEP, about 1e-11) still stays far below GRADCHECK_REL.
STEP = 1e-5


def numeric_gradient(loss, array: np.ndarray, indices) -> np.ndarray:
    """test_gradcheck's stencil with this file's smaller step (1e-3 would straddle relu's kink)."""
    return gradcheck_stencil(loss, array, indices, step=STEP)


def tensor_relative_error(numeric, analytic, indices) -> float:
    """max |numeric - analytic| over ``indices`` / max |analytic| over the WHOLE tensor.

    relu and hard_sigmoid leave many entries exactly 0 (a dead unit, a saturated gate): relative
    to the checked entries alone, rounding noise of 1e-17 against an exact 0 would read 100%.
    """
    rows = tuple(np.array(indices).T)
    scale = np.abs(analytic).max()
    return float(np.abs(numeric[rows] - analytic[rows]).max() / scale) if scale > 0 else float(np.abs(numeric[rows]).max())


MODEL_KINDS = {"forward": dict(direction="forward"), "backward": dict(direction="backward"),
               "bidi_concat": dict(direction="bidirectional", merge_mode="concat"),
               "bidi_mul": dict(direction="bidirectional", merge_mode="mul")}
SPEC_OPTIONS = {name: dict(cell=c.kind, activation=c.activation, recurrent_activation=c.recurrent_activation,
                           use_bias=c.use_bias, reset_after=c.reset_after) for name, c in OPTION_CELLS.items()}


# The default run: each model kind once, each mask source at least once; ``-m slow`` the whole product.
DEFAULT_GRADIENT_KINDS = [("forward", "masking_layer"), ("backward", "mask_argument"), ("bidi_mul", "mask_argument"),
                          ("bidi_concat", "no_mask")]
GRADIENT_PARAMS = [
    pytest.param(name, kind, mask_source, id=f"{name}-{kind}-{mask_source}",
                 marks=[] if (kind, mask_source) in DEFAULT_GRADIENT_KINDS else [pytest.mark.slow])
    for name in OPTION_CELLS for kind in MODEL_KINDS for mask_source in ("no_mask", "mask_argument", "masking_layer")]


@pytest.mark.parametrize("name, kind, mask_source", GRADIENT_PARAMS)
def test_gradients_match_finite_differences(name, kind, mask_source, rng):
    spec = reference.ModelSpec(timesteps=GT, features=GD, units=GU, **MODEL_KINDS[kind], **SPEC_OPTIONS[name],
                               mask_value=0.0 if mask_source == "masking_layer" else None)
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(GB, GT, GD))
    y = (rng.random((GB, GT, 1)) < 0.5).astype(np.float64)
    mask = MIXED_MASK if mask_source == "mask_argument" else None
    if mask_source == "masking_layer":
        x[~MIXED_MASK] = 0.0
    loss_mask = MIXED_MASK if mask_source != "no_mask" else None
    _, grads, dx = reference.loss_grads_and_input_grad(spec, weights, x, y, mask)

    def loss() -> float:
        return reference.binary_crossentropy(y, reference.model_forward(spec, weights, x, mask), loss_mask)

    errors = {}
    for k, (role, _) in enumerate(spec.weight_roles()):
        indices = chosen_indices(weights[k].shape, 10, rng)
        errors[f"weights[{k}] {role}"] = tensor_relative_error(numeric_gradient(loss, weights[k], indices), grads[k],
                                                               indices)
    indices = [i for i in chosen_indices(x.shape, 12, rng) if mask_source != "masking_layer" or MIXED_MASK[i[:2]]]
    errors["x"] = tensor_relative_error(numeric_gradient(loss, x, indices), dx, indices)
    failing = {n: e for n, e in errors.items() if not e <= GRADCHECK_REL}
    assert not failing, f"{spec.describe()}: relative error above {GRADCHECK_REL}: {failing}"


@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("name", ["gru", "gru_reset_before", "simple_rnn"])
def test_layer_backward_with_initial_state_in_both_conventions(name, go_backwards, initial_output, rng):
    """Non-zero h0, every mask pattern: outputs before a row's first valid step are constants (h0 or 0)."""
    cell = CELLS[name]
    W, R, b = draw(cell, rng, features=GD, units=GU)
    x, h0 = rng.normal(size=(GB, GT, GD)), rng.uniform(-0.8, 0.8, (GB, GU))
    target = rng.normal(size=(GB, GT, GU))

    def loss() -> float:
        out, _, _ = run_cell(cell, x, (W, R, b), (h0,), MIXED_MASK, go_backwards=go_backwards,
                             initial_output=initial_output, keep_cache=False)
        return float(np.sum(out * target))

    _, _, cache = run_cell(cell, x, (W, R, b), (h0,), MIXED_MASK, go_backwards=go_backwards,
                           initial_output=initial_output)
    grads, dx = backward(cache, CellWeights(W, R, b), target)
    for label, array, grad in zip(("kernel", "recurrent_kernel", "bias", "x"), (W, R, b, x), (*grads, dx)):
        indices = list(np.ndindex(array.shape))
        err = relative_error(numeric_gradient(loss, array, indices), grad, indices)
        assert err <= GRADCHECK_REL, f"{label}: relative error {err:.3g}"


@pytest.mark.parametrize("cell_name", ["gru", "simple_rnn"])
def test_train_runs_for_every_cell(cell_name, rng):
    spec = reference.ModelSpec(timesteps=GT, features=GD, units=GU, cell=cell_name)
    weights = reference.random_weights(spec, rng)
    xs, ys = rng.normal(size=(6, GT, GD)), (rng.random((6, GT, 1)) < 0.5).astype(float)
    final, losses = reference.train(spec, weights, xs, ys)
    assert losses.shape == (6,) and np.all(np.isfinite(losses))
    assert all(np.any(w != w0) for w, w0 in zip(final, weights)), "every weight must move"


# ---------------------------------------------------------------- the spec and bad input

def test_an_lstm_spec_reads_as_before_and_others_name_their_cell():
    assert repr(reference.ModelSpec()) == ("ModelSpec(timesteps=10, features=1, units=20, direction='bidirectional', "
                                           "merge_mode='concat', mask_value=None)")
    spec = reference.ModelSpec(cell="gru", reset_after=False)
    assert repr(spec).endswith("cell='gru', reset_after=False)")
    assert spec.describe() == "BiGRU[concat] T=10 D=1 U=20 reset_after=False"
    assert spec.weight_shapes()[:3] == [(1, 60), (20, 60), (60,)]
    assert reference.ModelSpec(cell="gru").weight_shapes()[2] == (2, 60)
    assert reference.ModelSpec(cell="simple_rnn", use_bias=False).weight_shapes()[:3] == [(1, 20), (20, 20), (1, 20)]


def test_keras_init_sets_the_forget_bias_for_lstm_only(rng):
    for cell, ones in (("lstm", 20), ("gru", 0), ("simple_rnn", 0)):
        spec = reference.ModelSpec(cell=cell)
        bias = reference.keras_init_weights(spec, rng)[2]
        assert np.count_nonzero(bias == 1.0) == ones, cell


# The messages name the sizes: the GRU's weights are drawn for GD=2 features and GU=3 units (3*GU = 9).
@pytest.mark.parametrize("call, error, match", [
    (lambda x, W, R, b: reference.gru_forward(x, W, R, b[0]), ValueError, r"reset_after=False.*reset_after=True needs shape \(2, 9\)"),
    (lambda x, W, R, b: reference.gru_forward(x, W, R, b, reset_after=False), ValueError, r"reset_after=True.*reset_after=False needs shape \(9,\)"),
    (lambda x, W, R, b: reference.gru_forward(x, W, R, b, activation="softmax"), ValueError, "activation 'softmax'"),
    (lambda x, W, R, b: reference.gru_forward(x, W, R, b, recurrent_activation=None), TypeError, "recurrent_activation"),
    (lambda x, W, R, b: reference.gru_forward(x, W, R, b, initial_state=[b[0][:3]] * 2), ValueError, r"initial_state must hold 1 arrays \[h\]"),
    (lambda x, W, R, b: reference.gru_forward(x, W[:, :6], R, b), ValueError, r"kernel must have shape \(2, 9\) = \(features, 3\*units\)"),
    (lambda x, W, R, b: reference.simple_rnn_forward(x, W, R, b), ValueError, r"recurrent_kernel must have shape \(units, 1\*units\)"),
    (lambda x, W, R, b: reference.bidirectional_forward(x, (W, R, b), (W, R, b), cell="rnn"), ValueError, "unknown cell 'rnn'"),
    (lambda x, W, R, b: reference.bidirectional_forward(x, (W, R, b), (W, R), cell="gru"), TypeError, "backward_weights must be a"),
    (lambda x, W, R, b: reference.bidirectional_forward(x, (W, R, None), (W, R, b), cell="gru"), ValueError,
     "backward_weights.bias must be None for use_bias=False"),
    (lambda x, W, R, b: reference.ModelSpec(cell="simple_rnn", recurrent_activation="tanh"), ValueError, "SimpleRNN has none"),
    (lambda x, W, R, b: reference.ModelSpec(cell="lstm", reset_after=False), ValueError, "reset_after applies to the gru cell only"),
])
def test_bad_input_is_named(call, error, match, rng):
    W, R, b = draw(Cell("gru"), rng, features=GD, units=GU)
    with pytest.raises(error, match=match):
        call(rng.normal(size=(GB, GT, GD)), W, R, b)
