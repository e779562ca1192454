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
    tensorflow  all N updates in one ``tf.function`` (a ``tf.while_loop`` over ``train_step``).
    torch       a tight Python loop over ``train_step`` (torch has no whole-loop compilation
                that Keras's stateful layers survive; this drops only ``fit``'s overhead).

The metrics are reset before every update in both modes, as ``fit`` resets
them at every epoch, so each update's logs are that update's alone. After
either mode the model's weights and its optimizer's state (iteration count,
moments) are those of the trained model.
"""
from __future__ import annotations

import numpy as np

MODES = ("fast", "faithful")


def ensure_compiled(model) -> None:
    """Compile ``model`` as the tutorial did, unless it is compiled already."""
    if getattr(model, "compiled", False) and model.optimizer is not None:
        return
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])


def check_stream(model, xs, ys, sample_weight=None):
    """xs, ys (N, T, D) and (N, T, 1) as float32; sample_weight (N, T) or None."""
    xs = np.asarray(xs, dtype=np.float32)
    ys = np.asarray(ys, dtype=np.float32)
    if xs.ndim != 3:
        raise ValueError(f"xs must have shape (updates, timesteps, features), got {xs.shape}")
    expected = tuple(model.input_shape[1:])
    if tuple(xs.shape[1:]) != expected:
        raise ValueError(f"xs must have shape (updates, {expected[0]}, {expected[1]}) for this model, got {xs.shape}")
    if ys.shape != xs.shape[:2] + (1,):
        raise ValueError(f"ys must have shape {xs.shape[:2] + (1,)} (one label a step), got {ys.shape}")
    if xs.shape[0] < 1:
        raise ValueError("xs must hold at least one sequence, got 0")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float32)
        if sample_weight.shape != xs.shape[:2]:
            raise ValueError(f"sample_weight must have shape {xs.shape[:2]} (updates, timesteps), got {sample_weight.shape}")
    return xs, ys, sample_weight


def train_stream_logs(model, xs, ys, *, mode: str = "fast", sample_weight=None, distribution=None) -> dict[str, np.ndarray]:
    """Train ``model`` in place on the stream; the ``loss`` and ``accuracy`` of every update, each (N,).

    Shapes: xs (N, T, D), ys (N, T, 1), sample_weight (N, T) or None. Variable-length
    sequences use a model with a Masking layer: Keras then averages the loss and
    the accuracy over the valid steps only.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(map(repr, MODES))}")
    if distribution is not None:  # JAX DataParallel: n sequences an update, one a device (keras_impl/distributed.py)
        from keras_impl.distributed import train_stream_data_parallel
        return train_stream_data_parallel(model, xs, ys, distribution, sample_weight=sample_weight)
    ensure_compiled(model)
    xs, ys, sample_weight = check_stream(model, xs, ys, sample_weight)
    if mode == "faithful":
        return _train_faithful(model, xs, ys, sample_weight)
    import keras
    backend = keras.backend.backend()
    if backend == "jax":
        from keras_impl import training_jax
        return training_jax.train_fast(model, xs, ys, sample_weight)
    if backend == "tensorflow":
        return _train_fast_tensorflow(model, xs, ys, sample_weight)
    if backend == "torch":
        return _train_fast_torch(model, xs, ys, sample_weight)
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


def build_training_state(model, xs, ys, sample_weight) -> None:
    """Create the variables ``fit`` would create (layers, optimizer, loss and metric trackers)."""
    sw = None if sample_weight is None else sample_weight[:1]
    model._symbolic_build(data_batch=(xs[:1], ys[:1], sw))  # what fit calls; builds metrics too
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _train_fast_tensorflow(model, xs, ys, sample_weight) -> dict[str, np.ndarray]:
    import tensorflow as tf
    build_training_state(model, xs, ys, sample_weight)
    n = xs.shape[0]
    sws = np.ones(xs.shape[:2], np.float32) if sample_weight is None else sample_weight
    weighted = sample_weight is not None

    cache = model.__dict__.setdefault("_bilstm_tf_programs", {})
    key = (n, weighted)  # n is baked into the loop: one trace per stream length
    if key not in cache:
        cache[key] = _tf_loop_program(model, n, weighted)
    loss, accuracy = cache[key](tf.constant(xs), tf.constant(ys), tf.constant(sws))
    return {"loss": loss.numpy(), "accuracy": accuracy.numpy()}


def _tf_loop_program(model, n: int, weighted: bool):
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


def _train_fast_torch(model, xs, ys, sample_weight) -> dict[str, np.ndarray]:
    import keras
    import torch
    build_training_state(model, xs, ys, sample_weight)
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
