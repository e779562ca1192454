"""Benchmark results on disk: one JSON file (machine + records) and the same records as CSV.

Every write goes to a temporary file in the same folder and is then renamed
over the old one (``os.replace``), so a sweep killed at any moment leaves the
last complete file behind, and the next ``--resume`` run continues from it.
A record is keyed by ``record["key"]``; adding a record with a key already
present replaces it.

Reading is checked: a results file that is not JSON, not an object, or whose
``records`` is not a list raises ``ResultsFileError`` (one line, naming the
file); entries that are not objects with a string ``key`` are set aside in
``dropped``. ``record_problem`` says whether a record is whole (every field a
finished case must have, finite, consistent with its key): what ``--resume``
asks before reusing a record.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from benchmarks.cases import Case
from keras_impl.files import atomic_write_json, atomic_write_text

# CSV columns, in order; the JSON keeps every field, the CSV these (versions flattened).
CSV_FIELDS = [
    "key", "status", "impl", "framework", "device", "device_name", "path", "kernel",
    "batch", "timesteps", "units", "features", "dtype", "tf32", "jit_compile", "n_devices",
    "median_s", "q1_s", "q3_s", "iqr_s", "repeats", "first_step_s", "rel_iqr", "noisy", "measurements",
    "sequences_per_s", "gflop", "gflops", "keras", "jax", "torch", "tensorflow", "error", "reason", "threads",
    "loadavg_1m", "loadavg_before", "loadavg_after", "timestamp", "machine", "hostname", "stand_in",
]
DONE = ("ok", "error")  # statuses that --resume does not run again ("skipped" cases are tried again)
STATUSES = ("ok", "error", "skipped", "running")
POSITIVE_FIELDS = ("median_s", "q1_s", "q3_s", "sequences_per_s", "gflop", "gflops")  # of an "ok" record


class ResultsFileError(ValueError):
    """A results file that cannot be read as one; the message is one line naming the file."""


def read_results(path: Path) -> tuple[dict, list[dict], list[str]]:
    """(machine, records, dropped) of a ``results.json``; ``dropped`` describes entries that are not records."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path} is not a readable results file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ResultsFileError(f"{path} is not a results file: a JSON {type(data).__name__}, not an object")
    machine, records = data.get("machine", {}), data.get("records", [])
    if not isinstance(machine, dict) or not isinstance(records, list):
        raise ResultsFileError(f"{path} is not a results file: 'machine' must be an object and 'records' a list")
    kept, dropped = [], []
    for i, r in enumerate(records):
        if isinstance(r, dict) and isinstance(r.get("key"), str):
            kept.append(r)
        else:
            dropped.append(f"records[{i}] is not an object with a 'key'")
    return machine, kept, dropped


def _finite(value, low: float = 0.0, *, strict: bool = True) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and (value > low if strict else value >= low))


def record_problem(record: dict) -> str | None:
    """Why ``record`` cannot be reused as it is (None: it is whole and consistent with its key)."""
    status = record.get("status")
    if status not in STATUSES:
        return f"status {status!r} is not one of {STATUSES}"
    fields = list(Case.__dataclass_fields__)
    try:
        case = Case(**{f: record[f] for f in fields})
    except (KeyError, TypeError, ValueError) as exc:
        if status not in DONE:
            return None  # a case to run again anyway: its fields do not matter
        return f"case fields missing or invalid ({type(exc).__name__}: {exc})"
    if case.key != record["key"]:
        return f"its fields describe {case.key}, not its key"
    if status == "error":
        return None if isinstance(record.get("error"), str) else "an error record without its error"
    if status != "ok":
        return None
    bad = [f for f in POSITIVE_FIELDS if not _finite(record.get(f))]
    if bad or not _finite(record.get("first_step_s"), strict=False):
        return f"fields missing, not numbers, or not finite and positive: {', '.join(bad) or 'first_step_s'}"
    if not record["q1_s"] <= record["median_s"] <= record["q3_s"]:
        return "quartiles out of order"
    repeats = record.get("repeats")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        return f"repeats must be a positive int, got {repeats!r}"
    if "noisy" in record and not isinstance(record["noisy"], bool):
        return f"noisy must be true or false, got {record['noisy']!r}"
    return None


def records_to_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


class ResultsStore:
    """``DIR/results.json`` and ``DIR/results.csv``; reads what is there, rewrites both on each ``put``."""

    def __init__(self, directory: str | os.PathLike, machine: dict | None = None):
        self.directory = Path(directory)
        self.json_path = self.directory / "results.json"
        self.csv_path = self.directory / "results.csv"
        self.machine = machine or {}
        self.records: dict[str, dict] = {}
        self.dropped: list[str] = []
        if self.json_path.exists():
            saved_machine, records, self.dropped = read_results(self.json_path)
            self.machine = saved_machine or self.machine
            self.records = {r["key"]: r for r in records}

    def status(self, key: str) -> str | None:
        r = self.records.get(key)
        return None if r is None else r.get("status")

    def is_done(self, key: str) -> bool:
        return self.status(key) in DONE

    def put(self, record: dict) -> None:
        if "key" not in record:
            raise ValueError(f"record must have a 'key', got fields {sorted(record)}")
        self.records[record["key"]] = record
        self.save()

    def save(self) -> None:
        records = list(self.records.values())
        atomic_write_json(self.json_path, {"machine": self.machine, "records": records})
        atomic_write_text(self.csv_path, records_to_csv(records))
