"""Keras's reshaping layers -> the oracle's (``reference/layers/reshaping.py``)."""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer


def flatten(layer, name, inbound):
    if layer.data_format != "channels_last":
        raise refuse_layer(name, "Flatten", "data_format='channels_last' only")
    return Layer(name, "Flatten", inbound), "drops the mask"


DESCRIBE = {"Flatten": flatten}

ROWS = [
    ("Flatten", "`channels_last`; drops the mask", "", "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
]
