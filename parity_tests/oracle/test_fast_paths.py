"""The oracle's fast paths held to the literal equations they stand for (NumPy alone).

Each fast path (fewer, larger NumPy calls into reused buffers) must give what its literal form gives, to
rounding: a convolution's windows multiplied a few output rows at a time against the sum over kernel taps of
shifted inputs; pooling reduced one window offset at a time against the reduction of every window's own axes;
the whole-array erf (gelu's) against ``math.erf`` entry by entry.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from reference import random_arrays
from reference.erf import erf
from reference.layers import convolutional, pooling
from reference.layers.convolutional import convolve


def conv_by_taps(x, kernel, strides, dilation):
    """The literal "valid" convolution: for every tap, the input shifted by the tap (every s-th position) times
    that tap's (C, F) slice of the kernel, summed over the taps."""
    rank = kernel.ndim - 2
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(x.shape[1:-1], kernel.shape[:rank], strides, dilation)]
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]))
    for tap in itertools.product(*(range(k) for k in kernel.shape[:rank])):
        shifted = x[(slice(None),) + tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                                           for t, d, o, s in zip(tap, dilation, out, strides))]
        y += shifted @ kernel[tap]
    return y


@pytest.mark.parametrize("buffer_bytes", [1, 700, convolutional.WINDOW_BUFFER_BYTES])
@pytest.mark.parametrize("x_shape, k_shape, strides, dilation", [
    ((3, 11, 4), (3, 4, 5), (2,), (1,)),
    ((2, 9, 8, 3), (3, 2, 3, 4), (2, 1), (1, 2)),
    ((2, 5, 6, 7, 2), (2, 3, 2, 2, 3), (1, 2, 3), (2, 1, 1)),
])
def test_the_windows_times_the_kernel_in_chunks_are_the_sum_over_taps(x_shape, k_shape, strides, dilation,
                                                                      buffer_bytes, rng, monkeypatch):
    monkeypatch.setattr(convolutional, "WINDOW_BUFFER_BYTES", buffer_bytes)  # 1: one output row a chunk
    x = rng.normal(size=x_shape)
    (kernel,) = random_arrays([k_shape], rng)
    fast = convolve(x, kernel, strides=strides, dilation_rate=dilation)
    np.testing.assert_allclose(fast, conv_by_taps(x, kernel, strides, dilation), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("x_shape, axes, pool, strides", [
    ((3, 11, 4), (1,), (3,), (2,)),
    ((2, 9, 8, 3), (1, 2), (2, 3), (2, 2)),
    ((2, 3, 7, 6), (2, 3), (3, 2), (1, 3)),  # channels_first: the spatial axes last
    ((2, 5, 6, 7, 2), (1, 2, 3), (2, 3, 2), (3, 1, 2)),
])
def test_pooling_by_window_offsets_is_the_reduction_of_every_window(x_shape, axes, pool, strides, padding, rng):
    x = rng.normal(size=x_shape)
    window_axes = tuple(range(-len(pool), 0))
    for ufunc, fill, literal in ((np.maximum, -np.inf, np.max), (np.add, 0.0, np.sum)):
        fast = pooling.reduce_windows(ufunc, x, axes, pool, strides, padding, fill)
        windows = pooling._windows(x, axes, pool, strides, padding, fill)
        np.testing.assert_allclose(fast, literal(windows, axis=window_axes), rtol=1e-13, atol=1e-14)
        assert fast.shape == windows.shape[:x.ndim]


def test_the_whole_array_erf_is_math_erf_to_a_few_ulps(rng):
    x = np.concatenate([np.linspace(-7.0, 7.0, 20000), rng.normal(scale=3.0, size=5000),
                        np.logspace(-300, 1.5, 500), -np.logspace(-300, 1.5, 501),
                        [0.5, -0.5, np.nextafter(0.5, 1), 4.0, -4.0, np.nextafter(4.0, 5), 26.5, -27.0, 1e300]])
    literal = np.array([math.erf(v) for v in x])
    fast = erf(x.reshape(2, -1)).reshape(-1)  # any shape
    assert np.max(np.abs(fast - literal) / np.abs(literal)) < 1e-15  # no entry of x is 0: erf(x) != 0
    np.testing.assert_array_equal(erf(np.array([0.0, -0.0, np.inf, -np.inf])), [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(erf(np.array([-0.0]))[0]) and np.isnan(erf(np.array([np.nan]))[0])
    assert erf(np.zeros((0, 3))).shape == (0, 3)


def test_a_pool_larger_than_its_input_is_refused_as_the_literal_windows_refuse_it(rng):
    x = rng.normal(size=(2, 3, 4))
    with pytest.raises(ValueError, match="window shape cannot be larger"):
        pooling._windows(x, (1,), (4,), (2,), "valid", 0.0)
    with pytest.raises(ValueError, match=r"pool_size \(4,\) is larger than the \(padded\) input"):
        pooling.reduce_windows(np.maximum, x, (1,), (4,), (2,), "valid", -np.inf)
