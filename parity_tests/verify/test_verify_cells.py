"""``bilstm verify`` on GRU and SimpleRNN models (alone, in Bidirectional, mixed with LSTM), on the backend in use.

Models are built here with random non-zero weights (biases included), saved as
``.keras`` and as Keras 3 ``.h5``, and verified through the command as a user
would. Between them the default models hold every merge mode but None, both GRU
forms (``reset_after``), every cell activation the oracle has (tanh, sigmoid,
hard_sigmoid, relu, linear), ``use_bias=False``, ``go_backwards``, sequences and
last steps, Masking and Embedding masks, stacking, and a Bidirectional whose two
copies are different cells. ``-m slow`` adds every merge mode of every cell form.

The command must also fail: an altered GRU weight in the oracle (exit 1) and three
broken oracle cells (GRU gates z and r swapped, GRU's reset applied in the other
form, SimpleRNN's activation ignored) each exit 1 naming the first layer that
uses them; merge_mode=None, a stateful layer and an activation the oracle lacks
exit 2 naming the layer.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from keras_impl.cli import main
from parity_tests.conftest import randomise_weights
from reference.rnn import Steps




def _models():
    import keras
    L = keras.layers

    def gru_tagger():  # Masking, Bidirectional GRU (concat), a reversed GRU of the other form, per-step head
        return keras.Sequential([
            keras.Input((8, 3)), L.Masking(0.0),
            L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="concat"),
            L.GRU(3, return_sequences=True, go_backwards=True, reset_after=False, name="reversed_gru"),
            L.TimeDistributed(L.Dense(2, activation="softmax"))])

    def rnn_classifier():  # Embedding mask_zero, Bidirectional SimpleRNN (sum, relu), a last-step SimpleRNN, no bias
        return keras.Sequential([
            keras.Input((7,), dtype="int32"), L.Embedding(12, 5, mask_zero=True),
            L.Bidirectional(L.SimpleRNN(4, activation="relu", return_sequences=True), merge_mode="sum",
                            name="bi_relu_rnn"),
            L.SimpleRNN(3, use_bias=False, name="last_rnn"), L.Dense(2, activation="softmax")])

    def mixed():  # two masked branches (mul of a GRU and a SimpleRNN; ave of two LSTMs), then a GRU's last step
        x = keras.Input((6, 2))
        m = L.Masking(0.0)(x)
        a = L.Bidirectional(
            L.GRU(3, activation="relu", recurrent_activation="hard_sigmoid", reset_after=False, return_sequences=True),
            backward_layer=L.SimpleRNN(3, activation="linear", go_backwards=True, return_sequences=True),
            merge_mode="mul", name="gru_and_rnn")(m)
        b = L.Bidirectional(L.LSTM(2, activation="linear", recurrent_activation="hard_sigmoid", use_bias=False,
                                   return_sequences=True), merge_mode="ave", name="odd_lstm")(m)
        h = L.GRU(2, recurrent_activation="sigmoid", activation="sigmoid", name="last_gru")(L.Concatenate()([a, b]))
        return keras.Model(x, L.Dense(1)(h))

    return {f.__name__: f for f in (gru_tagger, rnn_classifier, mixed)}


FORMATS = (".keras", ".h5")
# Keras 3's .h5 reader cannot rebuild a functional model whose layers pass masks (test below): the
# functional model is verified from its .keras file, the Sequential ones from both formats.
CASES = [("gru_tagger", ".keras"), ("gru_tagger", ".h5"), ("rnn_classifier", ".keras"), ("rnn_classifier", ".h5"),
         ("mixed", ".keras")]


def _slow_models():
    """Every merge mode but None for every cell form, over Masking, with a reversed plain layer stacked on."""
    import keras
    L = keras.layers
    forms = {"gru": lambda **k: L.GRU(3, **k), "gru_reset_before": lambda **k: L.GRU(3, reset_after=False, **k),
             "simple_rnn": lambda **k: L.SimpleRNN(3, **k)}
    out = {}
    for form, make in forms.items():
        for merge in ("concat", "sum", "ave", "mul"):
            for sequences in (True, False):
                def model(make=make, merge=merge, sequences=sequences):
                    layers = [keras.Input((7, 2)), L.Masking(0.0),
                              L.Bidirectional(make(return_sequences=True), merge_mode=merge),
                              L.Bidirectional(make(return_sequences=sequences), merge_mode=merge)]
                    if sequences:
                        layers.append(make(return_sequences=True, go_backwards=True))
                    return keras.Sequential(layers + [L.Dense(2)])
                out[f"{form}-{merge}-{'seq' if sequences else 'last'}"] = model
    return out


def _save_all(folder, makers, formats, rng):
    paths = {}
    for name, make in makers.items():
        model = randomise_weights(make(), rng)
        for suffix in formats:
            path = folder / f"{name}{suffix}"
            model.save(path)
            paths[name, suffix] = path
    return paths


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    return _save_all(tmp_path_factory.mktemp("verify_cells"), _models(), FORMATS, np.random.default_rng(90))


def _verify(capsys, *argv):
    rc = main(["verify", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _check_report(rc, out, err, report_path, backend):
    assert rc == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["backend"] == backend
    rows = report["layers"]
    assert rows and all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows)
    assert f"{len(rows)}/{len(rows)} layers within bounds" in out
    return rows


@pytest.mark.parametrize("kind, suffix", CASES, ids=[f"{k}-{s.lstrip('.')}" for k, s in CASES])
def test_cell_models_verify_within_bounds(saved, kind, suffix, capsys, tmp_path, backend):
    report_path = tmp_path / "report.json"
    rc, out, err = _verify(capsys, saved[kind, suffix], "--json", report_path, "--batch", 5, "--seed", 4)
    rows = _check_report(rc, out, err, report_path, backend)
    import keras
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = keras.saving.load_model(saved[kind, suffix], compile=False)
    expected = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert [r["layer"] for r in rows] == expected  # every layer has its row: nothing skipped
    cells = " ".join(r["class"] + " " + r["options"] for r in rows)
    assert "GRU" in cells or "SimpleRNN" in cells
    if kind == "mixed":
        by_name = {r["layer"]: r["options"] for r in rows}
        assert "GRU+SimpleRNN, merge=mul" in by_name["gru_and_rnn"]
        assert "recurrent_activation=hard_sigmoid" in by_name["odd_lstm"] and "no bias" in by_name["odd_lstm"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru-concat-seq", "gru-concat-last", "gru-sum-seq", "gru-sum-last", "gru-ave-seq",
                                  "gru-ave-last", "gru-mul-seq", "gru-mul-last"]
                         + [f"{f}-{m}-{s}" for f in ("gru_reset_before", "simple_rnn")
                            for m in ("concat", "sum", "ave", "mul") for s in ("seq", "last")])
def test_every_merge_mode_of_every_cell_form_verifies(name, capsys, tmp_path, backend):
    path = _save_all(tmp_path, {name: _slow_models()[name]}, (".keras",), np.random.default_rng(91))[name, ".keras"]
    report_path = tmp_path / "r.json"
    rc, out, err = _verify(capsys, path, "--json", report_path, "--batch", 6)
    _check_report(rc, out, err, report_path, backend)


def test_altered_gru_weight_fails(saved, capsys, monkeypatch):
    """The oracle's copy of one recurrent-kernel entry of the reversed GRU moved by 1e-3: that layer FAILs."""
    from keras_impl.verify import describe

    original = describe.describe_layer

    def altered(layer, name, inbound):
        described, shown = original(layer, name, inbound)
        if name == "reversed_gru":
            w = list(described.weights)
            w[1] = w[1].copy()
            w[1][0, -1] += 1e-3  # the candidate (h) block
            described = type(described)(described.name, described.kind, described.inbound, described.options, tuple(w))
        return described, shown

    monkeypatch.setattr(describe, "describe_layer", altered)
    rc, out, _ = _verify(capsys, saved["gru_tagger", ".keras"])
    assert rc == 1
    first_fail = next(line for line in out.splitlines() if line.rstrip().endswith("FAIL"))
    assert first_fail.startswith("reversed_gru")


def _gru_gates_swapped(recurrent, monkeypatch):
    step, grad = recurrent.STEPS["gru"]

    def swapped(cell, xp, states, R, b_rec):  # z and r read each other's columns
        U = states[0].shape[-1]
        order = np.r_[U:2 * U, 0:U, 2 * U:3 * U]
        return step(cell, xp[:, order], states, R[:, order], None if b_rec is None else b_rec[order])
    monkeypatch.setitem(recurrent.STEPS, "gru", Steps(swapped, grad))


def _gru_reset_other_form(recurrent, monkeypatch):
    step, grad = recurrent.STEPS["gru"]
    monkeypatch.setitem(recurrent.STEPS, "gru", Steps(lambda cell, *a: step(
        type(cell)("gru", cell.activation, cell.recurrent_activation, cell.use_bias, True), *a), grad))


def _simple_rnn_activation_ignored(recurrent, monkeypatch):
    step, grad = recurrent.STEPS["simple_rnn"]
    monkeypatch.setitem(recurrent.STEPS, "simple_rnn", Steps(lambda cell, *a: step(
        type(cell)("simple_rnn", use_bias=cell.use_bias), *a), grad))


@pytest.mark.parametrize("breakage, kind, failing", [
    (_gru_gates_swapped, "gru_tagger", "bidirectional"),
    (_gru_reset_other_form, "gru_tagger", "reversed_gru"),  # the first GRU with reset_after=False
    (_simple_rnn_activation_ignored, "rnn_classifier", "bi_relu_rnn"),  # relu computed as tanh
], ids=["gru_gates_swapped", "gru_reset_other_form", "simple_rnn_activation_ignored"])
def test_a_broken_oracle_cell_fails_naming_the_layer(breakage, kind, failing, saved, capsys, monkeypatch):
    from reference import recurrent
    breakage(recurrent, monkeypatch)
    rc, out, _ = _verify(capsys, saved[kind, ".keras"])
    assert rc == 1, out
    first_fail = next(line for line in out.splitlines() if line.rstrip().endswith("FAIL"))
    assert first_fail.startswith(failing)


@pytest.mark.parametrize("layer", ["gru_merge_none", "stateful_rnn", "gelu_gru", "return_state_gru"])
def test_what_the_oracle_cannot_model_is_refused_by_name(layer, tmp_path, capsys):
    import keras
    L = keras.layers
    inputs = keras.Input((4, 2), batch_size=3 if layer == "stateful_rnn" else None)
    out = {
        "gru_merge_none": lambda: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None, name="pair")(inputs),
        "stateful_rnn": lambda: L.SimpleRNN(3, stateful=True, name="carried")(inputs),
        "gelu_gru": lambda: L.GRU(3, activation="gelu", name="gelu_gru")(inputs),
        "return_state_gru": lambda: L.GRU(3, return_state=True, name="with_state")(inputs)[0],
    }[layer]()
    path = tmp_path / f"{layer}.keras"
    keras.Model(inputs, out).save(path)
    rc, stdout, err = _verify(capsys, path)
    assert rc == 2 and stdout == "" and err.count("\n") == 1, err
    expected = {"gru_merge_none": "'pair' of class Bidirectional", "stateful_rnn": "'carried' of class SimpleRNN",
                "gelu_gru": "activation='gelu'", "return_state_gru": "'with_state' of class GRU"}[layer]
    assert expected in err


def test_a_keras3_h5_functional_model_with_masks_is_refused_with_the_reason(saved, capsys):
    """Keras 3.15.1 writes such a file but cannot read it back ('Unknown layer: NotEqual'): one line says
    so and what to do, instead of calling Keras's mask op an unsupported layer."""
    rc, out, err = _verify(capsys, saved["mixed", ".h5"])
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "mask op of a Keras 3 functional model saved as .h5" in err and "save the model as .keras" in err
    import keras
    with pytest.raises(ValueError, match="Unknown layer: 'NotEqual'"):  # Keras's own loader, as the message says
        keras.saving.load_model(saved["mixed", ".h5"], compile=False)


def test_float64_gru_model_verifies(saved, capsys, tmp_path, backend):
    report_path = tmp_path / "r.json"
    rc, out, err = _verify(capsys, saved["gru_tagger", ".keras"], "--dtype", "float64", "--json", report_path)
    rows = _check_report(rc, out, err, report_path, backend)
    if backend == "tensorflow":  # float64 throughout: far below float32 rounding
        assert max(r["max_abs_error"] for r in rows) < 1e-12
