"""``keras_impl/threads.py``: what bilstm verify and bench oracle set so that the oracle uses both cores.

threadpoolctl's limit really holds NumPy's BLAS to one thread while the oracle's parts run, and only then; and
``bilstm``'s entry point sets OpenBLAS's spin timeout before NumPy loads it, so that its threads sleep soon
after a product (measured by the CPU time the process burns while it sleeps, in a process of its own).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.backend_independent
def test_blas_runs_on_one_thread_inside_the_parts_and_as_before_outside():
    from threadpoolctl import threadpool_info

    from keras_impl.threads import ORACLE_SWITCH_INTERVAL_S, oracle_on_all_cores
    from reference.parallel import MIN_PARALLEL_WORK, in_parallel, over_ranges, workers

    def blas_threads():
        return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
    before, switch_interval = blas_threads(), sys.getswitchinterval()
    with oracle_on_all_cores(workers=2):
        assert workers() == 2
        assert sys.getswitchinterval() == pytest.approx(ORACLE_SWITCH_INTERVAL_S) != switch_interval
        inside = in_parallel([blas_threads, blas_threads])
        small, large = [], []  # one part each: work too small to split, and a batch of one
        over_ranges(lambda begin, end: small.append(blas_threads()), 8, work=MIN_PARALLEL_WORK - 1)
        over_ranges(lambda begin, end: large.append(blas_threads()), 1, work=MIN_PARALLEL_WORK)
        alone = small + large
        between = blas_threads()
    assert inside == [[1], [1]] and alone == [[1], before]
    assert between == before and blas_threads() == before
    assert workers() == 1 and sys.getswitchinterval() == switch_interval


# After 20 products of 500 x 500 on OpenBLAS's threads, the CPU seconds the process uses while it sleeps 0.2 s:
# its spinning threads' (about 0.1 s with OpenBLAS's default timeout of 2^28 cycles), or none.
SPIN_PROBE = """
import sys, time
if sys.argv[1] == "cli":
    from keras_impl.threads import set_blas_thread_timeout
    set_blas_thread_timeout()  # as keras_impl.cli.main does first
import numpy as np
a = np.random.default_rng(0).random((500, 500))
for _ in range(20):
    a @ a
before = time.process_time()
time.sleep(0.2)
print(time.process_time() - before)
"""


def _spin_seconds(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS",
                                                           "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", SPIN_PROBE, mode], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout)


@pytest.mark.backend_independent
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS runs one thread on one CPU: nothing spins")
def test_the_entry_point_makes_openblas_threads_sleep_soon_after_a_product():
    default, set_by_cli = _spin_seconds("default"), _spin_seconds("cli")
    assert set_by_cli < 0.02 < default, (set_by_cli, default)


@pytest.mark.backend_independent
def test_the_entry_point_sets_the_timeout_before_numpy_is_imported():
    probe = ("import sys, os; import keras_impl.cli as cli\n"
             "assert 'numpy' not in sys.modules, 'numpy imported with the entry point'\n"
             "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
             "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    from keras_impl.threads import OPENBLAS_THREAD_TIMEOUT
    assert proc.stdout.strip().splitlines()[-1] == OPENBLAS_THREAD_TIMEOUT
