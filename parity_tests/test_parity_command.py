"""``bilstm parity``: the table, the exit codes, the backend option.

    KERAS_BACKEND=torch pytest parity_tests/test_parity_command.py
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from keras_impl.backend import BackendError
from keras_impl.commands import parity as parity_command
from keras_impl.parity import checks

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def test_quick_run_prints_an_all_pass_table_and_exits_0():
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # --backend alone must choose it
    done = subprocess.run([sys.executable, "-m", "keras_impl.cli", "parity", "--quick", "--backend", BACKEND],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"bilstm parity: backend {BACKEND},"), lines[0]
    header = next(line for line in lines if line.startswith("section"))
    assert header.split() == ["section", "configuration", "dtype", "worst", "abs", "error", "tolerance", "verdict"]
    rows = [line.split() for line in lines if line.startswith(("layer ", "model "))]
    assert len(rows) == 13, done.stdout  # 7 layer kinds + 6 model directions
    for _section, configuration, dtype, error, tolerance, verdict in rows:
        assert dtype == "float32" and verdict == "pass", (configuration, error, tolerance, verdict)
        assert 0 < float(error) <= float(tolerance)  # a zero error would mean nothing was compared
    # + 2 gradient rows and 1 trajectory row (keras_impl/parity/training_checks.py)
    assert lines[-1].startswith("PARITY OK: 16 checks, 16 pass"), lines[-1]


def _args(**kw):
    return argparse.Namespace(**{"backend": None, "dtype": "float32", "quick": True, **kw})


def test_a_failing_check_exits_1(monkeypatch, capsys):
    """The real model checks with an impossible tolerance: every row must say FAIL and the exit code 1."""
    monkeypatch.setattr(checks, "SECTIONS", [("model", checks.model_section)])
    monkeypatch.setattr(checks, "tolerance", lambda options: 0.0)
    assert parity_command.run(_args()) == 1
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("model ")]
    assert len(rows) == 6 and all(r[-1] == "FAIL" for r in rows), out
    assert "PARITY FAILED: 6 checks, 0 pass, 0 known divergences, 6 FAIL" in out


def test_an_unusable_backend_exits_2_and_says_why(monkeypatch, capsys):
    def refuse(name):
        raise BackendError("backend 'jax' is not installed: pip install jax (or pip install -e '.[jax]')")
    monkeypatch.setattr(parity_command, "select_backend", refuse)
    assert parity_command.run(_args(backend="jax")) == 2
    assert "pip install jax" in capsys.readouterr().err


def test_a_known_divergence_is_listed_but_does_not_fail(monkeypatch, capsys):
    reason = "a divergence this test predicts"

    def section(options):
        return [checks.row("fake", "diverging", 1.0, 1e-5, options, divergence=reason),
                checks.row("fake", "agreeing", 1e-7, 1e-5, options, divergence=reason)]
    monkeypatch.setattr(checks, "SECTIONS", [("fake", section)])
    assert parity_command.run(_args()) == 0
    out = capsys.readouterr().out
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("fake ")] == ["known", "pass"]
    assert f"known divergence: {reason}" in out
