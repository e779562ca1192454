"""Keras's core layers at inference (keras/src/layers/core/): the input, masking, embedding and dense layers.

    InputLayer              y = x                                   mask' = None
    Masking(v)              m = any(x != v, features); y = x * m    mask' = m
    Embedding(E, mask_zero) y = E[ids]                              mask' = ids != 0 if mask_zero else None
    Dense(act)              y = act(x K + b) on the last axis, any rank
                                                                    mask' = mask
    Activation(act)         y = act(x)                              mask' = mask

Activations by Keras's name: ``reference/activations.py``. Weights: Embedding ``(E,)``; Dense ``(kernel, bias)``
(a zero bias for ``use_bias=False``).
"""
from __future__ import annotations

import numpy as np

from ..activations import activate
from ..products import last_axis_product


def input_layer(layer, inputs, masks, tape=None):
    return inputs[0], None


def masking(layer, inputs, masks, tape=None):
    x = inputs[0]
    m = np.any(x != layer.options["mask_value"], axis=-1)
    return x * m[..., None], m


def embedding(layer, inputs, masks, tape=None):
    ids = np.asarray(inputs[0]).astype(np.int64)
    return np.asarray(layer.weights[0], dtype=np.float64)[ids], (ids != 0 if layer.options.get("mask_zero") else None)


def dense(layer, inputs, masks, tape=None):
    """Dense (and TimeDistributed(Dense)): with a ``tape``, ``{x, a, y}`` for ``reference/backward.py``."""
    x, (kernel, bias) = inputs[0], layer.weights[:2]
    a = last_axis_product(x, kernel) + bias  # one product over every row (reference/products.py says why)
    y = activate(layer.options["activation"], a)
    if tape is not None:
        tape.append({"x": x, "a": a, "y": y})
    return y, masks[0]


def activation(layer, inputs, masks, tape=None):
    return activate(layer.options["activation"], inputs[0]), masks[0]


FORWARD = {"InputLayer": input_layer, "Masking": masking, "Embedding": embedding, "Dense": dense,
           "Activation": activation}
