"""The repository is self-contained: no file points at another outside it.

A clone is all a reader or CI has, so a path into a neighbouring folder
(``../shared/...``), a sibling project's ``shared/`` files or an absolute path
on the machine the project was written on would be a dead end.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", "build", "__pycache__", ".pytest_cache", ".hypothesis", ".whl", "results"}
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".json", ".csv"}
OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w./-])shared/[A-Z]|(?<![\w.-])/work/")


def repository_text_files() -> list[Path]:
    files = []
    for path in sorted(ROOT.rglob("*")):
        parts = set(path.relative_to(ROOT).parts[:-1])
        if (parts & SKIPPED_DIRS or any(p.startswith(".venv") or p.endswith(".egg-info") for p in parts)
                or not path.is_file() or path == Path(__file__).resolve()):  # this file shows the patterns
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in {"Makefile", "run", ".gitignore"}:
            files.append(path)
    return files


def test_the_scan_sees_the_repository():
    names = {p.relative_to(ROOT).as_posix() for p in repository_text_files()}
    assert {"README.md", "Makefile", ".ci/run", "keras_impl/cli.py", "docs/keras-behaviour.md"} <= names


def test_the_pattern_catches_outside_paths():
    for line in ("see ../shared/TUTORIAL.md", "(`shared/KERAS_SEMANTICS.md`)", "/work/.library/device/H200.md"):
        assert OUTSIDE.search(line), line
    for line in ("shared out among the groups", "a machine shared with other work", "benchmarks/gpu/wheels"):
        assert not OUTSIDE.search(line), line


@pytest.mark.parametrize("path", repository_text_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_path_outside_the_repository(path):
    hits = [f"line {n}: {line.strip()}" for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if OUTSIDE.search(line)]
    assert not hits, "points outside the repository:\n" + "\n".join(hits)
