"""The oracle's loss and Adam against Keras's own, on the current backend, and against hand-worked values.

Keras's side: ``keras.losses.binary_crossentropy`` (per step), the
``"binary_crossentropy"`` a model compiles (masked by a Masking layer's mask),
and ``keras.optimizers.Adam()`` stepping ``keras.Variable``s. In float64 where
the backend computes float64 (TensorFlow), else in float32 against the oracle
given the same float32-rounded inputs.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from parity_tests.conftest import BACKEND
from keras_impl.parity.tolerances import FLOAT64_ABS, GRADIENT_FLOAT32_REL
from keras_impl.parity.training_checks import float64_exact, keras_floatx, rounded

DTYPE = "float64" if float64_exact(BACKEND) else "float32"
LR, B1, B2, EPS = 0.001, 0.9, 0.999, 1e-7


def assert_close_to(actual, expected, what: str):
    """float64: absolute FLOAT64_ABS; float32: GRADIENT_FLOAT32_REL of the largest entry."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    err = np.max(np.abs(actual - expected))
    tol = FLOAT64_ABS if DTYPE == "float64" else GRADIENT_FLOAT32_REL * np.max(np.abs(expected))
    assert err <= tol, f"{what}: worst error {err:.3g} over {tol:.3g} ({DTYPE} on {BACKEND})"


def probabilities(rng, shape):
    """Probabilities that include clipped ones: 0 and a value below eps (and, in float64, 1 and 1 - 3e-8).

    In float32 the upper bound 1 - 1e-7 itself rounds to 1 - 1.19e-7, so Keras clips
    saturated probabilities elsewhere than the float64 oracle (a test below pins it).
    """
    p = rng.uniform(0.02, 0.98, size=shape)
    p.flat[:4] = [0.0, 1.0, 3e-8, 1.0 - 3e-8] if DTYPE == "float64" else [0.0, 0.5, 3e-8, 0.7]
    return p


# ---------------------------------------------------------------- the loss against Keras

def test_per_step_loss_matches_keras_binary_crossentropy(rng):
    import keras
    p = rounded(probabilities(rng, (3, 7, 1)), DTYPE)
    y = (rng.random((3, 7, 1)) < 0.5).astype(np.float64)
    with keras_floatx(DTYPE):
        per_step = keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y.astype(DTYPE), p.astype(DTYPE)))  # (B, T)
    # reference.binary_crossentropy of one step alone is that step's loss.
    ours = np.array([[reference.binary_crossentropy(y[b:b + 1, t:t + 1], p[b:b + 1, t:t + 1]) for t in range(7)]
                     for b in range(3)])
    assert_close_to(per_step, ours, "per-step binary_crossentropy")


def test_reduced_loss_matches_keras_BinaryCrossentropy(rng):
    import keras
    p = rounded(probabilities(rng, (3, 7, 1)), DTYPE)
    y = (rng.random((3, 7, 1)) < 0.5).astype(np.float64)
    with keras_floatx(DTYPE):
        loss = keras.losses.BinaryCrossentropy()(y.astype(DTYPE), p.astype(DTYPE))
    assert_close_to(keras.ops.convert_to_numpy(loss), reference.binary_crossentropy(y, p), "sum_over_batch_size loss")


def test_masked_loss_is_keras_mean_over_valid_steps(rng):
    # A Masking model: the mask reaches the compiled loss, which averages over valid steps only.
    from keras_impl.parity.training_checks import MIXED_MASK, compiled_model
    spec = reference.ModelSpec(timesteps=7, features=5, units=3, mask_value=0.0)
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(4, 7, 5)) * MIXED_MASK[..., None]
    y = (rng.random((4, 7, 1)) < 0.5).astype(np.float64)
    with keras_floatx(DTYPE):
        keras_loss = compiled_model(spec, weights).evaluate(x.astype(DTYPE), y.astype(DTYPE), batch_size=4, verbose=0)
    p = reference.model_forward(spec, [rounded(w, DTYPE) for w in weights], rounded(x, DTYPE))
    ours = reference.binary_crossentropy(y, p, MIXED_MASK)
    assert_close_to(keras_loss, ours, "masked loss")
    assert abs(ours - reference.binary_crossentropy(y, p)) > 1e-3, "the mask must change the loss here"


@pytest.mark.skipif(DTYPE == "float64", reason="float32 rounding of the clip bound; this backend runs float64")
def test_float32_keras_clips_saturated_probabilities_at_float32_of_one_minus_eps():
    # keras.config.epsilon() = 1e-7, but float32(1 - 1e-7) = 1 - 2**-23 (about 1 - 1.19e-7): a float32
    # model's loss at p = 1, y = 0 is -log(2**-23), not the float64 oracle's -log(1e-7).
    import keras
    loss = keras.losses.binary_crossentropy(np.zeros((1, 1, 1), "float32"), np.ones((1, 1, 1), "float32"))
    value = float(keras.ops.convert_to_numpy(loss)[0, 0])
    assert value == pytest.approx(-np.log(1.0 - float(np.float32(1.0 - 1e-7))), rel=1e-6)
    assert value != pytest.approx(reference.binary_crossentropy(np.zeros((1, 1, 1)), np.ones((1, 1, 1))), rel=1e-3)


# ---------------------------------------------------------------- the loss by hand

def test_loss_by_hand_clips_at_epsilon():
    y = np.array([[[1.0], [0.0], [1.0], [0.0]]])  # (1, 4, 1)
    p = np.array([[[0.0], [1.0], [0.5], [0.25]]])
    # p=0 clips to eps, p=1 to 1 - eps (whose 1 - q is 1e-7 up to the rounding of 1 - 1e-7, as in Keras).
    by_hand = (-np.log(1e-7) - np.log(1.0 - (1.0 - 1e-7)) - np.log(0.5) - np.log(0.75)) / 4
    assert reference.binary_crossentropy(y, p) == pytest.approx(by_hand, rel=1e-12)


def test_masked_loss_by_hand_is_the_mean_over_valid_steps():
    y = np.array([[[1.0], [0.0]], [[0.0], [1.0]]])  # (2, 2, 1)
    p = np.array([[[0.5], [0.2]], [[0.9], [0.4]]])
    mask = np.array([[True, False], [True, True]])
    by_hand = (-np.log(0.5) - np.log(0.1) - np.log(0.4)) / 3
    assert reference.binary_crossentropy(y, p, mask) == pytest.approx(by_hand, rel=1e-12)
    assert reference.binary_crossentropy(y, p, np.zeros((2, 2), bool)) == 0.0  # divide_no_nan


def test_loss_gradient_is_zero_where_the_clip_bites_and_by_hand_elsewhere():
    y = np.array([[[1.0], [0.0], [1.0]]])
    p = np.array([[[0.0], [1.0], [0.25]]])
    grad = reference.binary_crossentropy_grad(y, p)
    assert grad[0, 0, 0] == 0.0 and grad[0, 1, 0] == 0.0
    assert grad[0, 2, 0] == pytest.approx(-1.0 / 0.25 / 3, rel=1e-12)  # d(-log p)/dp, weight 1/(B T)


# ---------------------------------------------------------------- Adam against Keras

@pytest.mark.parametrize("steps", [1, 7])
def test_adam_matches_keras_adam(steps, rng):
    import keras
    shapes = [(5, 12), (12,), (3, 1)]
    weights = [rounded(rng.uniform(-1, 1, size=s), DTYPE) for s in shapes]
    grads = [[rounded(rng.normal(scale=10.0 ** -k, size=s), DTYPE) for k, s in enumerate(shapes)] for _ in range(steps)]
    with keras_floatx(DTYPE):
        variables = [keras.Variable(w.astype(DTYPE)) for w in weights]
        optimizer = keras.optimizers.Adam()
        for step in grads:
            optimizer.apply([keras.ops.convert_to_tensor(g.astype(DTYPE)) for g in step], variables)
        keras_weights = [keras.ops.convert_to_numpy(v) for v in variables]
    ours = reference.Adam(betas_through_float32=BACKEND == "tensorflow")
    oracle_weights = [w.copy() for w in weights]
    for step in grads:
        ours.apply(oracle_weights, step)
    for k, (kw, ow) in enumerate(zip(keras_weights, oracle_weights)):
        assert_close_to(kw, ow, f"weights[{k}] after {steps} Adam steps")
    assert ours.iterations == steps


# ---------------------------------------------------------------- Adam by hand

def test_adam_first_step_by_hand():
    # t = 1: m = (1-b1) g, v = (1-b2) g^2, alpha = lr sqrt(1-b2) / (1-b1):
    # step = lr sqrt(1-b2) g / (sqrt(1-b2) |g| + eps), close to lr sign(g) for |g| >> eps.
    g = np.array([2.0, -0.5, 1e-9, 0.0])
    w = np.zeros(4)
    reference.Adam().apply([w], [g])
    by_hand = -LR * np.sqrt(1 - B2) * g / (np.sqrt(1 - B2) * np.abs(g) + EPS)
    np.testing.assert_allclose(w, by_hand, rtol=1e-13, atol=0)
    assert w[0] == pytest.approx(-LR, rel=1e-4) and w[1] == pytest.approx(LR, rel=1e-4)


def test_adam_epsilon_is_outside_the_square_root_and_not_bias_corrected():
    # PyTorch's Adam divides by sqrt(v / (1 - b2^t)) + eps instead: for a tiny gradient the two part visibly.
    g = np.array([1e-8])
    keras_style = np.zeros(1)
    reference.Adam().apply([keras_style], [g])
    torch_style = -LR * ((1 - B1) * g / (1 - B1)) / (np.sqrt((1 - B2) * g ** 2 / (1 - B2)) + EPS)
    by_hand = -LR * np.sqrt(1 - B2) / (1 - B1) * (1 - B1) * g / (np.sqrt((1 - B2) * g ** 2) + EPS)
    assert keras_style[0] == pytest.approx(by_hand[0], rel=1e-13)
    assert abs(keras_style[0] - torch_style[0]) > 0.5 * abs(torch_style[0])


@pytest.mark.parametrize("betas_through_float32", [False, True], ids=["float64_betas", "float32_betas"])
def test_adam_three_steps_by_hand(betas_through_float32):
    # A constant gradient g: m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2 (1 - beta stays a Python double);
    # only the powers in alpha_t see the betas rounded through float32, as TensorFlow's ops.cast does.
    g, steps = 0.3, 3
    b1, b2 = (float(np.float32(B1)), float(np.float32(B2))) if betas_through_float32 else (B1, B2)
    by_hand = 0.0
    for t in range(1, steps + 1):
        alpha = LR * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m, v = (1 - B1 ** t) * g, (1 - B2 ** t) * g ** 2
        by_hand -= alpha * m / (np.sqrt(v) + EPS)
    w = np.zeros(1)
    optimizer = reference.Adam(betas_through_float32=betas_through_float32)
    for _ in range(steps):
        optimizer.apply([w], [np.array([g])])
    assert w[0] == pytest.approx(by_hand, rel=1e-12, abs=0)


def test_rounding_the_betas_changes_the_steps():
    weights = {}
    for rounded_betas in (False, True):
        w, optimizer = np.zeros(1), reference.Adam(betas_through_float32=rounded_betas)
        for g in (0.3, -0.1, 0.2):
            optimizer.apply([w], [np.array([g])])
        weights[rounded_betas] = w[0]
    # float32(0.999) = 0.99900001287: sqrt(1 - b2^t) moves by about 6e-6 relative at t = 1.
    assert 1e-7 * abs(weights[False]) < abs(weights[True] - weights[False]) < 1e-4 * abs(weights[False])


def test_adam_rejects_mismatched_gradients():
    with pytest.raises(ValueError, match="grads"):
        reference.Adam().apply([np.zeros(3)], [np.zeros(3), np.zeros(2)])
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        reference.Adam().apply([np.zeros(3)], [np.zeros(4)])
