"""What ``bilstm bench`` says: its help, its refusals and its progress read like every other command's.

``merge`` is named once in the help (not as a required argument, twice); a refusal starts
``bilstm bench: error:``; a finished run's line counts statuses in words (never a Python dict) and a
group's line shows the seconds it took, not its share of the budget.
"""
from __future__ import annotations

import re
import time

import pytest

from benchmarks.train_speed import format_counts
from keras_impl.cli import main as bilstm
from parity_tests.conftest import BACKEND

pytestmark = pytest.mark.backend_independent  # a stand-in run and the parser: no Keras backend changes them

# One group of three cases of this backend's Keras, timed by the stand-in step: seconds.
STAND_IN = ["--stand-in", "--backend", BACKEND, "--no-raw", "--devices", "cpu", "--batches", "1,2,4",
            "--timesteps", "10", "--units", "20", "--case-seconds", "0.02", "--no-summary"]


def test_help_names_merge_once_and_not_as_an_argument(capsys):
    with pytest.raises(SystemExit):
        bilstm(["bench", "--help"])
    help_text = capsys.readouterr().out
    usage = help_text.split("\n\n")[0]
    assert "merge" not in usage, usage  # not a required argument of the sweep
    assert "positional arguments" not in help_text, help_text
    assert help_text.count("merge") == 1 and "bilstm bench merge DIR... --out DIR" in help_text, help_text


def exit_code(argv) -> int:
    """The status of ``bilstm ARGV``: returned by the command, or argparse's exit on a bad command line."""
    try:
        return bilstm(argv)
    except SystemExit as exited:
        return exited.code


@pytest.mark.parametrize("argv, prefix", [
    (["bench", "--budget", "-1"], "bilstm bench: error: --budget"),          # checked by the command
    (["bench", "--units", "x"], "bilstm bench: error: --units"),
    (["bench", "--backend", "nope"], "bilstm bench: error: argument --backend"),  # by argparse
    (["bench", "merge"], "bilstm bench merge: error: "),
])
def test_refusals_start_like_every_other_command(argv, prefix, capsys, tmp_path):
    assert exit_code([*argv, "--out", str(tmp_path / "o")] if argv[1] != "merge" else argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(prefix), err
    assert not (tmp_path / "o").exists()


def test_counts_are_words():
    assert format_counts({"ok": 15}) == "15 ok"
    assert format_counts({"skipped": 3, "ok": 12, "error": 1}) == "12 ok, 3 skipped, 1 error"


def test_a_finished_run_says_counts_and_each_group_its_time_taken(tmp_path, capsys):
    start = time.perf_counter()
    assert bilstm(["bench", *STAND_IN, "--budget", "300", "--out", str(tmp_path / "run")]) == 0
    took = time.perf_counter() - start
    out = capsys.readouterr().out.splitlines()
    assert not any("{" in line for line in out), out  # no Python dict
    group_lines = [line for line in out if re.fullmatch(r"\[\S+\] .*", line)]
    assert group_lines and all("300" not in line for line in group_lines), group_lines  # never the budget
    finished = [re.fullmatch(r"\[\S+\] 3 ok in (\d+) s", line) for line in group_lines]
    assert [m for m in finished if m] and all(int(m.group(1)) <= took + 1 for m in finished if m), group_lines
    assert re.fullmatch(r"bilstm bench: 3 ok in \d+ s", out[-1]), out[-1]
