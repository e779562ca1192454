"""``bilstm verify`` on models with convolutions and ConvLSTM, on the backend in use, float32 and float64.

Each model is built here with every weight (biases included) drawn by the project's recipe
(``parity_tests.conftest.randomise_weights``) and a different size on every axis, saved as .keras and verified
through the command. The default run holds a covering subset in five models (one verify each, every layer
compared): a 1D chain (Conv1D causal, dilated, grouped; DepthwiseConv1D; SeparableConv1D strided;
Conv1DTranspose same), a 2D chain (Conv2D same, strides 2x1, groups, relu; SeparableConv2D; DepthwiseConv2D
dilated; Conv2DTranspose valid with output_padding), Conv3D (channels_first, no bias), a CNN-BiLSTM behind a
Masking layer (the conv drops the mask, so the BiLSTM runs on every step), and a ConvLSTM2D -> Conv3D
next-frame model;
``-m slow`` adds every other option. Planted faults (an altered weight, a wrong padding mode, a mask the conv
wrongly passes on) exit 1 naming the layer; what the oracle does not model (LoRA) exits 2 in one
line. A ConvLSTM's return_state gives a row per state (a planted swap of h and c fails on both); a Bidirectional of
ConvLSTMs verifies (a planted unflipped backward half fails and is named by the diagnosis). A ConvLSTM's (B, T) mask, which only a wrapper or an explicit ``mask=`` can give it, is checked directly
against Keras's layer.
"""
from __future__ import annotations

import json
import re
import warnings
import zlib

import numpy as np
import pytest

from keras_impl.cli import main
from parity_tests.conftest import SLOW_ON_JAX, randomise_weights


def _models():
    import keras
    L = keras.layers

    def seq(shape, *layers):
        return keras.Sequential([keras.Input(shape), *layers])

    def cnn_bilstm():
        x = keras.Input((12, 5))
        h = L.Masking(0.0)(x)
        h = L.Conv1D(6, 3, padding="same", activation="relu", name="conv")(h)
        h = L.Bidirectional(L.LSTM(4), name="bilstm")(h)
        return keras.Model(x, L.Dense(3, activation="softmax", name="head")(h))

    def next_frame():
        x = keras.Input((4, 7, 6, 2))
        h = L.ConvLSTM2D(3, (3, 2), padding="same", strides=(2, 1), return_sequences=True, go_backwards=True,
                         name="conv_lstm")(x)
        return keras.Model(x, L.Conv3D(2, (1, 2, 3), padding="same", activation="sigmoid", name="frames")(h))

    def sequence_1d():  # every 1D kind in one chain, each with other sizes
        return seq((11, 4), L.Conv1D(6, 3, padding="causal", dilation_rate=2, groups=2, activation="tanh"),
                   L.DepthwiseConv1D(3, depth_multiplier=2, dilation_rate=2, padding="same"),
                   L.SeparableConv1D(5, 2, strides=2, padding="same", activation="sigmoid"),
                   L.Conv1DTranspose(3, 3, strides=2, padding="same"))

    def image_2d():
        return seq((9, 7, 4), L.Conv2D(6, (3, 2), strides=(2, 1), padding="same", groups=2, activation="relu"),
                   L.SeparableConv2D(5, (3, 2), depth_multiplier=2, padding="same", activation="tanh"),
                   L.DepthwiseConv2D((2, 3), depth_multiplier=2, dilation_rate=(1, 2)),
                   L.Conv2DTranspose(4, (3, 2), strides=(2, 3), output_padding=(1, 2)))

    default = {
        "sequence_1d": sequence_1d,
        "image_2d": image_2d,
        "conv3d_first": lambda: seq((3, 6, 7, 5), L.Conv3D(4, (2, 3, 2), strides=(1, 2, 2),
                                                           data_format="channels_first", use_bias=False)),
        "cnn_bilstm": cnn_bilstm,
        "next_frame": next_frame,
    }
    slow = {
        "conv2d_same_strided": lambda: seq((9, 7, 4), L.Conv2D(6, (3, 2), strides=(2, 1), padding="same")),
        "conv1d_valid_strided": lambda: seq((13, 3), L.Conv1D(4, 4, strides=3)),
        "conv1d_first": lambda: seq((3, 12), L.Conv1D(5, 3, padding="same", data_format="channels_first")),
        "conv2d_dilated": lambda: seq((10, 9, 3), L.Conv2D(4, (2, 3), dilation_rate=(2, 3), padding="same",
                                                           activation="tanh")),
        "conv2d_first": lambda: seq((3, 8, 7), L.Conv2D(5, (3, 2), strides=(1, 2), padding="same",  # width 4 != 5
                                                        data_format="channels_first")),
        "conv3d_same": lambda: seq((5, 6, 7, 2), L.Conv3D(3, (3, 2, 2), padding="same", dilation_rate=(1, 2, 1))),
        "separable1d": lambda: seq((10, 3), L.SeparableConv1D(4, 3, depth_multiplier=3, dilation_rate=2,
                                                              use_bias=False)),
        "separable2d_first": lambda: seq((3, 9, 7), L.SeparableConv2D(4, (2, 3), data_format="channels_first")),
        "depthwise2d": lambda: seq((9, 8, 3), L.DepthwiseConv2D((3, 2), strides=(2, 3), depth_multiplier=2,
                                                                activation="relu")),
        "depthwise1d_first": lambda: seq((3, 10), L.DepthwiseConv1D(3, strides=2, data_format="channels_first")),
        "transpose1d_dilated": lambda: seq((7, 3), L.Conv1DTranspose(4, 3, dilation_rate=2)),
        "transpose1d_output_padding": lambda: seq((6, 3), L.Conv1DTranspose(4, 4, strides=3, padding="same",
                                                                            output_padding=1)),
        "transpose2d_same": lambda: seq((5, 4, 3), L.Conv2DTranspose(4, (3, 4), strides=(2, 2), padding="same")),
        "transpose2d_first": lambda: seq((3, 5, 4), L.Conv2DTranspose(4, (2, 3), strides=(2, 1),
                                                                      data_format="channels_first")),
        "conv_lstm1d": lambda: seq((5, 9, 3), L.ConvLSTM1D(4, 3, dilation_rate=2, padding="same")),
        "conv_lstm1d_backwards": lambda: seq((5, 9, 3), L.ConvLSTM1D(4, 2, strides=2, go_backwards=True,
                                                                     return_sequences=True, use_bias=False,
                                                                     activation="relu",
                                                                     recurrent_activation="hard_sigmoid")),
        "conv_lstm2d_first": lambda: seq((4, 2, 7, 6), L.ConvLSTM2D(3, (2, 3), data_format="channels_first",
                                                                    return_sequences=True)),
        "conv_lstm3d": lambda: seq((3, 4, 5, 6, 2), L.ConvLSTM3D(2, (2, 3, 2), padding="same")),
    }
    return default, slow


DEFAULT, SLOW = (list(names) for names in _models())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every model of the default set, weights drawn, saved once per module (name -> path)."""
    folder = tmp_path_factory.mktemp("conv_models")
    return {name: _save(folder, name, build) for name, build in _models()[0].items()}


def _save(folder, name, build):
    from keras_impl.verify.load import MASK_DROPPED_WARNING
    with warnings.catch_warnings():  # the CNN-BiLSTM's Conv1D drops the Masking layer's mask, as intended
        warnings.filterwarnings("ignore", message=MASK_DROPPED_WARNING)
        model = build()
    model = randomise_weights(model, np.random.default_rng(zlib.crc32(name.encode())))  # stable per model
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def _verify(capsys, path, *argv):
    rc = main(["verify", str(path), *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _passes(capsys, path, dtype, tmp_path, backend):
    report_path = tmp_path / f"{path.stem}-{dtype}.json"
    rc, out, err = _verify(capsys, path, "--dtype", dtype, "--json", report_path, "--batch", 3)
    assert rc == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["backend"] == backend
    rows = report["layers"]
    assert rows and all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows), rows
    return rows


# float32 for every default model; float64 for the 2-D chain in the default suite, for all in make test-full.
@pytest.mark.parametrize("name, dtype", [(n, "float32") for n in DEFAULT] + [
    (n, "float64") if n == "image_2d" else pytest.param(n, "float64", marks=pytest.mark.slow) for n in DEFAULT])
def test_conv_layers_verify(name, dtype, saved, capsys, tmp_path, backend):
    rows = _passes(capsys, saved[name], dtype, tmp_path, backend)
    if dtype == "float64" and backend == "tensorflow":  # float64 throughout: far below float32 rounding
        assert max(r["max_abs_error"] / max(1.0, r["max_abs_output"]) for r in rows) < 1e-12, rows


# Models TensorFlow's CPU kernels cannot run in float64 (Keras's TensorFlow backend hands them to TensorFlow
# as they are): channels_first 1D/2D convs ("only supports the NHWC tensor format on the CPU"), a depthwise conv
# with unequal strides ("only supports equal length strides"), a dilated transpose conv ("do not yet support
# dilation rates larger than 1"). verify says so in one line (exit 2).
TF_FLOAT64_UNRUNNABLE = {"conv1d_first", "conv2d_first", "depthwise2d", "transpose1d_dilated", "transpose2d_first",
                         "conv_lstm2d_first"}


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_conv_option_verifies(name, dtype, capsys, tmp_path, backend):
    path = _save(tmp_path, name, _models()[1][name])
    if backend == "tensorflow" and dtype == "float64" and name in TF_FLOAT64_UNRUNNABLE:
        rc, out, err = _verify(capsys, path, "--dtype", dtype)
        assert rc == 2 and "Keras cannot run the model on these inputs" in err and err.count("\n") == 1, err
        return
    _passes(capsys, path, dtype, tmp_path, backend)


def test_keras_tensorflow_adds_a_channels_first_bias_on_the_wrong_axis(tmp_path, capsys, backend):
    """Keras 3.15.1 on TensorFlow adds a channels_first conv's bias (reshaped (1, F, 1, 1)) with ``ops.add``,
    which takes it for a ``tf.nn.bias_add`` and picks NHWC whenever the output's last axis is F long
    (keras/src/backend/tensorflow/numpy.py L108-129): the bias lands on the width. verify shows it (exit 1
    naming the layer); JAX and torch add it on the channels and pass."""
    import keras
    model = keras.Sequential([keras.Input((3, 8, 7)), keras.layers.Conv2D(4, (3, 2), strides=(1, 2), padding="same",
                                                                          data_format="channels_first", name="nchw")])
    randomise_weights(model, np.random.default_rng(5))
    path = tmp_path / "nchw.keras"
    model.save(path)  # output (B, 4, 8, 4): the width equals the filters
    rc, out, _ = _verify(capsys, path)
    if backend == "tensorflow":
        assert rc == 1 and _first_failing_row(out).startswith("nchw"), out
    else:
        assert rc == 0, out


def test_conv_lstm_verifies(saved, capsys, tmp_path, backend):
    rows = _passes(capsys, saved["next_frame"], "float32", tmp_path, backend)
    assert [r["class"] for r in rows] == ["ConvLSTM2D", "Conv3D"]
    assert "go_backwards=1, sequences" in rows[0]["options"]


def test_the_conv_drops_the_mask_as_keras_does(saved, capsys, tmp_path, backend):
    rows = _passes(capsys, saved["cnn_bilstm"], "float32", tmp_path, backend)
    by_layer = {r["layer"]: r for r in rows}
    assert by_layer["conv"]["mask"].endswith("-> -"), by_layer["conv"]  # a mask in, none out


def _first_failing_row(out):
    return next(line for line in out.splitlines() if re.search(r"\sFAIL( \(.*\))?$", line.rstrip()))


def _alter_described(monkeypatch, layer_name, change):
    from keras_impl.verify import describe
    original = describe.describe_layer

    def altered(keras_layer, name, inbound):
        described, shown = original(keras_layer, name, inbound)
        if name == layer_name:
            described = change(described)
        return described, shown
    monkeypatch.setattr(describe, "describe_layer", altered)


def _kernel_moved(described):
    w = [np.array(a) for a in described.weights]
    w[0][(0,) * w[0].ndim] += 1e-3
    return type(described)(described.name, described.kind, described.inbound, described.options, tuple(w))


def _padding(mode):
    def change(described):
        return type(described)(described.name, described.kind, described.inbound,
                               {**described.options, "padding": mode}, described.weights)
    return change


@pytest.mark.parametrize("model, layer, change", [
    ("image_2d", "separable_conv2d", _kernel_moved),
    ("next_frame", "conv_lstm", _kernel_moved),
    ("sequence_1d", "conv1d", _padding("same")),  # causal read as same: the same length, other windows
    ("sequence_1d", "conv1d_transpose", _padding("valid")),  # another length: a FAIL that says so
], ids=["conv_weight", "conv_lstm_weight", "causal_as_same", "transpose_same_as_valid"])
def test_a_planted_fault_fails_naming_the_layer(model, layer, change, saved, capsys, monkeypatch):
    _alter_described(monkeypatch, layer, change)
    rc, out, _ = _verify(capsys, saved[model])
    assert rc == 1, out
    assert _first_failing_row(out).startswith(layer) and f"FAIL: {layer}" in out


def test_a_conv_that_passed_the_mask_on_would_fail(saved, capsys, monkeypatch):
    """The oracle's Conv1D wrongly handing its input mask on: the conv's values are right but its output mask is
    not Keras's (none), so the conv FAILs first, saying so, and the BiLSTM after it, masking steps Keras runs."""
    from reference.layers import registry
    conv = registry.FORWARD["Conv1D"]
    monkeypatch.setitem(registry.FORWARD, "Conv1D", lambda layer, inputs, masks, tape=None:
                        (conv(layer, inputs, masks)[0], masks[0]))
    rc, out, _ = _verify(capsys, saved["cnn_bilstm"])
    assert rc == 1, out
    first = _first_failing_row(out)
    assert first.startswith("conv") and "Keras's output mask - != oracle's" in first, out
    assert "FAIL: conv, bilstm" in out, out


def test_what_the_oracle_does_not_model_is_refused_by_name(tmp_path, capsys):
    import keras
    model = keras.Sequential([keras.Input((6, 5, 3)), keras.layers.Conv2D(4, (3, 2), lora_rank=2, name="lora_conv")])
    path = tmp_path / "lora.keras"
    model.save(path)
    rc, out, err = _verify(capsys, path)
    assert rc == 2 and err.count("\n") == 1 and "'lora_conv'" in err, err
    assert "of class Conv2D is not supported (LoRA weights)" in err, err


@pytest.fixture(scope="module")
def conv_lstm_states(tmp_path_factory):
    """A ConvLSTM1D with return_state, channels_first and go_backwards, its sequence and both states model
    outputs (each state a different function of the weights: h = o act(c))."""
    import keras

    def build():
        x = keras.Input((4, 3, 7))  # (T, C, W): channels_first
        seq, h, c = keras.layers.ConvLSTM1D(5, 3, padding="same", data_format="channels_first", go_backwards=True,
                                            return_sequences=True, return_state=True, name="states_out")(x)
        return keras.Model(x, [seq, h, c])
    return _save(tmp_path_factory.mktemp("conv_lstm_states"), "states", build)


def test_conv_lstm_return_state_verifies_a_row_per_state(conv_lstm_states, capsys, tmp_path, backend):
    rows = _passes(capsys, conv_lstm_states, "float32", tmp_path, backend)
    assert [r["layer"] for r in rows] == ["states_out", "states_out:1", "states_out:2"], rows
    assert "return_state" in rows[0]["options"]


def test_conv_lstm_states_swapped_would_fail(conv_lstm_states, capsys, monkeypatch):
    """The oracle handing back (c, h) for (h, c): both state rows FAIL, the sequence row passes."""
    from reference.layers import registry
    from reference.layers.outputs import Outputs
    forward = registry.FORWARD["ConvLSTM1D"]

    def swapped(layer, inputs, masks, tape=None):
        y, h, c = forward(layer, inputs, masks)
        return Outputs([y, c, h])
    monkeypatch.setitem(registry.FORWARD, "ConvLSTM1D", swapped)
    rc, out, _ = _verify(capsys, conv_lstm_states)
    assert rc == 1 and _first_failing_row(out).startswith("states_out:1"), out
    assert "FAIL: states_out:1, states_out:2" in out, out


@pytest.fixture(scope="module")
def bidirectional_conv_lstms(tmp_path_factory):
    """Two Bidirectional ConvLSTMs on two inputs: a ConvLSTM1D pair (concat, sequences) under a pair of
    another backward_layer (ave, last step, return_state), and a channels_first ConvLSTM2D pair (mul)."""
    import keras
    L = keras.layers

    def build():
        x1, x2 = keras.Input((4, 7, 3), name="x1"), keras.Input((3, 2, 5, 6), name="x2")  # x2: (T, C, H, W)
        h = L.Bidirectional(L.ConvLSTM1D(5, 3, padding="same", return_sequences=True), name="bi_seq")(x1)
        last, *states = L.Bidirectional(
            L.ConvLSTM1D(4, 2, return_state=True), merge_mode="ave", name="bi_last",
            backward_layer=L.ConvLSTM1D(4, 2, go_backwards=True, return_state=True,
                                        recurrent_activation="hard_sigmoid"),
        )(h)
        first = L.Bidirectional(L.ConvLSTM2D(3, (2, 3), padding="same", data_format="channels_first",
                                             return_sequences=True), merge_mode="mul", name="bi_first")(x2)
        return keras.Model([x1, x2], [last, *states, first])
    return _save(tmp_path_factory.mktemp("bidirectional_conv_lstm"), "bi_conv_lstm", build)


def test_bidirectional_conv_lstm_verifies(bidirectional_conv_lstms, capsys, tmp_path, backend):
    rows = _passes(capsys, bidirectional_conv_lstms, "float32", tmp_path, backend)
    assert [r["layer"] for r in rows] == ["bi_seq", "bi_last", "bi_last:1", "bi_last:2", "bi_last:3", "bi_last:4",
                                          "bi_first"], rows
    assert rows[0]["class"] == "Bidirectional" and "ConvLSTM1D, merge=concat" in rows[0]["options"], rows[0]


@SLOW_ON_JAX  # 8 s there (every layer traced): TensorFlow and torch plant it in the default suite
def test_a_bidirectional_conv_lstm_merging_its_backward_half_unflipped_fails_and_is_named(
        bidirectional_conv_lstms, capsys, monkeypatch):
    """The oracle's backward ConvLSTM half merged in processing order: bi_seq FAILs first, and the diagnosis's
    hypotheses name the unflipped backward half (recomputed from Keras's inputs to the layer)."""
    from reference.layers import rnn
    original = rnn._bidirectional_of_conv_lstms

    def unflipped(layer, x, mask, rs):
        (y_f, y_b), states = original(layer, x, mask, rs)
        return (y_f, y_b[:, ::-1] if rs else y_b), states
    monkeypatch.setattr(rnn, "_bidirectional_of_conv_lstms", unflipped)
    rc, out, _ = _verify(capsys, bidirectional_conv_lstms)
    assert rc == 1 and _first_failing_row(out).startswith("bi_seq"), out
    assert "backward half merged in processing order" in out, out


@pytest.mark.parametrize("go_backwards, zero_output", [(False, False), (True, True)])
def test_conv_lstm_mask_matches_keras(go_backwards, zero_output, rng, backend):
    """A (B, T) mask given to Keras's ConvLSTM1D (as a TimeDistributed wrapper would hand it on) and to the
    oracle: masked steps carry the state, the output repeats (or is 0 with zero_output_for_mask). Keras on JAX
    cannot run it: its scan widens the mask to (B, 1) only (keras/src/backend/jax/rnn.py L154-173), which does
    not broadcast against a (B, W, F) output."""
    import keras

    from keras_impl.verify.layers.conv_lstm import conv_lstm
    from reference.layers import layer_forward
    layer = keras.layers.ConvLSTM1D(3, 2, strides=2, return_sequences=True, go_backwards=go_backwards,
                                    zero_output_for_mask=zero_output)
    x = rng.normal(size=(3, 5, 9, 2)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 1, 0], [1, 0, 0, 0, 0]], bool)
    layer(x)  # build
    randomise_weights(keras.Sequential([keras.Input((5, 9, 2)), layer]), rng)
    if backend == "jax":
        with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
            layer(x, mask=mask)
        return
    expected = keras.ops.convert_to_numpy(layer(x, mask=mask))
    described, _ = conv_lstm(layer, "c", ("x",))
    y, out_mask = layer_forward(described, [x.astype(np.float64)], [mask])
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert out_mask is mask


@pytest.mark.parametrize("name", ["sequence_1d", "image_2d", "conv3d_first", "next_frame"])
def test_memory_estimate_counts_conv_weights_and_outputs(name, saved):
    """verify's budget (``keras_impl/verify/budget.py``), read from the file's config alone, counts each conv's and
    ConvLSTM's weights exactly and its output at the shape Keras builds (strides, padding, transposes, channels
    first, return_sequences)."""
    import keras

    from keras_impl.verify.budget import estimate
    from keras_impl.verify.load import read_config
    needs = {n.name: n for n in estimate(read_config(saved[name]), batch=2)}
    model = keras.saving.load_model(saved[name], compile=False)
    for layer in model.layers:
        assert needs[layer.name].weights == sum(int(np.prod(w.shape)) for w in layer.get_weights()), layer.name
        assert needs[layer.name].outputs == 2 * int(np.prod(layer.output.shape[1:])), layer.name
