"""The cumulative-sum problem: the tutorial's semantics, pinned, fixed and variable length."""
from __future__ import annotations

import numpy as np
import pytest

from reference.problem import labels_for, make_sequences, make_variable_sequences, mask_from_lengths



def running_labels(values, length):
    """The tutorial's rule written out step by step: 0 while the running sum is below length / 4."""
    total, labels = 0.0, []
    for v in values:
        total += v
        labels.append(0.0 if total < length / 4 else 1.0)
    return labels


@pytest.mark.parametrize("n", [4, 8, 12, 20], ids=lambda n: f"n{n}")
def test_sum_exactly_a_quarter_of_n_is_labelled_one(n):
    # 0.25 is exact in binary, so the running sum hits n/4 exactly at step n - 1 (no rounding).
    x = np.full((1, n, 1), 0.25)
    y = labels_for(x, n)
    assert np.cumsum(x[0, :, 0])[n - 1] == n / 4
    expected = np.zeros(n)
    expected[n - 1] = 1.0  # >= n/4 flips the label; strictly below keeps it 0
    np.testing.assert_array_equal(y[0, :, 0], expected)


def test_sum_just_below_a_quarter_stays_zero():
    x = np.full((1, 8, 1), 0.25)
    x[0, -1, 0] = 0.25 - 1e-12  # the total now ends a hair below 8/4 (representable: ulp(2) is 4e-16)
    assert np.cumsum(x[0, :, 0])[-1] < 2.0
    np.testing.assert_array_equal(labels_for(x, 8), np.zeros((1, 8, 1)))


def test_label_flips_once_where_the_running_sum_reaches_a_quarter():
    x = np.array([0.9, 0.05, 0.6, 0.1, 0.3, 0.2, 0.7, 0.4, 0.8, 0.0])[None, :, None]  # sums: .9 .95 1.55 1.65 1.95 2.15 ...
    y = labels_for(x, 10)  # threshold 2.5: reached at step 6 (2.85)
    np.testing.assert_array_equal(y[0, :, 0], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])


def test_make_sequences_shapes_range_and_rule(rng):
    x, y = make_sequences(7, 13, rng)
    assert x.shape == (7, 13, 1) and y.shape == (7, 13, 1)
    assert x.dtype == np.float64 and x.min() >= 0.0 and x.max() < 1.0
    for i in range(7):
        assert list(y[i, :, 0]) == running_labels(x[i, :, 0], 13)


def test_make_sequences_is_driven_by_the_generator():
    a = make_sequences(3, 10, np.random.default_rng(5))
    b = make_sequences(3, 10, np.random.default_rng(5))
    c = make_sequences(3, 10, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_variable_sequences_pad_with_zeros_and_use_their_own_threshold(rng):
    x, y, lengths = make_variable_sequences(200, rng)
    assert x.shape == (200, 20, 1) and y.shape == (200, 20, 1) and lengths.shape == (200,)
    assert lengths.min() == 5 and lengths.max() == 20  # 200 draws cover both ends of 5..20
    for i in range(200):
        n = int(lengths[i])
        assert np.all(x[i, :n, 0] > 0.0), "a valid step must not look like padding"
        assert np.all(x[i, n:] == 0.0) and np.all(y[i, n:] == 0.0)
        assert list(y[i, :n, 0]) == running_labels(x[i, :n, 0], n)


def test_variable_boundary_sum_equals_own_length_over_four():
    # Hand-made: a sequence of length 8 in a 12-step frame, values 0.25: sum hits 8/4 at its last valid step.
    x = np.zeros((1, 12, 1))
    x[0, :8, 0] = 0.25
    y = labels_for(x, np.array([8])) * mask_from_lengths(np.array([8]), 12)[..., None]
    np.testing.assert_array_equal(y[0, :, 0], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])


def test_mask_from_lengths():
    np.testing.assert_array_equal(mask_from_lengths(np.array([1, 3]), 4),
                                  [[True, False, False, False], [True, True, True, False]])


@pytest.mark.parametrize("kwargs, message", [
    ({"n_sequences": 0}, "n_sequences must be a positive integer, got 0"),
    ({"min_length": 6, "max_length": 5}, "min_length must be <= max_length"),
    ({"max_length": 2.5}, "max_length must be a positive integer, got 2.5"),
], ids=["no-sequences", "min-above-max", "float-length"])
def test_variable_sequences_reject_bad_arguments(rng, kwargs, message):
    args = {"n_sequences": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_variable_sequences(args.pop("n_sequences"), rng, **args)


def test_bad_generator_is_a_type_error():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, got int"):
        make_sequences(2, 10, 42)
