"""The SimpleRNN layer, from scratch in NumPy (float64), in Keras 3.15.1's layout and semantics.

Weights: kernel W (D, U), recurrent_kernel R (U, U), bias b (U,) (none with use_bias=False).

One step (keras/src/layers/rnn/simple_rnn.py L154-172), for x_t (B, D) and state h (B, U):

    h' = act(x_t W + b + h R)

The output at t is h', which is also the only state. Masking, ``go_backwards`` and
``initial_output`` are the RNN loop's, as for the LSTM (``reference/lstm.py``).
"""
from __future__ import annotations

from .cells import Cell, layer_forward


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, *, activation="tanh", initial_state=None, mask=None,
                       go_backwards=False, return_sequences=False, return_state=False, zero_output_for_mask=False,
                       initial_output="h0"):
    """Keras's ``SimpleRNN(U, activation=...)(x, initial_state=..., mask=...)``, in float64.

    Args:
        x: (B, T, D) inputs.
        kernel, recurrent_kernel, bias: (D, U), (U, U), (U,); bias None for ``use_bias=False``.
        activation: by name, one of ``reference.cells.ACTIVATIONS``.
        initial_state: ``[h0]`` (B, U); zeros when None.
        mask, go_backwards, zero_output_for_mask, initial_output: as ``reference.lstm_forward``
            (``return_sequences=False`` by default, as Keras and ``lstm_forward``).
    Returns:
        (B, T, U) outputs in processing order with ``return_sequences``, else the last
        (B, U); with ``return_state`` the pair ``(output, h_T)``.
    """
    cell = Cell("simple_rnn", activation=activation, use_bias=bias is not None)
    return layer_forward(cell, x, kernel, recurrent_kernel, bias, initial_state=initial_state, mask=mask,
                         go_backwards=go_backwards, return_sequences=return_sequences, return_state=return_state,
                         zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
