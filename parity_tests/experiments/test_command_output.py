"""What demo, compare, merge-modes and reproduce print, and what they refuse to replace.

Once they printed a Markdown table about 230 columns wide and no verdicts (reproduce: only the
report's path), wrote ``"backend": null`` into summary.json when the backend came from
KERAS_BACKEND, and replaced an existing result set in ``--out`` without a word.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parity_tests.conftest import BACKEND
from parity_tests.experiments.conftest import SMALL
from parity_tests.experiments.test_experiments import run_cli
WIDTH = 100
INTERVAL = r"-?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\]"


def listed_files(stdout: str) -> list[Path]:
    """The files the 'Files written in OUT:' block names, each as a path."""
    lines = stdout.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Files written in "))
    out = Path(lines[start][len("Files written in "):-1])
    entries, folder = [], out
    for line in lines[start + 1:]:
        text = line.strip()
        if (match := re.match(r"([\w.-]+)/: (.*)", text)) and not line.startswith("    "):
            folder, text = out / match.group(1), match.group(2)
        elif not line.startswith("    "):
            folder = out
        entries += [folder / name for name in text.split(", ") if name]
    return entries


def check_printed(stdout: str, verdict_lines: int) -> None:
    """Every line fits 100 columns; verdict lines come with intervals; every file listed exists."""
    too_wide = [line for line in stdout.splitlines() if len(line) > WIDTH]
    assert not too_wide, too_wide
    assert "|---" not in stdout, "the terminal gets the compact table, not the report's Markdown"
    verdicts = [line for line in stdout.splitlines()
                if re.match(r"(supported|not supported|inconclusive|no significant difference|\w+ (lower|higher) "
                            r"\(significant\)): ", line)]
    assert len(verdicts) == verdict_lines, stdout
    assert len(re.findall(INTERVAL, stdout)) >= verdict_lines, stdout
    files = listed_files(stdout)
    assert files and all(path.exists() for path in files), [p for p in files if not p.exists()]


def test_compare_prints_a_compact_table_verdicts_and_files_and_records_its_backend(small_run):
    run = small_run("compare")  # KERAS_BACKEND set, no --backend
    code, stdout, stderr, out, titles = run.code, run.stdout, run.stderr, run.out, run.titles
    assert code == 0, stderr
    check_printed(stdout, verdict_lines=3)  # alike, falls sooner, stays lower
    assert re.search(r"^bilstm( +\d|$)", stdout, re.MULTILINE) and f"backend {BACKEND} on " in stdout
    assert "why inconclusive: 2 seeds: the smallest possible Holm-adjusted p over 15 tests is 1" in stdout
    # said before any training, on stderr
    assert ("bilstm compare: note: 2 seeds: the smallest possible p is 1 after Holm over the 15 tests of compare "
            "(not below 0.05: no difference can be significant); use 10 or more seeds") in stderr
    assert {p.name for p in listed_files(stdout)} == {"results.csv", "curves.csv", "pairs.csv", "summary.json",
                                                      "loss.png", "loss.svg", "runs"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arguments"]["backend"] == summary["backend_info"]["backend"] == BACKEND
    # the figure names what computed it
    assert len(titles) == 1 and re.search(rf"keras 3\.15\.1 on {BACKEND} [0-9.]+\S*, device \S+, float32$", titles[0]), titles


def test_demo_prints_the_accuracy_verdict_with_its_interval(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli(["demo", *SMALL, "--backend", BACKEND, "--out", str(out)], capsys)
    assert code == 0, stderr
    check_printed(stdout, verdict_lines=1)
    assert "the Bidirectional LSTM's accuracy hovers between about 90% and 100%" in stdout
    assert "note:" not in stderr, "a demo makes no paired test: nothing to say about its seed count"


def test_merge_modes_prints_the_tutorials_claim(tmp_path, capsys):
    out = tmp_path / "merge"
    code, stdout, stderr = run_cli(["merge-modes", *SMALL, "--backend", BACKEND, "--out", str(out)], capsys)
    assert code == 0, stderr
    check_printed(stdout, verdict_lines=1)
    assert ": Merge modes: sum and concat do better (lower loss) than mul and ave" in stdout
    assert "1 after Holm over the 30 tests of merge-modes" in stderr and "use 11 or more seeds" in stderr


def test_reproduce_prints_every_experiment_and_every_file(small_run):
    run = small_run("reproduce", "--demo-updates", "8")
    code, stdout, stderr, out = run.code, run.stdout, run.stderr, run.out
    assert code == 0, stderr
    check_printed(stdout, verdict_lines=2 + 3 + 1)  # two demos, compare's three claims, merge-modes' one
    for name in ("demo-bilstm", "demo-lstm", "compare", "merge-modes"):
        assert re.search(rf"^{name}: 2 seeds", stdout, re.MULTILINE), name
        assert (out / name / "summary.json") in listed_files(stdout)
    assert {out / "REPORT.md", out / "claims.json"} <= set(listed_files(stdout))
    report = (out / "REPORT.md").read_text()
    assert "## How the verdicts are decided" in report and "**What 2 seeds allow.**" in report
    assert "compare, 15 tests: 1; merge-modes, 30 tests: 1" in report and "Use 11 or more seeds" in report
    assert "Backend **" + BACKEND + "**" in report
    claims = json.loads((out / "claims.json").read_text())
    assert claims["arguments"]["backend"] == BACKEND
    assert all(c.get("why") for c in claims["claims"][2:]), "an inconclusive verdict at 2 seeds names the seed count"


# ---------------------------------------------------------------- nothing replaced silently

RESULT_SETS = {  # command -> a file of its result set, relative to --out
    "demo": "summary.json", "compare": "results.csv", "merge-modes": "runs/bilstm_sum/seed_0000.json",
    "reproduce": "compare/summary.json",
}


@pytest.mark.parametrize("command", list(RESULT_SETS))
def test_an_existing_result_set_is_refused_naming_resume_and_overwrite(tmp_path, capsys, command):
    out = tmp_path / "results"
    old = out / RESULT_SETS[command]
    old.parent.mkdir(parents=True)
    old.write_text("an earlier result")
    code, stdout, stderr = run_cli([command, *SMALL, "--backend", BACKEND, "--out", str(out)], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0, stderr
    assert f"bilstm {command}: error: --out {out} already holds a result set (" in stderr
    assert "pass --resume to continue it or --overwrite to replace its files" in stderr
    assert old.read_text() == "an earlier result"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [RESULT_SETS[command]], \
        "nothing may be trained or written"


def test_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    code, _, stderr = run_cli(["compare", *SMALL, "--backend", BACKEND, "--out", str(tmp_path / "x"), "--resume",
                               "--overwrite"], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0
    assert "--resume and --overwrite exclude each other" in stderr and not (tmp_path / "x").exists()


def test_a_folder_of_other_files_is_no_result_set(tmp_path, capsys):
    """--out may be an existing folder of the user's; only a result set needs --resume or --overwrite."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, stderr = run_cli(["demo", "--model", "lstm", *SMALL, "--backend", BACKEND, "--out", str(out)], capsys)
    assert code == 0, stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "summary.json").is_file()


def test_overwrite_replaces_only_the_files_the_command_writes(tmp_path, capsys):
    out = tmp_path / "again"
    (out / "runs" / "lstm").mkdir(parents=True)
    (out / "summary.json").write_text("{}")
    (out / "runs" / "lstm" / "seed_0000.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    (out / "runs" / "lstm" / "seed_0009.json").write_text("a seed this run does not make")
    code, _, stderr = run_cli(["demo", "--model", "lstm", *SMALL, "--backend", BACKEND, "--out", str(out),
                               "--overwrite"], capsys)
    assert code == 0, stderr
    assert json.loads((out / "summary.json").read_text())["seeds"] == [0, 1]
    assert json.loads((out / "runs" / "lstm" / "seed_0000.json").read_text())["seed"] == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "runs" / "lstm" / "seed_0009.json").read_text() == "a seed this run does not make"


# ---------------------------------------------------------------- the compact table, by hand

def cell(mean, low, high, censored=0):
    return {"mean": mean, "ci_low": low, "ci_high": high, "censored": censored}


def test_a_value_is_mean_plus_minus_half_width_unless_its_interval_was_cut():
    from keras_impl.experiments.console import value_text
    assert value_text(cell(0.481, 0.476, 0.486), "mean_loss") == "0.481 +/- 0.005"
    assert value_text(cell(0.967, 0.823, 1.0), "heldout_step_accuracy") == "0.967 [0.823, 1.000]"  # cut at 1
    assert value_text(cell(203.5, 192.8, 214.2, censored=2), "updates_to_90") == "203.5 +/- 10.7 (2 never)"
    assert value_text(cell(0.9, float("nan"), float("nan")), "mean_loss") == "0.900"  # one seed: no interval


def test_a_table_too_wide_for_100_columns_becomes_one_block_a_model():
    from keras_impl.experiments.console import WIDTH, model_table
    cut = {"mean_loss": cell(0.5, 0.45, 0.55), "last50_loss": cell(0.4, 0.0, 0.9),
           "updates_to_90": cell(1190.4, 1.0, 2390.1, censored=12),
           "heldout_step_accuracy": cell(0.967, 0.823, 1.0)}
    narrow = model_table({"models": {"lstm": {**cut, "last50_loss": cell(0.4, 0.35, 0.45),
                                              "updates_to_90": cell(50.0, 40.0, 60.0)}}})
    assert len(narrow) == 2 and narrow[1].startswith("lstm ")  # header and one row
    wide = model_table({"models": {"bisimple_rnn_concat": cut, "bisimple_rnn_sum": cut}})
    assert all(len(line) <= WIDTH for line in wide)
    assert wide[0] == "bisimple_rnn_concat" and wide[1].strip().startswith("mean loss") and len(wide) == 10
