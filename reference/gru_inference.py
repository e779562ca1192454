"""The GRU's inference loop (Keras's defaults: ``reset_after=True``, tanh, sigmoid) in place: the literal step's
operations (``reference/gru.py``'s ``step``, ``reference/activations.py``'s sigmoid), each on the same operands
in the same order, written into buffers allocated once, and the z and r gates in one call each.

    hp = h R + b_rec;  a_zr = xp_zr + hp_zr;  [z | r] = 0.5 (1 + tanh(0.5 a_zr))
    hh = tanh(xp_h + r hp_h);  h' = z h + (1 - z) hh

Every result is bit-identical to the literal loop's (``parity_tests/oracle/test_fast_paths.py`` holds it so);
what it saves is the literal step's dozen fresh arrays and its two calls a gate. ``reference.rnn.run`` takes
it for a GRU with those options when no tape is kept (BPTT steps the literal loop, which keeps its records).
"""
from __future__ import annotations

import numpy as np

from .cells import CellWeights, split_bias
from .products import last_axis_product


def serves(cell) -> bool:
    """The GRU this loop computes: Keras's default options (``use_bias`` either way)."""
    return (cell.kind == "gru" and cell.reset_after and cell.activation == "tanh"
            and cell.recurrent_activation == "sigmoid")


def run(cell, steps, x, weights: CellWeights, states, mask, keep_cache):
    """``reference.rnn.run``'s loop for such a GRU, without a tape: ``(carried h (T, B, U), (h_T,), None)``."""
    b_in, b_rec = split_bias(cell, weights.bias)
    xp = last_axis_product(x, weights.kernel)  # (B, T, 3U), as the literal loop
    if b_in is not None:
        xp = xp + b_in  # (not in place: a float64 bias promotes a float32 product, as before)
    (h,) = states
    B, T = x.shape[:2]
    U = h.shape[-1]
    R = weights.recurrent_kernel
    dtype = np.result_type(xp, h, R)  # the literal step's (float32 throughout stays float32)
    carried = np.empty((T,) + h.shape)  # float64, as the literal loop's
    hp, zr = np.empty((B, 3 * U), dtype), np.empty((B, 2 * U), dtype)
    a_h, one_minus_z = np.empty((B, U), dtype), np.empty((B, U), dtype)
    h_buffers = np.empty((2, B, U), dtype)  # the state leaving step t in [t % 2]; the one entering it is h
    for t in range(T):
        h_new = h_buffers[t % 2]
        np.matmul(h, R, out=hp)
        if b_rec is not None:
            hp += b_rec
        np.add(xp[:, t, :2 * U], hp[:, :2 * U], out=zr)        # a_z, a_r
        np.multiply(0.5, zr, out=zr)                            # sigmoid: 0.5 (1 + tanh(0.5 a))
        np.tanh(zr, out=zr)
        np.add(1.0, zr, out=zr)
        np.multiply(0.5, zr, out=zr)
        z, r = zr[:, :U], zr[:, U:]
        np.multiply(r, hp[:, 2 * U:], out=a_h)                  # a_h = xp_h + r hp_h
        np.add(xp[:, t, 2 * U:], a_h, out=a_h)
        np.tanh(a_h, out=a_h)                                   # hh
        np.multiply(z, h, out=h_new)                            # h' = z h + (1 - z) hh
        np.subtract(1, z, out=one_minus_z)
        np.multiply(one_minus_z, a_h, out=one_minus_z)
        h_new += one_minus_z
        if mask is not None:  # a masked row carries h
            np.copyto(h_new, np.where(mask[:, t, None], h_new, h))
        carried[t] = h = h_new
    return carried, (h.copy(),), None
