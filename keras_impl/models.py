"""Keras 3 models built from a ``reference.ModelSpec``.

``build_model(spec)`` gives the tutorial's architectures:

    forward        LSTM(U, return_sequences=True)
    backward       LSTM(U, return_sequences=True, go_backwards=True)   outputs in processing order,
                                                                        fed to the head as they are
    bidirectional  Bidirectional(LSTM(U, return_sequences=True), merge_mode)

stacked once per entry of ``spec.layer_units``, behind an optional
``Masking(mask_value)``, then ``TimeDistributed(Dense(1, "sigmoid"))``. The
recurrent layer is ``spec.cell``'s: ``LSTM``, ``GRU`` or ``SimpleRNN``, with the
spec's ``activation``, ``recurrent_activation`` (not SimpleRNN), ``use_bias`` and
``reset_after`` (GRU) (``reference/cells.py``); LSTM above stands for any of them.
``model.get_weights()`` is in the order ``reference.model_forward`` reads.
"""
from __future__ import annotations

import keras

from reference import ModelSpec


LAYER_CLASSES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}


def cell_options(spec: ModelSpec) -> dict:
    """The spec's cell options, as its Keras layer takes them (SimpleRNN has no recurrent_activation,
    only GRU a reset_after)."""
    cell = spec.cell_config
    options = {"activation": cell.activation, "use_bias": cell.use_bias}
    if cell.kind != "simple_rnn":
        options["recurrent_activation"] = cell.recurrent_activation
    if cell.kind == "gru":
        options["reset_after"] = cell.reset_after
    return options


def recurrent_layer(spec: ModelSpec, units: int, name: str, **lstm_kwargs) -> keras.layers.Layer:
    """One recurrent layer of ``spec`` (every layer returns sequences for the per-step head)."""
    layer_class = getattr(keras.layers, LAYER_CLASSES[spec.cell])
    inner_name = name if not spec.bidirectional else f"{name}_{spec.cell}"
    rnn = layer_class(units, return_sequences=True, go_backwards=spec.direction == "backward", name=inner_name,
                      **cell_options(spec), **lstm_kwargs)
    if spec.bidirectional:
        return keras.layers.Bidirectional(rnn, merge_mode=spec.merge_mode, name=name)
    return rnn


def build_model(spec: ModelSpec, *, seed: int | None = None, **lstm_kwargs) -> keras.Model:
    """The ``keras.Model`` for ``spec``: input (batch, timesteps, features), output (batch, timesteps, 1).

    ``seed`` makes the initial weights reproducible on one backend (backends draw
    different numbers from one seed: parity tests set weights explicitly).
    ``lstm_kwargs`` go to every recurrent layer (for example ``use_cudnn``; SimpleRNN has none).
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
