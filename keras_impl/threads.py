"""The oracle on both cores: ``reference.parallel`` turned on, with threadpoolctl holding BLAS to one thread
while the oracle's parts run on threads (the oracle imports NumPy only, so the limit is given to it here).

Used by ``bilstm verify`` and ``bilstm bench oracle`` around the oracle's forward pass; docs/benchmarks.md
gives the measured effect.
"""
from __future__ import annotations

import contextlib
import os
import sys

# OpenBLAS's threads spin on the cores for about 0.1 s after each multi-threaded product before they sleep
# (OPENBLAS_THREAD_TIMEOUT 28: 2^28 cycles), taking the cores from the oracle's own threads that run next (and
# from anything else: Keras-JAX's forward beside it took 24.9 ms against 15.9 alone). 2^20 cycles (about
# 0.4 ms) keeps them awake through a loop of products and lets them sleep soon after. OpenBLAS reads it when
# it loads, so it is set before NumPy is imported: ``bilstm``'s entry point calls this first.
OPENBLAS_THREAD_TIMEOUT = "20"


def set_blas_thread_timeout() -> None:
    """``OPENBLAS_THREAD_TIMEOUT`` for this process (a value already in the environment is kept)."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)


def oracle_workers() -> int:
    """Two threads where the process may run on two or more CPUs, else one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 2 if cpus >= 2 else 1


# A thread that wants the GIL waits up to the switch interval (5 ms by default) before it asks the holder to
# let go; a Bidirectional's two directions, each a loop of short NumPy calls on its own thread, then wait on
# each other in turns. At 0.2 ms: crnn_ocr's oracle 51.1 -> 49.6 ms, cnn_bilstm's 36.2 -> 34.4,
# bilstm_classifier's 103.1 -> 98.7 (medians of four blocks of 8 forwards each, alternating, one process).
ORACLE_SWITCH_INTERVAL_S = 0.0002


@contextlib.contextmanager
def oracle_on_all_cores(workers: int | None = None):
    """``reference.parallel.parallel`` with threadpoolctl's BLAS limit as its ``one_blas_thread``, and the
    interpreter's switch interval at ``ORACLE_SWITCH_INTERVAL_S`` (restored after)."""
    from threadpoolctl import ThreadpoolController

    from reference.parallel import parallel
    controller = ThreadpoolController()  # finds the BLAS libraries loaded (NumPy's OpenBLAS): once, ~ms

    def one_blas_thread():
        return controller.limit(limits=1, user_api="blas")
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(ORACLE_SWITCH_INTERVAL_S)
    try:
        with parallel(oracle_workers() if workers is None else workers, one_blas_thread):
            yield
    finally:
        sys.setswitchinterval(switch_interval)
