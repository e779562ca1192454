"""Keras's regularization layers -> the oracle's identity (``reference/layers/regularization.py``)."""
from __future__ import annotations

from reference.layers import Layer

TEST = "parity_tests/verify/test_normalization_layers.py"
ROWS = [
    ("Dropout, SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization",
     "identity at inference, the mask passed on", "-", f"{TEST}::test_masked_models_verify"),
]
# The option that says how much each one perturbs in training, shown in the table.
SHOWN = {"GaussianNoise": "stddev", "ActivityRegularization": "l1"}


def identity(layer, name, inbound):
    cls = type(layer).__name__
    if cls == "ActivityRegularization":
        shown = f"l1={layer.l1:g}, l2={layer.l2:g}"
    else:
        option = SHOWN.get(cls, "rate")
        shown = f"{option}={getattr(layer, option):g}"
    return Layer(name, cls, inbound), shown + " (identity at inference)"


DESCRIBE = {kind: identity for kind in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                                        "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")}
