"""``reference.parallel``: the oracle's independent parts on threads give what they give one after the other.

The machinery (order of results, which thread runs what, a part's error, nesting, the BLAS limit entered once
around the parts), then each layer that splits its work (a Bidirectional's two directions, a convolution's and
a pooling's examples) against the same call with the threads off. NumPy alone: the BLAS limit here is a
counting stand-in (``keras_impl/threads.py`` gives threadpoolctl's; ``parity_tests/verify/test_oracle_threads.py``
checks that one).
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

import reference.parallel

from keras_impl.parity.tolerances import FLOAT64_SELF_ABS
from reference import bidirectional_forward, random_arrays
from reference.layers import Layer, pooling
from reference.layers.graph import layer_forward
from reference.layers.convolutional import convolve
from reference.parallel import in_parallel, parallel, split_range, workers


class CountingLimit:
    """A stand-in for the BLAS limit: counts how often it is entered, and from which thread."""

    def __init__(self):
        self.entered, self.threads = 0, []

    @contextlib.contextmanager
    def __call__(self):
        self.entered += 1
        self.threads.append(threading.current_thread().name)
        yield


def test_parts_run_on_the_pool_and_their_results_come_back_in_order():
    limit = CountingLimit()
    with parallel(2, limit):
        assert workers() == 2
        results = in_parallel([lambda k=k: (k, threading.current_thread().name) for k in range(5)])
    assert [k for k, _ in results] == list(range(5))
    assert results[0][1] == threading.current_thread().name  # the first part on the calling thread
    assert all(name.startswith("oracle") for _, name in results[1:])  # the others on the pool
    assert limit.entered == 1 and limit.threads == [threading.current_thread().name]
    assert workers() == 1  # off again after the block


def test_off_by_default_the_parts_run_in_order_on_this_thread():
    ran = []
    results = in_parallel([lambda k=k: ran.append((k, threading.current_thread().name)) or k for k in range(3)])
    assert results == [0, 1, 2]
    assert ran == [(k, threading.current_thread().name) for k in range(3)]


def test_a_part_that_calls_in_parallel_runs_its_parts_in_order_on_its_own_thread():
    def outer():
        return in_parallel([lambda: threading.current_thread().name, lambda: threading.current_thread().name])
    with parallel(2):
        inner_a, inner_b = in_parallel([outer, outer])
    assert len(set(inner_a)) == 1 and len(set(inner_b)) == 1  # no deadlock, no thread taken twice
    assert inner_a[0] != inner_b[0]


def test_a_part_that_raises_raises_after_every_part_ended_and_the_settings_come_back():
    finished = threading.Event()

    def slow():
        finished.wait(0.05)
        finished.set()
        return 1

    def broken():
        raise ZeroDivisionError("part")
    with pytest.raises(ZeroDivisionError, match="part"):
        with parallel(2):
            in_parallel([broken, slow])
    assert finished.is_set()
    assert workers() == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_a_worker_count_that_is_not_a_positive_int_is_refused(bad):
    with pytest.raises(ValueError, match="workers must be a positive int"):
        with parallel(bad):
            pass


def test_work_under_the_threshold_stays_one_range():
    assert split_range(16, 2, work=reference.parallel.MIN_PARALLEL_WORK - 1) == [(0, 16)]
    assert split_range(16, 2, work=reference.parallel.MIN_PARALLEL_WORK) == [(0, 8), (8, 16)]


@pytest.mark.parametrize("n, parts", [(1, 2), (2, 2), (7, 2), (16, 3), (5, 8)])
def test_split_range_covers_every_index_once_in_near_equal_ranges(n, parts):
    ranges = split_range(n, parts)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
    assert len(ranges) == min(n, parts)
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


@pytest.fixture
def _both(monkeypatch):
    """``compute()`` with the threads off, then on (every size split: these arrays are small): the two results,
    the threaded run having handed parts to the pool."""
    monkeypatch.setattr(reference.parallel, "MIN_PARALLEL_WORK", 0)

    def both(compute):
        alone = compute()
        limit = CountingLimit()
        with parallel(2, limit):
            threaded = compute()
        assert limit.entered >= 1  # the parts ran on the pool
        return alone, threaded
    return both


def _assert_same(alone, threaded):
    for a, t in zip(alone if isinstance(alone, tuple) else (alone,), threaded if isinstance(threaded, tuple)
                    else (threaded,)):
        np.testing.assert_allclose(t, a, rtol=0, atol=FLOAT64_SELF_ABS)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_a_bidirectional_on_two_threads_is_the_two_directions_one_after_the_other(cell, rng, _both):
    B, T, D, U = 5, 7, 3, 4
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
    forward, backward = ([*random_arrays([(D, gates * U), (U, gates * U), (2 * gates * U if cell == "gru" else
                                                                           gates * U,)], rng)] for _ in range(2))
    if cell == "gru":
        forward[2], backward[2] = forward[2].reshape(2, gates * U), backward[2].reshape(2, gates * U)
    x = rng.normal(size=(B, T, D))
    mask = np.arange(T)[None, :] < rng.integers(1, T + 1, size=B)[:, None]
    alone, threaded = _both(lambda: bidirectional_forward(x, forward, backward, cell=cell, mask=mask,
                                                          return_sequences=True, return_state=True))
    _assert_same(alone, threaded)


@pytest.mark.parametrize("batch", [2, 5])
def test_a_convolution_on_two_threads_is_its_examples_one_after_the_other(batch, rng, _both):
    x = rng.normal(size=(batch, 9, 7, 3))
    kernel, bias = random_arrays([(3, 2, 3, 4), (4,)], rng)
    alone, threaded = _both(lambda: convolve(x, kernel, padding="same", strides=(2, 1), bias=bias,
                                             activation="relu"))
    _assert_same(alone, threaded)


@pytest.mark.parametrize("ufunc", [np.maximum, np.add])
def test_pooling_on_two_threads_is_its_examples_one_after_the_other(ufunc, rng, _both):
    x = rng.normal(size=(5, 9, 8, 3))
    alone, threaded = _both(lambda: pooling.reduce_windows(ufunc, x, (1, 2), (2, 3), (2, 2), "same", 0.0))
    _assert_same(alone, threaded)


@pytest.mark.parametrize("return_scores", [False, True])
def test_multi_head_attention_on_two_threads_is_its_batch_rows_one_after_the_other(return_scores, rng, _both,
                                                                                    monkeypatch):
    from reference.layers import attention
    monkeypatch.setattr(attention, "SCORES_BUFFER_BYTES", 1)  # one batch row a chunk: several chunks a thread
    B, T, S, D = 5, 6, 7, 3
    q, v = rng.normal(size=(B, T, D)), rng.normal(size=(B, S, D))
    q_mask = np.arange(T)[None, :] < rng.integers(1, T + 1, size=B)[:, None]
    v_mask = np.arange(S)[None, :] < rng.integers(1, S + 1, size=B)[:, None]
    weights = [*random_arrays([(D, 2, 3), (2, 3), (D, 2, 3), (2, 3), (D, 2, 4), (2, 4), (2, 4, D), (D,)], rng)]
    layer = Layer("mha", "MultiHeadAttention", ("q", "v"),
                  {"num_heads": 2, "key_dim": 3, "value_dim": 4, "return_attention_scores": return_scores},
                  tuple(weights))
    alone, threaded = _both(lambda: layer_forward(layer, [q, v], [q_mask, v_mask]))
    if return_scores:  # Outputs: ((y, mask), (scores, mask))
        alone, threaded = (alone[0][0], alone[1][0]), (threaded[0][0], threaded[1][0])
    else:
        alone, threaded = alone[0], threaded[0]
    _assert_same(alone, threaded)


@pytest.mark.parametrize("shape", [(5, 4, 6), (3, 6)])
def test_a_batch_of_rows_times_a_kernel_on_two_threads_is_its_rows_one_after_the_other(shape, rng, _both):
    from reference.products import last_axis_product
    x, kernel = random_arrays([shape, (shape[-1], 7)], rng)
    alone, threaded = _both(lambda: last_axis_product(x, kernel))
    _assert_same(alone, threaded)
    assert threaded.shape == shape[:-1] + (7,)
