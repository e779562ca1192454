"""``bilstm verify`` on the reshaping and merging layers (reference/layers/reshaping.py, merging.py), on the backend
in use, float32 and float64.

The models are built here with every weight drawn by the project's recipe (``randomise_weights``: biases too, so a
masked step's values are not zeros), a different size for every dimension, saved as .keras and verified:

    sequence_reshapes   Masking -> Dense, then each reshaping layer on (B, T, D) (a same-shape Reshape, which keeps
                        the mask on JAX, before an LSTM that reads it), ZeroPadding1D before an LSTM
    image_reshapes      each 2-D reshaping layer on (B, H, W, C), both data formats, nearest and bilinear
    masked_merges       every merge layer on three or four masked inputs of different lengths (and unmasked ones),
                        broadcast ranks, Concatenate on the time and the last axis, Dot (axes, normalize); LSTMs
                        after merges check the masks Keras passes on
    bilstm_branches     Embedding(mask_zero) -> two BiLSTMs merged by Add, Average and Concatenate(axis=1)
    encoder_decoder     Sequential: Masking -> LSTM -> RepeatVector -> LSTM -> TimeDistributed(Dense)
    crnn                Permute -> Reshape -> BiLSTM -> Reshape -> Flatten -> Dense, as a CRNN reshapes

Each layer's output and output mask must match the oracle's; a planted fault (a wrong axis, a dropped mask, a
stand-in for masked entries ignored, bilinear taken for nearest) makes verify exit 1 naming the layer; an
interpolation the oracle does not model and a 3-D layer exit 2 naming the layer.
"""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights, run_bilstm

pytest.importorskip("keras")


def _models():
    import keras
    L = keras.layers

    def sequence_reshapes():
        x = keras.Input((7, 6))
        d = L.Dense(6, name="dense")(L.Masking(0.0)(x))  # passes the mask; its masked rows are its bias
        outs = [L.Reshape((3, 14), name="reshape_3x14")(d), L.Permute((2, 1), name="permute")(d),
                L.Flatten(name="flatten")(d), L.Cropping1D((1, 2), name="cropping1d")(d),
                L.UpSampling1D(3, name="up_sampling1d")(d), L.Flatten(data_format="channels_first",
                                                                      name="flatten_cf")(d)]
        padded = L.ZeroPadding1D((2, 1), name="zero_padding1d")(d)
        outs.append(L.LSTM(4, return_sequences=True, name="lstm_after_padding")(padded))
        same = L.Reshape((7, 6), name="same_shape")(d)  # JAX hands back the same array: the mask stays on it
        outs.append(L.LSTM(3, return_sequences=True, name="lstm_after_same_shape")(same))
        outs.append(L.LSTM(2, name="lstm_after_reshape")(outs[0]))
        return keras.Model(x, outs)

    def image_reshapes():
        x = keras.Input((5, 4, 3))  # (H, W, C), or (C=5, H=4, W=3) to the channels_first layers
        return keras.Model(x, [
            L.ZeroPadding2D(((1, 2), (0, 3)), name="zero_padding2d")(x),
            L.ZeroPadding2D(((2, 0), (1, 1)), data_format="channels_first", name="zero_padding2d_cf")(x),
            L.Cropping2D(((1, 0), (1, 2)), name="cropping2d")(x),
            L.Cropping2D(((0, 1), (1, 0)), data_format="channels_first", name="cropping2d_cf")(x),
            L.UpSampling2D((2, 3), name="up_sampling2d_nearest")(x),
            L.UpSampling2D((3, 2), interpolation="bilinear", name="up_sampling2d_bilinear")(x),
            L.UpSampling2D((2, 4), interpolation="bilinear", data_format="channels_first",
                           name="up_sampling2d_bilinear_cf")(x),
            L.UpSampling2D((1, 2), data_format="channels_first", name="up_sampling2d_nearest_cf")(x),
            L.Permute((3, 1, 2), name="permute_3d")(x),
            L.Flatten(data_format="channels_first", name="flatten_4d_cf")(x),
            L.Reshape((-1, 6), name="reshape_free_axis")(x)])

    def masked_merges():
        a, b, c = keras.Input((6, 4), name="a"), keras.Input((6, 4), name="b"), keras.Input((6, 4), name="c")
        e = keras.Input((3, 4), name="e")
        da, db, dc = (L.Dense(5, name=f"dense_{n}")(L.Masking(0.0, name=f"masking_{n}")(t))
                      for n, t in (("a", a), ("b", b), ("c", c)))
        de = L.Dense(5, name="dense_e")(L.Masking(0.0, name="masking_e")(e))
        plain = L.Dense(5, name="dense_plain")(c)  # no mask
        vector = L.Dense(5, name="vector")(L.GlobalAveragePooling1D(name="pool")(da))  # (B, 5), no mask
        add = L.Add(name="add")([da, db, dc])
        cat_time = L.Concatenate(axis=1, name="concat_time")([da, de, plain])
        return keras.Model([a, b, c, e], [
            L.LSTM(3, return_sequences=True, name="lstm_after_add")(add),
            L.Subtract(name="subtract")([da, db]),
            L.Average(name="average")([da, dc]),
            L.Maximum(name="maximum")([da, db, dc]),
            L.Minimum(name="minimum_half_masked")([da, plain]),
            L.Multiply(name="multiply")([da, db, dc]),
            L.Multiply(name="multiply_half_masked")([plain, db]),
            L.Add(name="add_broadcast")([da, vector]),
            L.LSTM(2, return_sequences=True, name="lstm_after_concat_time")(cat_time),
            L.Concatenate(name="concat_last")([da, plain, db]),
            L.Dot(axes=(2, 2), name="dot")([da, de]),
            L.Dot(axes=-1, normalize=True, name="dot_normalized")([da, db]),
            L.Dot(axes=(1, 1), name="dot_time")([da, dc]),
            L.Dot(axes=1, name="dot_vectors")([vector, L.Dense(5, name="vector_b")(L.Flatten()(de))])])

    def bilstm_branches():
        ids = keras.Input((9,), dtype="int32")
        h = L.Embedding(13, 4, mask_zero=True)(ids)
        a = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bilstm_a")(h)
        b = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bilstm_b")(h)
        added = L.LSTM(2, return_sequences=True, name="lstm_after_add")(L.Add(name="add")([a, b]))
        averaged = L.GlobalAveragePooling1D(name="pool")(L.Average(name="average")([a, b]))
        joined = L.LSTM(4, name="lstm_after_concat")(L.Concatenate(axis=1, name="concat_time")([a, b]))
        return keras.Model(ids, [added, L.Dense(2, name="head")(L.Concatenate()([averaged, joined]))])

    def encoder_decoder():  # a Sequential model
        return keras.Sequential([keras.Input((8, 3)), L.Masking(0.0), L.LSTM(5, name="encoder"),
                                 L.RepeatVector(6, name="repeat"), L.LSTM(4, return_sequences=True, name="decoder"),
                                 L.TimeDistributed(L.Dense(2, activation="softmax"))])

    def crnn():
        x = keras.Input((6, 5, 2))  # (H, W, C): the width becomes the time axis
        h = L.Reshape((5, 12), name="columns")(L.Permute((2, 1, 3), name="width_first")(x))
        h = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bilstm")(h)
        h = L.Flatten(name="flatten")(L.Reshape((5, 3, 2), name="split")(h))
        return keras.Model(x, L.Dense(4, activation="softmax", name="head")(h))

    return {f.__name__: f for f in (sequence_reshapes, image_reshapes, masked_merges, bilstm_branches,
                                     encoder_decoder, crnn)}


MODELS = ("sequence_reshapes", "image_reshapes", "masked_merges", "bilstm_branches", "encoder_decoder", "crnn")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    folder, makers, rng = tmp_path_factory.mktemp("reshaping_merging"), _models(), np.random.default_rng(17)
    paths = {}
    with warnings.catch_warnings():  # reshaping layers drop a mask: Keras warns, the oracle models it
        warnings.filterwarnings("ignore", message=".*does not support masking.*")
        for name in MODELS:
            paths[name] = folder / f"{name}.keras"
            randomise_weights(makers[name](), rng).save(paths[name])
    return paths


def _verify(capsys, path, *argv):
    return run_bilstm(["verify", path, "--batch", 5, "--seed", 4, *argv], capsys)


# The default run verifies every model in float32 and the three that hold every kind in float64 too; -m slow
# adds the others' float64 runs.
FLOAT64_DEFAULT = ("image_reshapes", "masked_merges", "bilstm_branches")
RUNS = [pytest.param(name, dtype, marks=() if dtype == "float32" or name in FLOAT64_DEFAULT else pytest.mark.slow,
                     id=f"{name}-{dtype}") for name in MODELS for dtype in ("float32", "float64")]

# Output masks the rows must show (batch 5; "-": no mask; "some of N": N entries, some of them masked; "all of N":
# none masked): the merges pass the OR (Add, 5 x 6 steps; with an unmasked input in Concatenate on the last axis,
# all True) or the masks joined on the time axis (5 x 15 steps) on to their LSTMs; the half-masked Multiply and
# Minimum, Dot and the reshaping layers pass none (the same-shape Reshape on JAX excepted, below).
MASKS_OUT = {"masked_merges": {"add": "some of 30", "concat_time": "some of 75", "concat_last": "all of 30",
                               "maximum": "some of 30", "multiply": "some of 30", "multiply_half_masked": "-",
                               "minimum_half_masked": "-", "dot": "-", "add_broadcast": "-"},
             "sequence_reshapes": {"dense": "some of 35", "reshape_3x14": "-", "zero_padding1d": "-", "flatten": "-"},
             "bilstm_branches": {"add": "some of 45", "concat_time": "some of 90"}}


def _mask_shown(row: str) -> str:
    """A row's output mask ("3/30 valid") in MASKS_OUT's words."""
    out = row.split(" -> ")[1]
    if out == "-":
        return "-"
    valid, total = map(int, out.split()[0].split("/"))
    return f"{'all' if valid == total else 'some'} of {total}"


@pytest.mark.parametrize("name, dtype", RUNS)
def test_models_verify_within_bounds(name, dtype, saved, capsys, tmp_path, backend):
    report_path = tmp_path / "r.json"
    rc, out, err = _verify(capsys, saved[name], "--dtype", dtype, "--json", report_path)
    assert rc == 0, out + err
    report = json.loads(report_path.read_text())
    rows = report["layers"]
    assert report["backend"] == backend and rows
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows), out
    if dtype == "float64" and backend == "tensorflow":  # float64 throughout, far below float32 rounding, but for
        bilinear = [r for r in rows if "bilinear" in r["options"]]  # TensorFlow's float32 bilinear resize
        assert max(r["max_abs_error"] for r in rows if r not in bilinear) < 1e-12, out
        assert all("bilinear resize computes in float32" in r["bound"] for r in bilinear), out
    masks = {r["layer"]: r["mask"] for r in rows}
    assert {layer: _mask_shown(masks[layer]) for layer in MASKS_OUT.get(name, {})} == MASKS_OUT.get(name, {})
    if name == "sequence_reshapes":  # JAX hands back the input array itself, its mask on it
        assert _mask_shown(masks["same_shape"]) == ("some of 35" if backend == "jax" else "-")


def test_the_budget_estimates_every_output_as_keras_shapes_it(saved):
    """``budget.estimate`` reads each layer's output size from the file's config alone: equal to Keras's."""
    import zipfile

    import keras

    from keras_impl.verify.budget import estimate
    for name, path in saved.items():
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = keras.saving.load_model(path, compile=False)
        layers = {layer.name for layer in model.layers}
        for need in (n for n in estimate(config, batch=5, timesteps=8) if n.name in layers):  # not mask ops
            shape = model.get_layer(need.name).output.shape
            assert need.outputs == 5 * int(np.prod([8 if d is None else d for d in shape[1:]])), (name, need)


def _altered(monkeypatch, layer_name, **options):
    """The oracle's description of one layer with some options replaced."""
    from keras_impl.verify import describe
    original = describe.describe_layer

    def altered(keras_layer, name, inbound):
        described, shown = original(keras_layer, name, inbound)
        if name == layer_name:
            described = type(described)(described.name, described.kind, described.inbound,
                                        {**described.options, **options}, described.weights)
        return described, shown

    monkeypatch.setattr(describe, "describe_layer", altered)


def _forward_replaced(monkeypatch, kind, forward):
    from reference.layers import registry
    monkeypatch.setitem(registry.FORWARD, kind, forward)


def _dropped_mask(monkeypatch):  # Add computes its sum but passes no mask on
    from reference.layers import merging
    _forward_replaced(monkeypatch, "Add", lambda *a, **k: (merging.add(*a, **k)[0], None))


def _plain_maximum(monkeypatch):  # Maximum ignoring the masked stand-ins
    _forward_replaced(monkeypatch, "Maximum", lambda layer, inputs, masks, tape=None: (np.maximum.reduce(inputs),
                                                                                         None))


def _concatenate_on_the_wrong_axis(monkeypatch):  # the time axis for the last: (B, 18, 5) for (B, 6, 15)
    _altered(monkeypatch, "concat_last", axis=1)


def _nearest_for_bilinear(monkeypatch):
    _altered(monkeypatch, "up_sampling2d_bilinear", interpolation="nearest")


def _channels_first_ignored(monkeypatch):
    _altered(monkeypatch, "flatten_cf", data_format="channels_last")


def _permute_the_other_way(monkeypatch):
    _altered(monkeypatch, "permute_3d", dims=(2, 3, 1))


FAULTS = [(_dropped_mask, "bilstm_branches", "add"), (_plain_maximum, "masked_merges", "maximum"),
          (_concatenate_on_the_wrong_axis, "masked_merges", "concat_last"),
          (_nearest_for_bilinear, "image_reshapes", "up_sampling2d_bilinear"),
          pytest.param(_channels_first_ignored, "sequence_reshapes", "flatten_cf", marks=pytest.mark.slow),
          pytest.param(_permute_the_other_way, "image_reshapes", "permute_3d", marks=pytest.mark.slow),
          pytest.param(_dropped_mask, "masked_merges", "add", marks=pytest.mark.slow)]


def _fault_id(case) -> str:
    fault, model, _ = case.values if hasattr(case, "values") else case
    return f"{fault.__name__.strip('_')}-{model}"


@pytest.mark.parametrize("fault, model, failing", FAULTS, ids=map(_fault_id, FAULTS))
def test_a_planted_fault_fails_naming_the_layer(fault, model, failing, saved, capsys, monkeypatch):
    """The first FAIL row is the layer at fault; a dropped mask FAILs there on the mask alone (Add's values are
    right), the two masks shown."""
    fault(monkeypatch)
    rc, out, err = _verify(capsys, saved[model])
    assert rc == 1, out + err
    first = next(line for line in out.splitlines() if re.search(r"  FAIL( \(.*\))?$", line.rstrip()))
    assert first.split()[0] == failing and f"FAIL: {failing}" in out, out
    if fault is _dropped_mask:
        assert "FAIL (Keras's output mask" in first and "!= oracle's -)" in first, first


REFUSED = {  # a layer the oracle does not model: (the layer, its input shape, what the refusal says)
    "bicubic": (lambda L: L.UpSampling2D(interpolation="bicubic", name="smooth"), (3, 4, 2),
                "'smooth' of class UpSampling2D is not supported (interpolation='bicubic'"),
    "lanczos3": (lambda L: L.UpSampling2D(interpolation="lanczos3", name="sharp"), (3, 4, 2),
                 "'sharp' of class UpSampling2D is not supported (interpolation='lanczos3'"),
}  # (UpSampling3D and ZeroPadding3D, refused here before, are verified: test_reshaping_3d.py)


@pytest.mark.parametrize("case", REFUSED)
def test_what_is_not_modelled_is_refused_by_name(case, tmp_path, capsys):
    import keras
    make, shape, message = REFUSED[case]
    x = keras.Input(shape)
    path = tmp_path / "m.keras"
    keras.Model(x, make(keras.layers)(x)).save(path)
    rc, out, err = _verify(capsys, path)
    assert rc == 2 and out == "" and err.count("\n") == 1 and message in err, err


def _with_config(source, target, mutate):
    """``source`` (.keras) with its config.json edited by ``mutate(config)``."""
    import zipfile
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                mutate(config)
                data = json.dumps(config)
            out.writestr(info.filename, data)
    return target


def _set_option(layer_name, key, value):
    def mutate(config):
        entry = next(e for e in config["config"]["layers"] if e["config"]["name"] == layer_name)
        entry["config"][key] = value
    return mutate


@pytest.mark.parametrize("model, layer, key, value", [
    ("encoder_decoder", "repeat", "n", 10 ** 12),
    ("image_reshapes", "up_sampling2d_bilinear", "size", [10 ** 6, 10 ** 6]),
    ("sequence_reshapes", "zero_padding1d", "padding", [10 ** 13, 1]),
], ids=["repeat_vector_n", "up_sampling_size", "zero_padding"])
def test_a_claimed_size_beyond_memory_is_refused_from_the_config(model, layer, key, value, saved, tmp_path, capsys):
    """A few bytes of config claiming 1e12 numbers: refused by the budget in one line, naming the layer, before
    Keras builds anything."""
    path = _with_config(saved[model], tmp_path / "huge.keras", _set_option(layer, key, value))
    rc, out, err = _verify(capsys, path)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert f"layer '{layer}'" in err and "of memory available here" in err, err
