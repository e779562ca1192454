"""Every activation the oracle knows, by Keras 3.15.1's name: one table of functions, and of derivatives for the
ones a recurrent cell may use.

A name means what ``keras.activations.get(name)`` returns: the function with its default arguments. That is all
a saved layer can hold (``keras/src/activations/__init__.py``, ``serialize``: a built-in is stored by its name
alone), so ``gelu`` is always the exact form (``activations.py`` L338-357, ``approximate=False``); the tanh form
(``gelu_tanh`` here, torch's ``approximate="tanh"``) has no name a file can carry. Formulas as in
keras/src/activations/activations.py and keras/src/backend/numpy/nn.py (lines there):

    linear          a
    tanh            tanh(a)
    sigmoid         the true logistic, 1 / (1 + exp(-a)), written (1 + tanh(a / 2)) / 2 (it never overflows)
    hard_sigmoid    Keras 3's clip(a / 6 + 1/2, 0, 1) (activations.py L518-537, nn.py L115-122; NOT Keras 2's 0.2 a + 0.5)
    relu            max(a, 0)
    relu6           min(max(a, 0), 6)                                       nn.py L29-35
    leaky_relu      a if a >= 0 else 0.2 a (jax, tensorflow, torch; the numpy backend's max(a, 0.2 a) agrees
                    for a slope <= 1, the only one a name gives)          activations.py L112-120
    elu             a if a >= 0 else expm1(a)                               nn.py L130-134
    selu            1.0507009873554805 * (a if a >= 0 else 1.6732632423543772 * expm1(a))   nn.py L137-141
    celu            max(a, 0) + expm1(min(a, 0))                            nn.py L166-171 (alpha = 1)
    softplus        log(1 + exp(a)) = logaddexp(a, 0)                       nn.py L63-65
    softsign        a / (1 + |a|)                                           nn.py L68-70
    silu            a sigmoid(a) (Keras's ``swish`` is the same function, saved as ``silu``)
    hard_silu       a hard_sigmoid(a) (``hard_swish`` likewise)
    mish            a tanh(softplus(a))                                     activations.py L610-619
    gelu            a (1 + erf(a / sqrt 2)) / 2                             nn.py L144-163, approximate=False
    exponential     exp(a)
    log_sigmoid     -softplus(-a)
    tanh_shrink     a - tanh(a)
    hard_tanh       clip(a, -1, 1)
    hard_shrink     a if |a| > 0.5 else 0
    soft_shrink     a - 0.5 if a > 0.5, a + 0.5 if a < -0.5, else 0
    sparse_plus     0 if a <= -1, (a + 1)^2 / 4 if a < 1, else a
    sparse_sigmoid  0 if a <= -1, 1 if a >= 1, else (a + 1) / 2
    squareplus      (a + sqrt(a^2 + 4)) / 2                                 (b = 4)
    glu             x1 sigmoid(x2), x1 and x2 the two halves of the last axis (half the features out)
    softmax         exp(a - max a) / sum exp(a - max a)                     over the last axis
    log_softmax     a - max a - log sum exp(a - max a)                      over the last axis
    sparsemax       max(a - tau, 0), tau the threshold that makes the output sum to 1 (Martins and Astudillo
                    2016), over the last axis: tau = (sum of the k largest - 1) / k, k the support's size. NOT
                    Keras 3.15.1's: its backends sum the cumulative sums over the support (numpy nn.py L230-231,
                    jax nn.py L179-180, and tensorflow's and torch's alike), whose rows do not sum to 1; verify
                    reports such a layer as FAIL, which it is

``threshold`` is refused: it needs two arguments no name carries (Keras cannot call it by name either).
A recurrent cell takes ``CELL_ACTIVATIONS`` (each with a derivative, for BPTT); a Dense, TimeDistributed(Dense)
or Activation layer takes ``LAYER_ACTIVATIONS``.
"""
from __future__ import annotations

import math

import numpy as np

from .erf import erf

SELU_ALPHA = 1.6732632423543772848170429916717   # keras/src/backend/numpy/nn.py L138-139
SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.clip(z / 6.0 + 0.5, 0.0, 1.0)


def softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(z, 0.0)


def elu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(z >= 0.0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def leaky_relu(z: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
    return np.where(z >= 0.0, z, negative_slope * z)


def _erf(z: np.ndarray) -> np.ndarray:
    return erf(z)  # reference/erf.py: Cody's approximations for the whole array, within ulps of math.erf


def gelu(z: np.ndarray, approximate: bool = False) -> np.ndarray:
    """Keras's gelu (keras/src/backend/numpy/nn.py L144-163): exact by default, the tanh form if ``approximate``."""
    if approximate:
        return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _sparsemax(z: np.ndarray) -> np.ndarray:
    """The Euclidean projection of each last-axis row onto the simplex (keras/src/backend/numpy/nn.py L218-233)."""
    ordered = -np.sort(-z, axis=-1)                                   # descending
    cumsum = np.cumsum(ordered, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    support = ordered - (cumsum - 1.0) / k > 0                        # the entries that stay positive
    size = support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumsum, size - 1, axis=-1) - 1.0) / size
    return np.maximum(z - tau, 0.0)


def _glu(z: np.ndarray) -> np.ndarray:
    if z.shape[-1] % 2:
        raise ValueError(f"glu splits the last axis in two halves; its size {z.shape[-1]} is odd")
    first, second = np.split(z, 2, axis=-1)
    return first * sigmoid(second)


# name -> (act(a), d act / d a from the pre-activation a and y = act(a), or None for a layer-only activation).
# hard_sigmoid and relu take the derivative of their linear piece inside it and 0 outside (and at the corners
# a = -3, 3, 0, which random inputs never hit).
_TABLE = {
    "tanh": (np.tanh, lambda a, y: 1.0 - y * y),
    "sigmoid": (sigmoid, lambda a, y: y * (1.0 - y)),
    "hard_sigmoid": (hard_sigmoid, lambda a, y: np.where(np.abs(a) < 3.0, 1.0 / 6.0, 0.0)),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a, y: (a > 0.0).astype(a.dtype)),
    "linear": (lambda a: a, lambda a, y: np.ones_like(a)),
    "softmax": (_softmax, None),
    "relu6": (lambda a: np.clip(a, 0.0, 6.0), None),
    "leaky_relu": (leaky_relu, None),
    "elu": (elu, None),
    "selu": (lambda a: SELU_SCALE * elu(a, SELU_ALPHA), None),
    "celu": (lambda a: np.maximum(a, 0.0) + np.expm1(np.minimum(a, 0.0)), None),
    "softplus": (softplus, None),
    "softsign": (lambda a: a / (1.0 + np.abs(a)), None),
    "silu": (lambda a: a * sigmoid(a), None),
    "hard_silu": (lambda a: a * hard_sigmoid(a), None),
    "mish": (lambda a: a * np.tanh(softplus(a)), None),
    "gelu": (gelu, None),
    "exponential": (np.exp, None),
    "log_sigmoid": (lambda a: -softplus(-a), None),
    "tanh_shrink": (lambda a: a - np.tanh(a), None),
    "hard_tanh": (lambda a: np.clip(a, -1.0, 1.0), None),
    "hard_shrink": (lambda a: np.where(np.abs(a) > 0.5, a, 0.0), None),
    "soft_shrink": (lambda a: np.where(a > 0.5, a - 0.5, np.where(a < -0.5, a + 0.5, 0.0)), None),
    "sparse_plus": (lambda a: np.where(a <= -1.0, 0.0, np.where(a < 1.0, 0.25 * (a + 1.0) ** 2, a)), None),
    "sparse_sigmoid": (lambda a: np.clip(0.5 * (a + 1.0), 0.0, 1.0), None),
    "squareplus": (lambda a: 0.5 * (a + np.sqrt(a * a + 4.0)), None),
    "glu": (_glu, None),
    "log_softmax": (_log_softmax, None),
    "sparsemax": (_sparsemax, None),
}
CELL_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "relu", "linear")
LAYER_ACTIVATIONS = ("linear", "sigmoid", "softmax", "tanh", "relu") + tuple(
    name for name in _TABLE if name not in ("linear", "sigmoid", "softmax", "tanh", "relu"))
# Keras's other names for the same functions (keras/src/activations/__init__.py, ALL_OBJECTS_DICT): Keras saves
# the function's own name, so these only reach the oracle from a caller.
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def activate(name: str, a: np.ndarray) -> np.ndarray:
    """``name``'s activation of the pre-activation ``a`` (any shape; the softmax family on the last axis)."""
    name = ALIASES.get(name, name)
    if name not in _TABLE:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(_TABLE)}")
    return _TABLE[name][0](a)


def activate_in_place(name: str, a: np.ndarray) -> np.ndarray:
    """``activate(name, a)`` for an ``a`` no one else reads: relu into ``a`` itself (the same ``np.maximum``,
    without a second array of ``a``'s size), every other activation as ``activate``."""
    if ALIASES.get(name, name) == "relu" and a.dtype.kind == "f":
        return np.maximum(a, 0.0, out=a)
    return activate(name, a)


def activation_grad(name: str, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d act(a) / d a, from the pre-activation ``a`` and the activation ``y = act(a)`` (a cell's activations)."""
    grad = _TABLE[name][1]
    if grad is None:
        raise ValueError(f"activation {name!r} has no derivative here; a cell takes {', '.join(CELL_ACTIVATIONS)}")
    return grad(a, y)
