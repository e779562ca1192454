"""One Keras training step of the benchmark model, and which kernel path it actually ran.

The model is ``keras_impl.build_model(ModelSpec(T, D, U), use_cudnn=...)``:
Bidirectional(LSTM(U, return_sequences=True), "concat") -> TimeDistributed(Dense(1, sigmoid)),
compiled with Adam and binary cross-entropy, Keras's default ``jit_compile``
("auto": XLA on JAX; eager on torch; on TensorFlow XLA only when a GPU is present).
One step is ``model.train_on_batch(x, y)`` on inputs already on the device: the
step a Keras user runs, Python dispatch included; its loss comes back to the
host, which also synchronizes the device.

Which path ran: Keras tries ``backend.bidirectional_lstm`` (one fused cuDNN
call for both directions, JAX and torch on a GPU), then ``backend.lstm``
(cuDNN for one direction), each raising NotImplementedError where it cannot,
and falls back to its generic step loop. ``keras_impl.keras_compat.KernelProbe``
wraps those backend functions (private Keras API, checked against the pinned
Keras: a renamed target raises rather than reporting "generic") and counts the
calls that returned. On the torch backend ``backend.lstm`` also returns on the
CPU: it runs its own loop (``_fallback_lstm``), named ``torch-fallback-loop``.
"""
from __future__ import annotations

import contextlib
import gc

import numpy as np

from benchmarks.cases import Case
from benchmarks.step import Step


def context() -> dict:
    from keras_impl.backend import backend_info
    info = backend_info()
    return {k: info.get(k) for k in ("keras", "jax", "torch", "numpy", "python")} | {
        "tensorflow": info.get("tensorflow") or info.get("tensorflow-cpu")}


def cleanup() -> None:
    import keras
    keras.backend.clear_session()
    gc.collect()
    if keras.backend.backend() == "torch":
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def build(case: Case) -> Step:
    import keras

    from keras_impl.keras_compat import KernelProbe
    from keras_impl.models import build_model
    from reference import ModelSpec

    if keras.backend.backend() != case.framework:
        raise RuntimeError(f"this process runs Keras on {keras.backend.backend()!r}, the case asks for {case.framework!r}")
    spec = ModelSpec(timesteps=case.timesteps, features=case.features, units=case.units)
    use_cudnn = {"auto": "auto", "generic": False}[case.path]
    probe = KernelProbe()
    # Data-parallel cases keep the distribution in force while they train, not only while they build.
    scope = contextlib.nullcontext()
    rows, lost = slice(None), contextlib.nullcontext
    if case.n_devices > 1:
        from keras_impl.distributed import check_batch_size, data_parallel, peer_loss_reported, process_rows
        distribution = data_parallel(n_devices=case.n_devices)
        check_batch_size(case.batch, distribution)
        scope = distribution.scope()
        # Across processes (keras_impl/multiprocess.py) each feeds its own devices' rows of the batch.
        rows, lost = process_rows(distribution, case.batch), lambda: peer_loss_reported(f"a step of {case.key}")
    scope.__enter__()
    try:
        model = build_model(spec, seed=0, use_cudnn=use_cudnn)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy")
    except BaseException:
        scope.__exit__(None, None, None)
        probe.close()
        raise
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.random((case.batch, case.timesteps, case.features), dtype=np.float32)[rows])
    y = keras.ops.convert_to_tensor((rng.random((case.batch, case.timesteps, 1)) < 0.5).astype(np.float32)[rows])

    def run():
        with lost():
            return model.train_on_batch(x, y)

    def describe() -> dict:
        return {"kernel": probe.kernel(), "jit_compile": bool(model.jit_compile), "step_api": "train_on_batch",
                "n_devices": case.n_devices}

    def close() -> None:
        probe.close()
        scope.__exit__(None, None, None)

    return Step(run=run, sync=lambda out: None, describe=describe, close=close)
