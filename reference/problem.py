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


def mask_from_lengths(lengths: np.ndarray, timesteps: int) -> np.ndarray:
    """Boolean (N, T) mask, True on the first ``lengths[i]`` steps of sequence i (right padding)."""
    lengths = np.asarray(lengths)
    return np.arange(timesteps)[None, :] < lengths[:, None]  # (N, T)


def make_variable_sequences(n_sequences: int, rng: np.random.Generator, *, min_length: int = 5,
                            max_length: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequences of lengths drawn uniformly from ``min_length .. max_length``, zero-padded on the right.

    Returns x (N, max_length, 1), y (N, max_length, 1) and lengths (N,) int. Sequence i
    is a tutorial sequence of its own length L_i: values uniform [0, 1) on its first
    L_i steps, labels ``cumsum(x)[t] >= L_i / 4``; x and y are 0 on the padding.
    A value of exactly 0.0 (the padding, masked by ``Masking(0.0)``) has probability
    2**-53 a draw, so a valid step is never mistaken for padding in practice.
    """
    check_positive_int("n_sequences", n_sequences)
    check_positive_int("min_length", min_length)
    check_positive_int("max_length", max_length)
    if min_length > max_length:
        raise ValueError(f"min_length must be <= max_length, got min_length={min_length}, max_length={max_length}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    lengths = rng.integers(min_length, max_length + 1, size=n_sequences)  # (N,)
    mask = mask_from_lengths(lengths, max_length)[..., None]  # (N, T, 1)
    x = rng.random((n_sequences, max_length, 1)) * mask
    y = labels_for(x, lengths) * mask
    return x, y, lengths
