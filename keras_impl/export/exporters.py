"""The export itself, inside a Keras process (``KERAS_BACKEND`` fixed): one model, one format, one method.

``export_model(model, fmt, artifact_path, dynamic_batch=..., method=..., static_timesteps=...)`` writes the
artifact and returns ``{"route", "dynamic_batch", "static_timesteps", "notes"}``; a failure raises
``ExportError`` whose message is the upstream error in one line, then its cause where known, with the upstream
issue's link in ``upstream``. ``static_timesteps`` fixes a free time axis at that length in the exported
signature, for every upstream method (time_axis.py says when bilstm export asks for it).

Methods (routes.METHODS):
    keras        ``model.export(format=...)``, after one call of the model (Keras's ONNX exporter refuses a
                 model that was only ``predict``ed: "The model provided has never called", keras/src/export/
                 onnx.py L77-79). ``torch_export`` goes through ``format="torch"`` with an explicit
                 ``dynamic_shapes`` batch: without it Keras traces a batch of 1 and freezes it. A masked model
                 cannot keep it (BATCH_LOOP_CAUSE): exported with a static batch, and the note says so.
                 LiteRT on TensorFlow: a dynamic batch lowers the LSTM loop to TensorList ops that only the
                 Flex delegate runs (Keras turns on SELECT_TF_OPS, keras/src/export/litert.py L159-162), and
                 ai-edge-litert has no Flex delegate; such an artifact is re-exported with a static batch of
                 ``STATIC_BATCH``, which lowers to builtins, and the note says so.
    jax_export   ``jax.export`` of the model's call with the weights as constants, the batch a symbolic
                 dimension; saved as ``Exported.serialize()`` bytes.
    native       bilstm-lab's own ONNX writer (native_onnx.py) from the model's layer list
                 (keras_impl/verify/describe.py), batch and time free; for OpenVINO that ONNX file read by
                 OpenVINO's ONNX frontend (``openvino.convert_model``) and saved with float32 weights.
"""
from __future__ import annotations

import os
import re
import warnings

import numpy as np

from .formats import ARTIFACT_NAME, FORMATS, ExportError

STATIC_BATCH = 1          # the batch of a static-batch artifact
FLEX_MARKER = b"Flex"     # TFLite custom ops that need the Flex (TensorFlow) delegate are named Flex<TfOp>

# Keras's torch RNN, on its masked path, makes a Python list of the first step's output (batch, units), iterating
# over the batch (keras/src/backend/torch/rnn.py L190-194): torch.export then fixes the batch at its sample's size.
BATCH_LOOP_CAUSE = ("Keras's masked torch RNN iterates over the batch in Python (keras/src/backend/torch/rnn.py "
                    "L190-194), so torch.export fixes the batch")

# Known upstream failures: (backend, format, pattern in the upstream error) -> (cause, upstream link or None).
# Each was reproduced here with Keras 3.15.1 (docs/export.md, "How bilstm export works").
KNOWN_FAILURES = [
    ("jax", "onnx", r"jax2onnx",
     "Keras exports ONNX from JAX through jax2onnx (keras/src/export/onnx.py L282-292), which the export extra "
     "does not install (it needs flax besides); Keras's own tests skip Bidirectional LSTMs there, whose reverse "
     "scan jax2onnx does not support (Keras PR 22443). A .keras file reloaded on tensorflow or torch exports",
     "https://github.com/keras-team/keras/pull/22443"),
    ("tensorflow", "onnx", r"CudnnRNN",
     "on a GPU, Keras's TensorFlow LSTM runs cuDNN's CudnnRNNV3, which tf2onnx cannot convert; export on the CPU",
     "https://github.com/keras-team/keras/issues/21799"),
    (None, "openvino", r"XlaCallModule|TensorList|unconverted|OpConversionFailure",
     "OpenVINO's TensorFlow frontend has no conversion for the ops of Keras's saved model here (the TensorList "
     "ops of a TensorFlow while-loop LSTM; XlaCallModule for a JAX model); export from torch", None),
    ("jax", "litert", r"LiteRT export requires TensorFlow or PyTorch",
     "Keras's LiteRT export refuses the JAX backend (keras/src/models/model.py L811-817); export from tensorflow",
     None),
    ("torch", "litert", r"litert.torch|litert_torch",
     "Keras's LiteRT exporter on torch needs litert-torch (keras/src/export/litert.py L192-210), which the "
     "export extra does not install; export from tensorflow", None),
    ("torch", "tf_saved_model", r"dynamic_shapes|torch_xla",
     "Keras's SavedModel export on torch passes torch.export a dynamic_shapes tuple that does not match its "
     "input structure (keras/src/backend/torch/export.py L66-85) and needs torch_xla besides (L87); export "
     "from tensorflow", None),
    ("torch", None, r"specialized it to be a constant|Constraints violated \(batch\)",
     BATCH_LOOP_CAUSE, None),
]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:400]}{'...' if len(text) > 400 else ''}"


def explain(exc: BaseException, backend: str, fmt: str, route: str) -> ExportError:
    """The ExportError for ``exc``: the upstream error in one line, then the cause and link when known."""
    message = _one_line(exc)
    full = f"{type(exc).__name__}: {exc} {exc.__cause__ or ''}"
    for b, f, pattern, cause, link in KNOWN_FAILURES:
        if (b in (None, backend)) and (f in (None, fmt)) and re.search(pattern, full):
            return ExportError(f"{message} (cause: {cause})", route=route, upstream=link)
    return ExportError(message, route=route, upstream=None)


def _backend() -> str:
    import keras
    return keras.backend.backend()


def _input_shapes(model, batch, timesteps: int | None = None):
    """[(shape with ``batch`` first and, given ``timesteps``, a free time axis (axis 1) fixed at it, dtype)] for
    each model input."""
    return [((batch,) + tuple(timesteps if k == 0 and d is None and timesteps is not None else d
                              for k, d in enumerate(t.shape[1:])), str(t.dtype)) for t in model.inputs]


def _sample(model, batch: int) -> list:
    """Zeros of the model's input shapes (free time axes: 3 steps), to call the model once."""
    return [np.zeros(tuple(batch if d is None and k == 0 else (3 if d is None else d) for k, d in enumerate(s)),
                     dtype=dtype) for s, dtype in _input_shapes(model, None)]


def _call_once(model) -> None:
    """Keras's ONNX exporter refuses a model never called directly (``predict`` does not count)."""
    x = _sample(model, 2)
    model(x[0] if len(x) == 1 else x, training=False)


def _signature(model, dynamic_batch: bool, timesteps: int | None = None):
    import keras
    batch = None if dynamic_batch else STATIC_BATCH
    specs = [keras.InputSpec(shape=s, dtype=d) for s, d in _input_shapes(model, batch, timesteps)]
    return specs if len(specs) == 1 else [specs]


def export_model(model, fmt: str, artifact_path, *, dynamic_batch: bool = True, method: str = "keras",
                 converter_options: dict | None = None, static_timesteps: int | None = None) -> dict:
    """Write ``model`` as ``fmt`` at ``artifact_path``; ``{"route", "dynamic_batch", "static_timesteps", "notes"}``.

    converter_options: LiteRT on TensorFlow only, the TFLiteConverter's settings (precision.litert_options).
    static_timesteps: a free time axis (axis 1 of each input) fixed at that length in the exported signature
    (time_axis.py); ``static_timesteps`` in the result is the length the artifact takes (None: free), the
    model's own where its input fixes it. A length other than the model's own is refused (ExportError).
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if method not in ("keras", "jax_export", "native"):
        raise ValueError(f"method must be 'keras', 'jax_export' or 'native', got {method!r}")
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"dynamic_batch must be a bool, got {dynamic_batch!r}")
    if static_timesteps is not None and (isinstance(static_timesteps, bool) or not isinstance(static_timesteps, int)
                                         or static_timesteps < 1):
        raise ValueError(f"static_timesteps must be a whole number of at least 1 or None, got {static_timesteps!r}")
    artifact_path = os.fspath(artifact_path)
    if os.path.basename(artifact_path) != ARTIFACT_NAME[fmt]:
        raise ValueError(f"artifact_path must end in {ARTIFACT_NAME[fmt]!r} for {fmt}, got {artifact_path!r}")
    backend = _backend()
    route = f"{method} on {backend}"
    notes: list[str] = []
    if method == "native":
        _native(model, fmt, artifact_path, notes)
        if not dynamic_batch:
            notes.append("the native writer leaves the batch free whatever --static-batch asks: any batch runs")
        if static_timesteps is not None:
            notes.append("the native writer leaves the time axis free whatever --static-timesteps asks: "
                         "any length runs")
        return {"route": "native ONNX writer", "dynamic_batch": True, "static_timesteps": None, "notes": notes}
    fixed = {t.shape[1] for t in model.inputs if len(t.shape) >= 2 and t.shape[1] is not None}
    if static_timesteps is not None and fixed - {static_timesteps}:
        raise ExportError(f"refused: --static-timesteps {static_timesteps}, but the model's input fixes its time "
                          f"axis at {', '.join(map(str, sorted(fixed)))}", route=route)
    try:
        _refuse_known_wrong(model, backend, fmt, static_timesteps)
        _call_once(model)
        if method == "jax_export":
            _jax_export(model, artifact_path, dynamic_batch, static_timesteps)
        elif fmt == "torch_export":
            dynamic_batch = _keras_torch(model, artifact_path, dynamic_batch, notes, static_timesteps)
        elif fmt == "jax_export":
            raise ExportError("Keras has no jax.export exporter: method jax_export on the jax backend exports it",
                              route=route)
        elif fmt == "litert" and backend == "tensorflow":
            dynamic_batch = _keras_litert_tf(model, artifact_path, dynamic_batch, notes, converter_options or {},
                                             static_timesteps)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporters' own advice (deprecations, tracer notes)
                model.export(artifact_path, format=fmt, verbose=False,
                             input_signature=_signature(model, dynamic_batch, static_timesteps))
    except ExportError as exc:
        exc.route = exc.route or route
        raise
    except Exception as exc:  # any upstream failure: reported in one line, with its cause when known
        raise explain(exc, backend, fmt, route) from exc
    if not os.path.exists(artifact_path):
        raise ExportError(f"{route}: the exporter returned without writing {artifact_path}", route=route)
    if not dynamic_batch:
        notes.append(f"static batch of {STATIC_BATCH}: the artifact takes exactly {STATIC_BATCH} sequence a call")
    if static_timesteps is not None and not fixed:
        notes.append(f"static time axis of {static_timesteps}: the artifact takes exactly {static_timesteps} steps a "
                     f"call; pad shorter sequences (a masked model ignores padded steps)")
    return {"route": route, "dynamic_batch": dynamic_batch, "notes": notes,
            "static_timesteps": static_timesteps if static_timesteps is not None else (min(fixed) if fixed else None)}


def _native(model, fmt: str, artifact_path: str, notes: list) -> None:
    """The native writer's ONNX file at ``artifact_path`` (onnx), or beside it, read by OpenVINO (openvino)."""
    import onnx

    from keras_impl.verify.describe import describe_model

    from .native_onnx import NativeRefusal, write_onnx
    route = "native ONNX writer"
    described = describe_model(model)
    specs = {name: (described.input_dtypes[name], described.input_shapes[name]) for name in described.graph.inputs}
    try:
        proto = write_onnx(described.graph, specs)
    except NativeRefusal as exc:
        raise ExportError(str(exc), route=route) from None
    if fmt == "onnx":
        onnx.save(proto, artifact_path)
        return
    if fmt != "openvino":
        raise ExportError(f"the native ONNX writer reaches onnx and openvino, not {fmt}", route=route)
    import openvino as ov
    onnx_path = os.path.join(os.path.dirname(artifact_path), "native.onnx")
    onnx.save(proto, onnx_path)
    try:
        converted = ov.convert_model(onnx_path)
        ov.save_model(converted, artifact_path, compress_to_fp16=False)  # its default halves the weights
    except Exception as exc:  # OpenVINO's own error, whatever its class: one line
        raise ExportError(f"OpenVINO's ONNX frontend could not read the native ONNX file: {_one_line(exc)}",
                          route=route) from exc
    finally:
        os.unlink(onnx_path)
    notes.append("written as ONNX by the native writer, converted by OpenVINO's ONNX frontend")


def _refuse_known_wrong(model, backend: str, fmt: str, static_timesteps: int | None = None) -> None:
    """Routes that write an artifact that computes something else, measured here: refused before exporting."""
    # A free time axis: axis 1 of any input, token ids (batch, time) included, unless the signature fixes it.
    free_time = static_timesteps is None and any(len(t.shape) >= 2 and t.shape[1] is None for t in model.inputs)
    if backend == "tensorflow" and fmt in ("onnx", "tf_saved_model", "litert") and free_time \
            and "TimeDistributed" in _layer_classes(model):
        raise ExportError(
            "refused: TimeDistributed over a free time axis runs vectorized_map (keras/src/layers/rnn/"
            "time_distributed.py L136-140), which TensorFlow traces with the time axis replaced by the batch size "
            "(measured: output (2, 2, 2) for input (2, 7, 3); a tagger's (1, 1, 5) for ids (1, 8)); fix the time "
            "axis (--static-timesteps N), or export onnx / openvino with --route native")
    if fmt != "onnx":
        return
    if backend == "torch" and "SimpleRNN" in _layer_classes(model):
        raise ExportError(
            "refused: Keras's torch RNN loop takes torch.max of the traced sequence length (keras/src/backend/torch/"
            "rnn.py L201-203, input_length from keras/src/layers/rnn/rnn.py L357), which the ONNX exporter writes as "
            "a ReduceMax over a scalar that onnxruntime refuses to load (measured on SimpleRNN; the LSTM's "
            "artifact loads and matches)")
    if free_time and backend == "torch":
        raise ExportError(
            "refused: the model's time axis is free, and Keras's ONNX exporter on torch traces every free "
            "dimension at 1 (keras/src/export/onnx.py L147-150, replace_none_number=1), so the loop over time is "
            "fixed at one step: onnxruntime cannot run any other length (measured: Split node error at length 8)")


def _layer_classes(model) -> set:
    """The class names of every layer, the layers a Bidirectional or TimeDistributed wraps included."""
    names = set()
    for layer in model.layers:
        names.add(type(layer).__name__)
        for inner in ("forward_layer", "backward_layer", "layer"):
            if hasattr(layer, inner):
                names.add(type(getattr(layer, inner)).__name__)
    return names


def _keras_torch(model, artifact_path, dynamic_batch: bool, notes: list, timesteps: int | None = None) -> bool:
    """format="torch" with an explicit dynamic batch (without one, Keras traces a batch of 1 and freezes it);
    where the masked RNN fixes the batch (BATCH_LOOP_CAUSE), a static batch instead, and the note says so."""
    import torch
    kwargs = {"dynamic_shapes": {0: torch.export.Dim("batch", min=1, max=65536)}} if dynamic_batch else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(artifact_path, format="torch", verbose=False,
                         input_signature=_signature(model, dynamic_batch, timesteps), **kwargs)
    except RuntimeError as exc:
        if not dynamic_batch or not re.search(r"specialized it to be a constant", str(exc)):
            raise
        notes.append(f"a dynamic batch cannot be exported: {BATCH_LOOP_CAUSE}; exported with a static batch instead")
        return _keras_torch(model, artifact_path, False, notes, timesteps)
    return dynamic_batch


FULL_INTEGER_CRASH = ("the TFLite converter crashes (SIGSEGV) in the full-integer conversion of the recurrent "
                      "loop (TensorFlow 2.21.0)")


def _has_loop(config) -> bool:
    if isinstance(config, dict):
        return config.get("unroll") is False or any(_has_loop(v) for v in config.values())
    return isinstance(config, list) and any(_has_loop(v) for v in config)


def _unroll_config(config, timesteps: int | None):
    """``config`` with every recurrent layer's ``unroll`` True and, given ``timesteps``, every input's free time
    axis fixed at it."""
    if isinstance(config, list):
        return [_unroll_config(v, timesteps) for v in config]
    if not isinstance(config, dict):
        return config
    out = {k: _unroll_config(v, timesteps) for k, v in config.items()}
    if out.get("unroll") is False:
        out["unroll"] = True
    shape = out.get("batch_shape")
    if timesteps is not None and out.get("class_name") is None and isinstance(shape, list) and len(shape) >= 3 \
            and shape[1] is None:
        out["batch_shape"] = [shape[0], timesteps] + list(shape[2:])
    return out


def _unrolled(model, timesteps: int | None, notes: list):
    """A copy of ``model`` with its recurrent loops unrolled, its weights the same: full-integer conversion of
    the loop itself crashes the converter (FULL_INTEGER_CRASH); unrolled, the steps are plain ops it quantizes.
    Unrolling needs the time axis fixed: by the model's input, else ``timesteps`` (--static-timesteps)."""
    free = any(len(t.shape) >= 2 and t.shape[1] is None for t in model.inputs)
    if free and timesteps is None:
        raise ExportError(f"{FULL_INTEGER_CRASH}; an unrolled copy converts, and unrolling needs a fixed time axis: "
                          f"give --static-timesteps N", route="keras on tensorflow")
    copy = model.__class__.from_config(_unroll_config(model.get_config(), timesteps if free else None))
    copy.set_weights(model.get_weights())
    notes.append("full integer: the recurrent layers converted unrolled (unroll=True, the same weights): "
                 + FULL_INTEGER_CRASH)
    return copy


def _keras_litert_tf(model, artifact_path, dynamic_batch: bool, notes: list, options: dict,
                     timesteps: int | None = None) -> bool:
    """Keras's LiteRT exporter (``options`` go to its TFLiteConverter: precision.litert_options); a dynamic batch
    that needs Flex ops falls back to a static batch. Full integer (a representative dataset) converts an
    unrolled copy of a recurrent model (``_unrolled``)."""
    if "representative_dataset" in options and _has_loop(model.get_config()):
        model = _unrolled(model, timesteps, notes)
    try:
        model.export(artifact_path, format="litert", verbose=False,
                     input_signature=_signature(model, dynamic_batch, timesteps), **options)
    except RuntimeError as exc:
        # Full-integer conversion runs the model in the interpreter to calibrate: a dynamic batch's Flex ops
        # fail there ("Select TensorFlow op(s) ... not supported by this interpreter") before any file exists.
        if not (dynamic_batch and "Flex" in str(exc)):
            raise
        notes.append("a dynamic batch lowers the recurrent loop to TensorList ops that need the Flex delegate, "
                     "which the converter's calibration cannot run: exported with a static batch instead")
        return _keras_litert_tf(model, artifact_path, False, notes, options, timesteps)
    with open(artifact_path, "rb") as f:
        flex = FLEX_MARKER in f.read()
    if flex and dynamic_batch:
        os.unlink(artifact_path)
        notes.append("a dynamic batch lowers the recurrent loop to TensorList ops that need the Flex delegate, "
                     "which ai-edge-litert lacks: exported with a static batch instead")
        return _keras_litert_tf(model, artifact_path, False, notes, options, timesteps)
    if flex:
        raise ExportError("the LiteRT artifact needs Flex (TensorFlow) ops even with a static batch; "
                          "ai-edge-litert cannot run them", route="keras on tensorflow")
    return dynamic_batch


def _jax_export(model, artifact_path, dynamic_batch: bool, timesteps: int | None = None) -> None:
    import jax
    from jax import export

    if _backend() != "jax":
        raise ExportError("jax.export needs the jax backend", route=f"jax_export on {_backend()}")
    shapes = _input_shapes(model, None, timesteps)
    symbols = []
    for k, (shape, _) in enumerate(shapes):
        batch = "b" if dynamic_batch else str(STATIC_BATCH)
        dims = [batch if i == 0 else (f"t{k}" if d is None else str(d)) for i, d in enumerate(shape)]
        symbols.append(", ".join(dims))
    scope = export.SymbolicScope()
    args = [jax.ShapeDtypeStruct(export.symbolic_shape(s, scope=scope), d) for s, (_, d) in zip(symbols, shapes)]

    def call(*xs):
        return model(xs[0] if len(xs) == 1 else list(xs), training=False)

    exported = export.export(jax.jit(call))(*args)
    data = exported.serialize()
    with open(artifact_path, "wb") as f:
        f.write(data)
