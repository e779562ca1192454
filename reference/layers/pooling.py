"""Keras's pooling layers (keras/src/layers/pooling/), channels_last unless ``data_format`` is channels_first.

    MaxPooling{1,2,3}D      y = the max of each window             mask' = None (no supports_masking: Keras drops
    AveragePooling{1,2,3}D  y = the mean of each window's entries   the mask with a warning, layer.py L1038-1044)
                            inside the input: with padding="same" the padding is NOT counted (jax and numpy's
                            reduce_window divide by a window count, keras/src/backend/numpy/nn.py L312-349;
                            tensorflow's avg_pool; torch's avg_pool with count_include_pad=False,
                            keras/src/backend/torch/nn.py L410-481, but see below)
        windows:            ``pool_size`` k, ``strides`` s (default k); "valid": out = floor((n - k) / s) + 1;
                            "same": out = ceil(n / s), total padding max((out - 1) s + k - n, 0), the smaller
                            half before (TensorFlow's rule, which every backend follows)
        torch:              where "same" needs an odd total padding on some axis, Keras's torch backend pads
                            by REPLICATING the edge (keras/src/backend/torch/nn.py L274-283) and then counts
                            those copies in the average: its AveragePooling differs from the other backends
                            where a window holds the copy beside two or more entries (with one, the mean of
                            x and x is x), and verify reports it as FAIL (MaxPooling is unaffected: the edge
                            is in the window)
    GlobalAveragePooling1D  y = sum_t m_t x_t / sum_t m_t  (mean without a mask; a row with no
                            valid step is 0/0 = NaN, as in Keras; global_average_pooling1d.py L70-83)
                                                                    mask' = None (L85-86)
    GlobalMaxPooling1D      y = max_t x_t over EVERY step: Keras's layer does not take the mask
                            (no supports_masking, it drops it with a warning)            mask' = None
    GlobalAveragePooling2D/3D, GlobalMaxPooling2D/3D
                            the mean / max over every spatial axis (no supports_masking) mask' = None

Options: pooling ``pool_size``, ``strides`` (tuples, one entry a spatial axis), ``padding``, ``data_format``;
global pooling ``data_format`` and ``keepdims`` (the spatial axes kept, of size 1). The windows are strided views
(``np.lib.stride_tricks.sliding_window_view``); the pooling layers reduce them one spatial axis and one window offset
at a time, each offset a strided view (``reduce_windows``: no loop over positions).
"""
from __future__ import annotations

import math

import numpy as np

from ..parallel import over_ranges


def _spatial_axes(ndim: int, data_format: str) -> tuple[int, ...]:
    return tuple(range(2, ndim)) if data_format == "channels_first" else tuple(range(1, ndim - 1))


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """(before, after) of padding="same" on an axis of size ``n``: TensorFlow's rule, the odd one after."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _padded(x: np.ndarray, axes, pool, strides, padding: str, fill: float) -> np.ndarray:
    """``x`` padded with ``fill`` for "same" (nothing for "valid")."""
    if padding != "same":
        return x
    pads = [(0, 0)] * x.ndim
    for a, k, s in zip(axes, pool, strides):
        pads[a] = same_padding(x.shape[a], k, s)
    return np.pad(x, pads, constant_values=fill)


def _windows(x: np.ndarray, axes, pool, strides, padding: str, fill: float) -> np.ndarray:
    """Every window of ``x`` (padded with ``fill`` for "same"), window entries on trailing axes: the literal form
    of the windows, which ``reduce_windows`` reduces by offsets (``parity_tests/oracle/test_fast_paths.py``)."""
    x = _padded(x, axes, pool, strides, padding, fill)
    views = np.lib.stride_tricks.sliding_window_view(x, tuple(pool), axis=tuple(axes))
    index = [slice(None)] * views.ndim
    for a, s in zip(axes, strides):
        index[a] = slice(None, None, s)
    return views[tuple(index)]


POOL_BLOCK_BYTES = 256 << 10  # input rows reduced at a time: their first-axis reduction stays in the cache


def reduce_windows(ufunc, x: np.ndarray, axes, pool, strides, padding: str, fill: float) -> np.ndarray:
    """``ufunc`` (np.maximum, np.add) over every window of ``x``: ``_windows(..).max / .sum`` over the window axes.

    One spatial axis at a time (a window's max is the max over its rows of each row's max; its sum the same with
    sums), each axis one whole-array ``ufunc`` a window offset: the entry at offset i along the axis of every
    window is one strided view (long inner loops, where reducing a (2, 2) window's own axes is a loop of two).
    The first axis first, a block of output rows at a time: its views skip whole input rows, so its inner loops
    run along the contiguous rest of a row, and its result is still in the cache when the next axes reduce it
    (a CRNN's (16, 200, 50, 32) 2 x 2 max pool: 4.7 ms with every offset over both axes at once, 2 threads).
    """
    x = _padded(x, axes, pool, strides, padding, fill)
    if any(x.shape[a] < k for a, k in zip(axes, pool)):
        raise ValueError(f"pool_size {tuple(pool)} is larger than the (padded) input's spatial shape "
                         f"{tuple(x.shape[a] for a in axes)}")  # as sliding_window_view refuses it
    out_shape = list(x.shape)
    for a, k, s in zip(axes, pool, strides):
        out_shape[a] = (x.shape[a] - k) // s + 1
    result = np.empty(out_shape, x.dtype)
    first, k0, s0 = axes[0], pool[0], strides[0]
    row_bytes = x.itemsize * math.prod(x.shape[1:]) // x.shape[first] * k0  # input read for an output row
    block = max(1, POOL_BLOCK_BYTES // max(1, row_bytes))  # output rows of the first axis at a time

    def along(values, axis: int, k: int, s: int, begin: int, end: int, out) -> None:
        """out = ufunc over the k offsets along ``axis`` for the outputs [begin, end) of that axis."""
        def at(offset):
            index = [slice(None)] * values.ndim
            index[axis] = slice(begin * s + offset, (end - 1) * s + offset + 1, s)
            return values[tuple(index)]
        if k == 1:
            np.copyto(out, at(0))
            return
        ufunc(at(0), at(1), out=out)  # the first two offsets in one pass (one pass fewer than a copy of the first)
        for offset in range(2, k):
            ufunc(out, at(offset), out=out)

    def examples(begin: int, end: int) -> None:  # rows [begin, end) of the first (batch) axis
        batch_rows = slice(None) if 0 in axes else slice(begin, end)
        values = x[batch_rows]
        target = result[batch_rows]
        for r0 in range(0, out_shape[first], block):
            r1 = min(out_shape[first], r0 + block)
            rows = [slice(None)] * x.ndim
            rows[first] = slice(r0, r1)
            part = target[tuple(rows)]
            shape = list(values.shape)
            shape[first] = r1 - r0
            reduced = part if len(axes) == 1 else np.empty(shape, x.dtype)
            along(values, first, k0, s0, r0, r1, reduced)
            for i, (a, k, s) in enumerate(zip(axes[1:], pool[1:], strides[1:]), start=2):
                shape[a] = out_shape[a]
                out = part if i == len(axes) else np.empty(shape, x.dtype)
                along(reduced, a, k, s, 0, out_shape[a], out)
                reduced = out
    # Examples share nothing: on two threads where reference.parallel is on (its docstring says why)
    over_ranges(examples, 1 if 0 in axes else x.shape[0], work=x.size * 2)
    return result


def pooling(layer, inputs, masks, tape=None):
    """Max or average pooling of any rank (the kind says which); ``(B, *spatial, C)`` or channels_first."""
    x, opt = inputs[0], layer.options
    axes = _spatial_axes(x.ndim, opt.get("data_format", "channels_last"))
    pool = tuple(opt["pool_size"])
    strides = tuple(opt.get("strides") or pool)
    padding = opt.get("padding", "valid")
    if layer.kind.startswith("Max"):
        return reduce_windows(np.maximum, x, axes, pool, strides, padding, -np.inf), None
    total = reduce_windows(np.add, x, axes, pool, strides, padding, 0.0)
    ones = np.ones([x.shape[a] if a in axes else 1 for a in range(x.ndim)])
    count = reduce_windows(np.add, ones, axes, pool, strides, padding, 0.0)  # entries inside the input
    return total / count, None


def global_pooling(layer, inputs, masks, tape=None):
    """GlobalMax / GlobalAverage pooling 1D, 2D, 3D; GlobalAveragePooling1D averages the valid steps only."""
    x, mask, opt = inputs[0], masks[0], layer.options
    channels_first = opt.get("data_format", "channels_last") == "channels_first"
    axes = _spatial_axes(x.ndim, opt.get("data_format", "channels_last"))
    keepdims = bool(opt.get("keepdims", False))
    if layer.kind.startswith("GlobalMax"):
        return x.max(axis=axes, keepdims=keepdims), None
    if mask is None or layer.kind != "GlobalAveragePooling1D":
        return x.mean(axis=axes, keepdims=keepdims), None
    m = np.expand_dims(mask, 1 if channels_first else 2).astype(np.float64)  # L73-75: the mask on the steps axis
    with np.errstate(invalid="ignore", divide="ignore"):  # a row with no valid step: NaN, as in Keras
        return (np.where(m > 0, x, 0.0).sum(axis=axes, keepdims=keepdims)
                / np.broadcast_to(m, x.shape).sum(axis=axes, keepdims=keepdims)), None


FORWARD = {f"{mode}Pooling{d}D": pooling for mode in ("Max", "Average") for d in (1, 2, 3)} | {
    f"Global{mode}Pooling{d}D": global_pooling for mode in ("Max", "Average") for d in (1, 2, 3)}
