"""Every activation the oracle knows, by Keras's name: one table of functions and of their derivatives.

    tanh            tanh(a)
    sigmoid         the true logistic, 1 / (1 + exp(-a)), written (1 + tanh(a / 2)) / 2 (it never overflows)
    hard_sigmoid    Keras 3's clip(a / 6 + 1/2, 0, 1) (keras/src/activations/activations.py L518-537,
                    keras/src/backend/numpy/nn.py L115-122; NOT Keras 2's 0.2 a + 0.5)
    relu            max(a, 0)
    linear          a
    softmax         exp(a - max a) / sum exp(a - max a) over the last axis (Dense and Activation only)

A recurrent cell takes ``CELL_ACTIVATIONS`` (every one with a derivative, for BPTT); a Dense,
TimeDistributed(Dense) or Activation layer takes ``LAYER_ACTIVATIONS``.
"""
from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# name -> (act(a), d act / d a from the pre-activation a and y = act(a)). hard_sigmoid and relu take the
# derivative of their linear piece inside it and 0 outside (and at the corners a = -3, 3, 0, which random
# inputs never hit).
_TABLE = {
    "tanh": (np.tanh, lambda a, y: 1.0 - y * y),
    "sigmoid": (sigmoid, lambda a, y: y * (1.0 - y)),
    "hard_sigmoid": (lambda a: np.clip(a / 6.0 + 0.5, 0.0, 1.0), lambda a, y: np.where(np.abs(a) < 3.0, 1.0 / 6.0, 0.0)),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a, y: (a > 0.0).astype(a.dtype)),
    "linear": (lambda a: a, lambda a, y: np.ones_like(a)),
    "softmax": (_softmax, None),
}
CELL_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "relu", "linear")
LAYER_ACTIVATIONS = ("linear", "sigmoid", "softmax", "tanh", "relu")


def activate(name: str, a: np.ndarray) -> np.ndarray:
    """``name``'s activation of the pre-activation ``a``."""
    if name not in _TABLE:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(_TABLE)}")
    return _TABLE[name][0](a)


def activation_grad(name: str, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d act(a) / d a, from the pre-activation ``a`` and the activation ``y = act(a)`` (a cell's activations)."""
    return _TABLE[name][1](a, y)
