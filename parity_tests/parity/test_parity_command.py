"""``bilstm parity``: the table, the exit codes, the backend option.

    KERAS_BACKEND=torch pytest parity_tests/parity/test_parity_command.py
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

from keras_impl.backend import BackendError
from keras_impl.commands import parity as parity_command
from keras_impl.parity import checks, harness, training_checks
from keras_impl.parity.divergences import initial_output
from keras_impl.parity.tolerances import Bound, bound, float64_exact

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def test_quick_run_prints_an_all_pass_table_and_exits_0():
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # --backend alone must choose it
    done = subprocess.run([sys.executable, "-m", "keras_impl.cli", "parity", "--quick", "--backend", BACKEND],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # The header, on standard error: the backend and that --backend chose it.
    assert done.stderr.splitlines()[0].startswith(f"bilstm parity: on {BACKEND} (--backend), device "), done.stderr
    header = next(line for line in lines if line.startswith("section"))
    assert header.split() == ["section", "configuration", "dtype", "worst", "error", "bound", "verdict"]
    table = [line.split() for line in lines if line.startswith(("layer ", "model ", "gradients ", "trajectory "))]
    assert [r[0] for r in table] == ["layer"] * 7 + ["model"] * 6 + ["gradients"] * 2 + ["trajectory"], done.stdout
    for _section, configuration, dtype, error, value, kind, verdict in table:
        assert dtype == "float32" and verdict == "pass", (configuration, error, value, verdict)
        assert kind == ("abs" if _section in ("layer", "model") else "rel")
        assert 0 < float(error) <= float(value)  # a zero error would mean nothing was compared
    # The semantic difference between backends is named under the table, with this backend's convention.
    semantic = next(line for line in lines if line.startswith("semantic difference between backends"))
    assert "keras/src/backend/jax/rnn.py" in semantic and "keras/src/backend/torch/rnn.py" in semantic
    assert f"initial_output={initial_output(BACKEND)!r}" in semantic
    assert lines[-1].startswith("PARITY OK: 16 checks, 16 pass, 0 FAIL"), lines[-1]


def _args(**kw):
    return argparse.Namespace(**{"backend": None, "dtype": "float32", "quick": True, "cell": "lstm", **kw})


def _stub_comparisons(monkeypatch, error: float = 1e-12):
    """Every comparison of every section answers at once, with the given absolute error everywhere."""
    def pair(*args, **kwargs):
        return {"x": np.ones(2)}, {"x": np.ones(2) + error}
    monkeypatch.setattr(harness, "layer_parity", pair)
    monkeypatch.setattr(harness, "model_parity", pair)
    monkeypatch.setattr(training_checks, "gradient_parity", pair)
    monkeypatch.setattr(training_checks, "trajectory_parity", pair)


def test_row_counts_with_and_without_quick(monkeypatch):
    """81 checks a dtype (41 layer, 24 model, 15 gradient, 1 trajectory), 16 with --quick: as the docs say."""
    _stub_comparisons(monkeypatch)
    full = checks.run_checks(("float32", "float64"), quick=False)
    quick = checks.run_checks(("float32",), quick=True)
    count = lambda rows: {s: sum(r.section == s for r in rows) for s in ("layer", "model", "gradients", "trajectory")}  # noqa: E731
    assert count(quick) == {"layer": 7, "model": 6, "gradients": 2, "trajectory": 1}
    assert count([r for r in full if r.dtype == "float32"]) == {"layer": 41, "model": 24, "gradients": 15, "trajectory": 1}
    assert len(full) == 2 * 81 and all(r.verdict == "pass" for r in full + quick)


def test_cell_row_counts_and_configurations(monkeypatch, capsys):
    """--cell gru: the LSTM's layer and model configurations with a GRU (81); simple_rnn: 80; all: the three."""
    _stub_comparisons(monkeypatch)
    count = lambda rows: {s: sum(r.section == s for r in rows) for s in ("layer", "model", "gradients", "trajectory")}  # noqa: E731
    gru = checks.run_checks(("float32",), quick=False, cells=("gru",))
    simple = checks.run_checks(("float32",), quick=False, cells=("simple_rnn",))
    assert count(gru) == {"layer": 41, "model": 24, "gradients": 15, "trajectory": 1}
    assert count(simple) == {"layer": 41, "model": 24, "gradients": 14, "trajectory": 1}
    assert all(r.configuration.startswith(("gru-", "gru[", "model-gru")) for r in gru), [r.configuration for r in gru]
    assert all("simple_rnn" in r.configuration for r in simple)
    assert parity_command.run(_args(cell="all")) == 0
    assert "PARITY OK: 48 checks, 48 pass, 0 FAIL" in capsys.readouterr().out  # 16 quick checks a cell


def test_every_row_has_a_bound_and_float64_bounds_name_their_cause(monkeypatch):
    _stub_comparisons(monkeypatch)
    rows = checks.run_checks(("float32", "float64"), quick=True)
    for r in rows:
        assert r.bound == bound({"layer": "output", "model": "output", "gradients": "gradient",
                                 "trajectory": "trajectory"}[r.section], r.dtype, BACKEND)
        assert 0 < r.bound.value < 1e-3 and r.verdict in ("pass", "FAIL")
    demoted = [r for r in rows if r.bound.cause]
    assert bool(demoted) == (not float64_exact(BACKEND))
    assert all(r.dtype == "float64" and "BIT64_TO_BIT32_DTYPE" in r.bound.cause for r in demoted)


def test_a_value_over_its_bound_exits_1_whatever_the_section(monkeypatch, capsys):
    """One comparison over its bound, in float64 (where JAX and torch were once reported 'known'): exit 1."""
    worst_allowed = bound("trajectory", "float64", BACKEND).value
    _stub_comparisons(monkeypatch)
    monkeypatch.setattr(training_checks, "trajectory_parity",
                        lambda *a, **k: ({"x": np.zeros(2)}, {"x": np.full(2, 2 * worst_allowed)}))
    assert parity_command.run(_args(dtype="float64")) == 1
    out = capsys.readouterr().out
    verdicts = {line.split()[0]: line.split()[-1] for line in out.splitlines()
                if line.startswith(("gradients ", "trajectory "))}
    assert verdicts == {"gradients": "pass", "trajectory": "FAIL"}, out
    assert "PARITY FAILED: 16 checks, 15 pass, 1 FAIL" in out


def test_a_value_within_its_bound_exits_0(monkeypatch, capsys):
    _stub_comparisons(monkeypatch)
    assert parity_command.run(_args(dtype="float64")) == 0
    assert "PARITY OK: 16 checks, 16 pass, 0 FAIL" in capsys.readouterr().out


def test_a_failing_check_exits_1(monkeypatch, capsys):
    """The real model checks with an impossible bound: every row must say FAIL and the exit code 1."""
    monkeypatch.setattr(checks, "SECTIONS", [("model", checks.model_section)])
    monkeypatch.setattr(checks, "bound", lambda what, dtype, backend: Bound("abs", 0.0))
    assert parity_command.run(_args()) == 1
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("model ")]
    assert len(rows) == 6 and all(r[-1] == "FAIL" for r in rows), out
    assert "PARITY FAILED: 6 checks, 0 pass, 6 FAIL" in out


def test_a_comparison_that_cannot_be_made_is_a_fail_that_says_why(monkeypatch, capsys):
    _stub_comparisons(monkeypatch)
    monkeypatch.setattr(harness, "model_parity", lambda *a, **k: ({"probabilities": np.ones(2)}, {"p": np.ones(2)}))
    assert parity_command.run(_args()) == 1
    out = capsys.readouterr().out
    assert "result names differ" in out and "PARITY FAILED: 16 checks, 10 pass, 6 FAIL" in out


def test_predicted_gpu_divergences_are_listed_not_compared(monkeypatch):
    """On a GPU, a configuration Keras is predicted to answer differently is left out of the table and listed."""
    _stub_comparisons(monkeypatch)
    options = checks.CheckOptions(backend="jax", device="gpu:0", dtype="float32", quick=False)
    skipped = dict(checks.not_compared(options))
    assert skipped and all("jax/rnn.py L330-331" in reason for reason in skipped.values())
    compared = {r.configuration for r in checks.layer_section(options) + checks.model_section(options)}
    assert not compared & set(skipped)
    assert len(compared) + len(skipped) == 41 + 24
    lines = checks.notes(checks.layer_section(options), "jax", "gpu:0", False)
    assert sum(line.startswith("not compared on gpu:0") for line in lines) == len(skipped)
    assert checks.not_compared(checks.CheckOptions(BACKEND, "cpu", "float32", False)) == []


def test_an_unusable_backend_exits_2_and_says_why(monkeypatch, capsys):
    def refuse(name):
        raise BackendError("backend 'jax' is not installed: pip install jax (or pip install -e '.[jax]')")
    monkeypatch.setattr(parity_command, "select_backend", refuse)
    assert parity_command.run(_args(backend="jax")) == 2
    assert "pip install jax" in capsys.readouterr().err
