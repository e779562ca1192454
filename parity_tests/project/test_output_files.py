"""Files a command writes: named outputs checked before the work, written only over a regular file or a new
name (keras_impl/options.py ``check_new_file``, keras_impl/files.py), and a closed standard output (keras_impl/cli.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_impl.files import atomic_write_json
from keras_impl.options import UsageError, check_new_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.backend_independent  # no Keras in this process: once a make test-keras run


def _writable_in_fact(folder: Path) -> bool:
    try:
        (folder / ".probe").write_text("x")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.mark.parametrize("case, says", [
    ("link", "is a link"),
    ("dangling link", "is a link"),
    ("device", "not a regular file"),
    ("under a file", "is not a folder"),
    ("under a file, deeper", "is not a folder"),
    ("folder", "is a folder"),
    ("missing folder", "does not exist"),
    ("blank", "must name a file"),
])
def test_check_new_file_refuses_what_a_rename_would_replace_or_cannot_reach(case, says, tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "target.json").write_text("theirs")
    (tmp_path / "folder").mkdir()
    os.symlink(tmp_path / "target.json", tmp_path / "link.json")
    os.symlink(tmp_path / "nowhere.json", tmp_path / "dangling.json")
    name = {"link": tmp_path / "link.json", "dangling link": tmp_path / "dangling.json", "device": "/dev/null",
            "under a file": tmp_path / "afile" / "x.json", "under a file, deeper": tmp_path / "afile" / "a" / "x.json",
            "folder": tmp_path / "folder", "missing folder": tmp_path / "no" / "x.json", "blank": " "}[case]
    with pytest.raises(UsageError, match=says) as refused:
        check_new_file(name, "--json")
    assert "\n" not in str(refused.value) and str(refused.value).startswith("--json")
    assert (tmp_path / "target.json").read_text() == "theirs"


def test_check_new_file_takes_a_new_name_or_a_regular_file(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    assert check_new_file(tmp_path / "old.json", "--json") == tmp_path / "old.json"
    assert check_new_file(tmp_path / "new.json", "--json") == tmp_path / "new.json"


def test_check_new_file_in_a_read_only_folder_agrees_with_a_real_write(tmp_path):
    """Refused when this process cannot write there; root can (permissions do not bind it), and then it passes."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        writable = _writable_in_fact(folder)
        try:
            check_new_file(folder / "r.json", "--json")
            refused = False
        except UsageError as exc:
            refused = "cannot write" in str(exc)
        assert refused == (not writable)
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("case", ["link", "device-link", "folder"])
def test_an_atomic_write_never_replaces_a_link_or_a_folder(case, tmp_path):
    """The name checked before the work may have become a link since: the write refuses it, in one line."""
    (tmp_path / "target.json").write_text("theirs")
    path = tmp_path / "r.json"
    if case == "link":
        os.symlink(tmp_path / "target.json", path)
    elif case == "device-link":
        os.symlink("/dev/null", path)  # as --json /dev/stdout is, a link to a device
    else:
        path.mkdir()
    with pytest.raises(UsageError, match="not replaced"):
        atomic_write_json(path, {"a": 1})
    assert (tmp_path / "target.json").read_text() == "theirs"
    assert path.is_symlink() or path.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "target.json"]  # no temporary file left


def test_a_closed_standard_output_ends_quietly_with_141(tmp_path):
    """``bilstm info | true``: the reader is gone before anything is printed; no traceback, exit 128 + SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, "-m", "keras_impl.cli", "info", "--backend", "torch"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
