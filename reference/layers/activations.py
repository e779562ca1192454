"""Keras's activation layers (keras/src/layers/activations/), elementwise on any shape. Every one of them sets
``supports_masking = True`` and keeps Layer's ``compute_mask``, which returns the mask it was given
(keras/src/layers/layer.py L865-866): mask' = mask for all.

    ReLU(M, s, θ)       y = min(x if x > θ else 0, M) - s max(θ - x, 0)      (M = ∞ when max_value is None)
                        keras/src/activations/activations.py L76-108 (ReLU.static_call); supports_masking:
                        keras/src/layers/activations/relu.py L63
    LeakyReLU(s)        y = x if x >= 0 else s x             leaky_relu.py L52 (jax, tensorflow and torch agree;
                        the numpy backend's max(x, s x) differs for s > 1, a backend not verified here)
    PReLU(α)            y = max(x, 0) - α max(-x, 0), α of shape x.shape[1:] with the shared axes 1
                        (broadcast)                                           prelu.py L43, L74-77
    ELU(α)              y = x if x >= 0 else α expm1(x)                       elu.py L25
    Softmax(axis, mask) x' = x where the mask is True, -1e9 elsewhere; y = softmax(x') over ``axis`` (an axis
                        list: exp(x' - logsumexp(x', axes))); y = 0 where the mask is False. The mask is
                        broadcast against x as NumPy does, from the LAST axis (softmax.py L55-105): a (B, T) mask
                        on (B, T, C) values lines up T with C, as Keras does; where those differ Keras cannot
                        run the model, nor can this.                          softmax.py L51

Weights: PReLU ``(alpha,)``. Options: ReLU ``max_value`` (None or a number), ``negative_slope``, ``threshold``;
LeakyReLU ``negative_slope``; ELU ``alpha``; Softmax ``axis`` (an int or a list of ints).
"""
from __future__ import annotations

import numpy as np

from ..activations import elu as _elu
from ..activations import leaky_relu as _leaky_relu

SOFTMAX_MASKED_VALUE = -1e9  # keras/src/layers/activations/softmax.py L7-11, for every dtype but float16


def relu(layer, inputs, masks, tape=None):
    x, opt = inputs[0], layer.options
    theta, slope, top = float(opt.get("threshold", 0.0)), float(opt.get("negative_slope", 0.0)), opt.get("max_value")
    y = np.where(x > theta, x, 0.0)
    if top is not None:
        y = np.clip(y, 0.0, float(top))
    if slope:  # the negative part below the threshold (a pass over the whole array: skipped where it is 0)
        y = y - slope * np.maximum(theta - x, 0.0)
    return y, masks[0]


def leaky_relu(layer, inputs, masks, tape=None):
    return _leaky_relu(inputs[0], float(layer.options.get("negative_slope", 0.3))), masks[0]


def prelu(layer, inputs, masks, tape=None):
    x, alpha = inputs[0], np.asarray(layer.weights[0], np.float64)
    return np.maximum(x, 0.0) - alpha * np.maximum(-x, 0.0), masks[0]


def elu(layer, inputs, masks, tape=None):
    return _elu(inputs[0], float(layer.options.get("alpha", 1.0))), masks[0]


def softmax(layer, inputs, masks, tape=None):
    x, mask, axis = inputs[0], masks[0], layer.options.get("axis", -1)
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    if mask is not None:
        if mask.ndim > x.ndim or any(m not in (1, d) for m, d in zip(mask.shape[::-1], x.shape[::-1])):
            raise ValueError(f"layer {layer.name!r}: its mask {mask.shape} is not broadcastable to its input "
                             f"{x.shape} (Keras raises too)")
        x = np.where(mask, x, SOFTMAX_MASKED_VALUE)
    shifted = x - x.max(axis=axes, keepdims=True)
    e = np.exp(shifted)
    y = e / e.sum(axis=axes, keepdims=True)
    if mask is not None:
        y = np.where(mask, y, 0.0)  # softmax.py L102-105: a row masked throughout gives 0, not 1/n
    return y, mask


FORWARD = {"ReLU": relu, "LeakyReLU": leaky_relu, "PReLU": prelu, "ELU": elu, "Softmax": softmax}
