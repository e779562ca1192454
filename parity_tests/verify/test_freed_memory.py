"""``keras_impl.memory.keep_freed_memory``: what bilstm verify and bench oracle set so that the oracle's large
arrays reuse the pages of the ones freed before them (glibc would unmap them and fault in fresh zeroed ones)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A 64 MiB array freed, then another of the same size filled: the page faults of the second, in a process
# of its own (the setting lasts the process's life).
PROBE = """
import resource, sys
import numpy as np
from keras_impl.memory import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory(), "not set"
first = np.ones(1 << 23)
del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = np.ones(1 << 23)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


@pytest.mark.backend_independent
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's; elsewhere nothing is set")
def test_a_freed_large_array_is_reused_rather_than_faulted_in_again():
    default, kept = _faults("default"), _faults("kept")
    # glibc's default unmaps the first array: the second faults in fresh pages (16384 of 4 KiB, fewer where
    # transparent huge pages serve it); kept, it lands on the first one's pages
    assert kept <= 8 < default, (kept, default)
