"""``bilstm verify`` on models of each kind people train, saved as .keras files, on the backend in use.

Models are tiny (a different size for every dimension) and built once per module;
each is saved, then verified through the command (``keras_impl.cli.main``), as a
user would. Weights are Keras's own initialisation with every bias replaced by
random non-zero values, so a dropped bias or a swapped direction would show.
The command must also fail: altered oracle weights (exit 1), a registered LSTM
subclass, a Lambda and an activation the oracle lacks (exit 2, one line naming the
layer). GRU and SimpleRNN models: ``test_verify_cells.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_impl.cli import main
from parity_tests.conftest import randomise_weights




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

    return {f.__name__: f for f in (classifier, tagger, regressor, branches, pooled, tutorial)}


KINDS = ("classifier", "tagger", "regressor", "branches", "pooled", "tutorial")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    import warnings

    folder = tmp_path_factory.mktemp("verify_models")
    rng = np.random.default_rng(10)
    paths = {}
    with warnings.catch_warnings():  # GlobalMaxPooling1D / Flatten drop a mask: Keras warns, verify models it
        warnings.filterwarnings("ignore", message=".*does not support masking.*")
        for name, make in _models().items():
            path = folder / f"{name}.keras"
            randomise_weights(make(), rng).save(path)
            paths[name] = path
    return paths


def _verify(capsys, *argv):
    rc = main(["verify", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("kind", KINDS)
def test_model_kinds_verify_within_bounds(saved, kind, capsys, tmp_path, backend):
    report_path = tmp_path / "report.json"
    rc, out, err = _verify(capsys, saved[kind], "--json", report_path, "--batch", 5, "--seed", 3)
    assert rc == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["backend"] == backend and report["seed"] == 3 and report["versions"]["keras"]
    rows = report["layers"]
    assert rows and all(r["verdict"] == "pass" for r in rows)
    assert all(r["max_abs_error"] <= r["allowed"] for r in rows)
    # Every layer of the file has a row (InputLayers aside): nothing skipped silently.
    import warnings

    import keras
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not support masking.*")
        model = keras.saving.load_model(saved[kind], compile=False)
    expected = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert [r["layer"] for r in rows] == expected
    assert f"{len(rows)}/{len(rows)} layers within bounds" in out


def test_json_dash_prints_the_report_as_json_instead_of_the_table(saved, capsys, tmp_path, backend):
    """--json - as in every command: the JSON report on standard output, the header on standard error."""
    rc, out, err = _verify(capsys, saved["classifier"], "--json", "-", "--batch", 3)
    report = json.loads(out)  # nothing but the JSON
    assert rc == 0 and report["verdict"] == "pass" and report["backend"] == backend, err
    assert err.splitlines()[0].startswith(f"bilstm verify: on {backend} ("), err
    rc, table, _ = _verify(capsys, saved["classifier"], "--json", tmp_path / "r.json", "--batch", 3)
    assert rc == 0 and json.loads((tmp_path / "r.json").read_text())["layers"] == report["layers"]
    assert "layers within bounds" in table


def test_masked_inputs_are_drawn_with_padding(saved, capsys, tmp_path):
    report_path = tmp_path / "r.json"
    assert _verify(capsys, saved["classifier"], "--json", report_path, "--batch", 6)[0] == 0
    report = json.loads(report_path.read_text())
    assert "trailing 0 padding" in report["inputs"][0]["drawn"]
    first = report["layers"][0]  # the Embedding: a mask out, some steps masked
    valid, total = map(int, first["mask"].split("-> ")[1].split()[0].split("/"))
    assert 0 < valid < total


def test_altered_oracle_weights_fail(saved, capsys, monkeypatch):
    """The oracle's copy of one backward-kernel entry is moved by 1e-3: the Bidirectional layer must FAIL."""
    from keras_impl.verify import describe

    original = describe.describe_layer

    def altered(layer, name, inbound):
        described, shown = original(layer, name, inbound)
        if described.kind == "Bidirectional":
            w = [np.array(a) for a in described.weights]
            w[3][0, 0] += 1e-3  # the backward kernel
            described = type(described)(described.name, described.kind, described.inbound, described.options, tuple(w))
        return described, shown

    monkeypatch.setattr(describe, "describe_layer", altered)
    rc, out, _ = _verify(capsys, saved["tutorial"])
    assert rc == 1
    assert "FAIL: recurrent_0" in out  # the altered layer is named (the head's sigmoid may shrink the difference)


@pytest.mark.parametrize("mutation, kind, failing", [
    ("merge_halves_swapped", "tutorial", "recurrent_0"),
    ("masked_steps_zeroed", "branches", "forward_lstm"),
    ("backward_not_flipped", "tagger", "bidirectional"),
])
def test_wrong_semantics_in_the_oracle_fail(mutation, kind, failing, saved, capsys, monkeypatch):
    """Each mistake a hand-written model could make is caught by the drawn inputs (exit 1, the layer named):
    concat halves swapped; a plain LSTM's masked steps zeroed instead of repeating the previous output;
    the Bidirectional's backward sequence left in processing order."""
    from reference import layers

    if mutation == "merge_halves_swapped":
        monkeypatch.setitem(layers.MERGE, "concat", lambda f, b: np.concatenate([b, f], axis=-1))
    elif mutation == "masked_steps_zeroed":
        original = layers._recurrent
        monkeypatch.setattr(layers, "_recurrent", lambda x, w, m, o, rs, zero, tape=None: original(x, w, m, o, rs, True, tape))
    else:
        original_forward = layers.layer_forward

        def unflipped(layer, inputs, masks, tape=None):
            if layer.kind != "Bidirectional":
                return original_forward(layer, inputs, masks, tape)
            opt, w = layer.options, layer.weights
            y_f = layers._recurrent(inputs[0], w[:3], masks[0], opt["forward"], True, True)
            y_b = layers._recurrent(inputs[0], w[3:6], masks[0], opt["backward"], True, True)
            return layers.MERGE[opt["merge_mode"]](y_f, y_b), masks[0]
        monkeypatch.setattr(layers, "layer_forward", unflipped)
    rc, out, _ = _verify(capsys, saved[kind])
    assert rc == 1
    first_fail = next(line for line in out.splitlines() if line.rstrip().endswith("FAIL"))
    assert first_fail.startswith(failing)


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


@pytest.mark.parametrize("layer", ["lambda", "softmax_lstm", "time_distributed_gru", "merge_none"])
def test_unsupported_layers_and_options_are_refused_by_name(layer, tmp_path, capsys):
    import keras
    L = keras.layers
    make = {
        "lambda": lambda: L.Lambda(lambda t: t * 2.0, name="doubling"),
        "softmax_lstm": lambda: L.LSTM(3, activation="softmax", name="softmax_lstm"),
        "time_distributed_gru": lambda: L.TimeDistributed(L.GRU(2), name="per_step"),
        "merge_none": lambda: L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=None, name="pair"),
    }[layer]
    inputs = keras.Input((4, 3, 2) if layer == "time_distributed_gru" else (4, 2))  # a GRU on each of 4 sequences
    out = make()(inputs)
    model = keras.Model(inputs, out)
    path = tmp_path / f"{layer}.keras"
    model.save(path)
    rc, stdout, err = _verify(capsys, path)
    assert rc == 2 and stdout == "" and err.count("\n") == 1
    expected = {"lambda": "'doubling' of class Lambda", "softmax_lstm": "'softmax_lstm' of class LSTM is not supported (activation='softmax'",
                "time_distributed_gru": "of class GRU is not supported (TimeDistributed of Dense only)",
                "merge_none": "merge_mode=None"}[layer]
    assert expected in err


def test_hand_made_mask_is_refused(tmp_path, capsys):
    """A mask the user computes and passes (mask=) is not what Keras's layers propagate: refused, not guessed."""
    import keras
    ids = keras.Input((5,), dtype="int32")
    h = keras.layers.Embedding(9, 3, mask_zero=True)(ids)
    y = keras.layers.LSTM(2, name="lstm_own_mask")(h, mask=keras.ops.not_equal(ids, 3))
    path = tmp_path / "own_mask.keras"
    keras.Model(ids, y).save(path)
    rc, out, err = _verify(capsys, path)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "'lstm_own_mask' is given a mask" in err


def test_keras3_h5_file_verifies(tmp_path, capsys):
    import keras
    L = keras.layers
    model = keras.Sequential([keras.Input((6,), dtype="int32"), L.Embedding(13, 4, mask_zero=True),
                              L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum"),
                              L.TimeDistributed(L.Dense(5, activation="softmax"))])
    randomise_weights(model, np.random.default_rng(4))
    path = tmp_path / "legacy.h5"
    model.save(path)
    before = path.read_bytes()
    rc, out, err = _verify(capsys, path)
    assert rc == 0, out + err
    assert "3/3 layers within bounds" in out and "(.h5)" in out
    assert path.read_bytes() == before  # the user's file is only read


def test_user_inputs_are_used_and_checked(saved, capsys, tmp_path):
    ids = np.array([[3, 4, 5, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]], dtype=np.int64)
    good = tmp_path / "ids.npy"
    np.save(good, ids)
    rc, out, _ = _verify(capsys, saved["classifier"], "--inputs", good)
    assert rc == 0 and "the user's --inputs" in out
    bad = tmp_path / "bad.npy"
    np.save(bad, ids + 10)  # beyond the vocabulary of 11
    rc, out, err = _verify(capsys, saved["classifier"], "--inputs", bad)
    assert rc == 2 and "ids must be integers in [0, 11)" in err and err.count("\n") == 1


def test_float64_verifies(saved, capsys, tmp_path, backend):
    import keras
    report_path = tmp_path / "r.json"
    rc, out, err = _verify(capsys, saved["regressor"], "--dtype", "float64", "--json", report_path)
    assert rc == 0, out + err
    assert keras.config.floatx() == "float32"  # restored
    report = json.loads(report_path.read_text())
    worst = max(r["max_abs_error"] for r in report["layers"] if r["class"] != "Masking")
    if backend == "tensorflow":
        assert worst < 1e-12  # float64 throughout: far below float32 rounding


@pytest.mark.parametrize("argv, message", [
    (["missing.keras"], "does not exist"),
    (["model.txt"], "must end in"),
    (["{model}", "--batch", "0"], "--batch must be between 1"),
    (["{model}", "--timesteps", "x"], "--timesteps must be an integer"),
    (["{model}", "--seed", "-1"], "--seed must be between 0"),
    (["{model}", "--dtype", "float16"], "invalid choice"),
    (["{model}", "--inputs", "{nan}"], "must be finite"),
    (["{model}", "--inputs", "{ok}", "--batch", "2"], "leave out --batch"),
    (["{model}", "--json", "{folder}"], "is a folder"),
], ids=["missing", "suffix", "batch", "timesteps", "seed", "dtype", "nan_inputs", "inputs_and_batch", "json_folder"])
def test_bad_arguments_refused_before_keras_is_imported(argv, message, tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read: arguments are checked first")
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[[np.nan]]]))
    ok = tmp_path / "ok.npy"
    np.save(ok, np.zeros((2, 3, 1)))
    argv = [a.format(model=model, nan=nan, ok=ok, folder=tmp_path) for a in argv]
    code = ("import sys; from keras_impl.cli import main; rc = main(sys.argv[1:]); "
            "assert 'keras' not in sys.modules, 'Keras imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "verify", *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and message in proc.stderr
