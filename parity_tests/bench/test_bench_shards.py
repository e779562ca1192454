"""A sweep across many machines: ``bilstm bench --shard K/N`` and ``bilstm bench merge``.

The end-to-end runs use ``--stand-in`` (a step that imports no framework, benchmarks/stand_in.py):
the driver, workers, results files, sharding and merging run as in a real sweep, in seconds.
The same checks with real Keras steps are marked slow.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cases import QUICK_SHAPES
from benchmarks.shards import (SWEEP_FILE, Shard, fingerprint, parse_shard, read_sweep, resolve_shard, select,
                               shard_from_env, sweep_definition)
from benchmarks.store import ResultsStore
from benchmarks.train_speed import plan
from keras_impl.cli import main as bilstm
from keras_impl.options import UsageError
from parity_tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("keras", "jax", "torch", "tensorflow")
# Six shapes, both implementations of this backend (TensorFlow has no raw one): seconds with --stand-in.
GRID = ["--devices", "cpu", "--batches", "1,2,4", "--timesteps", "10", "--units", "20,30"]
STAND_IN = ["--stand-in", "--backend", BACKEND, *GRID, "--case-seconds", "0.02", "--budget", "120", "--no-summary"]


def bench(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keras_impl.cli", "bench", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=300)


def keys(folder: Path) -> set[str]:
    return set(ResultsStore(folder).records)


# ---------------------------------------------------------------- the rule


def test_shards_partition_the_grid_by_whole_shapes_dealt_in_flop_order():
    cases = plan(["jax", "torch"], ["cpu"], quick=True)
    parts = [select(cases, Shard(k, 2)) for k in (1, 2)]
    shapes = [{(c.batch, c.timesteps, c.units) for c in part} for part in parts]
    # QUICK_SHAPES by FLOPs: (1,10,20) < (8,10,20) < (64,10,128), dealt 1, 2, 1.
    assert shapes == [{(1, 10, 20), (64, 10, 128)}, {(8, 10, 20)}]
    assert sorted(c.key for part in parts for c in part) == sorted(c.key for c in cases)  # each case once
    for part, its_shapes in zip(parts, shapes):  # every implementation of a shape is in its shard
        assert len(part) == 4 * len(its_shapes)


def test_the_rule_does_not_depend_on_the_order_of_the_cases():
    cases = plan(["jax", "torch"], ["cpu", "gpu"], batches=(1, 8, 64), timesteps=(10, 100), units=(20, 128))
    shuffled = cases[:]
    random.Random(11).shuffle(shuffled)
    for n in (1, 3, 5):
        for k in range(1, n + 1):
            assert {c.key for c in select(cases, Shard(k, n))} == {c.key for c in select(shuffled, Shard(k, n))}
        sizes = [len({(c.batch, c.timesteps, c.units) for c in select(cases, Shard(k, n))}) for k in range(1, n + 1)]
        assert max(sizes) - min(sizes) <= 1, sizes
    assert fingerprint(cases) == fingerprint(shuffled) != fingerprint(cases[1:])


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "1/0", "-1/2", "a/b", "1/2/3", ""])
def test_a_bad_shard_is_refused_naming_the_option(text):
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_a_good_shard_parses():
    assert parse_shard(" 2 / 4 ") == Shard(2, 4) and str(parse_shard("1/1")) == "1/1"


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(1, 4)),      # --array=0-3
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(4, 4)),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, Shard(4, 4)),  # --array=1-4
])
def test_the_slurm_array_gives_the_shard(env, expected):
    assert shard_from_env(env) == expected


@pytest.mark.parametrize("env, needle", [
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, "SLURM_ARRAY_TASK_ID=4"),  # --array=1-4 without MIN
    ({"SLURM_ARRAY_TASK_ID": "2"}, "SLURM_ARRAY_TASK_COUNT is not set"),
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, "SLURM_ARRAY_TASK_ID='x'"),
])
def test_a_bad_slurm_array_is_refused_naming_its_variables(env, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(")):
        shard_from_env(env)


def test_shard_option_wins_over_the_slurm_array():
    assert resolve_shard("1/3", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}) == Shard(1, 3)
    assert resolve_shard(None, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}) == Shard(2, 2)
    assert resolve_shard(None, {}) == Shard(1, 1)


REFUSALS = r"""
import contextlib, io, json, os, sys
from keras_impl.cli import main
results = []
for argv, env in json.loads(sys.argv[1]):
    os.environ.update(env)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    for name in env:
        del os.environ[name]
    results.append({"rc": rc, "stderr": err.getvalue()})
print(json.dumps({"results": results, "imported": [m for m in %r if m in sys.modules]}))
""" % (FRAMEWORKS,)


def test_bad_shards_are_refused_in_one_line_before_any_work(tmp_path):
    quick = ["bench", "--quick", "--backend", BACKEND]
    calls = [  # (argv, environment, what the one line names)
        ([*quick, "--shard", "0/2"], {}, "--shard"),
        ([*quick, "--shard", "3/2"], {}, "--shard"),
        ([*quick, "--shard", "half"], {}, "--shard"),
        ([*quick, "--shard", "1/4"], {}, "3 shapes"),  # --quick has 3 shapes: at most 3 shards
        (quick, {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3"}, "SLURM_ARRAY_TASK_ID=7"),
        (quick, {"SLURM_ARRAY_TASK_ID": "1"}, "SLURM_ARRAY_TASK_COUNT"),
        (quick, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "5"}, "SLURM_ARRAY_TASK_COUNT"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run([sys.executable, "-c", REFUSALS, json.dumps([[a, e] for a, e, _ in calls])], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["imported"] == [], f"a refusal imported {report['imported']}"
    for (argv, _, needle), result in zip(calls, report["results"]):
        lines = result["stderr"].splitlines()
        assert result["rc"] == 2 and len(lines) == 1 and lines[0].startswith("bilstm bench: error: "), (argv, result)
        assert needle in lines[0], (needle, lines[0])
    assert list(tmp_path.iterdir()) == [], "a refused run wrote something"


# ---------------------------------------------------------------- end to end


def test_the_slurm_array_picks_the_shard_and_its_own_default_folder(tmp_path):
    proc = bench(STAND_IN, cwd=tmp_path, env={"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [folder] = list((tmp_path / "results" / "bench").glob("*/shard-2-of-2"))
    sweep = read_sweep(folder)
    assert (sweep["shards"], sweep["of"]) == ([2], 2)
    assert set(sweep["cases"]) == keys(folder) and len(keys(folder)) == len(sweep["cases"]) > 0
    assert "bench: shard 2/2:" in proc.stdout


@pytest.fixture(scope="module")
def shard_runs(tmp_path_factory) -> Path:
    """Shards 1/2 and 2/2 and one unsharded run of the same grid, and shards 1/3, 2/3, 3/3: stand-in steps."""
    root = tmp_path_factory.mktemp("shards")
    for name, shard in (("s1of2", "1/2"), ("s2of2", "2/2"), ("whole", None), ("s1of3", "1/3"), ("s2of3", "2/3"),
                        ("s3of3", "3/3")):
        proc = bench([*STAND_IN, "--out", str(root / name), *(["--shard", shard] if shard else [])], cwd=root)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return root


def test_two_shards_merged_equal_one_unsharded_run(shard_runs, tmp_path, capsys):
    out = tmp_path / "merged"
    assert bilstm(["bench", "merge", str(shard_runs / "s1of2"), str(shard_runs / "s2of2"), "--out", str(out)]) == 0
    merged, whole = keys(out), keys(shard_runs / "whole")
    assert merged == whole and len(whole) == 6 * (2 if BACKEND in ("jax", "torch") else 1)
    assert keys(shard_runs / "s1of2").isdisjoint(keys(shard_runs / "s2of2"))
    records = ResultsStore(out).records
    assert {r["shard"] for r in records.values()} == {1, 2}
    assert all(r["machine"] and r["hostname"] and r["status"] == "ok" for r in records.values())
    sweep = read_sweep(out)
    assert (sweep["shards"], sweep["of"], sweep["missing_shards"]) == ([1, 2], 2, [])
    assert sweep["fingerprint"] == read_sweep(shard_runs / "whole")["fingerprint"]
    text = (out / "summary.md").read_text()
    assert "Shards: 1/2, 2/2 of grid" in text and "Incomplete" not in text
    assert "missing" not in capsys.readouterr().err


def test_a_missing_shard_is_named_and_the_merge_exits_1(shard_runs, tmp_path, capsys):
    partial = tmp_path / "partial"
    assert bilstm(["bench", "merge", str(shard_runs / "s1of3"), str(shard_runs / "s3of3"), "--out", str(partial)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "shard 2/3 missing" in err[0] and str(partial) in err[0], err
    assert read_sweep(partial)["missing_shards"] == [2]
    assert "**Incomplete: shard 2/3 missing**" in (partial / "summary.md").read_text()
    assert keys(partial) == keys(shard_runs / "s1of3") | keys(shard_runs / "s3of3")
    # The partial merge is a shard folder itself: adding the missing shard completes the set.
    whole = tmp_path / "whole"
    assert bilstm(["bench", "merge", str(partial), str(shard_runs / "s2of3"), "--out", str(whole), "--no-summary"]) == 0
    assert keys(whole) == keys(shard_runs / "whole")


def test_resume_refuses_another_shard_or_grid(shard_runs, tmp_path):
    folder = tmp_path / "s1"
    shutil.copytree(shard_runs / "s1of2", folder)
    other_shard = bench([*STAND_IN, "--out", str(folder), "--shard", "2/2", "--resume"], cwd=tmp_path)
    other_grid = bench([*STAND_IN, "--units", "20", "--out", str(folder), "--shard", "1/2", "--resume"], cwd=tmp_path)
    for proc, needles in ((other_shard, ("holds shard 1/2", "this run is shard 2/2")),
                          (other_grid, ("another grid", "shapes"))):
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert all(n in lines[0] for n in needles), lines[0]
    assert keys(folder) == keys(shard_runs / "s1of2")
    before = ResultsStore(folder).records
    same = bench([*STAND_IN, "--out", str(folder), "--shard", "1/2", "--resume"], cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert ResultsStore(folder).records == before  # the same shard of the same grid: resumed, nothing to re-time


# ---------------------------------------------------------------- refusals of merge, from hand-made folders


HAND_GRID = dict(batches=(1, 2, 3), timesteps=(10,), units=(20,))  # three shapes: shards of 2 or 3


def shard_folder(path: Path, shard: int, of: int = 2, *, threads: int | None = None, versions: dict | None = None,
                 machine: dict | None = None) -> Path:
    """A hand-made shard folder of a three-shape grid (Keras on JAX, no raw): its sweep.json as a run writes
    it, and a whole record for each of its cases."""
    full = plan(["jax"], ["cpu"], raw=False, **HAND_GRID)
    grid = {"backends": ["jax"], "devices": ["cpu"],
            "shapes": [list(s) for s in sorted({(c.batch, c.timesteps, c.units) for c in full})], "features": 16,
            "raw": False, "tf32": False, "data_parallel": 1, "threads": threads, "stand_in": False}
    cases = select(full, Shard(shard, of))
    store = ResultsStore(path, machine=machine or {"cpu": "cpu A", "cpu_count": 2, "gpus": [], "hostname": "a"})
    for c in cases:
        store.put({"key": c.key, **c.as_dict(), "status": "ok", "median_s": 0.01, "q1_s": 0.0099, "q3_s": 0.0101,
                   "iqr_s": 0.0002, "repeats": 5, "first_step_s": 0.1, "sequences_per_s": 100.0, "gflop": 0.001,
                   "gflops": 0.1, "noisy": False})
    sweep = sweep_definition(full, cases, Shard(shard, of), grid)
    sweep["versions"] = versions or {"keras": "3.15.1", "jax": "0.10.2", "torch": "2.13.0+cpu", "numpy": "2.4.6"}
    (path / SWEEP_FILE).write_text(json.dumps(sweep))
    return path


def merge_refusal(dirs: list[Path], out: Path, capsys, *extra: str) -> str:
    assert bilstm(["bench", "merge", *map(str, dirs), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bilstm bench merge: error: "), err
    return err[0]


def test_merge_refuses_mixed_grids_versions_and_doubled_shards_naming_the_difference(tmp_path, capsys):
    a = shard_folder(tmp_path / "a", 1)
    threads = shard_folder(tmp_path / "threads", 2, threads=1)
    jax_old = shard_folder(tmp_path / "jax-old", 2, versions={"keras": "3.15.1", "jax": "0.10.1"})
    split3 = shard_folder(tmp_path / "split3", 2, of=3)
    twice = shard_folder(tmp_path / "twice", 1)
    out = tmp_path / "out"
    line = merge_refusal([a, threads], out, capsys)
    assert "different grids" in line and f"threads null in {a}, 1 in {threads}" in line
    line = merge_refusal([a, jax_old], out, capsys)
    assert "mixed versions of jax" in line and "0.10.1 in" in line and "0.10.2 in" in line
    assert "shard of 3" in merge_refusal([a, split3], out, capsys)
    line = merge_refusal([a, twice], out, capsys)
    assert "shard 1/2 is in both" in line and str(twice) in line
    assert not out.exists(), "a refused merge wrote something"


def test_merge_accepts_another_machine_and_another_build_of_one_release(tmp_path, capsys):
    a = shard_folder(tmp_path / "a", 1)
    gpu_box = shard_folder(tmp_path / "b", 2, machine={"cpu": "cpu B", "cpu_count": 16, "gpus": ["NVIDIA H200"],
                                                       "hostname": "b"},
                           versions={"keras": "3.15.1", "jax": "0.10.2", "torch": "2.13.0+cu126", "numpy": "2.4.6"})
    out = tmp_path / "out"
    assert bilstm(["bench", "merge", str(a), str(gpu_box), "--out", str(out), "--no-summary"]) == 0
    machine, records = ResultsStore(out).machine, ResultsStore(out).records
    assert sorted(machine["machines"]) == ["cpu-2c-cpu-a", "nvidia-h200-16c-cpu-b"]
    assert {r["machine"] for r in records.values()} == {"cpu-2c-cpu-a", "nvidia-h200-16c-cpu-b"}
    assert {r["hostname"] for r in records.values()} == {"a", "b"}


def test_merge_refuses_folders_it_cannot_read_and_an_out_it_must_not_write(tmp_path, capsys):
    a, b = shard_folder(tmp_path / "a", 1), shard_folder(tmp_path / "b", 2)
    legacy = tmp_path / "legacy"
    shutil.copytree(a, legacy)
    (legacy / SWEEP_FILE).unlink()
    assert "sweep.json does not exist" in merge_refusal([legacy, b], tmp_path / "out", capsys)
    assert "not a folder" in merge_refusal([tmp_path / "nowhere", b], tmp_path / "out", capsys)
    assert "one of the folders to merge" in merge_refusal([a, b], a, capsys)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "summary.md").write_text("someone's summary")
    assert "--overwrite" in merge_refusal([a, b], taken, capsys)
    assert (taken / "summary.md").read_text() == "someone's summary"
    assert bilstm(["bench", "merge", str(a), str(b), "--out", str(taken), "--overwrite", "--no-summary"]) == 0
    assert not (taken / "summary.md").exists() and len(keys(taken)) == 3


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))  # NaN stays NaN, as a hand or another tool would write it


def edit_first_record(**fields):
    return lambda data: data["records"][0].update(fields)


# a damaged record -> a fragment of the refusal (which names the field)
BAD_RECORDS = {
    "negative_median": (edit_first_record(median_s=-0.01, q1_s=-0.02), "median_s"),
    "nan_median": (edit_first_record(median_s=float("nan")), "median_s"),
    "key_disagrees": (edit_first_record(units=30), "its fields describe keras-jax-cpu-auto|B"),
    "string_timing": (edit_first_record(gflops="fast"), "gflops"),
}


@pytest.mark.parametrize("summary", [[], ["--no-summary"]], ids=["summary", "no_summary"])
@pytest.mark.parametrize("damage", list(BAD_RECORDS))
def test_merge_refuses_a_record_that_resume_would_not_reuse(damage, summary, tmp_path, capsys):
    """Once merged with exit 0 (--no-summary), or a TypeError / matplotlib "Invalid vmin or vmax" traceback."""
    a, b = shard_folder(tmp_path / "a", 1), shard_folder(tmp_path / "b", 2)
    change, field = BAD_RECORDS[damage]
    edit_json(b / "results.json", change)
    line = merge_refusal([a, b], tmp_path / "out", capsys, *summary)
    assert str(b / "results.json") in line and field in line, line
    assert not (tmp_path / "out" / "results.json").exists()


def test_merge_and_resume_share_one_record_check():
    from benchmarks import merge, store, train_speed
    assert merge.record_problem is store.record_problem is train_speed.record_problem


# a sweep.json edited -> a fragment of the refusal (which names the field)
BAD_SWEEPS = {
    "claims_other_shards": (lambda sweep: sweep.update(shards=[1, 2]), "'shards' says shard 1,2/2, but its cases "
                                                                       "are those of shard 1/2"),
    "of_edited_to_1": (lambda sweep: sweep.update(of=1), "'cases' lists 2 of the 3 cases of shard 1/1: cut short, or "
                                                         "'of' or 'shards' edited (they are exactly the cases of shard 1/2)"),
    "cases_cut": (lambda sweep: sweep.update(cases=sweep["cases"][:1]), "'cases' lists 1 of the 2 cases of shard 1/2"),
    "case_of_another_grid": (lambda sweep: sweep["cases"].append("keras-jax-cpu-auto|B9|T10|U20|D16|float32"),
                             "'cases' lists 1 case(s) its grid does not have"),
    "grid_edited": (lambda sweep: sweep["grid"].update(shapes=sweep["grid"]["shapes"][:2]),
                    "'grid' does not give its 'fingerprint'"),
}


@pytest.mark.parametrize("damage", list(BAD_SWEEPS))
def test_merge_refuses_a_shard_whose_sweep_says_what_it_is_not(damage, tmp_path, capsys):
    """Once a shard claiming shard 2 too, or 'of' edited to 1, made a partial merge report itself complete (exit 0),
    and a cut 'cases' list left records out without a word."""
    a = shard_folder(tmp_path / "a", 1)
    change, needle = BAD_SWEEPS[damage]
    edit_json(a / SWEEP_FILE, change)
    line = merge_refusal([a], tmp_path / "out", capsys, "--no-summary")
    assert str(a / SWEEP_FILE) in line and needle in line, line
    assert not (tmp_path / "out").exists()


def test_merge_refuses_a_merged_record_filed_under_another_shard(tmp_path, capsys):
    a, b = shard_folder(tmp_path / "a", 1), shard_folder(tmp_path / "b", 2)
    merged = tmp_path / "merged"
    assert bilstm(["bench", "merge", str(a), str(b), "--out", str(merged), "--no-summary"]) == 0
    edit_json(merged / "results.json", edit_first_record(shard=2))
    line = merge_refusal([merged], tmp_path / "out", capsys, "--no-summary")
    assert "'shard' is 2, but that case is in shard 1/2" in line, line


# ---------------------------------------------------------------- the same with real Keras steps


@pytest.mark.slow
def test_two_real_shards_merged_equal_one_unsharded_run(tmp_path, capsys):
    real = ["--quick", "--backend", BACKEND, "--no-raw", "--case-seconds", "0.05", "--budget", "300", "--no-summary"]
    for name, shard in (("s1", "1/2"), ("s2", "2/2"), ("whole", None)):
        proc = bench([*real, "--out", str(tmp_path / name), *(["--shard", shard] if shard else [])], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert bilstm(["bench", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]) == 0
    assert keys(tmp_path / "m") == keys(tmp_path / "whole") == {f"keras-{BACKEND}-cpu-auto|B{b}|T{t}|U{u}|D16|float32"
                                                                 for b, t, u in QUICK_SHAPES}
