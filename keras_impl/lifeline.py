"""A worker process that dies with the process that started it.

A sweep's driver starts one worker process at a time; if the driver is killed
(SIGKILL, a closed terminal, an OOM kill), a worker left running would go on
timing and writing into the results folder beside the next run, and that
run's timings would be contended. ``die_with_parent`` arms two lifelines:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills this process
  the moment its parent dies;
- anywhere: a daemon thread reading this process's stdin, a pipe whose other
  end only the parent holds: end of file means the parent is gone, and the
  thread ends the process (``os._exit``).

A parent that died before the lifelines were armed is caught by comparing
``os.getppid()`` with the pid the parent passed.
"""
from __future__ import annotations

import ctypes
import os
import signal
import stat
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHANED_EXIT = 70    # status of a worker that found its parent gone


def parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch_stdin() -> threading.Thread | None:
    """End this process when its stdin, a pipe from the parent, reaches end of file (None: stdin is no pipe)."""
    try:
        if not stat.S_ISFIFO(os.fstat(0).st_mode):
            return None  # a terminal or a file: nothing tells us about the parent
    except OSError:
        return None

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass  # the parent writes nothing; anything it does write is ignored
        except OSError:
            pass
        os._exit(ORPHANED_EXIT)

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread


def die_with_parent(parent_pid: int) -> None:
    parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(ORPHANED_EXIT)
    watch_stdin()


def run_tethered(command: list[str], *, env: dict | None = None, timeout: float | None = None) -> tuple[int, str, str]:
    """Run ``command`` (a worker that calls ``die_with_parent``) to its end: ``(exit status, stdout, stderr)``.

    Its stdin is a pipe held open by this process until the worker ends (``subprocess.run`` would close it at
    once, which the worker reads as its parent's death); stdout and stderr go to temporary files, so a chatty
    worker never blocks on a full pipe. On a timeout (``subprocess.TimeoutExpired``) or any exception here,
    the worker is killed before this returns.
    """
    import subprocess
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err)
        try:
            code = proc.wait(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdin.close()
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(errors="replace"), err.read().decode(errors="replace")
