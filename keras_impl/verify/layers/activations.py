"""Keras's activation layers -> the oracle's (``reference/layers/activations.py``): ReLU, LeakyReLU, PReLU, ELU,
Softmax. (The Activation layer, which names a function, is in ``core.py`` with Dense.)"""
from __future__ import annotations

import math

import numpy as np

from reference.layers import Layer

from ..load import refuse_layer
from .common import float_weights

TEST = "parity_tests/verify/test_normalization_layers.py"
ROWS = [
    ("ReLU", "max_value (or None), negative_slope, threshold", "non-finite options",
     f"{TEST}::test_single_layers_verify"),
    ("LeakyReLU, ELU", "negative_slope; alpha", "non-finite options", f"{TEST}::test_single_layers_verify"),
    ("PReLU", "alpha weights, shared_axes", "-", f"{TEST}::test_single_layers_verify"),
    ("Softmax", "axis (an int or a list), a mask (masked entries -1e9, then 0, as Keras)", "-",
     f"{TEST}::test_masked_models_verify"),
]


def _rounded_in_float32(value: float) -> bool:
    return float(np.float32(value)) != value


def float32_constants_on_tensorflow(graph) -> list[str]:
    """The layers TensorFlow computes with a float32-rounded constant even in float64
    (``keras_impl.parity.tolerances.TF_FLOAT32_CONSTANT_CAUSE``): a leaky_relu whose slope float32 cannot hold
    (LeakyReLU; ReLU with only a negative_slope, which Keras runs as leaky_relu: activations.py L78-80; the
    ``leaky_relu`` activation, slope 0.2) and every gelu."""
    names = []
    for layer in graph.layers:
        opt = layer.options
        slope = {"LeakyReLU": opt.get("negative_slope")}.get(layer.kind)
        if layer.kind == "ReLU" and opt.get("max_value") is None and not opt.get("threshold"):
            slope = opt.get("negative_slope") or None
        if opt.get("activation") == "leaky_relu":
            slope = 0.2
        if opt.get("activation") == "gelu" or (slope is not None and _rounded_in_float32(slope)):
            names.append(layer.name)
    return names


def _number(layer, name: str, option: str, allow_none: bool = False):
    value = getattr(layer, option)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise refuse_layer(name, type(layer).__name__, f"{option}={value!r}: a finite number is supported")
    return float(value)


def relu(layer, name, inbound):
    opt = {"max_value": _number(layer, name, "max_value", allow_none=True),
           "negative_slope": _number(layer, name, "negative_slope"), "threshold": _number(layer, name, "threshold")}
    shown = ", ".join(f"{k}={v:g}" for k, v in opt.items() if v is not None and (k == "max_value" or v != 0))
    return Layer(name, "ReLU", inbound, opt), shown or "max(x, 0)"


def leaky_relu(layer, name, inbound):
    slope = _number(layer, name, "negative_slope")
    return Layer(name, "LeakyReLU", inbound, {"negative_slope": slope}), f"negative_slope={slope:g}"


def elu(layer, name, inbound):
    alpha = _number(layer, name, "alpha")
    return Layer(name, "ELU", inbound, {"alpha": alpha}), f"alpha={alpha:g}"


def prelu(layer, name, inbound):
    shared = layer.shared_axes
    return (Layer(name, "PReLU", inbound, {"shared_axes": shared}, tuple(float_weights(layer))),
            f"shared_axes={shared}" if shared else "alpha per entry")


def softmax(layer, name, inbound):
    axis = layer.axis
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise refuse_layer(name, "Softmax", f"axis={axis!r}: an int or a list of ints is supported")
    return Layer(name, "Softmax", inbound, {"axis": list(axes) if isinstance(axis, (list, tuple)) else axis}), \
        f"axis={axis}"


DESCRIBE = {"ReLU": relu, "LeakyReLU": leaky_relu, "PReLU": prelu, "ELU": elu, "Softmax": softmax}
