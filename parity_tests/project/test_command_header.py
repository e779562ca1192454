"""What the tool says it runs: one header line on standard error before every command's work, and --version.

The header (``keras_impl.backend.header_line``, the format of ``bilstm verify``'s first line): the backend and
how it was chosen (``--backend``, ``KERAS_BACKEND``, a ``keras.json``, or Keras's own default), the device, the
dtype, and the versions of Keras and the backend's package. Each command runs here on its cheapest case, its
heavy work stubbed where the header comes before it (parity's checks, export's worker); info, verify and
bench run for real (a tiny model; bench's --stand-in steps).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from keras_impl.backend import BACKENDS, backend_origin, backend_version, header_line, installed_version
from keras_impl.cli import build_parser, main
from parity_tests.conftest import BACKEND

EXPORT_FORMAT = {"tensorflow": "tf_saved_model", "jax": "jax_export", "torch": "torch_export"}
EXPERIMENTS = ("demo", "compare", "merge-modes", "reproduce")
# Each fresh interpreter chooses its own backend, whatever this process's: once a suite run, in the torch pass.
once = pytest.mark.skipif(BACKEND != "torch", reason="the fresh interpreter chooses its own backend, whatever "
                                                     "this process's: once a suite run, in the torch pass")


def expected_header(command: str, chosen_by: str) -> re.Pattern:
    return re.compile(rf"bilstm {re.escape(command)}: on {BACKEND} \({re.escape(chosen_by)}\), device \S+, .+, "
                      rf"keras {re.escape(installed_version('keras'))}, {BACKEND} {re.escape(backend_version(BACKEND))}")


class Stop(Exception):
    """Raised by a stub in place of a command's work: the header must have come before it."""


def _stop(*args, **kwargs):
    raise Stop


def run_parity(tmp_path, monkeypatch):
    from keras_impl.parity import checks
    for name in ("run_checks", "notes"):
        monkeypatch.setattr(checks, name, lambda *a, **k: [])
    monkeypatch.setattr(checks, "format_table", lambda *a, **k: "")
    monkeypatch.setattr(checks, "summary", lambda *a, **k: "")
    return ["parity", "--quick"]


def run_info(tmp_path, monkeypatch):
    return ["info"]


def run_verify(tmp_path, monkeypatch):
    import keras
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(4)])
    model.save(tmp_path / "tiny.keras")
    return ["verify", str(tmp_path / "tiny.keras"), "--batch", "2"]


def run_export(tmp_path, monkeypatch):
    from keras_impl.export import pipeline

    def first_step_then_stop(plan, progress):  # the worker processes: the header comes with the first step's line
        progress("building the model")
        raise Stop
    monkeypatch.setattr(pipeline, "run_plan", first_step_then_stop)
    return ["export", "--format", EXPORT_FORMAT[BACKEND], "--units", "3", "--out", str(tmp_path / "export")]


def run_bench(tmp_path, monkeypatch):
    return ["bench", "--quick", "--stand-in", "--no-summary", "--no-raw", "--budget", "20",
            "--out", str(tmp_path / "bench")]


def run_experiment(command):
    def arguments(tmp_path, monkeypatch):
        from keras_impl.commands import experiments
        monkeypatch.setattr(experiments, "execute", _stop)  # the training: the header comes before it
        return [command, "--seeds", "1", "--updates", "1", "--heldout", "1", "--out", str(tmp_path / command)]
    return arguments


CHEAPEST = {"parity": run_parity, "info": run_info, "verify": run_verify, "export": run_export, "bench": run_bench,
            **{name: run_experiment(name) for name in EXPERIMENTS}}


def subcommand_names() -> list[str]:
    return list(next(a for a in build_parser()._actions if a.dest == "command").choices)


def test_every_subcommand_has_a_cheapest_case():
    assert sorted(CHEAPEST) == sorted(subcommand_names())


@pytest.mark.parametrize("command", subcommand_names())
def test_every_command_prints_the_header_before_its_work(command, tmp_path, monkeypatch, capsys):
    argv = CHEAPEST[command](tmp_path, monkeypatch) + ["--backend", BACKEND]
    try:
        main(argv)
    except Stop:
        pass
    err = capsys.readouterr().err.splitlines()
    assert err and expected_header(command, "--backend").fullmatch(err[0]), err[:3]


def test_the_header_line_names_backend_device_dtype_and_versions():
    line = header_line("x", backends=["jax", "torch"], device="cpu", dtype="float32", chosen_by="--backend")
    assert line == (f"bilstm x: on jax, torch (--backend), device cpu, float32, keras {installed_version('keras')}, "
                    f"jax {backend_version('jax')}, torch {backend_version('torch')}")


def test_the_origin_of_the_backend_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backend_origin() == "KERAS_BACKEND"
    monkeypatch.delenv("KERAS_BACKEND")
    assert backend_origin() == "Keras's default, KERAS_BACKEND unset"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert backend_origin() == str(tmp_path / "keras.json")


@once
@pytest.mark.skipif(backend_version("tensorflow") is None, reason="Keras's own default, TensorFlow, not installed")
def test_a_command_without_KERAS_BACKEND_says_it_ran_on_keras_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    env["KERAS_HOME"] = str(tmp_path / "keras-home")  # no keras.json: Keras's own default, TensorFlow
    done = subprocess.run([sys.executable, "-m", "keras_impl.cli", "info"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines()[0].startswith(
        "bilstm info: on tensorflow (Keras's default, KERAS_BACKEND unset), device "), done.stderr


def test_version_names_the_project_keras_and_every_installed_backend(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"bilstm {installed_version('bilstm-lab')} ") and out.count("\n") == 1, out
    assert f"keras {installed_version('keras')}" in out
    for backend in BACKENDS:
        if backend_version(backend) is not None:
            assert f"{backend} {backend_version(backend)}" in out, (backend, out)


def test_version_imports_no_framework():
    code = ("import sys\nfrom keras_impl.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('keras', 'jax', 'torch', 'tensorflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr
