"""Where ``export`` writes: ``--out`` checked before any work, locked for the run, filled atomically.

Nothing of the user's is ever deleted. ``overwrite`` replaces only a folder that an export made (it holds
``export.json`` and nothing but what an export writes), never the folder that holds the model being
exported, nor the current folder or a folder above it.

While it runs, an export holds a lock beside ``out`` (``.<name>.export-lock``, keras_impl/folder_lock.py), so a
second export to the same ``out`` is refused at once, in one line. Its work happens beside ``out`` too:
``.<name>.scratch-*`` (the built model, the predictions) and ``.<name>.partial-*`` (the artifact being
written), the latter renamed to ``out`` when complete. A run killed before it could tidy up (SIGKILL, a
power cut) leaves them behind; the next export to the same ``out`` removes them once it holds the lock (no
other export to that ``out`` can be using them then).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from keras_impl.folder_lock import FolderLock, FolderLocked
from keras_impl.options import UsageError, check_writable_folder

from .formats import ARTIFACT_NAME, COMPANION, FAILED_ARTIFACT_NAME

REPORT_NAME = "export.json"
# Everything an export ever writes into its folder (OpenVINO's weights sit beside model.xml in model.bin).
EXPORT_ENTRIES = frozenset({REPORT_NAME, *ARTIFACT_NAME.values(), *FAILED_ARTIFACT_NAME.values(), *COMPANION.values()})
WORK_KINDS = ("scratch", "partial", "old")


def _contains(folder: Path, path: Path) -> bool:
    return folder == path or folder in path.parents


def check_out(out: str | os.PathLike, *, overwrite: bool, model_file: Path | None = None) -> Path:
    """``out``, if an export may write it; else ``UsageError`` (one line), before any work."""
    out = check_writable_folder(out, "--out")
    where = out.resolve()
    if _contains(where, Path.cwd().resolve()):
        raise UsageError(f"--out {out} is the current folder or holds it; name a new folder for the export")
    if model_file is not None and _contains(where, Path(model_file).resolve()):
        raise UsageError(f"--out {out} holds the model being exported ({model_file}); name a new folder")
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise UsageError(f"--out {out} exists; choose another folder or pass --overwrite")
        check_replaceable(out)
    return out


def check_replaceable(out: Path) -> None:
    """``out`` is a folder an export made and holds nothing else: ``overwrite`` may replace it."""
    if out.is_symlink() or not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder; --overwrite replaces folders only")
    entries = {entry.name for entry in out.iterdir()}
    if REPORT_NAME not in entries:
        raise UsageError(f"--out {out} was not made by bilstm export (no {REPORT_NAME}); --overwrite replaces "
                         "only an export's folder")
    foreign = sorted(entries - EXPORT_ENTRIES)
    if foreign:
        raise UsageError(f"--out {out} holds files bilstm export did not write ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); --overwrite would delete them")


def mark_failed(staging: Path, fmt: str) -> str:
    """Rename the artifact in ``staging`` (and its companion file) to the name that says it failed its
    verification; the new name. A failed artifact is kept for diagnosis, never left where a good one goes."""
    good, failed = ARTIFACT_NAME[fmt], FAILED_ARTIFACT_NAME[fmt]
    for old, new in ((good, failed), (COMPANION.get(good), COMPANION.get(failed))):
        if old is not None and (staging / old).exists():
            os.rename(staging / old, staging / new)
    return failed


class Destination:
    """The run's hold on ``out``: its lock, its scratch and staging folders, and the final move.

    Use as a context manager; on leaving, scratch and an unmoved staging folder are removed, then the lock
    is released (in that order, so the next run never sees them half removed).
    """

    def __init__(self, out: Path, *, overwrite: bool):
        self.out, self.overwrite = Path(out), overwrite
        self.lock = FolderLock(self.out.parent, f".{self.out.name}.export-lock", user="export to "
                               f"{self.out}", remove_on_release=True)
        self.scratch: Path | None = None
        self.staging: Path | None = None

    def __enter__(self) -> "Destination":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()
        except FolderLocked as exc:
            raise UsageError(str(exc)) from None
        try:
            self._remove_leftovers()
            self.scratch = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=self._prefix("scratch")))
            self.staging = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=self._prefix("partial")))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for folder in (self.scratch, self.staging):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        self.lock.release()

    def _prefix(self, kind: str) -> str:
        return f".{self.out.name}.{kind}-"

    def _remove_leftovers(self) -> None:
        """Work folders of an earlier export to this ``out`` that was killed: nobody else holds the lock."""
        for kind in WORK_KINDS:
            for left in self.out.parent.glob(f"{self._prefix(kind)}*"):
                if left.is_dir() and not left.is_symlink():
                    shutil.rmtree(left, ignore_errors=True)

    def move_into_place(self) -> None:
        """The complete staging folder becomes ``out``; an old ``out`` goes only after, and only if replaceable.

        ``out`` is checked again here, under the lock: it may have appeared (or changed) during the export.
        """
        out = self.out
        old = None
        if out.exists() or out.is_symlink():
            if not self.overwrite:
                raise UsageError(f"--out {out} appeared while exporting; the artifact was not written "
                                 "(choose another folder or pass --overwrite)")
            check_replaceable(out)
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=self._prefix("old")))
            os.rename(out, old / out.name)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.staging, 0o777 & ~mask)  # mkdtemp makes a private folder; the artifact is an ordinary one
        os.rename(self.staging, out)
        self.staging = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
