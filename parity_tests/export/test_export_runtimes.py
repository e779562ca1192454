"""keras_impl/export/runtimes.py: each artifact run in its real runtime, in a process without Keras.

Artifacts are exported here from a small Bidirectional LSTM (random non-zero weights and biases, T=5, D=3,
U=4) with the formats this pass's backend can write (EXPORTABLE); each runs in its runtime and must match
Keras at batch sizes other than the one it was exported with. A truncated artifact, a hang, a crash and a
missing runtime each come back as one-line errors. A runtime that is not installed skips with the package
to install.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_impl.export.formats import ARTIFACT_NAME, FORMATS, ArtifactRunError, RuntimeUnavailable
from keras_impl.export.runtimes import (StaticShapeError, pack_sets, run_artifact, run_in_subprocess,
                                        run_sets_in_subprocess, unpack_sets)
from parity_tests.conftest import BACKEND, require_export_modules

# The formats whose exporter runs on each backend (docs/export.md's matrix says which routes work).
EXPORTABLE = {
    "tensorflow": ("onnx", "tf_saved_model", "litert"),
    "jax": ("tf_saved_model", "jax_export"),
    "torch": ("onnx", "openvino", "torch_export"),
}
RUNTIME_MODULE = {"onnx": "onnxruntime", "tf_saved_model": "tensorflow", "litert": "ai_edge_litert",
                  "openvino": "openvino", "torch_export": "torch", "jax_export": "jax"}
T, D, U = 5, 3, 4
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def require_runtime(fmt: str) -> None:
    require_export_modules(RUNTIME_MODULE[fmt])


def require_exportable(fmt: str) -> None:
    if fmt not in EXPORTABLE[BACKEND]:
        pytest.skip(f"{fmt} is exported from {', '.join(b for b, f in EXPORTABLE.items() if fmt in f)}; "
                    f"this pass is {BACKEND}")


@pytest.fixture(scope="module")
def model():
    from keras_impl.models import build_model
    from reference import ModelSpec
    m = build_model(ModelSpec(timesteps=T, features=D, units=U, merge_mode="sum"))
    rng = np.random.default_rng(2026)
    m.set_weights([(0.6 * rng.standard_normal(w.shape)).astype(w.dtype) for w in m.get_weights()])
    return m


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """fmt -> (artifact path, dynamic batch?), exported once per module on first use."""
    from keras_impl.export.exporters import export_model
    made = {}

    def get(fmt: str, *, dynamic_batch: bool = True):
        require_exportable(fmt)
        require_runtime(fmt)
        if (fmt, dynamic_batch) not in made:
            folder = tmp_path_factory.mktemp(f"{fmt}-{'dynamic' if dynamic_batch else 'static'}")
            info = export_model(model, fmt, folder / ARTIFACT_NAME[fmt], dynamic_batch=dynamic_batch,
                                method="jax_export" if fmt == "jax_export" else "keras")
            made[fmt, dynamic_batch] = (folder / ARTIFACT_NAME[fmt], info["dynamic_batch"])
        return made[fmt, dynamic_batch]
    return get


def inputs_of(batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, T, D)).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_matches_keras_in_its_runtime(fmt, model, exported, backend):
    """Each runtime, in a process without Keras, against model(x): at batches 3 and 7 where the batch is
    dynamic (the export traced batch 2), one sequence at a time where it is static. Catches a runner that
    feeds or reads tensors in the wrong order, a frozen batch, or outputs of the wrong time order."""
    import keras

    from keras_impl.parity.tolerances import bound
    path, dynamic = exported(fmt)
    batches = (3, 7) if dynamic else (1, 1)
    sets = [[inputs_of(b, seed)] for seed, b in enumerate(batches)]
    outputs, ran = run_sets_in_subprocess(fmt, path, sets, precision="float32", timeout_s=240)
    assert ran == "float32"
    for [x], [y] in zip(sets, outputs):
        expected = keras.ops.convert_to_numpy(model(x, training=False))  # np.asarray fails on a torch grad tensor
        assert y.shape == expected.shape == (x.shape[0], T, 1)
        assert np.max(np.abs(y - expected)) <= bound("artifact", "float32", backend).value
        assert np.std(expected) > 1e-3  # the model's outputs vary: a constant output could not pass by chance


def test_in_process_and_subprocess_agree(model, exported):
    """run_artifact here and run_in_subprocess there give the same numbers: the subprocess's .npz round trip
    loses nothing and keeps the output order."""
    fmt = {"tensorflow": "onnx", "jax": "jax_export", "torch": "onnx"}[BACKEND]
    path, _ = exported(fmt)
    x = inputs_of(3, 11)
    here, ran_here = run_artifact(fmt, path, [x])
    there, ran_there = run_in_subprocess(fmt, path, [x], timeout_s=240)
    assert ran_here == ran_there == "float32"
    np.testing.assert_array_equal(here[0], there[0])


def test_runner_never_imports_keras(exported):
    """The runtime process runs the artifact with Keras blocked, and Keras is still absent when it ends:
    `import tensorflow` alone imports Keras (tensorflow/_api/v2/compat/v1), so without the block a runtime
    that needs Keras would pass here and fail in a deployment without it."""
    fmt = "tf_saved_model" if BACKEND in ("tensorflow", "jax") else "onnx"
    path, _ = exported(fmt)
    with_inputs = Path(path).parent / "runner-inputs.npz"
    np.savez(with_inputs, **pack_sets([[inputs_of(2, 3)]]))
    probe = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["run_artifact", {fmt!r}, {str(path)!r}, {str(with_inputs)!r}, {str(with_inputs) + '.out.npz'!r}]
        try:
            runpy.run_module("keras_impl.export.run_artifact", run_name="__main__")
        except SystemExit as exit:
            print("exit", exit.code)
        print("keras modules", sorted(m for m in sys.modules if m.split(".")[0] == "keras"))
        try:
            import keras
            print("keras importable")
        except ImportError:
            print("keras blocked")
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=240, env=env)
    assert "exit 0" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "keras modules []" in done.stdout
    assert "keras blocked" in done.stdout


def _truncate(path: Path) -> None:
    """Cut the artifact's main file to a third (for a SavedModel folder: saved_model.pb; for OpenVINO: the
    weights, model.bin, so the XML still parses)."""
    target = {".xml": path.with_suffix(".bin")}.get(path.suffix, path)
    if path.is_dir():
        target = path / "saved_model.pb"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_artifact_is_one_line_error(fmt, exported, tmp_path):
    """A truncated artifact is an ArtifactRunError in one line, neither a traceback, a crash of the caller,
    nor a hang (a runtime's C++ may abort on it: the subprocess turns that into the error too)."""
    path, _ = exported(fmt)
    copy = tmp_path / path.name
    if path.is_dir():
        shutil.copytree(path, copy)
    else:
        for sibling in path.parent.iterdir():  # OpenVINO's .xml needs its .bin beside it
            shutil.copy(sibling, tmp_path / sibling.name)
    _truncate(copy)
    with pytest.raises(ArtifactRunError) as raised:
        run_in_subprocess(fmt, copy, [inputs_of(2, 5)], timeout_s=240)
    assert "\n" not in str(raised.value) and str(raised.value)
    assert not isinstance(raised.value, StaticShapeError)


def test_static_batch_is_said(exported):
    """A static-batch artifact given another batch is refused by name before it runs (LiteRT's interpreter
    would otherwise resize and fail deep inside, torch.export with a guard error)."""
    fmt = {"tensorflow": "litert", "torch": "torch_export", "jax": "jax_export"}[BACKEND]
    path, dynamic = exported(fmt, dynamic_batch=False)
    assert not dynamic
    with pytest.raises(StaticShapeError, match=r"static at \(1, 5, 3\) \(the batch fixed at export\), got \(3, 5, 3\)"):
        run_in_subprocess(fmt, path, [inputs_of(3, 1)], timeout_s=240)
    outputs, _ = run_in_subprocess(fmt, path, [inputs_of(1, 1)], timeout_s=240)
    assert outputs[0].shape == (1, T, 1)


def _fake_runtime(tmp_path: Path, body: str) -> Path:
    """A folder with a stand-in `onnxruntime` package; put first on PYTHONPATH, it shadows the real one."""
    package = tmp_path / "fake" / "onnxruntime"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(body))
    return package.parent


@pytest.fixture
def any_onnx_file(tmp_path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not really onnx")
    return path


def test_missing_runtime_in_subprocess(tmp_path, monkeypatch, any_onnx_file):
    """A runtime that cannot be imported: RuntimeUnavailable naming the package and the extra."""
    fake = _fake_runtime(tmp_path, 'raise ImportError("No module named onnxruntime (simulated)")')
    monkeypatch.setenv("PYTHONPATH", str(fake))
    with pytest.raises(RuntimeUnavailable, match=r"onnxruntime.*pip install \.\[export\]"):
        run_in_subprocess("onnx", any_onnx_file, [inputs_of(1, 0)], timeout_s=120)


def test_missing_runtime_in_process(monkeypatch, any_onnx_file):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what Python does for a package not installed
    with pytest.raises(RuntimeUnavailable, match=r"pip install \.\[export\]"):
        run_artifact("onnx", any_onnx_file, [inputs_of(1, 0)])


def test_hang_is_a_timeout(tmp_path, monkeypatch, any_onnx_file):
    fake = _fake_runtime(tmp_path, "import time\ntime.sleep(120)\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    with pytest.raises(ArtifactRunError, match="did not finish model.onnx within 5 s"):
        run_in_subprocess("onnx", any_onnx_file, [inputs_of(1, 0)], timeout_s=5)


def test_crash_is_an_error(tmp_path, monkeypatch, any_onnx_file):
    """A runtime that dies of a signal (as a C++ runtime can on a corrupt file) is an ArtifactRunError."""
    fake = _fake_runtime(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    with pytest.raises(ArtifactRunError, match=r"crashed on model.onnx \(killed by signal 11\)"):
        run_in_subprocess("onnx", any_onnx_file, [inputs_of(1, 0)], timeout_s=120)


@pytest.mark.parametrize("call, error, message", [
    (lambda p: run_in_subprocess("tflite", p, [np.zeros((1, T, D), np.float32)]), ValueError, "fmt must be"),
    (lambda p: run_in_subprocess("onnx", p.with_name("absent.onnx"), [np.zeros(1)]), ValueError, "does not exist"),
    (lambda p: run_in_subprocess("onnx", p, np.zeros((1, T, D))), TypeError, "inputs must be"),
    (lambda p: run_in_subprocess("onnx", p, [[0.0]]), TypeError, r"inputs\[0\] must be a NumPy array"),
    (lambda p: run_in_subprocess("onnx", p, [np.zeros(1)], precision="bf16"), ValueError, "precision must be"),
    (lambda p: run_in_subprocess("onnx", p, [np.zeros(1)], timeout_s=0), ValueError, "timeout_s must be"),
    (lambda p: run_artifact("onnx", 3, [np.zeros(1)]), TypeError, "artifact_path must be a path"),
])
def test_bad_arguments_refused_before_any_work(call, error, message, any_onnx_file):
    with pytest.raises(error, match=message):
        call(any_onnx_file)


def test_sets_round_trip():
    sets = [[np.arange(3.0), np.ones((2, 2))], [np.zeros(1)]] + [[np.full(1, k)] for k in range(10)]
    back = unpack_sets(pack_sets(sets))  # 12 sets: s10 must not sort between s1 and s2
    assert len(back) == len(sets)
    for a, b in zip(sets, back):
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_run_artifact_json_protocol_error_line(tmp_path, any_onnx_file):
    """The runner's last stdout line is JSON naming the error's class, which the caller maps back."""
    require_runtime("onnx")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, **pack_sets([[inputs_of(1, 0)]]))
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run([sys.executable, "-m", "keras_impl.export.run_artifact", "onnx", str(any_onnx_file),
                           str(inputs), str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 1
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["kind"] == "ArtifactRunError" and "model.onnx" in report["error"]
