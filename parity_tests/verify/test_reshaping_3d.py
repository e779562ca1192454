"""``bilstm verify`` on ZeroPadding3D, Cropping3D and UpSampling3D (nearest, Keras's only interpolation), each
in channels_last and channels_first, with a different amount on every side and a different size on every axis,
and Conv3DTranspose (padding valid with output_padding, and same without a bias and with an activation; strides
different on every axis).

One model of a (B, 4, 5, 6, 3) input, random transposed convolutions and a Conv3D between (non-symmetric weights, so that every position
differs), verified through the command in float32 (float64: ``slow``). A planted fault in each new kind's
oracle (one entry moved by 1e-3) makes verify exit 1 naming that layer.
"""
from __future__ import annotations


import pytest

from parity_tests.verify.saved_models import saved_once, verify_rows

ROWS = ["pad_last", "crop_last", "up_last", "deconv_valid", "deconv_same", "to_first", "pad_first", "crop_first", "up_first"]


def _model():
    import keras
    L = keras.layers
    x = keras.Input((4, 5, 6, 3), name="x")
    h = L.ZeroPadding3D(((1, 0), (0, 2), (2, 1)), name="pad_last")(x)  # (5, 7, 9, 3)
    h = L.Cropping3D(((0, 2), (1, 0), (3, 1)), name="crop_last")(h)  # (3, 6, 5, 3)
    h = L.UpSampling3D((2, 1, 3), name="up_last")(h)  # (6, 6, 15, 3)
    h = L.Conv3DTranspose(4, (3, 2, 2), strides=(2, 1, 3), output_padding=(1, 0, 2), name="deconv_valid")(h)
    # same without output_padding: TensorFlow's oneDNN Conv3DBackpropInputV2 on the CPU aborts with both
    h = L.Conv3DTranspose(5, (2, 3, 3), strides=(1, 2, 2), padding="same", use_bias=False, activation="tanh",
                          name="deconv_same")(h)
    h = L.Conv3D(2, (2, 3, 4), strides=(1, 2, 8), name="to_first")(h)  # read channels first below
    h = L.ZeroPadding3D(((2, 1), (0, 1), (1, 0)), data_format="channels_first", name="pad_first")(h)
    h = L.Cropping3D(((1, 0), (0, 2), (1, 1)), data_format="channels_first", name="crop_first")(h)
    return keras.Model(x, L.UpSampling3D((1, 3, 2), data_format="channels_first", name="up_first")(h))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return saved_once(tmp_path_factory.mktemp("reshaping_3d"), _model, 29, "reshaping_3d")


def _verify(path, dtype, capsys, tmp_path):
    return verify_rows(capsys, tmp_path, path, dtype, "--batch", 2)


# JAX without x64 warns that it computes a float64 Conv3D in float32 (verify's float64 bound says so)
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=[
    pytest.mark.slow, pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")])])
def test_3d_reshaping_layers_verify(dtype, saved, capsys, tmp_path):
    rc, rows, out, err = _verify(saved(dtype), dtype, capsys, tmp_path)
    assert rc == 0, out + err
    assert sorted(rows) == sorted(ROWS)
    assert all(r["verdict"] == "pass" and r["max_abs_error"] <= r["allowed"] for r in rows.values())
    assert rows["up_first"]["options"].startswith("size=(1, 3, 2), nearest, channels_first")


@pytest.mark.parametrize("kind, layer", [("ZeroPadding3D", "pad_first"), ("Cropping3D", "crop_last"),
                                         ("UpSampling3D", "up_first"), ("Conv3DTranspose", "deconv_same")])
def test_a_fault_in_a_3d_layer_fails_naming_it(kind, layer, saved, capsys, tmp_path, monkeypatch):
    from reference.layers import registry
    original = registry.FORWARD[kind]

    def moved(described, inputs, masks, tape=None):
        y, mask = original(described, inputs, masks, tape)
        if described.name == layer:
            y = y.copy()
            y.flat[0] += 1e-3
        return y, mask
    monkeypatch.setitem(registry.FORWARD, kind, moved)
    rc, rows, out, _ = _verify(saved("float32"), "float32", capsys, tmp_path)
    assert rc == 1 and f"FAIL: {layer}" in out, out
    assert next(n for n, r in rows.items() if r["verdict"] == "FAIL") == layer
