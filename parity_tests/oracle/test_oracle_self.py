"""The oracle against itself: each public function agrees with a slower, more literal composition.

No Keras here: these tests pin the oracle's own semantics (those of
``docs/keras-behaviour.md``) so that a parity failure against Keras points at
Keras or at the layout, not at the oracle. Sizes differ in every dimension
(B=3, T=7, D=4, U=5), weights are random and non-symmetric, initial states non-zero.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from keras_impl.parity.tolerances import FLOAT64_SELF_ABS


B, T, D, U = 3, 7, 4, 5
MASKS = {
    "right_padding": np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]], bool),
    "left_padding": np.array([[1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]], bool),
    "holes": np.array([[1, 0, 1, 1, 0, 1, 1], [0, 1, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1, 0]], bool),
    "fully_masked_row": np.array([[1, 1, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]], bool),
}


def close(actual, expected, what=""):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=FLOAT64_SELF_ABS, err_msg=what)


def lstm_weights(rng, features=D, units=U):
    """(kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,)), random, away from zero."""
    out = []
    for shape in ((features, 4 * units), (units, 4 * units), (4 * units,)):
        w = rng.uniform(-0.6, 0.6, size=shape)
        out.append(w + np.where(w >= 0, 0.05, -0.05))
    return tuple(out)


def states(rng, count, units=U):
    return [rng.uniform(-0.8, 0.8, size=(B, units)) for _ in range(count)]


def textbook_cell(x_t, h, c, kernel, recurrent_kernel, bias):
    """The LSTM equations written out independently of ``reference`` (logistic via exp, gates by name)."""
    def logistic(z):
        return 1.0 / (1.0 + np.exp(-z))
    W_i, W_f, W_c, W_o = np.split(kernel, 4, axis=1)
    R_i, R_f, R_c, R_o = np.split(recurrent_kernel, 4, axis=1)
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    i = logistic(x_t @ W_i + h @ R_i + b_i)
    f = logistic(x_t @ W_f + h @ R_f + b_f)
    g = np.tanh(x_t @ W_c + h @ R_c + b_c)
    o = logistic(x_t @ W_o + h @ R_o + b_o)
    c = f * c + i * g
    return o * np.tanh(c), c


def textbook_lstm(x, weights, h, c, mask=None, zero_output=False):
    """Time-ordered loop over ``textbook_cell`` with Keras's masking rule; returns (outputs (B,T,U), h, c)."""
    outputs = []
    for t in range(x.shape[1]):
        h_new, c_new = textbook_cell(x[:, t], h, c, *weights)
        m = np.ones((x.shape[0], 1), bool) if mask is None else mask[:, t, None]
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        outputs.append(np.where(m, h, 0.0) if zero_output else h)
    return np.stack(outputs, axis=1), h, c


# ------------------------------------------------------------------------- the cell and the loop

def test_cell_matches_textbook_equations(rng):
    weights = lstm_weights(rng)
    x_t, (h, c) = rng.normal(size=(B, D)), states(rng, 2)
    h_new, c_new, gates = reference.lstm_cell(x_t, h, c, *weights)
    h_ref, c_ref = textbook_cell(x_t, h, c, *weights)
    close(h_new, h_ref, "h")
    close(c_new, c_ref, "c")
    assert gates.shape == (B, 4 * U)


def test_cell_is_pure(rng):
    weights = lstm_weights(rng)
    x_t, (h, c) = rng.normal(size=(B, D)), states(rng, 2)
    before = [a.copy() for a in (x_t, h, c, *weights)]
    reference.lstm_cell(x_t, h, c, *weights)
    for a, b in zip((x_t, h, c, *weights), before):
        np.testing.assert_array_equal(a, b)


def test_stepping_the_cell_equals_the_sequence_loop(rng):
    weights, (h, c) = lstm_weights(rng), states(rng, 2)
    x = rng.normal(size=(B, T, D))
    outputs, h_T, c_T = reference.lstm_forward(x, *weights, initial_state=[h, c], return_sequences=True,
                                               return_state=True)
    for t in range(T):
        h, c, _ = reference.lstm_cell(x[:, t], h, c, *weights)
        close(outputs[:, t], h, f"output at t={t}")
    close(h_T, h, "h_T")
    close(c_T, c, "c_T")


def test_sequence_loop_matches_textbook_loop(rng):
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x = rng.normal(size=(B, T, D))
    out, h, c = reference.lstm_forward(x, *weights, initial_state=[h0, c0], return_sequences=True, return_state=True)
    out_ref, h_ref, c_ref = textbook_lstm(x, weights, h0, c0)
    close(out, out_ref, "outputs")
    close(h, h_ref, "h")
    close(c, c_ref, "c")


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_return_state_order_is_output_h_c(rng, return_sequences):
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x = rng.normal(size=(B, T, D))
    result = reference.lstm_forward(x, *weights, initial_state=[h0, c0], return_sequences=return_sequences,
                                    return_state=True)
    assert isinstance(result, tuple) and len(result) == 3
    _, h_ref, c_ref = textbook_lstm(x, weights, h0, c0)
    close(result[1], h_ref, "h")
    close(result[2], c_ref, "c")
    last = result[0][:, -1] if return_sequences else result[0]
    close(last, result[1], "last output equals h")
    assert not np.allclose(result[1], result[2])  # h and c really are different arrays


def test_initial_state_order_is_h_then_c(rng):
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x = rng.normal(size=(B, 1, D))
    out = reference.lstm_forward(x, *weights, initial_state=[h0, c0])
    h_ref, _ = textbook_cell(x[:, 0], h0, c0, *weights)
    close(out, h_ref)
    swapped = reference.lstm_forward(x, *weights, initial_state=[c0, h0])
    assert np.abs(swapped - out).max() > 1e-3


# --------------------------------------------------------------------------------- go_backwards

@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@pytest.mark.parametrize("zero_output", [False, True], ids=["previous_output", "zero_output"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("mask_name", [None, *MASKS], ids=lambda m: m or "no_mask")
def test_inference_loop_equals_training_loop(rng, mask_name, go_backwards, zero_output, initial_output):
    """``keep_cache=False`` (what lstm_forward runs) keeps two cell states instead of T: same numbers, no cache."""
    from reference.recurrent import run_cell
    x, weights, (h0, c0) = rng.normal(size=(B, T, D)), lstm_weights(rng), states(rng, 2)
    mask = None if mask_name is None else MASKS[mask_name]
    kwargs = dict(go_backwards=go_backwards, zero_output_for_mask=zero_output, initial_output=initial_output)
    out, final, cache = run_cell(reference.Cell("lstm"), x, weights, (h0, c0), mask, **kwargs)
    out_inf, final_inf, no_cache = run_cell(reference.Cell("lstm"), x, weights, (h0, c0), mask, keep_cache=False,
                                            **kwargs)
    assert cache is not None and no_cache is None
    for name, a, b in zip(("outputs", "h_T", "c_T"), (out_inf, *final_inf), (out, *final)):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("mask_name", [None, *MASKS], ids=lambda m: m or "no_mask")
def test_go_backwards_equals_forward_on_flipped_input(rng, mask_name):
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x = rng.normal(size=(B, T, D))
    mask = None if mask_name is None else MASKS[mask_name]
    backward = reference.lstm_forward(x, *weights, initial_state=[h0, c0], mask=mask, go_backwards=True,
                                      return_sequences=True, return_state=True)
    flipped = reference.lstm_forward(x[:, ::-1], *weights, initial_state=[h0, c0],
                                     mask=None if mask is None else mask[:, ::-1], return_sequences=True,
                                     return_state=True)
    for name, a, b in zip(("outputs (processing order)", "h", "c"), backward, flipped):
        close(a, b, name)


def test_go_backwards_last_output_is_state_after_reading_first_step(rng):
    weights = lstm_weights(rng)
    x = rng.normal(size=(B, T, D))
    last = reference.lstm_forward(x, *weights, go_backwards=True)
    _, h, _ = textbook_lstm(x[:, ::-1], weights, np.zeros((B, U)), np.zeros((B, U)))
    close(last, h)


# ------------------------------------------------------------------------------------- masking

@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_all_ones_mask_equals_no_mask_lstm(rng, return_sequences):
    weights, init = lstm_weights(rng), states(rng, 2)
    x = rng.normal(size=(B, T, D))
    kwargs = dict(initial_state=init, return_sequences=return_sequences, return_state=True)
    with_mask = reference.lstm_forward(x, *weights, mask=np.ones((B, T), bool), **kwargs)
    without = reference.lstm_forward(x, *weights, **kwargs)
    for a, b in zip(with_mask, without):
        close(a, b)


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_all_ones_mask_equals_no_mask_bidirectional(rng, return_sequences):
    fwd, bwd, init = lstm_weights(rng), lstm_weights(rng), states(rng, 4)
    x = rng.normal(size=(B, T, D))
    kwargs = dict(initial_state=init, return_sequences=return_sequences, return_state=True)
    with_mask = reference.bidirectional_forward(x, fwd, bwd, mask=np.ones((B, T), int), **kwargs)
    without = reference.bidirectional_forward(x, fwd, bwd, **kwargs)
    for a, b in zip(with_mask, without):
        close(a, b)


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("zero_output", [False, True], ids=["previous_output", "zero_output"])
def test_masked_steps_carry_state_and_output(rng, mask_name, zero_output):
    """At a masked step the state is carried; the output is the previous one (h0 at leading steps) or 0."""
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    out, h, c = reference.lstm_forward(x, *weights, initial_state=[h0, c0], mask=mask, return_sequences=True,
                                       return_state=True, zero_output_for_mask=zero_output)
    out_ref, h_ref, c_ref = textbook_lstm(x, weights, h0, c0, mask, zero_output)
    close(out, out_ref, "outputs")
    close(h, h_ref, "h")
    close(c, c_ref, "c")
    carried = np.concatenate([h0[:, None], out[:, :-1]], axis=1)  # (B, T, U): the output one step earlier
    expected_at_masked = np.zeros_like(out) if zero_output else carried
    np.testing.assert_array_equal(out[~mask], expected_at_masked[~mask])


def keras_previous_output_loop(x, weights, h, c, mask, initial_output):
    """Keras's masked loop as TensorFlow and torch write it (keras/src/backend/tensorflow/rnn.py L341-391):
    a masked step repeats ``prev_output``, which starts at zeros ("zeros") or at h0 ("h0", JAX's
    ``output_tm1 = states[0]``) and is each step's output. Returns (outputs (B, T, U), h, c)."""
    prev_output = np.zeros_like(h) if initial_output == "zeros" else h
    outputs = []
    for t in range(x.shape[1]):
        h_new, c_new = textbook_cell(x[:, t], h, c, *weights)
        m = mask[:, t, None]
        output = np.where(m, h_new, prev_output)
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        outputs.append(output)
        prev_output = output
    return np.stack(outputs, axis=1), h, c


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_initial_output_is_the_first_previous_output(rng, mask_name, initial_output, go_backwards, return_sequences):
    """``initial_output`` against a literal transcription of Keras's previous-output loop, both conventions."""
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    out, h, c = reference.lstm_forward(x, *weights, initial_state=[h0, c0], mask=mask, go_backwards=go_backwards,
                                       return_sequences=return_sequences, return_state=True,
                                       initial_output=initial_output)
    flip = (lambda a: a[:, ::-1]) if go_backwards else (lambda a: a)  # processing order
    out_ref, h_ref, c_ref = keras_previous_output_loop(flip(x), weights, h0, c0, flip(mask), initial_output)
    close(out, out_ref if return_sequences else out_ref[:, -1], "outputs")
    close(h, h_ref, "h")
    close(c, c_ref, "c")


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_the_two_conventions_differ_only_before_the_first_valid_step(rng, mask_name, go_backwards):
    weights, init = lstm_weights(rng), states(rng, 2)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    kwargs = dict(initial_state=init, mask=mask, go_backwards=go_backwards, return_sequences=True, return_state=True)
    (out_h0, *states_h0), (out_zeros, *states_zeros) = (
        reference.lstm_forward(x, *weights, initial_output=io, **kwargs) for io in ("h0", "zeros"))
    for a, b in zip(states_h0, states_zeros):
        np.testing.assert_array_equal(a, b)  # the states never depend on the convention
    in_order = mask[:, ::-1] if go_backwards else mask  # processing order
    seen = np.logical_or.accumulate(in_order, axis=1)
    np.testing.assert_array_equal(out_zeros[seen], out_h0[seen])
    assert np.all(out_zeros[~seen] == 0.0)
    np.testing.assert_array_equal(out_h0[~seen], np.broadcast_to(init[0][:, None], out_h0.shape)[~seen])


@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_bidirectional_initial_output(rng, return_sequences, initial_output):
    """With return_sequences the copies zero masked steps (no convention shows); without, a row with
    no valid step outputs h0 of each direction, or 0."""
    fwd, bwd, init = lstm_weights(rng), lstm_weights(rng), states(rng, 4)
    x, mask = rng.normal(size=(B, T, D)), MASKS["fully_masked_row"]
    y_f, y_b, *rest = reference.bidirectional_forward(x, fwd, bwd, merge_mode=None, initial_state=init, mask=mask,
                                                      return_sequences=return_sequences, return_state=True,
                                                      initial_output=initial_output)
    other = reference.bidirectional_forward(x, fwd, bwd, merge_mode=None, initial_state=init, mask=mask,
                                            return_sequences=return_sequences, return_state=True,
                                            initial_output={"h0": "zeros", "zeros": "h0"}[initial_output])
    for a, b in zip(rest, other[2:]):
        np.testing.assert_array_equal(a, b)
    if return_sequences:
        np.testing.assert_array_equal(y_f, other[0])
        np.testing.assert_array_equal(y_b, other[1])
    else:
        expected_f, expected_b = (init[0][1], init[2][1]) if initial_output == "h0" else (0.0, 0.0)
        np.testing.assert_array_equal(y_f[1], np.broadcast_to(expected_f, (U,)))
        np.testing.assert_array_equal(y_b[1], np.broadcast_to(expected_b, (U,)))
        close(y_f[[0, 2]], other[0][[0, 2]])  # rows with valid steps: the last output is the state either way


def test_initial_output_is_checked_by_name(rng):
    weights = lstm_weights(rng)
    x = rng.normal(size=(B, T, D))
    with pytest.raises(ValueError, match="initial_output"):
        reference.lstm_forward(x, *weights, initial_output="zero")
    with pytest.raises(TypeError, match="initial_output"):
        reference.bidirectional_forward(x, weights, weights, initial_output=None)


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_final_state_equals_lstm_on_the_valid_steps_alone(rng, mask_name):
    """Dropping the masked steps from each row gives the same final state, both directions."""
    weights, (h0, c0) = lstm_weights(rng), states(rng, 2)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    for go_backwards in (False, True):
        _, h, c = reference.lstm_forward(x, *weights, initial_state=[h0, c0], mask=mask,
                                         go_backwards=go_backwards, return_state=True)
        for b in range(B):
            valid = x[b:b + 1, mask[b]]  # (1, T_b, D)
            if valid.shape[1] == 0:
                h_ref, c_ref = h0[b], c0[b]
            else:
                _, h_ref, c_ref = reference.lstm_forward(valid, *weights, initial_state=[h0[b:b + 1], c0[b:b + 1]],
                                                         go_backwards=go_backwards, return_state=True)
            close(h[b], np.reshape(h_ref, -1), f"h row {b} go_backwards={go_backwards}")
            close(c[b], np.reshape(c_ref, -1), f"c row {b} go_backwards={go_backwards}")


# ------------------------------------------------------------------------------- Bidirectional

def separate_directions(x, fwd, bwd, init, mask, return_sequences):
    """Both directions with ``lstm_forward``, as Keras's Bidirectional runs them."""
    zero = return_sequences  # Bidirectional sets zero_output_for_mask = return_sequences on both copies
    y_f, h_f, c_f = reference.lstm_forward(x, *fwd, initial_state=init[:2], mask=mask, return_sequences=return_sequences,
                                           return_state=True, zero_output_for_mask=zero)
    y_b, h_b, c_b = reference.lstm_forward(x, *bwd, initial_state=init[2:], mask=mask, go_backwards=True,
                                           return_sequences=return_sequences, return_state=True,
                                           zero_output_for_mask=zero)
    if return_sequences:
        y_b = y_b[:, ::-1]  # back to time order
    return y_f, y_b, (h_f, c_f, h_b, c_b)


MERGES = {
    "concat": lambda f, b: np.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "ave": lambda f, b: 0.5 * (f + b),
    "mul": lambda f, b: f * b,
}


@pytest.mark.parametrize("mask_name", [None, "right_padding", "holes"], ids=lambda m: m or "no_mask")
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("merge_mode", [*MERGES, None], ids=lambda m: str(m))
def test_bidirectional_is_the_merge_of_two_directions(rng, merge_mode, return_sequences, mask_name):
    fwd, bwd, init = lstm_weights(rng), lstm_weights(rng), states(rng, 4)
    x = rng.normal(size=(B, T, D))
    mask = None if mask_name is None else MASKS[mask_name]
    result = reference.bidirectional_forward(x, fwd, bwd, merge_mode=merge_mode, initial_state=init, mask=mask,
                                             return_sequences=return_sequences, return_state=True)
    y_f, y_b, states_ref = separate_directions(x, fwd, bwd, init, mask, return_sequences)
    if merge_mode is None:
        assert len(result) == 6
        outputs, got_states = result[:2], result[2:]
        close(outputs[0], y_f, "forward half")
        close(outputs[1], y_b, "backward half")
    else:
        assert len(result) == 5
        outputs, got_states = result[0], result[1:]
        close(outputs, MERGES[merge_mode](y_f, y_b), f"merged {merge_mode}")
    for name, a, b in zip(("h_f", "c_f", "h_b", "c_b"), got_states, states_ref):
        close(a, b, name)


def test_bidirectional_without_return_state_is_the_merged_array(rng):
    fwd, bwd = lstm_weights(rng), lstm_weights(rng)
    x = rng.normal(size=(B, T, D))
    y = reference.bidirectional_forward(x, fwd, bwd, return_sequences=True)
    assert isinstance(y, np.ndarray) and y.shape == (B, T, 2 * U)
    pair = reference.bidirectional_forward(x, fwd, bwd, merge_mode=None)
    assert isinstance(pair, tuple) and [p.shape for p in pair] == [(B, U), (B, U)]


def test_bidirectional_backward_half_is_time_aligned_by_hand(rng):
    """Independent of lstm_forward: the backward half at t has read x[T-1] .. x[t]."""
    fwd, bwd, init = lstm_weights(rng), lstm_weights(rng), states(rng, 4)
    x = rng.normal(size=(B, T, D))
    _, y_b = reference.bidirectional_forward(x, fwd, bwd, merge_mode=None, initial_state=init, return_sequences=True)
    for t in range(T):
        _, h, _ = textbook_lstm(x[:, t:][:, ::-1], bwd, *init[2:])
        close(y_b[:, t], h, f"backward half at t={t}")


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_bidirectional_sequences_are_zero_at_masked_steps(rng, mask_name):
    fwd, bwd, init = lstm_weights(rng), lstm_weights(rng), states(rng, 4)
    x, mask = rng.normal(size=(B, T, D)), MASKS[mask_name]
    y_f, y_b = reference.bidirectional_forward(x, fwd, bwd, merge_mode=None, initial_state=init, mask=mask,
                                               return_sequences=True)
    for half, name in ((y_f, "forward"), (y_b, "backward")):
        assert np.all(half[~mask] == 0.0), f"{name} half not zero at masked steps"
        assert np.all(np.abs(half[mask]) > 0.0), f"{name} half zero at a valid step"


def test_bidirectional_last_output_not_zeroed_by_mask(rng):
    """Without return_sequences Keras keeps zero_output_for_mask False: a right-padded row returns its last valid h."""
    fwd, bwd, init = lstm_weights(rng), lstm_weights(rng), states(rng, 4)
    x, mask = rng.normal(size=(B, T, D)), MASKS["right_padding"]
    y_f, y_b, h_f, _, h_b, _ = reference.bidirectional_forward(x, fwd, bwd, merge_mode=None, initial_state=init,
                                                               mask=mask, return_state=True)
    close(y_f, h_f)
    close(y_b, h_b)
    assert np.all(np.abs(y_f) > 0)


# ----------------------------------------------------------------------------------- the model

def manual_model(spec, weights, x, mask):
    """``model_forward`` composed by hand from the public layer functions."""
    if spec.mask_value is not None:
        mask = np.any(x != spec.mask_value, axis=-1)
        x = np.where(mask[..., None], x, 0.0)
    h, k = x, 0
    for _ in spec.layer_units:
        if spec.bidirectional:
            h = reference.bidirectional_forward(h, weights[k:k + 3], weights[k + 3:k + 6], merge_mode=spec.merge_mode,
                                                mask=mask, return_sequences=True)
            k += 6
        else:
            h = reference.lstm_forward(h, *weights[k:k + 3], mask=mask, go_backwards=spec.direction == "backward",
                                       return_sequences=True)
            k += 3
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
