"""TensorFlow quiet on every CPU, set up before anything imports it (standard library only).

TensorFlow 2.21 writes C++ log lines to the process's standard error while it is imported, whatever
``TF_CPP_MIN_LOG_LEVEL`` says: absl's "WARNING: All log messages before absl::InitializeLog() is called are
written to STDERR" and, where its oneDNN optimisations are on, "oneDNN custom operations are on..." (twice: two
of its libraries log it). oneDNN is on by default on Intel CPUs with AVX-512 (and wherever
``TF_ENABLE_ONEDNN_OPTS=1``), off on the AMD machines CI once ran on, so a command's output depended on the CPU.

We keep oneDNN as TensorFlow chose it: ``TF_ENABLE_ONEDNN_OPTS=0`` would hide the line but change TensorFlow's
numerics (other kernels, other summation orders) behind the user's back. Instead the import of ``tensorflow``
runs with file descriptor 2 held in a temporary file; afterwards every line but the known start-up notices
(``NOISE``) is written to the real standard error, so an error TensorFlow prints while importing still shows.
``quiet_tensorflow`` installs that import hook (and ``TF_CPP_MIN_LOG_LEVEL=2`` for the lines logged later);
the command line and every worker that may import TensorFlow call it first.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import sys
import tempfile

NOISE = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on",
         "cpu_feature_guard.cc", "This TensorFlow binary is optimized to use available CPU instructions")


def quiet_tensorflow() -> None:
    """Before TensorFlow is imported (by Keras, tf2onnx, anything): keep its start-up notices off stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ info and warning lines logged after the import
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextlib.contextmanager
def stderr_without(noise: tuple[str, ...] = NOISE):
    """File descriptor 2 (C++ writes included) held while the block runs, then replayed without ``noise`` lines."""
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to protect
        yield
        return
    with tempfile.TemporaryFile() as held:
        _flush()
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True)
                    if not any(n.encode() in line for n in noise)]
            if kept:
                os.write(2, b"".join(kept))


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, and runs its import inside ``stderr_without``."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_without():
            self.loader.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        if name == "loader":  # not set yet (a copy being made): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.loader, name)
