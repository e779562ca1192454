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
and falls back to its generic step loop (``keras/src/layers/rnn/lstm.py``,
``LSTM.inner_loop``; ``bidirectional.py``, ``_can_attempt_fused_lstm``). The
probe below wraps those backend functions and counts the calls that returned.
On the torch backend ``backend.lstm`` also returns on the CPU: it runs its own
loop (``_fallback_lstm``), which the probe names ``torch-fallback-loop``.
"""
from __future__ import annotations

import contextlib
import gc

import numpy as np

from benchmarks.cases import Case
from benchmarks.runner import Step


# (module, function) -> what it means when a call of it returned.
PROBED = {
    ("keras.src.backend", "bidirectional_lstm"): "fused",  # both directions in one cuDNN call
    ("keras.src.backend", "lstm"): "backend-lstm",           # the backend's own LSTM (cuDNN; torch: see below)
    # The torch backend's lstm() also runs on the CPU: cuDNN on CUDA, else its own loop
    # with the input projection hoisted (keras/src/backend/torch/rnn.py, _fallback_lstm).
    ("keras.src.backend.torch.rnn", "_fallback_lstm"): "torch-fallback",
}


class KernelProbe:
    """Counts the calls of the functions in ``PROBED`` that returned, to name the kernel path that ran."""

    def __init__(self):
        import importlib

        import keras
        self.counts = dict.fromkeys(PROBED.values(), 0)
        for (module_name, name), label in PROBED.items():
            if module_name.startswith("keras.src.backend.") and module_name.split(".")[3] != keras.backend.backend():
                continue  # another backend's module: importing it would import that framework
            module = importlib.import_module(module_name)
            original = getattr(module, name, None)
            if original is None:
                continue
            original = getattr(original, "_bench_original", original)  # wrapped by an earlier case
            setattr(module, name, self._wrap(label, original))

    def _wrap(self, label, original):
        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)  # raises NotImplementedError where the fast path cannot run
            self.counts[label] += 1
            return out
        wrapped._bench_original = original
        return wrapped

    def kernel(self) -> str:
        """cudnn-fused-bidirectional | cudnn | torch-fallback-loop | generic (Keras's own RNN step loop)."""
        if self.counts["fused"]:
            return "cudnn-fused-bidirectional"
        if self.counts["torch-fallback"]:
            return "torch-fallback-loop"
        if self.counts["backend-lstm"]:
            return "cudnn"
        return "generic"


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

    from keras_impl.models import build_model
    from reference import ModelSpec

    if keras.backend.backend() != case.framework:
        raise RuntimeError(f"this process runs Keras on {keras.backend.backend()!r}, the case asks for {case.framework!r}")
    spec = ModelSpec(timesteps=case.timesteps, features=case.features, units=case.units)
    use_cudnn = {"auto": "auto", "generic": False}[case.path]
    probe = KernelProbe()
    # Data-parallel cases keep the distribution in force while they train, not only while they build.
    scope = contextlib.nullcontext()
    if case.n_devices > 1:
        from keras_impl.distributed import check_batch_size, data_parallel
        distribution = data_parallel(n_devices=case.n_devices)
        check_batch_size(case.batch, distribution)
        scope = distribution.scope()
    scope.__enter__()
    try:
        model = build_model(spec, seed=0, use_cudnn=use_cudnn)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy")
    except BaseException:
        scope.__exit__(None, None, None)
        raise
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.random((case.batch, case.timesteps, case.features), dtype=np.float32))
    y = keras.ops.convert_to_tensor((rng.random((case.batch, case.timesteps, 1)) < 0.5).astype(np.float32))

    def run():
        return model.train_on_batch(x, y)

    def describe() -> dict:
        return {"kernel": probe.kernel(), "jit_compile": bool(model.jit_compile), "step_api": "train_on_batch",
                "n_devices": case.n_devices}

    return Step(run=run, sync=lambda out: None, describe=describe, close=lambda: scope.__exit__(None, None, None))
