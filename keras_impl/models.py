"""Keras 3 models built from a ``reference.ModelSpec``.

``build_model(spec)`` gives the tutorial's architectures:

    forward        LSTM(U, return_sequences=True)
    backward       LSTM(U, return_sequences=True, go_backwards=True)   outputs in processing order,
                                                                        fed to the head as they are
    bidirectional  Bidirectional(LSTM(U, return_sequences=True), merge_mode)

stacked once per entry of ``spec.layer_units``, behind an optional
``Masking(mask_value)``, then ``TimeDistributed(Dense(1, "sigmoid"))``.
``model.get_weights()`` is in the order ``reference.model_forward`` reads.
"""
from __future__ import annotations

import keras

from reference import ModelSpec


def recurrent_layer(spec: ModelSpec, units: int, name: str, **lstm_kwargs) -> keras.layers.Layer:
    """One recurrent layer of ``spec`` (every layer returns sequences for the per-step head)."""
    lstm = keras.layers.LSTM(units, return_sequences=True, go_backwards=spec.direction == "backward",
                             name=name if not spec.bidirectional else f"{name}_lstm", **lstm_kwargs)
    if spec.bidirectional:
        return keras.layers.Bidirectional(lstm, merge_mode=spec.merge_mode, name=name)
    return lstm


def build_model(spec: ModelSpec, *, seed: int | None = None, **lstm_kwargs) -> keras.Model:
    """The ``keras.Model`` for ``spec``: input (batch, timesteps, features), output (batch, timesteps, 1).

    ``seed`` makes the initial weights reproducible on one backend (backends draw
    different numbers from one seed: parity tests set weights explicitly).
    ``lstm_kwargs`` go to every ``keras.layers.LSTM`` (for example ``use_cudnn``).
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a reference.ModelSpec, got {type(spec).__name__}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((spec.timesteps, spec.features), name="x")
    h = inputs
    if spec.mask_value is not None:
        h = keras.layers.Masking(mask_value=spec.mask_value, name="masking")(h)
    for k, units in enumerate(spec.layer_units):
        h = recurrent_layer(spec, units, f"recurrent_{k}", **lstm_kwargs)(h)
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(1, activation="sigmoid"), name="head")(h)
    return keras.Model(inputs, outputs, name=spec.direction)
