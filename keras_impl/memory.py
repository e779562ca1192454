"""The machine's memory, for the checks that refuse a run too big for it before any work (experiments, verify).

Standard library only: the checks run before Keras is imported.
"""
from __future__ import annotations

import ctypes
import os


def available_bytes() -> int | None:
    """Memory the machine can give without swapping: ``MemAvailable`` of /proc/meminfo, else free pages; None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(n: int) -> str:
    """1.23 GB, 512 MB, 17,000 TB: three significant digits; an exponent only past a million TB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size or unit == "kB":
            value = n / size
            if value >= 1e6:  # absurd requests (--updates 10**25): an exponent reads better than 20 digits
                return f"{value:.2e} {unit}"
            return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"
    raise AssertionError("unreachable")


KEPT_FREED_BYTES = 1 << 31  # freed heap kept up to this much (glibc returns it to the system above it)


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse the memory a NumPy array frees for the next one, rather than return it to the
    system: True where it was set (glibc), False elsewhere (nothing changed).

    Why: glibc serves an allocation over 32 MiB with a fresh ``mmap`` and unmaps it when freed, so every large
    array the oracle computes (a CRNN's first convolution makes 41 MB) is new pages, each zeroed by the kernel
    on its first touch: 6.3 ms for 41 MB against 1.8 ms to fill memory already held (measured on the 2-core
    machine; docs/benchmarks.md). Allocations then come from the heap (``M_MMAP_THRESHOLD`` 1 GiB) and freed
    heap is kept up to ``KEPT_FREED_BYTES`` (``M_TRIM_THRESHOLD``): XLA and torch keep their own pools the same
    way. For a process's whole life: called by ``bilstm verify`` and ``bilstm bench oracle``, not by the oracle.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREED_BYTES))
