"""A stand-in training step that imports no framework: ``bilstm bench --stand-in`` rehearses the machinery.

The driver, the workers, the budget, the results files, sharding, merging, the summary and
``benchmarks/gpu/run_gpu.sh`` all run as in a real sweep, in seconds and without Keras, but
each "step" is a short sleep: the figures measure nothing. Every record says so
(``stand_in: true``, kernel ``stand-in``) and so does the summary. The tests use it to run the
command line end to end where real cases would take minutes.
"""
from __future__ import annotations

import platform
import time

from benchmarks.cases import Case
from benchmarks.step import Step
from keras_impl.backend import installed_version  # the standard library only: no framework loaded

STEP_S = 0.0005  # the stand-in step's sleep


def context(case: Case) -> dict:
    """The versions a real worker would record, read from the installed metadata (nothing imported)."""
    return {"keras": installed_version("keras") if case.impl == "keras" else None,
            case.framework: installed_version(case.framework),
            "numpy": installed_version("numpy"), "python": platform.python_version(), "stand_in": True}


def build(case: Case) -> Step:
    return Step(run=lambda: time.sleep(STEP_S), sync=lambda out: None,
                describe=lambda: {"kernel": "stand-in", "jit_compile": False, "step_api": "stand-in"})
