"""Keras 3's ``Bidirectional(LSTM | GRU | SimpleRNN (...))`` in NumPy (float64).

The merge does not depend on the cell (``cell="lstm" | "gru" | "simple_rnn"`` and its
options, ``reference/cells.py``); LSTM is written below, the others are alike. This module is the one
Bidirectional of the oracle: ``bidirectional_forward`` and the ``Bidirectional`` layer of
``reference/layers/rnn.py`` (hence ``model_forward`` and ``bilstm verify``) both run ``run_bidirectional``.
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
on TensorFlow and torch): see ``reference/rnn.py``.

``return_state`` gives ``(y, h_f, c_f, h_b, c_b)`` (with merge_mode None the
flat ``(y_f, y_b, h_f, c_f, h_b, c_b)``); ``initial_state`` is taken in the same
order ``[h_f, c_f, h_b, c_b]``. GRU and SimpleRNN carry one state a direction:
``(y, h_f, h_b)`` and ``[h_f, h_b]`` (keras/src/layers/rnn/bidirectional.py L229-231
splits initial_state in halves, L244 and L270-272 return the forward states, then the backward).

Backward (``merge_backward``), with dy the gradient by the merged output:

    concat: dy_f, dy_b = split(dy)      sum: dy_f = dy_b = dy
    ave:    dy_f = dy_b = dy / 2        mul: dy_f = dy y_b,  dy_b = dy y_f
    return_sequences: dout_b = flip(dy_b) (processing order);  dx = dx_f + dx_b
"""
from __future__ import annotations

import numpy as np

from ._checks import as_mask, check_choice, check_flag
from .cells import LSTM, Cell, CellWeights, check_cell_weights
from .parallel import in_parallel
from .recurrent import run_cell
from .rnn import check_initial_output, check_input, check_states
from .vocabulary import MERGE_MODES

# merge mode -> merge(y_f, y_b); None keeps the pair.
MERGE = {
    "concat": lambda fwd, bwd: np.concatenate([fwd, bwd], axis=-1),
    "sum": lambda fwd, bwd: fwd + bwd,
    "ave": lambda fwd, bwd: (fwd + bwd) / 2,
    "mul": lambda fwd, bwd: fwd * bwd,
    None: lambda fwd, bwd: (fwd, bwd),
}


def merge_backward(merge_mode: str, dy, y_f, y_b):
    """Gradients ``(dy_f, dy_b)`` of the two halves from the merged output's ``dy``."""
    if merge_mode == "concat":
        U = y_f.shape[-1]
        return dy[..., :U], dy[..., U:]
    if merge_mode == "sum":
        return dy, dy
    if merge_mode == "ave":
        return dy / 2, dy / 2
    if merge_mode == "mul":
        return dy * y_b, dy * y_f
    raise ValueError(f"unknown merge_mode {merge_mode!r}; expected one of {', '.join(map(repr, MERGE_MODES))}")


def check_direction_weights(name, weights, features, cell: Cell = LSTM) -> CellWeights:
    """A direction's ``(kernel, recurrent_kernel, bias)``, checked; bias None for a layer without one."""
    if not isinstance(weights, (list, tuple)) or len(weights) != 3:
        got = f"{len(weights)} items" if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise TypeError(f"{name} must be a (kernel, recurrent_kernel, bias) triple, got {got}"
                        + ("" if cell.use_bias else " (bias None for use_bias=False)"))
    return check_cell_weights(cell, *weights, features=features, prefix=f"{name}.")


def bidirectional_forward(x, forward_weights, backward_weights, *, merge_mode="concat", cell="lstm",
                          activation="tanh", recurrent_activation="sigmoid", reset_after=True, initial_state=None,
                          mask=None, return_sequences=False, return_state=False, initial_output="h0"):
    """Keras's ``Bidirectional(<cell>(U, ...), merge_mode)(x, initial_state=..., mask=...)``.

    Args:
        x: (B, T, D).
        forward_weights, backward_weights: each ``(kernel (D, G U), recurrent_kernel (U, G U), bias)``
            in Keras's layout (``reference/cells.py``; G = 4, 3, 1 for lstm, gru, simple_rnn), bias
            None for a layer without one (``use_bias=False``, read off forward_weights).
        cell: "lstm" (default), "gru" or "simple_rnn"; activation, recurrent_activation and
            reset_after are the wrapped layer's options (recurrent_activation: not for
            simple_rnn; reset_after: gru only). ``use_bias`` is read off the weights.
        initial_state: ``[h_f, c_f, h_b, c_b]`` for lstm, ``[h_f, h_b]`` otherwise, each (B, U);
            zeros when None.
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
    check_choice("merge_mode", merge_mode, MERGE_MODES + (None,))
    use_bias = _uses_bias(forward_weights)
    cell = Cell(cell, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                reset_after=reset_after)
    return_sequences = check_flag("return_sequences", return_sequences)
    return_state = check_flag("return_state", return_state)
    check_initial_output(initial_output)
    x = check_input(x)
    B, T, D = x.shape
    fwd_w = check_direction_weights("forward_weights", forward_weights, D, cell)
    bwd_w = check_direction_weights("backward_weights", backward_weights, D, cell)
    U = fwd_w.recurrent_kernel.shape[0]
    if bwd_w.recurrent_kernel.shape[0] != U:
        raise ValueError(f"the two directions must have the same units: forward_weights has {U}, "
                         f"backward_weights has {bwd_w.recurrent_kernel.shape[0]}")
    names = [f"{n}_{d}" for d in "fb" for n in cell.state_names]
    states = check_states(initial_state, len(names), B, U, names)
    mask = as_mask(mask, B, T)
    (y_f, y_b), states, _ = run_bidirectional(x, fwd_w, bwd_w, tuple(states), mask, return_sequences,
                                              keep_cache=False, initial_output=initial_output, cell=cell)
    merged = MERGE[merge_mode](y_f, y_b)
    if not return_state:
        return merged
    return (*merged, *states) if merge_mode is None else (merged, *states)


def _uses_bias(weights) -> bool:
    """A direction whose bias is None is a layer with ``use_bias=False``."""
    if isinstance(weights, (list, tuple)) and len(weights) == 3:
        return weights[2] is not None
    return True  # check_direction_weights refuses it with a message


def run_bidirectional(x, fwd_w, bwd_w, states, mask, return_sequences, keep_cache=True, initial_output="h0",
                      cell: Cell = LSTM, backward_cell: Cell | None = None, go_backwards=(False, True)):
    """Both directions on checked arrays; ``states`` flat, forward's then backward's.

    ``backward_cell`` (default: ``cell``) and ``go_backwards`` (each copy's; default the second only)
    describe a Keras ``Bidirectional(layer, backward_layer=...)`` whose copies are not one layer twice.
    Returns ``((y_f, y_b), final states (flat, the same order), (cache_f, cache_b))``.
    """
    n = len(cell.state_names)
    zero_output = return_sequences  # what Keras's Bidirectional forces on both copies
    def direction(c, weights, initial, backwards):
        return lambda: run_cell(c, x, weights, initial, mask, go_backwards=backwards, zero_output_for_mask=zero_output,
                                initial_output=initial_output, keep_cache=keep_cache)
    # The two copies share nothing: on two threads where reference.parallel is on (its docstring says why)
    (out_f, final_f, cache_f), (out_b, final_b, cache_b) = in_parallel([
        direction(cell, fwd_w, states[:n], go_backwards[0]),
        direction(backward_cell or cell, bwd_w, states[n:], go_backwards[1])])
    if return_sequences:
        y_f, y_b = out_f, out_b[:, ::-1]  # Keras flips the second copy's sequence, whatever its direction
    else:
        y_f, y_b = out_f[:, -1], out_b[:, -1]
    return (y_f, y_b), (*final_f, *final_b), (cache_f, cache_b)
