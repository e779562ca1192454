"""Training with the oracle: Keras's loss, BPTT and Keras's Adam, one update per batch.

    p, cache     = forward_with_cache(spec, weights, x, mask)     (B, T, 1)
    loss         = binary_crossentropy(y, p, mask)                masked mean when a mask exists
    dL/dp        = binary_crossentropy_grad(y, p, mask)
    grads, dx    = model_backward(spec, weights, cache, dL/dp)    get_weights() order
    weights      = Adam.apply(weights, grads)                     one update per batch

This is what ``model.fit(x, y, batch_size=B, epochs=1)`` does for one batch
with ``compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam())``;
the loss ``fit`` reports for that batch is the loss before its update.

The mask the recurrent layers see (a Masking layer's, or the ``mask`` argument)
also weights the loss, as it does in Keras when it reaches the model's output.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float64
from .adam import Adam
from .backward import model_backward
from .loss import binary_crossentropy, binary_crossentropy_grad
from .model import check_model_weights, forward_with_cache
from .spec import ModelSpec


def loss_grads_and_input_grad(spec: ModelSpec, weights, x, y, mask=None):
    """``(loss, grads, dx)``: the loss, its gradient by each weight, and by the input x (B, T, D).

    ``dx`` is zero at steps that a Masking layer masks (Keras's autodiff gives the same).
    """
    weights = check_model_weights(spec, weights)
    probs, cache = forward_with_cache(spec, weights, x, mask)  # (B, T, 1)
    y = as_float64("y", y, shape=probs.shape)
    loss = binary_crossentropy(y, probs, cache.mask)
    grads, dx = model_backward(spec, weights, cache, binary_crossentropy_grad(y, probs, cache.mask))
    return loss, grads, dx


def loss_and_grads(spec: ModelSpec, weights, x, y, mask=None):
    """Keras's ``binary_crossentropy`` of ``spec``'s model and its gradients.

    Args:
        spec: the model.
        weights: arrays in ``model.get_weights()`` order (``spec.weight_shapes()``).
        x: (B, T, D) inputs; y: (B, T, 1) labels in [0, 1].
        mask: (B, T) booleans, only for a spec without a Masking layer.
    Returns:
        ``(loss, grads)``: a float, and float64 arrays in the same order and shapes as ``weights``.
    """
    loss, grads, _ = loss_grads_and_input_grad(spec, weights, x, y, mask)
    return loss, grads


def _batches(name: str, value, rank: int) -> list[np.ndarray]:
    """A list of batches: a list of rank-``rank`` arrays, or one array with a leading batch-index axis.

    A rank-``rank`` array is read as one sequence a batch (the tutorial's batch size 1).
    """
    if isinstance(value, (list, tuple)):
        return list(value)
    array = np.asarray(value)
    if array.ndim == rank:
        return [array[n:n + 1] for n in range(array.shape[0])]
    if array.ndim == rank + 1:
        return list(array)
    raise ValueError(f"{name} must be a list of ({'B, T, D' if rank == 3 else 'B, T'}) batches, an array "
                     f"(N, B, ...) of them, or (N, ...) sequences of batch 1; got shape {array.shape}")


def train(spec: ModelSpec, weights, xs, ys, *, masks=None, optimizer: Adam | None = None):
    """One Adam update per batch, as ``fit`` does with one batch an epoch.

    Args:
        spec: the model.
        weights: initial weights in ``get_weights()`` order; not modified.
        xs, ys: the batches, in order: lists of (B, T, D) and (B, T, 1) arrays, or
            arrays (N, T, D) and (N, T, 1) of N sequences, each its own batch of 1
            (``reference.problem.make_sequences`` gives these).
        masks: None, or one (B, T) mask per batch (only for a spec without a Masking layer).
        optimizer: an ``Adam`` (its state carries on); a fresh ``Adam()`` with Keras's defaults when None.
    Returns:
        ``(final_weights, losses)``: float64 arrays in ``get_weights()`` order, and the
        loss of every update (N,), each computed before its update as ``fit`` reports it.
    """
    weights = [w.copy() for w in check_model_weights(spec, weights)]
    x_batches, y_batches = _batches("xs", xs, 3), _batches("ys", ys, 3)
    if len(x_batches) != len(y_batches):
        raise ValueError(f"xs and ys must hold as many batches, got {len(x_batches)} and {len(y_batches)}")
    mask_batches = [None] * len(x_batches) if masks is None else _batches("masks", masks, 2)
    if len(mask_batches) != len(x_batches):
        raise ValueError(f"masks must hold one mask per batch ({len(x_batches)}), got {len(mask_batches)}")
    if optimizer is None:
        optimizer = Adam()
    elif not isinstance(optimizer, Adam):
        raise TypeError(f"optimizer must be a reference.Adam, got {type(optimizer).__name__}")
    losses = np.empty(len(x_batches))
    for n, (x, y, mask) in enumerate(zip(x_batches, y_batches, mask_batches)):
        losses[n], grads = loss_and_grads(spec, weights, x, y, mask)
        optimizer.apply(weights, grads)
    return weights, losses
