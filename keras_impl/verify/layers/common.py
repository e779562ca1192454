"""What every layer family's description needs: the activation's Keras name and float64 weights."""
from __future__ import annotations

import numpy as np


def activation_name(fn) -> str:
    import keras
    name = keras.activations.serialize(fn)
    return name if isinstance(name, str) else repr(name)


def float_weights(layer) -> list:
    """``layer.get_weights()`` as float64 arrays."""
    return [np.asarray(a, np.float64) for a in layer.get_weights()]
