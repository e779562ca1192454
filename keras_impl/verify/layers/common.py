"""What every layer family's description needs: the activation's Keras name and float64 weights."""
from __future__ import annotations

import numpy as np


def activation_name(fn) -> str:
    """Keras's name for a built-in activation; for anything else (a function Keras cannot name, such as
    ``functools.partial(gelu, approximate=True)``, or a registered custom one), a repr no table holds."""
    import keras
    try:
        name = keras.activations.serialize(fn)
    except (TypeError, ValueError):  # Keras cannot serialize it: it has no name to look up
        return f"<{type(fn).__name__} {getattr(fn, '__name__', fn)!r}>"
    return name if isinstance(name, str) else repr(name)


def float_weights(layer) -> list:
    """``layer.get_weights()`` as float64 arrays."""
    return [np.asarray(a, np.float64) for a in layer.get_weights()]
