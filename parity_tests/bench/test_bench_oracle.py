"""``bilstm bench oracle``: the oracle's forward against Keras-JAX's on the test zoo (``benchmarks/oracle_zoo.py``).

A small run in a fresh process (the command sets the jax backend itself, whatever this pytest process runs)
writes its JSON and markdown table with one progress line per model, the two forwards agreeing, and
``bilstm verify``'s time and exit status; a model the oracle refuses is skipped with the refusal line;
every bad argument is one line, exit status 2, nothing written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace

import pytest

from benchmarks import oracle_zoo
from keras_impl.verify.errors import VerifyRefusal
from parity_tests.conftest import nonblank_lines, run_bilstm

SMALL = ["--size", "small", "--repeats", "3", "--warmup", "1"]


@pytest.mark.backend_independent  # its own process, always on jax
def test_small_run_times_both_forwards_and_verify(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "keras_impl.cli", "bench", "oracle", *SMALL,
                           "--models", "bilstm_classifier", "--out", str(out), "--save-models", str(tmp_path / "zoo")],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = nonblank_lines(proc.stdout)
    assert lines[0].startswith("bilstm_classifier ") and "ratio" in lines[0] and "verify" in lines[0], lines
    assert "(exit 0)" in lines[0] and lines[-1].startswith("wrote ")
    result = json.loads((out / "oracle_zoo.json").read_text())
    assert result["size"] == "small" and result["environment"]["jax"]
    (record,) = result["records"]
    assert record["inputs"] == [{"shape": [3, 9], "dtype": "int32"}]
    assert record["oracle"]["repeats"] == record["keras_jax"]["repeats"] == 3
    assert record["oracle"]["median_s"] > 0 and record["keras_jax"]["median_s"] > 0
    assert record["ratio"] == pytest.approx(record["oracle"]["median_s"] / record["keras_jax"]["median_s"])
    assert record["max_rel_diff"] < 1e-5  # the two forwards compute the same model
    assert record["verify"]["exit"] == 0 and record["verify"]["wall_s"] > 0
    assert "layers within bounds" in record["verify"]["last_line"]
    table = (out / "oracle_zoo.md").read_text()
    assert "| bilstm_classifier | 3x9 |" in table and "| model | inputs | oracle ms |" in table
    assert sorted(p.name for p in out.iterdir()) == ["oracle_zoo.json", "oracle_zoo.md"]  # no temporary left
    assert [p.name for p in (tmp_path / "zoo").iterdir()] == ["bilstm_classifier.keras"]  # the model verify timed
    assert len(record["oracle"]["times_s"]) == len(record["keras_jax"]["times_s"]) == 3  # two blocks: 2, then 1


def test_a_refused_model_is_skipped_with_the_refusal(monkeypatch):
    """Skipped, not failed: the one line verify would print stands in the progress line and the table."""
    from keras_impl.verify import describe
    refusal = "layer 'conv1d' of class Conv1D is not supported; supported: ..."

    def refuse(model):
        raise VerifyRefusal(refusal)

    monkeypatch.setattr(describe, "describe_model", refuse)
    args = Namespace(size="small", seed=0, repeats=3, warmup=1, skip_verify=False)
    record = oracle_zoo.bench_model("cnn_bilstm", args)
    assert record["skipped"] == refusal and "oracle" not in record and "verify" not in record
    assert oracle_zoo.progress_line(record) == f"cnn_bilstm         skipped: {refusal}"
    table = oracle_zoo.markdown({"size": "small", "repeats": 3, "warmup": 1, "seed": 0, "records": [record],
                                 "environment": {"cpu": "cpu", "cpu_count": 2, "loadavg_1m": 0.0, "numpy": "n",
                                                 "jax": "j", "keras": "k", "timestamp": "t"}})
    assert f"| cnn_bilstm | 3x10 | skipped: {refusal} |" in table


@pytest.mark.backend_independent
@pytest.mark.parametrize("argv, message", [
    (["--models", "nope"], "--models: unknown zoo model 'nope'"),
    (["--models", "crnn_ocr", "crnn_ocr"], "--models names a model twice"),
    (["--size", "huge"], "--size must be one of small, realistic"),
    (["--repeats", "2"], "--repeats must be between 3 and 1000"),
    (["--warmup", "0"], "--warmup must be between 1 and 100"),
    (["--seed", "-1"], "--seed must be between 0"),
    (["--tag", "a/b"], "--tag must be letters"),
    (["--oracle-threads", "0"], "--oracle-threads must be between 1 and 64"),
])
def test_bad_arguments_are_one_line_and_write_nothing(argv, message, tmp_path, capsys):
    code, out, err = run_bilstm(["bench", "oracle", *argv, "--out", tmp_path / "o"], capsys)
    assert code == 2 and out == "" and nonblank_lines(err) == [err.strip()], err
    assert err.startswith("bilstm bench: error: ") and message in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.backend_independent
def test_a_saved_model_already_there_is_kept_without_overwrite(tmp_path, capsys):
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "crnn_ocr.keras").write_text("earlier model\n")
    code, _, err = run_bilstm(["bench", "oracle", *SMALL, "--models", "crnn_ocr", "--save-models", tmp_path / "zoo",
                               "--out", tmp_path / "o"], capsys)
    assert code == 2 and "crnn_ocr.keras already exists" in err and not (tmp_path / "o").exists()
    assert (tmp_path / "zoo" / "crnn_ocr.keras").read_text() == "earlier model\n"


@pytest.mark.backend_independent
def test_results_already_there_are_kept_without_overwrite(tmp_path, capsys):
    (tmp_path / "oracle_zoo.md").write_text("earlier results\n")
    code, _, err = run_bilstm(["bench", "oracle", *SMALL, "--out", tmp_path], capsys)
    assert code == 2 and "oracle_zoo.json already exists" not in err and "oracle_zoo.md already exists" in err
    assert (tmp_path / "oracle_zoo.md").read_text() == "earlier results\n"


@pytest.mark.backend_independent
def test_a_run_stopped_half_way_keeps_the_models_it_finished(tmp_path, monkeypatch):
    """Each model's record is saved as soon as it is timed; a Ctrl-C on the next leaves the file whole and marked."""
    import keras_impl.backend as backend

    def bench(name, args):
        if name == "crnn_ocr":
            raise KeyboardInterrupt
        return {"model": name, "inputs": [{"shape": [3, 9], "dtype": "int32"}], "skipped": "stand-in"}

    monkeypatch.setattr(oracle_zoo, "bench_model", bench)
    monkeypatch.setattr(oracle_zoo, "environment", lambda: {
        "cpu": "cpu", "cpu_count": 2, "loadavg_1m": 0.0, "numpy": "n", "jax": "j", "keras": "k", "timestamp": "t"})
    monkeypatch.setattr(backend, "select_backend", lambda name: None)
    monkeypatch.setattr(backend, "print_header", lambda *a, **k: None)
    monkeypatch.setattr(backend, "device_name", lambda: "cpu")
    args = Namespace(models=["cnn_bilstm", "crnn_ocr", "speech_ctc"], size="small", repeats=3, warmup=1, seed=0,
                     tag="", out=tmp_path, save_models=None, overwrite=False, skip_verify=True,
                     oracle_threads=None)
    with pytest.raises(KeyboardInterrupt):
        oracle_zoo.run(args)
    result = json.loads((tmp_path / "oracle_zoo.json").read_text())
    assert [r["model"] for r in result["records"]] == ["cnn_bilstm"]
    assert result["complete"] is False and result["not_reached"] == ["crnn_ocr", "speech_ctc"]
    assert "Not reached (the run stopped first): crnn_ocr, speech_ctc." in (tmp_path / "oracle_zoo.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oracle_zoo.json", "oracle_zoo.md"]


@pytest.mark.backend_independent
def test_the_two_sides_are_timed_in_alternating_blocks_after_a_pause(monkeypatch):
    """Blocks of calls back to back, alternating, each after the pause (OpenBLAS's threads spinning after the
    oracle's products slowed a Keras-JAX call made at once): warm-up a b, then a a b b a b for 3 repeats."""
    calls, pauses = [], []
    monkeypatch.setattr(oracle_zoo.time, "sleep", pauses.append)
    records = oracle_zoo.timed_interleaved((lambda: calls.append("a"), lambda: calls.append("b")), 3, 1)
    assert "".join(calls) == "ab" + "aabbab"
    assert pauses == [oracle_zoo.SETTLE_S] * 4 and oracle_zoo.SETTLE_S >= 0.2
    assert [r["repeats"] for r in records] == [3, 3] and [len(r["times_s"]) for r in records] == [3, 3]
