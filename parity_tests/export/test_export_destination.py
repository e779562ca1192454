"""``bilstm export``'s ``--out``: nothing of the user's deleted, one writer at a time, no worker outliving it.

keras_impl/export/destination.py and pipeline.py. Most cases replace the export worker by a fake that writes
an artifact at once (``fake_worker``): what is tested is where things are written, not the export. One case
starts the real command and kills it while its worker runs.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keras_impl.export import pipeline
from keras_impl.export.destination import Destination
from parity_tests.conftest import BACKEND, nonblank_lines, run_bilstm, wait_for

once = pytest.mark.skipif(BACKEND != "torch", reason="bilstm export runs its own processes, whatever this "
                                                     "process's backend: once a suite run, in the torch pass")
pytestmark = once

NAMED = ["--format", "onnx", "--backend", "torch", "--units", "3", "--timesteps", "4", "--features", "2"]


def bilstm(argv, capsys) -> tuple[int, str, str]:
    return run_bilstm(["export", *argv], capsys)


lines = nonblank_lines


@pytest.fixture
def fake_worker(monkeypatch):
    """The export worker replaced by one that writes a small artifact at once; ``during`` runs in the export."""
    calls = {"during": None}

    def spawn(job, backend, scratch, name):
        if "build" in job:
            Path(job["model"]).write_bytes(b"model")
            if "format" not in job:  # a build alone; with a format, the route's worker builds, then exports
                return {"ok": True}
        if calls["during"] is not None:
            calls["during"]()
        Path(job["artifact"]).write_bytes(b"artifact")
        return {"ok": True, "export": {"dynamic_batch": True, "notes": []}, "saved_by": "fake"}

    monkeypatch.setattr(pipeline, "spawn_worker", spawn)
    return calls


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import keras
    inputs = keras.Input((4, 2))
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), merge_mode="sum")(inputs)
    path = tmp_path_factory.mktemp("model") / "my_model.keras"
    keras.Model(inputs, keras.layers.Dense(1)(h)).save(path)
    return path


@pytest.fixture
def victim(tmp_path, model_file):
    """A user's folder: the model being exported and a note of theirs."""
    folder = tmp_path / "home" / "victim"
    folder.mkdir(parents=True)
    (folder / "my_model.keras").write_bytes(model_file.read_bytes())
    (folder / "notes.txt").write_text("mine")
    return folder


def contents(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- --overwrite: only an export's own folder

@pytest.mark.parametrize("where, says", [
    ("victim", "holds the model being exported"),
    ("parent", "holds the model being exported"),
    ("cwd", "is the current folder"),
    ("dot", "is the current folder"),
])
def test_overwrite_never_replaces_the_models_folder_or_the_current_one(where, says, victim, tmp_path, monkeypatch,
                                                                      capsys, fake_worker):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(victim if where in ("cwd", "dot") else tmp_path / "elsewhere")
    out = {"victim": victim, "parent": victim.parent, "cwd": victim, "dot": "."}[where]
    before = contents(victim)
    code, _, err = bilstm([victim / "my_model.keras", "--format", "onnx", "--backend", "torch", "--out", out,
                           "--overwrite"], capsys)
    assert code == 2 and len(lines(err)) == 1 and says in err, err
    assert contents(victim) == before


def test_overwrite_never_replaces_a_folder_export_did_not_make(tmp_path, capsys, fake_worker):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.onnx").write_bytes(b"my own onnx")
    code, _, err = bilstm([*NAMED, "--out", mine, "--overwrite"], capsys)
    assert code == 2 and len(lines(err)) == 1 and "not made by bilstm export" in err, err
    (mine / "export.json").write_text("{}")  # looks like an export's, but holds a file of the user's
    (mine / "notes.txt").write_text("mine")
    code, _, err = bilstm([*NAMED, "--out", mine, "--overwrite"], capsys)
    assert code == 2 and len(lines(err)) == 1 and "notes.txt" in err, err
    assert contents(mine) == {"export.json": b"{}", "model.onnx": b"my own onnx", "notes.txt": b"mine"}


def test_overwrite_replaces_an_earlier_export_and_leaves_nothing_beside_it(tmp_path, capsys, fake_worker):
    out = tmp_path / "exports" / "onnx"
    assert bilstm([*NAMED, "--out", out], capsys)[0] == 0
    first = json.loads((out / "export.json").read_text())
    code, _, err = bilstm([*NAMED, "--seed", "5", "--out", out, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "export.json").read_text())["model"]["named"]["seed"] == 5 != first["model"]["named"]["seed"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["onnx"]  # no lock, scratch, staging or old folder


# ---------------------------------------------------------------- one writer: the lock, and a check at the move

def test_a_second_export_to_the_same_out_is_refused_while_the_first_runs(tmp_path, capsys, fake_worker):
    out = tmp_path / "onnx"
    with Destination(out, overwrite=False):  # another export holds --out
        code, _, err = bilstm([*NAMED, "--out", out], capsys)
        assert code == 2 and len(lines(err)) == 1 and f"pid {os.getpid()}" in err and "in use" in err, err
        assert not out.exists()
    assert bilstm([*NAMED, "--out", out], capsys)[0] == 0  # released with its holder


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_out_that_appears_during_the_export_is_never_replaced(overwrite, tmp_path, capsys, fake_worker):
    """Something else writes --out between the checks and the move (the race of two exports, made certain)."""
    out = tmp_path / "onnx"

    def someone_else_writes_out():
        out.mkdir()
        (out / "model.onnx").write_bytes(b"theirs")
        (out / "notes.txt").write_text("theirs")

    fake_worker["during"] = someone_else_writes_out
    code, _, err = bilstm([*NAMED, "--out", out] + (["--overwrite"] if overwrite else []), capsys)
    refusals = [line for line in lines(err) if "error:" in line]  # after the progress lines of the work done
    assert code == 2 and len(refusals) == 1 and "Traceback" not in err
    assert ("not made by bilstm export" if overwrite else "appeared while exporting") in refusals[0]
    assert contents(out) == {"model.onnx": b"theirs", "notes.txt": b"theirs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]  # the unmoved artifact and the lock removed


# ---------------------------------------------------------------- a killed export: no worker left, no scratch kept

def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append((int(entry.name), cmdline))
    return found


def _workers(pid: int) -> list[int]:
    return [child for child, cmdline in _children(pid) if "keras_impl.export.worker" in cmdline]


def _start_export(out: Path, cwd: Path) -> subprocess.Popen:
    """The real ``bilstm export`` of a small named model, in its own process (this copy of keras_impl)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-m", "keras_impl.cli", "export", *NAMED, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_export_leaves_no_worker_and_the_next_run_no_scratch(signum, tmp_path, capsys, fake_worker):
    out = tmp_path / "onnx"
    export = _start_export(out, tmp_path)
    try:
        worker = wait_for(lambda: _workers(export.pid), 120)
        assert worker, "no worker started"
        os.kill(export.pid, signum)
        export.wait(30)
        assert wait_for(lambda: not _alive(worker[0]), 10), "the worker outlived bilstm export"
    finally:
        if export.poll() is None:
            export.kill()
            export.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    if signum == signal.SIGTERM:  # it tidied up itself
        assert left == [], left
    else:  # nothing could tidy up after SIGKILL: the next export to the same --out does
        assert any(".onnx.scratch-" in name for name in left), left
    assert bilstm([*NAMED, "--out", out], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]
    assert not out.with_name("export.json").exists() and (out / "export.json").is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_two_export_processes_to_one_out_the_second_is_refused(tmp_path, capsys, fake_worker):
    """A real ``bilstm export`` holds --out while its worker runs; this process's export to it is refused."""
    out = tmp_path / "onnx"
    first = _start_export(out, tmp_path)
    try:
        assert wait_for(lambda: _workers(first.pid), 120), "the first export's worker never started"
        code, _, err = bilstm([*NAMED, "--out", out], capsys)
        assert code == 2 and len(lines(err)) == 1 and f"pid {first.pid}" in err, err
    finally:
        first.kill()
        first.wait()


# ---------------------------------------------------------------- a named model: who builds it

def _named_plan(routes) -> dict:
    from reference import ModelSpec
    named, _ = pipeline._named_model(ModelSpec(units=3, timesteps=4, features=2), 1)
    return {"format": "onnx", "source": "torch", "dynamic_batch": True, "verify": False, "precision": "float32",
            "model": named, "routes": routes}


@pytest.mark.parametrize("first_backend", ["torch", "tensorflow"], ids=["first_route_builds", "build_worker"])
def test_a_named_model_is_built_once_on_its_source_backend(first_backend, tmp_path, monkeypatch):
    """The first route on the source backend builds the model in its own worker (one Keras start, not two); a
    first route elsewhere gets the model from a build worker on the source backend first."""
    from keras_impl.export.routes import Route
    jobs = []

    def worker(job, backend, scratch, name):
        jobs.append((name, backend, sorted(job)))
        if "build" in job:
            Path(job["model"]).write_bytes(b"model")
        if "format" not in job:
            return {"ok": True}
        Path(job["artifact"]).write_bytes(b"artifact")
        return {"ok": True, "export": {"dynamic_batch": True, "notes": []}}

    monkeypatch.setattr(pipeline, "spawn_worker", worker)
    plan = _named_plan([Route("onnx", first_backend, "keras", first_backend != "torch")])
    code, report = pipeline._export(plan, tmp_path, tmp_path, lambda line: None)
    assert code == 0 and report["model"] == {"named": plan["model"]}, report
    if first_backend == "torch":
        assert [(name, backend, "build" in keys) for name, backend, keys in jobs] == [("route0", "torch", True)]
    else:
        assert [(name, backend, "build" in keys) for name, backend, keys in jobs] == [
            ("build", "torch", True), ("route0", "tensorflow", False)]


def test_a_build_that_fails_in_the_first_routes_worker_is_reported_as_the_build(tmp_path, monkeypatch):
    """No model file after the first route's worker: the build failed, and no other route is tried without it."""
    from keras_impl.export.routes import Route
    names = []

    def crashed(job, backend, scratch, name):
        names.append(name)
        return {"ok": False, "error": "the torch worker stopped (exit 1): ValueError: bad spec"}

    monkeypatch.setattr(pipeline, "spawn_worker", crashed)
    plan = _named_plan([Route("onnx", "torch", "keras", False), Route("onnx", "tensorflow", "keras", True)])
    code, report = pipeline._export(plan, tmp_path, tmp_path, lambda line: None)
    assert code == 2 and names == ["route0"]
    assert report["error"] == "cannot build the model: the torch worker stopped (exit 1): ValueError: bad spec"


# ---------------------------------------------------------------- the Python API under the command

def test_the_python_api_returns_a_printable_json_report_and_refuses_in_one_line(tmp_path, fake_worker):
    from keras_impl.export import ExportReport, export
    from keras_impl.options import UsageError
    from reference import ModelSpec
    seen = []
    report = export(ModelSpec(units=3, timesteps=4, features=2, merge_mode="sum"), "onnx", backend="torch",
                    out=tmp_path / "onnx", seed=4, progress=seen.append)
    assert isinstance(report, ExportReport) and report.exit_status == 0
    assert json.loads(json.dumps(report.to_json(), allow_nan=False)) == json.loads((tmp_path / "onnx" /
                                                                                    "export.json").read_text())
    assert report["model"]["named"]["seed"] == 4 and report["model"]["named"]["spec"]["merge_mode"] == "sum"
    assert f"artifact: {tmp_path / 'onnx' / 'model.onnx'}" in str(report) and seen  # progress was reported
    for bad, says in ((dict(fmt="pdf"), "unknown format"), (dict(precision="bf16"), "unknown precision"),
                      (dict(backend="mxnet"), "unknown backend")):
        with pytest.raises(UsageError, match=says) as refused:
            export(ModelSpec(units=3), **{"fmt": "onnx", "out": tmp_path / "x", **bad})
        assert "\n" not in str(refused.value)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- --json PATH|-, as in every command

def test_json_dash_prints_the_report_as_json_on_stdout_after_the_header(tmp_path, capsys, fake_worker):
    code, out, err = bilstm([*NAMED, "--out", tmp_path / "onnx", "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(out) == json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert err.splitlines()[0].startswith("bilstm export: on torch (--backend), device "), err


def test_json_path_writes_the_report_and_prints_the_text(tmp_path, capsys, fake_worker):
    code, out, err = bilstm([*NAMED, "--out", tmp_path / "onnx", "--json", tmp_path / "report.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads((tmp_path / "onnx" / "export.json")
                                                                            .read_text())
    assert out.startswith("bilstm export: ") and "artifact: " in out  # the text report, not JSON


@pytest.mark.parametrize("value, says", [(None, "expected one argument"), ("{folder}", "is a folder"),
                                         ("{folder}/missing/r.json", "does not exist")])
def test_a_bad_json_argument_is_refused_in_one_line_before_any_work(tmp_path, capsys, fake_worker, value, says):
    argv = [*NAMED, "--out", tmp_path / "onnx", "--json"] + ([] if value is None else [value.format(folder=tmp_path)])
    code, out, err = bilstm(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and says in err and err.startswith("bilstm export: error: "), err
    assert not (tmp_path / "onnx").exists()


@pytest.mark.parametrize("given, asked", [([], "float32"), (["--precision", "native"], "native")])
def test_every_runtime_is_asked_for_float32_unless_native_is_given(tmp_path, capsys, fake_worker, monkeypatch,
                                                                   given, asked):
    """float32 is the default: the runtime check gets it (OpenVINO's f32 hint), and the header says it; native
    is an opt-in (a default back at native would leave OpenVINO in bfloat16 on a CPU with BF16)."""
    seen = []

    def verify(fmt, artifact, predictions, backend, precision, *rest):
        seen.append(precision)
        return 0, {"verdict": "pass", "worst_vs_oracle": 0.0, "worst_vs_keras": 0.0, "ran_precision": "float32",
                   "bounds": {"vs_oracle": 1e-5, "vs_keras": 1e-5, "kind": "abs"}, "sets": [], "notes": []}
    spawn = pipeline.spawn_worker  # fake_worker's, with the input sets a verifying worker reports
    monkeypatch.setattr(pipeline, "spawn_worker", lambda *a: {**spawn(*a), "sets": []})
    monkeypatch.setattr(pipeline, "_verify", verify)
    monkeypatch.setattr(pipeline.importlib.util, "find_spec", lambda name: True)  # the runtime "installed"
    code, out, err = bilstm([*NAMED, "--out", tmp_path / "onnx", "--verify", *given], capsys)
    assert code == 0, err
    assert seen == [asked] and f"{asked} runtime precision" in err.splitlines()[0]
