"""``pytest --record-verify-errors``'s records (parity_tests/verify_error_records.py) and their aggregation into
the worst error per layer kind and backend (benchmarks/verify_errors.py, docs/verify.md)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights


def test_a_verify_call_records_one_row_per_layer_output(tmp_path, monkeypatch, request, backend):
    import keras

    from keras_impl.verify import api, verify
    from parity_tests.verify_error_records import recording
    L = keras.layers
    model = keras.Sequential([keras.Input((5, 3)), L.Bidirectional(L.GRU(2, return_sequences=True), name="bi"),
                              L.TimeDistributed(L.Dense(4), name="head"), L.Dense(3, name="out")])
    path = tmp_path / "tiny.keras"
    randomise_weights(model, np.random.default_rng(11)).save(path)
    records_file = tmp_path / "records.jsonl"
    records_file.write_text('{"an earlier run": 1}\n')  # kept: records are appended
    monkeypatch.setattr(api, "_report", recording(api._report, records_file))
    report = verify(path, batch=2, seed=3)
    earlier, *records = [json.loads(line) for line in records_file.read_text().splitlines()]
    assert earlier == {"an earlier run": 1}
    assert [r["layer"] for r in records] == ["bi", "head", "out"]
    assert [r["kind"] for r in records] == ["Bidirectional(GRU)", "TimeDistributed(Dense)", "Dense"]
    assert {(r["backend"], r["dtype"], r["verdict"], r["report_verdict"], r["test"], r["file"]) for r in records} == {
        (backend, "float32", "pass", "pass", request.node.nodeid, "tiny.keras")}
    for r, row in zip(records, report.layers):
        assert 0 < r["error"] <= r["bound"] and r["max_abs_error"] == row["max_abs_error"]
    # each layer reads the one before it (the first, the model's input, which carries no error)
    assert [r["input_max_abs_error"] for r in records] == [0.0] + [row["max_abs_error"] for row in report.layers[:2]]


def row(kind, error, backend="torch", dtype="float32", verdict="pass", report_verdict="pass", bound=1e-5,
        came_in=0.0):
    return {"backend": backend, "dtype": dtype, "kind": kind, "error": error, "bound": bound, "verdict": verdict,
            "report_verdict": report_verdict, "test": f"t::{kind}_{error}", "layer": "x", "max_abs_error": error,
            "input_max_abs_error": came_in}


ROWS = [row("LSTM", 1e-7), row("LSTM", 3e-7), row("LSTM", 2e-7),
        row("LSTM", 5e-5, verdict="FAIL"),                     # a planted fault's own row
        row("LSTM", 9e-7, report_verdict="FAIL"),              # passing, but in a planted fault's report
        row("LSTM", None, verdict="FAIL"),                     # a shape mismatch: infinite, written as null
        row("LSTM", 4e-8, backend="jax"),
        row("Bidirectional(GRU)", 2e-16, backend="tensorflow", dtype="float64", bound=1e-10),
        row("Bidirectional(GRU)", 6e-11, backend="tensorflow", dtype="float64", bound=1e-10),
        row("Cropping1D", 2e-7, came_in=2e-7), row("Cropping1D", 1e-7, came_in=3e-8)]  # the worst came in


@pytest.mark.backend_independent
def test_the_worst_error_is_over_the_passing_rows_of_passing_reports_per_kind_and_column(tmp_path):
    from benchmarks.verify_errors import main, missing_kinds, worst_per_kind
    table = worst_per_kind(ROWS)
    assert {kind: {column: (cell["worst"], cell["rows"]) for column, cell in cells.items()}
            for kind, cells in table.items()} == {
        "LSTM": {("float32", "torch"): (3e-7, 3), ("float32", "jax"): (4e-8, 1)},
        "Bidirectional(GRU)": {("float64", "tensorflow"): (6e-11, 2)},
        "Cropping1D": {("float32", "torch"): (2e-7, 2)}}
    assert table["LSTM"][("float32", "torch")]["test"] == "t::LSTM_3e-07"
    missing = missing_kinds(table, ["InputLayer", "LSTM", "GRU", "Bidirectional", "Dense"])
    assert missing[("float32", "torch")] == ["Bidirectional", "Dense", "GRU"]
    assert missing[("float64", "tensorflow")] == ["Dense", "LSTM"]
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "table.md"
    assert main([str(records), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| Layer kind | TF 32-bit | JAX 32-bit | torch 32-bit | TF 64-bit | JAX 64-bit |")
    assert "| LSTM |  | 4e-08 (1) | 3e-07 (3) |  |  |  | 0.03 (torch 32-bit) |" in lines
    assert "| Bidirectional(GRU) |  |  |  | 6e-11 (2) |  |  | 0.6 (TF 64-bit) |" in lines
    assert "| Cropping1D |  |  | 2e-07* (2) |  |  |  | 0.02 (torch 32-bit) |" in lines
    assert main([str(tmp_path / "absent.jsonl")]) == 2
