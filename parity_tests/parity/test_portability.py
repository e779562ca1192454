"""A model saved as ``.keras`` on this backend loads on every other backend and predicts the same.

The saving process builds a stacked Bidirectional model with Masking for each cell
(LSTM; GRU in both ``reset_after`` forms, one with hard_sigmoid gates; SimpleRNN with
relu), sets random weights and saves each; one subprocess per other backend
(``KERAS_BACKEND`` set in its environment, the same interpreter) loads every file and
predicts the same padded batch (by default the next backend of a cycle, all others with ``-m slow``). Its predictions must equal the saving process's
within ``PORTABILITY_ABS`` and the float64 oracle's within ``FLOAT32_ABS``.
"""
from __future__ import annotations

import dataclasses
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

ROOT = Path(__file__).resolve().parents[2]
SPEC = reference.ModelSpec(timesteps=7, features=3, units=(5, 4), merge_mode="concat", mask_value=0.0)
SPECS = {
    "lstm": SPEC,
    "gru": dataclasses.replace(SPEC, cell="gru"),
    "gru_reset_before": dataclasses.replace(SPEC, cell="gru", reset_after=False, recurrent_activation="hard_sigmoid"),
    "simple_rnn": dataclasses.replace(SPEC, cell="simple_rnn", activation="relu"),
}
LENGTHS = (7, 4, 1, 6)  # right padding of every length, one row a single valid step

# argv: x.npy, then pairs of (model file, where to save its predictions).
LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    x = np.load(sys.argv[1])
    weights = []
    for path, out in zip(sys.argv[2::2], sys.argv[3::2]):
        model = keras.saving.load_model(path)
        np.save(out, np.asarray(model.predict(x, verbose=0)))
        weights.append(len(model.get_weights()))
    print(json.dumps({"backend": keras.backend.backend(), "weights": weights}))
""")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, backend):
    """Per cell: (path of the .keras file, this backend's predictions, float32 weights); and the input batch."""
    from keras_impl import build_model
    rng = np.random.default_rng(20260)
    x = rng.uniform(0.1, 1.0, size=(len(LENGTHS), SPEC.timesteps, SPEC.features)).astype(np.float32)
    for row, length in enumerate(LENGTHS):
        x[row, length:] = SPEC.mask_value
    folder = tmp_path_factory.mktemp("portability")
    np.save(folder / "x.npy", x)
    models = {}
    for name, spec in SPECS.items():
        weights = [w.astype(np.float32) for w in reference.random_weights(spec, rng)]
        model = build_model(spec)
        model.set_weights(weights)
        path = folder / f"{name}_{backend}.keras"
        model.save(path)
        models[name] = (path, np.asarray(model.predict(x, verbose=0)), weights)
    return models, x


@pytest.mark.parametrize("cell", SPECS)
def test_saving_backend_reloads_its_own_file(saved, cell):
    import keras
    (path, probs, _), x = saved[0][cell], saved[1]
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), probs, rtol=0, atol=PORTABILITY_ABS)


@pytest.mark.parametrize("cell", SPECS)
def test_saving_backend_matches_oracle(saved, cell):
    (_, probs, weights), x = saved[0][cell], saved[1]
    np.testing.assert_allclose(probs, reference.model_forward(SPECS[cell], weights, x), rtol=0, atol=FLOAT32_ABS)


# Each pass loads on the next backend of this cycle, so over a CI run (one pass a backend) every backend
# saves and every backend loads; the other direction of each pair (one more framework start) runs with -m slow.
NEXT = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}


@pytest.mark.parametrize("other", [pytest.param(b, marks=() if b == NEXT.get(BACKEND) else (pytest.mark.slow,))
                                   for b in BACKENDS if b != BACKEND])
def test_loads_and_predicts_on_other_backend(saved, tmp_path, other):
    """One process on ``other`` loads every cell's file (one start of that backend for all of them)."""
    if other not in installed_backends():
        pytest.skip(f"backend {other} is not installed: pip install -e '.[{other}]'")
    models, x = saved
    outs = {name: tmp_path / f"probs_{name}_{other}.npy" for name in models}
    argv = [str(next(iter(models.values()))[0].parent / "x.npy")]
    for name, (path, _, _) in models.items():
        argv += [str(path), str(outs[name])]
    # TF32 off in the child too (conftest set NVIDIA_TF32_OVERRIDE=0 here, inherited; JAX needs its own flag).
    env = os.environ | {"KERAS_BACKEND": other, "JAX_DEFAULT_MATMUL_PRECISION": "highest"}
    done = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, *argv],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"loading on {other} failed:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"backend": other, "weights": [len(spec.weight_shapes()) for spec in SPECS.values()]}
    for name, (_, probs, weights) in models.items():
        loaded = np.load(outs[name])
        assert loaded.shape == probs.shape == (len(LENGTHS), SPEC.timesteps, 1)
        np.testing.assert_allclose(loaded, probs, rtol=0, atol=PORTABILITY_ABS,
                                   err_msg=f"{name}: saved on {BACKEND}, loaded on {other}")
        np.testing.assert_allclose(loaded, reference.model_forward(SPECS[name], weights, x), rtol=0, atol=FLOAT32_ABS,
                                   err_msg=f"{name}: loaded on {other} vs the oracle")
