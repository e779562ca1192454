"""Keras's convolution layers at inference (keras/src/layers/convolutional/), in Keras's kernel layout.

One function, ``convolve``, computes every kind: a cross-correlation (no kernel flip) of the input, padded,
with windows of the dilated kernel taken every ``strides`` steps, as one matrix product per group (the windows
are a ``sliding_window_view``, never a Python loop over positions). With ``k_eff = (k - 1) d + 1`` on a
spatial axis of length n, stride s and dilation d:

    valid     no padding; out = floor((n - k_eff) / s) + 1
    same      total = max((ceil(n / s) - 1) s + k_eff - n, 0), left = total // 2, right = total - left
              (the smaller half on the left, as TensorFlow, XLA and Keras's torch backend pad)
    causal    left = k_eff - 1, right = 0 (Conv1D only: keras/src/layers/convolutional/conv1d.py L136-152
              pads the input on the left, then convolves "valid")

    Conv1D/2D/3D(F, groups g)   y[.., f] = act(sum_{k, c in group(f)} xpad[.. + k d, c] K[k, c mod (C/g), f] + b[f])
                                kernel (*k, C/g, F), bias (F,); output channel f reads input group f // (F/g)
    DepthwiseConv1D/2D(M)       the grouped conv with g = C, kernel (*k, C, M) read as (*k, 1, C M): output channel
                                c M + m is input channel c convolved with K[.., c, m]; bias (C M,)
                                (keras/src/backend/numpy/nn.py depthwise_conv reshapes the kernel so)
    SeparableConv1D/2D(F, M)    the depthwise conv (strides, padding, dilation; no bias) then a 1x1 conv with the
                                pointwise kernel (1.., C M, F), + b, act; weights (depthwise, pointwise, bias)
    Conv1DTranspose/2D/3D(F)    the adjoint of the strided conv, as jax.lax.conv_transpose computes it: x spread
                                with s - 1 zeros between samples, padded (left, right) from
                                keras/src/backend/common/backend_utils.py
                                _convert_conv_transpose_padding_args_from_keras_to_jax:
                                  valid  left = k_eff - 1, right = k_eff - 1 + (op if given else max(k_eff, s) - k_eff)
                                  same   p = s + k_eff - 2 without op, else k_eff + k_eff % 2 - 2 + op;
                                         left = min(ceil(p / 2), k_eff - 1), right = p - left
                                then correlated (stride 1, dilation d) with the kernel flipped on every spatial axis
                                and its (F, C) axes swapped; kernel (*k, F, C), bias (F,)

Every kind adds its bias on the channel axis, then applies its activation by Keras's name
(``reference/activations.py``). ``data_format`` "channels_first" reads and writes (B, C, *spatial); the
computation is the channels_last one, transposed in and out.

Mask rule, every kind: none of these layers supports masking: their ``call`` takes no ``mask`` and they keep the
base ``compute_mask``, so ``supports_masking`` is False (keras/src/layers/layer.py L335). A mask reaching one is
not used, and is destroyed with a warning ("this layer does not support masking and will therefore destroy the
mask information"): keras/src/layers/layer.py L1034-1044, the ``elif`` at L1038; no mask is set on the output.
                                                                    mask' = None
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..activations import activate_in_place
from ..parallel import over_ranges


def _pads(n: int, k_eff: int, s: int, padding) -> tuple[int, int]:
    """(left, right) padding of one spatial axis of length n for Keras's padding name."""
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return k_eff - 1, 0
    if padding == "same":
        total = max((math.ceil(n / s) - 1) * s + k_eff - n, 0)
        return total // 2, total - total // 2
    raise ValueError(f"unknown padding {padding!r}; expected valid, same or causal")


def _pad_or_crop(x: np.ndarray, pads) -> np.ndarray:
    """``x`` (B, *spatial, C) padded with zeros by (left, right) per spatial axis; a negative amount crops."""
    crop = tuple(slice(max(-lo, 0), x.shape[i + 1] - max(-hi, 0)) for i, (lo, hi) in enumerate(pads))
    x = x[(slice(None),) + crop]
    grow = [(0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pads] + [(0, 0)]
    if not any(lo or hi for lo, hi in grow):
        return x
    # zeros, then x copied in: np.pad's result, in half np.pad's time (1.1 ms against 0.6 for a CRNN's second conv)
    padded = np.zeros([n + lo + hi for n, (lo, hi) in zip(x.shape, grow)], x.dtype)
    padded[tuple(slice(lo, lo + n) for n, (lo, hi) in zip(x.shape, grow))] = x
    return padded


WINDOW_BUFFER_BYTES = 2 << 20  # about L2's size: the copied windows are read back by the product from the cache


def activate_rows_in_place(activation: str, rows: np.ndarray) -> None:
    """``rows`` (positions, F), a fresh product no one else reads, replaced by ``activation`` of it. Every
    activation a layer may name is elementwise or, as softmax, over the last (channel) axis: a few rows at a
    time are the whole at once."""
    activated = activate_in_place(activation, rows)
    if activated is not rows:
        rows[...] = activated


def windows_times_kernel(windows, kernel_matrix, rank: int, bias=None, activation: str = "linear") -> np.ndarray:
    """``activation(windows.reshape(-1, K) @ kernel_matrix + bias)`` reshaped to (B, *out, F): windows
    (B, *out, *k, C) a strided view over ``rank`` spatial axes, kernel_matrix (K = taps C, F), bias (F,) or None.

    The same rows times the same matrix, a few output rows at a time: the windows of one or more positions of
    the first output axis are copied into one reused buffer of about ``WINDOW_BUFFER_BYTES`` (with a last
    column of ones that meets the bias as a last row of the kernel: ``[w | 1] [K; b] = w K + b``), multiplied
    into their rows of the output, and the activation applied to those rows while they are in the cache. (As
    passes over the whole output afterwards, a bias and a relu cost a CRNN's first layer as much as its product;
    the whole (positions, taps C) copy at once is GBs at realistic sizes: a speech model's (11, 21) kernel over
    32 channels makes 7392 columns for each of 39200 positions.)
    """
    batch, first = windows.shape[:2]
    window_rows = windows.shape[1:rank + 1]  # (*out): the positions of one example
    width, filters = kernel_matrix.shape
    dtype = np.result_type(windows, kernel_matrix, *([] if bias is None else [bias]))
    if bias is not None:
        kernel_matrix = np.concatenate([kernel_matrix, np.reshape(bias, (1, filters))]).astype(dtype, copy=False)
    columns = kernel_matrix.shape[0]  # width, + 1 with the bias
    y = np.empty((batch,) + window_rows + (filters,), dtype)
    positions = math.prod(window_rows[1:])  # of one position of the first axis
    per_first = max(1, positions * (columns + filters) * dtype.itemsize)  # bytes: its windows and its output
    chunk = max(1, min(first, WINDOW_BUFFER_BYTES // per_first))

    def examples(begin: int, end: int) -> None:  # examples [begin, end), through a buffer of their own
        buffer = np.ones((chunk * positions, columns), dtype)  # the ones column stays: copies fill the rest
        windows_part = buffer[:, :width].view()
        windows_part.shape = (chunk,) + windows.shape[2:]  # a view (an error rather than a silent copy)
        for b in range(begin, end):
            for start in range(0, first, chunk):
                stop = min(first, start + chunk)
                np.copyto(windows_part[:stop - start], windows[b, start:stop])
                rows = y[b, start:stop].reshape(-1, filters)
                np.matmul(buffer[:rows.shape[0]], kernel_matrix, out=rows)
                activate_rows_in_place(activation, rows)
    # Examples share nothing: on two threads where reference.parallel is on (its docstring says why)
    over_ranges(examples, batch, work=y.size * columns)
    return y


FIRST_AXIS_COLUMNS_MAX_FILTERS = 64  # below this many filters a product's narrow right side is slow
FIRST_AXIS_COLUMNS_MIN_DEPTH = 128  # and at least this deep without the first axis's taps (else the copies cost more)


def first_axis_as_columns(kernel_shape, rank: int) -> bool:
    """Whether ``convolve`` takes ``convolve_first_axis_as_columns``: two or more spatial axes, a first kernel
    axis of two or more taps, and few filters (the product it widens is then the slow one)."""
    inner = math.prod(kernel_shape[1:-1])  # the product's depth: the other axes' taps times the channels
    return (rank >= 2 and kernel_shape[0] > 1 and kernel_shape[-1] < FIRST_AXIS_COLUMNS_MAX_FILTERS
            and inner >= FIRST_AXIS_COLUMNS_MIN_DEPTH)


def convolve_first_axis_as_columns(xp, kernel, strides, dilation, out_first: int) -> np.ndarray:
    """The "valid" convolution of the padded ``xp`` (B, n_0, *spatial, C) with ``kernel`` (k_0, *k, C, F), its
    first kernel axis taken as columns of the product, then summed over shifted rows:

        P[b, i, *p, (a, f)] = sum_{*k, c} xp[b, i, *p s + *k d, c] K[a, *k, c, f]     every input row i, one product
        y[b, o, *p, f]      = sum_a P[b, o s_0 + a d_0, *p, (a, f)]                   k_0 shifted adds

    The same sum over taps as one product over all of them, in two stages: the product's right side is
    k_0 F columns wide rather than F (a speech model's (11, 21) kernel over 32 channels to 32 filters: 352
    columns of 672 rather than 32 of 7392), which OpenBLAS runs about twice as fast; the cost is the
    product for input rows that no output reads with some taps (at most k_0 - 1 + (s_0 - 1) out_first rows).
    """
    rank = kernel.ndim - 2
    k0, filters = kernel.shape[0], kernel.shape[-1]
    rest_eff = [(k - 1) * d + 1 for k, d in zip(kernel.shape[1:rank], dilation[1:])]
    rest_axes = tuple(range(2, rank + 1))
    windows = sliding_window_view(xp, rest_eff, axis=rest_axes)  # (B, n_0, *positions, C, *k_eff)
    windows = windows[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides[1:]) + (slice(None),)
                      + tuple(slice(None, None, d) for d in dilation[1:])]
    windows = np.moveaxis(windows, rank + 1, -1)  # (B, n_0, *positions, *k, C)
    columns = np.moveaxis(kernel, 0, -2).reshape(-1, k0 * filters)  # (*k C, (a, f))
    s0, d0 = strides[0], dilation[0]
    y = None
    for b in range(xp.shape[0]):  # one example's P at a time (a speech example's: 15 MB)
        P = windows_times_kernel(windows[b:b + 1], columns, rank)[0]  # (n_0, *positions, k_0 F)
        P = P.reshape(P.shape[:-1] + (k0, filters))
        if y is None:
            y = np.empty((xp.shape[0], out_first) + P.shape[1:-2] + (filters,), P.dtype)
        rows = lambda a: P[a * d0:a * d0 + (out_first - 1) * s0 + 1:s0, ..., a, :]  # noqa: E731
        np.copyto(y[b], rows(0))
        for a in range(1, k0):
            y[b] += rows(a)
    return y


def convolve(x, kernel, *, strides=1, padding="valid", dilation_rate=1, groups: int = 1,
             bias=None, activation: str = "linear") -> np.ndarray:
    """Keras's ``ops.conv`` on channels_last arrays: x (B, *spatial, C), kernel (*k, C / groups, F) -> (B, *out, F).

    ``padding``: "valid", "same", "causal", or explicit (left, right) per spatial axis (negative crops).
    ``strides`` / ``dilation_rate``: an int or one per spatial axis.
    ``bias`` (F,) or None and ``activation`` (Keras's name) finish the layer: ``activation(conv(x) + bias)``,
    on the one-product path chunk by chunk while the output is in the cache.
    """
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    rank = kernel.ndim - 2
    sizes = kernel.shape[:rank]
    strides = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    dilation = (dilation_rate,) * rank if isinstance(dilation_rate, int) else tuple(dilation_rate)
    k_eff = [(k - 1) * d + 1 for k, d in zip(sizes, dilation)]
    if isinstance(padding, str):
        pads = [_pads(n, ke, s, padding) for n, ke, s in zip(x.shape[1:-1], k_eff, strides)]
    else:
        pads = [tuple(p) for p in padding]
    xp = _pad_or_crop(x, pads)
    spatial = tuple(range(1, rank + 1))
    # (B, *positions, C, *k_eff): every window, a view; then every s-th position and every d-th tap, and the
    # channels moved last, so that a window flattens in the kernel's own (*k, C) order (contiguous channel runs)
    windows = sliding_window_view(xp, k_eff, axis=spatial)
    windows = windows[(slice(None),) + tuple(slice(None, None, s) for s in strides) + (slice(None),)
                      + tuple(slice(None, None, d) for d in dilation)]
    windows = np.moveaxis(windows, rank + 1, -1)
    batch_out = windows.shape[:rank + 1]
    channels, filters = x.shape[-1], kernel.shape[-1]
    taps = math.prod(sizes)
    if groups == 1 and first_axis_as_columns(kernel.shape, rank):
        y = convolve_first_axis_as_columns(xp, kernel.astype(np.result_type(x, kernel), copy=False), strides,
                                           dilation, batch_out[1])
    elif groups == 1:  # one product: (positions, taps C) @ (taps C, F)
        return windows_times_kernel(windows, kernel.reshape(taps * channels, filters).astype(
            np.result_type(x, kernel), copy=False), rank, bias, activation)
    else:
        per_group_in, per_group_out = channels // groups, filters // groups
        # one product per group: windows (groups, positions, taps C/g) @ kernel (groups, taps C/g, F/g)
        w = windows.reshape(-1, taps, groups, per_group_in).transpose(2, 0, 1, 3).reshape(groups, -1,
                                                                                          taps * per_group_in)
        k = kernel.reshape(taps * per_group_in, groups, per_group_out).transpose(1, 0, 2)
        y = np.matmul(w, k)  # (groups, positions, F/g)
        y = y.transpose(1, 0, 2).reshape(batch_out + (filters,))
    if bias is not None:
        y += bias  # in place: y is fresh (the oracle's time goes to memory passes at real sizes)
    y = np.ascontiguousarray(y)  # (it is: fresh) so that the reshape below is a view, changed in place
    activate_rows_in_place(activation, y.reshape(-1, filters))
    return y


def transpose_pads(k: int, s: int, d: int, padding: str, output_padding) -> tuple[int, int]:
    """(left, right) padding of the spread input for one axis of a transpose conv (Keras's JAX conversion)."""
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        extra = max(k_eff, s) - k_eff if output_padding is None else output_padding
        return k_eff - 1, k_eff - 1 + extra
    if padding != "same":
        raise ValueError(f"unknown padding {padding!r} for a transpose conv; expected valid or same")
    total = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k_eff - 1)
    return left, total - left


def convolve_transpose(x, kernel, *, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                       bias=None, activation: str = "linear"):
    """Keras's ``ops.conv_transpose``, channels_last: x (B, *spatial, C), kernel (*k, F, C) -> (B, *out, F).

    ``output_padding``: None or one int per spatial axis (or an int for all); ``bias``, ``activation`` as ``convolve``'s.
    """
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    rank = kernel.ndim - 2
    strides = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    dilation = (dilation_rate,) * rank if isinstance(dilation_rate, int) else tuple(dilation_rate)
    if output_padding is None or isinstance(output_padding, int):
        output_padding = (output_padding,) * rank
    spread_shape = (x.shape[0],) + tuple((n - 1) * s + 1 for n, s in zip(x.shape[1:-1], strides)) + (x.shape[-1],)
    spread = np.zeros(spread_shape, dtype=x.dtype)
    spread[(slice(None),) + tuple(slice(None, None, s) for s in strides)] = x
    pads = [transpose_pads(k, s, d, padding, op)
            for k, s, d, op in zip(kernel.shape[:rank], strides, dilation, output_padding)]
    flipped = np.swapaxes(kernel[(slice(None, None, -1),) * rank], -1, -2)  # (*k, C, F)
    return convolve(spread, flipped, padding=pads, dilation_rate=dilation, bias=bias, activation=activation)


def _channels_last(x, options) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if options.get("data_format") == "channels_first" else x


def _finishing(layer, bias_index: int) -> dict:
    """``convolve``'s bias (the layer's weight ``bias_index``, None without one) and activation."""
    bias = layer.weights[bias_index] if len(layer.weights) > bias_index else None
    return {"bias": bias, "activation": layer.options.get("activation", "linear")}


def _channels_out(y, options) -> np.ndarray:
    """Back to the layer's data_format."""
    return np.moveaxis(y, -1, 1) if options.get("data_format") == "channels_first" else y


def _geometry(options) -> dict:
    return {"strides": tuple(options["strides"]), "padding": options["padding"],
            "dilation_rate": tuple(options["dilation_rate"])}


def conv(layer, inputs, masks, tape=None):
    """Conv1D/2D/3D: weights (kernel, bias) or (kernel,) without a bias."""
    kernel = layer.weights[0]
    groups = layer.options.get("groups", 1)
    y = convolve(_channels_last(inputs[0], layer.options), kernel, groups=groups, **_finishing(layer, 1),
                 **_geometry(layer.options))
    return _channels_out(y, layer.options), None


def depthwise_kernel_as_grouped(kernel) -> np.ndarray:
    """A depthwise kernel (*k, C, M) as the grouped conv's (*k, 1, C M), output channel c M + m."""
    kernel = np.asarray(kernel)
    return kernel.reshape(kernel.shape[:-2] + (1, kernel.shape[-2] * kernel.shape[-1]))


def depthwise(layer, inputs, masks, tape=None):
    """DepthwiseConv1D/2D: weights (depthwise kernel (*k, C, M), bias (C M,)) or without the bias."""
    kernel = layer.weights[0]
    y = convolve(_channels_last(inputs[0], layer.options), depthwise_kernel_as_grouped(kernel),
                 groups=kernel.shape[-2], **_finishing(layer, 1), **_geometry(layer.options))
    return _channels_out(y, layer.options), None


def separable(layer, inputs, masks, tape=None):
    """SeparableConv1D/2D: weights (depthwise (*k, C, M), pointwise (1.., C M, F), bias (F,)) or without the bias."""
    depthwise_kernel, pointwise_kernel = layer.weights[:2]
    y = convolve(_channels_last(inputs[0], layer.options), depthwise_kernel_as_grouped(depthwise_kernel),
                 groups=depthwise_kernel.shape[-2], **_geometry(layer.options))
    y = convolve(y, pointwise_kernel, **_finishing(layer, 2))
    return _channels_out(y, layer.options), None


def conv_transpose(layer, inputs, masks, tape=None):
    """Conv1DTranspose/2D/3D: weights (kernel (*k, F, C), bias (F,)) or without the bias; ``output_padding`` option."""
    opt = layer.options
    y = convolve_transpose(_channels_last(inputs[0], opt), layer.weights[0], strides=tuple(opt["strides"]),
                           padding=opt["padding"], output_padding=opt.get("output_padding"),
                           dilation_rate=tuple(opt["dilation_rate"]),
                           **_finishing(layer, 1))
    return _channels_out(y, opt), None


FORWARD = {"Conv1D": conv, "Conv2D": conv, "Conv3D": conv,
           "SeparableConv1D": separable, "SeparableConv2D": separable,
           "DepthwiseConv1D": depthwise, "DepthwiseConv2D": depthwise,
           "Conv1DTranspose": conv_transpose, "Conv2DTranspose": conv_transpose, "Conv3DTranspose": conv_transpose}
