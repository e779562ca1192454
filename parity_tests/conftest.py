"""Shared fixtures. The backend is whatever ``KERAS_BACKEND`` says: one backend per pytest process.

TF32 is switched off here so that float32 parity holds on Ampere/Hopper GPUs,
where every framework otherwise rounds float32 matmuls and cuDNN RNNs to a
10-bit mantissa.
"""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from keras_impl.parity.checks import disable_tf32

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


disable_tf32(BACKEND)  # the same switch `bilstm parity` uses


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, different for every test."""
    seed = zlib.crc32(request.node.nodeid.encode())  # stable across processes, unlike hash()
    return np.random.default_rng(np.random.SeedSequence([seed, 2026]))


@pytest.fixture(scope="session")
def backend() -> str:
    import keras
    assert keras.backend.backend() == BACKEND, "Keras was imported with another backend than KERAS_BACKEND"
    return BACKEND
