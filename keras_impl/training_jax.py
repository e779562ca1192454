"""The fast training mode on JAX: Keras's own ``train_step`` inside one ``jax.lax.scan``, jitted once.

``fit`` on JAX calls ``model.train_step(state, batch)`` once a batch, a pure
function of the state ``(trainable, non_trainable, optimizer, metrics)``.
Here the same function runs N times inside one compiled program:

    state_0 = the model's variables;  state_k = train_step(state_{k-1}, (x_k, y_k, w_k))

with the metric variables reset to their fresh values before every step (as
``fit`` resets them at every epoch, and one epoch is one update in the
tutorial). ``train_many`` adds ``jax.vmap`` over seeds: S independent copies
of the model, each with its own initial weights and its own stream, train in
one program, so that a comparison over 20 seeds compiles once per architecture.
"""
from __future__ import annotations

import jax
import numpy as np

from keras_impl.keras_compat import program_cache
from keras_impl.training_core import as_float32_data, build_training_state, check_reports_accuracy, check_stream, \
    ensure_compiled


def _fresh_metrics(model):
    model.reset_metrics()
    return [v.value for v in model.metrics_variables]


def _scan_program(model):
    """``run(tv, ntv, ov, xs, ys, sws) -> (tv, ntv, ov, loss (N,), accuracy (N,))``, not yet jitted."""
    fresh_metrics = _fresh_metrics(model)

    def step(carry, batch):
        tv, ntv, ov = carry
        logs, (tv, ntv, ov, _) = model.train_step((tv, ntv, ov, fresh_metrics), batch)
        return (tv, ntv, ov), (logs["loss"], logs["accuracy"])

    def run(tv, ntv, ov, xs, ys, sws):
        # xs (N, 1, T, D): one batch of one sequence per update
        (tv, ntv, ov), (loss, accuracy) = jax.lax.scan(step, (tv, ntv, ov), (xs, ys, sws))
        return tv, ntv, ov, loss, accuracy

    return run


def _cached(model, key, make):
    """Jitted programs live on the model: one compile per architecture (and per input shape)."""
    cache = program_cache(model, "jax")
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _per_update(xs, ys, sample_weight):
    """(N, T, D) -> (N, 1, T, D): each update sees a batch of one sequence."""
    sws = None if sample_weight is None else sample_weight[:, None]
    return xs[:, None], ys[:, None], sws


def train_fast(model, xs, ys, sample_weight=None) -> dict[str, np.ndarray]:
    """All N updates in one compiled scan; the model's variables (weights, optimizer) are updated.

    Takes data already checked by ``training_core.prepare`` (``training.train_stream`` calls it).
    """
    run = _cached(model, "scan", lambda: jax.jit(_scan_program(model)))
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in model.optimizer.variables]
    tv, ntv, ov, loss, accuracy = run(tv, ntv, ov, *_per_update(xs, ys, sample_weight))
    for variables, values in ((model.trainable_variables, tv), (model.non_trainable_variables, ntv),
                              (model.optimizer.variables, ov)):
        for variable, value in zip(variables, values):
            variable.assign(value)
    return {"loss": np.asarray(loss, np.float32), "accuracy": np.asarray(accuracy, np.float32)}


def _trainable_order(model) -> list[int]:
    """Index into ``get_weights()`` of each trainable variable (the models here train every weight)."""
    position = {id(v): k for k, v in enumerate(model.weights)}
    order = [position[id(v)] for v in model.trainable_variables]
    if len(order) != len(model.weights):
        raise ValueError("train_many needs a model whose weights are all trainable")
    return order


def train_many(model, initial_weights, xs, ys, sample_weight=None, chunk_updates: int = 250):
    """S seeds trained together (``jax.vmap`` over the scan); the model itself is left unchanged.

    initial_weights: S lists in ``get_weights()`` order; xs (S, N, T, D), ys (S, N, T, 1),
    sample_weight (S, N, T) or None. Every copy starts from the model's optimizer
    state (fresh for a fresh model). Returns ``(logs, final_weights)``: logs
    ``loss`` and ``accuracy`` (S, N); final_weights S lists in ``get_weights()`` order.
    The updates run in chunks of ``chunk_updates`` (the state carried across), so
    that streams of 250 and of 1,000 updates share one compiled program.
    """
    if isinstance(chunk_updates, bool) or not isinstance(chunk_updates, (int, np.integer)) or chunk_updates < 1:
        raise ValueError(f"chunk_updates must be a positive integer, got {chunk_updates!r}")
    ensure_compiled(model)
    xs, ys = as_float32_data("xs", xs), as_float32_data("ys", ys)
    if xs.ndim != 4 or ys.ndim != 4:
        raise ValueError(f"xs and ys must have shape (seeds, updates, T, D) and (seeds, updates, T, 1); "
                         f"got xs {xs.shape} and ys {ys.shape}")
    if not isinstance(initial_weights, (list, tuple)) or len(initial_weights) != xs.shape[0]:
        got = f"{len(initial_weights)} entries" if isinstance(initial_weights, (list, tuple)) else type(initial_weights).__name__
        raise ValueError(f"initial_weights must be a list of {xs.shape[0]} weight lists (one a seed of xs {xs.shape}), got {got}")
    if sample_weight is not None:
        sample_weight = as_float32_data("sample_weight", sample_weight)
        if sample_weight.shape != xs.shape[:3]:
            raise ValueError(f"sample_weight must have shape {xs.shape[:3]} (seeds, updates, timesteps), "
                             f"got {sample_weight.shape}")
    for s in range(xs.shape[0]):  # validate every stream as train_stream would, naming the seed
        try:
            check_stream(model, xs[s], ys[s], None if sample_weight is None else sample_weight[s])
        except ValueError as exc:
            raise ValueError(f"seed {s}: {exc}") from None
    shapes = [tuple(w.shape) for w in model.weights]
    checked = []
    for s, weights in enumerate(initial_weights):
        if not isinstance(weights, (list, tuple)) or len(weights) != len(shapes):
            raise ValueError(f"initial_weights[{s}] must be a list of the model's {len(shapes)} arrays "
                             f"(get_weights() order), got {type(weights).__name__}"
                             + (f" of {len(weights)}" if isinstance(weights, (list, tuple)) else ""))
        arrays = [as_float32_data(f"initial_weights[{s}][{k}]", w) for k, w in enumerate(weights)]
        for k, (w, shape) in enumerate(zip(arrays, shapes)):
            if w.shape != shape:
                raise ValueError(f"initial_weights[{s}][{k}] must have shape {shape}, got {w.shape}")
        checked.append(arrays)
    initial_weights = checked
    build_training_state(model, xs[0], ys[0], None if sample_weight is None else sample_weight[0])
    check_reports_accuracy(model)
    order = _trainable_order(model)
    tv = [np.stack([np.asarray(w[k], np.float32) for w in initial_weights]) for k in order]  # each (S, ...)
    # Non-trainable state (a seed generator's counter, say) and optimizer state: one copy a seed.
    ntv = [np.broadcast_to(np.asarray(v.value), (xs.shape[0],) + tuple(v.shape)) for v in model.non_trainable_variables]
    ov = [np.broadcast_to(np.asarray(v.value), (xs.shape[0],) + tuple(v.shape)) for v in model.optimizer.variables]
    sws = None if sample_weight is None else sample_weight[:, :, None]
    run = _cached(model, "vmap_scan", lambda: jax.jit(jax.vmap(_scan_program(model))))
    xs, ys = xs[:, :, None], ys[:, :, None]  # (S, N, 1, T, D): a batch of one sequence per update
    n = xs.shape[1]
    chunk = min(n, chunk_updates)
    losses, accuracies = [], []
    for start in range(0, n, chunk):  # equal chunks reuse one compiled program, whatever N
        part = slice(start, start + chunk)
        tv, ntv, ov, loss, accuracy = run(tv, ntv, ov, xs[:, part], ys[:, part], None if sws is None else sws[:, part])
        losses.append(np.asarray(loss))
        accuracies.append(np.asarray(accuracy))
    loss, accuracy = np.concatenate(losses, axis=1), np.concatenate(accuracies, axis=1)
    tv = [np.asarray(t) for t in tv]
    final = []
    for s in range(xs.shape[0]):
        weights = [None] * len(order)
        for k, t in zip(order, tv):
            weights[k] = t[s]
        final.append(weights)
    return {"loss": np.asarray(loss, np.float32), "accuracy": np.asarray(accuracy, np.float32)}, final


def predict_many(model, weights, x) -> np.ndarray:
    """Probabilities (S, M, T, 1) of S weight sets on their own inputs x (S, M, T, D), one program."""
    order = _trainable_order(model)
    tv = [np.stack([np.asarray(w[k], np.float32) for w in weights]) for k in order]
    ntv = [v.value for v in model.non_trainable_variables]

    def predict(tv, x):
        y, _ = model.stateless_call(tv, ntv, x, training=False)
        return y

    run = _cached(model, "vmap_predict", lambda: jax.jit(jax.vmap(predict)))
    return np.asarray(run(tv, as_float32_data("x", x)))
