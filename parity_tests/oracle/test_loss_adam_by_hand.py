"""The oracle's loss and Adam against hand-worked values: NumPy only (Keras's own are in parity/test_loss_adam.py)."""
from __future__ import annotations

import numpy as np
import pytest

import reference

LR, B1, B2, EPS = 0.001, 0.9, 0.999, 1e-7


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
