"""docs/parity.md's "float64 on JAX and torch: which paths compute in float32", held on this pass's backend.

Keras maps float64 to float32 in result_type on JAX and torch, but which layers reach a demoting op
differs: on torch an unmasked LSTM runs Keras's torch kernel in float64 throughout, while a mask or a
Dense head rounds through float32; on JAX tanh demotes, so every LSTM does; TensorFlow is float64 throughout.
And the figure is the same whichever way the model is called: the layer itself, model(x), model.predict,
or bilstm verify's float64 rebuild of a float32 model (keras_impl.verify.compare.as_float64_model).
"""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import BACKEND

FLOAT64_LEVEL = 1e-12   # float64 rounding over a few steps: ~1e-16
FLOAT32_LEVEL = 1e-9    # float32 rounding shows at 1e-8 to 1e-7
B, T, D, U = 3, 7, 4, 5


def build(*, masked: bool, dense: bool, seed: int):
    import keras
    rng = np.random.default_rng(seed)
    inputs = keras.Input((T, D))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    y = keras.layers.Bidirectional(keras.layers.LSTM(U, return_sequences=True))(x)
    if dense:
        y = keras.layers.Dense(2, activation="sigmoid")(y)
    model = keras.Model(inputs, y)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    return model


def oracle_output(model, x):
    from keras_impl.verify.describe import describe_model
    from reference.layers import graph_forward
    return np.asarray(graph_forward(describe_model(model).graph, [x])[model.layers[-1].name][0], np.float64)


def errors_by_path(masked: bool, dense: bool) -> dict[str, float]:
    import keras

    from keras_impl.parity.harness import floatx
    from keras_impl.verify.compare import as_float64_model
    x = np.random.default_rng(1).normal(size=(B, T, D))
    x[0, 5:] = 0.0  # a padded tail, for the Masking model
    found = {}
    with floatx("float64"):
        model = build(masked=masked, dense=dense, seed=2)
        expected = oracle_output(model, x)
        if not masked and not dense:
            found["layer"] = keras.ops.convert_to_numpy(model.layers[1](keras.ops.convert_to_tensor(x)))
        found["model(x)"] = keras.ops.convert_to_numpy(model(x, training=False))
        found["predict"] = model.predict(x, verbose=0)
    rebuilt_from = build(masked=masked, dense=dense, seed=2)  # float32, as a saved model would load
    with floatx("float64"):
        rebuilt = as_float64_model(rebuilt_from)
        found["verify's rebuild"] = keras.ops.convert_to_numpy(rebuilt(x, training=False))
        expected_rebuilt = oracle_output(rebuilt, x)
    return {path: float(np.max(np.abs(np.asarray(y, np.float64)
                                      - (expected_rebuilt if path == "verify's rebuild" else expected))))
            for path, y in found.items()}


# (masked, dense) -> is the result float64-exact on this backend?
EXACT = {
    "tensorflow": {(False, False): True, (True, False): True, (False, True): True},
    "torch": {(False, False): True, (True, False): False, (False, True): False},
    "jax": {(False, False): False, (True, False): False, (False, True): False},
}


@pytest.mark.parametrize("masked, dense", [(False, False), (True, False), (False, True)],
                         ids=["bilstm", "masked", "dense-head"])
def test_which_float64_paths_compute_in_float32(masked, dense):
    if BACKEND not in EXACT:
        pytest.skip(f"no documented figure for backend {BACKEND}")
    errors = errors_by_path(masked, dense)
    if EXACT[BACKEND][(masked, dense)]:
        assert max(errors.values()) < FLOAT64_LEVEL, errors
    else:
        assert min(errors.values()) > FLOAT32_LEVEL, errors
        assert max(errors.values()) < 5e-7, errors  # FLOAT64_DEMOTED_ABS
