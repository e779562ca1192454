"""Which Keras backend runs, on what device, with which versions.

The backend is chosen as Keras chooses it, once, when Keras is first imported:
a non-empty ``KERAS_BACKEND``, else ``keras.json`` (``configured_backend``). ``select_backend`` sets it
before that import (the ``--backend`` option of ``bilstm``), and refuses,
rather than silently ignoring, a request that comes too late.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import sys

BACKENDS = ("tensorflow", "jax", "torch")
# The package a user installs for each backend (this project pins the CPU build of TensorFlow).
BACKEND_PACKAGES = {"tensorflow": "tensorflow-cpu", "jax": "jax", "torch": "torch==2.13.0"}
_IMPORT_NAMES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


# The distributions whose version names each backend in a header (the first installed one).
BACKEND_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jax",), "torch": ("torch",)}
PROJECT = "bilstm-lab"

# How this process's backend was chosen (``select_backend``): what a command's header line says after it.
_chosen_by: str | None = None


class BackendError(RuntimeError):
    """A backend that cannot be used here: unknown, not installed, or chosen too late."""


def keras_config_path() -> str:
    """Where Keras reads ``keras.json``: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when home is not writable).

    The same rule as ``keras/src/backend/config.py`` (Keras 3.15.1), which runs it at import.
    """
    if "KERAS_HOME" in os.environ:
        keras_dir = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        keras_dir = os.path.join(base, ".keras")
    return os.path.expanduser(os.path.join(keras_dir, "keras.json"))


def configured_backend() -> str:
    """The backend Keras would choose on import, by Keras's own rule (``keras/src/backend/config.py``):

    ``KERAS_BACKEND`` when it is set and not empty; else the ``"backend"`` of
    ``keras.json`` (a file that is not valid JSON counts as empty, as Keras reads
    it); else ``"tensorflow"``.
    """
    name = os.environ.get("KERAS_BACKEND", "")
    if name:
        return name
    path = keras_config_path()
    if not os.path.exists(path):
        return "tensorflow"
    try:
        with open(path) as f:
            config = json.load(f)
    except ValueError:
        return "tensorflow"
    except OSError as exc:
        raise BackendError(f"cannot read the Keras configuration {path}: {exc.strerror or exc}") from None
    if not isinstance(config, dict):
        raise BackendError(f"the Keras configuration {path} must hold a JSON object, got {type(config).__name__}")
    return config.get("backend", "tensorflow")


def select_backend(name: str | None) -> str:
    """Make ``name`` the Keras backend for this process (None: the one Keras would choose, ``configured_backend``)."""
    global _chosen_by
    origin = ""
    chosen_by = "--backend"
    if name is None:
        chosen_by = backend_origin()
        name = configured_backend()
        origin = " (from KERAS_BACKEND)" if os.environ.get("KERAS_BACKEND") else f" (from {keras_config_path()})"
    if not isinstance(name, str) or name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}{origin}; expected one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras
        if keras.backend.backend() != name:
            raise BackendError(f"Keras is already imported with backend {keras.backend.backend()!r}; "
                               f"set KERAS_BACKEND={name} before importing it (one backend per process)")
        _chosen_by = chosen_by
        return name
    check_installed(name)
    os.environ["KERAS_BACKEND"] = name
    _chosen_by = chosen_by
    return name


def backend_origin() -> str:
    """Where the backend Keras would choose comes from (``configured_backend``'s rule), in words for a header:
    ``KERAS_BACKEND``, the ``keras.json`` that names it, or Keras's own default."""
    if os.environ.get("KERAS_BACKEND"):
        return "KERAS_BACKEND"
    path = keras_config_path()
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        config = None
    if isinstance(config, dict) and "backend" in config:
        return path.replace(os.path.expanduser("~"), "~", 1) if path.startswith(os.path.expanduser("~")) else path
    return "Keras's default, KERAS_BACKEND unset"


def check_installed(name: str) -> None:
    if importlib.util.find_spec(_IMPORT_NAMES[name]) is None:
        raise BackendError(f"backend {name!r} is not installed: pip install {BACKEND_PACKAGES[name]} "
                           f"(or pip install -e '.[{name}]')")


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(_IMPORT_NAMES[b]) is not None]


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (``"keras"``, ``"jax"``...), None when it is not installed.

    Read from the package metadata: nothing is imported, so the benchmarks' stand-in and
    the raw-framework baselines can record versions without loading a framework.
    """
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def backend_version(backend: str) -> str | None:
    """The installed version of ``backend``'s package (``tensorflow`` or ``tensorflow-cpu`` for TensorFlow)."""
    for dist in BACKEND_DISTRIBUTIONS.get(backend, (backend,)):
        if (version := installed_version(dist)) is not None:
            return version
    return None


def version_line() -> str:
    """What ``bilstm --version`` prints: the project's version, Keras's, and each installed backend's (read from
    the package metadata: no framework is imported)."""
    backends = ", ".join(f"{b} {v}" for b in BACKENDS if (v := backend_version(b)) is not None)
    return (f"bilstm {installed_version(PROJECT) or 'unknown'} (bilstm-lab); keras {installed_version('keras') or 'not installed'}; "
            f"backends: {backends or 'none installed'}")


def header_line(command: str, *, backends, device: str, dtype: str, chosen_by: str | None = None) -> str:
    """The one line every ``bilstm`` command prints on standard error before its work (the format of
    ``bilstm verify``'s first line): backend(s) and how it was chosen, device, dtype, versions of Keras and the
    backend packages. Reads versions from the package metadata: imports nothing."""
    backends = [backends] if isinstance(backends, str) else list(backends)
    how = f" ({chosen_by})" if chosen_by else ""
    versions = [f"keras {installed_version('keras')}"] + [f"{b} {backend_version(b)}" for b in backends]
    return f"bilstm {command}: on {', '.join(backends)}{how}, device {device}, {dtype}, {', '.join(versions)}"


def print_header(command: str, **details) -> None:
    """``header_line`` to standard error (standard output stays the command's result: a table, or JSON with
    ``--json -``)."""
    print(header_line(command, **details), file=sys.stderr, flush=True)


def run_caption(info: dict) -> str:
    """What computed a figure or a report, in one line: 'keras 3.15.1 on jax 0.10.2, device cpu, float32'
    (``info`` as ``backend_info()`` gives it)."""
    backend = info["backend"]
    version = next((info[d] for d in BACKEND_DISTRIBUTIONS.get(backend, (backend,)) if info.get(d)), None)
    on = f"{backend} {version}" if version else backend
    return f"keras {info['keras']} on {on}, device {info['device']}, {info['floatx']}"


def print_keras_header(command: str, dtype: str | None = None) -> None:
    """The header of a command that runs Keras in this process: imports Keras (the backend must be chosen,
    ``select_backend``) and names the backend, how it was chosen, the device and ``dtype`` (default: floatx)."""
    import keras
    print_header(command, backends=keras.backend.backend(), device=device_name(),
                 dtype=dtype or keras.config.floatx(), chosen_by=_chosen_by)


def device_name() -> str:
    """The device Keras computes on: 'cpu' or the accelerator's name."""
    import keras
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        d = jax.devices()[0]
        return "cpu" if d.platform == "cpu" else f"{d.platform}:{d.device_kind}"
    if backend == "torch":
        import torch
        return f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        return f"gpu:{gpus[0].name}" if gpus else "cpu"
    return "cpu"


def backend_info() -> dict:
    """Backend, device, floatx and the versions that matter, as a JSON-ready dict."""
    import keras
    info = {
        "backend": keras.backend.backend(),
        "device": device_name(),
        "floatx": keras.config.floatx(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.node(),
    }
    for dist in ("keras", "numpy", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "torch"):
        version = installed_version(dist)
        if version is not None:
            info[dist] = version
    return info


def set_tf32(framework: str, on: bool) -> None:
    """The project's one TF32 switch: ask ``framework`` for TF32 matmuls and cuDNN RNNs on or off.

    Call it in the process that computes, before any computation. Off also sets
    ``NVIDIA_TF32_OVERRIDE=0`` (read by cuBLAS and cuDNN whatever a framework
    asks; only for libraries not yet loaded). Parity needs it off: on Ampere and
    Hopper GPUs TF32 rounds float32 matmuls to a 10-bit mantissa.
    """
    if framework not in BACKENDS:
        raise ValueError(f"framework must be one of {', '.join(BACKENDS)}; got {framework!r}")
    if not on:
        os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
    if framework == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on
    elif framework == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if on else "highest")
    else:
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(on)
