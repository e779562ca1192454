"""Keras's regularization layers -> the oracle's identity (``reference/layers/regularization.py``)."""
from __future__ import annotations

from reference.layers import Layer


def identity(layer, name, inbound):
    return Layer(name, type(layer).__name__, inbound), f"rate={layer.rate:g} (identity at inference)"


DESCRIBE = {"Dropout": identity, "SpatialDropout1D": identity}

ROWS = [
    ("Dropout, SpatialDropout1D", "identity at inference", "",
     "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
]
