"""The oracle's normalization, activation, pooling and identity layers (reference/layers/{normalization,
activations,pooling,regularization}.py, reference/activations.py), NumPy only: by hand and by their properties."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reference.activations import LAYER_ACTIVATIONS, activate, gelu
from reference.layers import Layer, layer_forward


def run(kind, x, mask=None, weights=(), **options):
    return layer_forward(Layer("layer", kind, ("x",), options, tuple(weights)), [np.asarray(x, float)], [mask])


# ----------------------------------------------------------------------------------------------- activations

# Each activation at chosen points, against a value worked out by hand from Keras's definition.
E, S = math.e, 1.0507009873554805
HAND = {
    "relu": ([-2.0, 0.5], [0.0, 0.5]),
    "relu6": ([-1.0, 3.0, 7.5], [0.0, 3.0, 6.0]),
    "leaky_relu": ([-2.0, 3.0], [-0.4, 3.0]),
    "elu": ([-1.0, 2.0], [1 / E - 1, 2.0]),
    "selu": ([-1.0, 2.0], [S * 1.6732632423543772 * (1 / E - 1), S * 2.0]),
    "celu": ([-1.0, 2.0], [1 / E - 1, 2.0]),
    "softplus": ([0.0, 1.0], [math.log(2.0), math.log(1 + E)]),
    "softsign": ([-3.0, 1.0], [-0.75, 0.5]),
    "silu": ([1.0], [1 / (1 + 1 / E)]),
    "hard_sigmoid": ([-4.0, 1.5, 3.5], [0.0, 0.75, 1.0]),
    "hard_silu": ([1.5, -4.0], [1.125, 0.0]),
    "mish": ([1.0], [math.tanh(math.log(1 + E))]),
    "gelu": ([1.0, -1.0], [0.5 * (1 + math.erf(1 / math.sqrt(2))), -0.5 * (1 - math.erf(1 / math.sqrt(2)))]),
    "exponential": ([2.0], [E * E]),
    "log_sigmoid": ([0.0], [-math.log(2.0)]),
    "tanh_shrink": ([1.0], [1 - math.tanh(1.0)]),
    "hard_tanh": ([-3.0, 0.25, 2.0], [-1.0, 0.25, 1.0]),
    "hard_shrink": ([-0.4, 0.6, -0.7], [0.0, 0.6, -0.7]),
    "soft_shrink": ([-0.4, 0.75, -2.0], [0.0, 0.25, -1.5]),
    "sparse_plus": ([-1.5, 0.0, 2.0], [0.0, 0.25, 2.0]),
    "sparse_sigmoid": ([-2.0, 0.5, 1.5], [0.0, 0.75, 1.0]),
    "squareplus": ([0.0, 1.5], [1.0, 2.0]),
    "sigmoid": ([0.0], [0.5]),
    "tanh": ([0.5], [math.tanh(0.5)]),
    "linear": ([-1.25], [-1.25]),
    "glu": ([[2.0, -4.0, 0.0, math.log(3.0)]], [[1.0, -3.0]]),        # [x1, x2] -> x1 sigmoid(x2)
    "softmax": ([[0.0, math.log(3.0)]], [[0.25, 0.75]]),
    "log_softmax": ([[0.0, math.log(3.0)]], [[math.log(0.25), math.log(0.75)]]),
    "sparsemax": ([[1.0, 0.8, -2.0], [0.1, 0.2, 0.3]], [[0.6, 0.4, 0.0], [0.7 / 3, 1.0 / 3, 1.3 / 3]]),
}


def test_every_layer_activation_has_a_hand_value():
    assert set(HAND) == set(LAYER_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(HAND))
def test_activation_at_chosen_points(name):
    x, expected = HAND[name]
    np.testing.assert_allclose(activate(name, np.array(x)), expected, rtol=1e-12, atol=1e-15)


def test_sparsemax_rows_sum_to_one_and_are_sparse(rng):
    y = activate("sparsemax", rng.normal(size=(20, 7)) * 3)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-12)
    assert (y >= 0).all() and (y == 0).any()


def test_gelu_tanh_form_is_close_to_the_exact_one_but_not_equal():
    x = np.linspace(-4, 4, 81)
    gap = np.abs(gelu(x, approximate=True) - gelu(x)).max()
    assert 1e-5 < gap < 1e-3  # the two forms differ: a file's "gelu" must be told which (it is the exact one)


def test_keras_aliases_name_the_same_functions():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(activate("swish", x), activate("silu", x))
    np.testing.assert_array_equal(activate("hard_swish", x), activate("hard_silu", x))
    with pytest.raises(ValueError, match="unknown activation 'threshold'"):
        activate("threshold", x)


# ------------------------------------------------------------------------------------------ activation layers

def test_relu_options_by_hand():
    x = np.array([-2.0, 0.1, 0.3, 1.0, 4.0])
    y, _ = run("ReLU", x, max_value=1.5, negative_slope=0.1, threshold=0.2)
    # x > 0.2 kept then capped at 1.5; below the threshold: -0.1 (0.2 - x)
    np.testing.assert_allclose(y, [-0.22, -0.01, 0.3, 1.0, 1.5])
    np.testing.assert_allclose(run("ReLU", x, negative_slope=1.5)[0], [-3.0, 0.1, 0.3, 1.0, 4.0])


def test_prelu_shares_alpha_over_its_shared_axes():
    x = -np.arange(1.0, 7.0).reshape(1, 3, 2)
    y, _ = run("PReLU", x, weights=[np.array([[0.5, 2.0]])], shared_axes=[1])
    np.testing.assert_allclose(y, x * [0.5, 2.0])
    np.testing.assert_allclose(run("PReLU", -x, weights=[np.array([[0.5, 2.0]])])[0], -x)


def test_softmax_with_a_mask_zeroes_masked_entries_and_renormalises():
    x = np.log(np.array([[1.0, 3.0, 5.0], [2.0, 2.0, 2.0]]))
    mask = np.array([[True, True, False], [False, False, False]])
    y, m = run("Softmax", x, mask)
    np.testing.assert_allclose(y, [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]])  # a row masked throughout: 0, as Keras
    assert m is mask


def test_softmax_mask_lines_up_with_the_last_axes_as_numpy_broadcasts():
    """Keras broadcasts a (B, T) mask against (B, T, C) values from the last axis (softmax.py L64-83)."""
    x = np.zeros((2, 2, 2))
    mask = np.array([[True, False], [True, True]])  # mask[i, j] applies to x[:, i, j]
    y, _ = run("Softmax", x, mask)
    np.testing.assert_allclose(y[:, 0], [[1.0, 0.0]] * 2)
    np.testing.assert_allclose(y[:, 1], [[0.5, 0.5]] * 2)
    with pytest.raises(ValueError, match="not broadcastable"):
        run("Softmax", np.zeros((3, 2, 4)), np.ones((3, 2), bool))


def test_softmax_over_two_axes_sums_to_one_over_both(rng):
    y, _ = run("Softmax", rng.normal(size=(3, 4, 5)), axis=[1, 2])
    np.testing.assert_allclose(y.sum(axis=(1, 2)), 1.0)


# -------------------------------------------------------------------------------------------------- normalization

def test_layer_normalization_is_zero_mean_unit_variance_before_gamma_and_beta(rng):
    x = rng.normal(2.0, 3.0, size=(4, 5, 6))
    y, _ = run("LayerNormalization", x, axis=[-1], epsilon=0.0, center=False, scale=False)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, atol=1e-12)
    gamma, beta = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    z, _ = run("LayerNormalization", x, weights=[gamma, beta], axis=[-1], epsilon=0.0)
    np.testing.assert_allclose(z, y * gamma + beta)


def test_layer_normalization_over_two_axes_and_its_rms_scaling_form(rng):
    x = rng.normal(1.0, 2.0, size=(3, 4, 5))
    y, _ = run("LayerNormalization", x, axis=[1, 2], epsilon=0.0, center=False, scale=False)
    np.testing.assert_allclose(y.reshape(3, -1).mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.reshape(3, -1).var(axis=1), 1.0, atol=1e-12)
    gamma = rng.uniform(0.5, 2, 5)
    r, _ = run("LayerNormalization", x, weights=[gamma], axis=[-1], epsilon=0.1, rms_scaling=True)
    np.testing.assert_allclose(r, x / np.sqrt(x.var(axis=-1, keepdims=True) + 0.1) * gamma)  # not centred


def test_batch_normalization_uses_the_moving_statistics_on_its_axis(rng):
    x = rng.normal(size=(2, 3, 4))
    gamma, beta, mean, var = (rng.uniform(0.5, 2, 3) for _ in range(4))
    y, m = run("BatchNormalization", x, np.ones((2, 3), bool), weights=[gamma, beta, mean, var], axis=1,
               epsilon=0.01, center=True, scale=True)
    c = 1  # one channel by hand
    np.testing.assert_allclose(y[:, c], (x[:, c] - mean[c]) / math.sqrt(var[c] + 0.01) * gamma[c] + beta[c])
    assert m.all()
    no_scale, _ = run("BatchNormalization", x, weights=[beta, mean, var], axis=1, epsilon=0.01, scale=False)
    np.testing.assert_allclose(no_scale[:, c], (x[:, c] - mean[c]) / math.sqrt(var[c] + 0.01) + beta[c])


def test_group_normalization_normalises_each_group_over_the_other_axes(rng):
    x = rng.normal(3.0, 2.0, size=(2, 5, 6))
    y, _ = run("GroupNormalization", x, groups=3, axis=-1, epsilon=0.0, center=False, scale=False)
    for g in range(3):
        block = y[:, :, 2 * g:2 * g + 2].reshape(2, -1)
        np.testing.assert_allclose(block.mean(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(block.var(axis=1), 1.0, atol=1e-12)
    instance, _ = run("GroupNormalization", x, groups=-1, axis=-1, epsilon=0.0, center=False, scale=False)
    np.testing.assert_allclose(instance.var(axis=1), 1.0, atol=1e-12)  # one group a channel
    with pytest.raises(ValueError, match="do not split into 4 groups"):
        run("GroupNormalization", x, groups=4, axis=-1, center=False, scale=False)


def test_missing_weights_are_a_value_error_naming_the_layer():
    with pytest.raises(ValueError, match="layer 'layer' .*BatchNormalization.* 1 weight arrays"):
        run("BatchNormalization", np.ones((2, 3)), weights=[np.ones(3)], axis=-1)


def test_unit_normalization_gives_unit_norms_and_keeps_zero_rows(rng):
    x = rng.normal(size=(3, 4))
    x[1] = 0.0
    y, _ = run("UnitNormalization", x, axis=[-1])
    np.testing.assert_allclose(np.linalg.norm(y[[0, 2]], axis=-1), 1.0)
    np.testing.assert_array_equal(y[1], 0.0)


# ---------------------------------------------------------------------------------------------------- pooling

def test_max_and_average_pooling_1d_by_hand():
    x = np.array([1.0, 5.0, 2.0, 8.0, 3.0]).reshape(1, 5, 1)
    assert run("MaxPooling1D", x, pool_size=[2], strides=[2])[0].ravel().tolist() == [5.0, 8.0]
    # same, k=2, s=2 over 5: out 3, total padding 1, after: the last window holds one entry, averaged alone
    np.testing.assert_allclose(run("AveragePooling1D", x, pool_size=[2], strides=[2], padding="same")[0].ravel(),
                               [3.0, 5.0, 3.0])
    # same, k=3, s=1: padding 1 before and 1 after, not counted
    np.testing.assert_allclose(run("AveragePooling1D", x, pool_size=[3], strides=[1], padding="same")[0].ravel(),
                               [3.0, 8 / 3, 5.0, 13 / 3, 5.5])


def test_pooling_2d_channels_first_equals_channels_last_transposed(rng):
    x = rng.normal(size=(2, 7, 6, 3))
    for kind in ("MaxPooling2D", "AveragePooling2D"):
        last, m = run(kind, x, np.ones((2, 7), bool), pool_size=[3, 2], strides=[2, 1], padding="same")
        first, _ = run(kind, x.transpose(0, 3, 1, 2), pool_size=[3, 2], strides=[2, 1], padding="same",
                       data_format="channels_first")
        assert last.shape == (2, 4, 6, 3) and m is None  # pooling drops the mask
        np.testing.assert_allclose(first.transpose(0, 2, 3, 1), last)


def test_pooling_3d_valid_against_a_loop(rng):
    x = rng.normal(size=(1, 4, 5, 3, 2))
    y, _ = run("AveragePooling3D", x, pool_size=[2, 3, 2], strides=[2, 1, 1])
    assert y.shape == (1, 2, 3, 2, 2)
    np.testing.assert_allclose(y[0, 1, 2, 1], x[0, 2:4, 2:5, 1:3].mean(axis=(0, 1, 2)))


def test_global_pooling_keepdims_channels_first_and_the_masked_mean(rng):
    x = rng.normal(size=(2, 4, 3))
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    y, m = run("GlobalAveragePooling1D", x, mask)
    np.testing.assert_allclose(y[0], x[0, :2].mean(axis=0))
    assert m is None
    y, _ = run("GlobalAveragePooling1D", x.transpose(0, 2, 1), mask, data_format="channels_first", keepdims=True)
    assert y.shape == (2, 3, 1)
    np.testing.assert_allclose(y[0, :, 0], x[0, :2].mean(axis=0))
    z = rng.normal(size=(2, 3, 4, 5))
    assert run("GlobalMaxPooling2D", z, keepdims=True)[0].shape == (2, 1, 1, 5)
    np.testing.assert_allclose(run("GlobalAveragePooling2D", z, data_format="channels_first")[0],
                               z.mean(axis=(2, 3)))


@pytest.mark.parametrize("kind", ["SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                                  "AlphaDropout", "ActivityRegularization"])
def test_identity_at_inference_passes_the_mask(kind, rng):
    x, mask = rng.normal(size=(2, 3, 4)), np.array([[True, False, True], [True, True, False]])
    y, m = run(kind, x, mask)
    np.testing.assert_array_equal(y, x)
    assert m is mask
