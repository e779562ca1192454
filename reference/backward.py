"""Backpropagation through time for every model of a ``ModelSpec``, mirroring the forward cache.

Below, the LSTM with its default options (``run_lstm``'s fast loop). The other cells
and options (``reference/cells.py``) run the same loop rules around their own step
derivative (``cells.generic_backward``): GRU, for instance (reset_after, with the
step's dh' = m dh):

    dz = dh' (h - hh);   da_h = dh' (1 - z) act'(a_h);   dr = da_h hp_h
    da_z = dz ract'(a_z);   da_r = dr ract'(a_r)
    dhp = [da_z | da_r | da_h r]:   dR += h^T dhp,  db_rec += sum_B dhp
    dxp = [da_z | da_r | da_h]:     dW += x^T dxp,  db_in += sum_B dxp,  dx_t = dxp W^T
    dh = dh' z + dhp R^T + (1 - m) dh

and SimpleRNN: da = dh' act'(a); dW += x^T da; dR += h^T da; db += sum_B da; dh = da R^T + (1 - m) dh.

The forward (``reference.model.forward_with_cache``) keeps, per LSTM, an
``LSTMCache`` in processing order; the backward walks it in reverse, step by
step, carrying ``dh`` and ``dc`` (the gradients of the state leaving a step).

One LSTM step in processing order (``lstm.py``), with ``m`` the step's mask (1 when valid):

    z      = x_t W + h R + b;   i, f, o = sigmoid(.);   g = tanh(.)
    c'     = f c + i g;         h' = o tanh(c')
    h_t    = m h' + (1 - m) h;  c_t = m c' + (1 - m) c         state carried at masked steps
    out_t  = h_t, or m h_t with zero_output_for_mask (Bidirectional's copies),
             or s h_t with initial_output="zeros", s = 1 once a valid step has been seen

Backward, from t = T-1 down to 0, with ``dh, dc`` from step t+1 (zero after the last):

    dh     = dh + dout_t            (times m with zero_output_for_mask, times s with "zeros")
    dh'    = m dh
    dc'    = m dc + dh' o (1 - tanh(c')^2)
    di     = dc' g i (1 - i)        df = dc' c f (1 - f)
    dg     = dc' i (1 - g^2)        do = dh' tanh(c') o (1 - o)
    dz     = [di | df | dg | do]                                   (B, 4U)
    dh     = dz R^T + (1 - m) dh    dc = dc' f + (1 - m) dc        into step t-1
    dW    += x_t^T dz,  dR += h^T dz,  db += sum_B dz,  dx_t = dz W^T

The sums over t are taken at once after the loop (one matmul each over the
stored dz). ``go_backwards`` needs nothing special: the cache is already
flipped, and ``dx`` is flipped back to time order at the end.

Around the LSTMs (``model.py``, ``bidirectional.py``):

    Bidirectional, return_sequences: y_b = flip(out_b), so dout_b = flip(dy_b);
        concat: dy_f, dy_b = split(dy)      sum: dy_f = dy_b = dy
        ave:    dy_f = dy_b = dy / 2        mul: dy_f = dy y_b,  dy_b = dy y_f
        dx = dx_f + dx_b
    Head (every step):  a = y W_d + b_d,  p = sigmoid(a):
        da = dp p (1 - p);  dW_d = sum_{B,T} y^T da;  db_d = sum da;  dy = da W_d^T
    Masking: x_in = x m, so dx = dx_in m (the mask itself is piecewise constant in x).
"""
from __future__ import annotations

import numpy as np

from .cells import Cell, generic_backward
from .lstm import LSTMCache, sigmoid, state_outputs
from .model import ModelCache, _triple
from .spec import ModelSpec


def lstm_backward(cache: LSTMCache, kernel, recurrent_kernel, dout):
    """BPTT through one ``run_lstm`` call whose initial states are constants.

    Args:
        cache: the ``LSTMCache`` of the forward call (processing order, time-major).
        kernel (D, 4U), recurrent_kernel (U, 4U): the weights the forward used.
        dout: (B, T, U) gradient of the loss by the outputs, in processing order.
    Returns:
        ``(d_kernel (D, 4U), d_recurrent_kernel (U, 4U), d_bias (4U,), dx (B, T, D) in time order)``.
    """
    T, B, U = cache.h_prev.shape
    gates, mask = cache.gates, cache.mask  # (T, B, 4U), (B, T) or None
    dtype = gates.dtype
    tanh_c = cache.tanh_c if cache.tanh_c is not None else np.tanh(cache.c_new)  # (T, B, U)
    dout = np.ascontiguousarray(dout.transpose(1, 0, 2), dtype=dtype)  # (T, B, U)
    m = None if mask is None else mask.T[..., None].astype(dtype)  # (T, B, 1)
    shown = state_outputs(mask, cache.zero_output_for_mask, cache.initial_output)  # (B, T) or None
    if shown is not None:
        dout *= shown.T[..., None]  # no gradient reaches an output that is the constant 0
    # Step by step, into preallocated buffers: whole-sequence temporaries would cost more in
    # fresh memory than they save in calls (T B 4U values each).
    dz = np.empty((T, B, 4 * U), dtype)
    R_T = np.ascontiguousarray(recurrent_kernel.T, dtype=dtype)  # (4U, U)
    dh, dc = np.zeros((B, U), dtype), np.zeros((B, U), dtype)
    a, b = np.empty((B, U), dtype), np.empty((B, U), dtype)
    for t in range(T - 1, -1, -1):
        i, f, g, o = (gates[t, :, k * U:(k + 1) * U] for k in range(4))
        di, df, dg, do = (dz[t, :, k * U:(k + 1) * U] for k in range(4))
        dh += dout[t]
        dh_new = dh if m is None else m[t] * dh
        dc_new = dc if m is None else m[t] * dc
        np.multiply(dh_new, tanh_c[t], out=do)                         # do = dh' tanh(c') o (1 - o)
        np.subtract(1.0, o, out=a)
        a *= o
        do *= a
        np.square(tanh_c[t], out=a)                                    # dc' += dh' o (1 - tanh(c')^2)
        np.subtract(1.0, a, out=a)
        a *= o
        a *= dh_new
        dc_new += a
        np.subtract(1.0, i, out=a)                                     # di = dc' g i (1 - i)
        a *= i
        a *= g
        np.multiply(dc_new, a, out=di)
        np.subtract(1.0, f, out=a)                                     # df = dc' c f (1 - f)
        a *= f
        a *= cache.c_prev[t]
        np.multiply(dc_new, a, out=df)
        np.square(g, out=a)                                            # dg = dc' i (1 - g^2)
        np.subtract(1.0, a, out=a)
        a *= i
        np.multiply(dc_new, a, out=dg)
        if m is None:
            np.matmul(dz[t], R_T, out=dh)
            dc_new *= f  # dc is dc_new: now the gradient entering step t-1
        else:
            keep = 1.0 - m[t]  # masked rows pass dh, dc straight to the previous step
            np.multiply(keep, dh, out=b)
            dh = dz[t] @ R_T + b
            dc = dc_new * f + keep * dc
    dz = dz.reshape(T * B, 4 * U)  # every step's dz, for one matmul a weight
    x = cache.x.transpose(1, 0, 2).reshape(T * B, -1)  # (T B, D), the rows in dz's order
    d_kernel = x.T @ dz  # (D, 4U)
    d_recurrent = cache.h_prev.reshape(T * B, U).T @ dz  # (U, 4U)
    d_bias = dz.sum(axis=0)
    dx = (dz @ kernel.T).reshape(T, B, -1).transpose(1, 0, 2)  # (B, T, D), processing order
    if cache.go_backwards:
        dx = dx[:, ::-1]
    return d_kernel, d_recurrent, d_bias, dx


def cell_backward(cell: Cell, cache, weights, dout):
    """BPTT through one ``reference.recurrent.run_cell`` call whose initial states are constants.

    Args:
        cell: the forward's ``Cell``; cache: its cache (``LSTMCache`` from the fast loop, else ``CellCache``).
        weights: ``(kernel, recurrent_kernel, bias)`` as the forward used them (bias None without one).
        dout: (B, T, U) gradient of the loss by the outputs, in processing order.
    Returns:
        ``(grads, dx)``: ``[d_kernel, d_recurrent_kernel(, d_bias)]`` in the weights' shapes, and
        dx (B, T, D) in time order.
    """
    kernel, recurrent_kernel, _ = weights
    if isinstance(cache, LSTMCache):
        *grads, dx = lstm_backward(cache, kernel, recurrent_kernel, dout)
        return list(grads), dx
    return generic_backward(cache, kernel, recurrent_kernel, dout)


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
    raise ValueError(f"unknown merge_mode {merge_mode!r}; expected one of 'concat', 'sum', 'ave', 'mul'")


def model_backward(spec: ModelSpec, weights: list[np.ndarray], cache: ModelCache, d_probs):
    """Gradients of a scalar loss through the whole model, from ``d_probs = dL/dp`` (B, T, 1).

    Args:
        spec, weights: as given to ``forward_with_cache`` (weights already checked, float64).
        cache: its ``ModelCache``.
    Returns:
        ``(grads, dx)``: ``grads`` in ``weights``' order and shapes, ``dx`` (B, T, D) by the
        model's raw input (zero at steps a Masking layer masks).
    """
    grads: list[np.ndarray] = [None] * len(weights)
    k = len(weights) - 2  # the head's kernel and bias come last
    p = sigmoid(cache.logits)  # (B, T, 1), the forward's own probabilities
    d_logits = d_probs * p * (1.0 - p)  # (B, T, 1)
    y = cache.head_input  # (B, T, F)
    F = y.shape[-1]
    grads[k] = y.reshape(-1, F).T @ d_logits.reshape(-1, 1)  # (F, 1)
    grads[k + 1] = d_logits.sum(axis=(0, 1))  # (1,)
    dh = d_logits @ weights[k].T  # (B, T, F)
    cell, n = spec.cell_config, spec.cell_config.weight_count
    per_layer = 2 * n if spec.bidirectional else n
    for layer in range(spec.num_layers - 1, -1, -1):
        k -= per_layer
        caches = cache.layer_caches[layer]
        if spec.bidirectional:
            y_f, y_b = cache.layer_halves[layer]
            dy_f, dy_b = merge_backward(spec.merge_mode, dh, y_f, y_b)
            g_f, dx_f = cell_backward(cell, caches[0], _triple(weights[k:k + n]), dy_f)
            g_b, dx_b = cell_backward(cell, caches[1], _triple(weights[k + n:k + 2 * n]), dy_b[:, ::-1])  # processing order
            grads[k:k + 2 * n] = [*g_f, *g_b]
            dh = dx_f + dx_b
        else:
            g, dh = cell_backward(cell, caches[0], _triple(weights[k:k + n]), dh)
            grads[k:k + n] = g
    if spec.mask_value is not None:
        dh = dh * cache.mask[..., None]  # Masking zeroed those inputs
    return grads, dh
