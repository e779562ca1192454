"""The tutorial's cumulative-sum problem, vectorized, driven by a ``numpy.random.Generator``.

A sequence of n values drawn uniformly from [0, 1), one feature a step; the
label at step t is

    y[t] = 0 if cumsum(x)[t] < n / 4 else 1

so it flips from 0 to 1 once, where the running sum first reaches a quarter of
the sequence length, and stays 1.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_positive_int


def labels_for(x: np.ndarray, lengths: np.ndarray | int) -> np.ndarray:
    """Labels (N, T, 1) of sequences x (N, T, 1), each against its own length / 4."""
    threshold = np.asarray(lengths, dtype=np.float64).reshape(-1, 1) / 4.0  # (N, 1)
    return (np.cumsum(x[..., 0], axis=1) >= threshold).astype(np.float64)[..., None]


def make_sequences(n_sequences: int, timesteps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_sequences`` tutorial sequences of length ``timesteps``: x, y each (N, T, 1) float64."""
    check_positive_int("n_sequences", n_sequences)
    check_positive_int("timesteps", timesteps)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x = rng.random((n_sequences, timesteps, 1))  # uniform [0, 1)
    return x, labels_for(x, timesteps)
