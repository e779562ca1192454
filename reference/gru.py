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
LSTM (``reference/rnn.py``): a masked row carries h, and before its first valid
step outputs h0 (JAX) or 0 (TensorFlow, torch).

The step's derivative (``step_grad``), with dh' the gradient of the state it returned:

    dz = dh' (h - hh);   da_h = dh' (1 - z) act'(a_h);   dh = dh' z
    reset_after=True:    dr = da_h hp_h;   dhp = [dz ract'(a_z) | dr ract'(a_r) | da_h r]
                         dR = h^T dhp;  d b_rec = sum_B dhp;  dh += dhp R^T
    reset_after=False:   d(rh) = da_h R_h^T;  dh += d(rh) r;  dr = d(rh) h
                         dR = [h^T [da_z | da_r] | (r h)^T da_h];  dh += [da_z | da_r] R_zr^T
    dxp = [dz ract'(a_z) | dr ract'(a_r) | da_h]
"""
from __future__ import annotations

import numpy as np

from .activations import activate, activation_grad
from .cells import Cell
from .rnn import Steps, layer_call


def step(cell: Cell, xp, states, R, b_rec):
    """One step, from the input half ``xp = x_t W + b_in`` (B, 3U): ``((h',), record for step_grad)``."""
    (h,) = states
    U = h.shape[-1]
    ra, act = cell.recurrent_activation, cell.activation
    if cell.reset_after:
        hp = h @ R if b_rec is None else h @ R + b_rec  # (B, 3U)
        a_z, a_r = xp[:, :U] + hp[:, :U], xp[:, U:2 * U] + hp[:, U:2 * U]
        z, r = activate(ra, a_z), activate(ra, a_r)
        rh = None
        a_h = xp[:, 2 * U:] + r * hp[:, 2 * U:]
    else:
        hp = h @ R[:, :2 * U]
        a_z, a_r = xp[:, :U] + hp[:, :U], xp[:, U:2 * U] + hp[:, U:]
        z, r = activate(ra, a_z), activate(ra, a_r)
        rh = r * h
        a_h = xp[:, 2 * U:] + rh @ R[:, 2 * U:]
    hh = activate(act, a_h)
    h_new = z * h + (1 - z) * hh
    return (h_new,), dict(h=h, hp=hp, a_z=a_z, a_r=a_r, z=z, r=r, rh=rh, a_h=a_h, hh=hh)


def step_grad(cell: Cell, rec, d_states, R):
    """The step's derivative: ``(dxp (B, 3U), dR (U, 3U), d b_rec (None without reset_after), (dh,) into the step)``."""
    (dh,) = d_states
    U = dh.shape[-1]
    ra, act = cell.recurrent_activation, cell.activation
    h, z, r = rec["h"], rec["z"], rec["r"]
    dz = dh * (h - rec["hh"])
    da_h = dh * (1 - z) * activation_grad(act, rec["a_h"], rec["hh"])
    dh_prev = dh * z
    if cell.reset_after:
        dr = da_h * rec["hp"][:, 2 * U:]
        da_z, da_r = dz * activation_grad(ra, rec["a_z"], z), dr * activation_grad(ra, rec["a_r"], r)
        dhp = np.concatenate([da_z, da_r, da_h * r], axis=1)  # by hp = h R + b_rec
        dR, db_rec = h.T @ dhp, dhp.sum(axis=0)
        dh_prev = dh_prev + dhp @ R.T
    else:
        R_h = R[:, 2 * U:]
        d_rh = da_h @ R_h.T
        dh_prev = dh_prev + d_rh * r
        dr = d_rh * h
        da_z, da_r = dz * activation_grad(ra, rec["a_z"], z), dr * activation_grad(ra, rec["a_r"], r)
        dzr = np.concatenate([da_z, da_r], axis=1)
        dR, db_rec = np.concatenate([h.T @ dzr, rec["rh"].T @ da_h], axis=1), None
        dh_prev = dh_prev + dzr @ R[:, :2 * U].T
    return np.concatenate([da_z, da_r, da_h], axis=1), dR, db_rec, (dh_prev,)


STEPS = Steps(step, step_grad)


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
        activation, recurrent_activation: by name, one of ``reference.ACTIVATIONS``.
        initial_state: ``[h0]`` (B, U); zeros when None.
        mask, go_backwards, zero_output_for_mask, initial_output: as ``reference.lstm_forward``.
    Returns:
        (B, T, U) outputs in processing order with ``return_sequences``, else the last
        (B, U); with ``return_state`` the pair ``(output, h_T)``.
    """
    cell = Cell("gru", activation=activation, recurrent_activation=recurrent_activation,
                use_bias=bias is not None, reset_after=reset_after)
    return layer_call(cell, STEPS, x, (kernel, recurrent_kernel, bias), initial_state=initial_state, mask=mask,
                      go_backwards=go_backwards, return_sequences=return_sequences, return_state=return_state,
                      zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
