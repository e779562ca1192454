"""For a source backend and a format, the routes to try, in order: the source backend's own, then a reload.

A route is one exporter run on one Keras backend. A ``.keras`` file is
backend-neutral (the same weights load on every backend: docs/parity.md,
"a .keras file saved on one backend, loaded on each other", 6e-8), so where the
source backend has no working exporter for a format, the file is reloaded on
another backend and exported there: a JAX model reaches ONNX through TensorFlow.
The routes of each backend are listed in the order they are tried; the
exporters themselves are in exporters.py (``METHODS`` names them).

Nothing here imports Keras: the parent process (``bilstm export``) plans with
it, then runs each route in a worker whose ``KERAS_BACKEND`` is the route's.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass

from keras_impl.backend import BACKENDS

from .formats import FORMATS

# What each method is; exporters.py implements one function per method.
# Keras's ONNX exporter is already the field's converter on each backend (tf2onnx on TensorFlow,
# torch.onnx on torch, jax2onnx on JAX), and its format="torch" is torch.export.
METHODS = {
    "keras": "Keras's exporter, model.export(format=...)",
    "jax_export": "jax.export of the model's call, the batch a symbolic dimension",
    "native": "bilstm-lab's own ONNX writer, from the layer list (native_onnx.py); OpenVINO reads that ONNX",
}

# The formats the native writer reaches: ONNX itself, and OpenVINO through its ONNX frontend. Its route runs
# on the source backend (the worker reads the layer list there) and comes after every upstream route.
NATIVE_FORMATS = ("onnx", "openvino")
ROUTE_CHOICES = ("auto", "upstream", "native")  # --route: every route in order, the upstream ones, the native one

# format -> backend -> methods on that backend, in the order tried (an empty list: no exporter there).
ON_BACKEND = {
    "onnx": {"tensorflow": ["keras"], "torch": ["keras"], "jax": ["keras"]},
    "tf_saved_model": {"tensorflow": ["keras"], "jax": ["keras"], "torch": ["keras"]},
    "litert": {"tensorflow": ["keras"], "torch": ["keras"], "jax": ["keras"]},
    "openvino": {"torch": ["keras"], "tensorflow": ["keras"], "jax": ["keras"]},
    "torch_export": {"torch": ["keras"], "tensorflow": [], "jax": []},
    "jax_export": {"jax": ["jax_export"], "tensorflow": [], "torch": []},
}

# format -> the backends to reload on when the source backend has no working route, best first
# (measured: docs/export.md, "How bilstm export works").
RELOAD_ORDER = {
    "onnx": ("tensorflow", "torch", "jax"),
    "tf_saved_model": ("tensorflow", "jax", "torch"),
    "litert": ("tensorflow", "torch", "jax"),
    "openvino": ("torch", "tensorflow", "jax"),
    "torch_export": ("torch",),
    "jax_export": ("jax",),
}

_IMPORT_NAME = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@dataclass(frozen=True)
class Route:
    fmt: str
    backend: str        # the Keras backend the exporter runs on
    method: str         # a key of METHODS
    reload: bool        # True: the .keras file reloaded on ``backend``, which is not the source backend
    static_timesteps: int | None = None   # the time axis fixed at this length in the signature (None: the model's)
    automatic: bool = False               # a static time axis nobody asked for: every free-time route failed

    def describe(self) -> str:
        if self.method == "native":
            return "native ONNX writer" + (" read by OpenVINO's ONNX frontend" if self.fmt == "openvino" else "")
        how = f"{self.method} on {self.backend}"
        how = f"reload the .keras on {self.backend}, then {self.method}" if self.reload else how
        return how + (f", time axis static at {self.static_timesteps}" if self.static_timesteps else "")


def routes(source_backend: str, fmt: str, *, installed=None) -> list[Route]:
    """Every route from ``source_backend`` to ``fmt``, in the order to try them.

    ``installed``: the backends that can run (default: those whose package imports here);
    a reload onto a backend that is not installed is left out.
    """
    if source_backend not in BACKENDS:
        raise ValueError(f"source_backend must be one of {', '.join(BACKENDS)}, got {source_backend!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if installed is None:
        installed = [b for b in BACKENDS if importlib.util.find_spec(_IMPORT_NAME[b]) is not None]
    planned = [Route(fmt, source_backend, m, False) for m in ON_BACKEND[fmt][source_backend]]
    for backend in RELOAD_ORDER[fmt]:
        if backend != source_backend and backend in installed:
            planned += [Route(fmt, backend, m, True) for m in ON_BACKEND[fmt][backend]]
    return planned


def planned_routes(source_backend: str, fmt: str, choice: str = "auto", *, installed=None,
                   static_timesteps: int | None = None, fallback_timesteps: int | None = None) -> list[Route]:
    """The routes ``bilstm export --route choice`` tries: "upstream" ``routes()``, "native" the native writer's
    alone, "auto" both, the native route after the upstream ones (an empty list where the choice reaches no route).

    static_timesteps: every upstream route exports a time axis fixed at that length (``--static-timesteps``);
    fallback_timesteps: the upstream routes are tried once more at that length, last of all (after the native
    writer, which keeps the time axis free), marked ``automatic`` (time_axis.choose gives both).
    """
    if choice not in ROUTE_CHOICES:
        raise ValueError(f"choice must be one of {', '.join(ROUTE_CHOICES)}, got {choice!r}")
    upstream = [] if choice == "native" else routes(source_backend, fmt, installed=installed)
    native = [Route(fmt, source_backend, "native", False)] if choice != "upstream" and fmt in NATIVE_FORMATS else []
    if static_timesteps is not None:
        return [dataclasses.replace(r, static_timesteps=static_timesteps) for r in upstream] + native
    fallback = [dataclasses.replace(r, static_timesteps=fallback_timesteps, automatic=True)
                for r in upstream] if fallback_timesteps is not None else []
    return upstream + native + fallback
