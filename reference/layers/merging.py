"""Keras's merging layers (keras/src/layers/merging/).

    Concatenate(axis=-1)    y = [x_1, x_2] on the last axis         mask' = None if every mask is None, else
                                                                    m_1 OR m_2 (None counts as all True)
"""
from __future__ import annotations

import numpy as np


def concatenate(layer, inputs, masks, tape=None):
    y = np.concatenate(inputs, axis=-1)
    if all(m is None for m in masks):
        return y, None
    full = [np.ones(v.shape[:2], bool) if m is None else m for v, m in zip(inputs, masks)]
    return y, np.logical_or.reduce(full)


FORWARD = {"Concatenate": concatenate}
