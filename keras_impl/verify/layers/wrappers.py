"""Keras's TimeDistributed -> the oracle's wrapper (``reference/layers/graph.py``): of Dense."""
from __future__ import annotations

from reference.layers import Layer

from .core import dense_options


def time_distributed(layer, name, inbound):
    opt, w = dense_options(layer.layer, f"{name}.layer", "TimeDistributed")
    return Layer(name, "TimeDistributed", inbound, opt, w), f"Dense({layer.layer.units}, {opt['activation']})"


DESCRIBE = {"TimeDistributed": time_distributed}

ROWS = [
    ("TimeDistributed", "of Dense", "any other wrapped layer", "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
]
