"""The GPU run, rehearsed on the CPU: ``benchmarks/gpu/run_gpu.sh`` end to end, and what it leaves under $OUT.

The device tool gives a session one short GPU window, and what comes back is what the script writes
under $OUT: a script bug found on the day costs the window. Here the script runs as it will on the
GPU host, with the switches it has for a machine without a GPU or the carried wheels: ``WHEELS`` points
nowhere (the installed Keras is used), the sweep is ``--quick --stand-in`` (benchmarks/stand_in.py:
the machinery, no framework, seconds), and the parity step runs one NumPy-only test a backend
(``PARITY_FILES``, ``PARITY_ARGS``) where the GPU run keeps the full list. ``-m slow`` runs it with real
Keras steps and a Keras parity test.

The script runs both backends itself, so the test runs once a suite run: in the jax pass.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks.cases import QUICK_SHAPES
from benchmarks.environment import describe_machine
from parity_tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu" / "run_gpu.sh"
GROUPS = ("keras-jax-cpu-auto", "raw-jax-cpu-scan", "keras-torch-cpu-auto", "raw-torch-cpu-native")
OUT_FILES = {"run.log", "summary.md", "results.json", "gpu_results.tar.gz",
             "parity_jax.log", "parity_jax.xml", "parity_torch.log", "parity_torch.xml"}
PYTEST_CLOSING = re.compile(r"^\d+ passed(, \d+ \w+)* in [0-9.]+s$")  # -q: "1 passed, 158 deselected in 2.3s"

once = pytest.mark.skipif(BACKEND != "jax", reason="run_gpu.sh runs jax and torch itself: once a suite run, in the jax pass")


def rehearse(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    out, results = tmp_path / "out", tmp_path / "device-results" / "cpu-rehearsal"
    settings = {"OUT": str(out), "RESULTS": str(results), "WHEELS": str(tmp_path / "no-wheels"), "PY": sys.executable,
                "SWEEP_BUDGET": "60", "PARITY_TIMEOUT": "120", "BENCH_ARGS": "--quick --stand-in --case-seconds 0.05",
                "PARITY_FILES": "parity_tests/oracle/test_oracle_self.py",
                "PARITY_ARGS": "-k test_cell_matches_textbook_equations", **env}
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env={**base, **settings},
                          capture_output=True, text=True, timeout=600)
    return proc, out, results


def check_what_comes_back(proc, out: Path, results: Path, *, stand_in: bool) -> None:
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert {p.name for p in out.iterdir()} == OUT_FILES  # the device tool brings back at most 8 files
    log = (out / "run.log").read_text()
    assert log.rstrip().endswith("done; all passed") and "sweep done (status 0)" in log
    assert proc.stdout == log  # tee wrote the whole log before the script ended

    with tarfile.open(out / "gpu_results.tar.gz") as tar:
        names = set(tar.getnames())
        folder = results.name
        for name in ("results.json", "results.csv", "summary.md", "sweep.json", "ratios.csv"):
            assert f"{folder}/{name}" in names, (name, sorted(names))
        assert any(n.endswith(".png") for n in names) and f"{folder}/.bench.lock" not in names
        packed = json.load(tar.extractfile(f"{folder}/results.json"))
    back = json.loads((out / "results.json").read_text())
    assert packed == back
    expected = {f"{g}|B{b}|T{t}|U{u}|D16|float32" for g in GROUPS for b, t, u in QUICK_SHAPES}
    assert {r["key"] for r in back["records"]} == expected
    assert all(r["status"] == "ok" and bool(r.get("stand_in")) == stand_in for r in back["records"])

    summary = (out / "summary.md").read_text()
    assert f"Machine: {describe_machine()['cpu']}" in summary
    for group in GROUPS:
        assert f"| {group} | 3 |" in summary, group  # the cases table: 3 quick shapes each
    assert ("**Stand-in run**" in summary) == stand_in
    assert "GPU run (`benchmarks/gpu/run_gpu.sh`) is still owed" in summary  # no GPU in a CPU rehearsal

    for backend in ("jax", "torch"):
        lines = [line for line in (out / f"parity_{backend}.log").read_text().splitlines() if line.strip()]
        assert PYTEST_CLOSING.match(lines[-1]), (backend, lines[-3:])
        assert re.search(r'failures="0"', (out / f"parity_{backend}.xml").read_text())
        assert f"parity {backend}: status 0" in log


@once
def test_run_gpu_script_end_to_end_on_the_cpu(tmp_path):
    check_what_comes_back(*rehearse(tmp_path), stand_in=True)


@once
def test_run_gpu_script_says_what_failed_and_exits_1(tmp_path):
    # A sweep refused at once (a bad budget: no results folder, so no tarball) and a parity step with nothing
    # to run: seconds, and each failure reported.
    proc, out, _ = rehearse(tmp_path, SWEEP_BUDGET="0", PARITY_FILES="parity_tests/no_such_file.py")
    assert proc.returncode == 1, proc.stdout[-3000:]
    log = (out / "run.log").read_text()
    assert log.rstrip().endswith("done; failed: sweep tarball parity-jax parity-torch"), log[-500:]
    assert "bilstm bench: error: --budget must be a positive" in log


@pytest.mark.slow
@once
def test_run_gpu_script_end_to_end_with_real_steps(tmp_path):
    check_what_comes_back(*rehearse(tmp_path, BENCH_ARGS="--quick --threads 1 --case-seconds 0.05", SWEEP_BUDGET="400",
                                    PARITY_FILES="parity_tests/parity/test_layer_parity.py",
                                    PARITY_ARGS="-k test_bidirectional_rejects_a_go_backwards_layer"), stand_in=False)
