"""Data-parallel training (keras.distribution.DataParallel, JAX) equals training on one device.

The check runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
(two virtual CPU devices; XLA reads the flag when JAX starts, so it cannot be set
in a running process) and ``KERAS_BACKEND=jax``: ``train_stream(..., distribution=
data_parallel())`` with the model built inside the distribution's scope, against
``train_on_batch`` over the same consecutive pairs of sequences on one device,
from the same random weights. It runs once, in the jax pass of ``make test``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from parity_tests.conftest import BACKEND
from keras_impl.parity.tolerances import DATA_PARALLEL_ABS

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import jax
    from keras_impl.distributed import data_parallel
    from keras_impl.models import build_model
    from keras_impl.training import train_stream
    from reference import ModelSpec, random_weights

    spec = ModelSpec(timesteps=7, features=3, units=5)
    rng = np.random.default_rng(2026)
    weights = random_weights(spec, rng)
    xs = rng.random((6, 7, 3)).astype("float32")                 # (N, T, D): 3 updates of 2
    ys = (rng.random((6, 7, 1)) < 0.5).astype("float32")         # (N, T, 1)
    out = {"devices": len(jax.devices())}

    dp = data_parallel()
    with dp.scope():
        model = build_model(spec)
        model.set_weights(weights)
    out["weight_devices"] = len(model.weights[0].value.sharding.device_set)
    out["dp_losses"] = train_stream(model, xs, ys, distribution=dp).tolist()
    out["input_devices"] = len(dp.get_data_layout((2, 7, 3)).device_mesh.devices.flat)

    one = build_model(spec)
    one.set_weights(weights)
    one.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    out["one_losses"] = [float(one.train_on_batch(xs[k:k + 2], ys[k:k + 2])[0]) for k in range(0, 6, 2)]
    out["weight_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), one.get_weights()))
    out["weight_change"] = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), weights))

    try:
        train_stream(model, xs[:5], ys[:5], distribution=dp)
        out["odd_stream"] = "no error"
    except ValueError as exc:
        out["odd_stream"] = str(exc)
    plain = build_model(spec)  # built outside the scope: its weights live on one device
    try:
        train_stream(plain, xs, ys, distribution=dp)
        out["unplaced_model"] = "no error"
    except ValueError as exc:
        out["unplaced_model"] = str(exc)
    print("RESULT " + json.dumps(out))
""")

jax_pass_only = pytest.mark.skipif(
    BACKEND != "jax", reason="JAX-only feature: the 2-device subprocess runs once, in the KERAS_BACKEND=jax pass")


@pytest.fixture(scope="module")
def two_devices() -> dict:
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    # XLA's cheapest CPU compilation (as test_multiprocess.py's children): compiling is most of the
    # subprocess's work; both sides of the comparison are compiled alike, float32, and the bound still holds.
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0 "
                         "--xla_llvm_disable_expensive_passes=true")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@jax_pass_only
def test_two_virtual_devices_hold_the_model_and_split_the_batch(two_devices):
    assert two_devices["devices"] == 2
    assert two_devices["weight_devices"] == 2
    assert two_devices["input_devices"] == 2


@jax_pass_only
def test_data_parallel_losses_equal_one_device(two_devices):
    dp, one = np.array(two_devices["dp_losses"]), np.array(two_devices["one_losses"])
    assert dp.shape == (3,)
    np.testing.assert_allclose(dp, one, rtol=0, atol=DATA_PARALLEL_ABS)


@jax_pass_only
def test_data_parallel_weights_equal_one_device_and_training_moved_them(two_devices):
    assert two_devices["weight_diff"] <= DATA_PARALLEL_ABS
    assert two_devices["weight_change"] > 100 * DATA_PARALLEL_ABS  # the comparison is not of untouched weights


@jax_pass_only
def test_stream_not_a_multiple_of_devices_is_refused(two_devices):
    assert "multiple of the 2" in two_devices["odd_stream"]
    assert "got 5" in two_devices["odd_stream"]


@jax_pass_only
def test_model_built_outside_the_scope_is_refused(two_devices):
    assert "distribution.scope()" in two_devices["unplaced_model"]


@pytest.mark.skipif(BACKEND == "jax", reason="checks the refusal on the other backends")
def test_data_parallel_needs_jax(backend):
    from keras_impl.distributed import data_parallel
    with pytest.raises(ValueError, match=f"needs the jax backend, got backend '{backend}'"):
        data_parallel()
