"""``bilstm verify`` on Bidirectional(RNN(cell)): an RNN of an LSTMCell, GRUCell or SimpleRNNCell, or of a
StackedRNNCells of them, inside a Bidirectional, in every merge mode, masked and not, with return_state, an
inner RNN of go_backwards=True (its backward_layer going forwards), and a backward_layer of another class.

Two models (a small one for the default suite), built here with random non-symmetric weights (``randomise_weights``) and a different size for every
dimension, saved as .keras once per dtype and verified through the command in float32 (the small model, by default)
and float64 (``slow``), on the backend in use. A planted fault (the oracle's copy of the last weight of a backward copy's last cell moved)
makes verify exit 1 naming that layer, the other layers still passing.
"""
from __future__ import annotations


import numpy as np
import pytest

from parity_tests.conftest import SLOW_ON_JAX
from parity_tests.verify.saved_models import saved_once, verify_rows

DTYPES = ["float32", "float64"]
NONE_ROWS = [f"bi_none{s}" for s in ("", ":1", ":2", ":3", ":4", ":5", ":6", ":7")]
ROWS = {"small": ["masking", "bi_sum", *NONE_ROWS],
        "full": ["masking", "bi_concat", "bi_sum", "bi_ave", "bi_ave:1", "bi_ave:2",
                 *(f"bi_mul{s}" for s in ("", ":1", ":2", ":3", ":4", ":5", ":6")), *NONE_ROWS, "bi_mixed",
                 "bi_unmasked"]}


def _pair(L):
    """An RNN(StackedRNNCells) of go_backwards=True whose backward_layer (other cells, no bias in its last one)
    goes forwards, merge_mode None, with return_state: two halves and six states."""
    return L.Bidirectional(
        L.RNN(L.StackedRNNCells([L.SimpleRNNCell(9), L.LSTMCell(10)]), go_backwards=True, return_state=True,
              return_sequences=True),
        backward_layer=L.RNN(L.StackedRNNCells([L.GRUCell(9), L.LSTMCell(10, use_bias=False)]),
                             return_state=True, return_sequences=True),
        merge_mode=None, name="bi_none")


def _small_model():
    """The default suite's: a masked (B=5, T=7, F=3) input through ``_pair`` and an RNN(GRUCell) summed."""
    import keras
    L = keras.layers
    x = keras.Input((7, 3), name="x")
    h = L.Masking(0.0, name="masking")(x)
    summed = L.Bidirectional(L.RNN(L.GRUCell(5, reset_after=False)), merge_mode="sum", name="bi_sum")(h)
    return keras.Model(x, [summed, *_pair(L)(h)])


def _model():
    """The slow suite's: masked (B=5, T=7, F=3) input through six Bidirectionals of RNNs (module docstring), and one unmasked."""
    import keras
    L = keras.layers
    x = keras.Input((7, 3), name="x")
    h = L.Masking(0.0, name="masking")(x)
    seq = {"return_sequences": True}
    concat = L.Bidirectional(L.RNN(L.LSTMCell(4), **seq), name="bi_concat")(h)
    summed = L.Bidirectional(L.RNN(L.GRUCell(5, reset_after=False)), merge_mode="sum", name="bi_sum")(h)
    ave = L.Bidirectional(L.RNN(L.SimpleRNNCell(6, activation="relu"), return_state=True, **seq),
                          merge_mode="ave", name="bi_ave")(h)
    mul = L.Bidirectional(L.RNN(L.StackedRNNCells([L.LSTMCell(8), L.GRUCell(2)]), return_state=True, **seq),
                          merge_mode="mul", name="bi_mul")(h)
    pair = _pair(L)(h)
    mixed = L.Bidirectional(L.RNN(L.LSTMCell(3)), backward_layer=L.LSTM(13, go_backwards=True),
                            name="bi_mixed")(h)
    unmasked = L.Bidirectional(L.RNN(L.StackedRNNCells([L.GRUCell(14), L.LSTMCell(15)]), **seq),
                               merge_mode="concat", name="bi_unmasked")(x)
    return keras.Model(x, [concat, summed, *ave, *mul, *pair, mixed, unmasked])


MODELS = {"small": _small_model, "full": _model}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``path(model, dtype)``: each model built and saved once per dtype, when a test first asks for it."""
    return saved_once(tmp_path_factory.mktemp("bidirectional_rnn"), lambda name: MODELS[name](), 17, "bi")


def _verify(path, dtype, capsys, tmp_path):
    """``(exit status, rows by layer output, stdout, stderr)``."""
    return verify_rows(capsys, tmp_path, path, dtype, "--batch", 5)


@SLOW_ON_JAX
@pytest.mark.parametrize("name, dtype", [
    ("small", "float32"),
    pytest.param("small", "float64", marks=pytest.mark.slow),
    *(pytest.param("full", dtype, marks=pytest.mark.slow) for dtype in DTYPES),
])
def test_every_bidirectional_of_an_rnn_verifies(name, dtype, saved, capsys, tmp_path):
    rc, rows, out, err = _verify(saved(name, dtype), dtype, capsys, tmp_path)
    assert rc == 0, out + err
    assert sorted(rows) == sorted(ROWS[name])  # every output its row, every state included
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows.values())
    assert rows["bi_none"]["options"].startswith(
        "RNN(StackedRNNCells(SimpleRNNCell(9), LSTMCell(10)))+RNN(StackedRNNCells(GRUCell(9), "
        "LSTMCell(10, no bias))), merge=None, units=9/10+9/10, go_backwards=1/0, sequences, return_state")
    valid = rows["masking"]["mask"].split("-> ")[1]
    assert valid != "-" and rows["bi_none:1"]["mask"] == f"{valid} -> {valid}"  # read, passed on (sequences)
    assert rows["bi_sum"]["mask"] == f"{valid} -> -" and rows["bi_none:2"]["mask"].endswith("-> -")  # states: none
    if name == "full":
        assert rows["bi_mixed"]["options"].startswith("RNN(LSTMCell(3))+LSTM, merge=concat, units=3+13")


@pytest.mark.slow
def test_an_altered_backward_cell_fails_naming_its_layer(saved, capsys, tmp_path, monkeypatch):
    """The oracle's last weight of bi_none (its backward copy's last cell's recurrent kernel) moved by 1e-3."""
    from keras_impl.verify import describe
    original = describe.describe_layer

    def altered(keras_layer, name, inbound):
        described, shown = original(keras_layer, name, inbound)
        if name == "bi_none":
            w = [None if a is None else np.array(a) for a in described.weights]
            w[-2].flat[0] += 1e-3  # the backward LSTMCell(10) has no bias: its recurrent kernel
            described = type(described)(described.name, described.kind, described.inbound, described.options,
                                        tuple(w))
        return described, shown
    monkeypatch.setattr(describe, "describe_layer", altered)
    rc, rows, out, _ = _verify(saved("small", "float32"), "float32", capsys, tmp_path)
    failing = sorted(n for n, r in rows.items() if r["verdict"] == "FAIL")
    assert rc == 1 and "FAIL: bi_none" in out, out
    assert failing == ["bi_none:1", "bi_none:6", "bi_none:7"]  # the backward half, that cell's h and c
