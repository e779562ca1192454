"""Keras's merging layers -> the oracle's (``reference/layers/merging.py``): Add, Subtract, Multiply, Average,
Maximum, Minimum, Concatenate (any axis, N inputs) and Dot (axes, normalize with Keras's epsilon)."""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer

TEST = "parity_tests/verify/test_reshaping_merging_layers.py"
ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


def elementwise(layer, name, inbound):
    cls = type(layer).__name__
    if cls == "Subtract" and len(inbound) != 2:
        raise refuse_layer(name, cls, f"of {len(inbound)} inputs: Keras's Subtract takes exactly 2")
    return Layer(name, cls, inbound), f"{len(inbound)} inputs"


def concatenate(layer, name, inbound):
    axis = int(layer.axis)
    return Layer(name, "Concatenate", inbound, {"axis": axis}), f"axis={axis}, {len(inbound)} inputs"


def dot(layer, name, inbound):
    import keras
    if len(inbound) != 2:
        raise refuse_layer(name, "Dot", f"of {len(inbound)} inputs: Keras's Dot takes exactly 2")
    axes = int(layer.axes) if isinstance(layer.axes, int) else tuple(int(a) for a in layer.axes)
    options = {"axes": axes, "normalize": bool(layer.normalize), "epsilon": float(keras.config.epsilon())}
    return Layer(name, "Dot", inbound, options), f"axes={axes}" + (", normalize" if layer.normalize else "")


DESCRIBE = {**{cls: elementwise for cls in ELEMENTWISE}, "Concatenate": concatenate, "Dot": dot}

ROWS = [
    ("Add, Subtract, Average", "N inputs (Subtract 2), ranks broadcast as Keras does; mask: OR of the inputs' "
     "masks, None if any is None", "-", f"{TEST}::test_models_verify_within_bounds"),
    ("Maximum, Minimum, Multiply", "N inputs; masked entries stand in as Keras's merge functions make them; "
     "mask: OR of the masks", "-", f"{TEST}::test_models_verify_within_bounds"),
    ("Concatenate", "any axis, N inputs; mask by Keras's rule for any axis (joined on the time axis, OR on the "
     "last)", "-", f"{TEST}::test_models_verify_within_bounds"),
    ("Dot", "axes (int or pair, negative too), normalize (Keras's epsilon); mask dropped", "-",
     f"{TEST}::test_models_verify_within_bounds"),
]
