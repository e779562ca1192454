"""What a benchmark builder returns: one training step to time, and how to wait for it.

Its own module so that the builders (``benchmarks.keras_step``, ``benchmarks.baselines``)
and the loop that times them (``benchmarks.runner``) all import it, and none imports another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from benchmarks.cases import Case


@dataclass
class Step:
    """``run()`` does one training step, ``sync(out)`` waits for it on the device."""
    run: Callable[[], Any]
    sync: Callable[[Any], None]
    describe: Callable[[], dict]         # fields known after the first step: kernel that ran, jit_compile, ...
    close: Callable[[], None] = lambda: None


Builder = Callable[[Case], Step]
