"""``bilstm bench`` refuses bad input before any work, never writes over a result set unasked,
resumes only from whole records, and never leaves a worker running without its driver.

Refusals run in one subprocess (``refusals``) that calls the command line once per argument
list and reports, for each, the exit status and stderr, and at the end which frameworks it
imported: none may be, since every check comes before any import.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cases import Case
from benchmarks.destination import DEFAULT_RESULTS, check_out_folder
from keras_impl.options import UsageError
from benchmarks.environment import describe_machine
from benchmarks.lock import LOCK_NAME, FolderLock, FolderLocked
from benchmarks.store import ResultsStore, record_problem
from benchmarks.train_speed import Settings, prepare_folder
from parity_tests.conftest import BACKEND, wait_for

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("keras", "jax", "torch", "tensorflow")

REFUSALS = r"""
import contextlib, io, json, sys
from keras_impl.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    results.append({"rc": rc, "stderr": err.getvalue()})
print(json.dumps({"results": results, "imported": [m for m in %r if m in sys.modules]}))
""" % (FRAMEWORKS,)


def refusals(argvs: list[list[str]], cwd: Path) -> list[dict]:
    """Run ``bilstm bench ARGV`` for each ARGV in one fresh process; assert it imported no framework."""
    proc = subprocess.run([sys.executable, "-c", REFUSALS, json.dumps([["bench", *a] for a in argvs])], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["imported"] == [], f"a refusal imported {report['imported']}"
    return report["results"]


def assert_one_line_refusal(result: dict, *needles: str) -> None:
    lines = result["stderr"].splitlines()
    assert result["rc"] == 2 and len(lines) == 1, result
    assert lines[0].startswith("bilstm bench: error: ") and "Traceback" not in lines[0], lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


BAD_ARGUMENTS = [  # (arguments, what the one line must name)
    (["--batches", "0"], "--batches"),
    (["--units", "-5"], "--units"),
    (["--timesteps", "1.5"], "--timesteps"),
    (["--batches", "1,,8"], "--batches"),
    (["--budget", "nan"], "--budget"),
    (["--budget", "-1"], "--budget"),
    (["--budget", "ten"], "--budget"),
    (["--case-seconds", "inf"], "--case-seconds"),
    (["--threads", "0"], "--threads"),
    (["--devices", "tpu"], "--devices"),
    (["--devices", ""], "--devices"),
    (["--resume", "--overwrite"], "--overwrite"),
]


def test_bad_arguments_are_refused_in_one_line_before_any_work(tmp_path):
    outs = [tmp_path / f"out{i}" for i in range(len(BAD_ARGUMENTS))]
    argvs = [["--quick", "--backend", BACKEND, *args, "--out", str(out)] for (args, _), out in zip(BAD_ARGUMENTS, outs)]
    argvs.append(["--quick", "--backend", BACKEND, "--out", ""])
    results = refusals(argvs, cwd=tmp_path)
    for (args, needle), result in zip(BAD_ARGUMENTS, results):
        assert_one_line_refusal(result, needle)
    assert_one_line_refusal(results[-1], "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a refused run wrote something"


def test_an_out_that_is_a_file_or_under_one_is_refused(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    results = refusals([["--quick", "--backend", BACKEND, "--out", str(a_file)],
                        ["--quick", "--backend", BACKEND, "--out", str(a_file / "bench")]], cwd=tmp_path)
    assert_one_line_refusal(results[0], str(a_file), "is a file")
    assert_one_line_refusal(results[1], str(a_file), "is a file")
    assert a_file.read_text() == "not a folder"


def test_an_out_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    # Root may write anywhere, so the permission itself is simulated: os.access is what the check asks.
    locked = tmp_path / "read-only"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(UsageError, match="cannot write in .*read-only"):
        check_out_folder(str(locked / "bench"))
    check_out_folder(str(tmp_path / "bench"))  # a writable folder passes


def test_default_results_folder_is_outside_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = check_out_folder(None)
    assert folder.parent == DEFAULT_RESULTS and not folder.is_absolute()
    assert not folder.resolve().is_relative_to(ROOT / "benchmarks")  # the committed results stay untouched
    assert folder.resolve().is_relative_to(tmp_path)


def whole_record(case: Case, **fields) -> dict:
    return {"key": case.key, **case.as_dict(), "status": "ok", "median_s": 0.01, "q1_s": 0.009, "q3_s": 0.012,
            "iqr_s": 0.003, "repeats": 5, "first_step_s": 0.5, "sequences_per_s": case.batch / 0.01, "gflop": 0.001,
            "gflops": 0.1, "threads": None, **fields}


def test_an_existing_result_set_is_refused_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "bench"
    case = Case("keras", BACKEND, "cpu", "auto", 1, 10, 20)
    ResultsStore(out, machine=describe_machine()).put(whole_record(case))
    before = (out / "results.json").read_bytes()
    results = refusals([["--quick", "--backend", BACKEND, "--out", str(out)]], cwd=tmp_path)
    assert_one_line_refusal(results[0], str(out), "--resume", "--overwrite")
    assert (out / "results.json").read_bytes() == before


def test_a_corrupt_results_file_is_refused_with_or_without_resume(tmp_path):
    truncated, a_list, elsewhere = tmp_path / "truncated", tmp_path / "list", tmp_path / "elsewhere"
    for folder in (truncated, a_list, elsewhere):
        folder.mkdir()
    case = Case("keras", BACKEND, "cpu", "auto", 1, 10, 20)
    text = json.dumps({"machine": describe_machine(), "records": [whole_record(case)]})
    (truncated / "results.json").write_text(text[: len(text) // 2])
    (a_list / "results.json").write_text("[1, 2]")
    (elsewhere / "results.json").write_text(json.dumps({"machine": {**describe_machine(), "cpu_count": 4096},
                                                        "records": []}))
    quick = ["--quick", "--backend", BACKEND, "--out"]
    results = refusals([[*quick, str(truncated)], [*quick, str(truncated), "--resume"],
                        [*quick, str(a_list), "--resume"], [*quick, str(elsewhere), "--resume"]], cwd=tmp_path)
    assert_one_line_refusal(results[0], "already holds a result set")
    assert_one_line_refusal(results[1], "cannot resume", "not a readable results file", "--overwrite")
    assert_one_line_refusal(results[2], "cannot resume", "not an object")
    assert_one_line_refusal(results[3], "another machine", "cpu_count")
    assert (truncated / "results.json").read_text() == text[: len(text) // 2]


@pytest.mark.parametrize("change, why", [
    ({"median_s": None}, "median_s"),
    ({"median_s": math.nan}, "median_s"),
    ({"gflops": -1.0}, "gflops"),
    ({"q1_s": 0.02}, "quartiles"),
    ({"repeats": 0}, "repeats"),
    ({"batch": 8}, "not its key"),
    ({"status": "done"}, "status"),
    ({"error": None, "status": "error"}, "error"),
])
def test_record_problem_names_what_makes_a_record_unusable(change, why):
    case = Case("raw", "jax", "cpu", "scan", 1, 10, 20)
    assert record_problem(whole_record(case)) is None
    problem = record_problem(whole_record(case, **change))
    assert problem is not None and why in problem, problem


def test_resume_reuses_only_whole_consistent_records_and_says_which_run_again(tmp_path):
    cases = [Case("raw", "jax", "cpu", "scan", b, 10, 20) for b in (1, 2, 4, 8)]
    good, short, other_threads, stale = cases
    store = ResultsStore(tmp_path, machine={"cpu": "x"})
    store.put(whole_record(good))
    store.put({k: v for k, v in whole_record(short).items() if k not in ("q3_s", "median_s")})  # a cut record
    store.put(whole_record(other_threads, threads=2))  # timed under other settings than this run's
    store.put({"key": stale.key, "status": "running"})  # from a killed run: not done, runs again quietly
    data = json.loads((tmp_path / "results.json").read_text())
    data["records"].append([1, 2, 3])  # not an object at all
    (tmp_path / "results.json").write_text(json.dumps(data))
    lines: list[str] = []
    settings = Settings(["jax"], ["cpu"], {}, None, 1.0, None, tmp_path, resume=True, overwrite=False)
    prepared = prepare_folder(tmp_path, cases, settings, {"cpu": "x"}, lines.append)
    assert prepared.is_done(good.key) and prepared.records[good.key] == whole_record(good)
    assert not any(prepared.is_done(c.key) for c in (short, other_threads, stale))
    saved = ResultsStore(tmp_path)  # what the workers will read
    assert set(saved.records) == {good.key, stale.key} and saved.dropped == []
    text = "\n".join(lines)
    assert f"{short.key} not reused" in text and "median_s" in text
    assert f"{other_threads.key} not reused" in text and "--threads 2" in text
    assert "records[4] is not an object" in text
    assert good.key not in text


def test_overwrite_replaces_the_whole_result_set(tmp_path):
    case = Case("raw", "jax", "cpu", "scan", 1, 10, 20)
    ResultsStore(tmp_path, machine={"cpu": "x"}).put(whole_record(case))
    (tmp_path / "summary.md").write_text("old summary")
    (tmp_path / "gpu_speedup.png").write_bytes(b"old figure")
    settings = Settings(["jax"], ["cpu"], {}, None, 1.0, None, tmp_path, resume=False, overwrite=True)
    prepared = prepare_folder(tmp_path, [case], settings, {"cpu": "y"}, lambda s: None)
    assert prepared.records == {} and ResultsStore(tmp_path).machine == {"cpu": "y"}
    assert not (tmp_path / "summary.md").exists() and not (tmp_path / "gpu_speedup.png").exists()


def test_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(FolderLocked, match=f"pid {os.getpid()}"):
            FolderLock(tmp_path).acquire()
        results = refusals([["--quick", "--backend", BACKEND, "--out", str(tmp_path), "--resume"]], cwd=tmp_path)
    assert_one_line_refusal(results[0], "in use by another benchmark run", f"pid {os.getpid()}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]
    FolderLock(tmp_path).acquire().release()  # released with its holder


def test_a_run_that_times_nothing_exits_non_zero(tmp_path):
    # A budget spent before the first worker starts: every case is recorded as skipped, none timed.
    proc = subprocess.run([sys.executable, "-m", "keras_impl.cli", "bench", "--quick", "--backend", BACKEND,
                           "--out", str(tmp_path / "bench"), "--budget", "1e-9", "--no-summary"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no case was timed" in proc.stderr
    statuses = {r["status"] for r in ResultsStore(tmp_path / "bench").records.values()}
    assert statuses == {"skipped"}


# ---------------------------------------------------------------- a killed driver takes its worker with it


def children(pid: int) -> list[int]:
    """Live benchmark workers whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        if b"benchmarks.runner" in f.read():
                            found.append(int(entry))
            except OSError:  # gone meanwhile
                continue
    return found


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for a parent that is no more to collect it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def lock_is_free(folder: Path) -> bool:
    try:
        FolderLock(folder).acquire().release()
    except FolderLocked:
        return False
    return True


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the worker through /proc (Linux)")
def test_sigkill_of_bench_kills_its_worker_and_frees_the_folder(tmp_path):
    out = tmp_path / "bench"
    driver = subprocess.Popen([sys.executable, "-m", "keras_impl.cli", "bench", "--quick", "--backend", BACKEND,
                               "--no-raw", "--out", str(out), "--budget", "120", "--case-seconds", "60", "--no-summary"],
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        workers = wait_for(lambda: children(driver.pid), 60)
        assert workers, f"no worker started: {driver.poll()} {driver.stderr.read() if driver.poll() is not None else ''}"
        # A second run while the first is at work: refused, naming the first.
        results = refusals([["--quick", "--backend", BACKEND, "--no-raw", "--out", str(out), "--resume"]], cwd=tmp_path)
        assert_one_line_refusal(results[0], "in use by another benchmark run", f"pid {driver.pid}")
        time.sleep(0.5)  # let the worker get into its imports
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        assert wait_for(lambda: not any(alive(w) for w in workers), 10), "the worker outlived its driver"
        # Nobody holds the folder any more. (A killed worker's threads close its files as they exit, which
        # on a busy machine may take a moment after the process shows as a zombie.)
        assert wait_for(lambda: lock_is_free(out), 10), "the folder stayed locked after its run was killed"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stderr.close()
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)


MIDDLE = r"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdin=subprocess.PIPE if sys.argv[2] == "pipe" else subprocess.DEVNULL)
print(child.pid, flush=True)
time.sleep(120)
"""
ORPHAN = {  # each arms one lifeline alone, then waits to be ended by it
    "parent-death-signal": "from benchmarks.lifeline import parent_death_signal as arm; assert arm()",
    "stdin-pipe": "from benchmarks.lifeline import watch_stdin as arm; assert arm() is not None",
}


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="watches the processes through /proc (Linux)")
@pytest.mark.parametrize("lifeline", sorted(ORPHAN))
def test_each_lifeline_alone_ends_the_worker_with_its_parent(lifeline, tmp_path):
    code = ORPHAN[lifeline] + "\nimport time\nprint('armed', flush=True)\ntime.sleep(120)\n"  # stdout: the test's pipe
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, code, "pipe" if lifeline == "stdin-pipe" else "none"],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    child = int(middle.stdout.readline())
    try:
        assert middle.stdout.readline().strip() == "armed" and alive(child)
        middle.kill()
        middle.wait(timeout=10)
        assert wait_for(lambda: not alive(child), 10), f"{lifeline}: the child outlived its parent"
    finally:
        middle.stdout.close()
        if middle.poll() is None:
            middle.kill()
            middle.wait()
        if alive(child):
            os.kill(child, signal.SIGKILL)


# ---------------------------------------------------------------- the oracle's and the tutorial's speed scripts


@pytest.mark.parametrize("script", ["oracle_speed", "tutorial_speed"])
def test_speed_scripts_refuse_to_replace_a_result_unasked(script, tmp_path, capsys):
    import importlib
    module = importlib.import_module(f"benchmarks.{script}")
    existing = tmp_path / ("oracle_speed.json" if script == "oracle_speed" else f"tutorial_speed_{BACKEND}.json")
    existing.write_text('{"committed": true}')
    assert module.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(existing) in err[0] and "--overwrite" in err[0], err
    assert existing.read_text() == '{"committed": true}'
    assert module.main(["--out", str(existing)]) == 2  # a file where a folder should be
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("script, argv, needle", [
    ("oracle_speed", ["--repeats", "2"], "--repeats"),
    ("oracle_speed", ["--torch-threads", "0"], "--torch-threads"),
    ("oracle_speed", ["--tag", "../x"], "--tag"),
    ("tutorial_speed", ["--updates", "0"], "--updates"),
    ("tutorial_speed", ["--repeats", "-1"], "--repeats"),
    # not integers: once argparse's usage and error (two lines, SystemExit), now the one parser's one line
    ("oracle_speed", ["--repeats", "many"], "--repeats must be an integer, got 'many'"),
    ("oracle_speed", ["--warmup", "-1"], "--warmup must be at least 0, got -1"),
    ("tutorial_speed", ["--updates", "1e3"], "--updates must be an integer, got '1e3'"),
])
def test_speed_scripts_refuse_bad_values_in_one_line(script, argv, needle, tmp_path, capsys):
    import importlib
    assert importlib.import_module(f"benchmarks.{script}").main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()


def test_bench_and_the_experiments_refuse_with_the_one_usage_error_type(tmp_path):
    """Issue 16: one usage-error type for every command (once benchmarks.destination and the experiments had
    their own), and one integer parser, keras_impl.options's."""
    from benchmarks import destination, merge, shards, train_speed
    from keras_impl import options
    from keras_impl.commands import experiments
    assert destination.UsageError is merge.UsageError is shards.UsageError is train_speed.UsageError is options.UsageError
    assert not hasattr(experiments, "ArgumentError") and experiments.positive_int is options.positive_int
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for check in (destination.check_out_folder, experiments.check_output_dir, options.check_writable_folder):
        with pytest.raises(options.UsageError, match="is a file, not a folder"):
            check(str(a_file))
