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
from keras_impl.parity import compare
from keras_impl.parity.harness import floatx
from keras_impl.parity.tolerances import FLOAT64_ABS, GRADIENT_FLOAT32_REL, Bound, bound, float64_exact
from keras_impl.parity.training_checks import rounded

DTYPE = "float64" if float64_exact(BACKEND) else "float32"
LR, B1, B2, EPS = 0.001, 0.9, 0.999, 1e-7


# The loss against Keras's: float64 absolute where the backend computes float64, else relative to the largest entry.
LOSS_BOUND = Bound("abs", FLOAT64_ABS) if DTYPE == "float64" else Bound("rel", GRADIENT_FLOAT32_REL)


def assert_close_to(actual, expected, what: str):
    compare.assert_within({what: np.asarray(expected, np.float64)}, {what: np.asarray(actual, np.float64)}, LOSS_BOUND,
                          f"{DTYPE} on {BACKEND}")


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
    with floatx(DTYPE):
        per_step = keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y.astype(DTYPE), p.astype(DTYPE)))  # (B, T)
    # reference.binary_crossentropy of one step alone is that step's loss.
    ours = np.array([[reference.binary_crossentropy(y[b:b + 1, t:t + 1], p[b:b + 1, t:t + 1]) for t in range(7)]
                     for b in range(3)])
    assert_close_to(per_step, ours, "per-step binary_crossentropy")


def test_reduced_loss_matches_keras_BinaryCrossentropy(rng):
    import keras
    p = rounded(probabilities(rng, (3, 7, 1)), DTYPE)
    y = (rng.random((3, 7, 1)) < 0.5).astype(np.float64)
    with floatx(DTYPE):
        loss = keras.losses.BinaryCrossentropy()(y.astype(DTYPE), p.astype(DTYPE))
    assert_close_to(keras.ops.convert_to_numpy(loss), reference.binary_crossentropy(y, p), "sum_over_batch_size loss")


def test_masked_loss_is_keras_mean_over_valid_steps(rng):
    # A Masking model: the mask reaches the compiled loss, which averages over valid steps only.
    from keras_impl.parity.training_checks import MIXED_MASK, compiled_model
    spec = reference.ModelSpec(timesteps=7, features=5, units=3, mask_value=0.0)
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(4, 7, 5)) * MIXED_MASK[..., None]
    y = (rng.random((4, 7, 1)) < 0.5).astype(np.float64)
    with floatx(DTYPE):
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

# ---------------------------------------------------------------- Adam against Keras
#
# Compared on the UPDATE (w_after - w_before), relative to its largest entry per tensor: the weights are
# ~100x the size of a step, so a comparison relative to the weights would pass a wrong epsilon placement
# or a 0.5% learning-rate error. The gradients span the scales where each of those faults shows: ~1
# (the step is ~lr whatever epsilon does), 1e-2 and 1e-6 (sqrt(v) ~ 3e-8 < epsilon: the step depends on
# where epsilon sits). The faulty copies of the oracle's Adam below prove that the check sees each fault.

ADAM_SHAPES = [(5, 12), (12,), (3, 1)]
ADAM_GRADIENT_SCALES = [1.0, 1e-2, 1e-6]


def adam_problem(rng, steps: int):
    """Small weights (|w| <= 0.15, so float32 holds the update to ~1e-5 of itself) and ``steps`` gradients."""
    weights = [rounded(np.sign(a) * (0.05 + 0.1 * np.abs(a)), DTYPE) for a in (rng.uniform(-1, 1, s) for s in ADAM_SHAPES)]
    grads = [[rounded(rng.normal(scale=scale, size=s), DTYPE) for s, scale in zip(ADAM_SHAPES, ADAM_GRADIENT_SCALES)]
             for _ in range(steps)]
    return weights, grads


def keras_adam_weights(weights, grads):
    """The weights after ``keras.optimizers.Adam()`` applied each gradient list in turn, in DTYPE."""
    import keras
    with floatx(DTYPE):
        variables = [keras.Variable(w.astype(DTYPE)) for w in weights]
        optimizer = keras.optimizers.Adam()
        for step in grads:
            optimizer.apply([keras.ops.convert_to_tensor(g.astype(DTYPE)) for g in step], variables)
        return [keras.ops.convert_to_numpy(v).astype(np.float64) for v in variables]


def oracle_adam_weights(weights, grads, optimizer):
    weights = [w.copy() for w in weights]
    for step in grads:
        optimizer.apply(weights, step)
    return weights


def assert_same_updates(before, keras_after, oracle_after, label):
    """Keras's and the oracle's updates agree within ``bound("adam_update")``, relative per tensor."""
    expected = {f"weights[{k}] update": o - w for k, (w, o) in enumerate(zip(before, oracle_after))}
    actual = {f"weights[{k}] update": a - w for k, (w, a) in enumerate(zip(before, keras_after))}
    return compare.assert_within(expected, actual, bound("adam_update", DTYPE, BACKEND), label)


def keras_style_adam() -> reference.Adam:
    return reference.Adam(betas_through_float32=BACKEND == "tensorflow")


@pytest.mark.parametrize("steps", [1, 7])
def test_adam_matches_keras_adam(steps, rng):
    weights, grads = adam_problem(rng, steps)
    ours = keras_style_adam()
    assert_same_updates(weights, keras_adam_weights(weights, grads), oracle_adam_weights(weights, grads, ours),
                        f"{steps} Adam steps, {DTYPE} on {BACKEND}")
    assert ours.iterations == steps


class FaultyAdam(reference.Adam):
    """A copy of ``reference.Adam.apply`` with one fault injected (``fault``), for the test below."""
    fault = ""

    def apply(self, weights, grads):
        if not self.m:
            self.m = [np.zeros_like(w) for w in weights]
            self.v = [np.zeros_like(w) for w in weights]
        t = self.iterations + 1
        lr = self.learning_rate * (1.005 if self.fault == "learning rate x 1.005" else 1.0)
        b1t, b2t = self._power(self.beta_1, t), self._power(self.beta_2, t)
        alpha = lr * np.sqrt(1.0 - b2t) / (1.0 - b1t)
        for w, g, m, v in zip(weights, grads, self.m, self.v):
            g = np.asarray(g, np.float64)
            m += (g - m) * (1.0 - self.beta_1)
            v += (np.square(g) - v) * (1.0 - self.beta_2)
            if self.fault == "epsilon inside the square root":
                w -= (m * alpha) / np.sqrt(v + self.epsilon)
            elif self.fault == "epsilon-hat (added to the bias-corrected sqrt(v), as torch.optim.Adam)":
                w -= lr * (m / (1.0 - b1t)) / (np.sqrt(v / (1.0 - b2t)) + self.epsilon)
            else:
                w -= (m * alpha) / (np.sqrt(v) + self.epsilon)
        self.iterations = t
        return weights


ADAM_FAULTS = ["epsilon inside the square root", "epsilon-hat (added to the bias-corrected sqrt(v), as torch.optim.Adam)",
               "learning rate x 1.005"]


@pytest.mark.parametrize("steps", [1, 7])
@pytest.mark.parametrize("fault", ADAM_FAULTS)
def test_the_adam_check_fails_on_a_faulty_adam(fault, steps, rng):
    weights, grads = adam_problem(rng, steps)
    keras_after = keras_adam_weights(weights, grads)
    faulty = FaultyAdam(betas_through_float32=BACKEND == "tensorflow")
    faulty.fault = fault
    with pytest.raises(AssertionError, match="update"):
        assert_same_updates(weights, keras_after, oracle_adam_weights(weights, grads, faulty), fault)
    # The same copy without a fault passes: the failure is the fault's.
    faithful = FaultyAdam(betas_through_float32=BACKEND == "tensorflow")
    assert_same_updates(weights, keras_after, oracle_adam_weights(weights, grads, faithful), "the faithful copy")


def test_a_learning_rate_error_hides_in_a_comparison_relative_to_the_weights(rng):
    # Why the check takes the update. The old check compared weights of size ~1 (uniform in (-1, 1)) after
    # one step, relative to the largest weight, within GRADIENT_FLOAT32_REL: a 0.5% learning-rate error
    # moves a weight by ~0.005 lr = 5e-6 and passed. Relative to the update it is 5e-3. (Oracle alone, float64.)
    weights = [rng.uniform(-1, 1, size=s) for s in ADAM_SHAPES]
    grads = [[rng.normal(scale=scale, size=s) for s, scale in zip(ADAM_SHAPES, ADAM_GRADIENT_SCALES)]]
    right = oracle_adam_weights(weights, grads, reference.Adam())
    faulty = FaultyAdam()
    faulty.fault = "learning rate x 1.005"
    wrong = oracle_adam_weights(weights, grads, faulty)
    relative_to_weights = compare.worst(compare.errors(dict(enumerate(right)), dict(enumerate(wrong)), "rel"))
    relative_to_update = compare.worst(compare.errors({k: r - w for k, (r, w) in enumerate(zip(right, weights))},
                                                      {k: r - w for k, (r, w) in enumerate(zip(wrong, weights))}, "rel"))
    assert relative_to_weights < GRADIENT_FLOAT32_REL
    assert relative_to_update == pytest.approx(0.005, rel=1e-6)
    assert relative_to_update > 10 * bound("adam_update", "float32", BACKEND).value


# ---------------------------------------------------------------- Adam by hand
