"""``bilstm verify`` on a mask passed into a nested model: an Embedding's mask into a nested Sequential, a
Masking's into a nested functional model of two outputs, and the layers after each reading the mask that
comes back out.

Keras 3.15.1 sets the call's mask on the nested model's inputs (keras/src/models/functional.py L177-183;
Sequential.call hands it on, sequential.py L237-241) and its first layers take it from there
(keras/src/layers/layer.py L947-959): the oracle's flattened graph propagates it the same way. One model,
random non-symmetric weights, a different size for every dimension, verified through the command in float32
(float64: ``slow``); a planted fault (the oracle's nested LSTM run without its mask) fails naming that layer.
"""
from __future__ import annotations


import pytest

from parity_tests.conftest import SLOW_ON_JAX
from parity_tests.verify.saved_models import saved_once, verify_rows

ROWS = ["emb", "masking", "inner_seq/inner_lstm", "inner_seq/inner_head", "sub/sub_gru", "sub/sub_pool",
        "outer_lstm", "after_sub"]


def _model():
    """ids (B=5, T=6) -> Embedding(mask_zero) -> nested Sequential(LSTM, Dense) -> LSTM; x (B, T, F=3) ->
    Masking -> nested functional(GRU -> [its sequence, GlobalAveragePooling1D]) -> SimpleRNN on the sequence."""
    import keras
    L = keras.layers
    ids = keras.Input((6,), dtype="int32", name="ids")
    e = L.Embedding(11, 4, mask_zero=True, name="emb")(ids)
    inner_seq = keras.Sequential([keras.Input((6, 4)), L.LSTM(5, return_sequences=True, name="inner_lstm"),
                                  L.Dense(2, name="inner_head")], name="inner_seq")
    read = L.LSTM(3, name="outer_lstm")(inner_seq(e))
    x = keras.Input((6, 3), name="x")
    h = L.Masking(0.0, name="masking")(x)
    i = keras.Input((6, 3))
    g = L.GRU(7, return_sequences=True, name="sub_gru")(i)
    sequence, pooled = keras.Model(i, [g, L.GlobalAveragePooling1D(name="sub_pool")(g)], name="sub")(h)
    return keras.Model([ids, x], [read, L.SimpleRNN(9, name="after_sub")(sequence), pooled])


def _model_warned():
    with pytest.warns(UserWarning, match="does not support masking"):  # Keras's, while building
        return _model()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``path(dtype)``: the model built and saved once per dtype, when a test first asks for it."""
    return saved_once(tmp_path_factory.mktemp("nested_masks"), _model_warned, 3, "nested")


def _verify(path, dtype, capsys, tmp_path):
    return verify_rows(capsys, tmp_path, path, dtype, "--batch", 5)


@SLOW_ON_JAX
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_a_mask_passed_into_a_nested_model_verifies(dtype, saved, capsys, tmp_path):
    rc, rows, out, err = _verify(saved(dtype), dtype, capsys, tmp_path)
    assert rc == 0, out + err
    assert sorted(rows) == sorted(ROWS)
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows.values())
    for source, first, after in (("emb", "inner_seq/inner_lstm", "outer_lstm"), ("masking", "sub/sub_gru",
                                                                                  "after_sub")):
        valid = rows[source]["mask"].split("-> ")[1]
        assert valid != "-" and not valid.startswith("30/")  # some steps masked
        assert rows[first]["mask"] == f"{valid} -> {valid}"  # the call's mask reaches the nested first layer
        assert rows[after]["mask"] == f"{valid} -> -"  # and comes back out to the layer after the nested model


@pytest.mark.slow  # not a new kind: the default suite keeps the verdict test only
def test_the_nested_layer_run_without_its_mask_fails_naming_it(saved, capsys, tmp_path, monkeypatch):
    from reference.layers import graph
    original = graph.layer_forward

    def unmasked(layer, inputs, masks, tape=None):
        return original(layer, inputs, [None] * len(masks) if layer.name == "inner_seq/inner_lstm" else masks, tape)
    monkeypatch.setattr(graph, "layer_forward", unmasked)
    rc, rows, out, _ = _verify(saved("float32"), "float32", capsys, tmp_path)
    assert rc == 1 and "FAIL: inner_seq/inner_lstm" in out, out
    assert next(n for n, r in rows.items() if r["verdict"] == "FAIL") == "inner_seq/inner_lstm"
