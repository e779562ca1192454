"""The oracle's convolutions and ConvLSTM against an independent implementation: torch.nn.functional.

torch's conv1d/2d/3d and conv_transpose1d/2d compute in (B, C, *spatial) with kernels (F, C / g, *k) and
(C, F, *k); "same" with strides is padded by TensorFlow's documented rule written here (the smaller half on the
left), and the transpose conv's "same" output is torch's full output cropped as the gradient of that "same" conv
(left crop = the conv's left pad). The ConvLSTM is written here once more with torch's conv2d, step by step.
Float64 throughout: agreement to rounding.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from reference import random_arrays
from reference.layers import Layer, layer_forward

torch = pytest.importorskip("torch")  # installed with the project's dev extras; the oracle's folder needs none
F = torch.nn.functional


def _t(a):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64)


def _tf_same_pads(sizes, kernel, strides, dilation):
    """TensorFlow's "same": total = max((ceil(n/s) - 1) s + k_eff - n, 0), the smaller half on the left."""
    pads = []
    for n, k, s, d in zip(sizes, kernel, strides, dilation):
        k_eff = (k - 1) * d + 1
        total = max((math.ceil(n / s) - 1) * s + k_eff - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _torch_conv(x_last, kernel, strides, padding, dilation, groups):
    """torch's convNd of a channels_last array with a Keras kernel (*k, C/g, F); channels_last out."""
    rank = kernel.ndim - 2
    x = _t(np.moveaxis(x_last, -1, 1))
    if padding == "same":
        pads = _tf_same_pads(x_last.shape[1:-1], kernel.shape[:rank], strides, dilation)
        x = F.pad(x, [p for pair in reversed(pads) for p in pair])  # F.pad: last axis first
    elif padding == "causal":
        x = F.pad(x, [(kernel.shape[0] - 1) * dilation[0], 0])
    w = _t(np.moveaxis(kernel, (-1, -2), (0, 1)))
    conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    y = conv(x, w, stride=strides, dilation=dilation, groups=groups)
    return np.moveaxis(y.numpy(), 1, -1)


CONVS = [  # kind, input shape, kernel size, filters, strides, padding, dilation, groups
    ("Conv1D", (2, 11, 4), (3,), 6, (2,), "valid", (1,), 2),
    ("Conv1D", (2, 11, 4), (3,), 5, (1,), "causal", (3,), 1),
    ("Conv1D", (3, 10, 3), (4,), 2, (3,), "same", (1,), 1),
    ("Conv2D", (2, 9, 7, 4), (3, 2), 6, (2, 1), "same", (1, 1), 2),
    ("Conv2D", (2, 9, 8, 3), (2, 3), 5, (1, 1), "same", (2, 3), 1),
    ("Conv2D", (2, 10, 7, 3), (3, 2), 4, (3, 2), "valid", (1, 1), 1),
    ("Conv3D", (2, 6, 7, 5, 2), (2, 3, 2), 3, (1, 2, 2), "same", (1, 1, 1), 1),
    ("Conv3D", (2, 7, 6, 5, 4), (3, 2, 2), 4, (1, 1, 1), "valid", (2, 1, 2), 2),
]


@pytest.mark.parametrize("kind, shape, ksize, filters, strides, padding, dilation, groups", CONVS,
                         ids=[f"{c[0]}-{c[5]}-{i}" for i, c in enumerate(CONVS)])
def test_conv_matches_torch(kind, shape, ksize, filters, strides, padding, dilation, groups, rng):
    x = rng.normal(size=shape)
    kernel, bias = random_arrays([ksize + (shape[-1] // groups, filters), (filters,)], rng)
    layer = Layer("c", kind, ("x",), {"strides": strides, "padding": padding, "dilation_rate": dilation,
                                      "groups": groups, "activation": "linear"}, (kernel, bias))
    y, _ = layer_forward(layer, [x], [None])
    expected = _torch_conv(x, kernel, strides, padding, dilation, groups) + bias
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-12)


@pytest.mark.parametrize("kind, shape, ksize, strides, padding, dilation", [
    ("DepthwiseConv1D", (2, 10, 3), (3,), (2,), "same", (1,)),
    ("DepthwiseConv2D", (2, 8, 7, 3), (3, 2), (1, 1), "valid", (2, 2)),
    ("SeparableConv1D", (2, 10, 3), (3,), (1,), "same", (2,)),
    ("SeparableConv2D", (2, 9, 7, 3), (2, 3), (2, 3), "same", (1, 1)),
])
def test_depthwise_and_separable_match_torch_grouped_convs(kind, shape, ksize, strides, padding, dilation, rng):
    """torch's depthwise conv: groups = C with its kernel (C M, 1, *k), output channel c M + m."""
    x, channels, multiplier = rng.normal(size=shape), shape[-1], 2
    depthwise = random_arrays([ksize + (channels, multiplier)], rng)[0]
    grouped = depthwise.reshape(ksize + (1, channels * multiplier))
    expected = _torch_conv(x, grouped, strides, padding, dilation, channels)
    if kind.startswith("Separable"):
        pointwise, bias = random_arrays([(1,) * len(ksize) + (channels * multiplier, 5), (5,)], rng)
        weights = (depthwise, pointwise, bias)
        expected = _torch_conv(expected, pointwise, (1,) * len(ksize), "valid", (1,) * len(ksize), 1) + bias
    else:
        bias = random_arrays([(channels * multiplier,)], rng)[0]
        weights = (depthwise, bias)
        expected = expected + bias
    layer = Layer("d", kind, ("x",), {"strides": strides, "padding": padding, "dilation_rate": dilation,
                                      "activation": "linear"}, weights)
    np.testing.assert_allclose(layer_forward(layer, [x], [None])[0], expected, atol=1e-12)


@pytest.mark.parametrize("shape, ksize, strides, padding, output_padding, dilation", [
    ((2, 6, 3), (3,), (2,), "valid", None, (1,)),
    ((2, 6, 3), (4,), (3,), "valid", (2,), (1,)),
    ((2, 7, 3), (3,), (1,), "valid", None, (2,)),
    ((2, 5, 3), (3,), (2,), "same", None, (1,)),
    ((2, 5, 4, 3), (3, 2), (2, 3), "valid", (1, 2), (1, 1)),
    ((2, 5, 4, 3), (3, 4), (2, 2), "same", None, (1, 1)),
    ((2, 5, 4, 3), (3, 2), (1, 1), "same", None, (2, 1)),
])
def test_transpose_conv_matches_torch(shape, ksize, strides, padding, output_padding, dilation, rng):
    rank = len(ksize)
    x = rng.normal(size=shape)
    kernel, bias = random_arrays([ksize + (4, shape[-1]), (4,)], rng)  # Keras: (*k, F, C)
    w = _t(np.moveaxis(kernel, (-1, -2), (0, 1)))  # torch: (C, F, *k)
    full = (F.conv_transpose1d, F.conv_transpose2d)[rank - 1](
        _t(np.moveaxis(x, -1, 1)), w, stride=strides, dilation=dilation,
        output_padding=output_padding or 0).numpy()  # (n - 1) s + k_eff (+ op): nothing cropped
    if padding == "same":  # the gradient of the "same" conv whose input is n s long: crop its pads
        crop = _tf_same_pads([n * s for n, s in zip(shape[1:-1], strides)], ksize, strides, dilation)
        full = full[(slice(None), slice(None)) + tuple(slice(lo, full.shape[2 + i] - hi)
                                                       for i, (lo, hi) in enumerate(crop))]
    elif output_padding is None:  # Keras's default output_padding for "valid": max(k_eff, s) - k_eff
        extra = [max((k - 1) * d + 1, s) - ((k - 1) * d + 1) for k, s, d in zip(ksize, strides, dilation)]
        full = np.pad(full, [(0, 0), (0, 0)] + [(0, e) for e in extra])
    expected = np.moveaxis(full, 1, -1) + bias
    layer = Layer("t", ("Conv1DTranspose", "Conv2DTranspose")[rank - 1], ("x",),
                  {"strides": strides, "padding": padding, "dilation_rate": dilation, "activation": "linear",
                   "output_padding": output_padding}, (kernel, bias))
    y, _ = layer_forward(layer, [x], [None])
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-12)


def _torch_conv_lstm2d(x, kernel, recurrent, bias, strides, padding):
    """ConvLSTM2D written with torch's conv2d: gates i, f, c, o; recurrent conv "same", stride 1."""
    w, r = _t(np.moveaxis(kernel, (-1, -2), (0, 1))), _t(np.moveaxis(recurrent, (-1, -2), (0, 1)))
    b = _t(bias)
    h = c = None
    outputs = []
    for t in range(x.shape[1]):
        xt = _t(np.moveaxis(x[:, t], -1, 1))
        if padding == "same":
            pads = _tf_same_pads(x.shape[2:4], kernel.shape[:2], strides, (1, 1))
            xt = F.pad(xt, [p for pair in reversed(pads) for p in pair])
        z = F.conv2d(xt, w, stride=strides) + b[None, :, None, None]
        if h is None:
            h = c = torch.zeros(z.shape[0], z.shape[1] // 4, *z.shape[2:], dtype=torch.float64)
        pads = _tf_same_pads(h.shape[2:], kernel.shape[:2], (1, 1), (1, 1))
        z = z + F.conv2d(F.pad(h, [p for pair in reversed(pads) for p in pair]), r)
        i, f, g, o = torch.chunk(z, 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(np.moveaxis(h.numpy(), 1, -1))
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize("strides, padding", [((1, 1), "same"), ((2, 1), "valid"), ((2, 3), "same")])
def test_conv_lstm2d_matches_torch(strides, padding, rng):
    x = rng.normal(size=(2, 4, 7, 6, 3))
    kernel, recurrent, bias = random_arrays([(3, 2, 3, 20), (3, 2, 5, 20), (20,)], rng)
    layer = Layer("c", "ConvLSTM2D", ("x",), {"strides": strides, "padding": padding, "dilation_rate": (1, 1),
                                             "return_sequences": True}, (kernel, recurrent, bias))
    y, _ = layer_forward(layer, [x], [None])
    np.testing.assert_allclose(y, _torch_conv_lstm2d(x, kernel, recurrent, bias, strides, padding), atol=1e-12)
