"""The fast training mode on torch: a tight Python loop over Keras's own ``model.train_step``.

torch has no whole-loop compilation that Keras's stateful layers survive, so
this drops only ``fit``'s per-call machinery (callbacks, data adapter, one
Python round-trip an epoch). The metrics are reset before every update, as
``fit`` resets them at every epoch. ``training.train_stream`` calls
``train_fast`` after ``training_core.prepare`` has checked the data and built
the training state.
"""
from __future__ import annotations

import numpy as np


def train_fast(model, xs, ys, sample_weight) -> dict[str, np.ndarray]:
    """Checked float32 xs (N, T, D), ys (N, T, 1), sample_weight (N, T) or None: logs of every update."""
    import keras
    import torch
    model.train()  # what fit's make_train_function does (dropout etc. in training mode)
    xs_t, ys_t = keras.ops.convert_to_tensor(xs), keras.ops.convert_to_tensor(ys)  # on the device, once
    sw_t = None if sample_weight is None else keras.ops.convert_to_tensor(sample_weight)
    losses = torch.empty(xs.shape[0])
    accuracies = torch.empty(xs.shape[0])
    for k in range(xs.shape[0]):
        model.reset_metrics()
        sw = None if sw_t is None else sw_t[k:k + 1]
        logs = model.train_step((xs_t[k:k + 1], ys_t[k:k + 1], sw))
        losses[k] = logs["loss"].detach()
        accuracies[k] = logs["accuracy"].detach()
    return {"loss": losses.numpy().astype(np.float32), "accuracy": accuracies.numpy().astype(np.float32)}
