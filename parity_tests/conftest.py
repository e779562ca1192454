"""Shared fixtures. The backend is whatever ``KERAS_BACKEND`` says: one backend per pytest process.

Importing this file imports no framework: the oracle's own tests (marker ``oracle``,
``pytest -m oracle``) run with NumPy, pytest and hypothesis alone. Frameworks are
touched only once collection shows that a Keras test will run.

TF32 is switched off for the Keras tests so that float32 parity holds on
Ampere/Hopper GPUs, where every framework otherwise rounds float32 matmuls and
cuDNN RNNs to a 10-bit mantissa.
"""
from __future__ import annotations

import importlib.util
import os
import zlib

import numpy as np
import pytest

from keras_impl.backend import configured_backend  # standard library only: no framework imported

BACKEND = configured_backend()  # the backend Keras will choose, by Keras's own rule
# A verify test of a many-layer model costs 25 to 50 s on JAX, which traces and compiles every layer's call
# (measured on the 2-core CI machine, 2026-12-07), against a few seconds on TensorFlow and torch: such a test
# runs on those two in the default suite and on JAX in the full suite (make test-full).
SLOW_ON_JAX = pytest.mark.slow if BACKEND == "jax" else (lambda test: test)

# cuBLAS and cuDNN read this when they load, which can be while test modules are collected (a module that
# imports torch): set it now, framework-free. `keras_impl.backend.set_tf32` sets the same variable and
# then each framework's own flags, below, once a Keras test is known to run.
os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")


def is_oracle_test(item: pytest.Item) -> bool:
    return item.get_closest_marker("oracle") is not None


# Tests that no Keras backend can change (marker `backend_independent`: docs, layering, the bench machinery's
# stand-ins, the torch/ONNX layouts) run in one pass of `make test-keras`, the first; the Makefile sets
# this variable for the others. A plain pytest run, on any backend, runs them.
SKIP_BACKEND_INDEPENDENT = os.environ.get("BILSTM_SKIP_BACKEND_INDEPENDENT") == "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-verify-errors", metavar="FILE", default=None,
                     help="append every layer row of every verify report the tests build to FILE, as JSON lines, "
                          "for benchmarks/verify_errors.py (default: off)")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--record-verify-errors", default=None)
    if path:
        from parity_tests.verify_error_records import start_recording  # imports no framework
        start_recording(os.path.abspath(path))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_BACKEND_INDEPENDENT:
        return
    skip = pytest.mark.skip(reason="backend-independent: runs once, in the first pass of make test-keras "
                                   "(BILSTM_SKIP_BACKEND_INDEPENDENT=1 in the others)")
    for item in items:
        if item.get_closest_marker("backend_independent") is not None:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """TF32 off in this process's framework, before any test runs, if any selected test is a Keras test."""
    if all(is_oracle_test(item) for item in session.items):
        return  # the oracle alone: no framework needed, none imported
    if importlib.util.find_spec(BACKEND) is None:
        return  # not installed: the Keras tests fail on their own imports, with the package's name
    from keras_impl.backend import set_tf32  # the same switch `bilstm parity` uses
    set_tf32(BACKEND, False)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, different for every test."""
    seed = zlib.crc32(request.node.nodeid.encode())  # stable across processes, unlike hash()
    return np.random.default_rng(np.random.SeedSequence([seed, 2026]))


@pytest.fixture(scope="session")
def backend() -> str:
    import keras
    assert keras.backend.backend() == BACKEND, "Keras was imported with another backend than KERAS_BACKEND"
    return BACKEND


def randomise_weights(model, rng: np.random.Generator):
    """The model's weights drawn by the project's one recipe (``reference.random_arrays``), in its own dtypes."""
    from reference import random_arrays
    shapes_and_dtypes = [(w.shape, w.dtype) for w in model.get_weights()]
    drawn = random_arrays([shape for shape, _ in shapes_and_dtypes], rng)
    model.set_weights([w.astype(dtype) for w, (_, dtype) in zip(drawn, shapes_and_dtypes)])
    return model


def run_bilstm(argv, capsys) -> tuple[int, str, str]:
    """``bilstm ARGV`` in this process: (exit status, stdout, stderr); argparse's refusals exit, and count."""
    from keras_impl.cli import main  # the command line imports no framework until a command runs
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


FRESH_CALLS = r"""
import contextlib, io, json, sys
from keras_impl.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse stops this way
            code = exc.code
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "keras_imported": "keras" in sys.modules})
print(json.dumps(results))
"""


def bilstm_in_one_fresh_process(argvs, cwd, timeout: float = 240) -> list[dict]:
    """``bilstm ARGV`` for each ARGV, one after another in one new interpreter run in ``cwd``: for each, a dict of
    its exit status (``code``), ``stdout``, ``stderr`` and whether Keras had been imported by then
    (``keras_imported``: a call that imports Keras shows it, and so does every call after it). For the checks
    that a refusal comes before Keras is imported: one interpreter for them all, not one each."""
    import json
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", FRESH_CALLS, json.dumps([[str(a) for a in argv] for argv in argvs])],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def wait_for(condition, seconds: float, poll: float = 0.05):
    """``condition()``'s first truthy value within ``seconds``, else its last value."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    return condition()


def require_export_modules(*modules: str) -> None:
    """Skip the test, naming the first module missing, where the ``export`` extra is not installed."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install .[export])")
