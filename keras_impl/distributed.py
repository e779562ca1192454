"""Data-parallel training on the JAX backend through ``keras.distribution.DataParallel``.

Every local device holds a full copy of the weights and takes ``B / n`` of each
batch; Keras (through XLA's SPMD partitioner) averages the gradients across
devices, so one step over n devices equals one step over the whole batch on one
device, up to float32 rounding of the sums:

    g = (1/B) * sum_{k=1..n} sum_{b in shard k} dL_b/dw        (the same mean as on one device)

Use it around building, compiling and training a model:

    with data_parallel().scope():
        model = build_model(spec); model.compile(...); model.fit(...)

``train_stream(model, xs, ys, distribution=data_parallel())`` trains on the
tutorial's stream this way: n consecutive sequences an update, one a device
(``train_stream_data_parallel``). The batch size must be a multiple of the
number of devices. Across processes (``keras_impl.multiprocess.initialize``
first), the devices are every process's, each process feeds its own rows of
every batch (``process_rows``), and a process that dies makes the others raise
``PeerLostError``. Only the JAX backend is supported here (Keras 3.15 implements
``keras.distribution`` for JAX; TensorFlow has it experimentally, torch not at all).
"""
from __future__ import annotations

from keras_impl.training_core import check_stream, ensure_compiled


def local_devices(device_type: str | None = None) -> list[str]:
    """Keras names of this host's devices (``"cpu:0"``, ``"gpu:1"``, ...) of the default (or given) type."""
    import keras
    return list(keras.distribution.list_devices(device_type))


def data_parallel(n_devices: int | None = None, device_type: str | None = None):
    """A ``keras.distribution.DataParallel`` over the first ``n_devices`` local devices (default: all of them)."""
    import keras
    if keras.backend.backend() != "jax":
        raise ValueError(f"data-parallel training needs the jax backend, got backend {keras.backend.backend()!r} "
                         "(set KERAS_BACKEND=jax)")
    devices = local_devices(device_type)
    if n_devices is None:
        n_devices = len(devices)
    if not isinstance(n_devices, int) or isinstance(n_devices, bool) or not 1 <= n_devices <= len(devices):
        raise ValueError(f"n_devices must be an int in [1, {len(devices)}] (local devices: {devices}), got {n_devices!r}")
    return keras.distribution.DataParallel(devices=devices[:n_devices])


def check_batch_size(batch_size: int, distribution) -> None:
    """Each device takes an equal share of a batch: ``batch_size`` must be a multiple of the device count."""
    n = distribution.num_model_replicas if distribution is not None else 1
    if batch_size % n:
        raise ValueError(f"batch_size must be a multiple of the {n} data-parallel devices, got {batch_size}")


def _check_model_placed(model, distribution) -> None:
    """The model's weights must live on every device of ``distribution`` (built inside its scope)."""
    want = distribution.num_model_replicas
    for v in model.weights:
        sharding = getattr(getattr(v, "value", None), "sharding", None)
        have = len(sharding.device_set) if sharding is not None else 1
        if have != want:
            raise ValueError(f"model weight {v.path!r} lives on {have} device(s), the distribution has {want}: "
                             "build the model inside `with distribution.scope():`")


def train_stream_data_parallel(model, xs, ys, distribution, *, sample_weight=None) -> dict:
    """The stream in updates of n consecutive sequences, one a device: logs of every update, each (N / n,).

    Update k takes sequences k*n .. k*n + n - 1 (n = the distribution's device count),
    one per device; the gradient is their mean, so an update equals one update of
    batch n on one device. The model must be built and compiled inside
    ``distribution.scope()``; N must be a multiple of n. Each update is one
    ``model.train_on_batch`` (metrics reset, as ``train_stream`` resets them).
    Across processes (``keras_impl.multiprocess``) every process passes the
    same stream and feeds only its own devices' sequences of each update
    (``process_rows``); a lost process is a ``PeerLostError``.
    """
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        raise ValueError(f"distribution needs the jax backend, got backend {keras.backend.backend()!r}")
    if not isinstance(distribution, keras.distribution.DataParallel):
        raise TypeError(f"distribution must be a keras.distribution.DataParallel, got {type(distribution).__name__}")
    n = distribution.num_model_replicas
    with distribution.scope():
        ensure_compiled(model)
    _check_model_placed(model, distribution)
    xs, ys, sample_weight = check_stream(model, xs, ys, sample_weight)
    if xs.shape[0] % n:
        raise ValueError(f"xs must hold a multiple of the {n} data-parallel devices' sequences, got {xs.shape[0]}")
    mine = process_rows(distribution, n)  # every row on one process; across processes, this one's share
    losses, accuracies = [], []
    with distribution.scope():
        for k in range(0, xs.shape[0], n):
            rows = slice(k + mine.start, k + mine.stop)
            sw = None if sample_weight is None else sample_weight[rows]
            with peer_loss_reported(f"update {k // n + 1}"):
                logs = model.train_on_batch(xs[rows], ys[rows], sample_weight=sw, return_dict=True)
            losses.append(logs["loss"])
            accuracies.append(logs.get("accuracy", np.nan))
    return {"loss": np.asarray(losses, np.float32), "accuracy": np.asarray(accuracies, np.float32)}


# ---------------------------------------------------------------- across processes (keras_impl/multiprocess.py)


class PeerLostError(RuntimeError):
    """A step that needs every process failed in a multi-process run: another process died or was cut off."""


def process_rows(distribution, batch_size: int) -> slice:
    """The rows of a global batch of ``batch_size`` that this process's devices hold (all of them in one process).

    Keras hands each process's rows to ``jax.make_array_from_process_local_data``, which places
    them on this process's devices in the order of the global batch; the devices of one process
    must therefore hold one contiguous block (true of ``DataParallel`` over ``jax.devices()``,
    which lists each process's devices together).
    """
    check_batch_size(batch_size, distribution)
    layout = distribution.get_data_layout((batch_size,)).backend_layout
    blocks = sorted({(index[0].start or 0, batch_size if index[0].stop is None else index[0].stop)
                     for index in layout.addressable_devices_indices_map((batch_size,)).values()})
    for (_, stop), (start, _) in zip(blocks, blocks[1:]):
        if stop != start:
            raise ValueError(f"this process's devices hold rows {blocks} of the batch, not one block: "
                             "list each process's devices together in the device mesh")
    return slice(blocks[0][0], blocks[-1][1])


class peer_loss_reported:
    """Turns the error of a cross-process step into a ``PeerLostError`` that says what most likely happened.

    JAX reports a dead peer as whatever the collective saw (``Gloo AllGather failed ... Connection
    reset by peer``, ``UNAVAILABLE: ... heartbeat timeout``); one process alone runs no collective,
    so there an error passes unchanged.
    """

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, PeerLostError):
            return False
        from keras_impl.multiprocess import is_multiprocess
        if not is_multiprocess():
            return False
        import jax
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise PeerLostError(f"process {jax.process_index()} of {jax.process_count()}: {self.what} failed in a step "
                            "that needs every process; another process has most likely died or lost its connection "
                            f"({type(exc).__name__}: {first})") from exc


def local_weights(model) -> list:
    """The model's weights as NumPy arrays, read from this process's own copy (replicated weights are
    not all addressable from one process, so ``model.get_weights()`` cannot fetch them there)."""
    import numpy as np
    out = []
    for v in model.weights:
        value = v.value
        shards = getattr(value, "addressable_shards", None)
        out.append(np.asarray(shards[0].data if shards else value))
    return out
