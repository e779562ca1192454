"""Where and why a layer differs (issue 18, items 1 and 2): every diagnosis found when its fault is planted.

Faults are planted on either side: in Keras (a layer's call reversed) or in the oracle (a direction's outputs
moved from one step on; a layer described with another bias form or gate order, which is what Keras computes
when a converter made that mistake in the other direction).
"""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights, run_bilstm

STEPS = 9


def _save(model, path, seed):
    randomise_weights(model, np.random.default_rng(seed)).save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, backend):
    import keras
    L = keras.layers
    folder = tmp_path_factory.mktemp("diagnose")
    return {
        "bi": _save(keras.Sequential([keras.Input((STEPS, 3)), L.Masking(0.0, name="masking"),
                                      L.Bidirectional(L.LSTM(4, return_sequences=True), name="bi"),
                                      L.TimeDistributed(L.Dense(2, activation="softmax"), name="head")]),
                    folder / "bi.keras", 1),
        "lstm": _save(keras.Sequential([keras.Input((STEPS - 2, 5)), L.LSTM(6, return_sequences=True, name="lstm"),
                                        L.Dense(2, name="head")]), folder / "lstm.keras", 2),
        "gru": _save(keras.Sequential([keras.Input((STEPS - 3, 4)),
                                       L.GRU(5, reset_after=False, return_sequences=True, name="gru"),
                                       L.Dense(3, name="head")]), folder / "gru.keras", 3),
        "dense": _save(keras.Sequential([keras.Input((5,)), L.Dense(6, name="d1"), L.Dense(1, name="d2")]),
                       folder / "dense.keras", 4),
    }


def _matched(report) -> list[str]:
    return [h["hypothesis"] for h in report.diagnosis["hypotheses"] if h["matches"]]


def _describe_changed(monkeypatch, name, change):
    """The oracle's description of layer ``name`` replaced by ``change(layer)``."""
    from keras_impl.verify import describe
    original = describe.describe_layer

    def changed(keras_layer, layer_name, inbound):
        described, shown = original(keras_layer, layer_name, inbound)
        return (change(described) if layer_name == name else described), shown
    monkeypatch.setattr(describe, "describe_layer", changed)


def test_a_backward_direction_moved_from_step_3_is_named_with_its_step(models, monkeypatch, tmp_path, capsys):
    """The oracle's backward copy moved by 0.01 from its 4th processing step on: backward, step 3 (input
    time 5 of 9), every row; the forward copy within its bound; the CLI draws the growth with --plot."""
    _backward_moved(monkeypatch)
    plot = tmp_path / "growth.png"
    rc, out, err = run_bilstm(["verify", models["bi"], "--json", tmp_path / "r.json", "--plot", plot], capsys)
    assert rc == 1, err
    from keras_impl.verify import VerifyReport
    import json
    d = VerifyReport.from_dict(json.loads((tmp_path / "r.json").read_text())).diagnosis
    assert d["layer"] == "bi" and d["local"]["fault"] == "local"
    forward, backward = d["directions"]
    assert forward["direction"] == "forward" and forward["first_step"] is None
    assert (backward["direction"], backward["first_step"], backward["first_time"]) == ("backward", 3, STEPS - 1 - 3)
    assert backward["rows"] == [0, 1, 2, 3]
    # the oracle's moved outputs are its loop's, not its cell's: from Keras's own states its step agrees
    assert (d["step"]["direction"], d["step"]["step"], d["step"]["finding"]) == ("backward", 3, "agrees")
    assert "backward direction: first outside the bound at processing step 3 (input time t=5)" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"error growth drawn: {plot}" in out


def test_keras_outputs_reversed_in_time_are_named(models, monkeypatch):
    """Keras's LSTM class made to return its sequence reversed (its call's signature kept: Keras reads it)."""
    import keras
    from keras_impl.verify import verify
    original = keras.layers.LSTM.call

    def reversed_call(self, sequences, initial_state=None, mask=None, training=False):
        return keras.ops.flip(original(self, sequences, initial_state, mask, training), axis=1)
    monkeypatch.setattr(keras.layers.LSTM, "call", reversed_call)
    report = verify(models["lstm"], seed=1)
    assert report.failed_layers[0] == "lstm" and report.diagnosis["local"]["fault"] == "local"
    assert _matched(report) == ["outputs reversed in time (a go_backwards sequence not flipped back)"]


def test_a_gru_of_the_other_reset_after_form_is_named(models, monkeypatch):
    """Keras's GRU is reset_after=False with bias b; the oracle told reset_after=True with bias [b, 0] (a
    converter's mistake the other way round) differs, and the hypothesis puts it back."""
    from dataclasses import replace
    from keras_impl.verify import verify

    def other_form(layer):
        kernel, recurrent_kernel, bias = layer.weights
        return replace(layer, options={**layer.options, "reset_after": True},
                       weights=(kernel, recurrent_kernel, np.stack([bias, np.zeros_like(bias)])))
    _describe_changed(monkeypatch, "gru", other_form)
    report = verify(models["gru"], seed=1)
    assert report.failed_layers[0] == "gru"
    assert _matched(report) == ["a GRU of the other reset_after form (bias carried over)"]


def test_lstm_weights_in_onnx_gate_order_are_named(models, monkeypatch):
    from dataclasses import replace
    from keras_impl.verify import verify
    from keras_impl.verify.hypotheses import LSTM_ONNX_ORDER_BACK

    def reordered(layer):
        blocks = [np.concatenate([np.split(w, 4, axis=-1)[i] for i in LSTM_ONNX_ORDER_BACK], axis=-1)
                  for w in layer.weights]
        return replace(layer, weights=tuple(blocks))
    _describe_changed(monkeypatch, "lstm", reordered)
    report = verify(models["lstm"], seed=1)
    assert _matched(report) == ["LSTM gates in ONNX's order (i, o, f, c) instead of Keras's (i, f, c, o)"]


def test_an_error_inherited_from_upstream_is_told_apart_from_a_local_fault(models, monkeypatch):
    """d1 in the oracle moved by 0.9 of its bound (it passes), towards d2's kernel signs, which d2's large
    weights multiply past d2's bound: d2 fails, but on Keras's own input it is right (inherited)."""
    import keras
    from keras_impl.verify import verify
    from reference.layers import registry
    kernel = np.sign(keras.saving.load_model(models["dense"]).get_layer("d2").get_weights()[0][:, 0])
    dense = registry.FORWARD["Dense"]

    def nudged(layer, inputs, masks, tape=None):
        y, mask = dense(layer, inputs, masks, tape)
        return (y + 0.9e-5 * max(1.0, np.abs(y).max()) * kernel if layer.name == "d1" else y), mask
    monkeypatch.setitem(registry.FORWARD, "Dense", nudged)
    _describe_changed(monkeypatch, "d2", lambda layer: type(layer)(layer.name, layer.kind, layer.inbound,
                                                                     layer.options, (layer.weights[0] * 3e3,
                                                                                     layer.weights[1])))
    monkeypatch.setattr(keras.layers.Dense, "call", _scaled_call(keras.layers.Dense.call, "d2", 3e3))
    report = verify(models["dense"], seed=1)
    assert report.failed_layers == ["d2"] and report.layers[0]["verdict"] == "pass"
    assert report.diagnosis["local"]["fault"] == "inherited"
    assert "inherited: fed Keras's own inputs, the oracle's layer is within its bound" in str(report)


def _scaled_call(call, name, factor):
    """Keras's Dense ``name`` computing with its kernel times ``factor`` (the oracle is told the same)."""
    def scaled(self, inputs, *args, **kwargs):
        if self.name != name:
            return call(self, inputs, *args, **kwargs)
        import keras
        return keras.ops.matmul(inputs, self.kernel * factor) + self.bias
    return scaled


@pytest.mark.backend_independent
def test_docs_name_every_hypothesis():
    from pathlib import Path
    from keras_impl.verify.hypotheses import HYPOTHESES
    doc = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text()
    assert [h.name for h in HYPOTHESES if f"   - {h.name}" not in doc] == []


def _backward_moved(monkeypatch, step=3, by=0.01):
    from reference import recurrent
    original = recurrent.rnn_run

    def moved(cell, steps, x, weights, states, mask=None, **options):
        out, final, cache = original(cell, steps, x, weights, states, mask, **options)
        if options.get("go_backwards"):
            out = out.copy()
            out[:, step:] += by
        return out, final, cache
    monkeypatch.setattr(recurrent, "rnn_run", moved)


def test_the_reproducer_runs_in_a_fresh_process_and_shows_the_fault(models, monkeypatch, tmp_path, capsys, backend):
    """--repro writes the failing Bidirectional alone (with its mask input), its inputs and the oracle's
    output; repro.py, run by a fresh Python with Keras and NumPy, exits 1 printing the difference, and 0 once
    the expected output is Keras's own (so its verdict can go either way). The second run is in this process:
    the fresh one has shown the folder self-contained, and a new interpreter would only import Keras again."""
    import os
    import runpy
    import subprocess
    import sys
    _backward_moved(monkeypatch)
    folder = tmp_path / "repro"
    rc, out, err = run_bilstm(["verify", models["bi"], "--repro", folder], capsys)
    assert rc == 1 and f"reproducer written: {folder}" in out, err
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["layer.keras", "inputs.npz", "expected.npz", "repro.py", "README.txt"])
    assert set(np.load(folder / "inputs.npz")) == {"x0", "mask"}
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "repro.py"], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1 and "Bidirectional 'bi'" in run.stdout and "DIFFERS" in run.stdout, run.stderr
    import keras
    model = keras.saving.load_model(folder / "layer.keras", safe_mode=True)
    data = np.load(folder / "inputs.npz")
    own = keras.ops.convert_to_numpy(model([data["x0"], data["mask"]], training=False))
    np.savez(folder / "expected.npz", y=own.astype(np.float64), allowed=np.float64(1e-5))
    capsys.readouterr()
    with pytest.raises(SystemExit) as again:
        runpy.run_path(str(folder / "repro.py"), run_name="__main__")
    printed = capsys.readouterr()
    assert again.value.code == 0 and "within the bound" in printed.out, printed.out + printed.err


@pytest.mark.parametrize("argv, message", [
    (["--plot", "growth.svg"], "--plot growth.svg: the figure is a PNG file, name it .png"),
    (["--repro", "taken"], "--repro taken already holds layer.keras: name a new or empty folder"),
])
def test_plot_and_repro_refusals_are_one_line(argv, message, models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "layer.keras").write_text("the user's own file")
    rc, out, err = run_bilstm(["verify", models["bi"], *argv], capsys)
    assert rc == 2 and err.strip().endswith(message) and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "layer.keras").read_text() == "the user's own file"


def test_a_backward_state_moved_in_keras_from_step_4_is_named_with_its_step(models, monkeypatch, backend):
    """Keras's own backward copy planted: its states (h and c) moved by 0.01 from its 5th processing step on
    (the loop unrolled so each step is a Python call on every backend): backward, processing step 4 (input
    time 4 of 9), the forward copy within its bound, no known convention matching."""
    import keras
    from keras.src import backend as keras_backend
    from keras_impl.verify import verify
    original = keras.layers.LSTM.inner_loop

    def planted(self, sequences, initial_state, mask, training=False):
        if not self.go_backwards:
            return original(self, sequences, initial_state, mask, training)
        calls = []

        def step(inputs, states):
            output, new_states = self.cell(inputs, states, training=training)
            calls.append(None)
            if len(calls) > 4:  # processing steps 4, 5, ...
                new_states = [s + 0.01 for s in new_states]
                output = new_states[0]
            return output, new_states
        # Reversed here rather than by go_backwards=True: Keras 3.15.1's torch loop cannot unroll a masked
        # go_backwards sequence (keras/src/backend/torch/rnn.py L95 flips a tuple). The outputs come in
        # processing order either way.
        flipped = None if mask is None else keras.ops.flip(mask, axis=1)
        return keras_backend.rnn(step, keras.ops.flip(sequences, axis=1), list(initial_state), mask=flipped,
                                 unroll=True, input_length=sequences.shape[1],
                                 zero_output_for_mask=self.zero_output_for_mask,
                                 return_all_outputs=self.return_sequences)
    monkeypatch.setattr(keras.layers.LSTM, "inner_loop", planted)
    report = verify(models["bi"], seed=1)
    d = report.diagnosis
    assert d["layer"] == "bi" and d["local"]["fault"] == "local"
    forward, backward = d["directions"]
    assert forward["first_step"] is None
    assert (backward["direction"], backward["first_step"], backward["first_time"]) == ("backward", 4, STEPS - 1 - 4)
    assert 0 in backward["rows"] and _matched(report) == []
    # both states moved at once: named as the backward direction's h and c at step 4, not as one gate
    step = d["step"]
    assert (step["direction"], step["step"], step["time"], step["state"], step["gate"]) == (
        "backward", 4, STEPS - 1 - 4, "h and c", None), step
    assert "state: h and c both diverge at step 4" in str(report)


def _lstm_layer(keras, **options):
    return keras.layers.LSTM(4, return_sequences=True, name="lstm", **options)


def test_keras2_hard_sigmoid_is_named(tmp_path, monkeypatch):
    """Keras computing Keras 2's hard_sigmoid for an LSTM's gates (its activation module's ``ops`` answering
    hard_sigmoid with clip(0.2 a + 0.5)): the hypothesis that scales the gates' pre-activations by 1.2 matches."""
    import keras
    from keras.src.activations import activations
    from keras_impl.verify import verify
    path = _save(keras.Sequential([keras.Input((5, 3)), _lstm_layer(keras, recurrent_activation="hard_sigmoid"),
                                   keras.layers.Dense(2, name="head")]), tmp_path / "hs.keras", 7)

    class Keras2Ops:
        def __getattr__(self, name):
            return getattr(keras.ops, name)

        @staticmethod
        def hard_sigmoid(x):
            return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)
    monkeypatch.setattr(activations, "ops", Keras2Ops())
    report = verify(path, seed=1)
    assert report.failed_layers[0] == "lstm" and report.diagnosis["local"]["fault"] == "local"
    assert _matched(report) == ["Keras 2's hard_sigmoid (clip(0.2 a + 0.5)) instead of Keras 3's (clip(a / 6 + 0.5))"]



def test_the_other_leading_mask_convention_is_named_where_keras_uses_it(backend):
    """Keras's LSTM called with a non-zero initial state on left-padded rows: before a row's first valid step
    it outputs h0 on JAX and 0 on TensorFlow and torch (reference/rnn.py). The oracle's layer takes h0; the
    hypothesis names the other convention exactly where this backend uses it."""
    import keras
    from keras_impl.parity.divergences import initial_output
    from keras_impl.verify.describe import describe_model
    from keras_impl.verify.hypotheses import matching
    from reference.layers import layer_forward
    model = keras.Sequential([keras.Input((6, 3)), _lstm_layer(keras)])
    randomise_weights(model, np.random.default_rng(8))
    layer = next(lay for lay in describe_model(model).graph.layers if lay.name == "lstm")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 6, 3)).astype("float32")
    h0, c0 = (rng.standard_normal((3, 4)).astype("float32") for _ in range(2))
    mask = np.arange(6)[None, :] >= np.array([0, 2, 4])[:, None]  # left padding: 0, 2 and 4 leading masked steps
    keras_out = keras.ops.convert_to_numpy(model.get_layer("lstm")(x, initial_state=[h0, c0], mask=mask))
    found = {h["hypothesis"]: h for h in matching(layer, [x, h0, c0], [mask, None, None], keras_out, 1e-5)}
    other = next(h for name, h in found.items() if name.startswith("the other leading-mask convention"))
    assert other["matches"] == (initial_output(backend) == "zeros"), other
    # the zero initial states verify's graph has: the conventions agree, and the entry does not apply
    assert not any(name.startswith("the other leading-mask") for name in
                   (h["hypothesis"] for h in matching(layer, [x], [mask], np.asarray(
                       layer_forward(layer, [x], [mask])[0]), 1e-5)))


def _gate_moved(block, weight, by=0.5, blocks=4, seed=11):
    """A change of the oracle's description: gate ``block``'s columns of weight ``weight`` (0 kernel, 1 recurrent
    kernel, 2 bias) moved by ``by`` times random values; Keras keeps its own, so Keras's gate is the one that
    differs from the oracle's (as if that gate's weights were altered in Keras after the oracle read them)."""
    from dataclasses import replace

    def change(layer):
        weights = [np.array(w, np.float64) for w in layer.weights]
        w = weights[weight]
        width = w.shape[-1] // blocks
        w[..., block * width:(block + 1) * width] += by * np.random.default_rng(seed).standard_normal(
            w[..., block * width:(block + 1) * width].shape)
        return replace(layer, weights=tuple(weights))
    return change


@pytest.mark.parametrize("block, gate", [(0, "z"), pytest.param(2, "hh", marks=pytest.mark.slow)])
def test_a_fault_in_one_gru_gate_is_named_as_that_gate(block, gate, models, monkeypatch):
    """The GRU's update gate's (z) or candidate's (hh) kernel columns moved in the oracle: that gate is named."""
    from keras_impl.verify import verify
    _describe_changed(monkeypatch, "gru", _gate_moved(block, 0, blocks=3))
    report = verify(models["gru"], seed=1)
    step = report.diagnosis["step"]
    assert report.failed_layers[0] == "gru" and (step["state"], step["gate"]) == ("h", gate), step


def _keras_gate_moved(name, block, weight):
    """Keras's layer ``name`` with gate ``block``'s columns of weight ``weight`` moved right after the oracle read
    its weights (``_gate_moved``'s change, made on Keras's side)."""
    from keras_impl.verify import describe
    original = describe.describe_layer

    def read_then_moved(keras_layer, layer_name, inbound):
        described = original(keras_layer, layer_name, inbound)
        if layer_name == name:
            keras_layer.set_weights([np.asarray(w, np.float32) for w in
                                     _gate_moved(block, weight)(described[0]).weights])
        return described
    return read_then_moved


@pytest.mark.parametrize("side, block, weight, state, gate", [
    # Keras's input gate's recurrent kernel: c diverges (from step 1: h0 = c0 = 0), h follows; i and g both stay
    # in range, only i's change is one of weights
    ("keras", 0, 1, "c", "i"),
    pytest.param("oracle", 1, 1, "c", "f", marks=pytest.mark.slow),  # the forget gate's, likewise
    pytest.param("oracle", 3, 0, "h", "o", marks=pytest.mark.slow),  # the output gate's kernel: h from step 0
])
def test_a_fault_in_one_lstm_gate_is_named_as_that_gate(side, block, weight, state, gate, models, monkeypatch):
    from keras_impl.verify import describe, verify
    if side == "keras":
        monkeypatch.setattr(describe, "describe_layer", _keras_gate_moved("lstm", block, weight))
    else:
        _describe_changed(monkeypatch, "lstm", _gate_moved(block, weight))
    report = verify(models["lstm"], seed=1)
    step = report.diagnosis["step"]
    assert report.failed_layers[0] == "lstm" and step["direction"] == "forward"
    assert (step["state"], step["gate"]) == (state, gate), step
    assert step["step"] == report.diagnosis["directions"][0]["first_step"]
    assert f"state: {state} diverges first at step {step['step']}" in str(report)
