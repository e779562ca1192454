"""One writer a folder: an exclusive lock held for a whole run (a benchmark sweep, an export).

``fcntl.flock`` on a lock file (``DIR/.bench.lock`` for benchmarks; ``msvcrt.locking`` on Windows), taken
without waiting: a second run on the same folder is refused at once, with the
pid of the run that holds it (written into the lock file). The kernel drops the
lock when the holder's last descriptor closes, so a killed run never leaves a
stale lock; the sweep also hands the descriptor to its workers, so the folder
stays locked as long as any process that writes into it lives.

``bilstm export`` locks a file beside its ``--out`` (the folder does not exist yet) and removes it on release,
so it leaves nothing behind in the user's folder: a lock taken on a file that was removed meanwhile is retried
on the new file (the inode of the path must be the inode locked), so two writers never both hold it.
"""
from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".bench.lock"


class FolderLocked(RuntimeError):
    """Another process holds the folder's lock; the message names its pid."""


class FolderLock:
    def __init__(self, folder: str | os.PathLike, name: str = LOCK_NAME, *, user: str = "benchmark run",
                 remove_on_release: bool = False):
        self.path = Path(folder) / name
        self.user = user  # who holds such a lock, for the refusal: "in use by another <user>"
        self.remove_on_release = remove_on_release
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock(fd)
            except OSError:
                holder = _read_pid(fd)
                os.close(fd)
                raise FolderLocked(f"{self.path.parent} is in use by another {self.user} "
                                   f"(pid {holder or 'unknown'}, lock {self.path})") from None
            if not self.remove_on_release or _same_file(fd, self.path):
                break
            os.close(fd)  # its holder removed the file as we opened it: lock the one at the path now
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            if self.remove_on_release:  # still locked while removed: a waiter's inode check sees the change
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            os.close(self.fd)  # closing the last descriptor drops the lock
            self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


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
