"""``bilstm verify`` on models of each kind and cell people train, saved as .keras and .h5, on the backend in use.

Models are tiny (a different size for every dimension) and built once per module,
with every weight (biases included) drawn by the project's one recipe
(``parity_tests.conftest.randomise_weights``), so a dropped bias or a swapped
direction would show. Each is saved, then verified through the command
(``keras_impl.cli.main``), as a user would. Between them the LSTM models (text
classifier, tagger, regressor, branches, pooled, the tutorial's) and the GRU,
SimpleRNN and mixed ones hold every merge mode but None, both GRU forms
(``reset_after``), every cell activation the oracle has (tanh, sigmoid,
hard_sigmoid, relu, linear), ``use_bias=False``, ``go_backwards``, sequences and
last steps, Masking and Embedding masks, stacking, and a Bidirectional whose two
copies are different cells. ``-m slow`` adds every merge mode of every GRU and
SimpleRNN form.

The command must also fail, with the cell as a parameter wherever the check is the
same: an altered oracle weight and a broken oracle (merge, mask, direction or
cell) exit 1 naming the first layer that uses it; a layer, option or mask the
oracle cannot model, and a registered LSTM subclass, exit 2 with one line naming
the layer; bad arguments exit 2 before Keras is imported.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from keras_impl.cli import main
from parity_tests.conftest import bilstm_in_one_fresh_process, randomise_weights
from reference.rnn import Steps


def _models():
    import keras

    from keras_impl import build_model
    from reference import ModelSpec
    L = keras.layers

    def classifier():
        x = keras.Input((7,), dtype="int32", name="ids")
        h = L.Embedding(11, 5, mask_zero=True)(x)
        h = L.Bidirectional(L.LSTM(4, return_sequences=True))(h)
        h = L.GlobalAveragePooling1D()(h)
        return keras.Model(x, L.Dense(3, activation="softmax")(h))

    def tagger():
        return keras.Sequential([keras.Input((6,), dtype="int32"), L.Embedding(13, 4, mask_zero=True),
                                 L.Bidirectional(L.LSTM(3, return_sequences=True)),
                                 L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="ave"),
                                 L.TimeDistributed(L.Dense(5, activation="softmax"))])

    def regressor():
        return keras.Sequential([keras.Input((9, 2)), L.Masking(0.0), L.Bidirectional(L.LSTM(3), merge_mode="sum"),
                                 L.Dropout(0.2), L.Dense(1)])

    def branches():
        x = keras.Input((5, 3))
        m = L.Masking()(x)
        a = L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="mul")(m)
        b = L.Bidirectional(L.LSTM(3, return_sequences=True),
                            backward_layer=L.LSTM(3, return_sequences=True, go_backwards=True, name="own_backward"))(m)
        # Plain LSTMs returning sequences. Reversed: the padded steps come first in its processing order (the
        # output there is h0 = 0 on JAX, 0 on TensorFlow and torch); it hands its outputs on in processing
        # order with the mask unflipped, as Keras does. Forward: after a row's last valid step it repeats
        # the previous output (no zero_output_for_mask outside Bidirectional).
        c = L.LSTM(2, return_sequences=True, go_backwards=True, name="reversed_lstm")(L.Concatenate()([a, b]))
        c = L.LSTM(3, return_sequences=True, name="forward_lstm")(c)
        return keras.Model(x, L.TimeDistributed(L.Dense(1, activation="sigmoid"))(c))

    def pooled():  # the remaining layers: SpatialDropout1D, Activation, GlobalMaxPooling1D, Flatten, a plain LSTM
        x = keras.Input((4, 3))
        h = L.Masking(0.0)(x)
        h = L.Bidirectional(L.LSTM(3, return_sequences=True, go_backwards=True), merge_mode="concat",  # reversed roles
                            backward_layer=L.LSTM(3, return_sequences=True))(h)
        h = L.Activation("relu")(L.SpatialDropout1D(0.3)(h))
        r = L.LSTM(2, return_sequences=False, go_backwards=True)(h)
        p = L.GlobalMaxPooling1D()(h)
        f = L.Flatten()(L.Dense(2, activation="tanh")(h))
        return keras.Model(x, L.Dense(2, activation="linear")(L.Concatenate()([L.Concatenate()([p, f]), r])))

    def tutorial():
        return build_model(ModelSpec())

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

    return {f.__name__: f for f in (classifier, tagger, regressor, branches, pooled, tutorial,
                                     gru_tagger, rnn_classifier, mixed)}


# (model, file format, the recurrent cells its report must show). Keras 3's .h5 reader cannot rebuild a
# functional model whose layers pass masks (test below): functional models are verified from their .keras
# file, Sequential ones from both formats.
CASES = [("classifier", ".keras", {"LSTM"}), ("tagger", ".keras", {"LSTM"}), ("tagger", ".h5", {"LSTM"}),
         ("regressor", ".keras", {"LSTM"}), ("branches", ".keras", {"LSTM"}), ("pooled", ".keras", {"LSTM"}),
         ("tutorial", ".keras", {"LSTM"}),
         ("gru_tagger", ".keras", {"GRU"}), ("gru_tagger", ".h5", {"GRU"}),
         ("rnn_classifier", ".keras", {"SimpleRNN"}), ("rnn_classifier", ".h5", {"SimpleRNN"}),
         ("mixed", ".keras", {"GRU", "SimpleRNN", "LSTM"})]
# Options the report must show for some layers: a Bidirectional of two different cells, LSTM's other options.
SHOWN_OPTIONS = {"mixed": [("gru_and_rnn", "GRU+SimpleRNN, merge=mul"),
                           ("odd_lstm", "recurrent_activation=hard_sigmoid"), ("odd_lstm", "no bias")]}
H5_TOO = {"tagger", "gru_tagger", "rnn_classifier", "mixed"}  # mixed: its .h5 file for the refusal below


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


def _save_all(folder, makers, rng, h5_too=()):
    """``{(name, suffix): path}``: each model built once, its weights drawn, saved as .keras (and .h5 if named)."""
    paths = {}
    with warnings.catch_warnings():  # GlobalMaxPooling1D / Flatten drop a mask: Keras warns, verify models it
        warnings.filterwarnings("ignore", message=".*does not support masking.*")
        for name, make in makers.items():
            model = randomise_weights(make(), rng)
            for suffix in (".keras", ".h5") if name in h5_too else (".keras",):
                path = folder / f"{name}{suffix}"
                model.save(path)
                paths[name, suffix] = path
    return paths


# The weights docs/verify.md's figures were measured on: the LSTM models drawn in turn from one seed, the
# GRU, SimpleRNN and mixed ones from another.
WEIGHT_SEEDS = {10: ("classifier", "tagger", "regressor", "branches", "pooled", "tutorial"),
                90: ("gru_tagger", "rnn_classifier", "mixed")}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    folder, makers = tmp_path_factory.mktemp("verify_models"), _models()
    assert sorted(makers) == sorted(name for names in WEIGHT_SEEDS.values() for name in names)
    paths = {}
    for seed, names in WEIGHT_SEEDS.items():
        paths |= _save_all(folder, {name: makers[name] for name in names}, np.random.default_rng(seed), H5_TOO)
    return paths


def _verify(capsys, *argv):
    rc = main(["verify", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _check_report(rc, out, err, report_path, backend):
    """The rows of a run that passed: every layer within its bound, the table's summary saying so."""
    assert rc == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["backend"] == backend
    rows = report["layers"]
    assert rows and all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows)
    assert f"{len(rows)}/{len(rows)} layers within bounds" in out
    return report, rows


def _first_failing_row(out):
    return next(line for line in out.splitlines() if line.rstrip().endswith("FAIL"))


@pytest.mark.parametrize("kind, suffix, cells", CASES, ids=[f"{k}-{s.lstrip('.')}" for k, s, _ in CASES])
def test_models_verify_within_bounds(saved, kind, suffix, cells, capsys, tmp_path, backend):
    import keras
    path = saved[kind, suffix]
    before = path.read_bytes()
    report_path = tmp_path / "report.json"
    rc, out, err = _verify(capsys, path, "--json", report_path, "--batch", 5, "--seed", 3)
    report, rows = _check_report(rc, out, err, report_path, backend)
    assert report["seed"] == 3 and report["versions"]["keras"]
    assert f"({suffix})" in out  # the format the file was read as
    assert path.read_bytes() == before  # the user's file is only read
    with warnings.catch_warnings():  # mask and legacy-format warnings of Keras's own loader
        warnings.simplefilter("ignore", UserWarning)
        model = keras.saving.load_model(path, compile=False)
    expected = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert [r["layer"] for r in rows] == expected  # every layer has its row: nothing skipped silently
    shown = " ".join(r["class"] + " " + r["options"] for r in rows)
    assert all(cell in shown for cell in cells), shown
    options = {r["layer"]: r["options"] for r in rows}
    for layer, option in SHOWN_OPTIONS.get(kind, []):
        assert option in options[layer]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru-concat-seq", "gru-concat-last", "gru-sum-seq", "gru-sum-last", "gru-ave-seq",
                                  "gru-ave-last", "gru-mul-seq", "gru-mul-last"]
                         + [f"{f}-{m}-{s}" for f in ("gru_reset_before", "simple_rnn")
                            for m in ("concat", "sum", "ave", "mul") for s in ("seq", "last")])
def test_every_merge_mode_of_every_cell_form_verifies(name, capsys, tmp_path, backend):
    path = _save_all(tmp_path, {name: _slow_models()[name]}, np.random.default_rng(91))[name, ".keras"]
    report_path = tmp_path / "r.json"
    rc, out, err = _verify(capsys, path, "--json", report_path, "--batch", 6)
    _check_report(rc, out, err, report_path, backend)


def test_json_dash_prints_the_report_as_json_instead_of_the_table(saved, capsys, tmp_path, backend):
    """--json - as in every command: the JSON report on standard output, the header on standard error."""
    rc, out, err = _verify(capsys, saved["classifier", ".keras"], "--json", "-", "--batch", 3)
    report = json.loads(out)  # nothing but the JSON
    assert rc == 0 and report["verdict"] == "pass" and report["backend"] == backend, err
    assert err.splitlines()[0].startswith(f"bilstm verify: on {backend} ("), err
    rc, table, _ = _verify(capsys, saved["classifier", ".keras"], "--json", tmp_path / "r.json", "--batch", 3)
    assert rc == 0 and json.loads((tmp_path / "r.json").read_text())["layers"] == report["layers"]
    assert "layers within bounds" in table


def test_masked_inputs_are_drawn_with_padding(saved, capsys, tmp_path):
    report_path = tmp_path / "r.json"
    assert _verify(capsys, saved["classifier", ".keras"], "--json", report_path, "--batch", 6)[0] == 0
    report = json.loads(report_path.read_text())
    assert "trailing 0 padding" in report["inputs"][0]["drawn"]
    first = report["layers"][0]  # the Embedding: a mask out, some steps masked
    valid, total = map(int, first["mask"].split("-> ")[1].split()[0].split("/"))
    assert 0 < valid < total


@pytest.mark.parametrize("kind, layer, weight, entry", [
    ("tutorial", "recurrent_0", 3, (0, 0)),  # the Bidirectional LSTM's backward kernel
    ("gru_tagger", "reversed_gru", 1, (0, -1)),  # the GRU's recurrent kernel, candidate (h) block
], ids=["lstm_backward_kernel", "gru_recurrent_kernel"])
def test_altered_oracle_weight_fails_naming_the_layer(kind, layer, weight, entry, saved, capsys, monkeypatch):
    """The oracle's copy of one weight entry of one layer moved by 1e-3: that layer is the first to FAIL
    (the later ones may pass: the head's sigmoid may shrink the difference)."""
    from keras_impl.verify import describe

    original = describe.describe_layer

    def altered(keras_layer, name, inbound):
        described, shown = original(keras_layer, name, inbound)
        if name == layer:
            w = [np.array(a) for a in described.weights]
            w[weight][entry] += 1e-3
            described = type(described)(described.name, described.kind, described.inbound, described.options, tuple(w))
        return described, shown

    monkeypatch.setattr(describe, "describe_layer", altered)
    rc, out, _ = _verify(capsys, saved[kind, ".keras"])
    assert rc == 1, out
    assert _first_failing_row(out).startswith(layer) and f"FAIL: {layer}" in out


# Each mistake a hand-written model could make, put into the oracle; the drawn inputs must catch it.
def _merge_halves_swapped(monkeypatch):
    from reference.layers import rnn
    monkeypatch.setitem(rnn.MERGE, "concat", lambda f, b: np.concatenate([b, f], axis=-1))


def _masked_steps_zeroed(monkeypatch):  # a plain LSTM's masked steps zeroed instead of repeating the previous output
    from reference.layers import rnn
    original = rnn.layer_call
    monkeypatch.setattr(rnn, "layer_call", lambda *a, **k: original(*a, **{**k, "zero_output_for_mask": True}))


def _backward_not_flipped(monkeypatch):  # the Bidirectional's backward sequence left in processing order
    from reference.layers import registry, rnn

    def unflipped(layer, inputs, masks, tape=None):
        opt, w = layer.options, layer.weights
        halves = [rnn.layer_call(rnn.make_cell(opt[d], w[k:k + 3]), inputs[0], w[k:k + 3], mask=masks[0],
                                 go_backwards=bool(opt[d].get("go_backwards", False)), return_sequences=True,
                                 zero_output_for_mask=True) for d, k in (("forward", 0), ("backward", 3))]
        return rnn.MERGE[opt["merge_mode"]](*halves), masks[0]
    monkeypatch.setitem(registry.FORWARD, "Bidirectional", unflipped)


def _gru_gates_swapped(monkeypatch):
    from reference import gru_inference, recurrent
    # Keras's default GRU runs the in-place loop of reference/gru_inference.py, which does not go through
    # STEPS: turned off, so that the broken step below is the one the oracle runs
    monkeypatch.setattr(gru_inference, "serves", lambda cell: False)
    step, grad = recurrent.STEPS["gru"]

    def swapped(cell, xp, states, R, b_rec):  # z and r read each other's columns
        U = states[0].shape[-1]
        order = np.r_[U:2 * U, 0:U, 2 * U:3 * U]
        return step(cell, xp[:, order], states, R[:, order], None if b_rec is None else b_rec[order])
    monkeypatch.setitem(recurrent.STEPS, "gru", Steps(swapped, grad))


def _gru_reset_other_form(monkeypatch):
    from reference import recurrent
    step, grad = recurrent.STEPS["gru"]
    monkeypatch.setitem(recurrent.STEPS, "gru", Steps(lambda cell, *a: step(
        type(cell)("gru", cell.activation, cell.recurrent_activation, cell.use_bias, True), *a), grad))


def _simple_rnn_activation_ignored(monkeypatch):
    from reference import recurrent
    step, grad = recurrent.STEPS["simple_rnn"]
    monkeypatch.setitem(recurrent.STEPS, "simple_rnn", Steps(lambda cell, *a: step(
        type(cell)("simple_rnn", use_bias=cell.use_bias), *a), grad))


@pytest.mark.parametrize("breakage, kind, failing", [
    (_merge_halves_swapped, "tutorial", "recurrent_0"),
    (_masked_steps_zeroed, "branches", "forward_lstm"),
    (_backward_not_flipped, "tagger", "bidirectional"),
    (_gru_gates_swapped, "gru_tagger", "bidirectional"),
    (_gru_reset_other_form, "gru_tagger", "reversed_gru"),  # the first GRU with reset_after=False
    (_simple_rnn_activation_ignored, "rnn_classifier", "bi_relu_rnn"),  # relu computed as tanh
], ids=["merge_halves_swapped", "masked_steps_zeroed", "backward_not_flipped", "gru_gates_swapped",
        "gru_reset_other_form", "simple_rnn_activation_ignored"])
def test_a_broken_oracle_fails_naming_the_layer(breakage, kind, failing, saved, capsys, monkeypatch):
    breakage(monkeypatch)
    rc, out, _ = _verify(capsys, saved[kind, ".keras"])
    assert rc == 1, out
    assert _first_failing_row(out).startswith(failing)


def test_registered_lstm_subclass_is_refused(tmp_path, capsys):
    import keras

    @keras.saving.register_keras_serializable(package="verify_test")
    class MyLSTM(keras.layers.LSTM):
        pass

    model = keras.Sequential([keras.Input((4, 2)), MyLSTM(3, name="mine")])
    path = tmp_path / "custom.keras"
    model.save(path)
    rc, out, err = _verify(capsys, path)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "'mine'" in err and "MyLSTM" in err and "supported: InputLayer" in err
    # Loaded in memory (no file scan), the exact-class check refuses it as well.
    from keras_impl.verify.describe import describe_model
    from keras_impl.verify.load import VerifyRefusal
    with pytest.raises(VerifyRefusal, match="'mine' of class MyLSTM"):
        describe_model(model)


def _unmodellable(case):
    """A model holding one layer, option or mask the oracle cannot model."""
    import keras
    L = keras.layers

    def single(layer, shape=(4, 2), **input_options):
        inputs = keras.Input(shape, **input_options)
        return keras.Model(inputs, layer(inputs))

    def initial_state():  # a state given at the call: not modelled (the oracle's layers start from zeros)
        x, s = keras.Input((4, 2)), keras.Input((3,))
        return keras.Model([x, s], L.GRU(3, name="seeded")(x, initial_state=[s]))

    def hand_made_mask():  # a mask the user computes and passes (mask=) is not what Keras's layers propagate
        ids = keras.Input((5,), dtype="int32")
        h = L.Embedding(9, 3, mask_zero=True)(ids)
        return keras.Model(ids, L.LSTM(2, name="lstm_own_mask")(h, mask=keras.ops.not_equal(ids, 3)))

    return {
        "lambda": lambda: single(L.Lambda(lambda t: t * 2.0, name="doubling")),
        "softmax_lstm": lambda: single(L.LSTM(3, activation="softmax", name="softmax_lstm")),
        "gelu_gru": lambda: single(L.GRU(3, activation="gelu", name="gelu_gru")),
        "time_distributed_lambda": lambda: single(L.TimeDistributed(L.Lambda(lambda t: t * 2.0, name="twice"),
                                                                    name="per_step"), (4, 3, 2)),
        "stacked_stacked_cells": lambda: single(L.RNN(L.StackedRNNCells([L.StackedRNNCells([L.GRUCell(2)])]),
                                                      name="stack")),
        "stateful_rnn": lambda: single(L.SimpleRNN(3, stateful=True, name="carried"), batch_size=3),
        "initial_state": initial_state,
        "hand_made_mask": hand_made_mask,
    }[case]()


REFUSALS = [
    ("lambda", "'doubling' of class Lambda"),
    ("softmax_lstm", "'softmax_lstm' of class LSTM is not supported (activation='softmax'"),
    ("gelu_gru", "activation='gelu'"),
    ("time_distributed_lambda", "'twice' of class Lambda"),
    ("stacked_stacked_cells", "of class StackedRNNCells is not supported (RNN of LSTMCell, GRUCell, SimpleRNNCell"),
    ("stateful_rnn", "'carried' of class SimpleRNN"),
    ("initial_state", "'seeded' of class GRU is not supported (called with initial_state=...: not modelled)"),
    ("hand_made_mask", "'lstm_own_mask' is given a mask"),
]


@pytest.mark.parametrize("case, message", REFUSALS, ids=[case for case, _ in REFUSALS])
def test_what_the_oracle_cannot_model_is_refused_by_name(case, message, tmp_path, capsys):
    path = tmp_path / f"{case}.keras"
    _unmodellable(case).save(path)
    rc, stdout, err = _verify(capsys, path)
    assert rc == 2 and stdout == "" and err.count("\n") == 1, err
    assert message in err


def test_a_keras3_h5_functional_model_with_masks_is_refused_with_the_reason(saved, capsys):
    """Keras 3.15.1 writes such a file but cannot read it back ('Unknown layer: NotEqual'): one line says
    so and what to do, instead of calling Keras's mask op an unsupported layer."""
    rc, out, err = _verify(capsys, saved["mixed", ".h5"])
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "mask op of a Keras 3 functional model saved as .h5" in err and "save the model as .keras" in err
    import keras
    with pytest.raises(ValueError, match="Unknown layer: 'NotEqual'"):  # Keras's own loader, as the message says
        keras.saving.load_model(saved["mixed", ".h5"], compile=False)


def test_user_inputs_are_used_and_checked(saved, capsys, tmp_path):
    ids = np.array([[3, 4, 5, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]], dtype=np.int64)
    good = tmp_path / "ids.npy"
    np.save(good, ids)
    rc, out, _ = _verify(capsys, saved["classifier", ".keras"], "--inputs", good)
    assert rc == 0 and "the user's --inputs" in out
    bad = tmp_path / "bad.npy"
    np.save(bad, ids + 10)  # beyond the vocabulary of 11
    rc, out, err = _verify(capsys, saved["classifier", ".keras"], "--inputs", bad)
    assert rc == 2 and "ids must be integers in [0, 11)" in err and err.count("\n") == 1


@pytest.mark.parametrize("kind", ["regressor", "gru_tagger"])
def test_float64_verifies(kind, saved, capsys, tmp_path, backend):
    import keras
    report_path = tmp_path / "r.json"
    rc, out, err = _verify(capsys, saved[kind, ".keras"], "--dtype", "float64", "--json", report_path)
    _, rows = _check_report(rc, out, err, report_path, backend)
    assert keras.config.floatx() == "float32"  # restored
    if backend == "tensorflow":  # float64 throughout: far below float32 rounding
        assert max(r["max_abs_error"] for r in rows) < 1e-12


BAD_ARGUMENTS = {  # id -> (arguments, what the one line says)
    "missing": (["missing.keras"], "does not exist"),
    "suffix": (["model.txt"], "must end in"),
    "batch": (["{model}", "--batch", "0"], "--batch must be between 1"),
    "timesteps": (["{model}", "--timesteps", "x"], "--timesteps must be an integer"),
    "seed": (["{model}", "--seed", "-1"], "--seed must be between 0"),
    "dtype": (["{model}", "--dtype", "float16"], "invalid choice"),
    "nan_inputs": (["{model}", "--inputs", "{nan}"], "must be finite"),
    "inputs_and_batch": (["{model}", "--inputs", "{ok}", "--batch", "2"], "leave out --batch"),
    "json_folder": (["{model}", "--json", "{folder}"], "is a folder"),
}


@pytest.fixture(scope="module")
def refused_before_keras(tmp_path_factory) -> dict:
    """id -> the refusal of ``bilstm verify`` with BAD_ARGUMENTS[id], all run in one new interpreter (one each
    would only import the command line again), each call's exit status, output and Keras state recorded."""
    folder = tmp_path_factory.mktemp("bad_arguments")
    model = folder / "m.keras"
    model.write_bytes(b"not read: arguments are checked first")
    nan = folder / "nan.npy"
    np.save(nan, np.array([[[np.nan]]]))
    ok = folder / "ok.npy"
    np.save(ok, np.zeros((2, 3, 1)))
    argvs = [["verify", *(a.format(model=model, nan=nan, ok=ok, folder=folder) for a in argv)]
             for argv, _ in BAD_ARGUMENTS.values()]
    return dict(zip(BAD_ARGUMENTS, bilstm_in_one_fresh_process(argvs, folder, timeout=120)))


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_arguments_refused_before_keras_is_imported(case, refused_before_keras):
    refused, message = refused_before_keras[case], BAD_ARGUMENTS[case][1]
    assert refused["code"] == 2 and not refused["keras_imported"], refused
    assert refused["stdout"] == "" and refused["stderr"].count("\n") == 1 and message in refused["stderr"], refused
