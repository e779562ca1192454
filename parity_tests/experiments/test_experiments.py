"""The experiments: statistics and metrics against hand-computed values, the ``bilstm`` subcommands end to end."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from keras_impl.experiments import metrics, stats
from parity_tests.conftest import BACKEND, bilstm_in_one_fresh_process

# The sizes of the shared runs (conftest.SMALL), with --backend: on JAX, a run of these sizes reuses the programs
# those runs compiled (seeds, updates and held-out sequences each set a compiled shape).
TINY = ["--seeds", "2", "--updates", "8", "--heldout", "6", "--backend", BACKEND]


def run_cli(argv, capsys):
    """``bilstm argv`` in this process: (exit status, stdout, stderr)."""
    from keras_impl.cli import main
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse stops this way
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- statistics, by hand

def test_holm_matches_a_hand_computed_example():
    # sorted: .005 x4 = .02; .01 x3 = .03; .03 x2 = .06; .04 x1 = .04 -> kept monotone at .06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_nan():
    adjusted = stats.holm([0.6, float("nan"), 0.2])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.6, 0.4])  # m = 2 valid tests
    assert math.isnan(adjusted[1])
    assert stats.holm([0.7, 0.8])[0] == 1.0


def test_wilcoxon_exact_p_by_hand():
    # five positive differences: the signed-rank statistic is extreme, exact two-sided p = 2 / 2**5
    assert stats.wilcoxon_p([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2 / 32)
    assert stats.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert math.isnan(stats.wilcoxon_p([0.3]))


def test_mean_ci_matches_the_student_t_interval():
    values = [0.2, 0.5, 0.1, 0.7, 0.4, 0.3]
    mean, low, high = stats.mean_ci(values)
    expected = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx(expected)


def test_paired_comparison_is_a_minus_b_and_drops_nan_pairs():
    row = stats.paired_comparison([1.0, 2.0, float("nan"), 4.0], [0.5, 1.0, 1.0, 1.0])
    assert row["n"] == 3 and row["diff"] == pytest.approx((0.5 + 1.0 + 3.0) / 3)
    assert row["ci_low"] < row["diff"] < row["ci_high"]


def test_updates_to_accuracy_by_hand():
    accuracies = np.array([0.5] * 30 + [1.0] * 30)
    # the window of 20 ending at update k holds j = k - 30 ones and 20 - j halves: mean 0.5 + j / 40,
    # which first reaches 0.9 at j = 16, k = 46
    assert metrics.updates_to_accuracy(accuracies) == 46.0
    assert math.isnan(metrics.updates_to_accuracy(np.full(40, 0.85)))
    assert metrics.updates_to_accuracy(np.full(5, 0.9)) == 5.0  # a run shorter than the window uses all of it


def test_heldout_accuracy_counts_valid_steps_only():
    p = np.array([[0.9, 0.2, 0.7], [0.1, 0.6, 0.3]])[..., None]
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])[..., None]
    mask = np.array([[True, True, False], [True, True, True]])
    step, sequence = metrics.heldout_accuracy(p, y, mask)
    assert step == pytest.approx(4 / 5)  # the masked wrong step does not count; the last step of row 2 does
    assert sequence == pytest.approx(1 / 2)


# ---------------------------------------------------------------- the command line, end to end

def test_compare_writes_every_output(small_run):
    run = small_run("compare")  # the run test_command_output reads: two seeds, 8 updates
    code, stdout, out = run.code, run.stdout, run.out
    assert code == 0, run.stderr
    for name in ("results.csv", "curves.csv", "pairs.csv", "summary.json", "loss.png", "loss.svg"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend_info"]["backend"] == BACKEND and summary["backend_info"]["device"]
    assert summary["backend_info"]["keras"] == "3.15.1"
    assert summary["seeds"] == [0, 1] and summary["updates"] == 8 and summary["wall_time_s"] > 0
    assert set(summary["models"]) == {"lstm", "lstm_reversed", "bilstm"}
    assert len(summary["pairs"]) == 3 * len(metrics.METRICS)
    assert all(0 <= row["p_holm"] <= 1 for row in summary["pairs"] if row["p_holm"] is not None)
    assert (out / "curves.csv").read_text().count("\n") == 1 + 3 * 2 * 8
    assert (out / "results.csv").read_text().count("\n") == 1 + 3 * 2
    assert re.search(r"^bilstm( +\d|$)", stdout, re.MULTILINE), stdout  # its row (its block when too wide)
    # Paired: every model of a seed saw the same sequences, so the held-out examples are the same.
    examples = {m: json.loads((out / "runs" / m / "seed_0001.json").read_text())["example"]["x"]
                for m in ("lstm", "lstm_reversed", "bilstm")}
    assert examples["lstm"] == examples["bilstm"] == examples["lstm_reversed"]


def test_demo_prints_expected_and_predicted_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, _ = run_cli(["demo", "--model", "lstm", *TINY, "--out", str(out)], capsys)
    assert code == 0
    lines = [line for line in stdout.splitlines() if line.startswith("Expected:")]
    assert len(lines) == 10  # one a timestep of the tutorial's n = 10
    assert all(line.split()[1] in "01" and line.split()[3] in "01" for line in lines)

    runs = sorted((out / "runs").rglob("seed_*.json"))
    assert len(runs) == 2
    before = {p: p.stat().st_mtime_ns for p in runs}
    first = json.loads(runs[0].read_text())
    code, _, _ = run_cli(["demo", "--model", "lstm", "--seeds", "3", *TINY[2:], "--out", str(out), "--resume"], capsys)
    assert code == 0
    assert all(p.stat().st_mtime_ns == t for p, t in before.items()), "--resume must not redo finished seeds"
    assert len(sorted((out / "runs").rglob("seed_*.json"))) == 3
    assert json.loads(runs[0].read_text())["loss"] == first["loss"]
    assert json.loads((out / "summary.json").read_text())["seeds"] == [0, 1, 2]

    # Other arguments (more updates) make other runs: --resume redoes them.
    code, _, _ = run_cli(["demo", "--model", "lstm", "--seeds", "1", "--updates", "21", *TINY[4:], "--out", str(out),
                          "--resume"], capsys)
    assert code == 0
    assert len(json.loads(runs[0].read_text())["loss"]) == 21


def test_merge_modes_variable_length_two_layers(tmp_path, capsys):
    out = tmp_path / "merge"
    code, _, _ = run_cli(["merge-modes", *TINY, "--merge-modes", "sum", "--variable-length", "--layers", "2",
                          "--out", str(out)], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {"bilstm_sum"} and summary["pairs"] == []
    assert "mask_value=0.0" in summary["specs"]["bilstm_sum"] and "units=(20, 20)" in summary["specs"]["bilstm_sum"]
    record = json.loads((out / "runs" / "bilstm_sum" / "seed_0000.json").read_text())
    assert 5 <= len(record["example"]["expected"]) <= 20  # the example shows its valid steps only


CELL_MODELS = {"gru": ("gru", "gru_reversed", "bigru"),
               "simple_rnn": ("simple_rnn", "simple_rnn_reversed", "bisimple_rnn")}
CELL_LABELS = {"gru": "GRU", "simple_rnn": "SimpleRNN"}


# Each cell through the whole of compare in the JAX pass (its fast path, train_many, once crashed on SimpleRNN)
# and in one other pass (TensorFlow: GRU; torch: SimpleRNN); every pass trains every cell in test_layer_parity.
CELL_PASSES = {"gru": ("jax", "tensorflow"), "simple_rnn": ("jax", "torch")}


@pytest.mark.parametrize("cell", list(CELL_MODELS))
def test_compare_trains_another_cell_and_every_record_names_it(tmp_path, capsys, cell):
    if BACKEND not in CELL_PASSES[cell]:
        pytest.skip(f"compare --cell {cell} runs in the {' and '.join(CELL_PASSES[cell])} passes (CELL_PASSES)")
    out = tmp_path / cell
    code, stdout, _ = run_cli(["compare", *TINY, "--updates", "8", "--heldout", "6", "--cell", cell, "--out", str(out)],
                              capsys)
    assert code == 0
    forward, backward, bi = CELL_MODELS[cell]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["models"]) == [forward, backward, bi] and summary["cell"] == cell
    assert summary["arguments"]["cell"] == cell
    label = CELL_LABELS[cell]
    assert summary["labels"] == {forward: label, backward: f"reversed {label}", bi: f"Bidirectional {label}"}
    assert all(f"cell={cell!r}" in spec for spec in summary["specs"].values())
    for model in (forward, backward, bi):
        for seed in (0, 1):
            record = json.loads((out / "runs" / model / f"seed_{seed:04d}.json").read_text())
            assert record["cell"] == record["fingerprint"]["cell"] == cell
            assert len(record["loss"]) == 8 and all(math.isfinite(v) for v in record["loss"])
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("model,cell,seed,") and all(row.split(",")[1] == cell for row in rows[1:])
    assert re.search(rf"^{bi}( +\d|$)", stdout, re.MULTILINE), stdout  # its row, or its block when too wide


def test_the_loss_figure_names_each_model_by_its_label(tmp_path):
    import matplotlib

    from keras_impl.experiments.plots import loss_figure
    curves = {"bigru": np.full((2, 5), 0.5), "gru": np.full((2, 5), 0.6)}
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text kept as text in the SVG, to be read back
        loss_figure(curves, "GRU vs Bidirectional GRU", [tmp_path / "loss.svg"], labels={"bigru": "Bidirectional GRU"})
    svg = (tmp_path / "loss.svg").read_text()
    assert ">Bidirectional GRU<" in svg and ">gru<" in svg and ">bigru<" not in svg


@pytest.mark.parametrize("cell", ["lstm", *CELL_MODELS])
def test_every_experiment_of_a_command_uses_the_cell(cell):
    """What compare, merge-modes, demo and reproduce would train for ``--cell`` (nothing is trained here)."""
    import argparse

    from keras_impl.commands import experiments as commands
    parser = argparse.ArgumentParser()
    commands.add_reproduce_arguments(parser)
    parser.add_argument("--model", default="bilstm")
    args = parser.parse_args(["--cell", cell])
    bi = f"bi{cell}"
    names = {e.name: [m for m, _ in e.models] for e in commands.reproduce_experiments(args)}
    assert names == {f"demo-{bi}": [bi], f"demo-{cell}": [cell], "compare": [cell, f"{cell}_reversed", bi],
                     "merge-modes": [f"{bi}_{m}" for m in commands.TUTORIAL_MERGE_MODES]}
    for experiment in commands.reproduce_experiments(args):
        assert experiment.cell == cell and all(spec.cell == cell for _, spec in experiment.models)
    for model, direction in (("lstm", "forward"), ("bilstm", "bidirectional"), (cell, "forward"), (bi, "bidirectional")):
        assert commands.demo_experiment(args, model, 5).models[0][1].direction == direction


def test_the_claims_of_another_cell_name_its_models():
    """``reproduce --cell gru`` states the tutorial's claims of the GRU, from the GRU's models."""
    from keras_impl.experiments.report import claims

    def pair(a, b, metric, diff):
        return {"a": a, "b": b, "metric": metric, "diff": diff, "ci_low": diff - 0.01, "ci_high": diff + 0.01,
                "p_holm": 1e-4}
    merge = [pair(f"bigru_{g}", f"bigru_{b}", "mean_loss", -0.05) for g in ("sum", "concat") for b in ("mul", "ave")]
    results = {
        "demo-bigru": {"meta": {"updates": 1000}, "summary": {"models": {"bigru": {"heldout_step_accuracy": {
            "mean": 0.85, "ci_low": 0.84, "ci_high": 0.86}}}}},
        "compare": {"meta": {"cell": "gru"}, "summary": {
            "models": {"gru": {"mean_loss": {"mean": 0.4}}},
            "pairs": [pair("gru_reversed", "gru", "mean_loss", 0.1),  # outside the margin 0.04
                      pair("bigru", "gru", "updates_to_90", -50), pair("bigru", "gru_reversed", "updates_to_90", -60),
                      pair("bigru", "gru", "last50_loss", -0.1), pair("bigru", "gru_reversed", "last50_loss", -0.1)]}},
        "merge-modes": {"summary": {"models": {f"bigru_{m}": {"mean_loss": {"mean": v}} for m, v in
                                               (("sum", 0.2), ("concat", 0.21), ("ave", 0.25), ("mul", 0.3))},
                                    "pairs": merge}},
    }
    rows = claims(results)
    assert [r["verdict"] for r in rows] == ["not supported", "not supported", "supported", "supported", "supported"]
    assert "Bidirectional GRU's accuracy" in rows[0]["claim"] and "reversed GRU" in rows[1]["claim"]
    assert "gru_reversed - gru" in rows[1]["measured"] and "bigru - gru_reversed" in rows[2]["measured"]
    assert "Ranking (lowest first): bigru_sum, bigru_concat, bigru_ave, bigru_mul" in rows[4]["measured"]
    assert not any("LSTM" in r["claim"] or "lstm" in r["measured"] for r in rows)


def test_reproduce_writes_the_report(small_run):
    run = small_run("reproduce", "--demo-updates", "8")  # the run test_command_output reads
    code, stdout, out = run.code, run.stdout, run.out
    assert code == 0 and "REPORT.md" in stdout, run.stderr
    report = (out / "REPORT.md").read_text()
    for figure in ("compare/loss.png", "merge-modes/loss.png", "demo-bilstm/loss.png"):
        assert f"]({figure})" in report and (out / figure).stat().st_size > 0
        assert (out / figure.replace(".png", ".svg")).stat().st_size > 0
    claims = json.loads((out / "claims.json").read_text())["claims"]
    assert len(claims) == 5
    assert all(c["verdict"] in ("supported", "not supported", "inconclusive") for c in claims)
    assert all(f"**{c['verdict']}**" in report for c in claims)


@pytest.mark.parametrize("argv, message", [
    (["compare", "--seeds", "0"], "argument --seeds: --seeds must be at least 1, got 0"),
    (["compare", "--updates", "-3"], "argument --updates: --updates must be at least 1, got -3"),
    (["merge-modes", "--layers", "two"], "argument --layers: --layers must be an integer, got 'two'"),
    (["compare", "--backend", "mxnet"], "argument --backend: invalid choice: 'mxnet'"),  # the one --backend option
    (["compare", "--mode", "turbo"], "unknown --mode 'turbo'; expected 'fast' or 'faithful'"),
    (["merge-modes", "--merge-modes", "sum,max"], "unknown merge mode 'max'; expected one of concat, sum, ave, mul"),
    (["demo", "--model", "gru"], "unknown --model 'gru'; expected 'lstm' or 'bilstm'"),
    (["compare", "--cell", "foo"], "unknown --cell 'foo'; expected one of lstm, gru, simple_rnn"),
    (["merge-modes", "--cell", "GRU"], "unknown --cell 'GRU'; expected one of lstm, gru, simple_rnn"),
    (["demo", "--cell", "lstmx", "--model", "bilstmx"], "unknown --cell 'lstmx'"),
    (["demo", "--cell", "gru", "--model", "bilstm_x"], "unknown --model 'bilstm_x'; expected 'lstm' or 'bilstm' "
                                                        "(or 'gru' or 'bigru')"),
    (["reproduce", "--demo-updates", "0"], "argument --demo-updates: --demo-updates must be at least 1, got 0"),
], ids=["zero-seeds", "negative-updates", "word-layers", "unknown-backend", "unknown-mode", "unknown-merge-mode",
        "unknown-model", "unknown-cell", "cell-in-capitals", "cell-checked-before-model", "unknown-model-of-a-cell",
        "zero-demo-updates"])
def test_bad_arguments_stop_with_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    code, stdout, stderr = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 2
    assert stderr.strip().count("\n") == 0 and message in stderr, stderr
    assert not out.exists(), "nothing may be written for bad arguments"


def test_unwritable_output_path_stops_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(blocker / "sub")], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0
    assert f"--out {blocker / 'sub'}: {blocker} is a file, not a folder" in stderr
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(blocker)], capsys)
    assert code == 2 and f"--out {blocker} is a file, not a folder" in stderr
    # A path the permission check cannot see through (root may write anywhere, but not under /proc).
    code, _, stderr = run_cli(["compare", *TINY, "--out", "/proc/bilstm-results"], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0 and "cannot be written" in stderr


def test_missing_backend_names_the_package_to_install(tmp_path):
    # A fresh interpreter (Keras not imported yet) in which torch cannot be found.
    script = ("import importlib.util as u, sys; real = u.find_spec; "
              "u.find_spec = lambda name, *a: None if name == 'torch' else real(name, *a); "
              "from keras_impl.cli import main; "
              f"code = main(['compare', '--backend', 'torch', '--out', {str(tmp_path / 'x')!r}]); "
              "print('keras imported:', 'keras' in sys.modules); sys.exit(code)")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "backend 'torch' is not installed: pip install torch==2.13.0" in result.stderr
    assert "keras imported: False" in result.stdout, "refused before Keras is imported"
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- hostile input: refused at the start, one line

def test_an_empty_out_is_refused_not_taken_for_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in ("demo", "compare", "merge-modes", "reproduce"):
        code, _, stderr = run_cli([command, *TINY, "--out", ""], capsys)
        assert code == 2 and stderr.strip().count("\n") == 0, stderr
        assert "--out must name a folder, got ''" in stderr
    assert list(tmp_path.iterdir()) == [], "nothing may be written into the current folder"


UNKNOWN_CELL_COMMANDS = ["compare", "reproduce"]
TOO_BIG = {  # id -> a run too big for any machine's memory
    "updates": ["compare", "--updates", str(10**12)],
    "seeds": ["merge-modes", "--seeds", str(10**9)],
    "demo-updates": ["reproduce", "--demo-updates", str(10**11)],
    "heldout": ["demo", "--heldout", str(10**12)],
}


@pytest.fixture(scope="module")
def refused_in_a_fresh_process(tmp_path_factory):
    """``{(kind, id): (exit status, stderr, Keras imported, --out)}`` for the refusals below, all run in one new
    interpreter (each one's own interpreter would only import the same modules again)."""
    folder = tmp_path_factory.mktemp("fresh")
    calls = {("cell", c): [c, "--cell", "foo", "--backend", BACKEND, "--out", str(folder / f"never-{c}")]
             for c in UNKNOWN_CELL_COMMANDS}
    calls.update({("big", k): [*argv, "--backend", BACKEND, "--out", str(folder / f"big-{k}")]
                  for k, argv in TOO_BIG.items()})
    results = bilstm_in_one_fresh_process(list(calls.values()), folder)
    return {key: (r["code"], r["stderr"], r["keras_imported"], Path(argv[-1]))
            for (key, argv), r in zip(calls.items(), results)}


@pytest.mark.parametrize("command", UNKNOWN_CELL_COMMANDS)
def test_an_unknown_cell_is_refused_before_keras_is_imported(refused_in_a_fresh_process, command):
    code, stderr, keras_imported, out = refused_in_a_fresh_process["cell", command]
    assert code == 2 and stderr.strip().count("\n") == 0, stderr
    assert "unknown --cell 'foo'; expected one of lstm, gru, simple_rnn" in stderr
    assert not keras_imported and not out.exists()


@pytest.mark.parametrize("case", list(TOO_BIG))
def test_a_run_too_big_for_memory_is_refused_with_the_figure_before_keras(refused_in_a_fresh_process, case):
    code, stderr, keras_imported, out = refused_in_a_fresh_process["big", case]
    assert code == 2 and stderr.strip().count("\n") == 0, stderr
    assert re.search(r"this run needs about [\d.,]+ [kMGT]B of memory .* but [\d.,]+ [kMGT]B is available", stderr), stderr
    assert not keras_imported and not out.exists()


def test_the_memory_check_compares_with_what_the_machine_has(tmp_path, capsys, monkeypatch):
    from keras_impl.experiments import memory
    need = memory.estimate_bytes(models=3, seeds=2, updates=8, heldout=6, timesteps=10, units=20, layers=1,
                                 directions=2, batched_seeds=BACKEND == "jax")  # TINY's run
    assert memory.FRAMEWORK_BYTES < need < memory.FRAMEWORK_BYTES + 10**7  # tiny data on top of the frameworks
    bigger = memory.estimate_bytes(models=3, seeds=4, updates=8, heldout=6, timesteps=10, units=20, layers=1,
                                   directions=2, batched_seeds=BACKEND == "jax")
    assert bigger > need  # grows with the seeds
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    out = tmp_path / "small-machine"
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(out)], capsys)
    assert code == 2 and "is available" in stderr and not out.exists(), stderr


@pytest.mark.parametrize("blocker", ["results.csv", "summary.json", "loss.png", "runs/lstm"])
def test_an_output_name_taken_by_something_else_is_refused_before_training(tmp_path, capsys, blocker):
    out = tmp_path / "taken"
    target = out / blocker
    if blocker.startswith("runs/"):
        target.parent.mkdir(parents=True)
        target.write_text("a file where the runs of a model go")
        expected = "exists and is not a folder"
    else:
        target.mkdir(parents=True)  # a folder where a file goes
        expected = "exists and is not a file"
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(out)], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0, stderr
    assert f"--out: {target} {expected}" in stderr
    assert not (out / "runs" / "bilstm").exists(), "nothing may be trained"


def test_reproduce_checks_the_report_and_every_experiment_folder(tmp_path, capsys):
    out = tmp_path / "tutorial"
    (out / "REPORT.md").mkdir(parents=True)
    code, _, stderr = run_cli(["reproduce", *TINY, "--out", str(out)], capsys)
    assert code == 2 and f"--out: {out / 'REPORT.md'} exists and is not a file" in stderr
    (out / "REPORT.md").rmdir()
    (out / "merge-modes").write_text("not a folder")
    code, _, stderr = run_cli(["reproduce", *TINY, "--out", str(out)], capsys)
    assert code == 2 and f"--out: {out / 'merge-modes'} exists and is not a folder" in stderr
    assert not (out / "demo-bilstm").exists(), "nothing may be trained"


# ---------------------------------------------------------------- bounded confidence intervals

def accuracy_records(step_accuracies):
    """Hand-made records: only the held-out accuracies matter here."""
    return [{"seed": s, "loss": [0.5, 0.4], "accuracy": [0.5, 1.0], "train_wall_s": 0.1,
             "heldout_step_accuracy": a, "heldout_sequence_accuracy": a} for s, a in enumerate(step_accuracies)]


def test_an_accuracy_interval_never_leaves_zero_to_one():
    from keras_impl.experiments.summary import format_pairs, format_table, summarize
    # mean 0.9667, sd 0.0577, n 3: the Student t interval is [0.823, 1.110]; an accuracy cannot exceed 1
    summary = summarize({"a": accuracy_records([1.0, 1.0, 0.9]), "b": accuracy_records([0.0, 0.05, 0.0])}, updates=2)
    for model in ("a", "b"):
        for metric in ("heldout_step_accuracy", "heldout_sequence_accuracy"):
            cell = summary["models"][model][metric]
            assert 0.0 <= cell["ci_low"] <= cell["mean"] <= cell["ci_high"] <= 1.0, (model, metric, cell)
    assert summary["models"]["a"]["heldout_step_accuracy"]["ci_high"] == 1.0
    assert summary["models"]["b"]["heldout_step_accuracy"]["ci_low"] == 0.0
    assert summary["models"]["a"]["heldout_step_accuracy"]["ci_low"] == pytest.approx(
        np.mean([1, 1, 0.9]) - sps.t.ppf(0.975, 2) * np.std([1, 1, 0.9], ddof=1) / np.sqrt(3))
    printed = format_table(summary) + format_pairs(summary)
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+", printed)]
    assert numbers and max(numbers) <= 1.0 and min(numbers) >= -1.0, printed


def test_a_difference_of_accuracies_stays_within_plus_minus_one():
    row = stats.paired_comparison([1.0, 1.0, 1.0], [0.0, 0.1, 0.0], bounds=(0.0, 1.0))
    assert -1.0 <= row["ci_low"] <= row["diff"] <= row["ci_high"] == 1.0


def test_a_run_record_name_taken_by_a_folder_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "taken-run"
    (out / "runs" / "lstm" / "seed_0001.json").mkdir(parents=True)
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(out), "--resume"], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0, stderr
    assert f"--out: {out / 'runs' / 'lstm' / 'seed_0001.json'} exists and is not a file" in stderr


def test_a_disk_that_fills_up_mid_run_ends_on_one_line_keeping_what_was_written(tmp_path, capsys, monkeypatch):
    import errno

    from keras_impl import files
    real, written = files.atomic_write_bytes, []

    def fill_up_after_one(path, data):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)
        written.append(path)
    monkeypatch.setattr(files, "atomic_write_bytes", fill_up_after_one)
    out = tmp_path / "full"
    code, _, stderr = run_cli(["demo", "--model", "lstm", *TINY, "--out", str(out)], capsys)
    lines = [line for line in stderr.splitlines() if "error" in line]
    assert code == 1 and len(lines) == 1, stderr
    assert "bilstm demo: error: cannot write" in lines[0] and "No space left on device" in lines[0]
    assert written == [out / "runs" / "lstm" / "seed_0000.json"]
    assert json.loads(written[0].read_text())["seed"] == 0  # the finished run is whole


def test_an_out_path_that_cannot_even_be_looked_at_is_refused_on_one_line(tmp_path, capsys):
    too_long = tmp_path / ("a" * 300)  # longer than any file system's name limit (255)
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(too_long)], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0, stderr
    assert "--out cannot be used: File name too long" in stderr
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    code, _, stderr = run_cli(["compare", *TINY, "--out", str(tmp_path / "loop1" / "x")], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0 and "symbolic links" in stderr, stderr
