"""The LSTM layer, from scratch in NumPy (float64), in Keras 3's layout and semantics.

Weights (Keras layout, gate order i, f, c, o in column blocks of width U):
    kernel            W  (D, 4U)
    recurrent_kernel  R  (U, 4U)
    bias              b  (4U,)

One step, for input x_t (B, D) and state (h, c) each (B, U):
    z       = x_t W + h R + b                       (B, 4U)
    i, f, g, o = z[:, :U], z[:, U:2U], z[:, 2U:3U], z[:, 3U:]
    i, f, o = sigmoid(i), sigmoid(f), sigmoid(o)    (the true logistic)
    g       = tanh(g)
    c'      = f * c + i * g
    h'      = o * tanh(c')
The output at t is h'.

Masking (Keras's generic path): at a step where ``mask[b, t]`` is False the
state (h, c) of row b is carried unchanged; the output there is zeros with
``zero_output_for_mask=True``, else "the previous output". After the first
valid step (in processing order) the previous output is the carried h. Before
it there is none, and Keras's backends disagree on what stands in for it; the
keyword ``initial_output`` chooses (Keras 3.15.1 source lines in docs/oracle.md):

    initial_output="h0"     the initial state h0 (the default; Keras on JAX, whose scan
                            takes the first state as the previous output:
                            keras/src/backend/jax/rnn.py L164-170, output_tm1 = states[0])
    initial_output="zeros"  zeros (Keras on TensorFlow and torch, whose loops start the
                            previous output at zeros: keras/src/backend/tensorflow/rnn.py
                            L337-339, L362-366 and L391; keras/src/backend/torch/rnn.py
                            L253-255, L278-282 and L304-308)

So with ``seen[b, t]`` = "row b has a valid step at or before t (processing order)":

    out_t = h_t                               no mask, or mask[b, t]
          = 0                                 masked, zero_output_for_mask
          = h_t (= the carried state)         masked, seen[b, t]
          = h0, or 0 with "zeros"             masked, not seen[b, t]

A fully masked row is never seen: its every output (and, without
return_sequences, its only one) is h0 or 0, while its final states are
(h0, c0) under both conventions. The states never depend on the convention.

``go_backwards=True`` reads the input (and the mask) from the last step to the
first and returns the outputs in processing order: ``out[:, k]`` is the state
after reading ``x[T-1] ... x[T-1-k]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_float64, as_mask, check_flag
# Shared with every cell; imported here too, where callers have always found them.
from ._loop import INITIAL_OUTPUTS, check_initial_output, check_input, check_states, sigmoid, state_outputs  # noqa: F401
from .cells import Cell, layer_forward


def lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias):
    """One step: state in, state out, nothing mutated. Shapes as in the module docstring.

    Returns ``(h', c', gates)`` with the activated gates ``[i | f | g | o]`` (B, 4U).
    """
    return _step(x_t @ kernel + bias, h, c, recurrent_kernel)


def _step(x_proj_t, h, c, recurrent_kernel):
    """The cell with the input half ``x_t W + b`` (B, 4U) already computed."""
    U = h.shape[-1]
    z = x_proj_t + h @ recurrent_kernel  # (B, 4U)
    # One tanh for all four gates: sigmoid(z) = (1 + tanh(z / 2)) / 2 on the i, f, o blocks.
    gates = np.tanh(z * _gate_scale(U))
    gates[:, :2 * U] = 0.5 * (1.0 + gates[:, :2 * U])  # i, f
    gates[:, 3 * U:] = 0.5 * (1.0 + gates[:, 3 * U:])  # o
    i, f, g, o = gates[:, :U], gates[:, U:2 * U], gates[:, 2 * U:3 * U], gates[:, 3 * U:]
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new, gates


_SCALES: dict[int, np.ndarray] = {}


def _gate_scale(U: int) -> np.ndarray:
    if U not in _SCALES:
        _SCALES[U] = np.concatenate([np.full(2 * U, 0.5), np.ones(U), np.full(U, 0.5)])
    return _SCALES[U]


@dataclass
class LSTMCache:
    """What the forward pass keeps for BPTT, time-major and in processing order.

    x (B, T, D) and mask (B, T) are already flipped for ``go_backwards``;
    h_prev, c_prev (T, B, U) are the states entering each step, gates (T, B, 4U)
    the activated ``[i | f | g | o]``, c_new (T, B, U) the cell state each
    step computed (before masking picked between it and the carried state) and
    tanh_c (T, B, U) its tanh.
    """
    x: np.ndarray
    mask: np.ndarray | None
    h_prev: np.ndarray
    c_prev: np.ndarray
    gates: np.ndarray
    c_new: np.ndarray
    go_backwards: bool
    zero_output_for_mask: bool
    tanh_c: np.ndarray | None = None
    initial_output: str = "h0"


def run_lstm(x, kernel, recurrent_kernel, bias, h0, c0, mask=None, *, go_backwards=False,
             zero_output_for_mask=False, initial_output="h0", keep_cache=True):
    """The time loop that serves every direction, on already-checked arrays (float64, or float32 throughout).

    Returns ``(outputs (B, T, U) in processing order, h_T, c_T, LSTMCache)``; the cache is
    None with ``keep_cache=False`` (inference), which keeps only the states a step needs.

    The loop is ``_step`` written into preallocated arrays (the cache itself), so
    that a step allocates nothing. Two rewrites of z keep it to one matmul and one
    tanh a step: z = [x_t | h | 1] [W; R; b] (input half, recurrent half and bias
    in one product), and sigmoid(a) = (1 + tanh(a / 2)) / 2, with the halving
    folded into the i, f, o columns of the weights (exact in binary floating point).
    """
    if go_backwards:  # one loop for both directions: flip, run, leave the order to the caller
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    B, T, D = x.shape
    U = recurrent_kernel.shape[0]
    dtype = np.result_type(x, kernel, recurrent_kernel, bias, h0, c0)
    scale = _gate_scale(U).astype(dtype)  # (4U,): 0.5 on i, f, o; 1 on g
    WRb = np.concatenate([kernel, recurrent_kernel, bias[None]]).astype(dtype) * scale  # (D + U + 1, 4U)
    xh1 = np.ones((B, D + U + 1), dtype)  # [x_t | h | 1], the other operand of a step's matmul
    H = np.empty((T + 1, B, U), dtype)  # states entering step t at [t]; H[1:] are the outputs
    # Inference keeps one step of z and c: the gates and cell states of every step are for BPTT only.
    steps = T if keep_cache else 1
    gates = np.empty((steps, B, 4 * U), dtype)  # activated [i | f | g | o]
    C = np.empty((T + 1 if keep_cache else 2, B, U), dtype)
    H[0], C[0] = h0, c0
    tanh_c = np.empty((steps, B, U), dtype)
    c_new = C[1:] if mask is None else np.empty((steps, B, U), dtype)
    h_new = H[1:] if mask is None else np.empty((T, B, U), dtype)
    ig = np.empty((B, U), dtype)
    slot = (lambda k: k) if keep_cache else (lambda k: k % 2)  # C's slot for the c entering step k
    for t in range(T):
        c_in, c_next = C[slot(t)], C[slot(t + 1)]
        c_prime = c_new[t] if keep_cache else (c_next if mask is None else c_new[0])  # c' of this step
        tanh_c_prime = tanh_c[t if keep_cache else 0]
        z = gates[t if keep_cache else 0]
        xh1[:, :D], xh1[:, D:D + U] = x[:, t], H[t]
        np.matmul(xh1, WRb, out=z)
        np.tanh(z, out=z)
        for sig in (z[:, :2 * U], z[:, 3 * U:]):  # i, f and o: tanh(a / 2) -> sigmoid(a)
            sig *= 0.5
            sig += 0.5
        i, f, g, o = z[:, :U], z[:, U:2 * U], z[:, 2 * U:3 * U], z[:, 3 * U:]
        np.multiply(f, c_in, out=c_prime)
        np.multiply(i, g, out=ig)
        c_prime += ig
        np.tanh(c_prime, out=tanh_c_prime)
        np.multiply(o, tanh_c_prime, out=h_new[t])
        if mask is not None:
            m = mask[:, t, None]  # (B, 1)
            np.copyto(H[t + 1], np.where(m, h_new[t], H[t]))
            np.copyto(c_next, np.where(m, c_prime, c_in))
    shown = state_outputs(mask, zero_output_for_mask, initial_output)  # (B, T) or None: see the module docstring
    outputs = H[1:] if shown is None else np.where(shown.T[..., None], H[1:], 0.0)
    cache = LSTMCache(x=x, mask=mask, h_prev=H[:-1], c_prev=C[:-1], gates=gates, c_new=c_new,
                      go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                      tanh_c=tanh_c, initial_output=initial_output) if keep_cache else None
    return outputs.transpose(1, 0, 2), H[T], C[slot(T)], cache  # (B, T, U)


def check_lstm_weights(kernel, recurrent_kernel, bias, *, features=None, prefix=""):
    """Checked float64 ``(kernel, recurrent_kernel, bias)``; U is read off the recurrent kernel."""
    recurrent_kernel = as_float64(f"{prefix}recurrent_kernel", recurrent_kernel, ndim=2)
    U = recurrent_kernel.shape[0]
    if U == 0 or recurrent_kernel.shape != (U, 4 * U):
        raise ValueError(f"{prefix}recurrent_kernel must have shape (units, 4*units) with units >= 1, got {recurrent_kernel.shape}")
    kernel = as_float64(f"{prefix}kernel", kernel, ndim=2)
    expected = (kernel.shape[0] if features is None else features, 4 * U)
    if kernel.shape != expected:  # name both sides: the x features and the units it was checked against
        raise ValueError(f"{prefix}kernel must have shape {expected} = (features, 4*units) for x with "
                         f"{expected[0]} features and units={U}, got {kernel.shape}")
    bias = as_float64(f"{prefix}bias", bias, shape=(4 * U,))
    return kernel, recurrent_kernel, bias


def lstm_forward(x, kernel, recurrent_kernel, bias, *, activation="tanh", recurrent_activation="sigmoid",
                 initial_state=None, mask=None, go_backwards=False,
                 return_sequences=False, return_state=False, zero_output_for_mask=False, initial_output="h0"):
    """Keras's ``LSTM(U, ...)(x, initial_state=..., mask=...)``, in float64.

    Args:
        x: (B, T, D) inputs.
        kernel, recurrent_kernel, bias: (D, 4U), (U, 4U), (4U,), Keras layout; bias None
            for ``use_bias=False``.
        activation, recurrent_activation: Keras's options, by name (``reference.cells.ACTIVATIONS``):
            g = activation(a_g), h' = o activation(c'); i, f, o = recurrent_activation(.).
            Any but the defaults (tanh, sigmoid, a bias) runs the generic loop of ``reference/cells.py``.
        initial_state: ``[h0, c0]``, each (B, U); zeros when None.
        mask: (B, T) booleans, True where a step is valid.
        initial_output: what a masked step outputs before the row's first valid step
            (processing order): ``"h0"`` (default; Keras on JAX) or ``"zeros"`` (Keras on
            TensorFlow and torch). See the module docstring; it matters only with a mask
            and a non-zero h0, and never changes the states.
    Returns:
        (B, T, U) outputs in processing order with ``return_sequences``, else the
        last of them (B, U); with ``return_state`` the tuple ``(output, h_T, c_T)``.
    """
    if (activation, recurrent_activation) != ("tanh", "sigmoid") or bias is None:
        cell = Cell("lstm", activation=activation, recurrent_activation=recurrent_activation, use_bias=bias is not None)
        return layer_forward(cell, x, kernel, recurrent_kernel, bias, initial_state=initial_state, mask=mask,
                             go_backwards=go_backwards, return_sequences=return_sequences, return_state=return_state,
                             zero_output_for_mask=zero_output_for_mask, initial_output=initial_output)
    go_backwards, return_sequences, return_state, zero_output_for_mask = (
        check_flag(n, v) for n, v in (("go_backwards", go_backwards), ("return_sequences", return_sequences),
                                      ("return_state", return_state), ("zero_output_for_mask", zero_output_for_mask)))
    check_initial_output(initial_output)
    x = check_input(x)
    B, T, D = x.shape
    kernel, recurrent_kernel, bias = check_lstm_weights(kernel, recurrent_kernel, bias, features=D)
    h0, c0 = check_states(initial_state, 2, B, recurrent_kernel.shape[0], ("h", "c"))
    mask = as_mask(mask, B, T)
    outputs, h, c, _ = run_lstm(x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards=go_backwards,
                                keep_cache=False, zero_output_for_mask=zero_output_for_mask,
                                initial_output=initial_output)
    output = outputs if return_sequences else outputs[:, -1]
    return (output, h, c) if return_state else output
