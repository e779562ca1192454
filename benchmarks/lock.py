"""One writer a results folder: an exclusive lock held for a whole benchmark run.

``fcntl.flock`` on ``DIR/.bench.lock`` (``msvcrt.locking`` on Windows), taken
without waiting: a second run on the same folder is refused at once, with the
pid of the run that holds it (written into the lock file). The kernel drops the
lock when the holder's last descriptor closes, so a killed run never leaves a
stale lock; the sweep also hands the descriptor to its workers, so the folder
stays locked as long as any process that writes into it lives.
"""
from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".bench.lock"


class FolderLocked(RuntimeError):
    """Another process holds the folder's lock; the message names its pid."""


class FolderLock:
    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            raise FolderLocked(f"{self.path.parent} is in use by another benchmark run "
                               f"(pid {holder or 'unknown'}, lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the lock
            self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except (AttributeError, OSError):
        return ""


try:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except ImportError:  # Windows
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def holder(folder: str | os.PathLike) -> str | None:
    """The pid (as written) of the run that holds ``folder``'s lock; None when nobody does. Writes nothing."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no run ever held it
    try:
        try:
            _lock(fd)
        except OSError:
            return _read_pid(fd) or "unknown"
        return None
    finally:
        os.close(fd)  # drops the lock if we took it
