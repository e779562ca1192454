"""Command-line values, checked once for every command: one usage-error type, one parser per kind of value.

A command turns every bad value into one line on standard error and exit status 2 (``keras_impl.cli``
catches ``UsageError``). The parsers here are argparse ``type=`` callables (they raise
``argparse.ArgumentTypeError``, which argparse reports in one line); the ``check_*`` functions are for
values checked after parsing, and raise ``UsageError``. Standard library only: a command module imports
this before Keras is imported.
"""
from __future__ import annotations

import argparse
import math
import os
import stat
from pathlib import Path

from keras_impl.backend import BACKENDS  # standard library only too: no framework is imported


class UsageError(ValueError):
    """A bad value or a refused input: the message is the one line a command prints before exiting with status 2."""


def int_in(name: str, low: int, high: int | None = None):
    """A parser of whole numbers in [low, high] (no upper limit when ``high`` is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            within = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {within}, got {value}")
        return value
    return parse


def positive_int(name: str, limit: int | None = None):
    """A parser of whole numbers from 1 to ``limit``."""
    return int_in(name, 1, limit)


def seed(name: str = "--seed"):
    """A parser of seeds: whole numbers from 0 to 2**31 - 1 (every backend's generator takes them)."""
    return int_in(name, 0, 2 ** 31 - 1)


def checked(parse, text):
    """``parse(text)`` for a value checked after parsing (a command that reads numbers as text, so that its
    refusals carry its own prefix): the parser's ``ArgumentTypeError`` as ``UsageError``."""
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None


def finite_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text!r}")
        return value
    return parse


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows): os.access has said what it can
        return False


def nearest_existing(path: Path) -> Path:
    """The nearest folder of ``path`` (itself included) that exists: the one the rest would be created in."""
    existing = Path(path)
    while not existing.exists() and not existing.is_symlink():
        if existing.parent == existing:
            break
        existing = existing.parent
    return existing


def check_writable_folder(text: str | os.PathLike | None, option: str = "--out") -> Path:
    """The folder ``text`` names, if this process could create it and write in it; else ``UsageError``."""
    if text is None or not str(text).strip():
        raise UsageError(f"{option} must name a folder, got {str(text or '')!r}")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder")
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or _read_only(existing):
        raise UsageError(f"{option} {path}: cannot write in {existing} (permission denied or read-only)")
    return path


def check_new_file(text: str | os.PathLike, option: str) -> Path:
    """A file a command will write (atomically: a new file renamed into place): refused before any work unless
    its folder exists and is writable and the name is free or a regular file (never a link, a device or a folder,
    which the rename would replace)."""
    if not str(text).strip():
        raise UsageError(f"{option} must name a file, got {str(text)!r}")
    path = Path(text)
    try:
        mode = os.lstat(path).st_mode  # lstat: a link is seen as a link, not as what it points to
    except (FileNotFoundError, NotADirectoryError):  # a new name (or one under a file: refused below)
        mode = None
    except OSError as exc:  # a folder on the way that cannot be searched, a name too long
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise UsageError(f"{option} {path} is {kind}; name a regular file or a new name")
    parent = path.parent
    existing = nearest_existing(parent)
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is not a folder")
    if existing != parent:
        raise UsageError(f"{option} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or _read_only(parent):
        raise UsageError(f"{option} {path}: cannot write in {parent} (permission denied or read-only)")
    return path


# ---------------------------------------------------------------- options every command shares, defined once

BACKEND_DEFAULT = "default: $KERAS_BACKEND, else Keras's own choice"
BACKEND_HELP = f"Keras backend (set before Keras is imported; {BACKEND_DEFAULT})"
BACKENDS_HELP = "Keras backend to time, with its raw framework; repeatable (default: every installed one)"
JSON_METAVAR = "PATH|-"
STDOUT = "-"


def add_backend_option(parser, *, repeatable: bool = False) -> None:
    """``--backend``: one choice list, in one order, with its default said one way, for every command.

    ``repeatable``: a command that runs several backends in one call (``bench``) takes it more than once.
    """
    if repeatable:
        parser.add_argument("--backend", action="append", choices=BACKENDS, help=BACKENDS_HELP)
    else:
        parser.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)


def add_json_option(parser, what: str) -> None:
    """``--json PATH|-``: ``what`` written as JSON to PATH (atomically), or to standard output for ``-``."""
    parser.add_argument("--json", metavar=JSON_METAVAR,
                        help=f"write {what} as JSON to PATH (atomically); -: print it on standard output instead of "
                             "the text (default: neither)")


def json_target(text: str | None, option: str = "--json") -> Path | str | None:
    """A ``--json`` value checked before any work: None (not given), ``STDOUT`` ("-"), or a file ``check_new_file``
    accepts."""
    if text is None or text == STDOUT:
        return text
    return check_new_file(text, option)


def add_out_option(parser, default: str, *, what: str = "the folder to write") -> None:
    """``--out FOLDER``, with its default in the help."""
    parser.add_argument("--out", metavar="FOLDER", help=f"{what} (default {default})")
