"""Training trajectories: ``reference.train`` against Keras, update by update.

The same initial weights (random, non-zero) and the same stream of tutorial
sequences (``reference.problem.make_sequences``, T=10, batch 1, one Adam update
each, ``compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam())``):
the loss of every update and each weight's total update (final minus initial
weights: relative to the update, not to the weights, so an optimizer error
cannot hide under the weights' size; a test injects a 0.5% learning-rate error).

- float32: within ``TRAJECTORY_FLOAT32_REL`` of each array's largest entry.
- float64 on TensorFlow: within ``TRAJECTORY_FLOAT64_ABS``, with the oracle's
  Adam rounding the betas through float32 as TensorFlow's does; without that
  rounding the two drift apart measurably (a test shows it).
- float64 on JAX and torch: Keras computes in float32 inside (``BIT64_TO_BIT32_DTYPE``):
  within the measured ``TRAJECTORY_FLOAT64_DEMOTED_ABS``.

The default suite runs 100 updates of the tutorial's Bidirectional model
through ``train_on_batch`` (the train function ``fit`` runs, without its
per-call data pipeline); ``-m slow`` adds the tutorial's own loop of one
``fit`` call a sequence, and 1000 updates of each tutorial model.
"""
from __future__ import annotations

import pytest

import reference
from parity_tests.conftest import BACKEND
from keras_impl.parity import compare, training_checks
from keras_impl.parity.tolerances import TRAJECTORY_FLOAT64_ABS, bound, float64_exact
from keras_impl.parity.training_checks import TUTORIAL_TRAJECTORY, TrajectoryCase, trajectory_parity


def test_float32_trajectory_matches_the_oracle(rng, backend):
    expected, actual = trajectory_parity(TUTORIAL_TRAJECTORY, rng, "float32")
    compare.assert_within(expected, actual, bound("trajectory", "float32", backend),
                          f"{TUTORIAL_TRAJECTORY.id} float32 on {backend}")


def test_float64_trajectory_matches_the_oracle(rng, backend):
    expected, actual = trajectory_parity(TUTORIAL_TRAJECTORY, rng, "float64")
    compare.assert_within(expected, actual, bound("trajectory", "float64", backend),
                          f"{TUTORIAL_TRAJECTORY.id} float64 on {backend}")


class _LearningRateOffAdam(reference.Adam):
    """The oracle's Adam with a learning rate 0.5% too large: the fault the check must see."""

    def __post_init__(self):
        super().__post_init__()
        self.learning_rate *= 1.005


def test_a_half_percent_learning_rate_error_fails_the_trajectory_check(rng, backend, monkeypatch):
    # Relative to the weights the error would be ~0.5% of an update over a weight ~20x larger: under the bound.
    monkeypatch.setattr(training_checks.reference, "Adam", _LearningRateOffAdam)
    case = TrajectoryCase(updates=20)
    expected, actual = trajectory_parity(case, rng, "float32")
    with pytest.raises(AssertionError, match="update"):
        compare.assert_within(expected, actual, bound("trajectory", "float32", backend), f"{case.id} lr x 1.005")


@pytest.mark.skipif(not float64_exact(BACKEND), reason="only TensorFlow computes float64 exactly enough to see the betas' rounding")
def test_tensorflow_float64_adam_rounds_the_betas_through_float32(rng, backend):
    # Same run, the oracle's betas in exact float64: the trajectories part by far more than the 1e-9 bound
    # (keras/src/optimizers/adam.py update_step: ops.cast(self.beta_1, variable.dtype) on a Python float).
    case = TrajectoryCase(updates=20)
    expected, actual = trajectory_parity(case, rng, "float64", betas_through_float32=False)
    worst = compare.worst(compare.errors(expected, actual))
    assert worst > 10 * TRAJECTORY_FLOAT64_ABS, f"expected a visible drift without the rounding, got {worst:.3g}"


@pytest.mark.slow
def test_float32_trajectory_through_fit_matches_the_oracle(rng, backend):
    # The tutorial's loop itself: one model.fit(epochs=1, batch_size=1) a sequence.
    expected, actual = trajectory_parity(TUTORIAL_TRAJECTORY, rng, "float32", use_fit=True)
    compare.assert_within(expected, actual, bound("trajectory", "float32", backend), f"fit {TUTORIAL_TRAJECTORY.id} on {backend}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "lstm_go_backwards", "bidirectional_concat", "bidirectional_sum",
                                  "bidirectional_ave", "bidirectional_mul"])
def test_long_float32_trajectory_matches_the_oracle(kind, rng, backend):
    case = TrajectoryCase(kind=kind, updates=1000)
    expected, actual = trajectory_parity(case, rng, "float32")
    compare.assert_within(expected, actual, bound("trajectory", "float32", backend), f"{case.id} float32 on {backend}")


@pytest.mark.slow
@pytest.mark.skipif(not float64_exact(BACKEND), reason="float64 is computed in float32 inside Keras on this backend")
def test_long_float64_trajectory_matches_the_oracle(rng, backend):
    case = TrajectoryCase(updates=1000)
    expected, actual = trajectory_parity(case, rng, "float64")
    compare.assert_within(expected, actual, bound("trajectory", "float64", backend), f"{case.id} float64 on {backend}")
