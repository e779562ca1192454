"""The fast training mode on TensorFlow: all N updates of a stream in one ``tf.function``.

A ``tf.while_loop`` (AutoGraph's ``for k in tf.range(n)``) over Keras's own
``model.train_step``, the function ``fit`` runs, with the metrics reset before
every update as ``fit`` resets them at every epoch (one epoch is one update in
the tutorial). ``training.train_stream`` calls ``train_fast`` after
``training_core.prepare`` has checked the data and built the training state.
"""
from __future__ import annotations

import numpy as np

from keras_impl.keras_compat import program_cache


def train_fast(model, xs, ys, sample_weight) -> dict[str, np.ndarray]:
    """Checked float32 xs (N, T, D), ys (N, T, 1), sample_weight (N, T) or None: logs of every update."""
    import tensorflow as tf
    n = xs.shape[0]
    sws = np.ones(xs.shape[:2], np.float32) if sample_weight is None else sample_weight
    weighted = sample_weight is not None

    cache = program_cache(model, "tensorflow")
    key = (n, weighted)  # n is baked into the loop: one trace per stream length
    if key not in cache:
        cache[key] = _loop_program(model, n, weighted)
    loss, accuracy = cache[key](tf.constant(xs), tf.constant(ys), tf.constant(sws))
    return {"loss": loss.numpy(), "accuracy": accuracy.numpy()}


def _loop_program(model, n: int, weighted: bool):
    import tensorflow as tf

    @tf.function
    def run(xs, ys, sws):
        losses = tf.TensorArray(tf.float32, size=n)
        accuracies = tf.TensorArray(tf.float32, size=n)
        for k in tf.range(n):
            model.reset_metrics()  # fit resets metrics every epoch = every update here
            sw = sws[k:k + 1] if weighted else None
            logs = model.train_step((xs[k:k + 1], ys[k:k + 1], sw))
            losses = losses.write(k, tf.cast(logs["loss"], tf.float32))
            accuracies = accuracies.write(k, tf.cast(logs["accuracy"], tf.float32))
        return losses.stack(), accuracies.stack()

    return run
