"""The test zoo (``keras_impl/verify/zoo.py``) verified whole by ``bilstm verify``, on the backend in use.

Each zoo model (IMDB BiLSTM, CNN-BiLSTM, CRNN OCR, CTC speech, BiLSTM with Attention and with
MultiHeadAttention over a padded batch, LayerNormalization tagger, ConvLSTM next-frame, a shared layer and
a nested sub-model), at its small size with every weight drawn from a seed, is saved as ``.keras`` and
verified through the command, as a user would; its Keras 2 ``.h5`` (``parity_tests/fixtures/keras2/
zoo_<name>.h5``, made by tf_keras from the same builder by ``make_keras2_fixtures.py``) too. Each must exit
0 with every layer within its bound, and the report must show every layer the model is made of (the model
verified whole). ``-m slow`` adds each model at its realistic size (the benchmark's, ``bilstm bench oracle``).

Until the oracle has a model's layers (issue 17), its test fails with verify's refusal, naming the layer.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from keras_impl.verify import zoo
from parity_tests.conftest import run_bilstm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras2"


def layer_classes(model) -> set[str]:
    """The Keras classes a whole verify shows: every layer but the inputs, nested models by their own layers."""
    import keras
    classes = set()
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            classes |= layer_classes(layer)
        elif type(layer).__name__ != "InputLayer":
            classes.add(type(layer).__name__)
    return classes


def verify_passes(path: Path, tmp_path: Path, capsys, *extra) -> dict:
    """``bilstm verify PATH`` exits 0 with every layer within its bound; its JSON report."""
    report_path = tmp_path / "report.json"
    code, out, err = run_bilstm(["verify", path, "--json", report_path, *extra], capsys)
    assert code == 0, f"bilstm verify {path.name} exited {code}: {err.strip() or out}"
    report = json.loads(report_path.read_text())
    for row in report["layers"]:
        assert row["verdict"] == "pass" and row["max_abs_error"] <= row["allowed"], row
    return report


def shown_classes(report: dict) -> set[str]:
    return {row["class"] for row in report["layers"]}


def check_verifies_whole(name: str, size: str, tmp_path: Path, capsys, backend: str) -> None:
    model = zoo.build(name, size, seed=7)
    # the zoo's inputs fit the model it builds (the benchmark feeds them to both forwards)
    xs = zoo.inputs(name, size, seed=7)
    assert [tuple(x.shape[1:]) for x in xs] == [tuple(t.shape[1:]) for t in model.inputs]
    path = tmp_path / f"{name}.keras"
    model.save(path)
    report = verify_passes(path, tmp_path, capsys, "--batch", zoo.dims(name, size)["batch"])
    assert report["backend"] == backend
    missing = layer_classes(model) - shown_classes(report)
    assert not missing, f"{name}: the report has no row of {sorted(missing)}"


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_model_verifies_from_keras_file(name, tmp_path, capsys, backend):
    check_verifies_whole(name, "small", tmp_path, capsys, backend)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_model_verifies_at_realistic_size(name, tmp_path, capsys, backend):
    check_verifies_whole(name, "realistic", tmp_path, capsys, backend)


# Every Keras 2 file in make test-full; in the default suite three that cover the load fixes and the layer
# families between them (convolutions and reshapes, attention, a nested model called twice).
KERAS2_DEFAULT = ("crnn_ocr", "bilstm_mha", "siamese_shared")


@pytest.mark.parametrize("name", [n if n in KERAS2_DEFAULT else pytest.param(n, marks=pytest.mark.slow)
                                  for n in zoo.NAMES])
def test_zoo_keras2_fixture_verifies(name, tmp_path, capsys, backend):
    path = FIXTURES / f"zoo_{name}.h5"
    with h5py.File(path, "r") as f:  # a genuine Keras 2 file, small enough to commit
        assert str(f.attrs["keras_version"]).startswith("2.")
    assert path.stat().st_size < 100_000
    report = verify_passes(path, tmp_path, capsys)
    assert "Keras 2 file" in report["saved_by"] and report["backend"] == backend
    wanted = set(zoo.ZOO[name].layers) - {"Sequential", "LSTM", "GRU"}  # the cells show inside Bidirectional's row
    assert wanted <= shown_classes(report), f"{name}: no row of {sorted(wanted - shown_classes(report))}"


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_keras2_fixture_computes_what_keras2_computed(name, monkeypatch):
    """Keras 3 reads each Keras 2 file (``keras_impl/verify/load.py``: time_major, Attention's score_mode,
    MultiHeadAttention's call, a nested model's node numbers) into a model whose output is the one tf_keras
    computed when it saved the file (``zoo_<name>.npz``): verify compares Keras 3 with the oracle, this
    holds Keras 3 to Keras 2. Loaded past the layer scan, which only says whether the oracle has the layers."""
    from keras_impl.verify import load
    monkeypatch.setattr(load, "scan_config", lambda *args, **kwargs: None)
    model, _, _ = load.load_model(FIXTURES / f"zoo_{name}.h5")
    saved = np.load(FIXTURES / f"zoo_{name}.npz")
    xs = [saved[f"x{i}"] for i in range(len(model.inputs))]
    y = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    np.testing.assert_allclose(y, saved["y"], rtol=0, atol=1e-5 * max(1.0, float(np.abs(saved["y"]).max())))


# ---- the zoo itself (what the tests and the benchmark rely on) ----

@pytest.mark.backend_independent
@pytest.mark.parametrize("name", ("bilstm_classifier", "bilstm_attention", "bilstm_mha", "tagger_layernorm",
                                  "siamese_shared"))
@pytest.mark.parametrize("size", zoo.SIZES)
def test_zoo_padded_inputs(name, size):
    """Embedding(mask_zero) models get ids in [1, vocab) then trailing 0 padding: the first sequence full, the
    last one step long, so every mask regime is run."""
    dims = zoo.dims(name, size)
    for ids in zoo.inputs(name, size, seed=3):
        assert ids.shape == (dims["batch"], dims["steps"]) and ids.dtype == np.int32
        valid = ids != 0
        assert valid[0].all() and valid[-1].sum() == 1
        assert np.array_equal(valid, np.sort(valid, axis=1)[:, ::-1])  # padding only at the end
        assert ids.max() < dims["vocab"]
    assert all(np.array_equal(a, b) for a, b in zip(zoo.inputs(name, size, seed=3), zoo.inputs(name, size, seed=3)))


@pytest.mark.backend_independent
def test_zoo_refuses_unknown_names_and_sizes():
    with pytest.raises(ValueError, match="unknown zoo model 'nope'"):
        zoo.dims("nope")
    with pytest.raises(ValueError, match="size must be one of small, realistic"):
        zoo.dims("crnn_ocr", "huge")


def test_zoo_weights_are_seeded_nonzero_and_batchnorm_variances_positive():
    """Every weight (biases, gammas, betas, moving statistics included) is drawn from the seed, non-zero; a
    BatchNormalization's moving variance lies in [0.5, 2]."""
    import keras
    first, again, other = (zoo.build("cnn_bilstm", "small", seed=s) for s in (5, 5, 6))
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights()))
    assert all(not np.array_equal(a, b) for a, b in zip(first.get_weights(), other.get_weights()))
    assert all(np.all(w != 0) for w in first.get_weights())
    norm = next(layer for layer in first.layers if type(layer).__name__ == "BatchNormalization")
    variance = keras.ops.convert_to_numpy(norm.moving_variance)
    assert variance.min() >= 0.5 and variance.max() <= 2.0 and len(np.unique(variance)) == variance.size
