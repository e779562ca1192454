"""Keras's pooling layers -> the oracle's (``reference/layers/pooling.py``)."""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer


def global_pooling_1d(layer, name, inbound):
    cls = type(layer).__name__
    if layer.data_format != "channels_last" or layer.keepdims:
        raise refuse_layer(name, cls, "data_format='channels_last' and keepdims=False only")
    shown = "masked mean" if cls == "GlobalAveragePooling1D" else "max over every step (ignores the mask)"
    return Layer(name, cls, inbound), shown


DESCRIBE = {"GlobalAveragePooling1D": global_pooling_1d, "GlobalMaxPooling1D": global_pooling_1d}

ROWS = [
    ("GlobalAveragePooling1D, GlobalMaxPooling1D", "`channels_last`, `keepdims=False`; the average is masked, "
     "the max ignores the mask (as Keras)", "other data formats, keepdims",
     "parity_tests/oracle/test_verify_oracle.py::test_mask_rules_by_hand"),
]
