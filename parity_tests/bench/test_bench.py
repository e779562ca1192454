"""The benchmark machinery: ``bilstm bench --quick`` on this process's backend, resume, failures, budget.

The speed figures themselves are measured by the benchmark, never asserted here;
these tests check that the sweep runs, records what it must, resumes, and keeps
going past a failing case.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cases import QUICK_SHAPES, Case, parameters, train_step_flops
from benchmarks.runner import MIN_REPEATS, run_group
from benchmarks.step import Step
from benchmarks.store import CSV_FIELDS, ResultsStore
from parity_tests.conftest import BACKEND
from reference import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
RAW_GROUP = {"jax": "raw-jax-cpu-scan", "torch": "raw-torch-cpu-native"}  # TensorFlow has no raw baseline
CPU_KERNELS = {"jax": "generic", "tensorflow": "generic", "torch": "torch-fallback-loop"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("bench") / "quick"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.perf_counter()
    # --case-seconds 0.05 (--quick's own is 0.3): the tests check what is recorded, never the speeds, and a case is
    # still timed MIN_REPEATS steps at least, after its warm-up; the sweep, its workers and its files are the same.
    proc = subprocess.run([sys.executable, "-m", "keras_impl.cli", "bench", "--quick", "--backend", BACKEND,
                           "--out", str(out), "--budget", "240", "--case-seconds", "0.05", "--no-summary"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out, time.perf_counter() - t0


def expected_groups() -> list[str]:
    return [f"keras-{BACKEND}-cpu-auto"] + ([RAW_GROUP[BACKEND]] if BACKEND in RAW_GROUP else [])


def test_quick_bench_times_every_quick_case(quick_run):
    out, _ = quick_run
    records = {r["key"]: r for r in json.loads((out / "results.json").read_text())["records"]}
    for group in expected_groups():
        for b, t, u in QUICK_SHAPES:
            key = f"{group}|B{b}|T{t}|U{u}|D16|float32"
            assert key in records, f"{key} missing"
            assert records[key]["status"] == "ok", f"{key}: {records[key]}"


def test_quick_bench_records_the_required_fields(quick_run):
    out, _ = quick_run
    data = json.loads((out / "results.json").read_text())
    assert data["machine"]["cpu_count"] >= 1
    for r in data["records"]:
        assert r["device"] == "cpu" and r["device_name"], r["key"]
        assert r["dtype"] == "float32" and r["tf32"] is False
        assert r["q1_s"] <= r["median_s"] <= r["q3_s"] and r["iqr_s"] >= 0
        assert r["repeats"] >= MIN_REPEATS
        assert r["sequences_per_s"] == pytest.approx(r["batch"] / r["median_s"])
        assert r["gflops"] == pytest.approx(train_step_flops(r["batch"], r["timesteps"], r["units"], 16) / r["median_s"] / 1e9)
        assert r[r["framework"]], f"{r['key']}: no {r['framework']} version recorded"
        if r["impl"] == "keras":
            assert r["keras"] and r["kernel"] == CPU_KERNELS[BACKEND], r["key"]
        else:
            assert r["kernel"] in ("lax.scan", "aten-cpu"), r["key"]


def test_quick_bench_csv_matches_json(quick_run):
    out, _ = quick_run
    with open(out / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_FIELDS
        rows = {row["key"]: row for row in reader}
    records = {r["key"]: r for r in json.loads((out / "results.json").read_text())["records"]}
    assert rows.keys() == records.keys()
    for key, row in rows.items():
        assert float(row["median_s"]) == pytest.approx(records[key]["median_s"])
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"


# ---------------------------------------------------------------- the sweep loop, with stand-in steps


def cases(n: int = 3) -> list[Case]:
    return [Case("raw", "jax", "cpu", "scan", 2 ** k, 10, 20) for k in range(n)]


def counting_builder(calls: list, fail_key: str | None = None, sleep_s: float = 0.0):
    def build(case: Case) -> Step:
        calls.append(case.key)
        if case.key == fail_key:
            raise MemoryError("out of memory (injected)")
        return Step(run=lambda: time.sleep(sleep_s), sync=lambda out: None, describe=lambda: {"kernel": "stand-in"})
    return build


def test_failing_case_is_recorded_and_the_sweep_goes_on(tmp_path):
    cs, calls = cases(), []
    store = ResultsStore(tmp_path)
    run_group(cs, counting_builder(calls, fail_key=cs[1].key), store, time.time() + 30, case_seconds=0.05, log=lambda s: None)
    saved = ResultsStore(tmp_path)
    assert saved.status(cs[0].key) == "ok" and saved.status(cs[2].key) == "ok"
    assert saved.status(cs[1].key) == "error"
    assert saved.records[cs[1].key]["error"] == "MemoryError: out of memory (injected)"
    assert calls == [c.key for c in cs]


def test_resume_skips_done_cases_and_retries_skipped_ones(tmp_path):
    cs, calls = cases(), []
    store = ResultsStore(tmp_path)
    store.put({"key": cs[0].key, "status": "ok", "median_s": 1.0})
    store.put({"key": cs[1].key, "status": "error", "error": "earlier failure"})
    store.put({"key": cs[2].key, "status": "skipped", "reason": "over budget"})
    run_group(cs, counting_builder(calls), ResultsStore(tmp_path), time.time() + 30, case_seconds=0.05, log=lambda s: None)
    assert calls == [cs[2].key]
    saved = ResultsStore(tmp_path)
    assert saved.records[cs[0].key]["median_s"] == 1.0 and saved.records[cs[1].key]["error"] == "earlier failure"
    assert saved.status(cs[2].key) == "ok"


def test_spent_budget_records_cases_as_skipped_with_a_reason(tmp_path):
    cs, calls = cases(), []
    run_group(cs, counting_builder(calls), ResultsStore(tmp_path), time.time() - 1, log=lambda s: None)
    saved = ResultsStore(tmp_path)
    assert calls == []
    assert all(saved.status(c.key) == "skipped" and "budget" in saved.records[c.key]["reason"] for c in cs)


def test_case_estimated_over_budget_is_skipped(tmp_path):
    small = Case("raw", "jax", "cpu", "scan", 1, 10, 20)
    huge = Case("raw", "jax", "cpu", "scan", 1024, 100, 1024)  # ~1e5 times the FLOPs of `small`
    calls = []
    run_group([small, huge], counting_builder(calls, sleep_s=0.002), ResultsStore(tmp_path), time.time() + 3,
              case_seconds=0.05, log=lambda s: None)
    saved = ResultsStore(tmp_path)
    assert calls == [small.key]
    assert saved.status(huge.key) == "skipped"
    assert saved.records[huge.key]["reason"].startswith("over budget: estimated")


def test_estimate_carries_over_from_an_earlier_worker(tmp_path):
    small = Case("raw", "jax", "cpu", "scan", 1, 10, 20)
    huge = Case("raw", "jax", "cpu", "scan", 1024, 100, 1024)
    store = ResultsStore(tmp_path)
    store.put({"key": small.key, **small.as_dict(), "status": "ok", "median_s": 0.002, "first_step_s": 0.5})
    calls = []  # without the earlier record, `huge` would be a first case with nothing to estimate from, and run
    run_group([huge], counting_builder(calls), ResultsStore(tmp_path), time.time() + 3, log=lambda s: None)
    assert calls == []
    assert ResultsStore(tmp_path).records[huge.key]["reason"].startswith("over budget: estimated")


def test_worker_that_died_leaves_its_case_as_an_error(tmp_path):
    from benchmarks.train_speed import mark_dead
    c = cases(1)[0]
    store = ResultsStore(tmp_path)
    store.put({"key": c.key, "status": "running"})
    mark_dead(store, [c], "worker process exited with status -9")
    assert ResultsStore(tmp_path).records[c.key] == {"key": c.key, "status": "error", "error": "worker process exited with status -9"}


def test_parameter_count_matches_the_model_spec():
    for units, features in ((20, 1), (128, 16), (7, 3)):
        spec = ModelSpec(timesteps=10, features=features, units=units)
        assert parameters(units, features) == sum(int(__import__("numpy").prod(s)) for s in spec.weight_shapes())


def test_summary_computes_keras_over_raw_ratios(tmp_path):
    from benchmarks.summary import write_summary
    store = ResultsStore(tmp_path, machine={"cpu": "test cpu", "cpu_count": 2, "gpus": []})
    for group, median in (("keras-jax-cpu-auto", 0.03), ("raw-jax-cpu-scan", 0.01)):
        impl, fw = group.split("-")[:2]
        for b in (1, 8):
            c = Case(impl, fw, "cpu", "auto" if impl == "keras" else "scan", b, 10, 20)
            t = median * b
            # IQR 6% of the median: steady (over 10% would be noisy, and left out of the ratios)
            store.put({"key": c.key, **c.as_dict(), "status": "ok", "median_s": t, "q1_s": 0.97 * t, "q3_s": 1.03 * t,
                       "sequences_per_s": b / t, "gflop": 1.0, "gflops": 1.0 / t, "kernel": "k"})
    write_summary(tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert "| keras-jax-cpu-auto | raw-jax-cpu-scan | 2 | 3.00 |" in text
    assert "GPU run (`benchmarks/gpu/run_gpu.sh`) is still owed" in text
    assert (tmp_path / "ratios.csv").exists() and (tmp_path / "keras_over_raw_cpu.png").stat().st_size > 0
