"""The worst error of ``bilstm verify`` per layer kind and backend, from the records of the verify tests.

    pytest -m "not slow" parity_tests/verify --record-verify-errors errors.jsonl   # once per KERAS_BACKEND
    python -m benchmarks.verify_errors errors.jsonl ... --out table.md --summary summary.json

Each record (``parity_tests/verify_error_records.py``) is one layer row of one report: its kind (the Keras class,
a wrapper's with its inner layer's), backend, dtype Keras computed in, the error the bound holds
(``max |Keras - oracle| / max(1, max |oracle|)``), the bound, and the verdicts. Only passing rows of reports that
pass count: the tests that plant a fault make their reports fail on purpose.

The table: a row per kind, a column per dtype and backend, each cell the worst error (3 significant digits) and
the number of layer rows it is the worst of, marked * where that row's inputs already differed by as much (the
figure may be mostly carried in); the last column, the largest fraction of its bound any row of the
kind reached. Below it, the registered Keras classes (``keras_impl.verify.layers.DESCRIBE``) no passing row has,
per column. Both files are written atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = [(dtype, backend) for dtype in ("float32", "float64") for backend in ("tensorflow", "jax", "torch")]
SHORT = {"tensorflow": "TF", "jax": "JAX", "torch": "torch"}


def read_records(paths) -> list[dict]:
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            records += [json.loads(line) for line in lines if line.strip()]
    return records


def counted(record: dict) -> bool:
    """A passing row of a passing report: the ones the worst error is over."""
    return record["verdict"] == "pass" and record["report_verdict"] == "pass" and record["error"] is not None


def worst_per_kind(records) -> dict:
    """``{kind: {(dtype, backend): {"worst", "rows", "bound", "test", "layer"}}}`` over the counted records."""
    table: dict = {}
    for r in filter(counted, records):
        cell = table.setdefault(r["kind"], {}).setdefault((r["dtype"], r["backend"]), {"worst": -1.0, "rows": 0})
        cell["rows"] += 1
        if r["error"] > cell["worst"]:
            cell.update(worst=r["error"], bound=r["bound"], test=r["test"], layer=r["layer"], carried=carried_in(r))
    return table


def carried_in(record: dict) -> bool:
    """Whether a row's error is no larger than its inputs' (``max |Keras - oracle|`` both): then it may be
    mostly carried in. Keras's layer reads Keras's inputs and the oracle's reads the oracle's, so a layer that only
    moves values (padding, cropping, dropout at inference) shows what came in."""
    came_in = record.get("input_max_abs_error")
    return bool(came_in) and record["max_abs_error"] <= came_in


def kinds_in(kind: str) -> set[str]:
    """The Keras classes a kind names: ``Bidirectional(LSTM)`` -> {Bidirectional, LSTM}."""
    return set(kind.replace(")", "").split("("))


def missing_kinds(table: dict, registered) -> dict:
    """Per column, the registered classes that no counted row's kind names (outer or inner)."""
    return {column: sorted(set(registered) - {"InputLayer"}
                           - {k for kind, cells in table.items() if column in cells for k in kinds_in(kind)})
            for column in COLUMNS}


def closest_to_bound(cells: dict) -> tuple[float, tuple[str, str]]:
    """The largest worst/bound of a kind's cells, and its column."""
    return max((cell["worst"] / cell["bound"], column) for column, cell in cells.items())


def markdown(table: dict, missing: dict) -> str:
    head = [f"{SHORT[b]} {d[5:]}-bit" for d, b in COLUMNS]
    lines = ["| Layer kind | " + " | ".join(head) + " | closest to its bound |",
             "| --- |" + " --- |" * (len(COLUMNS) + 1)]
    for kind in sorted(table):
        cells = table[kind]
        shown = [f"{cells[c]['worst']:.3g}{'*' if cells[c]['carried'] else ''} ({cells[c]['rows']})" if c in cells
                 else "" for c in COLUMNS]
        ratio, (dtype, backend) = closest_to_bound(cells)
        lines.append(f"| {kind} | " + " | ".join(shown) + f" | {ratio:.2g} ({SHORT[backend]} {dtype[5:]}-bit) |")
    lines += ["", "\\* the worst row's inputs already differed from the oracle's by as much or more: that figure "
              "may be mostly carried in, not the layer's own.",
              ""]
    everywhere = set.intersection(*(set(m) for m in missing.values()))
    lines.append("No passing row in any column: " + (", ".join(sorted(everywhere)) or "none") + ".")
    columns_of: dict = {}  # the same kinds missing in several columns: said once, for all of them
    for (dtype, backend), kinds in missing.items():
        rest = tuple(k for k in kinds if k not in everywhere)
        if rest:
            columns_of.setdefault(rest, []).append(f"{SHORT[backend]} {dtype[5:]}-bit")
    lines += [f"No passing row on {', '.join(columns)}: {', '.join(rest)}." for rest, columns in columns_of.items()]
    return "\n".join(lines) + "\n"


def summary(table: dict, missing: dict, sources) -> dict:
    return {"sources": [Path(s).name for s in sources],
            "kinds": {kind: {f"{d} {b}": cell for (d, b), cell in cells.items()} for kind, cells in table.items()},
            "missing": {f"{d} {b}": kinds for (d, b), kinds in missing.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", help="JSON-lines files of pytest --record-verify-errors")
    parser.add_argument("--out", help="the markdown table (default: printed only)")
    parser.add_argument("--summary", help="the worst row of every cell, and the missing kinds, as JSON "
                                          "(default: none)")
    args = parser.parse_args(argv)
    missing_files = [p for p in args.records if not Path(p).is_file()]
    if missing_files:
        print(f"verify_errors: no such file: {missing_files[0]}", file=sys.stderr)
        return 2
    from keras_impl.files import atomic_write_json, atomic_write_text
    from keras_impl.verify.layers import DESCRIBE  # imports no framework
    table = worst_per_kind(read_records(args.records))
    missing = missing_kinds(table, DESCRIBE)
    text = markdown(table, missing)
    print(text, end="")
    if args.out:
        atomic_write_text(Path(args.out), text)
    if args.summary:
        atomic_write_json(Path(args.summary), summary(table, missing, args.records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
