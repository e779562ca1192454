"""``bilstm verify`` on TimeDistributed of layers whose call takes a mask, when a mask reaches the wrapper: a
Masking over a (B, T, T2, F) input gives a (B, T, T2) mask, and Keras 3.15.1 hands the inner layer step t's
slice ``mask[:, t]`` (keras/src/layers/rnn/time_distributed.py L115-125), its own mask over T2.

One model (TimeDistributed of an LSTM, of a GRU returning sequences, then of a GlobalAveragePooling1D on those),
random non-symmetric weights, a different size for every dimension, verified through the command on the user's
inputs (``--inputs``: every (b, t) row with its own number of valid inner steps, none and all included) in
float32 (float64: ``slow``). A planted fault (the oracle's inner LSTM run without the step's mask) fails
naming its wrapper.
"""
from __future__ import annotations


import numpy as np
import pytest

from parity_tests.verify.saved_models import saved_once, verify_rows

B, T, T2, F = 5, 4, 6, 2
ROWS = ["masking", "td_lstm", "td_gru", "td_pool"]


def _model():
    import keras
    L = keras.layers
    x = keras.Input((T, T2, F), name="x")
    h = L.Masking(0.0, name="masking")(x)
    last = L.TimeDistributed(L.LSTM(3, name="inner_lstm"), name="td_lstm")(h)
    sequences = L.TimeDistributed(L.GRU(7, return_sequences=True, name="inner_gru"), name="td_gru")(h)
    pooled = L.TimeDistributed(L.GlobalAveragePooling1D(name="inner_pool"), name="td_pool")(sequences)
    return keras.Model(x, [last, pooled])


def _inputs(path):
    """(B, T, T2, F) normal draws, each (b, t) row zeroed after its own length in 0..T2 (0 and T2 both occur)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(B, T, T2, F))
    lengths = rng.integers(0, T2 + 1, size=(B, T))
    lengths[0, 0], lengths[1, 2] = 0, T2
    x[np.arange(T2)[None, None, :] >= lengths[..., None]] = 0.0
    np.save(path, x.astype(np.float32))
    return lengths


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``path(dtype)`` of the saved model, and the inputs' file."""
    folder = tmp_path_factory.mktemp("td_masks")
    _inputs(folder / "x.npy")
    path = saved_once(folder, _model, 5, "td")
    path.inputs = folder / "x.npy"
    return path


def _verify(saved, dtype, capsys, tmp_path):
    return verify_rows(capsys, tmp_path, saved(dtype), dtype, "--inputs", saved.inputs)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_time_distributed_hands_each_step_its_mask(dtype, saved, capsys, tmp_path):
    rc, rows, out, err = _verify(saved, dtype, capsys, tmp_path)
    assert rc == 0, out + err
    assert sorted(rows) == sorted(ROWS)
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows.values())
    valid = rows["masking"]["mask"].split("-> ")[1]
    assert valid.endswith(f"/{B * T * T2} valid") and rows["td_lstm"]["mask"] == f"{valid} -> {valid}"


@pytest.mark.slow  # not a new kind: the default suite keeps the verdict test only
def test_the_inner_layer_run_without_the_step_mask_fails_naming_its_wrapper(saved, capsys, tmp_path, monkeypatch):
    from reference.layers import graph
    original = graph.layer_forward

    def unmasked(layer, inputs, masks, tape=None):
        return original(layer, inputs, [None] * len(masks) if layer.name == "td_lstm/inner_lstm" else masks, tape)
    monkeypatch.setattr(graph, "layer_forward", unmasked)
    rc, rows, out, _ = _verify(saved, "float32", capsys, tmp_path)
    assert rc == 1 and "FAIL: td_lstm" in out, out
    assert [n for n, r in rows.items() if r["verdict"] == "FAIL"] == ["td_lstm"]
