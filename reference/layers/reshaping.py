"""Keras's reshaping layers (keras/src/layers/reshaping/), channels_last.

    Flatten                 y = reshape(x, (B, -1))                 mask' = None (Keras drops it)
"""
from __future__ import annotations


def flatten(layer, inputs, masks, tape=None):
    x = inputs[0]
    return x.reshape(x.shape[0], -1), None


FORWARD = {"Flatten": flatten}
