"""Keras's pooling layers (keras/src/layers/pooling/), channels_last.

    GlobalAveragePooling1D  y = sum_t m_t x_t / sum_t m_t  (mean without a mask; a row with no
                            valid step is 0/0 = NaN, as in Keras)   mask' = None
    GlobalMaxPooling1D      y = max_t x_t over EVERY step: Keras's layer does not take the mask
                            (it drops it with a warning)            mask' = None
"""
from __future__ import annotations

import numpy as np


def global_average_pooling_1d(layer, inputs, masks, tape=None):
    x, mask = inputs[0], masks[0]
    if mask is None:
        return x.mean(axis=1), None
    m = mask[..., None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # a row with no valid step: NaN, as in Keras
        return np.where(m > 0, x, 0.0).sum(axis=1) / m.sum(axis=1), None


def global_max_pooling_1d(layer, inputs, masks, tape=None):
    return inputs[0].max(axis=1), None


FORWARD = {"GlobalAveragePooling1D": global_average_pooling_1d, "GlobalMaxPooling1D": global_max_pooling_1d}
