"""Where benchmark results go, checked before any work: outside the source tree by default, never over a result unasked.

Every benchmark command writes into one folder, ``./results/bench/<machine>`` by
default (relative to the current folder, like ``bilstm reproduce``'s
``./results/tutorial``), so a run never writes into the installed package nor
over the results committed in ``benchmarks/results/``. ``check_out_folder``
refuses, with one line naming the argument (``keras_impl.options.UsageError``,
the one usage-error type of every command), a folder that could not be
written: an empty name, a file, a path under a file, a folder without write
permission or on a read-only file system.
"""
from __future__ import annotations

import os
from pathlib import Path

from keras_impl.options import UsageError, check_writable_folder

DEFAULT_RESULTS = Path("results") / "bench"


def default_folder(shard=None) -> Path:
    """``results/bench/<machine>``; for shard K of N (N > 1), ``results/bench/<machine>/shard-K-of-N``, so that
    the shards of one sweep on like machines sharing a file system never meet in one folder."""
    from benchmarks.environment import machine_id
    folder = DEFAULT_RESULTS / machine_id()
    if shard is not None and shard.count > 1:
        folder = folder / f"shard-{shard.index}-of-{shard.count}"
    return folder


def check_out_folder(text: str | os.PathLike | None, option: str = "--out") -> Path:
    """The results folder ``text`` names (default: ``default_folder()``), if this process could create and write it
    (``keras_impl.options.check_writable_folder``, every command's check)."""
    if text is None:
        return default_folder()
    return check_writable_folder(text, option)


def check_new_files(paths: list[Path], option: str = "--overwrite") -> None:
    """Refuse to replace result files already there unless ``option`` was given."""
    there = [p for p in paths if p.exists()]
    if there:
        raise UsageError(f"{there[0]} already exists; pass {option} to replace it, or --out to write elsewhere")
