"""``verify(path, ...)``: a model file checked layer by layer against the oracle, for Python users and the command.

    >>> from keras_impl.verify import verify
    >>> report = verify("my_model.keras", batch=8, seed=1)   # on the Keras backend in use (KERAS_BACKEND)
    >>> print(report)                                        # the table bilstm verify prints
    >>> report.passed, report.failed_layers, report.to_json()

Every value is checked before Keras is imported where it can be (a ``UsageError``: the path, the batch,
timesteps, seed and dtype, an ``inputs`` file's header); a model that cannot be verified raises
``VerifyRefusal`` (a ``UsageError`` too) with the one line that says why.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_impl.options import UsageError

from .budget import DEFAULT_BATCH
from .errors import VerifyRefusal
from .report import VerifyReport

MAX_BATCH = 4096
MAX_TIMESTEPS = 100_000
DTYPES = ("float32", "float64")


def _check_count(name: str, value, limit: int) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit):
        raise UsageError(f"{name} must be a whole number between 1 and {limit}, got {value!r}")


def check_options(path, *, batch=None, timesteps=None, inputs=None, dtype="float32", seed=0):
    """``(model path, the user's input array or None)``: every option checked, before Keras is imported."""
    from .inputs import check_inputs_array, load_inputs_file
    from .load import check_model_path
    path = check_model_path(str(path))
    _check_count("batch", batch, MAX_BATCH)
    _check_count("timesteps", timesteps, MAX_TIMESTEPS)
    if dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 31:
        raise UsageError(f"seed must be a whole number from 0 to 2**31 - 1, got {seed!r}")
    if inputs is None:
        return path, None
    if batch is not None or timesteps is not None:
        raise UsageError("--inputs fixes the batch and the timesteps: leave out --batch and --timesteps")
    if isinstance(inputs, np.ndarray):
        return path, check_inputs_array(inputs)
    if not str(inputs).endswith(".npy") or not Path(inputs).is_file():
        raise UsageError(f"--inputs must be an existing .npy file, got {str(inputs)!r}")
    return path, load_inputs_file(inputs)


def verify(path, *, batch: int | None = None, timesteps: int | None = None, inputs=None, dtype: str = "float32",
           seed: int = 0, repro=None, float_model=None) -> VerifyReport:
    """The report for the model in ``path`` (.keras, .h5), on the Keras backend in use.

    ``batch`` (default 4) sequences of ``timesteps`` steps (where the model's input leaves it free; default 8)
    are drawn from ``seed``; or ``inputs`` (an array or a .npy path) is used as given. ``dtype`` is what Keras
    computes in. With ``repro`` (a folder), a reproducer of the first failing layer is written there when that
    layer is at fault on its own (``repro.py``). A model in reduced precision (a float16 or bfloat16 dtype
    policy) or quantized by Keras is verified in its own precision, each layer with the error of its weights and
    of its arithmetic (``precision.py``); ``float_model`` (a path) gives the float weights a quantized file no
    longer holds. Raises ``UsageError`` for a bad option, ``VerifyRefusal`` for a
    model that cannot be verified.
    """
    path, user_inputs = check_options(path, batch=batch, timesteps=timesteps, inputs=inputs, dtype=dtype, seed=seed)
    if repro is not None:
        from .repro import check_repro_folder
        repro = check_repro_folder(repro)
    if float_model is not None:
        from .load import check_model_path
        float_model = check_model_path(str(float_model))
    from .load import load_model, read_config, scan_config
    if user_inputs is not None:
        batch, timesteps = user_inputs.shape[0], user_inputs.shape[1]
    config = read_config(path)
    scan_config(config, batch or DEFAULT_BATCH, timesteps, dtype)  # sizes refused before any is built
    _check_precision_options(path, config, dtype, repro, float_model)
    import keras

    from keras_impl.backend import set_tf32
    set_tf32(keras.backend.backend(), False)  # float32 parity on Ampere/Hopper GPUs needs full float32 matmuls
    from .compare import as_float64_model
    from .describe import describe_model
    model, _, saved_by = load_model(path)
    described = describe_model(model)  # refuses, by name, before any float64 rebuild
    options = {"batch": batch or DEFAULT_BATCH, "timesteps": timesteps, "dtype": dtype, "seed": seed,
               "repro": None if repro is None else Path(repro)}
    from .precision import model_precision
    precisions = model_precision(described)
    if precisions is not None or float_model is not None:
        from .precision_report import precision_report
        return precision_report(model, described, precisions, path, saved_by, options, user_inputs, float_model)
    if dtype == "float64":
        with float64_keras():
            model = as_float64_model(model)
            return _report(model, describe_model(model), path, saved_by, options, user_inputs)
    return _report(model, described, path, saved_by, options, user_inputs)


def _check_precision_options(path, config: dict, dtype: str, repro, float_model) -> None:
    """Options that do not apply to a model in reduced precision or quantized (or only to one), refused from
    the file's config before Keras loads it."""
    from .load import reduced_precision
    found = reduced_precision(config)
    if found is None and float_model is not None:
        raise VerifyRefusal(f"--float-model is for a model in reduced precision or quantized; {path} computes in "
                            "float32")
    if found is not None and dtype == "float64":
        raise VerifyRefusal(f"{found}: the model is verified in its own precision, leave out --dtype float64")
    if found is not None and repro is not None:
        raise VerifyRefusal(f"{found}: --repro writes float32 reproducers, leave it out")


def float64_keras():
    """Keras computes in float64 for the duration (floatx, the dtype policy, JAX's x64 mode), restored after:
    the parity harness's one float64 context."""
    from keras_impl.parity.harness import floatx
    return floatx("float64")


def _report(model, described, path: Path, saved_by: str, options: dict, user_inputs) -> VerifyReport:
    from keras_impl.backend import backend_info
    from keras_impl.parity.tolerances import verify_bound

    from .compare import compare
    from .decisions import decisions
    from .diagnose import diagnose
    from .layers.activations import float32_constants_on_tensorflow
    from .inputs import check_user_inputs, draw_inputs
    dtype = options["dtype"]
    if user_inputs is not None:
        inputs, about = check_user_inputs(described, described.keras_layers, user_inputs)
    else:
        inputs, about = draw_inputs(described, described.keras_layers, options["batch"], options["timesteps"],
                                    options["seed"])
    if dtype == "float64":
        inputs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs]
    info = backend_info()
    b = verify_bound(dtype, info["backend"], float32_constants_on_tensorflow(described.graph))
    values = {}
    rows = compare(model, described, inputs, b, values)
    diagnosis = diagnose(described, rows, values)
    written = []
    if options["repro"] is not None and diagnosis and diagnosis["local"]["fault"] == "local":
        from .repro import write_repro
        written = [str(p) for p in write_repro(options["repro"], described, diagnosis, values)]
    return VerifyReport(file=str(path), saved_by=saved_by, backend=info["backend"], device=info["device"], dtype=dtype,
                        seed=None if user_inputs is not None else options["seed"], versions=info, inputs=about,
                        bound={"kind": "abs, scaled by max(1, max |oracle output|)", "value": b.value,
                               "cause": b.cause},
                        layers=rows, decisions=decisions(described.graph, values["oracle"], values["keras"]),
                        diagnosis=diagnosis, repro=written)


__all__ = ["verify", "VerifyReport", "VerifyRefusal", "check_options", "float64_keras"]
