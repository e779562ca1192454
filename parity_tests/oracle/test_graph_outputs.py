"""The oracle's RNN(cell) and StackedRNNCells, its layers with several outputs (``return_state``, Bidirectional's
``merge_mode=None``), references to them, and TimeDistributed of other layers: NumPy alone, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from reference import random_arrays
from reference.cells import Cell
from reference.layers import Layer, LayerGraph, Outputs, graph_forward, layer_forward, layer_of, tensor_ref
from reference.recurrent import cell_step

B, T, F = 4, 7, 3  # batch, steps, features; the units below differ from each of them and from each other


def _masked_input(rng):
    x = rng.standard_normal((B, T, F))
    mask = np.ones((B, T), bool)
    mask[1, 4:] = False  # trailing padding
    mask[2, :2] = False  # leading padding
    mask[3, 3] = False  # a hole
    return x, mask


def _triple(cell: str, features: int, units: int, rng):
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
    bias = (2, gates * units) if cell == "gru" else (gates * units,)
    return tuple(random_arrays([(features, gates * units), (units, gates * units), bias], rng))


def _run(layer, x, mask):
    return layer_forward(layer, [x], [mask])


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_rnn_of_one_cell_is_that_cells_layer(go_backwards, return_sequences, rng):
    x, mask = _masked_input(rng)
    w = _triple("lstm", F, 5, rng)
    options = {"return_sequences": return_sequences, "go_backwards": go_backwards, "zero_output_for_mask": True,
               "return_state": True}
    by_cell = _run(Layer("r", "RNN", ("x",), {**options, "cells": [{"cell": "lstm"}]}, w), x, mask)
    by_layer = _run(Layer("l", "LSTM", ("x",), options, w), x, mask)
    assert isinstance(by_cell, Outputs) and len(by_cell) == 3  # output, h, c
    for (a, ma), (b, mb) in zip(by_cell, by_layer):
        np.testing.assert_array_equal(a, b)
        assert (ma is None) == (mb is None)


def _stacked_by_hand(cells, weights, x, mask, go_backwards):
    """Keras's StackedRNNCells in Keras's RNN loop, one step at a time: each cell on the one below's new h, every
    state carried where the step is masked (keras/src/layers/rnn/stacked_rnn_cells.py L87-105)."""
    if go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    states = [tuple(np.zeros((B, w[1].shape[0])) for _ in c.state_names) for c, w in zip(cells, weights)]
    outputs = []
    for t in range(T):
        inp, new = x[:, t], []
        for c, w, s in zip(cells, weights, states):
            s_new = cell_step(c, inp, s, *w)
            new.append(s_new)
            inp = s_new[0]
        m = mask[:, t, None]
        states = [tuple(np.where(m, n, o) for n, o in zip(ns, os)) for ns, os in zip(new, states)]
        outputs.append(states[-1][0])
    return np.stack(outputs, axis=1), [s for cell_states in states for s in cell_states]


@pytest.mark.parametrize("go_backwards", [False, True])
def test_stacked_cells_step_each_cell_on_the_one_below(go_backwards, rng):
    x, mask = _masked_input(rng)
    kinds = [("gru", 5, {"reset_after": False}), ("lstm", 6, {}), ("simple_rnn", 8, {"activation": "relu"})]
    weights, features = [], F
    for kind, units, _ in kinds:
        weights.append(_triple(kind, features, units, rng) if kind != "gru" else tuple(
            random_arrays([(features, 3 * units), (units, 3 * units), (3 * units,)], rng)))
        features = units
    cells = [Cell(kind, **extra) for kind, _, extra in kinds]
    options = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards,
               "cells": [{"cell": kind, **extra} for kind, _, extra in kinds]}
    got = _run(Layer("r", "RNN", ("x",), options, sum(weights, ())), x, mask)
    expected_seq, expected_states = _stacked_by_hand(cells, weights, x, mask, go_backwards)
    assert len(got) == 1 + 1 + 2 + 1  # output, then the GRU's h, the LSTM's h and c, the SimpleRNN's h
    np.testing.assert_allclose(got[0][0], expected_seq, rtol=0, atol=1e-12)
    for (value, state_mask), expected in zip(got[1:], expected_states):
        np.testing.assert_allclose(value, expected, rtol=0, atol=1e-12)
        assert state_mask is None  # Keras gives states no mask (rnn.py L264-266)
    np.testing.assert_array_equal(got[0][1], mask)  # the sequence keeps the input's mask


def test_bidirectional_merge_none_gives_both_halves_then_the_states(rng):
    x, mask = _masked_input(rng)
    fwd, bwd = _triple("gru", F, 5, rng), _triple("gru", F, 6, rng)
    options = {"return_sequences": True, "forward": {"cell": "gru"},
               "backward": {"cell": "gru", "go_backwards": True, "activation": "relu"}}
    pair = _run(Layer("b", "Bidirectional", ("x",), {**options, "merge_mode": None}, fwd + bwd), x, mask)
    concat, _ = _run(Layer("b", "Bidirectional", ("x",), {**options, "merge_mode": "concat"}, fwd + bwd), x, mask)
    assert len(pair) == 2 and all(np.array_equal(m, mask) for _, m in pair)
    np.testing.assert_array_equal(np.concatenate([pair[0][0], pair[1][0]], axis=-1), concat)
    with_states = _run(Layer("b", "Bidirectional", ("x",), {**options, "merge_mode": None, "return_state": True},
                             fwd + bwd), x, mask)
    assert [v.shape for v, _ in with_states] == [(B, T, 5), (B, T, 6), (B, 5), (B, 6)]
    assert [m is None for _, m in with_states] == [False, False, True, True]
    # the forward copy's final h is its output at its last valid step (zeroed after it: return_sequences)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    np.testing.assert_allclose(with_states[2][0], pair[0][0][np.arange(B), last], rtol=0, atol=1e-12)


def test_references_name_each_output_and_readers_pick_one(rng):
    x = rng.standard_normal((B, T, F))
    w = _triple("lstm", F, 5, rng)
    dense = tuple(random_arrays([(5, 2), (2,)], rng))
    graph = LayerGraph(("x",), (
        Layer("x", "InputLayer"),
        Layer("lstm", "LSTM", ("x",), {"return_sequences": True, "return_state": True}, w),
        Layer("head", "Dense", ("lstm:2",), {"activation": "linear"}, dense)), ("head", "lstm:1"))
    values = graph_forward(graph, [x])
    assert {"lstm", "lstm:1", "lstm:2", "head"} <= set(values)
    np.testing.assert_allclose(values["lstm:1"][0], values["lstm"][0][:, -1], rtol=0, atol=1e-12)  # h: last output
    np.testing.assert_allclose(values["head"][0], values["lstm:2"][0] @ dense[0] + dense[1], rtol=0, atol=1e-12)
    assert tensor_ref("lstm", 0) == "lstm" and tensor_ref("lstm", 2) == "lstm:2"
    assert layer_of("lstm:2") == "lstm" and layer_of("sub/dense@1:1") == "sub/dense@1" and layer_of("a:b") == "a:b"


def test_a_reference_to_an_output_the_layer_lacks_is_named(rng):
    w = _triple("gru", F, 5, rng)
    graph = LayerGraph(("x",), (Layer("x", "InputLayer"), Layer("gru", "GRU", ("x",), {"return_sequences": True}, w),
                                Layer("d", "Dropout", ("gru:1",))), ("d",))
    with pytest.raises(ValueError, match=r"layer 'd' reads \['gru:1'\], which its layers do not output"):
        graph_forward(graph, [rng.standard_normal((B, T, F))])
    with pytest.raises(ValueError, match="reads"):  # a layer that does not exist at all: refused when built
        LayerGraph(("x",), (Layer("x", "InputLayer"), Layer("d", "Dropout", ("nowhere:1",))), ("d",))


def test_time_distributed_runs_its_inner_layer_on_every_step_and_passes_the_mask_on(rng):
    x = rng.standard_normal((B, T, 5, F))
    mask = np.ones((B, T), bool)
    mask[0, 5:] = False
    pooled, m = _run(Layer("td", "TimeDistributed", ("x",), {"inner": Layer("td/p", "GlobalAveragePooling1D"),
                                                             "inner_reads_mask": False}), x, mask)
    np.testing.assert_allclose(pooled, x.mean(axis=2), rtol=0, atol=1e-12)
    assert m is mask
    flat, _ = _run(Layer("td", "TimeDistributed", ("x",), {"inner": Layer("td/f", "Flatten")}), x, None)
    np.testing.assert_array_equal(flat, x.reshape(B, T, 5 * F))
    reads = Layer("td", "TimeDistributed", ("x",), {"inner": Layer("td/p", "GlobalAveragePooling1D"),
                                                    "inner_reads_mask": True})
    assert _run(reads, x, None)[0].shape == (B, T, F)  # no mask reaches it: the same map
    with pytest.raises(ValueError, match="TimeDistributed passes each step's column of its mask"):
        _run(reads, x, mask)  # a (B, T) mask: each step's slice is a (B,) vector
    inner_mask = rng.random((B, T, 5)) > 0.4  # a (B, T, 5) mask: each step's slice masks the inner 5 steps
    inner_mask[..., 0] = True  # one valid step a row (none would be 0/0)
    pooled, m = _run(reads, x, inner_mask)
    expected = (x * inner_mask[..., None]).sum(axis=2) / inner_mask.sum(axis=2)[..., None]
    np.testing.assert_allclose(pooled, expected, rtol=0, atol=1e-12)
    assert m is inner_mask
