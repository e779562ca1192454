"""The machine's memory, for the checks that refuse a run too big for it before any work (experiments, verify).

Standard library only: the checks run before Keras is imported.
"""
from __future__ import annotations

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
