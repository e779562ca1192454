"""Keras's normalization layers at inference (keras/src/layers/normalization/). Each sets ``supports_masking =
True`` and keeps Layer's ``compute_mask`` (keras/src/layers/layer.py L865-866), so each passes its mask on
unchanged; none of them uses it at inference: mask' = mask.

    BatchNormalization  y = (x - μ) γ / sqrt(σ² + ε) + β along ``axis`` (one int), μ and σ² the MOVING statistics
                        (batch_normalization.py L334-386: the batch's moments and the mask are read only in
                        training; ``renorm`` changes training only, and ``synchronized`` only how training
                        moments are summed). γ = 1 without ``scale``, β = 0 without ``center``.
                        supports_masking: L205
    LayerNormalization  over the axes A (a list): μ = mean_A x, σ² = mean_A (x - μ)², y = (x - μ) γ / sqrt(σ² + ε) + β,
                        γ and β of shape x.shape[A]. With ``rms_scaling`` (deprecated in Keras 3.15.1, and not RMS
                        normalization: keras/src/ops/nn.py L3171-3176) y = x γ / sqrt(σ² + ε): x is NOT centred,
                        and there is no β.                            layer_normalization.py L150, L186-195
    UnitNormalization   y = x min(1 / sqrt(sum_A x²), 1e12) over the axes A (keras/src/ops/nn.py L2722-2730,
                        epsilon 1e-12 from unit_normalization.py L43-44)                    L39
    GroupNormalization  the channels of ``axis`` cut into G contiguous groups; μ and σ² of each group over every
                        other non-batch axis; y = (x - μ) γ / sqrt(σ² + ε) + β, γ and β per channel
                        (group_normalization.py L158-214)                                   L89

Weights in ``get_weights()`` order: BatchNormalization ``(γ if scale, β if center, moving_mean,
moving_variance)`` (renorm's three extra arrays follow, unused at inference); LayerNormalization and
GroupNormalization ``(γ if scale (or rms_scaling), β if center (and not rms_scaling))``. Options: ``axis``
(BatchNormalization and GroupNormalization an int, LayerNormalization and UnitNormalization a list of ints,
negatives counted from the end), ``epsilon``, ``center``, ``scale``, LayerNormalization ``rms_scaling``,
GroupNormalization ``groups``.
"""
from __future__ import annotations

import numpy as np

UNIT_NORM_EPSILON = 1e-12  # keras/src/layers/normalization/unit_normalization.py L44


def _axes(axis, ndim: int) -> list[int]:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return sorted(a % ndim for a in axes)


def _along(v, axes: list[int], ndim: int, shape) -> np.ndarray:
    """``v`` (of shape ``shape[axes]``) broadcastable against an array of ``ndim`` axes."""
    target = [1] * ndim
    for a in axes:
        target[a] = shape[a]
    return np.asarray(v, np.float64).reshape(target)


def _affine(layer, statistics: int = 0):
    """``(γ or None, β or None, the ``statistics`` weights that follow)``, as ``center``/``scale`` say they are
    stored; a ValueError where the layer holds fewer arrays than its options say."""
    w, opt = list(layer.weights), layer.options
    has_gamma = bool(opt.get("scale", True) or opt.get("rms_scaling", False))
    has_beta = bool(opt.get("center", True) and not opt.get("rms_scaling", False))
    if len(w) < has_gamma + has_beta + statistics:
        raise ValueError(f"layer {layer.name!r} ({layer.kind}) has {len(w)} weight arrays; its options "
                         f"(center={has_beta}, scale={has_gamma}) need {has_gamma + has_beta + statistics}")
    gamma = w.pop(0) if has_gamma else None
    beta = w.pop(0) if has_beta else None
    return gamma, beta, w


def batch_normalization(layer, inputs, masks, tape=None):
    x, opt = inputs[0], layer.options
    gamma, beta, (mean, variance, *_) = _affine(layer, statistics=2)
    axes = _axes(opt.get("axis", -1), x.ndim)
    along = lambda v: _along(v, axes, x.ndim, x.shape)  # noqa: E731
    # y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, each step in place on the fresh x - mean
    y = x - along(mean)
    y /= np.sqrt(along(variance) + float(opt.get("epsilon", 1e-3)))
    if gamma is not None:
        y *= along(gamma)
    if beta is not None:
        y += along(beta)
    return y, masks[0]


def layer_normalization(layer, inputs, masks, tape=None):
    x, opt = inputs[0], layer.options
    gamma, beta, _ = _affine(layer)
    axes = _axes(opt.get("axis", [-1]), x.ndim)
    mean = x.mean(axis=tuple(axes), keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=tuple(axes), keepdims=True)
    inv = 1.0 / np.sqrt(variance + float(opt.get("epsilon", 1e-3)))
    y = x * inv if opt.get("rms_scaling", False) else (x - mean) * inv
    if gamma is not None:
        y = y * _along(gamma, axes, x.ndim, x.shape)
    if beta is not None:
        y = y + _along(beta, axes, x.ndim, x.shape)
    return y, masks[0]


def unit_normalization(layer, inputs, masks, tape=None):
    x = inputs[0]
    axes = tuple(_axes(layer.options.get("axis", [-1]), x.ndim))
    with np.errstate(divide="ignore"):  # an all-zero row: 1/0 = inf, capped at 1e12 as in Keras
        inv = np.minimum(1.0 / np.sqrt((x * x).sum(axis=axes, keepdims=True)), 1.0 / UNIT_NORM_EPSILON)
    return x * inv, masks[0]


def group_normalization(layer, inputs, masks, tape=None):
    x, opt = inputs[0], layer.options
    gamma, beta, _ = _affine(layer)
    axis = opt.get("axis", -1) % x.ndim
    channels = x.shape[axis]
    groups = channels if opt["groups"] == -1 else int(opt["groups"])
    if channels % groups:
        raise ValueError(f"layer {layer.name!r}: {channels} channels do not split into {groups} groups")
    grouped = x.reshape(x.shape[:axis] + (groups, channels // groups) + x.shape[axis + 1:])
    reduce = tuple(a for a in range(1, grouped.ndim) if a != axis)  # all but the batch and the group index
    mean = grouped.mean(axis=reduce, keepdims=True)
    variance = ((grouped - mean) ** 2).mean(axis=reduce, keepdims=True)
    y = ((grouped - mean) / np.sqrt(variance + float(opt.get("epsilon", 1e-3)))).reshape(x.shape)
    if gamma is not None:
        y = y * _along(gamma, [axis], x.ndim, x.shape)
    if beta is not None:
        y = y + _along(beta, [axis], x.ndim, x.shape)
    return y, masks[0]


FORWARD = {"BatchNormalization": batch_normalization, "LayerNormalization": layer_normalization,
           "UnitNormalization": unit_normalization, "GroupNormalization": group_normalization}
