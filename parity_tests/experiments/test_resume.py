"""Interrupted experiments keep every finished run; ``--resume`` reuses only records that are whole.

Once, on TensorFlow and torch (and JAX in faithful mode) the records of a
model were written only when all its seeds were done, so an interruption lost
every finished seed; and ``--resume`` trusted any record whose fingerprint
matched: one that was valid JSON but not an object crashed it, one with a
shortened loss list went into results.csv and the tables before a crash.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_impl.experiments import runner
from parity_tests.conftest import BACKEND

UPDATES, HELDOUT = 5, 4
# Seeds one after another (the path that once lost finished seeds): JAX batches seeds in fast mode.
MODE = "faithful" if BACKEND == "jax" else "fast"


def experiment(seeds: int, mode: str = MODE) -> runner.Experiment:
    return runner.Experiment("compare", (("lstm", runner.model_spec("forward")),), seeds, UPDATES, mode, HELDOUT)


class StopAfter:
    """A progress bar that stops the run (as Ctrl-C would) once ``runs`` runs have finished."""

    def __init__(self, runs: int | None = None):
        self.runs, self.finished = runs, 0

    def update(self, n: int) -> None:
        self.finished += n
        if self.runs is not None and self.finished >= self.runs:
            raise KeyboardInterrupt


def records_on_disk(out) -> list[str]:
    return sorted(p.name for p in (out / "runs" / "lstm").glob("seed_*.json")) if (out / "runs" / "lstm").exists() else []


def test_an_interrupted_run_keeps_its_finished_seeds_and_resume_reuses_them(tmp_path):
    out, whole = tmp_path / "interrupted", tmp_path / "whole"
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment(experiment(3), out, resume=False, progress=StopAfter(2))
    assert records_on_disk(out) == ["seed_0000.json", "seed_0001.json"], "finished seeds must be on disk at once"
    kept = {name: (out / "runs" / "lstm" / name).stat().st_mtime_ns for name in records_on_disk(out)}

    notices = []
    progress = StopAfter()
    resumed = runner.run_experiment(experiment(3), out, resume=True, progress=progress, notify=notices.append)
    assert notices == [], "whole records are reused without a word"
    assert progress.finished == 3
    assert {name: (out / "runs" / "lstm" / name).stat().st_mtime_ns for name in kept} == kept, \
        "--resume must not rerun the finished seeds"
    assert records_on_disk(out) == ["seed_0000.json", "seed_0001.json", "seed_0002.json"]

    # The resumed experiment is the uninterrupted one, number for number.
    uninterrupted = runner.run_experiment(experiment(3), whole, resume=False)
    for a, b in zip(resumed["lstm"], uninterrupted["lstm"], strict=True):
        assert a["seed"] == b["seed"] and a["loss"] == b["loss"] and a["accuracy"] == b["accuracy"]
        assert a["heldout_step_accuracy"] == b["heldout_step_accuracy"]


def good_record(seed: int = 0, *, seal: bool = True) -> dict:
    spec = runner.model_spec("forward")
    record = {"fingerprint": experiment(1).fingerprint("lstm", spec, BACKEND), "model": "lstm", "cell": "lstm", "seed": seed,
            "loss": [0.7, 0.6, 0.5, 0.45, 0.4], "accuracy": [0.5, 0.6, 0.7, 0.8, 1.0], "train_wall_s": 0.5,
            "heldout_step_accuracy": 0.75, "heldout_sequence_accuracy": 0.25,
            "example": {"x": [0.1, 0.2], "expected": [0, 1], "predicted": [0, 1], "probability": [0.2, 0.9]}}
    return runner.sealed(record) if seal else record


def changed(**changes):
    record = good_record()
    for key, value in changes.items():
        if value is KeyError:
            del record[key]
        else:
            record[key] = value
    return record


# record -> the reason check_record must give (a fragment of it)
NOT_WHOLE = {
    "a_list": ([good_record()], "not a JSON object but a JSON list"),
    "a_number": (3, "not a JSON object but a JSON int"),
    "other_settings": (changed(fingerprint={**good_record()["fingerprint"], "updates": 6}), "made with other settings"),
    "other_cell": (changed(cell="gru"), "made with the 'gru' cell, not 'lstm'"),
    "no_cell": (changed(cell=KeyError), "names no cell (written before --cell existed)"),
    "cell_only_in_fingerprint": (changed(fingerprint={**good_record()["fingerprint"], "cell": "gru"}),
                                 "made with other settings"),
    "other_seed": (changed(seed=1), "holds model 'lstm' seed 1, not 'lstm' seed 0"),
    "other_model": (changed(model="bilstm"), "holds model 'bilstm' seed 0"),
    "short_loss": (changed(loss=[0.7, 0.6]), "'loss' must be a list of 5 numbers (one an update), found 2 values"),
    "long_accuracy": (changed(accuracy=[0.5] * 6), "'accuracy' must be a list of 5 numbers (one an update), found 6 values"),
    "loss_null": (changed(loss=[0.7, None, 0.5, 0.4, 0.3]), "loss[1] is None, not a finite number"),
    "loss_string": (changed(loss=[0.7, 0.6, "0.5", 0.4, 0.3]), "loss[2] is '0.5', not a finite number"),
    "loss_negative": (changed(loss=[0.7, 0.6, 0.5, -0.4, 0.3]), "loss[3] is -0.4, not a finite number in [0, inf]"),
    "loss_bool": (changed(loss=[True] * 5), "loss[0] is True, not a finite number"),
    "accuracy_above_one": (changed(accuracy=[0.5, 1.5, 0.7, 0.8, 1.0]), "accuracy[1] is 1.5, not a finite number in [0, 1]"),
    "loss_a_dict": (changed(loss={"0": 0.7}), "'loss' must be a list of 5 numbers (one an update), found dict"),
    "heldout_missing": (changed(heldout_step_accuracy=KeyError), "'heldout_step_accuracy' is None, not a number in [0, 1]"),
    "heldout_above_one": (changed(heldout_sequence_accuracy=1.01), "'heldout_sequence_accuracy' is 1.01"),
    "wall_nan": (changed(train_wall_s=float("nan")), "'train_wall_s' is nan"),
    "example_missing": (changed(example=KeyError), "'example' must hold the lists x, expected, predicted, probability"),
    "example_ragged": (changed(example={"x": [0.1], "expected": [0, 1], "predicted": [0, 1], "probability": [0.2, 0.9]}),
                       "'example' must hold the lists"),
    # whole in every field, but not what was written: a plausible held-out accuracy typed in, an older record
    "heldout_edited": (changed(heldout_step_accuracy=0.8), "its content does not match its checksum"),
    "loss_edited": (changed(loss=[0.7, 0.6, 0.5, 0.45, 0.3]), "its content does not match its checksum"),
    "no_checksum": (good_record(seal=False), "has no checksum (written before records carried one)"),
    "checksum_not_a_string": (changed(checksum=None), "its content does not match its checksum"),
}


def test_resume_refuses_the_records_of_another_cell_in_the_same_place(tmp_path):
    """A GRU run filed where an LSTM run of the same name goes is rerun, not reused (the cell is checked first)."""
    def one_model(cell):
        return runner.Experiment("compare", (("model", runner.model_spec("forward", cell=cell)),), 2, UPDATES, MODE,
                                 HELDOUT)
    out = tmp_path / "cells"
    gru = runner.run_experiment(one_model("gru"), out, resume=False)
    notices = []
    lstm = runner.run_experiment(one_model("lstm"), out, resume=True, notify=notices.append)
    assert len(notices) == 2 and all("made with the 'gru' cell, not 'lstm'; running it again" in n for n in notices), notices
    for seed in range(2):
        record = json.loads(runner.run_path(out, "model", seed).read_text())
        assert record["cell"] == "lstm" and record["fingerprint"]["cell"] == "lstm"
        assert record["loss"] == lstm["model"][seed]["loss"] != gru["model"][seed]["loss"]


def test_a_whole_record_passes_the_check():
    spec = runner.model_spec("forward")
    assert runner.check_record(good_record(), experiment(1).fingerprint("lstm", spec, BACKEND), "lstm", 0, UPDATES) is None


@pytest.mark.parametrize("case", list(NOT_WHOLE))
def test_check_record_names_what_is_wrong(case):
    record, reason = NOT_WHOLE[case]
    spec = runner.model_spec("forward")
    found = runner.check_record(record, experiment(1).fingerprint("lstm", spec, BACKEND), "lstm", 0, UPDATES)
    assert found is not None and reason in found, found


# what to write over a finished record file -> a fragment of the notice
DAMAGE = {
    "truncated": (lambda text: text[: len(text) // 2], "not valid JSON"),
    "empty": (lambda text: "", "not valid JSON"),
    "a_json_list": (lambda text: "[1, 2]", "not a JSON object but a JSON list"),
    "shortened_loss": (lambda text: json.dumps({**json.loads(text), "loss": json.loads(text)["loss"][:2]}),
                       "'loss' must be a list of 5 numbers"),
    "nan_accuracy": (lambda text: json.dumps({**json.loads(text), "accuracy": [None] * UPDATES}), "accuracy[0] is None"),
    "binary": (lambda text: b"\xff\xfe\x00garbage", "not UTF-8 text"),
    # Each field still plausible: reused once, now rerun because the checksum says it was edited.
    "heldout_edited": (lambda text: json.dumps({**json.loads(text), "heldout_step_accuracy": 0.123456}),
                       "its content does not match its checksum"),
    "older_record": (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "checksum"}),
                     "has no checksum (written before records carried one)"),
}


def test_resume_reruns_every_record_that_is_not_whole_and_says_so(tmp_path):
    out = tmp_path / "damaged"
    seeds = len(DAMAGE) + 1
    first = runner.run_experiment(experiment(seeds), out, resume=False)
    for seed, (damage, _) in enumerate(DAMAGE.values()):
        path = runner.run_path(out, "lstm", seed)
        new = damage(path.read_text())
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
    untouched = runner.run_path(out, "lstm", seeds - 1)
    untouched_mtime = untouched.stat().st_mtime_ns

    notices = []
    again = runner.run_experiment(experiment(seeds), out, resume=True, notify=notices.append)
    assert len(notices) == len(DAMAGE), notices
    for seed, (case, (_, reason)) in enumerate(DAMAGE.items()):
        line = notices[seed]
        assert "\n" not in line and str(runner.run_path(out, "lstm", seed)) in line and reason in line, (case, line)
        assert "running it again" in line
        record = json.loads(runner.run_path(out, "lstm", seed).read_text())  # rewritten whole
        assert record["loss"] == first["lstm"][seed]["loss"] and len(record["accuracy"]) == UPDATES, case
    assert untouched.stat().st_mtime_ns == untouched_mtime
    assert [r["loss"] for r in again["lstm"]] == [r["loss"] for r in first["lstm"]]


def run_cli(argv, capsys):
    from keras_impl.cli import main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compare_resume_with_a_shortened_record_writes_the_right_tables(tmp_path, capsys):
    out = tmp_path / "compare"
    argv = ["compare", "--seeds", "2", "--updates", str(UPDATES), "--heldout", str(HELDOUT), "--backend", BACKEND,
            "--mode", MODE, "--out", str(out)]
    code, _, _ = run_cli(argv, capsys)
    assert code == 0
    expected_curves = (out / "curves.csv").read_text()
    path = out / "runs" / "bilstm" / "seed_0001.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "loss": record["loss"][:3]}))
    code, _, stderr = run_cli([*argv, "--resume"], capsys)
    assert code == 0
    notices = [line for line in stderr.splitlines() if "running it again" in line]
    assert len(notices) == 1 and str(path) in notices[0] and "found 3 values" in notices[0], stderr
    assert (out / "curves.csv").read_text() == expected_curves  # the rerun record, not the shortened one
    assert json.loads(path.read_text())["loss"] == record["loss"]

    # A held-out accuracy edited to a plausible value: every field whole, so it was once reused as it was.
    path.write_text(json.dumps({**json.loads(path.read_text()), "heldout_sequence_accuracy": 0.999}))
    code, _, stderr = run_cli([*argv, "--resume"], capsys)
    assert code == 0
    notices = [line for line in stderr.splitlines() if "running it again" in line]
    assert len(notices) == 1 and str(path) in notices[0] and "does not match its checksum" in notices[0], stderr
    assert json.loads(path.read_text())["heldout_sequence_accuracy"] == record["heldout_sequence_accuracy"] != 0.999
    assert (out / "curves.csv").read_text() == expected_curves


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")
def test_ctrl_c_during_compare_keeps_finished_records_and_exits_130(tmp_path):
    """A real SIGINT in a real process, sent once the first record is on disk (so one run has finished)."""
    out = tmp_path / "sigint"
    argv = ["compare", "--seeds", "6", "--updates", "30", "--heldout", str(HELDOUT), "--backend", BACKEND,
            "--mode", "faithful", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    # A process started in the background by a shell without job control (nohup make test &) ignores SIGINT,
    # and a child inherits that: the command is given Python's own Ctrl-C handling back, as a terminal gives it
    # (in the child's code: a preexec_fn would make subprocess fork, which JAX warns against in the JAX pass).
    code = (f"import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"from keras_impl.cli import main; sys.exit(main({argv!r}))")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    first = runner.run_path(out, "lstm", 0)
    deadline = time.monotonic() + 240
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), "the first run's record never appeared"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.fail(f"the run finished although interrupted; its stderr:\n{stderr[-3000:]}")
    tail = stderr[-3000:]
    assert process.returncode == 130, tail
    assert stderr.strip().splitlines()[-1] == "interrupted", tail
    records = sorted(out.rglob("seed_*.json"))
    assert records and all(json.loads(p.read_text())["loss"] for p in records), tail  # whole, never torn
    assert not list(out.rglob("*.tmp")), f"no temporary file may be left behind: {list(out.rglob('*.tmp'))}"


@pytest.mark.parametrize("changes, error, pattern", [
    (dict(seeds=0), ValueError, r"seeds must be a positive integer, got 0"),
    (dict(updates=True), ValueError, r"updates must be a positive integer, got True"),
    (dict(heldout=2.5), ValueError, r"heldout must be a positive integer, got 2.5"),
    (dict(mode="quick"), ValueError, r"unknown mode 'quick'"),
    (dict(models=()), ValueError, r"models must be a non-empty tuple"),
    (dict(models=(("../escape", runner.model_spec("forward")),)), ValueError, r"a model name must be a folder name"),
    (dict(models=(("lstm", "not a spec"),)), TypeError, r"models must hold \(name, ModelSpec\) pairs"),
    (dict(models=(("a", runner.model_spec("forward")), ("a", runner.model_spec("bidirectional")))), ValueError,
     r"names must be distinct"),
], ids=["zero-seeds", "bool-updates", "float-heldout", "unknown-mode", "no-models", "path-in-name", "not-a-spec",
        "same-name-twice"])
def test_an_experiment_with_a_bad_field_is_refused_by_name(changes, error, pattern):
    fields = dict(name="compare", models=(("lstm", runner.model_spec("forward")),), seeds=1, updates=UPDATES, heldout=HELDOUT)
    with pytest.raises(error, match=pattern):
        runner.Experiment(**(fields | changes))
