"""Keras's merging layers -> the oracle's (``reference/layers/merging.py``)."""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer


def concatenate(layer, name, inbound):
    if len(inbound) != 2:
        raise refuse_layer(name, "Concatenate", f"of two inputs only, got {len(inbound)}")
    rank = len(layer.output.shape)
    if layer.axis not in (-1, rank - 1):
        raise refuse_layer(name, "Concatenate", f"axis={layer.axis}: the last axis only")
    return Layer(name, "Concatenate", inbound), "last axis"


DESCRIBE = {"Concatenate": concatenate}

ROWS = [
    ("Concatenate", "two inputs, last axis; masks ORed", "other axes, three or more inputs",
     "parity_tests/oracle/test_verify_oracle.py::test_mask_rules_by_hand"),
]
