"""Keras 3.15.1's ``binary_crossentropy`` for this model's per-step head, and its gradient.

The model's output is ``p (B, T, 1)``; the label ``y (B, T, 1)``. Keras computes
(``keras/src/losses/losses.py`` ``binary_crossentropy``, each backend's
``nn.binary_crossentropy``, ``keras/src/losses/loss.py`` ``reduce_weighted_values``):

    q      = clip(p, eps, 1 - eps)                 eps = 1e-7 (keras.config.epsilon())
    l      = -(y log q + (1 - y) log(1 - q))       (B, T, 1)
    l      = mean(l, axis=-1)                      (B, T): the last axis has one entry
    loss   = sum(l) / (B T)                        "sum_over_batch_size"

TensorFlow would skip the clip when it can recover the logits of a sigmoid, but
``TimeDistributed`` stacks the per-step ``Dense`` outputs into a new tensor that
carries no ``_keras_logits``, so every backend clips here.

When a mask reaches the loss (a ``Masking`` layer's mask travels through the
LSTM layers and ``TimeDistributed`` to the output), ``apply_mask`` in
``keras/src/losses/loss.py`` turns it into weights ``(B T) / valid`` at valid
steps and 0 elsewhere, so the reduction becomes the mean over valid steps:

    loss   = sum(m * l) / sum(m)                   0 when no step is valid (divide_no_nan)

Measured: ``model.evaluate`` of a Masking model on TensorFlow (float64), JAX and
torch gives this masked mean, not the plain mean.

Gradient, written the way autodiff takes it (so that float64 agrees to rounding):

    dl/dq  = -y / q + (1 - y) / (1 - q)
    dq/dp  = 1 inside [eps, 1 - eps], 0 where the clip bites
    dL/dp  = w * dl/dq * dq/dp                     w = 1/(B T), or m / sum(m) with a mask
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float64, as_mask

EPSILON = 1e-7  # keras.config.epsilon()


def _check(y_true, y_pred, mask):
    y_pred = as_float64("y_pred", y_pred, ndim=3)
    y_true = as_float64("y_true", y_true, shape=y_pred.shape)
    B, T, _ = y_pred.shape
    return y_true, y_pred, as_mask(mask, B, T)


def _weights(shape, mask) -> np.ndarray:
    """Per-step weights (B, T) of the reduction: 1/(B T), or m / sum(m) (0 when nothing is valid)."""
    if mask is None:
        return np.full(shape, 1.0 / (shape[0] * shape[1]))
    valid = mask.sum()
    return mask / valid if valid else np.zeros(shape)


def binary_crossentropy(y_true, y_pred, mask=None) -> float:
    """Keras's compiled ``binary_crossentropy`` loss: a scalar.

    Args:
        y_true: (B, T, C) labels in [0, 1].
        y_pred: (B, T, C) probabilities (C = 1 for this model's head).
        mask: (B, T) booleans, True where a step counts; None when no mask reaches the loss.
    """
    y_true, y_pred, mask = _check(y_true, y_pred, mask)
    q = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
    per_step = -(y_true * np.log(q) + (1.0 - y_true) * np.log(1.0 - q)).mean(axis=-1)  # (B, T)
    return float((per_step * _weights(per_step.shape, mask)).sum())


def binary_crossentropy_grad(y_true, y_pred, mask=None) -> np.ndarray:
    """dL/dp (B, T, C) of ``binary_crossentropy``; arguments as there."""
    y_true, y_pred, mask = _check(y_true, y_pred, mask)
    q = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
    inside = (y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON)  # the clip passes the gradient only here
    dl_dq = -y_true / q + (1.0 - y_true) / (1.0 - q)  # (B, T, C)
    w = _weights(y_pred.shape[:2], mask)[..., None] / y_pred.shape[-1]  # (B, T, 1): the reduction, the mean over C
    return w * dl_dq * inside
