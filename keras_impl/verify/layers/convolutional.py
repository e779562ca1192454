"""Keras's convolution layers -> the oracle's (``reference/layers/convolutional.py``): Conv1D/2D/3D,
SeparableConv1D/2D, DepthwiseConv1D/2D, Conv1DTranspose/2D/3D.

Each class is checked exactly (a subclass may compute something else), then what changes the output at
inference: the geometry (strides, padding, dilation_rate, groups, depth_multiplier, output_padding,
data_format), use_bias (read off the weights) and the activation, which must be one the oracle implements.
A LoRA-enabled Conv (its kernel plus a low-rank delta) is refused by name. Initializers, regularizers and
constraints do not change the forward pass and are accepted.
"""
from __future__ import annotations

from reference.layers import ACTIVATIONS, Layer

from ..load import refuse_layer
from .common import activation_name, float_weights

CONV = ("Conv1D", "Conv2D", "Conv3D")
SEPARABLE = ("SeparableConv1D", "SeparableConv2D")
DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
TRANSPOSE = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")


def _geometry(layer, name: str, cls: str) -> dict:
    """The options every convolution shares, or a refusal for what the oracle does not model."""
    import keras
    if type(layer) is not getattr(keras.layers, cls):
        raise refuse_layer(name, type(layer).__name__, f"a subclass or another class, not keras.layers.{cls}")
    act = activation_name(layer.activation)
    if act not in ACTIVATIONS:
        raise refuse_layer(name, cls, f"activation={act!r}; supported: {', '.join(ACTIVATIONS)}")
    if getattr(layer, "lora_enabled", False):
        raise refuse_layer(name, cls, "LoRA weights")
    return {"strides": tuple(layer.strides), "padding": layer.padding, "dilation_rate": tuple(layer.dilation_rate),
            "data_format": layer.data_format, "activation": act}


def _shown(opt: dict, kernel_size, extra: str = "") -> str:
    """The options worth a glance in the table: size, geometry when not the default, activation."""
    parts = ["x".join(map(str, kernel_size)), opt["padding"]]
    if any(s != 1 for s in opt["strides"]):
        parts.append("strides " + "x".join(map(str, opt["strides"])))
    if any(d != 1 for d in opt["dilation_rate"]):
        parts.append("dilation " + "x".join(map(str, opt["dilation_rate"])))
    if opt["data_format"] == "channels_first":
        parts.append("channels_first")
    if extra:
        parts.append(extra)
    return ", ".join(parts + [opt["activation"]])


def conv(layer, name, inbound):
    cls = type(layer).__name__
    opt = {**_geometry(layer, name, cls), "groups": int(layer.groups)}
    extra = f"filters={layer.filters}" + (f", groups={layer.groups}" if layer.groups != 1 else "")
    return Layer(name, cls, inbound, opt, tuple(float_weights(layer))), _shown(opt, layer.kernel_size, extra)


def depthwise(layer, name, inbound):
    cls = type(layer).__name__
    opt = _geometry(layer, name, cls)
    return (Layer(name, cls, inbound, opt, tuple(float_weights(layer))),
            _shown(opt, layer.kernel_size, f"depth_multiplier={layer.depth_multiplier}"))


def separable(layer, name, inbound):
    cls = type(layer).__name__
    opt = _geometry(layer, name, cls)
    return (Layer(name, cls, inbound, opt, tuple(float_weights(layer))),
            _shown(opt, layer.kernel_size, f"filters={layer.filters}, depth_multiplier={layer.depth_multiplier}"))


def conv_transpose(layer, name, inbound):
    cls = type(layer).__name__
    op = layer.output_padding
    opt = {**_geometry(layer, name, cls), "output_padding": None if op is None else tuple(op)}
    extra = f"filters={layer.filters}" + ("" if op is None else ", output_padding " + "x".join(map(str, op)))
    return Layer(name, cls, inbound, opt, tuple(float_weights(layer))), _shown(opt, layer.kernel_size, extra)


DESCRIBE = {**{k: conv for k in CONV}, **{k: separable for k in SEPARABLE}, **{k: depthwise for k in DEPTHWISE},
            **{k: conv_transpose for k in TRANSPOSE}}

_TESTS = "parity_tests/verify/test_convolutional_layers.py"
ROWS = [
    (", ".join(CONV), "filters, kernel_size, strides, padding valid/same (causal: Conv1D), dilation_rate, groups, "
     "channels_last/first, use_bias, activation; a mask is dropped (as Keras: warning, mask' = None)",
     "LoRA-enabled kernels; activations the oracle lacks; subclasses",
     f"{_TESTS}::test_conv_layers_verify"),
    (", ".join(SEPARABLE), "filters, depth_multiplier, kernel_size, strides, padding valid/same, dilation_rate, "
     "channels_last/first, use_bias, activation", "activations the oracle lacks; subclasses",
     f"{_TESTS}::test_conv_layers_verify"),
    (", ".join(DEPTHWISE), "depth_multiplier, kernel_size, strides, padding valid/same, dilation_rate, "
     "channels_last/first, use_bias, activation", "activations the oracle lacks; subclasses",
     f"{_TESTS}::test_conv_layers_verify"),
    (", ".join(TRANSPOSE), "filters, kernel_size, strides, padding valid/same, output_padding, dilation_rate, "
     "channels_last/first, use_bias, activation (Keras's JAX padding conversion)",
     "activations the oracle lacks; subclasses",
     f"{_TESTS}::test_conv_layers_verify"),
]
