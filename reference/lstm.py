"""The LSTM layer, from scratch in NumPy (float64), in Keras 3.15.1's layout and semantics.

Weights (Keras layout, gate order i, f, c, o in column blocks of width U):
    kernel            W  (D, 4U)
    recurrent_kernel  R  (U, 4U)
    bias              b  (4U,)   (None with use_bias=False)

One step (keras/src/layers/rnn/lstm.py L277-287 and L221-228), for input x_t (B, D) and
state (h, c) each (B, U), with act = activation (tanh), ract = recurrent_activation (sigmoid,
the true logistic):

    a          = x_t W + h R + b                      (B, 4U)
    i, f, g, o = a[:, :U], a[:, U:2U], a[:, 2U:3U], a[:, 3U:]
    i, f, o    = ract(i), ract(f), ract(o)
    g          = act(g)
    c'         = f * c + i * g
    h'         = o * act(c')

The output at t is h'. Masking, ``go_backwards`` and ``initial_output`` belong to Keras's RNN
loop, not the cell: ``reference/rnn.py``. With the default options the loop runs fused
(``reference/lstm_fused.py``, the same equations).

The step's derivative (``step_grad``), with dh', dc' the gradients of the states it returned:

    dc  = dc' + dh' o act'(c')
    da  = [dc g ract'(a_i) | dc c ract'(a_f) | dc i act'(a_g) | dh' act(c') ract'(a_o)]
    dh  = da R^T;   dc_in = dc f;   dR = h^T da;   dxp = da
"""
from __future__ import annotations

import numpy as np

from .activations import activate, activation_grad
from .cells import LSTM, Cell
from .rnn import Steps, layer_call


def step(cell: Cell, xp, states, R, b_rec):
    """One step, from the input half ``xp = x_t W + b`` (B, 4U): ``((h', c'), record for step_grad)``."""
    h, c = states
    U = h.shape[-1]
    a = xp + h @ R  # (B, 4U)
    i = activate(cell.recurrent_activation, a[:, :U])
    f = activate(cell.recurrent_activation, a[:, U:2 * U])
    g = activate(cell.activation, a[:, 2 * U:3 * U])
    o = activate(cell.recurrent_activation, a[:, 3 * U:])
    c_new = f * c + i * g
    act_c = activate(cell.activation, c_new)
    h_new = o * act_c
    return (h_new, c_new), dict(h=h, c=c, a=a, i=i, f=f, g=g, o=o, c_new=c_new, act_c=act_c)


def step_grad(cell: Cell, rec, d_states, R):
    """The step's derivative: ``(dxp (B, 4U), dR (U, 4U), d b_rec (None: one bias), (dh, dc) into the step)``."""
    dh, dc = d_states
    U = dh.shape[-1]
    a, ra, act = rec["a"], cell.recurrent_activation, cell.activation
    dc = dc + dh * rec["o"] * activation_grad(act, rec["c_new"], rec["act_c"])
    da = np.concatenate([
        dc * rec["g"] * activation_grad(ra, a[:, :U], rec["i"]),                 # i
        dc * rec["c"] * activation_grad(ra, a[:, U:2 * U], rec["f"]),            # f
        dc * rec["i"] * activation_grad(act, a[:, 2 * U:3 * U], rec["g"]),       # g
        dh * rec["act_c"] * activation_grad(ra, a[:, 3 * U:], rec["o"]),         # o
    ], axis=1)
    return da, rec["h"].T @ da, None, (da @ R.T, dc * rec["f"])


STEPS = Steps(step, step_grad)


def lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias):
    """One step with Keras's default options: state in, state out, nothing mutated.

    Returns ``(h', c', gates)`` with the activated gates ``[i | f | g | o]`` (B, 4U).
    """
    (h_new, c_new), rec = step(LSTM, x_t @ kernel + bias, (h, c), recurrent_kernel, None)
    return h_new, c_new, np.concatenate([rec["i"], rec["f"], rec["g"], rec["o"]], axis=1)


def lstm_forward(x, kernel, recurrent_kernel, bias, *, activation="tanh", recurrent_activation="sigmoid",
                 initial_state=None, mask=None, go_backwards=False,
                 return_sequences=False, return_state=False, zero_output_for_mask=False, initial_output="h0"):
    """Keras's ``LSTM(U, ...)(x, initial_state=..., mask=...)``, in float64.

    Args:
        x: (B, T, D) inputs.
        kernel, recurrent_kernel, bias: (D, 4U), (U, 4U), (4U,), Keras layout; bias None
            for ``use_bias=False``.
        activation, recurrent_activation: Keras's options, by name (``reference.ACTIVATIONS``).
        initial_state: ``[h0, c0]``, each (B, U); zeros when None.
        mask: (B, T) booleans, True where a step is valid.
        initial_output: what a masked step outputs before the row's first valid step
            (processing order): ``"h0"`` (default; Keras on JAX) or ``"zeros"`` (Keras on
            TensorFlow and torch). See ``reference/rnn.py``; it matters only with a mask
            and a non-zero h0, and never changes the states.
    Returns:
        (B, T, U) outputs in processing order with ``return_sequences``, else the
        last of them (B, U); with ``return_state`` the tuple ``(output, h_T, c_T)``.
    """
    cell = Cell("lstm", activation=activation, recurrent_activation=recurrent_activation, use_bias=bias is not None)
    return layer_call(cell, STEPS, x, (kernel, recurrent_kernel, bias), initial_state=initial_state, mask=mask,
                      go_backwards=go_backwards, return_sequences=return_sequences, return_state=return_state,
                      zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
