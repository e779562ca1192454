"""``bilstm verify`` on ``return_attention_scores=True``: Attention, AdditiveAttention and MultiHeadAttention
each give their scores as a second output, verified as its own row (``att:1``): without a mask (Attention,
AdditiveAttention), or with the attention mask MultiHeadAttention's Softmax layer leaves on them.

One model, masked query (Tq=5) and value (Tv=7), random non-symmetric weights, a different size for every
dimension, verified through the command in float32 (float64: ``slow``). A planted fault (the oracle's
MultiHeadAttention scores moved by 1e-3) fails that row alone.
"""
from __future__ import annotations


import pytest

from parity_tests.conftest import SLOW_ON_JAX
from parity_tests.verify.saved_models import saved_once, verify_rows

ROWS = ["q_masking", "v_masking", "q_masking_mha", "q_rnn", "v_masking_mha", "att", "att:1", "add_att", "add_att:1",
        "mha", "mha:1"]


def _model():
    import keras
    L = keras.layers
    q_in, v_in = keras.Input((5, 3), name="q"), keras.Input((7, 3), name="v")
    q, v = L.Masking(0.0, name="q_masking")(q_in), L.Masking(0.0, name="v_masking")(v_in)
    att = L.Attention(use_scale=True, score_mode="concat", name="att")([q, v], return_attention_scores=True)
    add = L.AdditiveAttention(name="add_att")([q, v, v], use_causal_mask=True, return_attention_scores=True)
    # MultiHeadAttention deletes its inputs' masks: its own inputs (verify refuses shared masked inputs), the
    # query through a SimpleRNN (a layer given its mask explicitly, so a deleted mask is not a missing one)
    q2 = L.SimpleRNN(8, return_sequences=True, name="q_rnn")(L.Masking(0.0, name="q_masking_mha")(q_in))
    v2 = L.Masking(0.0, name="v_masking_mha")(v_in)
    # key_dim 4: Keras on TensorFlow in float64 scales by 1/sqrt(key_dim) rounded to float32, exact for 4 only
    mha = L.MultiHeadAttention(2, 4, value_dim=6, name="mha")(q2, v2, return_attention_scores=True)
    return keras.Model([q_in, v_in], [*att, *add, *mha])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return saved_once(tmp_path_factory.mktemp("attention_scores"), _model, 23, "scores")


def _verify(path, dtype, capsys, tmp_path):
    return verify_rows(capsys, tmp_path, path, dtype, "--batch", 9)


@SLOW_ON_JAX
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_attention_scores_verify(dtype, saved, capsys, tmp_path):
    rc, rows, out, err = _verify(saved(dtype), dtype, capsys, tmp_path)
    assert rc == 0, out + err
    assert sorted(rows) == sorted(ROWS)
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows.values())
    q_valid = rows["q_masking"]["mask"].split("-> ")[1]
    assert q_valid != "-" and rows["att"]["mask"].endswith(f"-> {q_valid}")  # the output: the query's mask
    assert all(rows[name]["mask"].endswith("-> -") for name in ("att:1", "add_att:1"))  # their scores: none
    assert rows["mha:1"]["mask"].endswith(f"/{9 * 5 * 7} valid")  # the Softmax's (B, 1, Tq, Tv) mask
    assert "return_attention_scores" in rows["mha"]["options"]


@SLOW_ON_JAX
def test_mha_scores_of_the_wrong_path_fail_that_row(saved, capsys, tmp_path, monkeypatch):
    from reference.layers import attention
    original = attention.multi_head_attention

    def fused(layer, inputs, masks, tape=None):
        result = original(layer, inputs, masks, tape)
        (y, m), (probs, probs_mask) = result
        return attention.Outputs([(y, m), (probs + 1e-3, probs_mask)])
    monkeypatch.setattr(attention, "multi_head_attention", fused)
    monkeypatch.setitem(attention.FORWARD, "MultiHeadAttention", fused)
    from reference.layers import registry
    monkeypatch.setitem(registry.FORWARD, "MultiHeadAttention", fused)
    rc, rows, out, _ = _verify(saved("float32"), "float32", capsys, tmp_path)
    assert rc == 1 and "FAIL: mha:1" in out, out
    assert [n for n, r in rows.items() if r["verdict"] == "FAIL"] == ["mha:1"]
