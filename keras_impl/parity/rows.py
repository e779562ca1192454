"""One row of the ``bilstm parity`` table and how a measured error becomes its verdict.

Every section of the table (``keras_impl/parity/checks.py`` for layers and models,
``keras_impl/parity/training_checks.py`` for gradients and trajectories) builds
its rows here, so the verdict rule lives in one place: a row is ``pass`` when
its worst error is within its bound (``tolerances.bound``) and ``FAIL``
otherwise (nan, a crash of the comparison, a missing or misshapen result included).
One exception, itself falsifiable: where ``divergences`` predicts that Keras
crashes (an upstream bug with its source lines), a crash of that kind is the
verdict ``upstream crash``, not a FAIL; any other crash there is a FAIL, and a
predicted crash that does not happen is compared as usual and says so.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from keras_impl.parity import compare
from keras_impl.parity.tolerances import Bound

VERDICTS = ("pass", "FAIL", "upstream crash")
UPSTREAM_CRASH = "upstream crash"


@dataclass(frozen=True)
class CheckOptions:
    backend: str
    device: str
    dtype: str          # "float32" | "float64": the Keras floatx the checks run in
    quick: bool         # a smaller subset (seconds)
    cell: str = "lstm"  # the recurrent cell checked: lstm | gru | simple_rnn (Keras's default options)


@dataclass(frozen=True)
class Row:
    section: str
    configuration: str
    dtype: str
    worst_error: float
    bound: Bound
    verdict: str        # "pass" | "FAIL" | "upstream crash"
    note: str = ""      # why a FAIL failed (a comparison that could not be made)

    @property
    def tolerance(self) -> float:
        return self.bound.value


def seeded_rng(configuration: str) -> np.random.Generator:
    """One generator per configuration, the same in every run."""
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(configuration.encode()), 2026]))


def row(section: str, configuration: str, error: float, bound: Bound, options: CheckOptions, note: str = "") -> Row:
    verdict = "pass" if error <= bound.value else "FAIL"  # `<=` is False for nan
    return Row(section, configuration, options.dtype, error, bound, verdict, note)


def caused_by(exc: BaseException, kind: type) -> bool:
    """``exc`` is a ``kind``, or one is in its chain of causes."""
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def measure(section: str, configuration: str, bound: Bound, options: CheckOptions,
            compare_fn: Callable[[], tuple[dict, dict]], predicted_crash: str | None = None) -> Row:
    """Run ``compare_fn() -> (expected, actual)`` and make its row; an AssertionError is a FAIL that says why.

    ``predicted_crash``: the reason Keras is known to crash here (``divergences.jax_float64_scan_crash``), else
    None. Only a TypeError matches it, raised or behind a RuntimeError (fit's "Unable to automatically build").
    """
    try:
        expected, actual = compare_fn()
        error = compare.worst(compare.errors(expected, actual, bound.kind))
    except AssertionError as exc:  # wrong dtype, names or shapes: the harness says which
        return row(section, configuration, float("nan"), bound, options, str(exc))
    except (TypeError, RuntimeError) as exc:  # Keras itself refused to run
        said = f"Keras raised {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        if predicted_crash and caused_by(exc, TypeError):
            return Row(section, configuration, options.dtype, float("nan"), bound, UPSTREAM_CRASH,
                       f"{said}; predicted: {predicted_crash}")
        return row(section, configuration, float("nan"), bound, options, said)
    if predicted_crash:  # upstream fixed? the numbers decide the verdict, the note says the crash is gone
        return row(section, configuration, error, bound, options,
                   f"a Keras crash was predicted here and did not happen (fixed upstream?): {predicted_crash}")
    return row(section, configuration, error, bound, options)
