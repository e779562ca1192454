"""Docs that stay true: a measured figure stated in README.md or docs/ agrees with its result file or with
what is in the tree, and is stated once (other pages link to it). Each test names the figure it holds.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "benchmarks/results/cpu-2c-intel-xeon-processor/summary.md"
KERAS2 = ROOT / "parity_tests/fixtures/keras2"
pytestmark = pytest.mark.backend_independent


def user_docs() -> dict[Path, str]:
    """README.md and every page of docs/, by path."""
    return {path: path.read_text(encoding="utf-8") for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}


def summary_ratios() -> dict[tuple[str, str], tuple[str, str, str]]:
    """The committed summary's Keras-over-raw table: (keras group, raw group) -> (shapes, median, quartiles)."""
    text = SUMMARY.read_text(encoding="utf-8")
    section = text.split("## Keras over raw, CPU", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (keras-[\w-]+) \| (raw-[\w-]+) \| (\d+) \| ([\d.]+) \| ([\d.]+-[\d.]+) \|", section, re.M)
    return {(k, r): (shapes, median, quartiles) for k, r, shapes, median, quartiles in rows}


def test_the_cpu_headline_is_the_committed_summarys():
    """docs/benchmarks.md once carried two headline tables (1.62 as first rendered, 1.33 after noisy pairs were
    left out); its one table now equals summary.md's row for row."""
    ratios = summary_ratios()
    groups = {"JAX": "keras-jax-cpu-auto", "torch": "keras-torch-cpu-auto", "TensorFlow": "keras-tensorflow-cpu-auto"}
    doc = (ROOT / "docs/benchmarks.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (JAX|torch|TensorFlow) \| \**([\d.]+)\** \[([\d.-]+)\] \| \**([\d.]+)\** \[([\d.-]+)\] "
                      r"\| (\d+) / (\d+) \|$", doc, re.M)
    assert sorted(r[0] for r in rows) == sorted(groups), "docs/benchmarks.md: one headline row per Keras backend"
    for name, over_jax, q_jax, over_torch, q_torch, n_jax, n_torch in rows:
        assert ratios[(groups[name], "raw-jax-cpu-scan")] == (n_jax, over_jax, q_jax), name
        assert ratios[(groups[name], "raw-torch-cpu-native")] == (n_torch, over_torch, q_torch), name
    assert "summary.md" in doc


SUPERSEDED_HEADLINE = re.compile(r"(?<![\d.])1\.62(?![\de])")  # an error such as 1.62e-07 is another figure


def superseded_headlines(text: str) -> list[str]:
    """Lines that state the figure the first rendering gave for Keras over a raw framework (JAX over raw JAX
    1.62): a line about a raw baseline with 1.62 in it (another table's 1.62, a ratio band, is another figure)."""
    return [line for line in text.splitlines()
            if re.search(r"\braw\b", line, re.IGNORECASE) and SUPERSEDED_HEADLINE.search(line)]


def test_no_superseded_headline_is_left_in_the_docs():
    for path, text in user_docs().items():
        if path.name == "tutorial.md":
            continue  # owned and checked with the tutorial
        assert not superseded_headlines(text), path


def test_the_superseded_headline_check_catches_the_headline_only():
    assert superseded_headlines("| JAX over raw JAX | 1.62x |") == ["| JAX over raw JAX | 1.62x |"]
    assert superseded_headlines("Keras-JAX: 1.62 times raw JAX's step") != []
    assert superseded_headlines("| tagger_layernorm | 1.67 [1.69, 1.62] |") == []
    assert superseded_headlines("raw JAX error 1.62e-07") == []


def keras2_fixtures() -> dict[str, int]:
    """The Keras 2 fixtures by what they hold: verified LSTM models, GRU, SimpleRNN, the refused one, and the
    models of the other layers (the test zoo's, normalization and pooling)."""
    kinds = {"lstm": 0, "gru": 0, "simple_rnn": 0, "refused": 0, "other layers": 0}
    for path in KERAS2.glob("*.h5"):
        name = path.stem
        kind = ("other layers" if name.startswith("zoo_") or name == "normalization_pooling"
                else "refused" if "hard_sigmoid" in name else "gru" if "gru" in name
                else "simple_rnn" if "simple_rnn" in name or "birnn" in name else "lstm")
        kinds[kind] += 1
    return kinds


def test_the_keras2_file_counts_stated_are_the_files_present():
    """docs/verify.md said "worst of 7" and "8 Keras 2 files" of the same LSTM fixtures: each count stated
    is the number of files in parity_tests/fixtures/keras2/."""
    kinds = keras2_fixtures()
    doc = (ROOT / "docs/verify.md").read_text(encoding="utf-8")
    stated = {"lstm": re.findall(r"Keras 2 LSTM files \(worst of (\d+)", doc),
              "gru": re.findall(r"Keras 2 GRU files \(worst of (\d+)", doc),
              "simple_rnn": re.findall(r"Keras 2 SimpleRNN files \(worst of (\d+)", doc)}
    for kind, counts in stated.items():
        assert counts, f"docs/verify.md states no count of its Keras 2 {kind} files"
        assert {int(c) for c in counts} == {kinds[kind]}, (kind, counts, kinds)
    total = re.findall(r"(\d+) Keras 2 files", doc)
    assert total and {int(t) for t in total} == {sum(kinds.values())}, (total, kinds)
    for path, text in user_docs().items():
        if path.name not in ("verify.md", "tutorial.md"):
            assert not re.search(r"\d+ Keras 2 (files|fixtures)", text), f"{path}: the count belongs to docs/verify.md"


def test_the_trajectory_errors_are_stated_once():
    """docs/training-oracle.md kept trajectory errors measured on the final weights (8.1e-7, 2.6e-6, 2.7e-6)
    beside docs/parity.md's on the updates (4.1e-6, 1.0e-5, 1.1e-5): docs/parity.md alone states them."""
    for path, text in user_docs().items():
        for old in ("8.1e-7", "2.6e-6", "2.7e-6"):
            assert old not in text, f"{path}: {old}, a trajectory error on the final weights"
    training = (ROOT / "docs/training-oracle.md").read_text(encoding="utf-8")
    assert "trajectory float32" not in training and "parity.md" in training


def test_the_float64_trajectory_on_tensorflow_is_one_figure():
    """docs/parity.md gave it twice, 3.3e-16 in the results table and 4.4e-16 in the tolerances' table."""
    doc = (ROOT / "docs/parity.md").read_text(encoding="utf-8")
    in_results = re.search(r"^\| the same in float64 \(absolute[^|]*\| ([\d.e-]+)", doc, re.M)
    in_bounds = re.search(r"^\| the same in float64 on TensorFlow \(`TRAJECTORY_FLOAT64_ABS`\) \| [^|]+ \| ([\d.e-]+)",
                          doc, re.M)
    assert in_results and in_bounds and in_results.group(1) == in_bounds.group(1)


def test_parity_quicks_run_time_is_not_a_documented_figure():
    """The sample output said (58.7 s) where a run takes about 18 s: the sample shows no time."""
    doc = (ROOT / "docs/parity.md").read_text(encoding="utf-8")
    assert not re.search(r"^PARITY OK: .*\(\d+(\.\d+)? s\)$", doc, re.M)
