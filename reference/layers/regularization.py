"""Keras's regularization layers at inference (keras/src/layers/regularization/): each is the identity, and each
sets ``supports_masking = True`` and keeps Layer's ``compute_mask`` (keras/src/layers/layer.py L865-866).

    Dropout, SpatialDropout1D/2D/3D   y = x (dropout.py L100-110; spatial_dropout.py L12-20)    mask' = mask
                                      (dropout.py L54; SpatialDropout inherits it from Dropout)
    GaussianNoise                     y = x (gaussian_noise.py L44-52)                          mask' = mask (L40)
    GaussianDropout                   y = x (gaussian_dropout.py L43-51)                        mask' = mask (L39)
    AlphaDropout                      y = x (alpha_dropout.py L52-77)                           mask' = mask (L48)
    ActivityRegularization            y = x; the penalty is a loss term, not an output
                                      (activity_regularization.py L33-34)                       mask' = mask (L27)
"""
from __future__ import annotations


def identity(layer, inputs, masks, tape=None):
    return inputs[0], masks[0]


FORWARD = {kind: identity for kind in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                                       "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")}
