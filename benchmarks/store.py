"""Benchmark results on disk: one JSON file (machine + records) and the same records as CSV.

Every write goes to a temporary file in the same folder and is then renamed
over the old one (``os.replace``), so a sweep killed at any moment leaves the
last complete file behind, and the next ``--resume`` run continues from it.
A record is keyed by ``record["key"]``; adding a record with a key already
present replaces it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

# CSV columns, in order; the JSON keeps every field, the CSV these (versions flattened).
CSV_FIELDS = [
    "key", "status", "impl", "framework", "device", "device_name", "path", "kernel",
    "batch", "timesteps", "units", "features", "dtype", "tf32", "jit_compile", "n_devices",
    "median_s", "q1_s", "q3_s", "iqr_s", "repeats", "first_step_s",
    "sequences_per_s", "gflop", "gflops", "keras", "jax", "torch", "tensorflow", "error", "reason", "threads", "loadavg_1m", "timestamp",
]
DONE = ("ok", "error")  # statuses that --resume does not run again ("skipped" cases are tried again)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; results are files to share, like any other
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
        if self.json_path.exists():
            data = json.loads(self.json_path.read_text())
            self.machine = data.get("machine") or self.machine
            self.records = {r["key"]: r for r in data.get("records", [])}

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
        atomic_write_text(self.json_path, json.dumps({"machine": self.machine, "records": records}, indent=1) + "\n")
        atomic_write_text(self.csv_path, records_to_csv(records))
