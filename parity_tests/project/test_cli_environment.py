"""The command line in the environment a user has: Keras's own backend choice, and quiet frameworks.

Keras picks its backend on import (``keras/src/backend/config.py``, Keras
3.15.1): a non-empty ``KERAS_BACKEND``, else the ``"backend"`` of
``$KERAS_HOME/keras.json`` (``~/.keras/keras.json`` without ``KERAS_HOME``),
else TensorFlow. ``bilstm`` once read an empty ``KERAS_BACKEND`` as the name
``''`` and ignored keras.json. Each case runs in a fresh interpreter with its
own KERAS_HOME or HOME, and asks Keras itself which backend it chose.

The fresh interpreters choose their backends themselves, whatever this process's, so those
tests run once a suite run, in the torch pass (the lightest of ``make test-keras``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from parity_tests.conftest import BACKEND

# Each case's interpreter sets its own backend: the same check in every pass, so it runs in one.
once = pytest.mark.skipif(BACKEND != "torch", reason="the fresh interpreters choose their own backend, whatever "
                                                     "this process's: once a suite run, in the torch pass")

PROBE = ("import sys; from keras_impl.backend import select_backend; chosen = select_backend(None); "
         "import keras; print(chosen, keras.backend.backend())")


def run(code: str, env_changes: dict, tmp_path, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL")}
    env["HOME"] = str(tmp_path / "home")
    env.update(env_changes)
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=tmp_path)


def write_config(folder, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keras.json").write_text(text)


@once
@pytest.mark.parametrize("keras_backend, where, config, expected", [
    ("", "KERAS_HOME", {"backend": "jax"}, "jax"),         # empty KERAS_BACKEND: keras.json decides
    (None, "HOME", {"backend": "torch"}, "torch"),         # no KERAS_HOME: ~/.keras/keras.json
    ("jax", "KERAS_HOME", {"backend": "torch"}, "jax"),    # a non-empty KERAS_BACKEND wins
], ids=["empty-variable-keras-home", "home-keras-json", "variable-over-file"])
def test_the_backend_is_the_one_keras_chooses(tmp_path, keras_backend, where, config, expected):
    changes = {} if keras_backend is None else {"KERAS_BACKEND": keras_backend}
    if where == "KERAS_HOME":
        changes["KERAS_HOME"] = str(tmp_path / "keras-home")
        write_config(tmp_path / "keras-home", json.dumps(config))
    else:
        write_config(tmp_path / "home" / ".keras", json.dumps(config))
    result = run(PROBE, changes, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, expected]  # ours, then Keras's own


@once
def test_a_keras_json_that_is_not_json_means_the_default(tmp_path):
    write_config(tmp_path / "keras-home", "{not json")
    code = "from keras_impl.backend import select_backend; print(select_backend(None))"
    result = run(code, {"KERAS_BACKEND": "", "KERAS_HOME": str(tmp_path / "keras-home")}, tmp_path)
    assert result.returncode == 0 and result.stdout.split() == ["tensorflow"], result.stderr


@once
def test_an_unknown_backend_in_keras_json_is_refused_on_one_line_naming_the_file(tmp_path):
    write_config(tmp_path / "keras-home", json.dumps({"backend": "theano"}))
    code = "import sys; from keras_impl.cli import main; sys.exit(main(['info']))"
    result = run(code, {"KERAS_BACKEND": "", "KERAS_HOME": str(tmp_path / "keras-home")}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "unknown backend 'theano'" in result.stderr and str(tmp_path / "keras-home" / "keras.json") in result.stderr


TF_LOG_LINES = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "TensorFlow binary is optimized")
# TensorFlow turns oneDNN on by default on Intel CPUs with AVX-512 and logs it while importing, whatever
# TF_CPP_MIN_LOG_LEVEL says; elsewhere (the AMD machine CI once ran on) it stays off and silent. Forcing it on
# makes these tests see the Intel path on every CPU.
ONEDNN_ON = {"TF_ENABLE_ONEDNN_OPTS": "1"}


@once
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_info_prints_no_tensorflow_log_lines(tmp_path, backend):
    # Without TF_CPP_MIN_LOG_LEVEL in the environment (run() removes it): bilstm must quiet TensorFlow itself,
    # and with --backend jax not import it at all.
    code = ("import sys; from keras_impl.cli import main; code = main(['info', '--backend', %r]); "
            "print('tensorflow imported:', 'tensorflow' in sys.modules); sys.exit(code)" % backend)
    result = run(code, ONEDNN_ON, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if any(m in line for m in TF_LOG_LINES)], result.stderr
    if backend == "jax":
        assert "tensorflow imported: False" in result.stdout


@once
def test_tensorflow_imported_by_keras_on_jax_prints_no_log_lines_and_keeps_other_errors(tmp_path):
    """On JAX, Keras itself imports TensorFlow whenever it is installed (keras/src/utils/rng_utils.py and
    serialization_lib.py: ``if tf.available``): after bilstm's set-up, its start-up lines must not show, and
    standard error must still work after the import."""
    pytest.importorskip("tensorflow")
    code = ("import os, sys; from keras_impl.quiet import quiet_tensorflow; quiet_tensorflow(); "
            "import keras; keras.utils.set_random_seed(1); os.write(2, b'still shown\\n'); "
            "print('tensorflow imported:', 'tensorflow' in sys.modules)")
    result = run(code, {**ONEDNN_ON, "KERAS_BACKEND": "jax"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tensorflow imported: True" in result.stdout  # the import happened: the test tested something
    assert not [line for line in result.stderr.splitlines() if any(m in line for m in TF_LOG_LINES)], result.stderr
    assert "still shown" in result.stderr


@once
def test_an_experiment_on_jax_prints_no_tensorflow_log_lines(tmp_path):
    """``make reproduce`` on JAX printed TensorFlow's lines (Keras imports it there): the smallest demo run."""
    code = ("import sys; from keras_impl.cli import main; sys.exit(main(['demo', '--backend', 'jax', '--seeds', '1', "
            "'--updates', '5', '--heldout', '10', '--out', 'demo']))")
    result = run(code, ONEDNN_ON, tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo").is_dir()
    output = result.stdout + result.stderr
    assert not [line for line in output.splitlines() if any(m in line for m in TF_LOG_LINES)], output


def test_only_tensorflows_start_up_notices_are_dropped_from_stderr(capfd):
    from keras_impl.quiet import stderr_without
    with stderr_without():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 port.cc:153] oneDNN custom operations are on. You may see ...\n"
                    b"E0000 an error while importing\n")
    assert capfd.readouterr().err == "E0000 an error while importing\n"


@pytest.mark.parametrize("argv, message", [
    (["info", "--backend", "mxnet"], "bilstm info: error: argument --backend: invalid choice: 'mxnet'"),
    (["frobnicate"], "bilstm: error: argument COMMAND: invalid choice: 'frobnicate'"),
    ([], "bilstm: error: the following arguments are required: COMMAND"),
], ids=["info-backend", "unknown-command", "no-command"])
def test_a_bad_command_line_costs_one_line_and_exit_2(capsys, argv, message):
    from keras_impl.cli import main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    stderr = capsys.readouterr().err
    assert stop.value.code == 2
    assert stderr.strip().count("\n") == 0 and stderr.startswith(message), stderr
