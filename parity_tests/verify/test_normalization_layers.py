"""``bilstm verify`` on the normalization, activation, pooling and identity-at-inference layers, saved as .keras,
float32 and float64, on the backend in use.

Each layer is verified inside a small functional model whose branches all read one input (a different size for
every dimension), so one run checks many layers; weights are drawn by the project's recipe
(``randomise_weights``), and every normalization weight (gamma, beta, moving mean and variance) from [0.5, 2],
all different. A BiLSTM tagger with LayerNormalization runs over a padded batch, and a model holds every
activation Keras names, on a Dense and on an Activation layer each. Planted faults: an altered moving variance
and a LayerNormalization that drops its mask exit 1 naming the first layer they change.

Keras's torch backend averages the edge copies it pads with when "same" pooling needs an odd total padding
(keras/src/backend/torch/nn.py L274-283: replicate padding, then avg_pool with padding=0, for which
count_include_pad=False excludes nothing): such an AveragePooling layer FAILs on torch where a window holds
the copy beside two or more entries, and passes on jax and tensorflow, as a test checks.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights, run_bilstm

NORMALIZATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization")
# Keras 3.15.1 warns at every call of a LayerNormalization(rms_scaling=True) (keras/src/ops/nn.py L3113-3121);
# verify models that deprecated form as Keras computes it, and a user sees the warning, which tests ignore.
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`:UserWarning")


def draw_weights(model, rng):
    """The project's recipe, then every normalization weight from [0.5, 2] (moving variance included)."""
    randomise_weights(model, rng)
    for layer in model.layers:
        if type(layer).__name__ in NORMALIZATION:
            layer.set_weights([rng.uniform(0.5, 2.0, size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


def _branches(shape, layers):
    """A functional model: each of ``layers`` reads the one input of ``shape``."""
    import keras
    x = keras.Input(shape, name="x")
    return keras.Model(x, [layer(x) for layer in layers])


def _rank3():  # (B, 6, 5)
    L = __import__("keras").layers
    return _branches((6, 5), [
        L.BatchNormalization(name="bn"), L.BatchNormalization(scale=False, epsilon=0.01, name="bn_no_scale"),
        L.BatchNormalization(axis=1, center=False, name="bn_axis1"),
        L.LayerNormalization(name="ln"), L.LayerNormalization(axis=[1, 2], epsilon=0.1, name="ln_axes"),
        L.LayerNormalization(rms_scaling=True, name="ln_rms"),
        L.LayerNormalization(center=False, scale=False, name="ln_plain"),
        L.UnitNormalization(name="unit"), L.UnitNormalization(axis=[1, 2], name="unit_axes"),
        L.GroupNormalization(groups=5, name="gn_5"), L.GroupNormalization(groups=-1, center=False, name="gn_inst"),
        L.GroupNormalization(groups=3, axis=1, name="gn_axis1"),
        L.ReLU(name="relu"), L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, name="relu_all"),
        L.ReLU(max_value=6.0, name="relu6"), L.ReLU(negative_slope=1.5, name="relu_steep"),
        L.LeakyReLU(0.25, name="leaky"), L.ELU(0.7, name="elu"), L.PReLU(name="prelu"),
        L.PReLU(shared_axes=[1], name="prelu_shared"), L.Softmax(axis=1, name="softmax_1"),
        L.Softmax(axis=[1, 2], name="softmax_12"),
        L.MaxPooling1D(2, name="max1"), L.MaxPooling1D(3, strides=2, padding="same", name="max1_same"),
        L.AveragePooling1D(3, strides=1, name="avg1"), L.AveragePooling1D(3, padding="same", strides=1,
                                                                           name="avg1_same"),
        L.MaxPooling1D(2, data_format="channels_first", name="max1_cf"),
        L.GlobalAveragePooling1D(keepdims=True, name="gap1_keep"),
        L.GlobalAveragePooling1D(data_format="channels_first", name="gap1_cf"),
        L.GlobalMaxPooling1D(keepdims=True, name="gmp1_keep"),
        L.GaussianNoise(0.5, name="noise"), L.GaussianDropout(0.3, name="gdrop"), L.AlphaDropout(0.2, name="adrop"),
        L.ActivityRegularization(0.01, 0.02, name="actreg"), L.SpatialDropout1D(0.3, name="sdrop1"),
    ])


def _rank4():  # (B, 7, 6, 4)
    L = __import__("keras").layers
    return _branches((7, 6, 4), [
        L.BatchNormalization(axis=2, name="bn_axis2"), L.LayerNormalization(axis=[1, 3], name="ln_13"),
        L.UnitNormalization(axis=[1, 2], name="unit_12"), L.GroupNormalization(groups=2, name="gn_2"),
        L.GroupNormalization(groups=3, axis=2, name="gn_axis2"), L.PReLU(shared_axes=[1, 2], name="prelu_12"),
        L.Softmax(axis=[1, 3], name="softmax_13"),
        L.MaxPooling2D((2, 3), name="max2"), L.MaxPooling2D((3, 2), strides=(2, 1), padding="same", name="max2_same"),
        L.AveragePooling2D((2, 2), strides=(2, 3), name="avg2"),
        L.AveragePooling2D((3, 3), strides=1, padding="same", name="avg2_same"),
        L.AveragePooling2D(2, data_format="channels_first", name="avg2_cf"),
        L.GlobalAveragePooling2D(name="gap2"), L.GlobalMaxPooling2D(keepdims=True, name="gmp2_keep"),
        L.GlobalAveragePooling2D(data_format="channels_first", keepdims=True, name="gap2_cf"),
        L.SpatialDropout2D(0.4, name="sdrop2"),
    ])


def _rank5():  # (B, 3, 5, 4, 2)
    L = __import__("keras").layers
    return _branches((3, 5, 4, 2), [
        L.BatchNormalization(axis=-1, name="bn5"), L.MaxPooling3D((2, 2, 2), name="max3"),
        L.MaxPooling3D((1, 3, 2), strides=(1, 2, 1), padding="same", name="max3_same"),
        L.AveragePooling3D((3, 1, 3), strides=1, padding="same", name="avg3_same"),
        L.AveragePooling3D((2, 3, 2), strides=(1, 1, 2), name="avg3"),
        L.GlobalMaxPooling3D(name="gmp3"), L.GlobalAveragePooling3D(keepdims=True, name="gap3_keep"),
        L.SpatialDropout3D(0.2, name="sdrop3"),
    ])


def _masked():
    """Masks through every kind that passes one on, into a Softmax, a BiLSTM and GlobalAveragePooling1D."""
    import keras
    L = keras.layers
    ids = keras.Input((6,), dtype="int32", name="ids")
    h = L.Embedding(11, 6, mask_zero=True)(ids)
    h = L.GaussianNoise(0.3)(L.SpatialDropout1D(0.2)(h))
    h = L.BatchNormalization()(h)
    h = L.PReLU()(L.ReLU(negative_slope=0.2)(L.LeakyReLU(0.1)(L.ELU()(h))))
    h = L.UnitNormalization()(L.GroupNormalization(3)(h))
    h = L.ActivityRegularization(0.1)(L.AlphaDropout(0.1)(L.GaussianDropout(0.1)(h)))
    h = L.Bidirectional(L.LSTM(3, return_sequences=True))(h)
    return keras.Model(ids, L.Dense(2, activation="softmax")(L.GlobalAveragePooling1D()(h)))


def _masked_softmax():
    """Softmax given Embedding's (B, T) mask on (B, T, C) values: Keras lines the mask up with the LAST two axes
    (softmax.py L64-83), so it runs only where B = T = C (or B = 1): here 5, verified with --batch 5."""
    import keras
    ids = keras.Input((5,), dtype="int32", name="ids")
    return keras.Model(ids, keras.layers.Softmax(name="softmax_masked")(keras.layers.Embedding(11, 5, mask_zero=True)(ids)))


def _tagger():
    """A BiLSTM tagger with LayerNormalization over a padded batch (Sequential: the oracle's masks alone)."""
    import keras
    L = keras.layers
    return keras.Sequential([keras.Input((7,), dtype="int32"), L.Embedding(13, 5, mask_zero=True),
                             L.Bidirectional(L.LSTM(4, return_sequences=True)), L.LayerNormalization(name="norm"),
                             L.Bidirectional(L.LSTM(3, return_sequences=True), name="upper"),
                             L.TimeDistributed(L.Dense(4, activation="softmax"))])


def _activations():
    """Every activation the oracle names, on a Dense and on an Activation layer."""
    import keras

    from reference.layers import ACTIVATIONS
    L = keras.layers
    x = keras.Input((5, 8), name="x")
    outputs = []
    for name in ACTIVATIONS:
        outputs.append(L.Dense(6, activation=name, name=f"dense_{name}")(x))
        outputs.append(L.Activation(name, name=f"act_{name}")(x))
    return keras.Model(x, outputs)


def _odd_same_average():
    """AveragePooling1D, "same", a total padding of 1 (n = 8, k = 3, s = 2: the last window holds x6, x7 and the
    padding): Keras's torch backend averages x6, x7 and a copy of x7 there, the others x6 and x7."""
    import keras
    return _branches((8, 3), [keras.layers.AveragePooling1D(3, strides=2, padding="same", name="avg_odd")])


MODELS = {"rank3": _rank3, "rank4": _rank4, "rank5": _rank5, "masked": _masked, "masked_softmax": _masked_softmax,
          "tagger": _tagger,
          "activations": _activations, "odd_same_average": _odd_same_average}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    folder = tmp_path_factory.mktemp("norm_models")
    paths = {}
    with warnings.catch_warnings():  # rms_scaling's deprecation; masks dropped by pooling layers
        warnings.simplefilter("ignore", UserWarning)
        for seed, (name, make) in enumerate(MODELS.items()):
            path = folder / f"{name}.keras"
            draw_weights(make(), np.random.default_rng(40 + seed)).save(path)
            paths[name] = path
    return paths


def _verify(capsys, path, tmp_path, *extra):
    report_path = tmp_path / "report.json"
    rc, out, err = run_bilstm(["verify", path, "--json", report_path, "--batch", 5, "--seed", 2, *extra], capsys)
    rows = json.loads(report_path.read_text())["layers"] if report_path.exists() else []
    return rc, out + err, rows


def _passes(rc, text, rows):
    assert rc == 0, text
    assert rows and all(r["verdict"] == "pass" for r in rows), text
    return {r["layer"]: r for r in rows}


@pytest.mark.parametrize("model, dtype", [
    ("rank3", "float32"), ("rank3", "float64"), ("rank4", "float32"), ("rank5", "float32"),
    pytest.param("rank4", "float64", marks=pytest.mark.slow), pytest.param("rank5", "float64", marks=pytest.mark.slow)])
def test_single_layers_verify(model, dtype, saved, capsys, tmp_path, backend):
    result = _verify(capsys, saved[model], tmp_path, "--dtype", dtype)
    if (model, dtype, backend) == ("rank5", "float64", "tensorflow"):
        # TensorFlow has no float64 AvgPool3D kernel on the CPU: Keras's own error, refused in one line (exit 2)
        assert result[0] == 2 and "Keras cannot run the model" in result[1] and "AvgPool3D" in result[1]
        return
    rows = _passes(*result)
    import keras
    expected = {layer.name for layer in keras.saving.load_model(saved[model], compile=False).layers[1:]}
    assert set(rows) == expected  # every branch has its row
    if model == "rank3":
        assert "max_value=1.5, negative_slope=0.1, threshold=0.2" in rows["relu_all"]["options"]
        assert "rms_scaling" in rows["ln_rms"]["options"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_models_verify(dtype, saved, capsys, tmp_path, backend):
    rows = _passes(*_verify(capsys, saved["masked"], tmp_path, "--dtype", dtype))
    bound = json.loads((tmp_path / "report.json").read_text())["bound"]
    if dtype == "float64" and backend == "tensorflow":  # LeakyReLU(0.1), ReLU(negative_slope=0.2): float32 slopes
        assert bound["value"] == 1e-5 and "leaky_re_lu, re_lu with a float32-rounded constant" in bound["cause"]
    masks = {name: r["mask"] for name, r in rows.items()}
    embedding = next(name for name in masks if name.startswith("embedding"))  # Keras numbers it by what came before
    valid = masks[embedding].split("-> ")[1]
    assert "/" in valid and valid.split("/")[0] != valid.split("/")[1].split()[0]  # some steps are padding
    passing = [name for name in masks if not name.startswith(("embedding", "bidirectional", "global", "dense"))]
    assert len(passing) == 12 and all(masks[name] == f"{valid} -> {valid}" for name in passing), masks
    softmax = _passes(*_verify(capsys, saved["masked_softmax"], tmp_path, "--dtype", dtype))["softmax_masked"]
    assert softmax["mask"].split(" -> ")[0] == softmax["mask"].split(" -> ")[1] != "-"


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_tagger_with_layer_normalization_verifies(dtype, saved, capsys, tmp_path):
    rows = _passes(*_verify(capsys, saved["tagger"], tmp_path, "--dtype", dtype))
    assert rows["norm"]["class"] == "LayerNormalization"
    before, after = rows["norm"]["mask"].split(" -> ")
    assert before == after != "-"  # the mask goes through, with padding in it


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_every_activation_verifies(dtype, saved, capsys, tmp_path, backend):
    """Every activation passes but sparsemax, which FAILs on every backend: Keras 3.15.1's sparsemax sums the
    cumulative sums over the support where the threshold takes the one at its end (keras/src/backend/{jax,numpy,
    tensorflow,torch}/nn.py ``tau``), so its rows do not sum to 1; the oracle computes sparsemax."""
    from reference.layers import ACTIVATIONS
    rc, text, rows = _verify(capsys, saved["activations"], tmp_path, "--dtype", dtype)
    assert {f"{kind}_{name}" for name in ACTIVATIONS for kind in ("dense", "act")} == {r["layer"] for r in rows}
    if dtype == "float64" and backend == "tensorflow":  # gelu and leaky_relu hold float32 constants there
        assert json.loads((tmp_path / "report.json").read_text())["bound"]["value"] == 1e-5
    failed = {r["layer"]: r["max_abs_error"] for r in rows if r["verdict"] != "pass"}
    assert rc == 1 and set(failed) == {"dense_sparsemax", "act_sparsemax"}, text
    assert min(failed.values()) > 0.05  # not rounding: another function


def test_same_average_pooling_with_odd_padding(saved, capsys, tmp_path, backend):
    """Passes where Keras excludes the padding from the count (jax, tensorflow); FAILs on torch, whose Keras
    backend pads with copies of the edge and counts them (see the module's docstring)."""
    rc, text, rows = _verify(capsys, saved["odd_same_average"], tmp_path)
    if backend == "torch":
        assert rc == 1 and rows[0]["verdict"] == "FAIL" and "FAIL: avg_odd" in text, text
        assert rows[0]["max_abs_error"] > 1e-2  # another average, not rounding
    else:
        _passes(rc, text, rows)


def _altered(monkeypatch, layer_name, change):
    """The oracle's copy of ``layer_name``'s weights changed by ``change(list of arrays)``."""
    from keras_impl.verify import describe
    original = describe.describe_layer

    def altered(keras_layer, name, inbound):
        described, shown = original(keras_layer, name, inbound)
        if name == layer_name:
            w = [np.array(a) for a in described.weights]
            change(w)
            described = type(described)(described.name, described.kind, described.inbound, described.options,
                                        tuple(w))
        return described, shown
    monkeypatch.setattr(describe, "describe_layer", altered)


def _first_failing(text, whole_row=False):
    """The first row whose verdict is FAIL (a plain FAIL, or one with its note): its layer, or the whole row."""
    import re
    row = next(line for line in text.splitlines() if re.search(r"\sFAIL($|\s\()", line.rstrip()))
    return row if whole_row else row.split()[0]


def test_altered_moving_variance_fails_naming_the_layer(saved, capsys, tmp_path, monkeypatch):
    def change(w):
        w[3][1] *= 1.01  # the moving variance of channel 1 (gamma, beta, mean, variance)
    _altered(monkeypatch, "bn", change)
    rc, text, _ = _verify(capsys, saved["rank3"], tmp_path)
    assert rc == 1 and _first_failing(text) == "bn" and "FAIL: bn" in text, text


def test_a_dropped_mask_fails_naming_the_layer_that_needs_it(saved, capsys, tmp_path, monkeypatch):
    """LayerNormalization dropping its mask in the oracle: the LayerNormalization itself FAILs, its output mask
    not Keras's, and the next BiLSTM, run over the padding, FAILs too."""
    from reference.layers import normalization, registry
    dropped = lambda *a, **k: (normalization.layer_normalization(*a, **k)[0], None)  # noqa: E731
    monkeypatch.setitem(registry.FORWARD, "LayerNormalization", dropped)
    rc, text, _ = _verify(capsys, saved["tagger"], tmp_path)
    first = _first_failing(text, whole_row=True)
    assert rc == 1 and "LayerNormalization" in first and "Keras's output mask" in first, text
    import re
    assert re.search(r"layers within bounds; FAIL: .*\bupper\b", text), text


def test_an_activation_keras_saves_without_a_builtin_name_is_refused(tmp_path, capsys):
    """A registered function of the user's: no name the oracle knows, so exit 2, one line naming the layer."""
    import keras

    @keras.saving.register_keras_serializable(package="bilstm_tests", name="scaled_tanh")
    def scaled_tanh(x):
        return 2.0 * keras.ops.tanh(x)

    path = tmp_path / "custom.keras"
    x = keras.Input((4, 3))
    keras.Model(x, keras.layers.Dense(2, activation=scaled_tanh, name="own_head")(x)).save(path)
    rc, out, err = run_bilstm(["verify", path], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert "'own_head' of class Dense is not supported (activation=" in err and "scaled_tanh" in err


def test_the_layers_tensorflow_computes_with_float32_constants():
    """Named from the oracle's graph alone: leaky slopes float32 cannot hold, and gelu; not 0.25 or 1.5."""
    from keras_impl.verify.layers.activations import float32_constants_on_tensorflow
    from reference.layers import Layer, LayerGraph
    layers = [Layer("x", "InputLayer"), Layer("exact", "LeakyReLU", ("x",), {"negative_slope": 0.25}),
              Layer("steep", "ReLU", ("x",), {"negative_slope": 1.5, "max_value": None, "threshold": 0.0}),
              Layer("capped", "ReLU", ("x",), {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.0}),
              Layer("leaky", "LeakyReLU", ("x",), {"negative_slope": 0.1}),
              Layer("relu_leaky", "ReLU", ("x",), {"negative_slope": 0.2, "max_value": None, "threshold": 0.0}),
              Layer("dense_gelu", "Dense", ("x",), {"activation": "gelu"}),
              Layer("act_leaky", "Activation", ("x",), {"activation": "leaky_relu"}),
              Layer("act_tanh", "Activation", ("x",), {"activation": "tanh"})]
    graph = LayerGraph(("x",), tuple(layers), ("act_tanh",))
    assert float32_constants_on_tensorflow(graph) == ["leaky", "relu_leaky", "dense_gelu", "act_leaky"]


def test_the_memory_estimate_reads_pooling_and_normalization_configs(saved):
    """budget.py from the file's config alone: pooled shapes divided by the strides, global pooling to the channels,
    the other kinds keep their input's shape."""
    from keras_impl.verify.budget import estimate
    from keras_impl.verify.load import read_config
    needs = {n.name: n for n in estimate(read_config(saved["rank4"]), batch=2)}
    assert needs["max2"].outputs == 2 * 4 * 2 * 4            # (7, 6) pooled by strides (2, 3), rounded up
    assert needs["max2_same"].outputs == 2 * 4 * 6 * 4       # strides (2, 1)
    assert needs["avg2_cf"].outputs == 2 * 7 * 3 * 2         # channels_first: (7, 6, 4) -> (7, 3, 2)
    assert needs["gap2"].outputs == needs["gmp2_keep"].outputs == 2 * 4
    assert needs["gap2_cf"].outputs == 2 * 7
    assert needs["gn_2"].outputs == needs["bn_axis2"].outputs == 2 * 7 * 6 * 4


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_keras2_file_of_these_layers_verifies(dtype, capsys, tmp_path):
    """A tf_keras 2.21 .h5 (parity_tests/fixtures/make_keras2_fixtures.py ``normalization_pooling``): Keras 2's
    configs of these layers (LeakyReLU's ``alpha``, BatchNormalization's axis list) load and verify."""
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "fixtures" / "keras2" / "normalization_pooling.h5"
    rows = _passes(*_verify(capsys, path, tmp_path, "--dtype", dtype))
    assert "Keras 2 file" in json.loads((tmp_path / "report.json").read_text())["saved_by"]
    classes = {r["class"] for r in rows.values()}
    assert {"BatchNormalization", "LayerNormalization", "UnitNormalization", "LeakyReLU", "PReLU", "ELU", "ReLU",
            "GaussianNoise", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D"} <= classes
    assert rows["dense"]["options"].endswith("gelu") and rows["dense_1"]["options"].endswith("silu")
    assert rows["batch_normalization"]["mask"].endswith("valid")  # the Masking's mask reaches it
