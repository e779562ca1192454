"""``bilstm verify`` on models with attention layers, saved as .keras, float32 and float64, on the backend in use.

Three models, every dimension a different size, weights drawn by the project's recipe (scales, kernels and
biases random and non-symmetric):

- ``bilstm_attention``: a BiLSTM over a padded batch (Embedding mask_zero) with self-attention (Attention dot,
  use_scale, causal), a concat-score Attention with its own key, an AdditiveAttention, pooled (masked mean
  and max) into a Dense head;
- ``bilstm_mha``: a BiLSTM over a padded batch with MultiHeadAttention (a key of its own size and mask,
  output_shape), then a second one (causal, sliding window, gate, no bias, value_dim != key_dim with dropout),
  pooled into a Dense head;
- ``mha_inputs``: MultiHeadAttention over two attention axes with an attention_mask input, and one with a
  value of another length and its own attention_mask.

Key sizes are 4 and 16: Keras on TensorFlow in float64 scales the queries by 1/sqrt(key_dim) rounded to float32
(docs/keras-behaviour.md), exact for these sizes only, so that the float64 runs are held to the float64 bound.

The command must also fail: an altered oracle weight and a dropped mask exit 1 naming the layer; a hand-made
mask and an input another layer reads exit 2 naming the layer (return_attention_scores: test_attention_scores.py).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights, run_bilstm


def _models():
    import keras
    L = keras.layers

    def bilstm_attention():
        ids = keras.Input((9,), dtype="int32", name="ids")
        h = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm")(L.Embedding(13, 6, mask_zero=True)(ids))
        a = L.Attention(use_scale=True, name="self_attention")([h, h], use_causal_mask=True)
        key = L.Dense(10, name="key_proj")(h)
        c = L.Attention(score_mode="concat", use_scale=True, dropout=0.3, name="concat_attention")([a, h, key])
        d = L.AdditiveAttention(name="additive_attention")([c, h])
        pooled = L.Concatenate()([L.GlobalAveragePooling1D()(d), L.GlobalMaxPooling1D()(a)])
        return keras.Model(ids, L.Dense(3, activation="softmax", name="head")(pooled))

    def bilstm_mha():
        ids = keras.Input((8,), dtype="int32", name="ids")
        e = L.Embedding(17, 7, mask_zero=True)(ids)
        h = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bilstm")(e)
        key = L.Dense(5, name="key_proj")(e)
        m = L.MultiHeadAttention(2, 4, output_shape=9, name="mha")(h, h, key=key)
        m = L.MultiHeadAttention(3, 16, value_dim=10, dropout=0.2, use_bias=False, use_gate=True, sliding_window=3,
                                 name="mha_causal")(m, m, use_causal_mask=True)
        return keras.Model(ids, L.Dense(2, name="head")(L.GlobalAveragePooling1D()(m)))

    def mha_inputs():
        x = keras.Input((5, 6, 3), name="grid")
        grid_mask = keras.Input((5, 6, 5, 6), dtype="bool", name="grid_mask")
        q, v = keras.Input((6, 5), name="query"), keras.Input((7, 2), name="value")
        allowed = keras.Input((6, 7), dtype="bool", name="allowed")
        g = L.MultiHeadAttention(2, 4, attention_axes=(1, 2), output_shape=(7, 8), name="mha_axes")(
            x, x, attention_mask=grid_mask)
        m = L.MultiHeadAttention(3, 4, name="mha_given_mask")(q, v, attention_mask=allowed)
        return keras.Model([x, grid_mask, q, v, allowed], [g, L.GlobalMaxPooling1D()(m)])

    return {f.__name__: f for f in (bilstm_attention, bilstm_mha, mha_inputs)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    folder, paths = tmp_path_factory.mktemp("attention_models"), {}
    rng = np.random.default_rng(17)
    with warnings.catch_warnings():  # GlobalMaxPooling1D drops a mask: Keras warns, verify models it
        warnings.filterwarnings("ignore", message=".*does not support masking.*")
        for name, make in _models().items():
            path = folder / f"{name}.keras"
            randomise_weights(make(), rng).save(path)
            paths[name] = path
    return paths


def _rows(capsys, tmp_path, path, *argv):
    report = tmp_path / "report.json"
    rc, out, err = run_bilstm(["verify", path, "--json", report, *argv], capsys)
    assert rc == 0, out + err
    return json.loads(report.read_text())["layers"], out


# The worst error per layer kind in the last runs, printed by -s for the report (``-k worst -s``).
ATTENTION_KINDS = ("Attention", "AdditiveAttention", "MultiHeadAttention")


# float64 of every model in the full run (-m slow); the default run covers float64 on the MultiHeadAttention one.
CASES = [("bilstm_attention", "float32"), ("bilstm_mha", "float32"), ("mha_inputs", "float32"),
         ("bilstm_mha", "float64"), pytest.param("bilstm_attention", "float64", marks=pytest.mark.slow),
         pytest.param("mha_inputs", "float64", marks=pytest.mark.slow)]


# as_float64_model rebuilds the model from its config, where Keras warns again of GlobalMaxPooling1D's dropped mask
@pytest.mark.filterwarnings("ignore:.*does not support masking.*:UserWarning")
@pytest.mark.parametrize("name, dtype", CASES)
def test_attention_models_verify(name, dtype, saved, capsys, tmp_path, backend):
    rows, out = _rows(capsys, tmp_path, saved[name], "--batch", 5, "--seed", 4, "--dtype", dtype)
    assert all(r["verdict"] == "pass" for r in rows) and "layers within bounds" in out, out
    kinds = {r["class"] for r in rows}
    assert kinds & set(ATTENTION_KINDS)
    worst = {k: max(r["max_abs_error"] for r in rows if r["class"] == k) for k in ATTENTION_KINDS if k in kinds}
    print(f"\nworst {backend} {dtype} {name}: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    if name != "mha_inputs":  # the padded batch: some steps masked, and the attention layers pass the mask on
        masks = {r["layer"]: r["mask"] for r in rows}
        first = "self_attention" if name == "bilstm_attention" else "mha"
        valid, total = map(int, masks[first].split("-> ")[1].split()[0].split("/"))
        assert 0 < valid < total
    if dtype == "float64" and backend == "tensorflow":
        assert max(r["max_abs_error"] for r in rows) < 1e-12


def test_options_shown(saved, capsys, tmp_path):
    rows, _ = _rows(capsys, tmp_path, saved["bilstm_mha"], "--batch", 3)
    shown = {r["layer"]: r["options"] for r in rows}
    assert "key given" in shown["mha"] and "output_shape=(9,)" in shown["mha"]
    for option in ("use_causal_mask", "use_gate", "no bias", "sliding_window=3", "value_dim=10"):
        assert option in shown["mha_causal"]


def _altered_weight(layer_name, index):
    def alter(described):
        if described.name != layer_name:
            return described
        w = [np.array(a) for a in described.weights]
        w[index].flat[0] += 1e-2
        return type(described)(described.name, described.kind, described.inbound, described.options, tuple(w))
    return alter


def _mask_dropped(kind):
    def patch(monkeypatch):
        from reference.layers import registry
        original = registry.FORWARD[kind]
        # computed without the masks, the query's mask passed on as before (so only this layer's output is wrong)
        monkeypatch.setitem(registry.FORWARD, kind, lambda layer, inputs, masks, tape=None: (
            original(layer, inputs, [None] * len(masks))[0], masks[0]))
    return patch


@pytest.mark.parametrize("model, failing, alter, breakage", [
    ("bilstm_attention", "self_attention", _altered_weight("self_attention", 0), None),  # the scale
    ("bilstm_mha", "mha", _altered_weight("mha", 4), None),  # the value kernel
    ("bilstm_attention", "self_attention", None, _mask_dropped("Attention")),
    ("bilstm_mha", "mha", None, _mask_dropped("MultiHeadAttention")),
], ids=["attention_scale", "mha_value_kernel", "attention_mask_dropped", "mha_mask_dropped"])
def test_a_fault_fails_naming_the_layer(model, failing, alter, breakage, saved, capsys, monkeypatch):
    from keras_impl.verify import describe
    if alter is not None:
        original = describe.describe_layer
        monkeypatch.setattr(describe, "describe_layer", lambda *a: (lambda d, s: (alter(d), s))(*original(*a)))
    if breakage is not None:
        breakage(monkeypatch)
    rc, out, _ = run_bilstm(["verify", saved[model]], capsys)
    assert rc == 1, out
    first = next(line for line in out.splitlines() if line.rstrip().endswith("FAIL"))
    assert first.startswith(failing)


def _refused(case):
    import keras
    L = keras.layers
    ids = keras.Input((6,), dtype="int32")
    h = L.Embedding(9, 4, mask_zero=True)(ids)
    if case == "hand_made_mask":
        out = L.Attention(name="own_mask")([h, h], mask=[None, keras.ops.not_equal(ids, 3)])
    elif case == "hand_made_value_mask":
        out = L.MultiHeadAttention(2, 3, name="own_mask")(h, h, value_mask=keras.ops.not_equal(ids, 3))
    else:  # "shared": the Embedding's output read by the MultiHeadAttention and by a Dense
        out = L.Concatenate()([L.MultiHeadAttention(2, 3, name="shared_input")(h, h), L.Dense(2)(h)])
    return keras.Model(ids, out)


@pytest.mark.parametrize("case, message", [
    ("hand_made_mask", "'own_mask' is given a mask"),
    ("hand_made_value_mask", "'own_mask' is given a mask"),
    ("shared", "'shared_input' of class MultiHeadAttention is not supported (it reads the masked output"),
])
def test_what_the_oracle_cannot_model_is_refused_by_name(case, message, tmp_path, capsys):
    path = tmp_path / f"{case}.keras"
    _refused(case).save(path)
    rc, out, err = run_bilstm(["verify", path], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert message in err


def test_the_memory_estimate_reads_attention_configs(saved):
    """budget.py counts the attention layers' weights from their config (MultiHeadAttention's projections) and
    their outputs' shapes; a claimed key_dim of 10**9 is refused before anything is built."""
    from keras_impl.verify.budget import check_memory, estimate
    from keras_impl.verify.errors import VerifyRefusal
    from keras_impl.verify.load import read_config
    config = read_config(saved["bilstm_mha"])
    needs = {n.name: n for n in estimate(config, batch=2, timesteps=8)}
    # mha: query (6+1)*2*4 + key (5+1)*2*4 + value (6+1)*2*4, output (2*4 + 1)*9
    assert needs["mha"].weights == 7 * 8 + 6 * 8 + 7 * 8 + 9 * 9 and needs["mha"].outputs == 2 * 8 * 9
    # mha_causal (biases counted though it has none): q, k (9+1)*3*16, v, gate (9+1)*3*10, output (30+1)*9
    assert needs["mha_causal"].weights == 480 + 480 + 300 + 300 + 31 * 9
    for entry in config["config"]["layers"]:
        if entry["class_name"] == "MultiHeadAttention":
            entry["config"]["key_dim"] = 10 ** 9
    with pytest.raises(VerifyRefusal, match="MultiHeadAttention"):
        check_memory(config, available=10 ** 9)


def test_value_dim_other_than_key_dim_without_dropout(tmp_path, capsys, backend):
    """Keras 3.15.1 on JAX cannot run it (jax.nn.dot_product_attention wants equal head sizes): refused there,
    by name, before Keras fails; verified on the other backends."""
    import keras
    x, v = keras.Input((5, 6)), keras.Input((4, 3))
    model = keras.Model([x, v], keras.layers.MultiHeadAttention(2, 4, value_dim=7, name="wide_values")(x, v))
    path = tmp_path / "wide.keras"
    randomise_weights(model, np.random.default_rng(5)).save(path)
    rc, out, err = run_bilstm(["verify", path], capsys)
    if backend == "jax":
        assert rc == 2 and out == "" and err.count("\n") == 1, err
        assert "'wide_values' of class MultiHeadAttention is not supported (value_dim=7 != key_dim=4" in err
    else:
        assert rc == 0 and "1/1 layers within bounds" in out, out + err
