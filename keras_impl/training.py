"""Training on a stream of sequences, the tutorial's way: one Adam update per sequence, batch 1, in order.

For sequence k = 0 .. N-1 (each seen once):

    p_k   = model(x_k)                      # (1, T, 1), before the update
    L_k   = binary_crossentropy(y_k, p_k)   # mean over the valid steps (a Masking layer's mask)
    w    <- Adam(w, dL_k/dw)                # Keras defaults, one step

``train_stream`` returns the L_k, the loss ``fit`` reports for that update.
Two modes give the same updates:

- ``faithful``: the tutorial's loop, one ``model.fit(x_k, y_k, epochs=1, batch_size=1)``
  per sequence (one Python round-trip, callbacks and data adapter each update).
- ``fast``: Keras's own ``model.train_step`` (the function ``fit`` runs), minus
  ``fit``'s per-call machinery, batched as far as the backend allows:
    jax         all N updates in one ``jax.lax.scan``, jitted once (``training_jax``);
                ``train_many`` also ``jax.vmap``s over seeds (one program for every seed).
    tensorflow  all N updates in one ``tf.function`` (a ``tf.while_loop`` over ``train_step``;
                ``training_tensorflow``).
    torch       a tight Python loop over ``train_step`` (torch has no whole-loop compilation
                that Keras's stateful layers survive; this drops only ``fit``'s overhead;
                ``training_torch``).

Before the first update ``training_core.prepare`` checks everything that can
be foreseen (the data, the compile settings) and builds the training state;
the backend loops and ``distributed`` import only ``training_core``, never
this module, so there is no import cycle.

The metrics are reset before every update in both modes, as ``fit`` resets
them at every epoch, so each update's logs are that update's alone. After
either mode the model's weights and its optimizer's state (iteration count,
moments) are those of the trained model.
"""
from __future__ import annotations

import numpy as np

from keras_impl.training_core import MODES, build_training_state, check_stream, ensure_compiled, prepare

__all__ = ["MODES", "build_training_state", "check_stream", "ensure_compiled", "train_stream", "train_stream_logs"]


def train_stream_logs(model, xs, ys, *, mode: str = "fast", sample_weight=None, distribution=None) -> dict[str, np.ndarray]:
    """Train ``model`` in place on the stream; the ``loss`` and ``accuracy`` of every update, each (N,).

    Shapes: xs (N, T, D), ys (N, T, 1), sample_weight (N, T) or None. Variable-length
    sequences use a model with a Masking layer: Keras then averages the loss and
    the accuracy over the valid steps only. Bad data (NaN, infinities, values
    beyond float32, bool, complex or object arrays, labels outside [0, 1]) and a
    model compiled without the ``accuracy`` metric are refused before the first
    update (``training_core.prepare``): the model is left as it was.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(map(repr, MODES))}")
    if distribution is not None:  # JAX DataParallel: n sequences an update, one a device (keras_impl/distributed.py)
        from keras_impl.distributed import train_stream_data_parallel
        return train_stream_data_parallel(model, xs, ys, distribution, sample_weight=sample_weight)
    xs, ys, sample_weight = prepare(model, xs, ys, sample_weight)
    if mode == "faithful":
        return _train_faithful(model, xs, ys, sample_weight)
    import keras
    backend = keras.backend.backend()
    if backend == "jax":
        from keras_impl import training_jax
        return training_jax.train_fast(model, xs, ys, sample_weight)
    if backend == "tensorflow":
        from keras_impl import training_tensorflow
        return training_tensorflow.train_fast(model, xs, ys, sample_weight)
    if backend == "torch":
        from keras_impl import training_torch
        return training_torch.train_fast(model, xs, ys, sample_weight)
    raise ValueError(f"fast mode supports the jax, tensorflow and torch backends, got {backend!r}")


def train_stream(model, xs, ys, *, mode: str = "fast", sample_weight=None, distribution=None) -> np.ndarray:
    """Train ``model`` in place, one Adam update per sequence; the loss of every update, (N,) float32."""
    return train_stream_logs(model, xs, ys, mode=mode, sample_weight=sample_weight, distribution=distribution)["loss"]


def _train_faithful(model, xs, ys, sample_weight) -> dict[str, np.ndarray]:
    losses, accuracies = [], []
    for k in range(xs.shape[0]):
        sw = None if sample_weight is None else sample_weight[k:k + 1]
        history = model.fit(xs[k:k + 1], ys[k:k + 1], sample_weight=sw, epochs=1, batch_size=1,
                            verbose=0, shuffle=False)
        losses.append(history.history["loss"][0])
        accuracies.append(history.history["accuracy"][0])
    return {"loss": np.asarray(losses, np.float32), "accuracy": np.asarray(accuracies, np.float32)}
