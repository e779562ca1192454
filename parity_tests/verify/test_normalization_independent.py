"""The oracle's normalization, pooling and activations against an independent implementation: torch.nn.functional
in float64 (batch_norm, layer_norm, group_norm, normalize, max/avg pooling with count_include_pad=False, and every
activation with a torch twin). Layouts differ (torch is channels_first): each case transposes its input."""
from __future__ import annotations

import numpy as np
import pytest

from reference.activations import activate, gelu
from reference.layers import Layer, layer_forward
from reference.layers.pooling import same_padding

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-12  # float64 on both sides: the same equations in another order


def run(kind, x, weights=(), **options):
    return layer_forward(Layer("layer", kind, ("x",), options, tuple(weights)), [x], [None])[0]


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def close(actual, expected):
    np.testing.assert_allclose(actual, expected.numpy() if hasattr(expected, "numpy") else expected,
                               rtol=0, atol=TOL * max(1.0, float(np.abs(actual).max())))


@pytest.fixture
def rng():
    return np.random.default_rng(17)


def test_batch_normalization_against_torch(rng):
    x = rng.normal(size=(3, 4, 5))  # channels on axis 1 for torch; the oracle's axis=1
    gamma, beta, mean, var = (rng.uniform(0.5, 2, 4) for _ in range(4))
    expected = F.batch_norm(t(x), t(mean), t(var), t(gamma), t(beta), training=False, eps=0.01)
    close(run("BatchNormalization", x, [gamma, beta, mean, var], axis=1, epsilon=0.01), expected)
    last = run("BatchNormalization", x.transpose(0, 2, 1), [gamma, beta, mean, var], axis=-1, epsilon=0.01)
    close(last.transpose(0, 2, 1), expected)


@pytest.mark.parametrize("axes", [[-1], [1, 2]])
def test_layer_normalization_against_torch(axes, rng):
    x = rng.normal(1.0, 2.0, size=(3, 4, 5))
    shape = x.shape[axes[0]:] if axes == [1, 2] else x.shape[-1:]
    gamma, beta = rng.uniform(0.5, 2, shape), rng.uniform(0.5, 2, shape)
    close(run("LayerNormalization", x, [gamma, beta], axis=axes, epsilon=1e-3),
          F.layer_norm(t(x), shape, t(gamma), t(beta), eps=1e-3))


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_normalization_against_torch(groups, rng):
    x = rng.normal(size=(3, 6, 4, 5))  # torch: (N, C, *); the oracle's channels_first with axis=1
    gamma, beta = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    expected = F.group_norm(t(x), groups, t(gamma), t(beta), eps=1e-3)
    close(run("GroupNormalization", x, [gamma, beta], groups=groups, axis=1, epsilon=1e-3), expected)
    last = run("GroupNormalization", x.transpose(0, 2, 3, 1), [gamma, beta], groups=groups, axis=-1, epsilon=1e-3)
    close(last.transpose(0, 3, 1, 2), expected)


def test_unit_normalization_against_torch(rng):
    x = rng.normal(size=(3, 4, 5))
    close(run("UnitNormalization", x, axis=[-1]), F.normalize(t(x), dim=-1, eps=1e-12))


def _torch_pool(x_cf, mode, pool, strides, padding):
    """torch's pooling, channels_first, with TensorFlow's "same" padding applied by hand: -inf for max, and for
    average zeros that ``count_include_pad=False`` cannot see, so the count comes from a pooled mask of ones."""
    d = len(pool)
    fn = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
          ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}[mode, d]
    x = t(x_cf)
    if padding == "same":
        pads = [same_padding(n, k, s) for n, k, s in zip(x_cf.shape[2:], pool, strides)]
        flat = [p for pair in reversed(pads) for p in pair]
        if mode == "max":
            return fn(F.pad(x, flat, value=-np.inf), pool, strides)
        total = fn(F.pad(x, flat), pool, strides, count_include_pad=True)
        count = fn(F.pad(torch.ones_like(x), flat), pool, strides, count_include_pad=True)
        return total / count
    return fn(x, pool, strides) if mode == "max" else fn(x, pool, strides, count_include_pad=False)


CASES = [([3], [2], "valid"), ([3], [2], "same"), ([2], [1], "same"), ([2, 3], [1, 2], "same"),
         ([3, 2], [2, 2], "valid"), ([2, 2, 3], [1, 2, 2], "same"), ([3, 1, 2], [2, 1, 1], "valid")]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, padding", CASES, ids=[f"{len(p)}d-{'x'.join(map(str, p))}-s"
                                                              f"{'x'.join(map(str, s))}-{pad}" for p, s, pad in CASES])
def test_pooling_against_torch(mode, pool, strides, padding, rng):
    spatial = (7, 6, 5)[:len(pool)]
    x = rng.normal(size=(2, *spatial, 3))
    kind = f"{'Max' if mode == 'max' else 'Average'}Pooling{len(pool)}D"
    last = run(kind, x, pool_size=pool, strides=strides, padding=padding)
    expected = _torch_pool(np.moveaxis(x, -1, 1), mode, pool, strides, padding)
    close(np.moveaxis(last, -1, 1), expected)


def test_symmetric_same_average_excludes_padding_as_torchs_count_include_pad_false(rng):
    """Where "same" pads evenly, torch's own padding with count_include_pad=False is Keras's rule exactly."""
    x = rng.normal(size=(2, 3, 7))
    close(np.moveaxis(run("AveragePooling1D", np.moveaxis(x, 1, -1), pool_size=[3], strides=[1], padding="same"),
                      -1, 1),
          F.avg_pool1d(t(x), 3, 1, padding=1, count_include_pad=False))


TWINS = {
    "relu": F.relu, "relu6": F.relu6, "leaky_relu": lambda a: F.leaky_relu(a, 0.2), "elu": F.elu, "selu": F.selu,
    "celu": F.celu, "softplus": F.softplus, "softsign": F.softsign, "silu": F.silu, "hard_silu": F.hardswish,
    "mish": F.mish, "gelu": F.gelu, "exponential": torch.exp, "log_sigmoid": F.logsigmoid,
    "tanh_shrink": F.tanhshrink, "hard_tanh": F.hardtanh, "hard_shrink": F.hardshrink, "soft_shrink": F.softshrink,
    "hard_sigmoid": F.hardsigmoid, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "glu": F.glu,
    "softmax": lambda a: F.softmax(a, dim=-1), "log_softmax": lambda a: F.log_softmax(a, dim=-1),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_activation_against_its_torch_twin(name, rng):
    a = rng.normal(0.0, 2.5, size=(4, 6))
    close(activate(name, a), TWINS[name](t(a)))


def test_gelu_tanh_form_against_torch(rng):
    a = rng.normal(0.0, 2.5, size=(4, 6))
    close(gelu(a, approximate=True), F.gelu(t(a), approximate="tanh"))


@pytest.mark.parametrize("kind, options, twin", [
    ("ReLU", {"negative_slope": 0.0, "threshold": 0.0, "max_value": None}, F.relu),
    ("LeakyReLU", {"negative_slope": 0.3}, lambda a: F.leaky_relu(a, 0.3)),
    ("ELU", {"alpha": 0.7}, lambda a: F.elu(a, 0.7)),
    ("Softmax", {"axis": 1}, lambda a: F.softmax(a, dim=1)),
])
def test_activation_layers_against_torch(kind, options, twin, rng):
    a = rng.normal(0.0, 2.0, size=(3, 4, 5))
    close(run(kind, a, **options), twin(t(a)))


def test_prelu_against_torch(rng):
    a = rng.normal(size=(3, 4, 5))  # channels last, alpha shared over the steps: torch's one weight a channel
    alpha = rng.uniform(0.1, 0.9, 5)
    close(run("PReLU", a, [alpha.reshape(1, 5)], shared_axes=[1]),
          F.prelu(t(a).transpose(1, 2), t(alpha)).transpose(1, 2))
