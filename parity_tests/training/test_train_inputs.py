"""Bad input to the training loops is refused by name before the first update, and the model is left as it was.

``train_stream`` (every backend, both modes) and ``training_jax.train_many``
once took NaN, infinities, float32-overflowing, complex, bool and object data
and trained the weights into NaN in place; a model compiled without the
accuracy metric failed with a KeyError after its first update. Each case
below checks the error (type, the argument's name, the first bad index) and
that the weights and the optimizer's state did not move.
"""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import BACKEND
from reference import ModelSpec, keras_init_weights
from reference.problem import make_sequences

SPEC = ModelSpec(timesteps=6, features=1, units=3, direction="bidirectional", merge_mode="concat")
N = 4


def with_value(array, index, value, dtype=np.float64):
    array = np.array(array, dtype=dtype)
    array[index] = value
    return array


def fresh(rng, compile_kwargs=None):
    import keras

    from keras_impl.models import build_model
    model = build_model(SPEC)
    model.set_weights([w.astype(np.float32) for w in keras_init_weights(SPEC, rng)])
    if compile_kwargs is not None:
        model.compile(**compile_kwargs)
    xs, ys = make_sequences(N, SPEC.timesteps, rng)
    return model, xs, ys, keras


def state_of(model):
    """The weights and, once built, the optimizer's variables (its iteration count included)."""
    optimizer = [] if model.optimizer is None or not model.optimizer.built else \
        [np.array(v.numpy()) for v in model.optimizer.variables]
    return [np.array(w) for w in model.get_weights()], optimizer


def assert_untouched(model, before):
    weights, optimizer = state_of(model)
    for k, (a, b) in enumerate(zip(weights, before[0], strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"weight {k} changed although training was refused")
    for k, (a, b) in enumerate(zip(optimizer, before[1])):
        np.testing.assert_array_equal(a, b, err_msg=f"optimizer variable {k} changed although training was refused")
    if optimizer:
        assert int(optimizer[0]) == 0, "the optimizer took a step"


# (what to change in (xs, ys, sample_weight), error, message): every message names the argument and the index.
BAD_DATA = {
    "xs_nan": (lambda xs, ys: (with_value(xs, (2, 3, 0), np.nan), ys, None), ValueError,
               r"xs must be finite, found nan at index \(2, 3, 0\)"),
    "xs_inf": (lambda xs, ys: (with_value(xs, (0, 5, 0), -np.inf), ys, None), ValueError,
               r"xs must be finite, found -inf at index \(0, 5, 0\)"),
    "xs_beyond_float32": (lambda xs, ys: (with_value(xs, (1, 0, 0), 1e39), ys, None), ValueError,
                          r"xs must fit in float32 .* found 1e\+39 at index \(1, 0, 0\)"),
    "xs_complex": (lambda xs, ys: (xs.astype(complex), ys, None), TypeError, r"xs must hold real numbers.*complex128"),
    "xs_bool": (lambda xs, ys: (xs > 0.5, ys, None), TypeError, r"xs must hold real numbers.*dtype bool"),
    "xs_object": (lambda xs, ys: (xs.astype(object), ys, None), TypeError, r"xs must hold real numbers.*dtype object"),
    "xs_strings": (lambda xs, ys: (xs.astype(str), ys, None), TypeError, r"xs must hold real numbers.*dtype <U"),
    "ys_nan": (lambda xs, ys: (xs, with_value(ys, (3, 1, 0), np.nan), None), ValueError,
               r"ys must be finite, found nan at index \(3, 1, 0\)"),
    "ys_not_a_label": (lambda xs, ys: (xs, with_value(ys, (1, 2, 0), 2.0), None), ValueError,
                       r"ys must hold labels in \[0, 1\], found 2.0 at index \(1, 2, 0\)"),
    "sample_weight_inf": (lambda xs, ys: (xs, ys, with_value(np.ones((N, 6)), (0, 4), np.inf)), ValueError,
                          r"sample_weight must be finite, found inf at index \(0, 4\)"),
    "sample_weight_negative": (lambda xs, ys: (xs, ys, with_value(np.ones((N, 6)), (2, 1), -1.0)), ValueError,
                               r"sample_weight must hold weights in \[0, .*\], found -1.0 at index \(2, 1\)"),
}


@pytest.mark.parametrize("mode", ["fast", "faithful"])
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_train_stream_refuses_bad_data_before_any_update(rng, case, mode):
    from keras_impl.training import train_stream
    change, error, pattern = BAD_DATA[case]
    model, xs, ys, _ = fresh(rng, dict(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"]))
    xs, ys, sample_weight = change(xs, ys)
    before = state_of(model)
    with pytest.raises(error, match=pattern):
        train_stream(model, xs, ys, mode=mode, sample_weight=sample_weight)
    assert_untouched(model, before)


@pytest.mark.parametrize("mode", ["fast", "faithful"])
@pytest.mark.parametrize("compile_kwargs, pattern", [
    (dict(loss="binary_crossentropy", optimizer="adam"), r"compiled with metrics=\['accuracy'\]"),
    (dict(loss="binary_crossentropy", optimizer="adam", metrics=["mae"]), r"compiled with metrics=\['accuracy'\].*mae"),
], ids=["no-metric", "another-metric"])
def test_a_model_without_the_accuracy_metric_is_refused_untouched(rng, mode, compile_kwargs, pattern):
    from keras_impl.training import train_stream
    model, xs, ys, _ = fresh(rng, compile_kwargs)
    before = state_of(model)
    with pytest.raises(ValueError, match=pattern):
        train_stream(model, xs, ys, mode=mode)
    assert_untouched(model, before)


def test_the_same_model_trains_once_given_good_data(rng):
    # The refusals above leave a usable model: the same call with the bad value put right trains it.
    from keras_impl.training import train_stream
    model, xs, ys, _ = fresh(rng, dict(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"]))
    before = state_of(model)
    with pytest.raises(ValueError, match="xs must be finite"):
        train_stream(model, with_value(xs, (0, 0, 0), np.nan), ys)
    losses = train_stream(model, xs, ys)
    assert losses.shape == (N,) and np.all(np.isfinite(losses))
    assert int(model.optimizer.iterations.numpy()) == N
    assert max(np.abs(a - b).max() for a, b in zip(model.get_weights(), before[0])) > 0


@pytest.mark.skipif(BACKEND != "jax", reason="train_many (jax.vmap over seeds) exists on the JAX backend only")
@pytest.mark.parametrize("case, pattern", [
    ("xs_nan_in_seed_1", r"xs must be finite, found nan at index \(1, 2, 3, 0\)"),
    ("ys_not_a_label_in_seed_1", r"seed 1: ys must hold labels in \[0, 1\], found -1.0 at index \(0, 4, 0\)"),
    ("ys_complex", r"ys must hold real numbers.*complex128"),
    ("weights_nan", r"initial_weights\[1\]\[2\] must be finite, found nan at index \(5,\)"),
    ("weights_missing_one", r"initial_weights\[0\] must be a list of the model's 8 arrays"),
    ("weights_wrong_shape", r"initial_weights\[0\]\[1\] must have shape \(3, 12\), got \(12, 3\)"),
    ("chunk_zero", r"chunk_updates must be a positive integer, got 0"),
    ("no_accuracy_metric", r"compiled with metrics=\['accuracy'\]"),
])
def test_train_many_refuses_bad_input_before_any_update(rng, case, pattern):
    from keras_impl import training_jax
    compile_kwargs = dict(loss="binary_crossentropy", optimizer="adam",
                          metrics=[] if case == "no_accuracy_metric" else ["accuracy"])
    model, xs, ys, _ = fresh(rng, compile_kwargs)
    weights = [[w.astype(np.float32) for w in keras_init_weights(SPEC, rng)] for _ in range(2)]
    xs, ys = np.stack([xs, xs[::-1]]), np.stack([ys, ys[::-1]])
    kwargs = {}
    if case == "xs_nan_in_seed_1":
        xs = with_value(xs, (1, 2, 3, 0), np.nan)
    elif case == "ys_not_a_label_in_seed_1":
        ys = with_value(ys, (1, 0, 4, 0), -1.0)
    elif case == "ys_complex":
        ys = ys.astype(complex)
    elif case == "weights_nan":
        weights[1][2] = with_value(weights[1][2], (5,), np.nan)
    elif case == "weights_missing_one":
        weights[0] = weights[0][:-1]
    elif case == "weights_wrong_shape":
        weights[0][1] = weights[0][1].T
    elif case == "chunk_zero":
        kwargs["chunk_updates"] = 0
    before = state_of(model)
    with pytest.raises((ValueError, TypeError), match=pattern):
        training_jax.train_many(model, weights, xs, ys, **kwargs)
    assert_untouched(model, before)
