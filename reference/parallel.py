"""Independent parts of one layer's work on two threads: how the oracle uses both cores outside BLAS.

NumPy computes each element-wise call, copy and reduction on one core; only its matrix products (OpenBLAS)
use more. On the 2-core machine a layer's window copies, pooling and activations, and the many small
products of a recurrent loop (too small for OpenBLAS's second thread to pay for itself), leave one core idle.
Where a layer's work splits into parts that share nothing (a Bidirectional's two directions; a convolution's
or a pooling's examples), ``in_parallel`` runs the parts on threads: NumPy releases the GIL inside its loops
and its BLAS calls, so two parts run at once. Every part computes exactly what it computes alone, so the
results do not depend on the threads (``parity_tests/oracle/test_parallel.py`` holds them bit for bit to the
calls made one after the other).

Off unless asked: ``parallel(workers=2, one_blas_thread=...)`` (a context manager) turns it on for what runs
inside it; ``bilstm verify`` and ``bilstm bench oracle`` do (``keras_impl/threads.py``). While parts run on
threads, BLAS is told to use one thread (``one_blas_thread``, a context manager the caller supplies:
threadpoolctl's limit; the oracle imports NumPy only): two parts each waking OpenBLAS's two threads run four
busy threads on two cores. A part that itself calls ``in_parallel`` (a Bidirectional of ConvLSTMs: the
directions, then each step's convolutions) runs its parts one after the other: the threads are taken.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from concurrent.futures import ThreadPoolExecutor, wait

_state = threading.local()  # .busy: this thread is running a part (a nested in_parallel runs in order)
_settings = {"workers": 1, "one_blas_thread": contextlib.nullcontext, "pool": None}


def workers() -> int:
    """How many threads ``in_parallel`` runs parts on (1: off, or inside a part)."""
    return 1 if getattr(_state, "busy", False) else _settings["workers"]


@contextlib.contextmanager
def parallel(workers: int = 2, one_blas_thread=contextlib.nullcontext):
    """Run ``in_parallel``'s parts on ``workers`` threads inside the ``with`` block (1: one after the other)."""
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    saved = dict(_settings)
    _settings.update(workers=workers, one_blas_thread=one_blas_thread,
                     pool=ThreadPoolExecutor(workers - 1, thread_name_prefix="oracle") if workers > 1 else None)
    try:
        yield
    finally:
        if _settings["pool"] is not None:
            _settings["pool"].shutdown()
        _settings.clear()
        _settings.update(saved)


def _as_part(call):
    def part():
        _state.busy = True
        try:
            return call()
        finally:
            _state.busy = False
    return part


def in_parallel(calls) -> list:
    """The results of ``calls`` (functions of no argument), in order: on the threads where ``parallel`` is on,
    else one after the other on this thread. The first call runs on this thread, the others on the pool."""
    calls = list(calls)
    if workers() == 1 or len(calls) < 2:
        return [call() for call in calls]
    with _settings["one_blas_thread"]():
        futures = [_settings["pool"].submit(_as_part(call)) for call in calls[1:]]
        try:
            first = _as_part(calls[0])()
        finally:
            wait(futures)  # every part ends before this returns or raises
    return [first] + [future.result() for future in futures]


# Handing a part to the pool and collecting it costs about 80 us (measured on the 2-core machine), what NumPy
# takes for about 300,000 element-wise operations: work smaller than a few times that stays on one thread.
MIN_PARALLEL_WORK = 1 << 21


def split_range(n: int, parts: int | None = None, work: int | None = None) -> list[tuple[int, int]]:
    """``[0, n)`` as up to ``parts`` (default: ``workers()``) contiguous ranges of near-equal size; one range
    where ``work`` (the element-wise operations, multiply-adds... of all ``n``) is under ``MIN_PARALLEL_WORK``."""
    if work is not None and work < MIN_PARALLEL_WORK:
        return [(0, n)] if n > 0 else []
    parts = max(1, min(n, workers() if parts is None else parts))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def over_ranges(part, n: int, work: int | None = None) -> None:
    """``part(begin, end)`` for every range of ``split_range(n, work=work)``, by ``in_parallel``: the form of every
    split of a layer's batch (each part writes its rows of an output made before). Work too small to split runs
    with BLAS at one thread where ``parallel`` is on (waking OpenBLAS's sleeping threads for a small product cost
    0.6 ms where the product takes 0.1, measured); one large part (a batch of one) keeps BLAS's threads."""
    ranges = split_range(n, work=work)
    if len(ranges) == 1 and workers() > 1 and work is not None and work < MIN_PARALLEL_WORK:
        with _settings["one_blas_thread"]():
            part(*ranges[0])
        return
    in_parallel([functools.partial(part, begin, end) for begin, end in ranges])
