"""The fused LSTM loop (``reference/lstm_fused.py``) against the literal one (``reference/rnn.py`` stepping
``reference/lstm.py``'s ``step``), forward and BPTT, on every option of the layer: masks, go_backwards,
initial states, return_sequences, zero_output_for_mask, both leading-mask conventions, activations and
use_bias. NumPy only. The two compute the same equations in a different order of additions, so they agree
to a few units in the last place: within 1e-14 of the largest value compared.
"""
from __future__ import annotations

import numpy as np
import pytest

from reference import lstm_fused, rnn
from reference.cells import Cell, CellWeights
from reference.lstm import STEPS
from reference.recurrent import STEPS as STEPS_BY_CELL


B, T, D, U = 3, 7, 4, 5
MASKS = {
    "no_mask": None,
    "right_padding": np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]], bool),
    "left_padding": np.array([[1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]], bool),
    "holes": np.array([[1, 0, 1, 1, 0, 1, 1], [0, 1, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1, 0]], bool),
    "fully_masked_row": np.array([[1, 1, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]], bool),
}
CELLS = {
    "default": Cell("lstm"),
    "no_bias": Cell("lstm", use_bias=False),
    "relu_hard_sigmoid": Cell("lstm", activation="relu", recurrent_activation="hard_sigmoid"),
    "linear_tanh": Cell("lstm", activation="linear", recurrent_activation="tanh"),
    "sigmoid_linear_no_bias": Cell("lstm", activation="sigmoid", recurrent_activation="linear", use_bias=False),
}
OUTPUT_RULES = [(False, "h0"), (False, "zeros"), (True, "h0"), (True, "zeros")]  # (zero_output_for_mask, initial_output)
REL = 1e-14


def agree(fused, literal, what):
    scale = max(1.0, float(np.abs(literal).max()))
    worst = float(np.abs(np.asarray(fused) - np.asarray(literal)).max())
    assert worst <= REL * scale, f"{what}: fused and literal differ by {worst:.3g} (scale {scale:.3g})"


def run_both(cell, x, weights, states, mask, dout, **options):
    """``(outputs, final states, grads, dx)`` of each loop, forced."""
    results = []
    for fused in (True, False):
        out, final, cache = rnn.run(cell, STEPS, x, weights, states, mask, fused=fused, **options)
        inference, final_inference, _ = rnn.run(cell, STEPS, x, weights, states, mask, fused=fused,
                                                keep_cache=False, **options)
        np.testing.assert_array_equal(inference, out)  # the inference loop is the training loop without a tape
        for a, b in zip(final_inference, final):
            np.testing.assert_array_equal(a, b)
        grads, dx = rnn.backward(cache, weights, dout)
        results.append((out, final, grads, dx))
    return results


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("mask_name", MASKS)
@pytest.mark.parametrize("cell_name", CELLS)
def test_fused_equals_literal_loop(cell_name, mask_name, go_backwards, rng):
    cell, mask = CELLS[cell_name], MASKS[mask_name]
    shapes = dict(cell.weight_roles(D, U))
    weights = CellWeights(*(rng.uniform(-0.6, 0.6, shapes[r]) if r in shapes else None
                            for r in ("kernel", "recurrent_kernel", "bias")))
    x = rng.normal(size=(B, T, D))
    for initial in ("zeros", "random"):
        states = tuple(np.zeros((B, U)) if initial == "zeros" else rng.uniform(-0.8, 0.8, (B, U)) for _ in "hc")
        for zero_output_for_mask, initial_output in OUTPUT_RULES:
            for return_sequences in (True, False):
                dout = rng.normal(size=(B, T, U))
                if not return_sequences:  # only the last output reaches the loss
                    dout[:, :-1] = 0.0
                case = (f"{initial} states, zero_output_for_mask={zero_output_for_mask}, "
                        f"initial_output={initial_output}, return_sequences={return_sequences}")
                (out_f, final_f, grads_f, dx_f), (out_l, final_l, grads_l, dx_l) = run_both(
                    cell, x, weights, states, mask, dout, go_backwards=go_backwards,
                    zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
                if not return_sequences:
                    out_f, out_l = out_f[:, -1], out_l[:, -1]
                agree(out_f, out_l, f"outputs, {case}")
                for name, a, b in zip("hc", final_f, final_l):
                    agree(a, b, f"final {name}, {case}")
                for name, a, b in zip(CellWeights._fields, grads_f, grads_l):
                    assert (a is None) == (b is None) == (name == "bias" and not cell.use_bias), name
                    if a is not None:
                        agree(a, b, f"d {name}, {case}")
                agree(dx_f, dx_l, f"dx, {case}")


def test_run_chooses_the_fused_loop_for_the_default_lstm_only(rng):
    """``rnn.run`` is the one place that chooses: the fused loop for ``Cell.fast_lstm``, the literal one otherwise."""
    x = rng.normal(size=(B, T, D))
    for cell in (*CELLS.values(), Cell("gru"), Cell("simple_rnn")):
        shapes = dict(cell.weight_roles(D, U))
        weights = CellWeights(*(rng.uniform(-0.6, 0.6, shapes[r]) if r in shapes else None
                                for r in ("kernel", "recurrent_kernel", "bias")))
        states = tuple(np.zeros((B, U)) for _ in cell.state_names)
        _, _, cache = rnn.run(cell, STEPS_BY_CELL[cell.kind], x, weights, states)
        assert (cache.backward is lstm_fused.backward) == (cell == Cell("lstm")), cell
