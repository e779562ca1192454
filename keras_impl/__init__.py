"""bilstm-lab's Keras 3 side: models from a ``reference.ModelSpec`` on any backend.

The backend is chosen as Keras chooses it, by ``KERAS_BACKEND`` when Keras is
first imported. Importing this package does not import Keras (so that
``bilstm --backend`` can still choose); the names below load it on first use.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "build_model": "keras_impl.models",
    "backend_info": "keras_impl.backend",
    "select_backend": "keras_impl.backend",
    "train_stream": "keras_impl.training",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_impl' has no attribute {name!r}")
