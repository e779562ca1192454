"""The Keras side's structure: weight shapes per spec, Keras's initialisation, backend selection and info.

Numbers are not compared here (the parity suites do that); these tests check that
``build_model`` and ``ModelSpec`` describe the same model, that
``reference.keras_init_weights`` draws from the distributions Keras uses (checked
as properties on a freshly built Keras model and on the oracle's draw alike), and
that the backend helpers refuse what they cannot do.
"""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reference
from keras_impl import backend as backend_module
from keras_impl.backend import BACKENDS, BackendError, backend_info, select_backend
from parity_tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parents[2]

SPECS = {
    "tutorial_default": reference.ModelSpec(),
    "forward": reference.ModelSpec(timesteps=6, features=3, units=7, direction="forward"),
    "backward_stacked": reference.ModelSpec(timesteps=6, features=3, units=(7, 5), direction="backward"),
    "forward_masking": reference.ModelSpec(timesteps=6, features=3, units=(7, 5), direction="forward", mask_value=0.0),
    "bi_concat_stacked": reference.ModelSpec(timesteps=6, features=3, units=(7, 5)),
    "bi_sum_stacked": reference.ModelSpec(timesteps=6, features=3, units=(7, 5), merge_mode="sum"),
    "bi_ave_masking": reference.ModelSpec(timesteps=6, features=3, units=7, merge_mode="ave", mask_value=-1.0),
    "bi_mul_three_layers_masking": reference.ModelSpec(timesteps=6, features=2, units=(4, 6, 3), merge_mode="mul",
                                                       mask_value=0.0),
    # the other cells: GRU's two bias forms, SimpleRNN without a bias, the LSTM's options
    "gru_bi_concat_stacked": reference.ModelSpec(timesteps=6, features=3, units=(7, 5), cell="gru"),
    "gru_reset_before_backward": reference.ModelSpec(timesteps=6, features=3, units=7, direction="backward",
                                                     cell="gru", reset_after=False),
    "simple_rnn_no_bias_masking": reference.ModelSpec(timesteps=6, features=3, units=(7, 5), merge_mode="sum",
                                                      mask_value=0.0, cell="simple_rnn", use_bias=False),
    "lstm_hard_sigmoid_forward": reference.ModelSpec(timesteps=6, features=3, units=7, direction="forward",
                                                     recurrent_activation="hard_sigmoid", activation="relu"),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_keras_weight_shapes_equal_spec_weight_shapes(backend, name):
    from keras_impl import build_model
    from keras_impl.parity.harness import CHEAP_INIT
    spec = SPECS[name]
    # Shapes do not depend on the initializer: zeros skip the orthogonal QR, which JAX compiles afresh for
    # every new shape (seconds each); test_keras_builds_with_keras_like_init checks Keras's own initializers.
    model = build_model(spec, **CHEAP_INIT)
    assert [tuple(w.shape) for w in model.get_weights()] == spec.weight_shapes()
    assert tuple(model.output_shape) == (None, spec.timesteps, 1)


# ----------------------------------------------------------------------------- initialisation

INIT_SPEC = reference.ModelSpec(timesteps=5, features=6, units=(24, 16))  # big enough for the bound check below


def assert_keras_like_init(weights, spec, source):
    """Properties of Keras's default init, for a list of weights in get_weights() order."""
    assert [w.shape for w in weights] == spec.weight_shapes(), source
    for k, (w, (role, shape)) in enumerate(zip(weights, spec.weight_roles())):
        where = f"{source}: weights[{k}] ({role} {shape})"
        w = np.asarray(w, dtype=np.float64)
        if role in ("kernel", "dense_kernel"):  # glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            assert np.abs(w).max() <= limit * (1 + 1e-6), where
            if w.size >= 64:  # enough draws that the largest one comes close to the bound
                assert np.abs(w).max() > 0.8 * limit, where
                assert abs(w.mean()) < 0.25 * limit, where
        elif role == "recurrent_kernel":  # orthogonal over the whole (U, 4U) matrix: orthonormal rows
            np.testing.assert_allclose(w @ w.T, np.eye(shape[0]), rtol=0, atol=1e-5, err_msg=where)
            assert np.linalg.matrix_rank(w[:, :shape[0]]) > 0  # not all zero
        elif role == "bias":  # zeros, forget block (the second of i, f, c, o) exactly 1 (unit_forget_bias)
            units = shape[0] // 4
            expected = np.zeros(shape)
            expected[units:2 * units] = 1.0
            np.testing.assert_array_equal(w, expected, err_msg=where)
        else:  # dense_bias
            np.testing.assert_array_equal(w, np.zeros(shape), err_msg=where)


def test_keras_builds_with_keras_like_init(backend):
    from keras_impl import build_model
    assert_keras_like_init(build_model(INIT_SPEC, seed=3).get_weights(), INIT_SPEC, f"keras on {backend}")


def test_oracle_keras_init_weights_has_the_same_properties(rng):
    assert_keras_like_init(reference.keras_init_weights(INIT_SPEC, rng), INIT_SPEC, "reference.keras_init_weights")


def test_keras_orthogonal_columns_are_not_orthonormal(backend, rng):
    """Orthogonal over the whole (U, 4U) matrix, not per gate block.

    A per-gate init (each (U, U) block orthogonal, as some ports do) makes every
    block orthogonal and R R^T = 4 I; Keras's whole-matrix init gives R R^T = I
    and gate blocks that are not orthogonal: both sides must be the latter.
    """
    from keras_impl import build_model
    recurrent = np.asarray(build_model(INIT_SPEC, seed=4).get_weights()[1], dtype=np.float64)  # (24, 96)
    units = recurrent.shape[0]
    block = recurrent[:, :units]  # the input gate's (U, U) block
    assert np.abs(block.T @ block - np.eye(units)).max() > 0.1
    oracle_block = reference.keras_init_weights(INIT_SPEC, rng)[1][:, :units]
    assert np.abs(oracle_block.T @ oracle_block - np.eye(units)).max() > 0.1


# -------------------------------------------------------------------------------------- backend

def test_select_backend_rejects_unknown_name():
    with pytest.raises(BackendError, match=r"unknown backend 'theano'; expected one of tensorflow, jax, torch"):
        select_backend("theano")


def test_select_backend_refuses_a_second_backend(backend):
    other = next(b for b in BACKENDS if b != backend)
    with pytest.raises(BackendError, match=rf"Keras is already imported with backend '{backend}'; set KERAS_BACKEND={other}"):
        select_backend(other)
    assert os.environ.get("KERAS_BACKEND", "tensorflow") == backend  # unchanged by the refused request


def test_select_backend_accepts_the_current_backend(backend):
    assert select_backend(backend) == backend
    assert select_backend(None) == backend


def test_check_installed_names_the_package(monkeypatch):
    monkeypatch.setattr(backend_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendError, match=r"backend 'jax' is not installed: pip install jax"):
        backend_module.check_installed("jax")


def test_select_backend_before_import_decides_keras_backend():
    """What ``bilstm --backend`` relies on: select_backend, then import keras, gets the selected backend."""
    chosen = "jax" if BACKEND != "jax" else "torch"
    code = (f"from keras_impl.backend import select_backend; select_backend({chosen!r}); "
            "import keras; print(keras.backend.backend())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ | {"KERAS_BACKEND": BACKEND},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == chosen


def test_backend_info_reports_backend_and_versions(backend):
    info = backend_info()
    assert info["backend"] == backend == os.environ.get("KERAS_BACKEND", "tensorflow")  # Keras's default
    assert info["keras"] == importlib.metadata.version("keras") == "3.15.1"
    assert info["numpy"] == np.__version__
    assert info["floatx"] == "float32"
    assert isinstance(info["device"], str) and info["device"]
    backend_dists = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "jax": ("jax",), "torch": ("torch",)}[backend]
    assert any(info.get(dist) for dist in backend_dists), f"no version for {backend_dists} in {info}"
    assert all(isinstance(v, str) for v in info.values())
