"""Keras's reshaping layers (keras/src/layers/reshaping/), at inference; ``x`` is (B, ...), the batch first.

    Reshape(target_shape)   y = reshape(x, (B, *target_shape)), one -1 in target_shape resolved from the size
    Permute(dims)           y = transpose(x, (0, *dims)); dims number the axes from 1
    RepeatVector(n)         x (B, D) -> y (B, n, D), y[:, k] = x for every k
    Flatten(data_format)    y = reshape(x, (B, -1)); channels_first moves the channel axis last first
                            (x (B, C, d1..dk) -> (B, d1..dk, C)); a rank-1 x gives (B, 1)
    ZeroPadding1D((a, b))   y = x with a zeros before and b after the steps axis (axis 1, or 2 if channels_first)
    ZeroPadding2D(((t, b), (l, r)))   the same on the two spatial axes
    ZeroPadding3D(((a1, b1), (a2, b2), (a3, b3)))   the same on the three spatial axes
    Cropping1D((a, b))      y = x[:, a : T - b]          (no data_format in Keras: always axis 1)
    Cropping2D(((t, b), (l, r)))      y = x[:, t : H - b, l : W - r] (channels_last)
    Cropping3D(((a1, b1), (a2, b2), (a3, b3)))   the same on the three spatial axes
    UpSampling1D(size)      y[:, t] = x[:, t // size]    (np.repeat on axis 1)
    UpSampling3D((s1, s2, s3))   nearest: np.repeat on each spatial axis (Keras has no other interpolation)
    UpSampling2D((sh, sw), interpolation)
        nearest             y[:, i, j] = x[:, i // sh, j // sw]
        bilinear            y = R_h x R_w^T on the spatial axes: Keras calls ops.image.resize(antialias=False),
                            i.e. tf.image.resize / jax.image.resize / F.interpolate(align_corners=False), which
                            sample at half-pixel centres: output row i reads s = (i + 0.5) / sh - 0.5,
                            (1 - frac(s)) x[floor(s)] + frac(s) x[floor(s) + 1], rows clamped to [0, H - 1]
                            (for an integer factor, jax's renormalised triangle kernel gives the same weights)
        other interpolations (bicubic, lanczos, area) are not modelled: keras_impl/verify refuses them.

Masks: every one of these layers drops the mask (mask' = None). None of the Keras 3.15.1 classes sets
``supports_masking`` or overrides ``compute_mask`` (keras/src/layers/reshaping/*.py), so
``Layer.__init__`` leaves ``supports_masking`` False (keras/src/layers/layer.py L335) and ``Layer.__call__``
warns "does not support masking and will therefore destroy the mask information" and passes no mask on
(layer.py L1034-1044). One exception, a backend's: Keras keeps a mask as an attribute of the tensor object
(keras/src/backend/common/tensor_attributes.py), and where the backend's op returns its input object itself
the mask stays on it: on JAX a reshape to the same shape, an identity transpose, a crop of nothing (Reshape,
Permute, Flatten of (B, D), Cropping with zeros) keep the mask, and a downstream LSTM reads it (Layer.__call__
fills ``mask`` from the attribute, layer.py L947-959). keras_impl/verify probes the layer for it and sets the
option ``keeps_mask``: then mask' = mask.

Options are stored as Keras's config normalises them (tuples of ints; padding and cropping as
((before, after), ...)).
"""
from __future__ import annotations

import numpy as np


def _mask_out(layer, masks):
    """None (Keras drops the mask), or the input's mask where the backend hands back the input object itself."""
    return masks[0] if layer.options.get("keeps_mask") else None


def _channels_first(layer) -> bool:
    return layer.options.get("data_format", "channels_last") == "channels_first"


def reshape(layer, inputs, masks, tape=None):
    x = inputs[0]
    return x.reshape(x.shape[0], *layer.options["target_shape"]), _mask_out(layer, masks)


def permute(layer, inputs, masks, tape=None):
    return np.transpose(inputs[0], (0, *layer.options["dims"])), _mask_out(layer, masks)


def repeat_vector(layer, inputs, masks, tape=None):
    x = inputs[0]  # (B, D)
    if x.ndim != 2:
        raise ValueError(f"RepeatVector {layer.name!r} takes (batch, features), got shape {x.shape}")
    return np.repeat(x[:, None, :], layer.options["n"], axis=1), _mask_out(layer, masks)  # (B, n, D)


def flatten(layer, inputs, masks, tape=None):
    x = inputs[0]
    if _channels_first(layer) and x.ndim > 2:
        x = np.transpose(x, (0, *range(2, x.ndim), 1))  # (B, C, d1..dk) -> (B, d1..dk, C)
    return x.reshape(x.shape[0], -1), _mask_out(layer, masks)


def _spatial_axes(layer, x, count: int) -> tuple[int, ...]:
    """The ``count`` spatial axes of ``x``: after the batch, or after the batch and channels (channels_first)."""
    first = 2 if _channels_first(layer) else 1
    if x.ndim != count + 2:
        raise ValueError(f"{layer.kind} {layer.name!r} takes a rank-{count + 2} input, got shape {x.shape}")
    return tuple(range(first, first + count))


def zero_padding(layer, inputs, masks, tape=None):
    """ZeroPadding1D/2D/3D: ``padding`` is ((before, after),) or one such pair per spatial axis."""
    x, padding = inputs[0], layer.options["padding"]
    widths = [(0, 0)] * x.ndim
    for axis, pair in zip(_spatial_axes(layer, x, len(padding)), padding):
        widths[axis] = tuple(pair)
    return np.pad(x, widths), _mask_out(layer, masks)


def cropping(layer, inputs, masks, tape=None):
    """Cropping1D/2D/3D: ``cropping`` as ZeroPadding's ``padding``."""
    x, crops = inputs[0], layer.options["cropping"]
    index = [slice(None)] * x.ndim
    for axis, (before, after) in zip(_spatial_axes(layer, x, len(crops)), crops):
        if before + after >= x.shape[axis]:
            raise ValueError(f"{layer.kind} {layer.name!r} crops {before}+{after} of {x.shape[axis]} steps")
        index[axis] = slice(before, x.shape[axis] - after)
    return x[tuple(index)], _mask_out(layer, masks)


def up_sampling_1d(layer, inputs, masks, tape=None):
    x = inputs[0]
    _spatial_axes(layer, x, 1)
    return np.repeat(x, layer.options["size"], axis=1), _mask_out(layer, masks)


def bilinear_matrix(n_in: int, factor: int) -> np.ndarray:
    """(n_in * factor, n_in) weights of half-pixel-centre linear interpolation, edges clamped."""
    s = (np.arange(n_in * factor) + 0.5) / factor - 0.5
    low = np.floor(s)
    frac = s - low
    low = low.astype(np.int64)
    weights = np.zeros((n_in * factor, n_in))
    rows = np.arange(n_in * factor)
    np.add.at(weights, (rows, np.clip(low, 0, n_in - 1)), 1.0 - frac)
    np.add.at(weights, (rows, np.clip(low + 1, 0, n_in - 1)), frac)
    return weights


def up_sampling_2d(layer, inputs, masks, tape=None):
    x = inputs[0]
    (h_axis, w_axis), (sh, sw) = _spatial_axes(layer, x, 2), layer.options["size"]
    how = layer.options.get("interpolation", "nearest")
    if how == "nearest":
        return np.repeat(np.repeat(x, sh, axis=h_axis), sw, axis=w_axis), _mask_out(layer, masks)
    if how != "bilinear":
        raise ValueError(f"UpSampling2D {layer.name!r}: interpolation {how!r} is not modelled (nearest, bilinear)")
    r_h, r_w = bilinear_matrix(x.shape[h_axis], sh), bilinear_matrix(x.shape[w_axis], sw)
    y = np.moveaxis(x, (h_axis, w_axis), (1, 2))                    # (B, H, W, C)
    y = np.einsum("hH,bHWc,wW->bhwc", r_h, y, r_w, optimize=True)    # (B, sh H, sw W, C)
    return np.moveaxis(y, (1, 2), (h_axis, w_axis)), _mask_out(layer, masks)


def up_sampling_3d(layer, inputs, masks, tape=None):
    x = inputs[0]
    for axis, size in zip(_spatial_axes(layer, x, 3), layer.options["size"]):
        x = np.repeat(x, size, axis=axis)
    return x, _mask_out(layer, masks)


FORWARD = {"Reshape": reshape, "Permute": permute, "RepeatVector": repeat_vector, "Flatten": flatten,
           "ZeroPadding1D": zero_padding, "ZeroPadding2D": zero_padding, "ZeroPadding3D": zero_padding,
           "Cropping1D": cropping, "Cropping2D": cropping, "Cropping3D": cropping,
           "UpSampling1D": up_sampling_1d, "UpSampling2D": up_sampling_2d, "UpSampling3D": up_sampling_3d}
