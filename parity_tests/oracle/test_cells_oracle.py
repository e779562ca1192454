"""The oracle's GRU, SimpleRNN and the LSTM with other options (``reference/gru.py``, ``simple_rnn.py``,
``lstm.py``, run by ``reference/rnn.py``'s literal loop) against themselves, NumPy only.

Before any backend sees them: each cell's step against its equations written
out here from Keras's source, the time loop against stepping the cell by hand,
BPTT against central finite differences for every cell and option set, and the
named errors for bad input. The fused LSTM against the literal loop: ``test_lstm_fused.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from reference.activations import activate
from reference.bidirectional import MERGE
from reference.cells import Cell, CellWeights
from reference.recurrent import run_cell
from reference.rnn import backward
from keras_impl.parity.tolerances import FLOAT64_SELF_ABS, GRADCHECK_REL
from parity_tests.oracle.test_gradcheck import MIXED_MASK, chosen_indices, relative_error
from parity_tests.oracle.test_gradcheck import numeric_gradient as gradcheck_stencil


B, T, D, U = 4, 5, 2, 3
# Every cell with the option sets that change its equations.
CELLS = {
    "gru": Cell("gru"),
    "gru_reset_before": Cell("gru", reset_after=False),
    "gru_hard_sigmoid_relu": Cell("gru", recurrent_activation="hard_sigmoid", activation="relu"),
    "gru_no_bias": Cell("gru", use_bias=False),
    "simple_rnn": Cell("simple_rnn"),
    "simple_rnn_relu": Cell("simple_rnn", activation="relu"),
    "simple_rnn_linear_no_bias": Cell("simple_rnn", activation="linear", use_bias=False),
    "lstm_hard_sigmoid_linear": Cell("lstm", recurrent_activation="hard_sigmoid", activation="linear"),
    "lstm_sigmoid_no_bias": Cell("lstm", activation="sigmoid", use_bias=False),
}


def draw(cell: Cell, rng, features=D, units=U, scale=0.6):
    """(kernel, recurrent_kernel, bias or None), random and non-zero."""
    arrays = [rng.uniform(-scale, scale, size=shape) for _, shape in cell.weight_roles(features, units)]
    return tuple(arrays) if cell.use_bias else (*arrays, None)


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


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


# ---------------------------------------------------------------- the equations, written out from Keras's source

def test_hard_sigmoid_is_keras_3s():
    # keras/src/backend/numpy/nn.py L115-122: clip(x / 6 + 0.5, 0, 1); Keras 2's was clip(0.2 x + 0.5, 0, 1).
    a = np.array([-4.0, -3.0, -1.5, 0.0, 1.5, 2.5, 3.0, 4.0])
    np.testing.assert_array_equal(activate("hard_sigmoid", a), [0.0, 0.0, 0.25, 0.5, 0.75, 2.5 / 6 + 0.5, 1.0, 1.0])


def test_gru_step_matches_kerass_equations(rng):
    # keras/src/layers/rnn/gru.py L257-294 (implementation=2), both reset_after forms, written out plainly.
    x_t, h = rng.normal(size=(B, D)), rng.uniform(-0.8, 0.8, (B, U))
    for reset_after in (True, False):
        cell = Cell("gru", reset_after=reset_after)
        W, R, b = draw(cell, rng)
        Wz, Wr, Wh = W[:, :U], W[:, U:2 * U], W[:, 2 * U:]
        Rz, Rr, Rh = R[:, :U], R[:, U:2 * U], R[:, 2 * U:]
        if reset_after:
            bi, br = b
            z = sig(x_t @ Wz + bi[:U] + h @ Rz + br[:U])
            r = sig(x_t @ Wr + bi[U:2 * U] + h @ Rr + br[U:2 * U])
            hh = np.tanh(x_t @ Wh + bi[2 * U:] + r * (h @ Rh + br[2 * U:]))
        else:
            z = sig(x_t @ Wz + b[:U] + h @ Rz)
            r = sig(x_t @ Wr + b[U:2 * U] + h @ Rr)
            hh = np.tanh(x_t @ Wh + b[2 * U:] + (r * h) @ Rh)
        expected = z * h + (1 - z) * hh
        (got,) = reference.cell_step(cell, x_t, (h,), W, R, b)
        np.testing.assert_allclose(got, expected, rtol=0, atol=FLOAT64_SELF_ABS, err_msg=f"reset_after={reset_after}")


def test_the_two_gru_forms_differ(rng):
    # The same numbers in both forms (the recurrent bias dropped) must give different states: reset_after matters.
    x_t, h = rng.normal(size=(B, D)), rng.uniform(-0.8, 0.8, (B, U))
    W, R, b = draw(Cell("gru"), rng)
    (after,) = reference.cell_step(Cell("gru"), x_t, (h,), W, R, np.stack([b[0], np.zeros(3 * U)]))
    (before,) = reference.cell_step(Cell("gru", reset_after=False), x_t, (h,), W, R, b[0])
    assert np.abs(after - before).max() > 1e-3


def test_simple_rnn_step_matches_kerass_equation(rng):
    # keras/src/layers/rnn/simple_rnn.py L154-172: act(x W + b + h R).
    x_t, h = rng.normal(size=(B, D)), rng.uniform(-0.8, 0.8, (B, U))
    for activation, f in (("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0)), ("linear", lambda a: a)):
        cell = Cell("simple_rnn", activation=activation)
        W, R, b = draw(cell, rng)
        (got,) = reference.cell_step(cell, x_t, (h,), W, R, b)
        np.testing.assert_allclose(got, f(x_t @ W + b + h @ R), rtol=0, atol=FLOAT64_SELF_ABS, err_msg=activation)


def test_lstm_step_uses_activation_on_the_candidate_and_the_cell_state(rng):
    # keras/src/layers/rnn/lstm.py L221-228 and L286: g = act(a_g), h' = o act(c'); i, f, o = ract(.).
    x_t, h, c = rng.normal(size=(B, D)), rng.uniform(-0.8, 0.8, (B, U)), rng.uniform(-0.8, 0.8, (B, U))
    cell = Cell("lstm", activation="relu", recurrent_activation="hard_sigmoid")
    W, R, b = draw(cell, rng)
    a = x_t @ W + h @ R + b
    hs = lambda v: np.clip(v / 6 + 0.5, 0, 1)  # noqa: E731
    i, f, g, o = hs(a[:, :U]), hs(a[:, U:2 * U]), np.maximum(a[:, 2 * U:3 * U], 0), hs(a[:, 3 * U:])
    c_new = f * c + i * g
    got_h, got_c = reference.cell_step(cell, x_t, (h, c), W, R, b)
    np.testing.assert_allclose(got_c, c_new, rtol=0, atol=FLOAT64_SELF_ABS)
    np.testing.assert_allclose(got_h, o * np.maximum(c_new, 0), rtol=0, atol=FLOAT64_SELF_ABS)


# ---------------------------------------------------------------- the loop

def forward_fn(cell: Cell):
    """The public function for ``cell`` with its options bound."""
    if cell.kind == "gru":
        return lambda *a, **k: reference.gru_forward(*a, reset_after=cell.reset_after, activation=cell.activation,
                                                     recurrent_activation=cell.recurrent_activation, **k)
    if cell.kind == "simple_rnn":
        return lambda *a, **k: reference.simple_rnn_forward(*a, activation=cell.activation, **k)
    return lambda *a, **k: reference.lstm_forward(*a, activation=cell.activation,
                                                  recurrent_activation=cell.recurrent_activation, **k)


@pytest.mark.parametrize("name", CELLS)
def test_stepping_the_cell_equals_the_sequence_loop(name, rng):
    cell = CELLS[name]
    W, R, b = draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    states = tuple(rng.uniform(-0.8, 0.8, (B, U)) for _ in cell.state_names)
    out, *final = forward_fn(cell)(x, W, R, b, initial_state=list(states), return_sequences=True, return_state=True)
    for t in range(T):
        states = reference.cell_step(cell, x[:, t], states, W, R, b)
        np.testing.assert_allclose(out[:, t], states[0], rtol=0, atol=FLOAT64_SELF_ABS, err_msg=f"step {t}")
    for got, want in zip(final, states):
        np.testing.assert_allclose(got, want, rtol=0, atol=FLOAT64_SELF_ABS)
    assert len(final) == len(cell.state_names), "return_state gives one array per state"


@pytest.mark.parametrize("name", CELLS)
def test_masked_final_state_equals_the_cell_on_the_valid_steps_alone(name, rng):
    cell = CELLS[name]
    W, R, b = draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    h0 = [rng.uniform(-0.8, 0.8, (B, U)) for _ in cell.state_names]
    _, *final = forward_fn(cell)(x, W, R, b, initial_state=h0, mask=MIXED_MASK, return_state=True)
    for row in range(B):
        valid = MIXED_MASK[row]
        states = tuple(s[row:row + 1] for s in h0)
        for t in np.flatnonzero(valid):
            states = reference.cell_step(cell, x[row:row + 1, t], states, W, R, b)
        for got, want in zip(final, states):
            np.testing.assert_allclose(got[row:row + 1], want, rtol=0, atol=FLOAT64_SELF_ABS, err_msg=f"row {row}")


def test_lstm_forward_with_default_options_takes_the_fast_loop_and_others_do_not():
    assert Cell("lstm").fast_lstm
    assert not Cell("lstm", activation="relu").fast_lstm and not Cell("lstm", use_bias=False).fast_lstm
    assert not Cell("gru").fast_lstm


@pytest.mark.parametrize("cell_name", ["gru", "simple_rnn"])
@pytest.mark.parametrize("merge_mode", [*reference.MODEL_MERGE_MODES, None], ids=str)
def test_bidirectional_is_the_merge_of_two_directions(cell_name, merge_mode, rng):
    cell = Cell(cell_name)
    fwd, bwd = draw(cell, rng), draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    h_f, h_b = rng.uniform(-0.8, 0.8, (B, U)), rng.uniform(-0.8, 0.8, (B, U))
    result = reference.bidirectional_forward(x, fwd, bwd, merge_mode=merge_mode, cell=cell_name,
                                             initial_state=[h_f, h_b], mask=MIXED_MASK, return_sequences=True,
                                             return_state=True)
    # zero_output_for_mask=True on both copies: Keras's Bidirectional forces it with return_sequences
    y_f, s_f = forward_fn(cell)(x, *fwd, initial_state=[h_f], mask=MIXED_MASK, return_sequences=True,
                                return_state=True, zero_output_for_mask=True)
    y_b, s_b = forward_fn(cell)(x, *bwd, initial_state=[h_b], mask=MIXED_MASK, return_sequences=True,
                                return_state=True, zero_output_for_mask=True, go_backwards=True)
    merged = MERGE[merge_mode](y_f, y_b[:, ::-1])
    expected = (*merged, s_f, s_b) if merge_mode is None else (merged, s_f, s_b)  # one state a direction
    assert len(result) == len(expected)
    for got, want in zip(result, expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=FLOAT64_SELF_ABS)


def test_a_none_bias_is_use_bias_false(rng):
    cell = Cell("gru", use_bias=False)
    (W1, R1, _), (W2, R2, _) = draw(cell, rng), draw(cell, rng)
    x = rng.normal(size=(B, T, D))
    pair = reference.bidirectional_forward(x, (W1, R1, None), (W2, R2, None), cell="gru", return_sequences=True)
    zero_bias = reference.bidirectional_forward(x, (W1, R1, np.zeros((2, 3 * U))), (W2, R2, np.zeros((2, 3 * U))),
                                                cell="gru", return_sequences=True)
    np.testing.assert_allclose(pair, zero_bias, rtol=0, atol=FLOAT64_SELF_ABS)


# ---------------------------------------------------------------- BPTT

MODEL_KINDS = {"forward": dict(direction="forward"), "backward": dict(direction="backward"),
               "bidi_concat": dict(direction="bidirectional", merge_mode="concat"),
               "bidi_mul": dict(direction="bidirectional", merge_mode="mul")}
SPEC_OPTIONS = {name: dict(cell=c.kind, activation=c.activation, recurrent_activation=c.recurrent_activation,
                           use_bias=c.use_bias, reset_after=c.reset_after) for name, c in CELLS.items()}


# The default run: each model kind once, each mask source at least once; ``-m slow`` the whole product.
DEFAULT_GRADIENT_KINDS = [("forward", "masking_layer"), ("backward", "mask_argument"), ("bidi_mul", "mask_argument"),
                          ("bidi_concat", "no_mask")]
GRADIENT_PARAMS = [
    pytest.param(name, kind, mask_source, id=f"{name}-{kind}-{mask_source}",
                 marks=[] if (kind, mask_source) in DEFAULT_GRADIENT_KINDS else [pytest.mark.slow])
    for name in CELLS for kind in MODEL_KINDS for mask_source in ("no_mask", "mask_argument", "masking_layer")]


@pytest.mark.parametrize("name, kind, mask_source", GRADIENT_PARAMS)
def test_gradients_match_finite_differences(name, kind, mask_source, rng):
    spec = reference.ModelSpec(timesteps=T, features=D, units=U, **MODEL_KINDS[kind], **SPEC_OPTIONS[name],
                               mask_value=0.0 if mask_source == "masking_layer" else None)
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(B, T, D))
    y = (rng.random((B, T, 1)) < 0.5).astype(np.float64)
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
    W, R, b = draw(cell, rng)
    x, h0 = rng.normal(size=(B, T, D)), rng.uniform(-0.8, 0.8, (B, U))
    target = rng.normal(size=(B, T, U))

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
    spec = reference.ModelSpec(timesteps=T, features=D, units=U, cell=cell_name)
    weights = reference.random_weights(spec, rng)
    xs, ys = rng.normal(size=(6, T, D)), (rng.random((6, T, 1)) < 0.5).astype(float)
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
    W, R, b = draw(Cell("gru"), rng)
    with pytest.raises(error, match=match):
        call(rng.normal(size=(B, T, D)), W, R, b)
