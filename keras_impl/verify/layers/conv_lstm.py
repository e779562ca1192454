"""Keras's ConvLSTM1D/2D/3D -> the oracle's (``reference/layers/conv_lstm.py``).

The class is checked exactly, then what changes the output at inference: the geometry, the two activations
(the oracle's cell activations), use_bias (the oracle's ``bias=None``), go_backwards, return_sequences and
zero_output_for_mask, return_state (three outputs: a row each). ``stateful`` (states carried between calls) is
refused by name; dropout, recurrent_dropout, unroll, initializers, regularizers and constraints do not change
the inference forward and are accepted.
"""
from __future__ import annotations

from reference.cells import ACTIVATIONS as CELL_ACTIVATIONS
from reference.layers import Layer

from ..load import refuse_layer
from .common import activation_name, float_weights

KINDS = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


def conv_lstm(layer, name, inbound):
    import keras
    cls = type(layer).__name__
    if cls not in KINDS or type(layer) is not getattr(keras.layers, cls):
        raise refuse_layer(name, cls, f"a subclass or another class, not keras.layers.{'/'.join(KINDS)}")
    opt = {"activation": activation_name(layer.activation),
           "recurrent_activation": activation_name(layer.recurrent_activation)}
    for key, value in opt.items():
        if value not in CELL_ACTIVATIONS:
            raise refuse_layer(name, cls, f"{key}={value!r}; the oracle's cells implement {', '.join(CELL_ACTIVATIONS)}")
    if layer.stateful:
        raise refuse_layer(name, cls, "stateful=True: states carried between calls are not modelled")
    opt.update(strides=tuple(layer.strides), padding=layer.padding, dilation_rate=tuple(layer.dilation_rate),
               data_format=layer.data_format, go_backwards=bool(layer.go_backwards),
               return_sequences=bool(layer.return_sequences), zero_output_for_mask=bool(layer.zero_output_for_mask),
               return_state=bool(layer.return_state))
    weights = float_weights(layer)
    weights = tuple(weights) if layer.use_bias else (*weights, None)
    shown = [f"filters={layer.filters}", "x".join(map(str, layer.kernel_size)), opt["padding"]]
    if any(s != 1 for s in opt["strides"]):
        shown.append("strides " + "x".join(map(str, opt["strides"])))
    if any(d != 1 for d in opt["dilation_rate"]):
        shown.append("dilation " + "x".join(map(str, opt["dilation_rate"])))
    shown.append(f"go_backwards={opt['go_backwards']:d}")
    shown.append("sequences" if opt["return_sequences"] else "last step")
    if opt["return_state"]:
        shown.append("return_state")
    return Layer(name, cls, inbound, opt, weights), ", ".join(shown)


DESCRIBE = {k: conv_lstm for k in KINDS}

ROWS = [
    (", ".join(KINDS), "filters, kernel_size, strides, padding valid/same, dilation_rate, channels_last/first, "
     "activation, recurrent_activation, use_bias, go_backwards, return_sequences, return_state (a row per state), "
     "zero_output_for_mask, a (B, T) mask; dropout identity at inference",
     "stateful; activations outside the oracle's cells; subclasses",
     "parity_tests/verify/test_convolutional_layers.py::test_conv_lstm_verifies"),
]
