"""Backpropagation through time for the model of a ``ModelSpec``: the forward's layer list, walked backwards.

Each cell's step derivative is in its module (``reference/lstm.py``, ``gru.py``, ``simple_rnn.py``),
the masked loop around it in ``reference/rnn.py`` (``backward``), the merge's in
``reference/bidirectional.py``. Around the recurrent layers:

    Head (every step):  a = y W_d + b_d,  p = act(a):
        da = dp act'(a);  dW_d = sum_{B,T} y^T da;  db_d = sum da;  dy = da W_d^T
    Bidirectional:  dy_f, dy_b = merge_backward(dy);  dx = dx_f + dx_b   (dy_b flipped back to processing order)
    Masking: x_in = x m, so dx = dx_in m (the mask itself is piecewise constant in x).
"""
from __future__ import annotations

import numpy as np

from .activations import activation_grad
from .bidirectional import merge_backward
from .cells import CellWeights
from .layers import RECURRENT_KINDS
from .model import ModelCache
from .rnn import RNNCache, backward
from .spec import ModelSpec


def lstm_backward(cache: RNNCache, kernel, recurrent_kernel, dout):
    """BPTT through one LSTM run (``reference.recurrent.run_cell``, ``run_bidirectional``) whose initial states are constants.

    Args:
        cache: the forward's ``RNNCache``.
        kernel (D, 4U), recurrent_kernel (U, 4U): the weights the forward used.
        dout: (B, T, U) gradient of the loss by the outputs, in processing order.
    Returns:
        ``(d_kernel (D, 4U), d_recurrent_kernel (U, 4U), d_bias (4U,), dx (B, T, D) in time order)``.
    """
    grads, dx = backward(cache, CellWeights(kernel, recurrent_kernel, None), dout)
    return (*grads, dx)


def _present(grads: CellWeights) -> list:
    """A direction's gradients in ``get_weights()`` order: no bias entry without a bias."""
    return [g for g in grads if g is not None]


def layer_backward(layer, records: list, dy, mask):
    """``(grads in the layer's get_weights() order, dx)`` of one layer of a spec's graph."""
    if layer.kind in ("Dense", "TimeDistributed"):
        rec = records[0]
        da = dy * activation_grad(layer.options["activation"], rec["a"], rec["y"])
        x = rec["x"]
        return [x.reshape(-1, x.shape[-1]).T @ da.reshape(-1, da.shape[-1]), da.sum(axis=tuple(range(da.ndim - 1)))], \
            da @ layer.weights[0].T
    if layer.kind in RECURRENT_KINDS:
        (weights,), (cache,) = layer.cell_weights, records
        grads, dx = backward(cache, weights, dy)
        return _present(grads), dx
    if layer.kind == "Bidirectional":
        if records[0]["caches"] is None:  # a copy that is an RNN(cell): the oracle runs it forward only
            raise ValueError(f"layer {layer.name!r}: no backward for a Bidirectional of RNN(cell)")
        (y_f, y_b), (cache_f, cache_b) = records[0]["halves"], records[0]["caches"]
        fwd_w, bwd_w = layer.cell_weights
        dy_f, dy_b = merge_backward(layer.options["merge_mode"], dy, y_f, y_b)
        g_f, dx_f = backward(cache_f, fwd_w, dy_f)
        g_b, dx_b = backward(cache_b, bwd_w, dy_b[:, ::-1])  # back to the second copy's processing order
        return _present(g_f) + _present(g_b), dx_f + dx_b
    if layer.kind == "Masking":
        return [], dy * mask[..., None]  # Masking zeroed those inputs
    raise ValueError(f"layer {layer.name!r}: no backward for kind {layer.kind!r}")


def model_backward(spec: ModelSpec, weights: list[np.ndarray], cache: ModelCache, d_probs):
    """Gradients of a scalar loss through the whole model, from ``d_probs = dL/dp`` (B, T, 1).

    Args:
        spec, weights: as given to ``forward_with_cache`` (weights already checked, float64).
        cache: its ``ModelCache``.
    Returns:
        ``(grads, dx)``: ``grads`` in ``weights``' order and shapes, ``dx`` (B, T, D) by the
        model's raw input (zero at steps a Masking layer masks).
    """
    grads_by_layer, dy = [], d_probs
    for layer in reversed(cache.graph.layers):  # a spec's graph is a chain
        if layer.kind == "InputLayer":
            continue
        grads, dy = layer_backward(layer, cache.tape[layer.name], dy, cache.values[layer.name][1])
        grads_by_layer.append(grads)
    return [g for grads in reversed(grads_by_layer) for g in grads], dy
