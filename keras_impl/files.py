"""The project's one writer of result files: atomic, so an interruption never leaves half a file.

Each write goes to a temporary file beside the target, is flushed to disk
(``fsync``), then renamed over the target (``os.replace``). A run killed at any
moment, or stopped by a full disk, leaves either the old file or the new one,
never a torn one, and the temporary file is removed on any failure we see. Only a regular file or a new
name is replaced: a link, a folder or a device node in the target's place is refused (UsageError).
Experiments, benchmarks and reports all write through here.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def check_replaceable_file(path: Path) -> None:
    """``path`` is free or a regular file: the rename may take its place. A link, a folder or a device node
    named as an output (``--json /dev/stdout``) would itself be replaced, not written through: refused."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        from keras_impl.options import UsageError
        kind = "a link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise UsageError(f"{path} is {kind}; not replaced (name a regular file or a new name)")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    check_replaceable_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are ordinary files
        check_replaceable_file(path)  # again: it may have become a link while the data was written
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(value):
    """NaN and infinities as null: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n")


def atomic_write_csv(path: Path, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def atomic_savefig(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix[1:], bbox_inches="tight", dpi=120,
                metadata={"Date": None} if Path(path).suffix == ".svg" else None)
    atomic_write_bytes(path, buffer.getvalue())
