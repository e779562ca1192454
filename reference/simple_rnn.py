"""The SimpleRNN layer, from scratch in NumPy (float64), in Keras 3.15.1's layout and semantics.

Weights: kernel W (D, U), recurrent_kernel R (U, U), bias b (U,) (none with use_bias=False).

One step (keras/src/layers/rnn/simple_rnn.py L154-172), for x_t (B, D) and state h (B, U):

    h' = act(x_t W + b + h R)

The output at t is h', which is also the only state. Masking, ``go_backwards`` and
``initial_output`` are the RNN loop's, as for the LSTM (``reference/rnn.py``).

The step's derivative (``step_grad``): da = dh' act'(a);  dxp = da;  dR = h^T da;  dh = da R^T.
"""
from __future__ import annotations

from .activations import activate, activation_grad
from .cells import Cell
from .rnn import Steps, layer_call


def step(cell: Cell, xp, states, R, b_rec):
    """One step, from the input half ``xp = x_t W + b`` (B, U): ``((h',), record for step_grad)``."""
    (h,) = states
    a = xp + h @ R
    h_new = activate(cell.activation, a)
    return (h_new,), dict(h=h, a=a, h_new=h_new)


def step_grad(cell: Cell, rec, d_states, R):
    """The step's derivative: ``(dxp (B, U), dR (U, U), None, (dh,) into the step)``."""
    (dh,) = d_states
    da = dh * activation_grad(cell.activation, rec["a"], rec["h_new"])
    return da, rec["h"].T @ da, None, (da @ R.T,)


STEPS = Steps(step, step_grad)


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, *, activation="tanh", initial_state=None, mask=None,
                       go_backwards=False, return_sequences=False, return_state=False, zero_output_for_mask=False,
                       initial_output="h0"):
    """Keras's ``SimpleRNN(U, activation=...)(x, initial_state=..., mask=...)``, in float64.

    Args:
        x: (B, T, D) inputs.
        kernel, recurrent_kernel, bias: (D, U), (U, U), (U,); bias None for ``use_bias=False``.
        activation: by name, one of ``reference.ACTIVATIONS``.
        initial_state: ``[h0]`` (B, U); zeros when None.
        mask, go_backwards, zero_output_for_mask, initial_output: as ``reference.lstm_forward``
            (``return_sequences=False`` by default, as Keras and ``lstm_forward``).
    Returns:
        (B, T, U) outputs in processing order with ``return_sequences``, else the last
        (B, U); with ``return_state`` the pair ``(output, h_T)``.
    """
    cell = Cell("simple_rnn", activation=activation, use_bias=bias is not None)
    return layer_call(cell, STEPS, x, (kernel, recurrent_kernel, bias), initial_state=initial_state, mask=mask,
                      go_backwards=go_backwards, return_sequences=return_sequences, return_state=return_state,
                      zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
