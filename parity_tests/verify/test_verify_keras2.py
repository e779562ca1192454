"""``bilstm verify`` on Keras 2 (tf.keras) ``.h5`` files of the tutorial's models (LSTM, GRU, SimpleRNN), on the backend in use.

The files were saved by tf_keras 2.21 (Keras 2) with random non-zero weights by
``parity_tests/fixtures/make_keras2_fixtures.py``. Keras 3 cannot load tf.keras's
LSTM config as it is (``time_major``); ``keras_impl/verify/load.py`` drops
``time_major=False`` from a temporary copy and lets Keras's own loader do the rest.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from keras_impl.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras2"
NAMES = ("lstm", "lstm_reversed", "bilstm_concat", "bilstm_sum", "bilstm_ave", "bilstm_mul", "bilstm_concat_masked",
         "gru", "gru_reset_before_reversed", "bigru_concat_masked", "simple_rnn", "birnn_sum")
# (functional_concat_masked.h5 and lstm_hard_sigmoid.h5 have their own tests, below)
CELL_CLASS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN", "bilstm": "LSTM", "bigru": "GRU", "birnn": "SimpleRNN"}


@pytest.mark.parametrize("name", NAMES)
def test_keras2_fixture_verifies(name, capsys, tmp_path, backend):
    path = FIXTURES / f"{name}.h5"
    with h5py.File(path, "r") as f:  # a genuine Keras 2 file, small enough to commit
        assert str(f.attrs["keras_version"]).startswith("2.")
        assert '"time_major"' in str(f.attrs["model_config"])
    assert path.stat().st_size < 100_000
    report_path = tmp_path / "r.json"
    rc = main(["verify", str(path), "--json", str(report_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads(report_path.read_text())
    assert "Keras 2 file" in report["saved_by"] and report["backend"] == backend
    kinds = [r["class"] for r in report["layers"]]
    bidirectional = name.startswith("bi")
    cell = CELL_CLASS[next(prefix for prefix in sorted(CELL_CLASS, key=len, reverse=True) if name.startswith(prefix))]
    recurrent = "Bidirectional" if bidirectional else cell
    assert kinds == (["Masking"] if name.endswith("masked") else []) + [recurrent, "TimeDistributed"]
    options = report["layers"][-2]["options"]
    if bidirectional:
        assert f"{cell}, merge={name.split('_')[1]}" in options
    if name.endswith("reversed"):
        assert "go_backwards=1" in options
    assert ("reset_after=False" in options) == ("reset_before" in name)
    assert all(r["verdict"] == "pass" for r in report["layers"])


def test_keras2_time_major_true_is_refused(tmp_path, capsys):
    source = FIXTURES / "lstm.h5"
    path = tmp_path / "time_major.h5"
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = str(f.attrs["model_config"]).replace('"time_major": false', '"time_major": true')
    rc = main(["verify", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "time_major=True" in err and "'lstm'" in err



def test_keras2_hard_sigmoid_is_refused(capsys):
    """Keras 2's hard_sigmoid is clip(0.2 a + 0.5, 0, 1), Keras 3's clip(a / 6 + 0.5, 0, 1): Keras 3 runs
    another function under the same name, so a Keras 2 file that uses it is refused, not verified."""
    path = FIXTURES / "lstm_hard_sigmoid.h5"
    with h5py.File(path, "r") as f:
        assert str(f.attrs["keras_version"]).startswith("2.") and "hard_sigmoid" in str(f.attrs["model_config"])
    rc = main(["verify", str(path)])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == "" and captured.err.count("\n") == 1
    assert "'lstm' of class LSTM" in captured.err and "recurrent_activation='hard_sigmoid' in a Keras 2 file" in captured.err


def test_keras2_functional_with_masked_concatenate_verifies_in_a_fresh_process(fresh_concat_verifies):
    """Keras 3.15.1's loader names Concatenate's mask op after the Keras 2 layer and fails ('The name
    "concatenate" is used 2 times in the model') in a fresh process, which is what the command runs in;
    load.py moves Keras's name counter first. Checked in a new interpreter (conftest.py: its first call), as
    in this one the counter has moved."""
    assert not fresh_concat_verifies.get("timed_out"), "the fresh interpreter's verifies ran past their time"
    run = fresh_concat_verifies["plain"]
    assert run["code"] == 0, run["stdout"] + run["stderr"]
    assert "5/5 layers within bounds" in run["stdout"]
    for row in ("Embedding", "merge=concat", "merge=sum", "Concatenate", "Dense(3, softmax)"):
        assert row in run["stdout"]


def test_keras2_attention_score_mode_stays_a_string(monkeypatch):
    """Keras 3.15.1's .h5 loader turns score_mode='dot' into the function keras.layers.dot, and Attention then
    refuses it ('Invalid value for argument score_mode'): load.py keeps the string. Loaded here past the layer
    scan (verify's oracle check, not Keras's loading, is what decides whether Attention is verified)."""
    from keras_impl.verify import load, zoo
    monkeypatch.setattr(load, "scan_config", lambda *args, **kwargs: None)
    model, _, saved_by = load.load_model(FIXTURES / "zoo_bilstm_attention.h5")
    assert "Keras 2 file" in saved_by
    (attention,) = [layer for layer in model.layers if type(layer).__name__ == "Attention"]
    assert attention.score_mode == "dot"
    y = model.predict(zoo.inputs("bilstm_attention", "small")[0], verbose=0)
    assert y.shape == (3, 3) and np.allclose(y.sum(axis=1), 1.0, atol=1e-5)


def test_keras2_nested_model_layers_are_read():
    """A nested model's layers are walked like the others (time_major, Keras 2's markers, Concatenate names):
    the siamese fixture's LSTM sits inside its nested encoder."""
    from keras_impl.verify.load import keras2_markers, read_config
    assert "time_major" in keras2_markers(read_config(FIXTURES / "zoo_siamese_shared.h5"))


def test_keras2_nested_model_called_twice_is_wired_as_saved(monkeypatch):
    """Keras 2 numbers a nested model's calls from 1 (node 0 is its own), Keras 3 from 0: read as they are,
    the siamese fixture's shared Dense would take its input from the wrong call, or none ("disconnected
    nodes"). Loaded past the layer scan, its output must be the model recomputed by hand from its layers."""
    from keras_impl.verify import load, zoo
    monkeypatch.setattr(load, "scan_config", lambda *args, **kwargs: None)
    model, _, _ = load.load_model(FIXTURES / "zoo_siamese_shared.h5")
    left, right = zoo.inputs("siamese_shared", "small", seed=4)
    encoder, project = model.get_layer("encoder"), model.get_layer("project")
    head = model.layers[-1]
    import keras
    branches = [keras.ops.convert_to_numpy(project(encoder(ids))) for ids in (left, right)]
    by_hand = keras.ops.convert_to_numpy(head(np.concatenate(branches, axis=-1)))
    assert np.allclose(model.predict([left, right], verbose=0), by_hand, atol=1e-6)
    assert not np.allclose(model.predict([left, right], verbose=0), model.predict([right, left], verbose=0))


def test_keras2_robust_masking_attention_is_refused(tmp_path, monkeypatch):
    """tf_keras's softmax_robust_masking=True masks the scores otherwise than Keras 3 does: refused by name."""
    from keras_impl.verify import load
    from keras_impl.verify.errors import VerifyRefusal
    monkeypatch.setattr(load, "scan_config", lambda *args, **kwargs: None)
    path = tmp_path / "robust.h5"
    path.write_bytes((FIXTURES / "zoo_bilstm_mha.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        config = str(f.attrs["model_config"])
        assert '"softmax_robust_masking": false' in config
        f.attrs["model_config"] = config.replace('"softmax_robust_masking": false', '"softmax_robust_masking": true')
    with pytest.raises(VerifyRefusal, match="'multi_head_attention' of class MultiHeadAttention is not supported "
                                            r"\(softmax_robust_masking=True in a Keras 2 file"):
        load.load_model(path)
