"""Keras's core layers -> the oracle's (``reference/layers/core.py``): InputLayer, Masking, Embedding, Dense,
Activation.

A Dense's or Activation's activation is read by its Keras name (every built-in but ``threshold``, which needs
arguments a name cannot carry: ``reference/activations.py``); a function Keras cannot name is refused.
"""
from __future__ import annotations

import numpy as np

from reference.layers import ACTIVATIONS, Layer

import keras_impl.verify.dequantize as dequantize
from ..load import refuse_layer
from .common import activation_name, float_weights


ROWS = [
    ("Activation, Dense (activation=)", "every Keras 3.15.1 built-in activation by name: "
     + ", ".join(ACTIVATIONS), "threshold (it needs arguments), unnamed functions",
     "parity_tests/verify/test_normalization_layers.py::test_every_activation_verifies"),
]


def dense_options(layer, name: str, kind: str):
    """``({"activation": ...}, (kernel, bias))`` of a keras.layers.Dense (exactly), a zero bias without one."""
    import keras
    if type(layer) is not keras.layers.Dense:
        raise refuse_layer(name, type(layer).__name__, f"{kind} takes keras.layers.Dense exactly")
    act = activation_name(layer.activation)
    if act not in ACTIVATIONS:
        raise refuse_layer(name, kind, f"activation={act!r}; supported: {', '.join(ACTIVATIONS)}")
    if getattr(layer, "lora_enabled", False):
        raise refuse_layer(name, kind, "LoRA weights")
    if dequantize.mode(layer) is not None:  # the weights Keras computes with, dequantized (zero bias included)
        return {"activation": act}, dequantize.oracle_weights(layer, "Dense")
    w = float_weights(layer)
    if not layer.use_bias:
        w.append(np.zeros(w[0].shape[1]))
    return {"activation": act}, tuple(w)


def input_layer(layer, name, inbound):
    return Layer(name, "InputLayer"), ""


def masking(layer, name, inbound):
    value = layer.mask_value
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
        raise refuse_layer(name, "Masking", f"mask_value={value!r}: a finite number is supported")
    return Layer(name, "Masking", inbound, {"mask_value": float(value)}), f"mask_value={value:g}"


def embedding(layer, name, inbound):
    if getattr(layer, "lora_enabled", False):
        raise refuse_layer(name, "Embedding", "LoRA weights")
    weights = dequantize.oracle_weights(layer, "Embedding") if dequantize.mode(layer) else tuple(float_weights(layer))
    return (Layer(name, "Embedding", inbound, {"mask_zero": bool(layer.mask_zero)}, weights),
            f"vocab={layer.input_dim}, mask_zero={bool(layer.mask_zero)}")


def dense(layer, name, inbound):
    opt, w = dense_options(layer, name, "Dense")
    return Layer(name, "Dense", inbound, opt, w), f"units={layer.units}, {opt['activation']}"


def activation(layer, name, inbound):
    act = activation_name(layer.activation)
    if act not in ACTIVATIONS:
        raise refuse_layer(name, "Activation", f"activation={act!r}; supported: {', '.join(ACTIVATIONS)}")
    return Layer(name, "Activation", inbound, {"activation": act}), act


DESCRIBE = {"InputLayer": input_layer, "Masking": masking, "Embedding": embedding, "Dense": dense,
            "Activation": activation}

ROWS = [
    ("InputLayer", "any dtype (int ids for an Embedding)", "", "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
    ("Masking", "a finite `mask_value`", "a tensor mask value",
     "parity_tests/verify/test_verify.py::test_masked_inputs_are_drawn_with_padding"),
    ("Embedding", "`mask_zero` True or False", "LoRA", "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
    ("Dense, Activation", "activations " + ", ".join(ACTIVATIONS) + "; `use_bias`", "other activations, LoRA",
     "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
]
