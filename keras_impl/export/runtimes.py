"""Run an exported artifact in its real runtime: the one a deployment would use, never Keras.

    run_artifact(fmt, path, inputs)       in this process (the runtime is imported here)
    run_in_subprocess(fmt, path, inputs)  in a fresh process (keras_impl/export/run_artifact.py) that cannot
                                          import Keras, with a timeout: a crash or a hang is an ArtifactRunError
    run_sets_in_subprocess(fmt, path, [inputs, ...])   the same for several input sets, one process

Both return (outputs, ran_precision): the artifact's outputs as float NumPy arrays, in the artifact's output
order, and the floating-point precision the runtime computed in ("float32"; "bfloat16" where OpenVINO's CPU
plugin chose it). `precision="float32"` asks the runtime for float32 where it would choose otherwise
(OpenVINO's INFERENCE_PRECISION_HINT); "native" takes the runtime's default, as a user who sets nothing gets;
"bfloat16" asks OpenVINO for bfloat16 (its hint; the other runtimes have no such setting and compute as the
artifact says).

Errors: RuntimeUnavailable when the runtime is not installed; ArtifactRunError (one line) when it cannot load
or run the artifact, StaticShapeError (an ArtifactRunError) when the artifact's input shape is fixed and the
inputs' is not that shape. A truncated or corrupt artifact can crash a runtime's C++ outright: only
run_in_subprocess turns that into an error instead of the end of the caller's process.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_impl.export.formats import (FORMATS, RUNTIME_PACKAGE, RUNTIME_PRECISIONS, ArtifactRunError,
                                      RuntimeUnavailable)
from keras_impl.lifeline import run_tethered

DEFAULT_TIMEOUT_S = 300.0

# The module each format's runner imports first; its absence means the runtime is not installed.
_RUNTIME_MODULE = {
    "onnx": "onnxruntime",
    "tf_saved_model": "tensorflow",
    "litert": "ai_edge_litert.interpreter",
    "openvino": "openvino",
    "torch_export": "torch",
    "jax_export": "jax",
}

# OpenVINO's element types, as NumPy-style precision names.
_OPENVINO_PRECISION = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


class StaticShapeError(ArtifactRunError):
    """The artifact fixes an input's shape (its batch, say) and the inputs have another."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type, then its message with whitespace collapsed, cut at 400 characters."""
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


def check_arguments(fmt, artifact_path, inputs, precision) -> tuple[Path, list[np.ndarray]]:
    """Every argument checked before a runtime is imported; returns the path and the inputs as arrays."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(artifact_path, (str, os.PathLike)):
        raise TypeError(f"artifact_path must be a path, got {type(artifact_path).__name__}")
    path = Path(artifact_path)
    if not path.exists():
        raise ValueError(f"artifact_path {str(path)!r} does not exist")
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty list of NumPy arrays, one per model input")
    arrays = []
    for k, x in enumerate(inputs):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"inputs[{k}] must be a NumPy array, got {type(x).__name__}")
        arrays.append(np.ascontiguousarray(x))
    if precision not in RUNTIME_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(RUNTIME_PRECISIONS)}, got {precision!r}")
    return path, arrays


def import_runtime(fmt: str):
    """The runtime module for `fmt`, or RuntimeUnavailable naming the package and the extra that installs it."""
    try:
        return importlib.import_module(_RUNTIME_MODULE[fmt])
    except ImportError as exc:
        raise RuntimeUnavailable(f"{fmt} needs {RUNTIME_PACKAGE[fmt]}, which is not installed "
                                 f"({one_line(exc)}): pip install .[export]") from None


def run_artifact(fmt: str, artifact_path, inputs, *, precision: str = "float32"):
    """Run the artifact at `artifact_path` on `inputs` in `fmt`'s runtime, in this process.

    Returns (outputs, ran_precision). See the module's docstring for the errors.
    """
    path, arrays = check_arguments(fmt, artifact_path, inputs, precision)
    runtime = import_runtime(fmt)
    try:
        outputs, ran_precision = _RUNNERS[fmt](runtime, path, arrays, precision)
    except ArtifactRunError:
        raise
    except Exception as exc:  # the runtime's own error, whatever its class: one line for the caller
        raise ArtifactRunError(f"{fmt} runtime could not run {path.name}: {one_line(exc)}") from exc
    return [np.asarray(y) for y in outputs], ran_precision


def _float_precision(outputs) -> str:
    return str(np.asarray(outputs[0]).dtype) if outputs else "float32"


def _run_onnx(ort, path, inputs, precision):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are not ours
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    _check_count(names, inputs)
    for port, x in zip(session.get_inputs(), inputs):  # an int is fixed; a name (dim_param) or None is free
        _check_shape(port.name, tuple(d if isinstance(d, int) else -1 for d in port.shape), x.shape)
    outputs = session.run(None, dict(zip(names, inputs)))
    return outputs, _float_precision(outputs)


def _run_tf_saved_model(tf, path, inputs, precision):
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ArtifactRunError(f"tf_saved_model {path.name} has no serving_default signature "
                               f"(signatures: {sorted(loaded.signatures) or 'none'})")
    specs = signature.structured_input_signature[1]
    names = sorted(specs)  # a signature's inputs are keyword-only; one input is the common case
    _check_count(names, inputs)
    for name, x in zip(names, inputs):
        _check_shape(name, tuple(specs[name].shape.as_list()), x.shape)
    result = signature(**{name: tf.constant(x) for name, x in zip(names, inputs)})
    outputs = [result[key].numpy() for key in sorted(result)]  # output_0, output_1, ...
    return outputs, _float_precision(outputs)


def _run_litert(interpreter_module, path, inputs, precision):
    interpreter = interpreter_module.Interpreter(model_path=str(path))
    details = interpreter.get_input_details()
    _check_count([d["name"] for d in details], inputs)
    for detail, x in zip(details, inputs):
        if tuple(detail["shape"]) != x.shape:
            # shape_signature holds -1 where the converter left a dimension dynamic; only those may be resized.
            _check_shape(detail["name"], tuple(int(d) for d in detail["shape_signature"]), x.shape)
            interpreter.resize_tensor_input(detail["index"], list(x.shape), strict=True)
    interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], x.astype(detail["dtype"], copy=False))
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]
    return outputs, _float_precision(outputs)


def _run_openvino(ov, path, inputs, precision):
    core = ov.Core()
    model = core.read_model(str(path))
    _check_count(model.inputs, inputs)
    for port, x in zip(model.inputs, inputs):
        shape = tuple(-1 if d.is_dynamic else d.get_length() for d in port.get_partial_shape())
        _check_shape(port.get_any_name(), shape, x.shape)
    config = {"float32": {"INFERENCE_PRECISION_HINT": "f32"}, "bfloat16": {"INFERENCE_PRECISION_HINT": "bf16"},
              "native": {}}[precision]
    compiled = core.compile_model(model, "CPU", config)
    # The precision the plugin actually computes in: bf16 by default on a CPU with AMX or AVX512-BF16, f32 on
    # one without (Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES") lists "BF16" where it has them).
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # an openvino.Type: its type name is "f32", "bf16"
    name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    ran_precision = _OPENVINO_PRECISION.get(name.lower(), name)
    result = compiled(inputs)
    outputs = [np.asarray(result[port]) for port in compiled.outputs]
    return outputs, ran_precision


def _run_torch_export(torch, path, inputs, precision):
    program = torch.export.load(str(path))
    user_inputs = set(program.graph_signature.user_inputs)
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs]
    _check_count(placeholders, inputs)
    for node, x in zip(placeholders, inputs):
        value = node.meta.get("val")
        if value is not None:  # a symbolic dimension (a SymInt) is dynamic; an int is fixed
            shape = tuple(d if isinstance(d, int) else -1 for d in value.shape)
            _check_shape(node.name, shape, x.shape)
    with torch.no_grad():
        result = program.module()(*[torch.from_numpy(x) for x in inputs])
    leaves = result if isinstance(result, (list, tuple)) else [result]
    outputs = [y.detach().cpu().numpy() for y in leaves]
    return outputs, _float_precision(outputs)


def _run_jax_export(jax, path, inputs, precision):
    import jax.export  # noqa: F401 (a submodule: `import jax` alone does not load it)

    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    _check_count(exported.in_avals, inputs)
    for k, (aval, x) in enumerate(zip(exported.in_avals, inputs)):
        shape = tuple(d if isinstance(d, int) else -1 for d in aval.shape)
        _check_shape(f"input {k}", shape, x.shape)
    with jax.default_device(jax.devices("cpu")[0]):
        result = exported.call(*inputs)
    outputs = [np.asarray(y) for y in jax.tree_util.tree_leaves(result)]
    return outputs, _float_precision(outputs)


def _check_count(names, inputs) -> None:
    if len(names) != len(inputs):
        raise ArtifactRunError(f"the artifact takes {len(names)} inputs, got {len(inputs)}")


def _check_shape(name, artifact_shape, input_shape) -> None:
    """The artifact's shape (-1 or None where dynamic) against the input's; StaticShapeError names the fixed
    dimensions that differ."""
    artifact_shape = tuple(-1 if d is None else int(d) for d in artifact_shape)
    if len(artifact_shape) != len(input_shape):
        raise ArtifactRunError(f"input {name!r}: the artifact takes rank {len(artifact_shape)}, got shape {input_shape}")
    fixed = [k for k, (a, x) in enumerate(zip(artifact_shape, input_shape)) if a >= 0 and a != x]
    if fixed:
        which = "the batch" if fixed == [0] else f"dimension(s) {fixed}"
        raise StaticShapeError(f"input {name!r}: the artifact's shape is static at {artifact_shape} "
                               f"({which} fixed at export), got {tuple(input_shape)}")


_RUNNERS = {
    "onnx": _run_onnx,
    "tf_saved_model": _run_tf_saved_model,
    "litert": _run_litert,
    "openvino": _run_openvino,
    "torch_export": _run_torch_export,
    "jax_export": _run_jax_export,
}


def run_in_subprocess(fmt: str, artifact_path, inputs, *, precision: str = "float32",
                      timeout_s: float = DEFAULT_TIMEOUT_S):
    """`run_artifact` in a fresh process that never imports Keras (python -m keras_impl.export.run_artifact).

    A crash (a signal), a hang past `timeout_s` or any runtime error comes back as ArtifactRunError in one line;
    a runtime that is not installed as RuntimeUnavailable.
    """
    outputs, ran_precision = run_sets_in_subprocess(fmt, artifact_path, [inputs], precision=precision,
                                                    timeout_s=timeout_s)
    return outputs[0], ran_precision


def run_sets_in_subprocess(fmt: str, artifact_path, input_sets, *, precision: str = "float32",
                           timeout_s: float = DEFAULT_TIMEOUT_S, interface: dict | None = None,
                           matched: dict | None = None):
    """Several input sets (each a list of arrays, one per model input) through one runtime process, so the
    runtime is imported once: ([outputs of each set], ran_precision). A set the runtime refused while others ran
    (an input shape fixed at export) is its error, one line, in place of its outputs; when none ran, the
    first error is raised. With ``interface`` ({"inputs", "outputs": [[name, rank]], "map": {keras: artifact}})
    the artifact's tensors are matched to the model's (keras_impl/export/interface.py): inputs fed and outputs
    given in the model's order, ``matched`` (a dict) told how; a mismatch raises InterfaceMismatch."""
    if isinstance(input_sets, np.ndarray) or not isinstance(input_sets, (list, tuple)) or not input_sets:
        raise TypeError("input_sets must be a non-empty list of input lists")
    checked = [check_arguments(fmt, artifact_path, inputs, precision) for inputs in input_sets]
    path = checked[0][0]
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    with tempfile.TemporaryDirectory(prefix="bilstm-run-artifact-") as work:
        inputs_file, outputs_file = Path(work) / "inputs.npz", Path(work) / "outputs.npz"
        np.savez(inputs_file, **pack_sets([arrays for _, arrays in checked]))
        command = [sys.executable, "-m", "keras_impl.export.run_artifact", fmt, str(path.resolve()),
                   str(inputs_file), str(outputs_file), "--precision", precision, "--parent-pid", str(os.getpid())]
        if interface is not None:
            (Path(work) / "interface.json").write_text(json.dumps(interface), encoding="utf-8")
            command += ["--interface", str(Path(work) / "interface.json")]
        # This copy of keras_impl first on the path, wherever the caller's working folder is.
        python_path = os.pathsep.join(p for p in (_project_root(), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, PYTHONPATH=python_path, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
                   PYTHONWARNINGS="ignore")
        try:
            code, stdout, stderr = run_tethered(command, env=env, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ArtifactRunError(f"{fmt} runtime did not finish {path.name} within {timeout_s:g} s") from None
        report = _last_json_line(stdout)
        if report is None:
            cause = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            tail = " ".join(stderr.split())[-300:]
            raise ArtifactRunError(f"{fmt} runtime crashed on {path.name} ({cause}){': ' + tail if tail else ''}")
        if "error" in report:
            from keras_impl.export.interface import InterfaceMismatch
            error_class = {"RuntimeUnavailable": RuntimeUnavailable, "StaticShapeError": StaticShapeError,
                           "InterfaceMismatch": InterfaceMismatch}.get(report["kind"], ArtifactRunError)
            raise error_class(report["error"])
        with np.load(outputs_file) as stored:
            ran = iter(unpack_sets(stored))
        errors = report.get("set_errors") or {}
        if matched is not None and report.get("matched"):
            matched.update(report["matched"])
        # A set the runtime refused alone comes back as its one line, in its place (export/verify.compare).
        outputs = [errors[str(k)] if str(k) in errors else next(ran) for k in range(len(input_sets))]
        return outputs, report["ran_precision"]


def pack_sets(sets) -> dict:
    """Lists of arrays as flat .npz keys: s{set}_{index}."""
    return {f"s{k}_{i}": np.asarray(a) for k, arrays in enumerate(sets) for i, a in enumerate(arrays)}


def unpack_sets(stored) -> list[list[np.ndarray]]:
    """`pack_sets`'s inverse."""
    sets: dict[int, dict[int, np.ndarray]] = {}
    for name in stored.files if hasattr(stored, "files") else stored:
        k, i = name[1:].split("_")
        sets.setdefault(int(k), {})[int(i)] = np.asarray(stored[name])
    return [[sets[k][i] for i in sorted(sets[k])] for k in sorted(sets)]


def _project_root() -> str:
    """The folder that holds the keras_impl package, so `python -m keras_impl...` finds this copy of it."""
    return str(Path(__file__).resolve().parents[2])


def _last_json_line(stdout: str):
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
