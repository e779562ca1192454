"""Training trajectories: ``reference.train`` against Keras, update by update.

The same initial weights (random, non-zero) and the same stream of tutorial
sequences (``reference.problem.make_sequences``, T=10, batch 1, one Adam update
each, ``compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam())``):
the loss of every update and the final weights agree.

- float32: within ``TRAJECTORY_FLOAT32_REL`` of each array's largest entry.
- float64 on TensorFlow: within ``TRAJECTORY_FLOAT64_ABS``, with the oracle's
  Adam rounding the betas through float32 as TensorFlow's does; without that
  rounding the two drift apart measurably (a test shows it).
- float64 on JAX and torch: Keras computes in float32 inside (``BIT64_TO_BIT32_DTYPE``):
  a strict xfail, whose figure ``bilstm parity`` reports.

The default suite runs 100 updates of the tutorial's Bidirectional model
through ``train_on_batch`` (the train function ``fit`` runs, without its
per-call data pipeline); ``-m slow`` adds the tutorial's own loop of one
``fit`` call a sequence, and 1000 updates of each tutorial model.
"""
from __future__ import annotations

import pytest

from parity_tests.conftest import BACKEND
from keras_impl.parity.tolerances import TRAJECTORY_FLOAT32_REL, TRAJECTORY_FLOAT64_ABS
from keras_impl.parity.training_checks import (FLOAT64_CAUSE, TUTORIAL_TRAJECTORY, TrajectoryCase, absolute_errors,
                                          assert_within, float64_exact, relative_errors, trajectory_parity)


def test_float32_trajectory_matches_the_oracle(rng, backend):
    expected, actual = trajectory_parity(TUTORIAL_TRAJECTORY, rng, "float32")
    assert_within(relative_errors(expected, actual), TRAJECTORY_FLOAT32_REL, f"{TUTORIAL_TRAJECTORY.id} float32 on {backend}")


@pytest.mark.xfail(not float64_exact(BACKEND), strict=True, reason=FLOAT64_CAUSE)
def test_float64_trajectory_matches_the_oracle(rng, backend):
    expected, actual = trajectory_parity(TUTORIAL_TRAJECTORY, rng, "float64")
    assert_within(absolute_errors(expected, actual), TRAJECTORY_FLOAT64_ABS, f"{TUTORIAL_TRAJECTORY.id} float64 on {backend}")


@pytest.mark.skipif(not float64_exact(BACKEND), reason="only TensorFlow computes float64 exactly enough to see the betas' rounding")
def test_tensorflow_float64_adam_rounds_the_betas_through_float32(rng, backend):
    # Same run, the oracle's betas in exact float64: the trajectories part by far more than the 1e-9 bound
    # (keras/src/optimizers/adam.py update_step: ops.cast(self.beta_1, variable.dtype) on a Python float).
    case = TrajectoryCase(updates=20)
    expected, actual = trajectory_parity(case, rng, "float64", betas_through_float32=False)
    worst = max(absolute_errors(expected, actual).values())
    assert worst > 10 * TRAJECTORY_FLOAT64_ABS, f"expected a visible drift without the rounding, got {worst:.3g}"


@pytest.mark.slow
def test_float32_trajectory_through_fit_matches_the_oracle(rng, backend):
    # The tutorial's loop itself: one model.fit(epochs=1, batch_size=1) a sequence.
    expected, actual = trajectory_parity(TUTORIAL_TRAJECTORY, rng, "float32", use_fit=True)
    assert_within(relative_errors(expected, actual), TRAJECTORY_FLOAT32_REL, f"fit {TUTORIAL_TRAJECTORY.id} on {backend}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "lstm_go_backwards", "bidirectional_concat", "bidirectional_sum",
                                  "bidirectional_ave", "bidirectional_mul"])
def test_long_float32_trajectory_matches_the_oracle(kind, rng, backend):
    case = TrajectoryCase(kind=kind, updates=1000)
    expected, actual = trajectory_parity(case, rng, "float32")
    assert_within(relative_errors(expected, actual), TRAJECTORY_FLOAT32_REL, f"{case.id} float32 on {backend}")


@pytest.mark.slow
@pytest.mark.skipif(not float64_exact(BACKEND), reason="float64 is computed in float32 inside Keras on this backend")
def test_long_float64_trajectory_matches_the_oracle(rng, backend):
    case = TrajectoryCase(updates=1000)
    expected, actual = trajectory_parity(case, rng, "float64")
    assert_within(absolute_errors(expected, actual), TRAJECTORY_FLOAT64_ABS, f"{case.id} float64 on {backend}")
