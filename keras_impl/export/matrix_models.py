"""The export matrix's models that a ``reference.ModelSpec`` cannot name, built in Keras (call in a Keras process).

    tagger         token ids (batch, time) -> Embedding(300, 7, mask_zero) -> Bidirectional(LSTM(8), sum)
                   -> Bidirectional(GRU(6), concat) -> TimeDistributed(Dense(5, softmax)): a tag per token
    masked_bigru   features (batch, time, 4) -> Masking(0) -> Bidirectional(GRU(5), concat), last step
                   -> Dense(3, softmax): a class per sequence

Both keep the batch and the time axis free, as deployed recurrent models do; their weights are the project's one
recipe (``reference.random_arrays``: non-zero, non-symmetric, biases too) drawn from ``seed``.
"""
from __future__ import annotations

import numpy as np


def _randomised(model, seed: int):
    from reference import random_arrays
    current = model.get_weights()
    drawn = random_arrays([w.shape for w in current], np.random.default_rng(seed))
    model.set_weights([d.astype(w.dtype) for d, w in zip(drawn, current)])
    return model


def tagger(seed: int):
    import keras
    ids = keras.Input((None,), dtype="int32", name="ids")
    h = keras.layers.Embedding(300, 7, mask_zero=True, name="embedding")(ids)
    h = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True), merge_mode="sum", name="bilstm")(h)
    h = keras.layers.Bidirectional(keras.layers.GRU(6, return_sequences=True), merge_mode="concat", name="bigru")(h)
    tags = keras.layers.TimeDistributed(keras.layers.Dense(5, activation="softmax"), name="tags")(h)
    return _randomised(keras.Model(ids, tags, name="tagger"), seed)


def masked_bigru(seed: int):
    import keras
    x = keras.Input((None, 4), name="x")
    h = keras.layers.Masking(0.0, name="masking")(x)
    h = keras.layers.Bidirectional(keras.layers.GRU(5), merge_mode="concat", name="bigru")(h)
    classes = keras.layers.Dense(3, activation="softmax", name="classes")(h)
    return _randomised(keras.Model(x, classes, name="masked_bigru"), seed)


BUILDERS = {"tagger": tagger, "masked_bigru": masked_bigru}
