"""Ctrl-C that a long command cannot lose.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode of the main thread; when that bytecode belongs
to a garbage-collection callback (JAX registers one: jax/_src/lib/__init__.py, ``_xla_gc_callback``), the
interpreter prints "Exception ignored" and the run goes on as if no key had been pressed. ``guard`` records the
signal as well, and ``check`` (called by long loops between units of work, after each result is saved) raises the
KeyboardInterrupt again. A process that was started with SIGINT ignored (a background job of a shell without job
control, ``nohup``) keeps ignoring it: that is its owner's choice.
"""
from __future__ import annotations

import contextlib
import signal
import threading

_pending = False


def _on_sigint(signum, frame):
    global _pending
    _pending = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def guard():
    """Within: SIGINT raises KeyboardInterrupt and is remembered for ``check`` (main thread only)."""
    global _pending
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _pending = False
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _pending = False


def check() -> None:
    """Raise KeyboardInterrupt if a SIGINT arrived whose own KeyboardInterrupt was swallowed."""
    if _pending:
        raise KeyboardInterrupt
