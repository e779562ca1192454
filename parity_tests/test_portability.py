"""A model saved as ``.keras`` on this backend loads on every other backend and predicts the same.

The saving process builds a stacked Bidirectional model with Masking, sets random
weights and saves it; one subprocess per other backend (``KERAS_BACKEND`` set in
its environment, the same interpreter) loads the file and predicts the same
padded batch. Its predictions must equal the saving process's within
``PORTABILITY_ABS`` and the float64 oracle's within ``FLOAT32_ABS``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import reference
from keras_impl.backend import BACKENDS, installed_backends
from parity_tests.conftest import BACKEND
from keras_impl.parity.tolerances import FLOAT32_ABS, PORTABILITY_ABS

ROOT = Path(__file__).resolve().parents[1]
SPEC = reference.ModelSpec(timesteps=7, features=3, units=(5, 4), merge_mode="concat", mask_value=0.0)
LENGTHS = (7, 4, 1, 6)  # right padding of every length, one row a single valid step

LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    model = keras.saving.load_model(sys.argv[1])
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], np.asarray(model.predict(x, verbose=0)))
    print(json.dumps({"backend": keras.backend.backend(), "weights": len(model.get_weights())}))
""")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    """(path of the .keras file, input batch, this backend's predictions, float32 weights)."""
    from keras_impl import build_model
    rng = np.random.default_rng(20260)
    weights = [w.astype(np.float32) for w in reference.random_weights(SPEC, rng)]
    model = build_model(SPEC)
    model.set_weights(weights)
    x = rng.uniform(0.1, 1.0, size=(len(LENGTHS), SPEC.timesteps, SPEC.features)).astype(np.float32)
    for row, length in enumerate(LENGTHS):
        x[row, length:] = SPEC.mask_value
    folder = tmp_path_factory.mktemp("portability")
    path = folder / f"bilstm_{backend}.keras"
    model.save(path)
    np.save(folder / "x.npy", x)
    return path, x, np.asarray(model.predict(x, verbose=0)), weights


def test_saving_backend_reloads_its_own_file(saved):
    import keras
    path, x, probs, _ = saved
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), probs, rtol=0, atol=PORTABILITY_ABS)


def test_saving_backend_matches_oracle(saved):
    _, x, probs, weights = saved
    np.testing.assert_allclose(probs, reference.model_forward(SPEC, weights, x), rtol=0, atol=FLOAT32_ABS)


@pytest.mark.parametrize("other", [b for b in BACKENDS if b != BACKEND])
def test_loads_and_predicts_on_other_backend(saved, tmp_path, other):
    if other not in installed_backends():
        pytest.skip(f"backend {other} is not installed: pip install -e '.[{other}]'")
    path, x, probs, weights = saved
    out = tmp_path / f"probs_{other}.npy"
    # TF32 off in the child too (conftest set NVIDIA_TF32_OVERRIDE=0 here, inherited; JAX needs its own flag).
    env = os.environ | {"KERAS_BACKEND": other, "JAX_DEFAULT_MATMUL_PRECISION": "highest"}
    done = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(path), str(path.parent / "x.npy"), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"loading on {other} failed:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"backend": other, "weights": len(SPEC.weight_shapes())}
    loaded = np.load(out)
    assert loaded.shape == probs.shape == (len(LENGTHS), SPEC.timesteps, 1)
    np.testing.assert_allclose(loaded, probs, rtol=0, atol=PORTABILITY_ABS,
                               err_msg=f"saved on {BACKEND}, loaded on {other}")
    np.testing.assert_allclose(loaded, reference.model_forward(SPEC, weights, x), rtol=0, atol=FLOAT32_ABS,
                               err_msg=f"loaded on {other} vs the oracle")
