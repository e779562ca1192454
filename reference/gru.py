"""The GRU layer, from scratch in NumPy (float64), in Keras 3.15.1's layout and semantics.

Weights (Keras layout, gate order z, r, h in column blocks of width U):
    kernel            W  (D, 3U)
    recurrent_kernel  R  (U, 3U)
    bias              (2, 3U) with reset_after=True (the default, cuDNN's form): row 0 the
                      input bias b_in, row 1 the recurrent bias b_rec; (3U,) with
                      reset_after=False; none with use_bias=False
                      (keras/src/layers/rnn/gru.py L163-171)

One step (keras/src/layers/rnn/gru.py L257-294, ``implementation=2``, the default), for
input x_t (B, D) and state h (B, U), ract = recurrent_activation, act = activation:

    reset_after=True:
        xp = x_t W + b_in                   hp = h R + b_rec              (B, 3U) each
        z  = ract(xp_z + hp_z)              r  = ract(xp_r + hp_r)
        hh = act(xp_h + r * hp_h)           the reset gate scales R's output
    reset_after=False:
        xp = x_t W + b
        z  = ract(xp_z + h R_z)             r  = ract(xp_r + h R_r)
        hh = act(xp_h + (r * h) R_h)        the reset gate scales R's input
    h' = z * h + (1 - z) * hh               (L292)

The output at t is h'; the state is h' alone (``return_state`` gives one array).
Masking, ``go_backwards`` and ``initial_output`` are the RNN loop's, as for the
LSTM (``reference/lstm.py``): a masked row carries h, and before its first valid
step outputs h0 (JAX) or 0 (TensorFlow, torch).
"""
from __future__ import annotations

from .cells import Cell, layer_forward


def gru_forward(x, kernel, recurrent_kernel, bias, *, reset_after=True, activation="tanh",
                recurrent_activation="sigmoid", initial_state=None, mask=None, go_backwards=False,
                return_sequences=False, return_state=False, zero_output_for_mask=False, initial_output="h0"):
    """Keras's ``GRU(U, reset_after=..., ...)(x, initial_state=..., mask=...)``, in float64.

    Every default is Keras's, ``return_sequences=False`` included, the same as
    ``reference.lstm_forward`` (issue 9's sketch said True; one default for every cell).

    Args:
        x: (B, T, D) inputs.
        kernel, recurrent_kernel: (D, 3U), (U, 3U), gate order z, r, h.
        bias: (2, 3U) with ``reset_after=True``, (3U,) with ``reset_after=False``, None for
            ``use_bias=False``; a bias of the other form is refused naming both.
        activation, recurrent_activation: by name, one of ``reference.cells.ACTIVATIONS``.
        initial_state: ``[h0]`` (B, U); zeros when None.
        mask, go_backwards, zero_output_for_mask, initial_output: as ``reference.lstm_forward``.
    Returns:
        (B, T, U) outputs in processing order with ``return_sequences``, else the last
        (B, U); with ``return_state`` the pair ``(output, h_T)``.
    """
    cell = Cell("gru", activation=activation, recurrent_activation=recurrent_activation,
                use_bias=bias is not None, reset_after=reset_after)
    return layer_forward(cell, x, kernel, recurrent_kernel, bias, initial_state=initial_state, mask=mask,
                         go_backwards=go_backwards, return_sequences=return_sequences, return_state=return_state,
                         zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
