"""Keras's regularization layers at inference (keras/src/layers/regularization/): each is the identity.

    Dropout, SpatialDropout1D       y = x                           mask' = mask
"""
from __future__ import annotations


def identity(layer, inputs, masks, tape=None):
    return inputs[0], masks[0]


FORWARD = {"Dropout": identity, "SpatialDropout1D": identity}
