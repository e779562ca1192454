"""What every training loop shares: the checks that run before the first update, and the training state.

``training.train_stream`` dispatches to one loop a backend (``training_jax``,
``training_tensorflow``, ``training_torch``) or to the data-parallel loop
(``distributed``); each of them imports this module and nothing else of the
training code, so the imports point one way:

    training -> training_{jax,tensorflow,torch}, distributed -> training_core -> keras_compat

Everything that can be foreseen is checked here before any update, so that a
failure never leaves a model half-trained: the data (shape, kind, finite,
inside float32), the compile settings (a loss, the ``accuracy`` metric the
loops report).
"""
from __future__ import annotations

import numpy as np

from keras_impl.keras_compat import symbolic_build
from reference._checks import as_float64

MODES = ("fast", "faithful")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def ensure_compiled(model) -> None:
    """Compile ``model`` as the tutorial did, unless it is compiled already."""
    if getattr(model, "compiled", False) and model.optimizer is not None:
        return
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])


def as_float32_data(name: str, value) -> np.ndarray:
    """``value`` as float32, refused by name unless it holds finite real numbers that float32 can hold.

    Bool, complex, object and string arrays are a TypeError; NaN, infinities and
    values beyond float32's range (which would become infinities) a ValueError
    naming the index of the first one.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor on any device, without importing torch
        value = value.detach().cpu().numpy()
    array = as_float64(name, value)
    too_big = np.abs(array) > FLOAT32_MAX
    if too_big.any():
        index = tuple(int(i) for i in np.argwhere(too_big)[0])
        raise ValueError(f"{name} must fit in float32 (|value| <= {FLOAT32_MAX:.4g}), found {float(array[index])!r} "
                         f"at index {index}")
    return array.astype(np.float32)


def _first_outside(name: str, array: np.ndarray, low: float, high: float, what: str) -> None:
    outside = (array < low) | (array > high)
    if outside.any():
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"{name} must hold {what} in [{low:g}, {high:g}], found {float(array[index])!r} at index {index}")


def check_stream(model, xs, ys, sample_weight=None):
    """xs (N, T, D), ys (N, T, 1) labels in [0, 1], sample_weight (N, T) >= 0 or None: float32, checked.

    Raises TypeError or ValueError naming the argument (and the first bad value's
    index) before anything is trained.
    """
    xs = as_float32_data("xs", xs)
    ys = as_float32_data("ys", ys)
    if xs.ndim != 3:
        raise ValueError(f"xs must have shape (updates, timesteps, features), got {xs.shape}")
    expected = tuple(model.input_shape[1:])
    if tuple(xs.shape[1:]) != expected:
        raise ValueError(f"xs must have shape (updates, {expected[0]}, {expected[1]}) for this model, got {xs.shape}")
    if ys.shape != xs.shape[:2] + (1,):
        raise ValueError(f"ys must have shape {xs.shape[:2] + (1,)} (one label a step), got {ys.shape}")
    if xs.shape[0] < 1:
        raise ValueError("xs must hold at least one sequence, got 0")
    _first_outside("ys", ys, 0.0, 1.0, "labels")  # binary cross-entropy's labels
    if sample_weight is not None:
        sample_weight = as_float32_data("sample_weight", sample_weight)
        if sample_weight.shape != xs.shape[:2]:
            raise ValueError(f"sample_weight must have shape {xs.shape[:2]} (updates, timesteps), got {sample_weight.shape}")
        _first_outside("sample_weight", sample_weight, 0.0, FLOAT32_MAX, "weights")
    return xs, ys, sample_weight


def build_training_state(model, xs, ys, sample_weight) -> None:
    """Create the variables ``fit`` would create (layers, optimizer, loss and metric trackers); trains nothing."""
    sw = None if sample_weight is None else sample_weight[:1]
    symbolic_build(model, data_batch=(xs[:1], ys[:1], sw))  # what fit calls; builds metrics too
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def check_reports_accuracy(model) -> None:
    """The loops log ``loss`` and ``accuracy`` every update: refuse a model compiled without them.

    Call after ``build_training_state`` (the metrics are built then) and before
    the first update, so that a model compiled with other metrics is refused
    untouched instead of failing after its weights have moved.
    """
    if getattr(model, "loss", None) is None:
        raise ValueError("model must be compiled with a loss (the tutorial's: loss='binary_crossentropy')")
    names = set(model.get_metrics_result())
    if "accuracy" not in names:
        raise ValueError("model must be compiled with metrics=['accuracy'] (train_stream logs the accuracy of every "
                         f"update); its metrics are {sorted(names)}")


def prepare(model, xs, ys, sample_weight=None):
    """Everything before the first update: compile if needed, check the data, build the state, check the metrics."""
    ensure_compiled(model)
    xs, ys, sample_weight = check_stream(model, xs, ys, sample_weight)
    build_training_state(model, xs, ys, sample_weight)
    check_reports_accuracy(model)
    return xs, ys, sample_weight
