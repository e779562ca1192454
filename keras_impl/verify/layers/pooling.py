"""Keras's pooling layers -> the oracle's (``reference/layers/pooling.py``)."""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer

TEST = "parity_tests/verify/test_normalization_layers.py"
ROWS = [
    ("MaxPooling1D/2D/3D, AveragePooling1D/2D/3D", "pool_size, strides, padding valid and same (padding not "
     "counted in averages), channels_last and channels_first", "-", f"{TEST}::test_single_layers_verify"),
    ("GlobalAveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D", "keepdims, channels_last and channels_first; "
     "GlobalAveragePooling1D's masked mean", "-", f"{TEST}::test_masked_models_verify"),
]


def _ints(layer, name: str, option: str) -> list[int]:
    values = list(getattr(layer, option))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise refuse_layer(name, type(layer).__name__, f"{option}={tuple(values)}: whole numbers >= 1 are supported")
    return values


def pooling(layer, name, inbound):
    cls = type(layer).__name__
    if layer.padding not in ("valid", "same"):
        raise refuse_layer(name, cls, f"padding={layer.padding!r}: 'valid' and 'same' are supported")
    opt = {"pool_size": _ints(layer, name, "pool_size"), "strides": _ints(layer, name, "strides"),
           "padding": layer.padding, "data_format": layer.data_format}
    shown = f"pool_size={tuple(opt['pool_size'])}, strides={tuple(opt['strides'])}, padding={layer.padding}"
    if layer.data_format == "channels_first":
        shown += ", channels_first"
    return Layer(name, cls, inbound, opt), shown


def global_pooling(layer, name, inbound):
    cls = type(layer).__name__
    opt = {"data_format": layer.data_format, "keepdims": bool(layer.keepdims)}
    if cls == "GlobalAveragePooling1D":
        shown = "masked mean"
    elif cls == "GlobalMaxPooling1D":
        shown = "max over every step (ignores the mask)"
    else:
        shown = "mean" if "Average" in cls else "max"
    shown += "".join(f", {k}" for k, on in (("channels_first", layer.data_format == "channels_first"),
                                            ("keepdims", opt["keepdims"])) if on)
    return Layer(name, cls, inbound, opt), shown


DESCRIBE = {f"{mode}Pooling{d}D": pooling for mode in ("Max", "Average") for d in (1, 2, 3)} | {
    f"Global{mode}Pooling{d}D": global_pooling for mode in ("Max", "Average") for d in (1, 2, 3)}
