"""Keras 3's ``Bidirectional(LSTM(...))`` in NumPy (float64).

Two independent LSTMs read the same input: the forward one from x[0] to
x[T-1], the backward one (``go_backwards=True``) from x[T-1] to x[0].

    y_f = LSTM_f(x)                        (B, T, U) in time order
    y_b = LSTM_b(x, go_backwards=True)     (B, T, U) in processing order
    y_b = flip(y_b, time)                  only with return_sequences: back to time order
    y   = merge(y_f, y_b)

Merge modes (Keras's names): concat = [y_f, y_b] on the last axis (forward
first), sum = y_f + y_b, ave = (y_f + y_b) / 2, mul = y_f * y_b, None = the
pair (y_f, y_b). Without return_sequences the backward half is the backward
layer's last output: its state after reading x[0].

Masking: Keras sets ``zero_output_for_mask = return_sequences`` on both copies,
so a sequence output is 0 at masked steps; the backward copy reverses the mask
with the input (with right padding it effectively starts at the last valid step).
Without return_sequences a copy's output is its last one, which for a row with no
valid step is h0 (``initial_output="h0"``, Keras on JAX) or 0 (``"zeros"``, Keras
on TensorFlow and torch): see ``reference/lstm.py``.

``return_state`` gives ``(y, h_f, c_f, h_b, c_b)`` (with merge_mode None the
flat ``(y_f, y_b, h_f, c_f, h_b, c_b)``); ``initial_state`` is taken in the same
order ``[h_f, c_f, h_b, c_b]``.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_mask, check_choice, check_flag
from .lstm import check_initial_output, check_input, check_lstm_weights, check_states, run_lstm

MERGE_MODES = {
    "concat": lambda fwd, bwd: np.concatenate([fwd, bwd], axis=-1),
    "sum": lambda fwd, bwd: fwd + bwd,
    "ave": lambda fwd, bwd: (fwd + bwd) / 2,
    "mul": lambda fwd, bwd: fwd * bwd,
    None: lambda fwd, bwd: (fwd, bwd),
}


def check_direction_weights(name, weights, features):
    if not isinstance(weights, (list, tuple)) or len(weights) != 3:
        got = f"{len(weights)} items" if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise TypeError(f"{name} must be a (kernel, recurrent_kernel, bias) triple, got {got}")
    return check_lstm_weights(*weights, features=features, prefix=f"{name}.")


def bidirectional_forward(x, forward_weights, backward_weights, *, merge_mode="concat", initial_state=None,
                          mask=None, return_sequences=False, return_state=False, initial_output="h0"):
    """Keras's ``Bidirectional(LSTM(U, ...), merge_mode)(x, initial_state=..., mask=...)``.

    Args:
        x: (B, T, D).
        forward_weights, backward_weights: each ``(kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,))``.
        initial_state: ``[h_f, c_f, h_b, c_b]``, each (B, U); zeros when None.
        mask: (B, T) booleans, True where a step is valid.
        initial_output: ``"h0"`` (default; Keras on JAX) or ``"zeros"`` (Keras on TensorFlow
            and torch): what each copy outputs at masked steps before its first valid one
            (``reference/lstm.py``). Only the last output of a fully masked row, without
            return_sequences, can show it: with return_sequences the copies zero masked steps.
    Returns:
        The merged output, (B, T, F) with return_sequences else (B, F), where F is
        2U for concat and U otherwise; a ``(y_f, y_b)`` pair for merge_mode None;
        states appended as described in the module docstring.
    """
    check_choice("merge_mode", merge_mode, tuple(MERGE_MODES))
    return_sequences = check_flag("return_sequences", return_sequences)
    return_state = check_flag("return_state", return_state)
    check_initial_output(initial_output)
    x = check_input(x)
    B, T, D = x.shape
    fwd_w = check_direction_weights("forward_weights", forward_weights, D)
    bwd_w = check_direction_weights("backward_weights", backward_weights, D)
    U = fwd_w[1].shape[0]
    if bwd_w[1].shape[0] != U:
        raise ValueError(f"the two directions must have the same units: forward_weights has {U}, "
                         f"backward_weights has {bwd_w[1].shape[0]}")
    h_f, c_f, h_b, c_b = check_states(initial_state, 4, B, U, ("h_f", "c_f", "h_b", "c_b"))
    mask = as_mask(mask, B, T)
    (y_f, y_b), states, _ = run_bidirectional(x, fwd_w, bwd_w, (h_f, c_f, h_b, c_b), mask, return_sequences,
                                              keep_cache=False, initial_output=initial_output)
    merged = MERGE_MODES[merge_mode](y_f, y_b)
    if not return_state:
        return merged
    return (*merged, *states) if merge_mode is None else (merged, *states)


def run_bidirectional(x, fwd_w, bwd_w, states, mask, return_sequences, keep_cache=True, initial_output="h0"):
    """Both directions on checked arrays. Returns ``((y_f, y_b), (h_f, c_f, h_b, c_b), (cache_f, cache_b))``."""
    h_f, c_f, h_b, c_b = states
    zero_output = return_sequences  # what Keras's Bidirectional forces on both copies
    out_f, h_f, c_f, cache_f = run_lstm(x, *fwd_w, h_f, c_f, mask, zero_output_for_mask=zero_output,
                                        initial_output=initial_output, keep_cache=keep_cache)
    out_b, h_b, c_b, cache_b = run_lstm(x, *bwd_w, h_b, c_b, mask, go_backwards=True, zero_output_for_mask=zero_output,
                                        initial_output=initial_output, keep_cache=keep_cache)
    if return_sequences:
        y_f, y_b = out_f, out_b[:, ::-1]  # backward output back to time order
    else:
        y_f, y_b = out_f[:, -1], out_b[:, -1]
    return (y_f, y_b), (h_f, c_f, h_b, c_b), (cache_f, cache_b)
