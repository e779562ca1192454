"""Training parity, both sides: the oracle's gradients and Adam trajectory against Keras's own.

Gradients: the same weights and inputs into ``reference.loss_grads_and_input_grad``
and into ``keras_impl.build_model(spec)``, whose gradient each backend takes with
its own autodiff, the way its trainer does:

    tensorflow  tf.GradientTape over model(x) and model.compute_loss
    jax         jax.value_and_grad over model.stateless_call and stateless_compute_loss
    torch       loss.backward() through model(x) and model.compute_loss

``compute_loss`` is the compiled ``binary_crossentropy``; with a Masking layer
the mask reaches it and the loss is the mean over valid steps.

Trajectory: the same initial weights and the same stream of tutorial sequences
(``reference.problem.make_sequences``), one ``model.fit`` call per sequence
(batch 1, one epoch: one Adam update) against ``reference.train``; the loss
``fit`` reports for every update and each weight's total update (final minus
initial weights) are compared. The update, not the weight: a relative error of
the weights themselves would hide an optimizer error under the weights' size.

Precision:
- float32: the oracle takes the float32-rounded weights and inputs, so only the
  backend's float32 arithmetic differs; errors are relative to each array's largest entry.
- float64: only TensorFlow computes in float64 throughout. On JAX (even with
  x64 on) and torch, Keras's type promotion maps float64 results to float32
  (``keras/src/backend/common/dtypes.py`` ``BIT64_TO_BIT32_DTYPE``), so the
  figure there is float32's, held to the measured ``*_FLOAT64_DEMOTED_ABS``
  bounds. TensorFlow's Adam rounds the betas through float32
  (``ops.cast(self.beta_1, variable.dtype)`` in ``keras/src/optimizers/adam.py``):
  the oracle's trajectory uses ``Adam(betas_through_float32=True)`` there.

``gradient_section`` and ``trajectory_section`` give the rows of the ``bilstm parity`` table.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

import reference
from reference.problem import make_sequences

from keras_impl.parity import rows
from keras_impl.parity.divergences import jax_float64_scan_crash
from keras_impl.parity.harness import floatx
from keras_impl.parity.tolerances import bound

KINDS = {
    "lstm": dict(direction="forward"),
    "lstm_go_backwards": dict(direction="backward"),
    **{f"bidirectional_{m}": dict(direction="bidirectional", merge_mode=m) for m in ("concat", "sum", "ave", "mul")},
}
# Gradient cases: every dimension its own size; one batch holds every mask pattern.
B, T, D, UNITS = 4, 7, 5, (3, 6)
MIXED_MASK = np.array([[1, 1, 1, 1, 1, 0, 0],    # right padding
                       [0, 0, 0, 1, 1, 1, 1],    # left padding
                       [1, 0, 1, 1, 0, 0, 1],    # holes
                       [0, 0, 0, 0, 0, 0, 0]],   # a fully masked row
                      dtype=bool)


KIND_LABELS = {"lstm": "forward", "lstm_go_backwards": "go_backwards"}  # KINDS' names for a cell other than LSTM


def cell_id(cell: str, options: tuple) -> str:
    """"" for the LSTM with Keras's defaults (ids as before), else ``gru-`` or ``gru[reset_after=False]-``..."""
    if cell == "lstm" and not options:
        return ""
    return cell + (f"[{','.join(f'{k}={v}' for k, v in options)}]" if options else "") + "-"


@dataclass(frozen=True)
class GradientCase:
    kind: str
    masked: bool      # a Masking(0.0) layer over zero-padded steps (the mask reaches the loss)
    layers: int = 1
    cell: str = "lstm"
    cell_options: tuple = ()  # (name, value) pairs: ModelSpec's activation, recurrent_activation, reset_after...

    @property
    def id(self) -> str:
        kind = self.kind if self.cell == "lstm" else KIND_LABELS.get(self.kind, self.kind)
        return (f"{cell_id(self.cell, self.cell_options)}{kind}-{'masking' if self.masked else 'no_mask'}-"
                f"{self.layers}layer{'s' if self.layers > 1 else ''}")

    def spec(self) -> reference.ModelSpec:
        return reference.ModelSpec(timesteps=T, features=D, units=UNITS[:self.layers], **KINDS[self.kind],
                                   mask_value=0.0 if self.masked else None, cell=self.cell,
                                   **dict(self.cell_options))


GRADIENT_CASES = [GradientCase(kind, masked) for kind, masked in itertools.product(KINDS, (False, True))] + [
    GradientCase("bidirectional_concat", True, 2), GradientCase("lstm_go_backwards", True, 2),
    GradientCase("bidirectional_mul", False, 2),
]


@dataclass(frozen=True)
class TrajectoryCase:
    kind: str = "bidirectional_concat"
    updates: int = 100
    units: int = 20
    timesteps: int = 10
    cell: str = "lstm"
    cell_options: tuple = ()

    @property
    def id(self) -> str:
        return f"{cell_id(self.cell, self.cell_options)}{self.kind}-{self.updates}updates"

    def spec(self) -> reference.ModelSpec:
        return reference.ModelSpec(timesteps=self.timesteps, features=1, units=self.units, **KINDS[self.kind],
                                   cell=self.cell, **dict(self.cell_options))


TUTORIAL_TRAJECTORY = TrajectoryCase()  # the tutorial's Bidirectional model, 100 sequences

# The other cells: every model kind, masked and not, with Keras's defaults; GRU's reset_after=False and
# hard_sigmoid; then the tutorial's Bidirectional model trained 100 updates with each cell.
CELL_GRADIENT_CASES = {
    cell: [GradientCase(kind, masked, cell=cell) for kind, masked in itertools.product(KINDS, (False, True))]
    + [GradientCase("bidirectional_concat", True, 2, cell=cell)]
    + extra
    for cell, extra in (
        ("gru", [GradientCase("bidirectional_mul", True, cell="gru", cell_options=(("reset_after", False),)),
                 GradientCase("lstm", True, cell="gru", cell_options=(("recurrent_activation", "hard_sigmoid"),
                                                                     ("activation", "relu")))]),
        ("simple_rnn", [GradientCase("bidirectional_sum", True, cell="simple_rnn",
                                     cell_options=(("activation", "relu"), ("use_bias", False)))]),
    )
}
CELL_TRAJECTORIES = {cell: TrajectoryCase(cell=cell) for cell in ("gru", "simple_rnn")}


# ---------------------------------------------------------------- Keras's precision

def rounded(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` as Keras stores it in ``dtype``, back in float64 for the oracle."""
    return np.asarray(array, dtype=dtype).astype(np.float64)


# ---------------------------------------------------------------- Keras's gradients

def keras_loss_and_grads(model, x: np.ndarray, y: np.ndarray):
    """``(loss, grads)`` of a compiled model, by its backend's autodiff; grads in ``get_weights()`` order."""
    import keras
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), [np.asarray(g) for g in grads]
    if backend == "jax":
        import jax
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        metrics = [v.value for v in model.metrics_variables]

        def loss_fn(trainable):
            y_pred, _ = model.stateless_call(trainable, non_trainable, x, training=True)
            loss, _ = model.stateless_compute_loss(trainable, non_trainable, metrics, x=x, y=y, y_pred=y_pred,
                                                   training=True)
            return loss

        loss, grads = jax.value_and_grad(loss_fn)(trainable)
        return float(loss), [np.asarray(g) for g in grads]
    if backend == "torch":
        model.zero_grad()
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
        loss.backward()
        return float(loss.detach()), [v.value.grad.detach().cpu().numpy() for v in model.trainable_variables]
    raise ValueError(f"no gradient path for backend {backend!r}; expected tensorflow, jax or torch")


def compiled_model(spec: reference.ModelSpec, weights):
    """``build_model(spec)`` with ``weights``, compiled as the tutorial (binary_crossentropy, Adam())."""
    import keras

    from keras_impl.models import build_model
    model = build_model(spec)
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam())
    model.set_weights(weights)
    return model


def gradient_parity(case: GradientCase, rng: np.random.Generator, dtype: str):
    """``(expected, actual)``: named loss and gradients of the oracle and of Keras in ``dtype``."""
    spec = case.spec()
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(B, T, D))  # (B, T, D)
    if case.masked:
        x = x * MIXED_MASK[..., None]  # zero padding for Masking(0.0)
    y = (rng.random((B, T, 1)) < 0.5).astype(np.float64)  # (B, T, 1)
    with floatx(dtype):
        model = compiled_model(spec, weights)
        loss, grads = keras_loss_and_grads(model, x.astype(dtype), y.astype(dtype))
    o_loss, o_grads = reference.loss_and_grads(spec, [rounded(w, dtype) for w in weights], rounded(x, dtype), y)
    names = [f"weights[{k}] {role}" for k, (role, _) in enumerate(spec.weight_roles())]
    expected = {"loss": np.array(o_loss), **dict(zip(names, o_grads))}
    actual = {"loss": np.array(loss), **dict(zip(names, grads))}
    return expected, actual


# ---------------------------------------------------------------- trajectories

def keras_fit_stream(model, xs: np.ndarray, ys: np.ndarray, *, use_fit: bool = False):
    """One update a sequence (batch 1). Returns (losses (N,), final weights).

    ``use_fit``: the tutorial's loop, one ``model.fit(epochs=1, batch_size=1)`` a
    sequence; otherwise ``train_on_batch``, which runs the same train function
    without ``fit``'s per-call data pipeline and callbacks (several times faster).
    Both report the loss of the batch before its update.
    """
    losses = np.empty(len(xs))
    for n in range(len(xs)):
        if use_fit:
            history = model.fit(xs[n:n + 1], ys[n:n + 1], batch_size=1, epochs=1, shuffle=False, verbose=0)
            losses[n] = history.history["loss"][0]
        else:
            losses[n] = model.train_on_batch(xs[n:n + 1], ys[n:n + 1])
    return losses, [np.asarray(w, dtype=np.float64) for w in model.get_weights()]


def trajectory_parity(case: TrajectoryCase, rng: np.random.Generator, dtype: str, *,
                      betas_through_float32: bool | None = None, use_fit: bool = False):
    """``(expected, actual)``: every update's loss and each weight's total update (final - initial),
    oracle and Keras in ``dtype``.

    ``betas_through_float32`` None follows the backend (True on TensorFlow, whose
    Adam rounds the betas through float32; False elsewhere).
    """
    import keras
    if betas_through_float32 is None:
        betas_through_float32 = keras.backend.backend() == "tensorflow"
    spec = case.spec()
    weights = reference.random_weights(spec, rng)
    xs, ys = make_sequences(case.updates, spec.timesteps, rng)  # (N, T, 1) each
    with floatx(dtype):
        model = compiled_model(spec, weights)
        losses, final = keras_fit_stream(model, xs.astype(dtype), ys.astype(dtype), use_fit=use_fit)
    o_final, o_losses = reference.train(spec, [rounded(w, dtype) for w in weights], rounded(xs, dtype), ys,
                                        optimizer=reference.Adam(betas_through_float32=betas_through_float32))
    start = [rounded(w, dtype) for w in weights]  # what both sides started from
    names = [f"weights[{k}] {role} update" for k, (role, _) in enumerate(spec.weight_roles())]
    return ({"losses": o_losses, **{n: w - w0 for n, w, w0 in zip(names, o_final, start)}},
            {"losses": losses, **{n: w - w0 for n, w, w0 in zip(names, final, start)}})


# ---------------------------------------------------------------- sections of the `bilstm parity` table

def gradient_section(options) -> list:
    """Loss and gradients, oracle against the backend's autodiff: every model kind, masked and not, stacked."""
    all_cases = GRADIENT_CASES if options.cell == "lstm" else CELL_GRADIENT_CASES[options.cell]
    cases = [c for c in all_cases if c.masked and c.layers == 1][:2] if options.quick else all_cases
    limit = bound("gradient", options.dtype, options.backend)
    return [rows.measure("gradients", case.id, limit, options,
                         lambda case=case: gradient_parity(case, rows.seeded_rng(f"gradients/{case.id}"), options.dtype),
                         predicted_crash=jax_float64_scan_crash(options.cell, masked=case.masked, backend=options.backend,
                                                                dtype=options.dtype, traced=True))
            for case in cases]


def trajectory_section(options) -> list:
    """The tutorial model trained on the same stream (100 updates; 20 with --quick) by Keras and by the oracle."""
    case = TrajectoryCase(cell=options.cell, updates=20 if options.quick else TUTORIAL_TRAJECTORY.updates)
    limit = bound("trajectory", options.dtype, options.backend)
    return [rows.measure("trajectory", case.id, limit, options,
                         lambda: trajectory_parity(case, rows.seeded_rng(f"trajectory/{case.id}"), options.dtype),
                         predicted_crash=jax_float64_scan_crash(options.cell, masked=False, backend=options.backend,
                                                                dtype=options.dtype, traced=True))]
