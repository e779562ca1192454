"""Keras's merging layers (keras/src/layers/merging/), at inference, on N inputs x_1..x_N (2 for Subtract, Dot).

    Add                     y = x_1 + ... + x_N
    Subtract                y = x_1 - x_2
    Average                 y = (x_1 + ... + x_N) / N
    Maximum, Minimum        y = elementwise max / min, masked entries standing in as below
    Multiply                y = x_1 * ... * x_N, masked entries standing in as below
    Concatenate(axis)       y = concatenate(x_1..x_N, axis)
    Dot(axes, normalize)    y[b, I, J] = sum_k x_1[b, I, k] x_2[b, k, J]: axes[0] of x_1 against axes[1] of x_2
                            (an int a: both a; negative: counted from the end of each input); I, J the remaining
                            axes in order; two (B, K) inputs give (B, 1). normalize: each input first times
                            min(1 / sqrt(sum_k x^2), 1 / epsilon) on its axis (ops.nn.normalize, Keras's epsilon)

Broadcasting (base_merge.py L136-162): inputs of different ranks get axes inserted at axis 1 until all have
the highest rank, then NumPy broadcasting; the expanded tensors carry no mask (they are new tensors).
Concatenate and Dot never expand (``_reshape_required = False``, concatenate.py L40, dot.py L263).

Masks (Keras 3.15.1; a mask is (B, T) and broadcast over the features with expand_dims(-1) where it is used):
    Add, Subtract, Average  mask' = None if any input's mask is None, else m_1 OR ... OR m_N
                            (Merge.compute_mask, base_merge.py L255-277); the values ignore the masks
    Maximum, Minimum        values: ``_apply_merge_op_and_or_mask`` (base_merge.py L23-58), in order: the running
                            output takes x_k's entry where its own mask is False, x_k takes the running output's
                            where x_k's mask is False, then op; a None mask ends the running mask. mask' = any over
                            the last axis of the ORed broadcast masks when every mask is set (L55-57), else
                            Merge.compute_mask (the OR of the masks, None if any is None)
    Multiply                values: masked entries of each masked input replaced by 1, and with every input masked
                            the product zeroed where no input is valid (multiply.py L34-58); mask' as Maximum
    Concatenate             mask' = None if every mask is None; else each input's mask made its full shape (a None
                            mask all True, a lower-rank mask broadcast over the last axis), concatenated on ``axis``,
                            then any over the last axis (Concatenate.compute_mask, concatenate.py L122-158): on the
                            last axis the OR of the masks (a None one all True), on the time axis the masks joined
    Dot                     mask' = None (Dot.compute_mask, dot.py L348-349); the values ignore the masks
"""
from __future__ import annotations

import numpy as np


def _to_same_rank(inputs, masks):
    """Keras's rank broadcasting: lower-rank inputs get axes at 1 (and lose their mask, as new tensors do)."""
    top = max(x.ndim for x in inputs)
    if all(x.ndim == top for x in inputs):
        return list(inputs), list(masks)
    xs, ms = [], []
    for x, m in zip(inputs, masks):
        if x.ndim < top:
            x, m = x.reshape(x.shape[:1] + (1,) * (top - x.ndim) + x.shape[1:]), None
        xs.append(x)
        ms.append(m)
    return xs, ms


def merge_mask(masks):
    """Merge.compute_mask: None if any mask is None, else their OR."""
    if any(m is None for m in masks):
        return None
    return np.logical_or.reduce([np.asarray(m, bool) for m in masks])


def _feature_mask(mask, x):
    """A (B, T) mask broadcast over ``x``'s last axis, as ``broadcast_to(expand_dims(mask, -1), shape(x))``."""
    return None if mask is None else np.broadcast_to(np.asarray(mask, bool)[..., None], x.shape)


def add(layer, inputs, masks, tape=None):
    xs, _ = _to_same_rank(inputs, masks)
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return y, merge_mask(masks)


def subtract(layer, inputs, masks, tape=None):
    if len(inputs) != 2:
        raise ValueError(f"Subtract {layer.name!r} takes exactly 2 inputs, got {len(inputs)}")
    xs, _ = _to_same_rank(inputs, masks)
    return xs[0] - xs[1], merge_mask(masks)


def average(layer, inputs, masks, tape=None):
    y, mask = add(layer, inputs, masks)
    return y / len(inputs), mask


def _masked_extremum(op):
    """Maximum or Minimum: base_merge.py's ``_apply_merge_op_and_or_mask``, step by step."""
    def forward(layer, inputs, masks, tape=None):
        xs, ms = _to_same_rank(inputs, masks)
        output, output_mask = xs[0], _feature_mask(ms[0], xs[0])
        for x, m in zip(xs[1:], ms[1:]):
            mask = _feature_mask(m, x)
            if mask is not None:
                x = np.where(mask, x, output)
            if output_mask is not None:
                output = np.where(output_mask, output, x)
            output_mask = output_mask | mask if mask is not None and output_mask is not None else None
            output = op(output, x)
        if output_mask is not None:
            return output, output_mask.any(axis=-1)
        return output, merge_mask(masks)
    return forward


def multiply(layer, inputs, masks, tape=None):
    """multiply.py's ``_merge_function``: masked entries count as 1; with every mask set, invalid ones are 0."""
    xs, ms = _to_same_rank(inputs, masks)
    every_masked = all(m is not None for m in ms)
    output = output_mask = None
    for x, m in zip(xs, ms):
        mask = _feature_mask(m, x)
        if mask is not None:
            x = np.where(mask, x, 1.0)
            if every_masked:
                output_mask = mask if output_mask is None else output_mask | mask
        output = x if output is None else output * x
    if every_masked:
        return np.where(output_mask, output, 0.0), output_mask.any(axis=-1)
    return output, merge_mask(masks)


def concatenate(layer, inputs, masks, tape=None):
    axis = layer.options.get("axis", -1)
    y = np.concatenate(inputs, axis=axis)
    if all(m is None for m in masks):
        return y, None
    full = []
    for x, m in zip(inputs, masks):
        if m is None:
            full.append(np.ones(x.shape, bool))
        elif np.ndim(m) < x.ndim:  # logical_or(expand_dims(m, -1), zeros_like(x)): m broadcast over x
            full.append(np.logical_or(np.asarray(m, bool)[..., None], np.zeros(x.shape, bool)))
        else:
            full.append(np.asarray(m, bool))
    return y, np.concatenate(full, axis=axis).any(axis=-1)


def _dot_axes(axes, x1, x2) -> tuple[int, int]:
    if isinstance(axes, int):
        return (axes % x1.ndim, axes % x2.ndim) if axes < 0 else (axes, axes)
    return tuple(a % x.ndim if a < 0 else a for a, x in zip(axes, (x1, x2)))


def l2_normalize(x, axis: int, epsilon: float):
    """ops.nn.normalize(order=2): x * min(rsqrt(sum x^2), 1 / epsilon) along ``axis``."""
    with np.errstate(divide="ignore"):
        inv = 1.0 / np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    return x * np.minimum(inv, 1.0 / epsilon)


def dot(layer, inputs, masks, tape=None):
    if len(inputs) != 2:
        raise ValueError(f"Dot {layer.name!r} takes exactly 2 inputs, got {len(inputs)}")
    x1, x2 = inputs
    a1, a2 = _dot_axes(layer.options["axes"], x1, x2)
    if 0 in (a1, a2):
        raise ValueError(f"Dot {layer.name!r}: axes {layer.options['axes']} include the batch axis")
    if layer.options.get("normalize"):
        eps = layer.options["epsilon"]
        x1, x2 = l2_normalize(x1, a1, eps), l2_normalize(x2, a2, eps)
    left = np.moveaxis(x1, a1, -1)             # (B, I..., K)
    right = np.moveaxis(x2, a2, 1)             # (B, K, J...)
    batch, k = left.shape[0], left.shape[-1]
    y = left.reshape(batch, -1, k) @ right.reshape(batch, k, -1)   # (B, prod I, prod J)
    y = y.reshape(batch, *left.shape[1:-1], *right.shape[2:])      # (B, I..., J...)
    return (y[:, None] if y.ndim == 1 else y), None


FORWARD = {"Add": add, "Subtract": subtract, "Multiply": multiply, "Average": average,
           "Maximum": _masked_extremum(np.maximum), "Minimum": _masked_extremum(np.minimum),
           "Concatenate": concatenate, "Dot": dot}
