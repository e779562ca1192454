"""One row of the ``bilstm parity`` table and how a measured error becomes its verdict.

Every section of the table (``keras_impl/parity/checks.py`` for layers and models,
``keras_impl/parity/training_checks.py`` for gradients and trajectories) builds
its rows here, so the verdict rules live in one place.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from keras_impl.parity.tolerances import FLOAT32_ABS, float64_abs


@dataclass(frozen=True)
class CheckOptions:
    backend: str
    device: str
    dtype: str          # "float32" | "float64": the Keras floatx the checks run in
    quick: bool         # a smaller subset (seconds)


@dataclass(frozen=True)
class Row:
    section: str
    configuration: str
    dtype: str
    worst_abs_error: float
    tolerance: float
    verdict: str        # "pass" | "FAIL" | "known"
    note: str = ""      # the reason of a known divergence


def tolerance(options: CheckOptions) -> float:
    return FLOAT32_ABS if options.dtype == "float32" else float64_abs(options.backend)


def seeded_rng(configuration: str) -> np.random.Generator:
    """One generator per configuration, the same in every run."""
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(configuration.encode()), 2026]))


def row(section: str, configuration: str, error: float, tol: float, options: CheckOptions,
        divergence: str | None = None) -> Row:
    within = error <= tol  # False for nan too
    verdict = "pass" if within else ("known" if divergence else "FAIL")
    return Row(section, configuration, options.dtype, error, tol, verdict, divergence if not within and divergence else "")


def measure(section: str, configuration: str, tol: float, options: CheckOptions, divergence: str | None,
            compare: Callable[[], tuple[dict, dict]]) -> Row:
    """Run ``compare() -> (expected, actual)`` and make its row; an exception is a FAIL that says why."""
    from keras_impl.parity import harness
    try:
        expected, actual = compare()
        error = max(harness.worst_abs_errors(expected, actual).values())
    except AssertionError as exc:  # wrong dtype, names or shapes: the harness says which
        return Row(section, configuration, options.dtype, float("nan"), tol, "FAIL", str(exc))
    return row(section, configuration, error, tol, options, divergence)
