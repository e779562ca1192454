"""``bilstm verify`` on the rest of the recurrent family and on model graphs: RNN(cell) and StackedRNNCells,
``return_state`` and ``merge_mode=None`` (several outputs, each its row), a Bidirectional whose backward layer has
other options, TimeDistributed of other layers, a layer called twice and nested models (flattened: ``shared@1``,
``inner_seq/inner_lstm``, ``sub@1/sub_gru``).

Three models, built here with random non-symmetric weights (``randomise_weights``) and a different size for every
dimension, saved as .keras and verified through the command in float32 and float64, on the backend in use. Each
feature has a planted fault in the oracle that makes verify exit 1 naming the right output: an altered weight in
the second call of a shared layer, an altered returned state, an altered weight inside a TimeDistributed; and a
(B, T) mask reaching a TimeDistributed layer that would read it is refused (exit 2, one line).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from keras_impl.parity.harness import floatx
from parity_tests.conftest import randomise_weights, run_bilstm

DTYPES = ["float32", "float64"]


def _cells_model():
    """Masked (B=5, T=7, F=3) input: an RNN(LSTMCell) and an LSTM of the same weights, a StackedRNNCells with its
    states, an LSTM with its states, a Bidirectional of merge_mode=None with a backward GRU of other options."""
    import keras
    L = keras.layers
    x = keras.Input((7, 3), name="x")
    h = L.Masking(0.0, name="masking")(x)
    options = {"return_sequences": True, "go_backwards": True, "zero_output_for_mask": True}
    by_cell = L.RNN(L.LSTMCell(4), name="rnn_lstm_cell", **options)(h)
    by_layer = L.LSTM(4, name="lstm_twin", **options)(h)
    stacked, *_ = L.RNN(L.StackedRNNCells([L.GRUCell(6, reset_after=False), L.SimpleRNNCell(8, activation="relu")]),
                        return_state=True, name="stacked")(h)
    _, _, state_c = L.LSTM(2, return_sequences=True, return_state=True, name="lstm_states")(h)
    forward, backward, *_ = L.Bidirectional(
        L.GRU(9, return_sequences=True, return_state=True),
        backward_layer=L.GRU(10, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True,
                             return_state=True, go_backwards=True),
        merge_mode=None, name="pair")(h)
    return keras.Model(x, [by_cell, by_layer, stacked, state_c, forward, backward])


def _wrappers_model():
    """TimeDistributed of Dense, Dropout, GlobalAveragePooling1D and Flatten over a (T=6, S=5, F=3) input, and of
    a Dense between an Embedding's mask and the LSTM that reads it (the wrapper passes the mask on)."""
    import keras
    L = keras.layers
    x = keras.Input((6, 5, 3), name="x")
    h = L.TimeDistributed(L.Dense(7, activation="tanh", name="inner_dense"), name="td_dense")(x)
    h = L.TimeDistributed(L.Dropout(0.3), name="td_dropout")(h)
    pooled = L.TimeDistributed(L.GlobalAveragePooling1D(), name="td_pool")(h)
    flat = L.TimeDistributed(L.Flatten(), name="td_flatten")(h)
    ids = keras.Input((6,), dtype="int32", name="ids")
    e = L.Embedding(11, 4, mask_zero=True, name="embedding")(ids)
    read = L.LSTM(2, return_sequences=True, name="masked_lstm")(L.TimeDistributed(L.Dense(9), name="td_masked")(e))
    return keras.Model([x, ids], [L.Concatenate(name="concat")([pooled, flat]), read])


def _graph_model():
    """A Dense shared by two branches, a nested Sequential, and a nested functional model called twice."""
    import keras
    L = keras.layers
    a, b = keras.Input((6, 3), name="a"), keras.Input((6, 3), name="b")
    shared = L.Dense(4, activation="tanh", name="shared")
    left, right = shared(a), shared(b)
    inner_seq = keras.Sequential([keras.Input((6, 4)), L.LSTM(5, return_sequences=True, name="inner_lstm"),
                                  L.Dense(2, name="inner_head")], name="inner_seq")
    i = keras.Input((6, 4))
    g = L.GRU(7, return_sequences=True, name="sub_gru")(i)
    sub = keras.Model(i, [g, L.Dense(8, name="sub_head")(g)], name="sub")
    p, q = sub(right)
    r, s = sub(left)
    merged = L.Concatenate(name="concat_gru")([p, r])
    return keras.Model([a, b], [inner_seq(left), merged, L.Concatenate(name="concat_head")([q, s])])


MODELS = {"cells": _cells_model, "wrappers": _wrappers_model, "graph": _graph_model}
ROWS = {  # every output of every call
    "cells": ["masking", "rnn_lstm_cell", "lstm_twin", "stacked", "stacked:1", "stacked:2", "lstm_states",
              "lstm_states:1", "lstm_states:2", "pair", "pair:1", "pair:2", "pair:3"],
    "wrappers": ["td_dense", "embedding", "td_dropout", "td_masked", "td_pool", "td_flatten", "masked_lstm",
                 "concat"],
    "graph": ["shared", "shared@1", "inner_seq/inner_lstm", "sub/sub_gru", "sub@1/sub_gru", "inner_seq/inner_head",
              "sub/sub_head", "sub@1/sub_head", "concat_gru", "concat_head"],
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``{(model, dtype): path}``, each model built and saved once per dtype."""
    folder, paths = tmp_path_factory.mktemp("graph_layers"), {}
    for seed, (name, make) in enumerate(MODELS.items()):
        for dtype in DTYPES:
            with floatx(dtype):
                model = randomise_weights(make(), np.random.default_rng(seed))
                if name == "cells":  # the LSTM twin holds the RNN(LSTMCell)'s weights: the same layer, twice
                    model.get_layer("lstm_twin").set_weights(model.get_layer("rnn_lstm_cell").get_weights())
                paths[name, dtype] = folder / f"{name}_{dtype}.keras"
                model.save(paths[name, dtype])
    return paths


def _verify(path, dtype, capsys, tmp_path):
    """``(exit status, rows by layer output, stdout, stderr)``."""
    report = tmp_path / "report.json"
    rc, out, err = run_bilstm(["verify", path, "--dtype", dtype, "--batch", 5, "--json", report], capsys)
    rows = {r["layer"]: r for r in json.loads(report.read_text())["layers"]} if report.exists() else {}
    return rc, rows, out, err


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_output_of_every_call_verifies(name, dtype, saved, capsys, tmp_path):
    rc, rows, out, err = _verify(saved[name, dtype], dtype, capsys, tmp_path)
    assert rc == 0, out + err
    assert sorted(rows) == sorted(ROWS[name])  # every call and every output its row, nothing skipped
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows.values())
    if name == "cells":  # the RNN(LSTMCell) is the LSTM: the oracle gives both the same outputs
        assert rows["rnn_lstm_cell"]["max_abs_output"] == rows["lstm_twin"]["max_abs_output"]
        assert ("StackedRNNCells(GRUCell(6, reset_after=False), SimpleRNNCell(8, activation=relu))"
                in rows["stacked"]["options"])
        assert "merge=None, units=9+10" in rows["pair"]["options"]
        assert rows["pair:1"]["mask"].endswith("valid") and rows["pair:2"]["mask"].endswith("-> -")  # states: none
    if name == "wrappers":
        assert rows["td_dense"]["options"] == "Dense(7, tanh)"
        valid = rows["embedding"]["mask"].split("-> ")[1]
        assert valid != "-" and rows["td_masked"]["mask"] == f"{valid} -> {valid}"  # passed on, then read


def _first_failing(rows) -> str:
    return next(name for name, r in rows.items() if r["verdict"] == "FAIL")


def _alter_weight(monkeypatch, layer_name):
    """The oracle's copy of the first weight entry of the described layer ``layer_name``, moved by 1e-3."""
    from keras_impl.verify import describe
    original = describe.describe_layer

    def altered(keras_layer, name, inbound):
        described, shown = original(keras_layer, name, inbound)
        if name == layer_name:
            w = [np.array(a) for a in described.weights]
            w[0].flat[0] += 1e-3
            described = type(described)(described.name, described.kind, described.inbound, described.options,
                                        tuple(w))
        return described, shown
    monkeypatch.setattr(describe, "describe_layer", altered)


@pytest.mark.parametrize("model, altered, failing", [
    ("graph", "shared@1", "shared@1"),  # the second call of the shared Dense: its first call still passes
    ("graph", "sub@1/sub_gru", "sub@1/sub_gru"),  # the nested model's second call
    ("wrappers", "td_dense/inner_dense", "td_dense"),  # the Dense inside a TimeDistributed
], ids=["shared_second_call", "nested_second_call", "time_distributed_inner"])
def test_an_altered_weight_fails_naming_that_call(model, altered, failing, saved, capsys, tmp_path, monkeypatch):
    _alter_weight(monkeypatch, altered)
    rc, rows, out, _ = _verify(saved[model, "float32"], "float32", capsys, tmp_path)
    assert rc == 1 and _first_failing(rows) == failing, out
    assert f"FAIL: {failing}" in out
    if model == "graph":
        assert rows[failing.replace("@1", "")]["verdict"] == "pass"  # the first call, same Keras weights


def test_an_altered_returned_state_fails_naming_that_output(saved, capsys, tmp_path, monkeypatch):
    """The oracle's last returned state moved by 1e-3: only the rows of those states FAIL."""
    from reference.layers import rnn
    original = rnn.with_states

    def altered(output, output_mask, states, outputs=1):
        return original(output, output_mask, None if states is None else [*states[:-1], states[-1] + 1e-3], outputs)
    monkeypatch.setattr(rnn, "with_states", altered)
    rc, rows, out, _ = _verify(saved["cells", "float32"], "float32", capsys, tmp_path)
    assert rc == 1, out
    assert sorted(n for n, r in rows.items() if r["verdict"] == "FAIL") == ["lstm_states:2", "pair:3", "stacked:2"]


def test_a_time_step_mask_reaching_a_time_distributed_layer_that_reads_it_is_refused(tmp_path, capsys):
    """A (B, T) mask: Keras hands such an inner layer each step's (B,) column of it (time_distributed.py
    L115-125), which Keras's own LSTM cannot run: not modelled, refused (exit 2, one line)."""
    import keras
    L = keras.layers
    ids = keras.Input((4,), dtype="int32")
    steps = L.TimeDistributed(L.RepeatVector(5))(L.Embedding(9, 3, mask_zero=True)(ids))  # (B, 4, 5, 3), mask (B, 4)
    path = tmp_path / "td_masked.keras"
    keras.Model(ids, L.TimeDistributed(L.LSTM(2), name="td_lstm")(steps)).save(path)
    rc, out, err = run_bilstm(["verify", path], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert "'td_lstm': TimeDistributed passes each step's column of its mask to its inner LSTM: a (B,) vector" in err
