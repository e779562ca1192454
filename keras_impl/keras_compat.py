"""Every use of Keras's private API, in one place, checked against the Keras this project pins.

bilstm-lab relies on a few things Keras 3.15.1 does not promise to keep:

* ``Model._symbolic_build(data_batch=...)``: what ``fit`` calls to create the
  optimizer, loss and metric variables before the first step
  (``keras/src/trainers/trainer.py``). The fast training loops need those
  variables before they compile their own loop.
* Attributes of our own stored on a model (compiled programs keyed by
  shape): ``program_cache`` keeps them in one named dict on the model.
* The kernel-path probe of the benchmarks wraps backend functions by their
  module path (``keras.src.backend.lstm`` ...); see ``benchmarks/keras_step.py``.

``check_keras_version`` is called by each user of these; a Keras other than the
pinned one is refused with the version found, rather than silently misbehaving.
"""
from __future__ import annotations

PINNED_KERAS = "3.15.1"


class KerasCompatibilityError(RuntimeError):
    """The installed Keras lacks (or renamed) a private function this project relies on."""


def check_keras_version() -> str:
    """The installed Keras version; raises ``KerasCompatibilityError`` unless it is the pinned one."""
    import keras
    version = keras.version()
    if version != PINNED_KERAS:
        raise KerasCompatibilityError(
            f"bilstm-lab relies on private Keras {PINNED_KERAS} APIs (keras_impl/keras_compat.py); "
            f"found keras {version}: pip install keras=={PINNED_KERAS}")
    return version


def symbolic_build(model, data_batch) -> None:
    """Create every variable ``fit`` creates before its first step (layers, optimizer, loss and metrics)."""
    check_keras_version()
    build = getattr(model, "_symbolic_build", None)
    if build is None:
        raise KerasCompatibilityError("keras.Model._symbolic_build is gone: keras_impl/keras_compat.py needs updating")
    build(data_batch=data_batch)


def program_cache(model, name: str) -> dict:
    """A dict stored on ``model`` under one private attribute, for compiled programs keyed by shape."""
    caches = model.__dict__.setdefault("_bilstm_programs", {})
    return caches.setdefault(name, {})


# ---------------------------------------------------------------- the benchmark's kernel-path probe

# (module, function) -> what it means when a call of it returned. Keras tries
# ``backend.bidirectional_lstm`` (one fused cuDNN call for both directions), then
# ``backend.lstm`` (cuDNN for one direction), each raising NotImplementedError where it
# cannot, and falls back to its generic step loop (keras/src/layers/rnn/bidirectional.py,
# ``_can_attempt_fused_lstm``; keras/src/layers/rnn/lstm.py, ``LSTM.inner_loop``). Every
# backend of Keras 3.15.1 defines both functions (keras/src/backend/<name>/rnn.py).
# The torch backend's ``lstm`` also returns on the CPU: cuDNN on CUDA, else its own loop
# with the input projection hoisted (keras/src/backend/torch/rnn.py, ``_fallback_lstm``).
KERNEL_PROBE_TARGETS = {
    ("keras.src.backend", "bidirectional_lstm"): "fused",
    ("keras.src.backend", "lstm"): "backend-lstm",
    ("keras.src.backend.torch.rnn", "_fallback_lstm"): "torch-fallback",
}


class KernelProbe:
    """Names the kernel path a Keras LSTM ran, by counting the calls of ``KERNEL_PROBE_TARGETS`` that returned.

    Installing it wraps those functions in their modules (Keras looks them up at call
    time); ``close()`` (or leaving a ``with`` block) puts the originals back. A target
    that is missing or no longer a function raises ``KerasCompatibilityError``: a probe
    that silently wrapped nothing would report every run as ``generic``. Targets in
    another backend's module are left alone (importing it would import that framework).
    """

    def __init__(self, targets: dict | None = None):
        import importlib

        import keras
        check_keras_version()
        self.targets = dict(KERNEL_PROBE_TARGETS if targets is None else targets)
        self.counts = dict.fromkeys(self.targets.values(), 0)
        self._installed: list[tuple[object, str, object]] = []
        backend = keras.backend.backend()
        try:
            for (module_name, name), label in self.targets.items():
                parts = module_name.split(".")
                if module_name.startswith("keras.src.backend.") and parts[3] != backend:
                    continue
                try:
                    module = importlib.import_module(module_name)
                except ImportError as exc:
                    raise KerasCompatibilityError(
                        f"kernel probe: module {module_name} is gone in keras {keras.version()} ({exc}); "
                        "keras_impl/keras_compat.py KERNEL_PROBE_TARGETS needs updating") from exc
                original = getattr(module, name, None)
                if not callable(original):
                    raise KerasCompatibilityError(
                        f"kernel probe: {module_name}.{name} is gone or not a function in keras {keras.version()}; "
                        "keras_impl/keras_compat.py KERNEL_PROBE_TARGETS needs updating")
                original = getattr(original, "_bilstm_probe_original", original)  # a probe left installed
                setattr(module, name, self._wrap(label, original))
                self._installed.append((module, name, original))
        except BaseException:
            self.close()
            raise

    def _wrap(self, label, original):
        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)  # raises NotImplementedError where the fast path cannot run
            self.counts[label] += 1
            return out
        wrapped._bilstm_probe_original = original
        return wrapped

    def close(self) -> None:
        while self._installed:
            module, name, original = self._installed.pop()
            setattr(module, name, original)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def kernel(self) -> str:
        """cudnn-fused-bidirectional | cudnn | torch-fallback-loop | generic (Keras's own RNN step loop)."""
        if self.counts.get("fused"):
            return "cudnn-fused-bidirectional"
        if self.counts.get("torch-fallback"):
            return "torch-fallback-loop"
        if self.counts.get("backend-lstm"):
            return "cudnn"
        return "generic"
