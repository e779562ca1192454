"""Models in reduced precision and quantized by Keras, verified layer by layer against the float64 oracle.

The fixtures (parity_tests/fixtures/make_precision_fixtures.py): a masked BiLSTM classifier, Embedding(13, 6,
mask_zero) -> Bidirectional(LSTM(5)) -> Dense(3, softmax), with the same random float weights in float32,
mixed_float16 and mixed_bfloat16, and quantized by Keras to int8 and int4. Each layer has two errors (the
weights' own and the arithmetic's, keras_impl/verify/precision.py), each within a bound derived from the
arithmetic; planted faults (weights requantized with a wrong scale, a bfloat16 computation held to float16's
bound, a wrong dequantization) must FAIL.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from parity_tests.conftest import BACKEND
from parity_tests.fixtures.make_precision_fixtures import FOLDER, build

FLOAT = FOLDER / "float32.keras"
LAYERS = ["embed", "encoder", "head"]
# On JAX, Keras runs a model op by op and XLA compiles every op anew for each dtype and shape: each of these
# models costs 9 to 16 s there with the backend warm (about 1 s on TensorFlow and torch, measured on a shared
# 2-core CPU). The default suite runs them on TensorFlow and torch; `-m slow` (make test-full) on JAX too.


def runs_keras(test):
    """A test that runs one of the models in Keras: in the default suite on TensorFlow and torch, in
    `-m slow` on JAX."""
    return pytest.mark.slow(test) if BACKEND == "jax" else test


@pytest.fixture(scope="module", autouse=True)
def keras_runs_once_per_model():
    """Keras runs each model once per module (its outputs do not depend on the oracle's side, where the faults
    below are planted): a model with the same config, weights and inputs reuses its outputs."""
    import json

    from keras_impl.verify import compare
    run, cache = compare.keras_outputs, {}

    def once(model, described, inputs):
        key = (json.dumps(model.get_config(), sort_keys=True, default=str),
               tuple(np.asarray(w).tobytes() for w in model.get_weights()),
               tuple(np.asarray(x).tobytes() for x in inputs))
        if key not in cache:
            cache[key] = run(model, described, inputs)
        return cache[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compare, "keras_outputs", once)
        yield


def _verify(path, **options):
    from keras_impl.verify import verify
    return verify(path, batch=3, seed=5, **options)


def _by_layer(report) -> dict:
    return {row["layer"]: row for row in report.layers}


@pytest.mark.parametrize("policy, dtype", [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
@runs_keras
def test_mixed_precision_model_verifies_layer_by_layer(policy, dtype):
    report = _verify(FOLDER / f"{policy}.keras")
    rows = _by_layer(report)
    assert list(rows) == LAYERS and report.passed, str(report)
    for row in rows.values():
        assert row["precision"] == dtype
        runtime = row["runtime"]
        # a 16-bit computation: an error of the order of its ulp (not 0: Keras did round), within the bound
        assert runtime["unit"] == f"{dtype} ulp" and 0.05 < runtime["in_units"] <= runtime["bound"], row
        assert row["weights"]["unit"] == "same weights"  # mixed precision keeps float32 variables
    assert report.decisions and report.decisions[0]["agree"] == report.decisions[0]["total"]


@pytest.mark.parametrize("mode", ["int8", pytest.param("int4", marks=pytest.mark.slow)])
@runs_keras
def test_quantized_model_verifies_with_both_errors(mode):
    report = _verify(FOLDER / f"{mode}.keras", float_model=FLOAT)
    rows = _by_layer(report)
    assert report.passed, str(report)
    assert [rows[n]["precision"] for n in LAYERS] == [mode, "float32", mode]  # Keras leaves the LSTM in float32
    for name in ("embed", "head"):
        weights = rows[name]["weights"]
        # the quantized weights differ from the float ones (a real error, in half steps) within a half step
        assert 0 < weights["in_units"] <= weights["bound"] and weights["unit"].startswith("half steps"), rows[name]
        assert 0.5 < weights["each_weight"]["in_units"] <= 1 + 1e-3  # the worst of 30+ weights: near half a step
    assert rows["embed"]["weights"]["in_units"] > 0.5  # a lookup shows the rounding whole: near half a step
    arithmetic = rows["head"]["runtime"]
    if mode == "int8":  # Keras quantizes the Dense's inputs too: an error of input steps, not of float32
        assert arithmetic["unit"] == "half input steps" and 0.01 < arithmetic["in_units"] <= arithmetic["bound"]
    else:
        assert arithmetic["unit"] == "float32 ulp"
    assert rows["encoder"]["weights"]["unit"] == "same weights"
    outputs = report.precision["outputs"][0]
    assert outputs["weights_error"] > 0 and outputs["arithmetic_error"] > 0


@runs_keras
def test_quantized_file_alone_reports_the_weights_error_as_not_measured():
    report = _verify(FOLDER / "int8.keras")
    rows = _by_layer(report)
    assert report.passed and rows["head"]["weights"]["verdict"] == "-" and rows["head"]["weights"]["error"] is None
    assert "--float-model" in rows["head"]["weights"]["bound_text"]
    assert rows["head"]["runtime"]["verdict"] == "pass"


@pytest.fixture(scope="module")
def float8_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("float8") / "float8.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LSTM has no quantize method: kept in float32
        build(quantize="float8").save(path)
    return path


@pytest.mark.slow
def test_float8_dense_verifies(float8_file):
    rows = _by_layer(_verify(float8_file))
    head = rows["head"]
    assert head["precision"] == "float8" and head["verdict"] == "pass", head
    # float8 keeps the float kernel: both errors measured without a float model, both real
    assert head["weights"]["in_units"] > 0 and head["runtime"]["unit"] == "half e4m3 input ulps"
    assert 0 < head["runtime"]["in_units"] <= head["runtime"]["bound"]


@pytest.mark.backend_independent  # NumPy against keras.quantizers.unpack_int4: integer bit operations
def test_unpacked_int4_nibbles_are_keras_own():
    import keras

    from keras_impl.verify.dequantize import unpack_int4
    packed = np.random.default_rng(3).integers(-128, 128, size=(4, 5)).astype(np.int8)
    expected = keras.ops.convert_to_numpy(keras.quantizers.unpack_int4(packed, 9, axis=-1))
    np.testing.assert_array_equal(unpack_int4(packed, 9), expected)


# Planted faults: each must FAIL.

def _weights_file(path: Path) -> h5py.File:
    """The weights of a .keras file (a zip holding model.weights.h5), read in memory."""
    return h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")


@runs_keras
def test_weights_requantized_with_a_wrong_scale_fail(tmp_path):
    """The head's int8 values rounded with 1.1 x the scale the file stores (written straight into a copy of the
    file): the weights' error FAILs, while Keras's arithmetic on those weights is still right."""
    kernel, scale = "layers/dense/vars/0", "layers/dense/vars/2"  # Dense int8: kernel, bias, kernel_scale
    w = _weights_file(FLOAT)[kernel][()]
    with _weights_file(FOLDER / "int8.keras") as stored:
        s = stored[scale][()]
        weights = tmp_path / "model.weights.h5"
        with h5py.File(weights, "w") as out:
            for name in stored:
                stored.copy(name, out)
            out[kernel][...] = np.clip(np.round(w * s * 1.1), -127, 127).astype(np.int8)
    path = tmp_path / "wrong_scale.keras"
    with zipfile.ZipFile(FOLDER / "int8.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, weights.read_bytes() if item == "model.weights.h5" else src.read(item))
    rows = _by_layer(_verify(path, float_model=FLOAT))
    assert rows["head"]["weights"]["verdict"] == "FAIL" and rows["head"]["runtime"]["verdict"] == "pass", rows["head"]
    # 10% of the largest weight is 12.7 int8 steps: the weights themselves show it, whatever softmax hides
    assert rows["head"]["weights"]["each_weight"]["in_units"] > 10
    assert rows["embed"]["verdict"] == "pass"


@runs_keras
def test_bfloat16_computation_held_to_float16_bound_fails(monkeypatch):
    """A model that claims float16 but computes in bfloat16 (8 times float16's ulp): every layer FAILs."""
    from keras_impl.verify import precision
    claimed = precision.model_precision

    def as_float16(described):
        return {k: "float16" if v == "bfloat16" else v for k, v in claimed(described).items()}

    monkeypatch.setattr(precision, "model_precision", as_float16)
    report = _verify(FOLDER / "mixed_bfloat16.keras")
    rows = _by_layer(report)
    assert not report.passed
    for name in LAYERS:
        assert rows[name]["runtime"]["verdict"] == "FAIL" and rows[name]["runtime"]["unit"] == "float16 ulp", rows[name]


@pytest.mark.parametrize("mode", ["int8", pytest.param("int4", marks=pytest.mark.slow)])
@runs_keras
def test_a_wrong_dequantization_fails(mode, monkeypatch):
    """The oracle's dequantization done wrongly (int8: each output channel given its neighbour's scale; int4:
    the two nibbles of a byte swapped): Keras's arithmetic no longer matches, and the layers FAIL."""
    from keras_impl.verify import dequantize
    if mode == "int8":
        right = dequantize._int_values_and_steps

        def neighbours_scale(layer, stored, scale_name, length, axis_of_groups):
            values, step = right(layer, stored, scale_name, length, axis_of_groups)
            rolled = np.roll(step, 1, axis=1 - axis_of_groups)  # Dense: along the units; Embedding: the rows
            return values / step * rolled, rolled
        monkeypatch.setattr(dequantize, "_int_values_and_steps", neighbours_scale)
    else:
        right_unpack = dequantize.unpack_int4

        def swapped(packed, length):
            nibbles = right_unpack(packed, 2 * np.shape(packed)[-1])
            pairs = nibbles.reshape(*nibbles.shape[:-1], -1, 2)[..., ::-1]
            return pairs.reshape(nibbles.shape)[..., :length]
        monkeypatch.setattr(dequantize, "unpack_int4", swapped)
    rows = _by_layer(_verify(FOLDER / f"{mode}.keras"))
    assert rows["embed"]["runtime"]["verdict"] == "FAIL" and rows["head"]["runtime"]["verdict"] == "FAIL"


def test_options_that_do_not_apply_are_refused():
    """Refused from the file's config, before Keras loads the model."""
    from keras_impl.verify import VerifyRefusal
    with pytest.raises(VerifyRefusal, match="'embed' .Embedding. computes in mixed_float16: the model is verified "
                                            "in its own precision, leave out --dtype float64"):
        _verify(FOLDER / "mixed_float16.keras", dtype="float64")
    with pytest.raises(VerifyRefusal, match="--float-model is for a model in reduced precision or quantized"):
        _verify(FLOAT, float_model=FLOAT)


@pytest.mark.slow
def test_a_float_model_in_reduced_precision_is_refused():
    from keras_impl.verify import VerifyRefusal
    with pytest.raises(VerifyRefusal, match="--float-model .* computes in float16"):
        _verify(FOLDER / "int8.keras", float_model=FOLDER / "mixed_float16.keras")


def test_fixtures_are_the_documented_models():
    """The committed files hold what make_precision_fixtures.py writes: the same float weights in float32 and in
    each mixed policy, read from the files themselves."""
    import json
    with _weights_file(FLOAT) as float_weights:
        for policy in ("mixed_float16", "mixed_bfloat16"):
            config = json.loads(zipfile.ZipFile(FOLDER / f"{policy}.keras").read("config.json"))
            layers = [x["config"] for x in config["config"]["layers"] if x["config"]["name"] in LAYERS]
            assert len(layers) == 3 and {x["dtype"]["config"]["name"] for x in layers} == {policy}
            with _weights_file(FOLDER / f"{policy}.keras") as other:
                found = []
                float_weights.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
                assert len(found) == 9
                for name in found:
                    np.testing.assert_array_equal(float_weights[name][()], other[name][()])


@pytest.mark.backend_independent  # refused from the file's config, before any backend runs
@pytest.mark.parametrize("name, says", [("int8", "layer 'embed' (Embedding) is quantized (int8)"),
                                        ("mixed_float16", "layer 'embed' (Embedding) computes in mixed_float16")])
def test_export_refuses_a_reduced_precision_model_in_one_line(name, says, tmp_path, capsys):
    from parity_tests.conftest import nonblank_lines, run_bilstm
    code, _, err = run_bilstm(["export", FOLDER / f"{name}.keras", "--format", "onnx", "--out", tmp_path / "o"],
                              capsys)
    assert code == 2 and says in err and "export takes a float32 model" in err, err
    assert len(nonblank_lines(err)) == 1 and not (tmp_path / "o").exists()
