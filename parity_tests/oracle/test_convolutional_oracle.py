"""The oracle's convolutions and ConvLSTM by hand and by their properties (NumPy alone).

A 1x1 convolution is a Dense on the channel axis; "causal" is "valid" after left padding; a grouped conv is the
per-group convs side by side; a depthwise conv is the grouped conv with one channel a group; a separable conv is
a depthwise then a 1x1; a transpose conv is the adjoint of the strided conv (<conv(x), y> == <x, convT(y)>); a
1x1 ConvLSTM on a single pixel is the oracle's LSTM; a mask carries the states; channels_first is the transposed
channels_last. Sizes differ on every axis; weights are random, non-zero and non-symmetric.
"""
from __future__ import annotations

import numpy as np
import pytest

from reference import random_arrays
from reference.layers import Layer, layer_forward
from reference.layers.convolutional import convolve, convolve_transpose


def _layer(kind, weights, **options):
    geometry = {"strides": (1,), "padding": "valid", "dilation_rate": (1,), "activation": "linear"}
    return Layer("l", kind, ("x",), {**geometry, **options}, tuple(weights))


def _run(layer, x, mask=None):
    return layer_forward(layer, [x], [mask])


def test_a_1x1_conv_is_a_dense_on_the_channels(rng):
    x = rng.normal(size=(2, 5, 4, 3))
    kernel, bias = random_arrays([(1, 1, 3, 6), (6,)], rng)
    layer = _layer("Conv2D", (kernel, bias), strides=(1, 1), dilation_rate=(1, 1), activation="tanh")
    y, mask = _run(layer, x, np.ones((2, 5), bool))
    np.testing.assert_allclose(y, np.tanh(x @ kernel[0, 0] + bias), atol=1e-14)
    assert mask is None  # Keras drops a mask at a conv (layer.py L1038): the oracle passes none on


def test_a_conv_by_hand():
    x = np.array([1.0, 2.0, -1.0, 3.0, 0.5])[None, :, None]
    kernel = np.array([2.0, -1.0, 0.5])[:, None, None]
    valid = [1 * 2 - 2 + (-1) * 0.5, 2 * 2 + 1 + 1.5, -2 - 3 + 0.25]
    np.testing.assert_allclose(convolve(x, kernel)[0, :, 0], valid)
    same_strided = convolve(x, kernel, strides=2, padding="same")[0, :, 0]  # total pad 2: one each side
    np.testing.assert_allclose(same_strided, [0 * 2 - 1 + 2 * 0.5, valid[1], 3 * 2 - 0.5 + 0])
    dilated = convolve(x, kernel, dilation_rate=2)[0, :, 0]  # taps 0, 2, 4
    np.testing.assert_allclose(dilated, [1 * 2 + 1 + 0.25])


def test_causal_is_valid_after_left_padding(rng):
    x = rng.normal(size=(3, 7, 2))
    kernel, bias = random_arrays([(3, 2, 4), (4,)], rng)
    causal, _ = _run(_layer("Conv1D", (kernel, bias), padding="causal", dilation_rate=(2,)), x)
    padded = np.concatenate([np.zeros((3, 4, 2)), x], axis=1)  # (k - 1) d = 4 zeros on the left
    np.testing.assert_allclose(causal, convolve(padded, kernel, dilation_rate=2) + bias, atol=1e-14)
    assert causal.shape == (3, 7, 4)
    # step t reads nothing after t
    later = x.copy()
    later[:, 5:] += 1.0
    changed, _ = _run(_layer("Conv1D", (kernel, bias), padding="causal", dilation_rate=(2,)), later)
    np.testing.assert_array_equal(changed[:, :5], causal[:, :5])


@pytest.mark.parametrize("strides, padding", [((2, 1), "same"), ((1, 3), "valid"), ((3, 2), "same")])
def test_same_padding_gives_ceil_n_over_s_and_valid_the_full_windows(strides, padding, rng):
    x = rng.normal(size=(2, 9, 8, 3))
    kernel = random_arrays([(3, 2, 3, 4)], rng)[0]
    y = convolve(x, kernel, strides=strides, padding=padding)
    if padding == "same":
        assert y.shape[1:3] == tuple(-(-n // s) for n, s in zip((9, 8), strides))
    else:
        assert y.shape[1:3] == tuple((n - k) // s + 1 for n, k, s in zip((9, 8), (3, 2), strides))


def test_grouped_conv_is_the_groups_side_by_side(rng):
    x = rng.normal(size=(2, 6, 5, 6))
    kernel = random_arrays([(2, 3, 2, 9)], rng)[0]  # 3 groups of 2 channels in, 3 filters out
    y = convolve(x, kernel, groups=3, strides=(2, 1))
    parts = [convolve(x[..., 2 * g:2 * g + 2], kernel[..., 3 * g:3 * g + 3], strides=(2, 1)) for g in range(3)]
    np.testing.assert_allclose(y, np.concatenate(parts, axis=-1), atol=1e-14)


def test_depthwise_and_separable_are_grouped_convs(rng):
    x = rng.normal(size=(2, 7, 6, 3))
    depthwise, pointwise, bias = random_arrays([(3, 2, 3, 2), (1, 1, 6, 5), (5,)], rng)
    options = {"strides": (1, 2), "dilation_rate": (1, 1), "padding": "same"}
    dw, _ = _run(_layer("DepthwiseConv2D", (depthwise,), **options), x)
    # output channel c M + m: input channel c with depthwise[..., c, m]
    for c in range(3):
        for m in range(2):
            np.testing.assert_allclose(dw[..., 2 * c + m], convolve(x[..., c:c + 1], depthwise[..., c:c + 1, m:m + 1],
                                                                     strides=(1, 2), padding="same")[..., 0], atol=1e-14)
    sep, _ = _run(_layer("SeparableConv2D", (depthwise, pointwise, bias), **options), x)
    np.testing.assert_allclose(sep, dw @ pointwise[0, 0] + bias, atol=1e-13)


@pytest.mark.parametrize("kernel_size, strides, dilation, padding", [
    ((3, 2), (2, 3), (1, 1), "valid"), ((2, 3), (1, 1), (2, 1), "valid"), ((3, 2), (2, 3), (1, 1), "same"),
    ((4, 3), (2, 1), (1, 1), "same")])
def test_a_transpose_conv_is_the_adjoint_of_the_conv(kernel_size, strides, dilation, padding, rng):
    """<conv(x), y> == <x, convT(y)> with the same kernel (*k, C, F) read by convT as (*k, F_out=C, C_in=F)."""
    in_shape = (2, 9, 7, 3) if padding == "valid" else (2, 8, 9, 3)
    kernel = random_arrays([kernel_size + (3, 4)], rng)[0]
    x = rng.normal(size=in_shape)
    y_shape = convolve(x, kernel, strides=strides, padding=padding, dilation_rate=dilation).shape
    y = rng.normal(size=y_shape)
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    output_padding = None if padding == "same" else tuple((n - ke) % s for n, ke, s in zip(in_shape[1:3], k_eff, strides))
    back = convolve_transpose(y, kernel, strides=strides, padding=padding, output_padding=output_padding,
                              dilation_rate=dilation)
    assert back.shape == x.shape
    forward = np.vdot(convolve(x, kernel, strides=strides, padding=padding, dilation_rate=dilation), y)
    np.testing.assert_allclose(forward, np.vdot(x, back), rtol=1e-12)


def test_channels_first_is_the_transposed_channels_last(rng):
    x = rng.normal(size=(2, 6, 5, 4, 3))
    kernel, bias = random_arrays([(2, 3, 2, 3, 4), (4,)], rng)
    options = {"strides": (1, 2, 1), "dilation_rate": (1, 1, 1), "padding": "same"}
    last, _ = _run(_layer("Conv3D", (kernel, bias), **options), x)
    first, _ = _run(_layer("Conv3D", (kernel, bias), data_format="channels_first", **options), np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(first, np.moveaxis(last, -1, 1), atol=1e-14)


def _conv_lstm(weights, **options):
    base = {"strides": (1,), "padding": "same", "dilation_rate": (1,), "return_sequences": True}
    return Layer("c", "ConvLSTM1D", ("x",), {**base, **options}, tuple(weights))


def test_a_1x1_conv_lstm_on_one_pixel_is_the_lstm(rng):
    x = rng.normal(size=(3, 6, 1, 4))
    kernel, recurrent, bias = random_arrays([(1, 4, 20), (1, 5, 20), (20,)], rng)
    mask = np.ones((3, 6), bool)
    mask[1, 4:] = mask[2, 2:] = False
    for backwards in (False, True):
        y, out_mask = _run(_conv_lstm((kernel, recurrent, bias), go_backwards=backwards), x, mask)
        lstm = Layer("l", "LSTM", ("x",), {"return_sequences": True, "go_backwards": backwards},
                     (kernel[0], recurrent[0], bias))
        expected, _ = _run(lstm, x[:, :, 0], mask)
        np.testing.assert_allclose(y[:, :, 0], expected, atol=1e-13)
        assert out_mask is mask
    last, out_mask = _run(_conv_lstm((kernel, recurrent, bias), return_sequences=False), x, mask)
    np.testing.assert_allclose(last, _run(_conv_lstm((kernel, recurrent, bias)), x, mask)[0][:, -1], atol=1e-14)
    assert out_mask is None


def test_a_conv_lstm_reads_its_neighbours_through_both_kernels(rng):
    """A change in one pixel of the first step reaches the neighbours within k // 2 at step 0 (input conv) and
    spreads k // 2 further each step (recurrent conv, "same"): the convolutions really are spatial."""
    x = rng.normal(size=(1, 3, 9, 2))
    weights = random_arrays([(3, 2, 12), (3, 3, 12), (12,)], rng)
    y, _ = _run(_conv_lstm(weights), x)
    moved = x.copy()
    moved[0, 0, 4] += 1.0
    y2, _ = _run(_conv_lstm(weights), moved)
    changed = np.abs(y2 - y).max(axis=-1)[0] > 0  # (T, W)
    np.testing.assert_array_equal(changed[0], np.isin(np.arange(9), [3, 4, 5]))
    np.testing.assert_array_equal(changed[1], np.isin(np.arange(9), [2, 3, 4, 5, 6]))


def test_conv_lstm_masked_steps_carry_the_state_and_zero_output_for_mask_zeroes(rng):
    x = rng.normal(size=(2, 5, 6, 3))
    weights = random_arrays([(2, 3, 16), (2, 4, 16), (16,)], rng)
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0]], bool)
    y, _ = _run(_conv_lstm(weights, strides=(2,), padding="valid"), x, mask)
    np.testing.assert_array_equal(y[0, 2], y[0, 1])  # masked: the carried output
    np.testing.assert_array_equal(y[1, 4], y[1, 0])
    compact, _ = _run(_conv_lstm(weights, strides=(2,), padding="valid"), x[:1, [0, 1, 3]])
    np.testing.assert_allclose(y[0, 3], compact[0, 2], atol=1e-14)  # the masked step changed nothing
    zeroed, _ = _run(_conv_lstm(weights, strides=(2,), padding="valid", zero_output_for_mask=True), x, mask)
    assert not zeroed[~mask].any()
    np.testing.assert_array_equal(zeroed[mask], y[mask])


def test_conv_lstm_channels_first(rng):
    x = rng.normal(size=(2, 4, 5, 6, 3))
    weights = random_arrays([(3, 2, 3, 8), (3, 2, 2, 8), (8,)], rng)
    options = {"strides": (1, 1), "padding": "same", "dilation_rate": (2, 1), "return_sequences": True}
    last, _ = _run(Layer("c", "ConvLSTM2D", ("x",), options, tuple(weights)), x)
    first, _ = _run(Layer("c", "ConvLSTM2D", ("x",), {**options, "data_format": "channels_first"}, tuple(weights)),
                    np.moveaxis(x, -1, 2))
    np.testing.assert_allclose(first, np.moveaxis(last, -1, 2), atol=1e-14)
