"""An artifact made by anyone's converter, run in its own runtime against the oracle of the Keras model it came
from (``bilstm verify MODEL_FILE --artifact FILE``), with the same inputs and figures as ``bilstm export
--verify``; for ONNX, OpenVINO and LiteRT, every layer inside it as well.

The format is read from the artifact's name (``.onnx``, ``.tflite``, ``.xml`` (OpenVINO), ``.pt2``
(torch.export), ``.jax_export``, a SavedModel folder) or given with ``--format``. The artifact's inputs and
outputs are matched to the model's by name, rank and order, or by ``--map keras_name=artifact_name,...``
(keras_impl/export/interface.py; torch.export and jax.export by order); a mismatch is one line, exit 2. The inputs are the
input families of keras_impl/verify/families.py (or ``--inputs``); a set the runtime refuses alone (a length
fixed at export) is a FAIL row of its family. A static batch is met with one sequence a call.

**Inside an ONNX, OpenVINO or LiteRT artifact**, every node's output is made a graph output (ONNX, OpenVINO)
or kept (LiteRT's ``experimental_preserve_all_tensors``) and the artifact is run once more (ONNX Runtime with
its optimisations off; OpenVINO on the CPU in float32; the first input set the artifact ran): a
Keras layer's tensor is the one whose name contains the layer's name and
whose shape is the oracle's output shape for it (or that shape time-major, read batch-major), the closest
to the oracle where several qualify, in a QDQ graph the value passed on (``_passed_on``) (a
converter names its nodes after the Keras layers: tf2onnx ``sequential/head/...``, Keras's exporters
``head_1/...``); a model output layer's tensor is also the artifact's output matched to it (by ``--map``,
else by name or place, as the artifact was run); a
Bidirectional whose merged output has no tensor of its own is looked for as its two directions (tensors
named after it and ``forward`` / ``backward``, in either time order). A layer with no such tensor is
reported as having none of its own (fused into another, or renamed). The first layer outside its bound is
named. ``bilstm export --precision P --verify`` reads a reduced-precision artifact the same way, each layer held
to the bound of its precision from its own E_w (``artifact_layers``; docs/export.md, "Inside the artifact").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_impl.export.formats import FORMATS, RUNTIME_PACKAGE
from keras_impl.options import UsageError

from .errors import VerifyRefusal

SUFFIX_FORMAT = {".onnx": "onnx", ".tflite": "litert", ".xml": "openvino", ".pt2": "torch_export",
                 ".jax_export": "jax_export"}
RUNTIME_TIMEOUT_S = 900


def artifact_format(path, fmt: str | None = None) -> str:
    """The format of the artifact at ``path`` (checked before any work), from ``fmt`` or its name."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"--artifact {path}: no such file or folder")
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "tf_saved_model"
        raise UsageError(f"--artifact {path}: a folder without saved_model.pb; name its --format")
    found = SUFFIX_FORMAT.get(path.suffix.lower())
    if found is None:
        raise UsageError(f"--artifact {path}: cannot tell the format from the name; give --format "
                         f"({', '.join(FORMATS)})")
    return found


def _interface(described, sets, mapping: dict) -> dict:
    """The model's side of the match (keras_impl/export/interface.py): names and ranks, and ``--map``."""
    graph = described.graph
    return {"inputs": [(n, len(described.input_shapes[n]) + 1) for n in graph.inputs],
            "outputs": [(n, np.ndim(y)) for n, y in zip(graph.outputs, sets[0]["oracle"])], "map": mapping}


def _run(fmt, path, sets, interface=None, matched=None):
    from keras_impl.export.formats import ArtifactRunError, RuntimeUnavailable
    from keras_impl.export.interface import InterfaceMismatch
    from keras_impl.export.runtimes import StaticShapeError, run_sets_in_subprocess
    try:
        return run_sets_in_subprocess(fmt, path, [s["inputs"] for s in sets], timeout_s=RUNTIME_TIMEOUT_S,
                                      interface=interface, matched=matched)
    except StaticShapeError:
        raise
    except InterfaceMismatch as exc:
        raise VerifyRefusal(str(exc)) from None
    except (RuntimeUnavailable, ArtifactRunError) as exc:
        raise VerifyRefusal(f"{RUNTIME_PACKAGE[fmt]} cannot run {path.name} on the model's inputs: "
                            f"{' '.join(str(exc).split())}") from None


def _sets(model, described, dynamic_batch: bool, user_inputs=None):
    from keras_impl.export.verify import add_expected_outputs, input_sets
    sets = input_sets(described, dynamic_batch=dynamic_batch, user_inputs=user_inputs)
    add_expected_outputs(model, described, sets)
    return sets


def _onnx_tensors(path: Path, inputs: list, precision: str = "float32") -> tuple[dict, list]:
    """Every node output of an ONNX artifact on ``inputs`` (ONNX Runtime, optimisations off), and the names of
    the artifact's own outputs in order."""
    import onnx
    import onnxruntime as ort
    model = onnx.load(str(path))
    outputs = [o.name for o in model.graph.output]
    known = set(outputs)
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                known.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor as written
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    wanted = [o.name for o in session.get_outputs()]
    return dict(zip(wanted, session.run(wanted, dict(zip(names, inputs))))), outputs


def _openvino_tensors(path: Path, inputs: list, precision: str = "float32") -> tuple[dict, list]:
    """Every operation's output of an OpenVINO artifact on ``inputs`` (CPU, float32, or bfloat16 where
    ``precision`` asks for it as the export's run does), keyed by its tensor names and its operation's name
    joined, and the keys of the artifact's own outputs in order."""
    import openvino as ov
    core = ov.Core()
    model = core.read_model(str(path))
    own = len(model.outputs)
    model.add_outputs([out for op in model.get_ordered_ops()
                       if op.get_type_name() not in ("Parameter", "Result", "Constant") for out in op.outputs()])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16"
                                                 else "f32"})
    result = compiled(list(inputs))
    values, keys = {}, []
    for k, port in enumerate(compiled.outputs):
        producer = port.get_node().input_value(0).get_node() if port.get_node().get_type_name() == "Result" \
            else port.get_node()
        key = "|".join(sorted(port.get_names()) + [producer.get_friendly_name()])
        values[key] = result[port]
        if k < own:
            keys.append(key)
    return values, keys


def _litert_tensors(path: Path, inputs: list, precision: str = "float32") -> tuple[dict, list]:
    """Every tensor of a LiteRT artifact on ``inputs``, kept by the Interpreter's
    ``experimental_preserve_all_tensors`` (without it the arena reuses intermediate buffers), keyed by the
    converter's tensor name (``#index`` added where two share a name), and the keys of its own outputs."""
    import warnings

    from ai_edge_litert.interpreter import Interpreter
    with warnings.catch_warnings():  # its advice that preserving every tensor is for debugging: it is, here
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    for detail, x in zip(interpreter.get_input_details(), inputs):
        if tuple(detail["shape"]) != x.shape:
            interpreter.resize_tensor_input(detail["index"], list(x.shape), strict=True)
    interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], x.astype(detail["dtype"], copy=False))
    interpreter.invoke()
    details = interpreter.get_tensor_details()
    names = [d["name"] for d in details]
    key = {d["index"]: d["name"] if names.count(d["name"]) == 1 else f"{d['name']}#{d['index']}" for d in details}
    values = {}
    for d in details:
        try:
            values[key[d["index"]]] = np.array(interpreter.get_tensor(d["index"]))
        except ValueError:  # a tensor without data (a constant folded away, an unused scratch buffer)
            continue
    return values, [key[d["index"]] for d in interpreter.get_output_details()]


# The runtimes that expose inner tensors.
TENSORS = {"onnx": _onnx_tensors, "openvino": _openvino_tensors, "litert": _litert_tensors}


def _own_outputs(graph_outputs: list, output_keys: list, mapping: dict) -> dict:
    """The artifact's own output (its key among the tensors) of each model output: by ``--map``, else by name or
    place, as the artifact was run (keras_impl/export/interface.py). A key holds the artifact's name for the
    output (OpenVINO's join every name of the tensor with ``|``; LiteRT's add ``#index`` to a name two share)."""
    from keras_impl.export.interface import match

    def key_of(name):
        return next((key for key in output_keys if name == key or name in key.split("|")
                     or key.rpartition("#")[0] == name), name)
    chosen, _ = match("outputs", [(n, None) for n in graph_outputs], [(key, None) for key in output_keys],
                      {keras_name: key_of(name) for keras_name, name in mapping.items()})
    return {n: output_keys[j] for n, j in zip(graph_outputs, chosen)}


def artifact_layers(fmt: str, path: Path, graph, inputs: list, bound_value: float, *, precision: str = "float32",
                    arithmetic: bool = False, mapping: dict | None = None) -> list[dict]:
    """Each layer of ``graph`` (reference.layers.LayerGraph) found as a tensor inside the artifact, against the
    oracle (see the module's docstring), on ``inputs`` (one set).

    float32: each allowed ``bound_value`` x max(1, max |oracle output of the layer|). A reduced ``precision``
    (keras_impl/export/precision.py): each layer's output also from the oracle on the weights rounded as the
    precision stores them, whose distance is that layer's E_w, and its bound
    tolerances.artifact_precision_bound, as each model output's (``arithmetic``: the runtime rounds activations
    too). Rows: ``{layer, tensor, error, allowed, verdict}``, with ``weight_error`` and ``unit`` in a reduced
    precision, or ``halves`` (a Bidirectional found as its two directions). ``mapping``: ``--map``'s pairs."""
    from keras_impl.export.precision import REDUCED, rounded_graph, runtime_precision
    from reference.layers import graph_forward
    reduced = precision in REDUCED
    values, output_keys = TENSORS[fmt](path, inputs, runtime_precision(precision))
    tape: dict = {}
    oracle = graph_forward(graph, inputs, tape=tape)
    rounded_tape: dict = {}
    rounded = graph_forward(rounded_graph(graph, precision), inputs, tape=rounded_tape) if reduced else None
    steps = max((np.shape(x)[1] for x in inputs if np.ndim(x) >= 2), default=1)

    def judged(expected, emulated) -> dict:
        """The bound for one tensor whose oracle value is ``expected`` (``emulated``: on the rounded weights)."""
        size = float(np.max(np.abs(np.nan_to_num(expected)), initial=0.0))
        if not reduced:
            return {"allowed": bound_value * max(1.0, size)}
        from keras_impl.parity.tolerances import artifact_precision_bound, artifact_precision_unit
        weight_error = _distance(np.asarray(emulated, np.float64), expected)
        return {"allowed": artifact_precision_bound(precision, weight_error, size, arithmetic=arithmetic,
                                                    steps=steps).value,
                "weight_error": weight_error, "unit": artifact_precision_unit(precision, size)}

    outputs = _own_outputs(graph.outputs, output_keys, mapping or {})  # the model's own outputs
    rows = []
    for layer in graph.layers:
        if layer.kind == "InputLayer":
            continue
        expected = np.asarray(oracle[layer.name][0], np.float64)
        found = _closest(values, expected, lambda t: layer.name in t or t == outputs.get(layer.name))
        row = {"layer": layer.name, "tensor": None, "error": None, "verdict": "no tensor of its own",
               **judged(expected, rounded[layer.name][0] if reduced else None)}
        if found:
            row.update(error=found[0], tensor=found[1], verdict="pass" if found[0] <= row["allowed"] else "FAIL")
        elif layer.kind == "Bidirectional" and tape.get(layer.name):
            emulated = rounded_tape[layer.name][0]["halves"] if reduced else (None, None)
            row["halves"] = _halves(values, layer.name, tape[layer.name][0]["halves"], emulated, judged)
            if any(h["tensor"] for h in row["halves"]):
                row["verdict"] = "FAIL" if any(h["verdict"] == "FAIL" for h in row["halves"]) else "pass"
        rows.append(row)
    return rows


def _distance(value: np.ndarray, expected: np.ndarray) -> float:
    diff = np.abs(value.astype(np.float64) - expected)
    return float(np.where(np.isnan(diff), 0.0, diff).max(initial=0.0))


# A QDQ graph (onnxruntime's quantize_static) quantizes an activation X after the node that makes it: X keeps its
# name, and the consumers read X_DequantizeLinear_Output; where X is a graph output, the node's float output is
# renamed X_QuantizeLinear_Input and X is the DequantizeLinear's. A layer's tensor is the value passed on.
QDQ_READ, QDQ_RENAMED = "_DequantizeLinear_Output", "_QuantizeLinear_Input"


def _passed_on(values: dict, tensor: str) -> bool:
    """False for a float tensor of a QDQ graph that no consumer reads in place of its quantized value."""
    return not (tensor + QDQ_READ in values or tensor.endswith(QDQ_RENAMED))


def _closest(values: dict, expected: np.ndarray, named, reversed_too: bool = False):
    """``(error, tensor name)`` of the tensor closest to ``expected`` among those ``named`` accepts and of its
    shape, or of its shape time-major (T, B, ...) where T != B (tf2onnx keeps a recurrent layer's output
    time-major), read batch-major (with ``reversed_too``, also read back to front in time), or None; in a QDQ
    graph, among the values passed on only (``_passed_on``)."""
    best = None
    time_major = expected.ndim >= 3 and expected.shape[0] != expected.shape[1]
    for tensor, value in values.items():
        value = np.asarray(value)
        if not named(tensor) or value.dtype.kind != "f" or not _passed_on(values, tensor):
            continue
        if value.shape != expected.shape:  # a recurrent converter's (T, B, ...) tensor, read batch-major
            if not time_major or value.shape != (expected.shape[1], expected.shape[0]) + expected.shape[2:]:
                continue
            value, tensor = value.swapaxes(0, 1), f"{tensor} (time-major)"
        for candidate, label in [(value, tensor)] + ([(value[:, ::-1], f"{tensor} (read in reverse time)")]
                                                    if reversed_too else []):
            error = _distance(candidate, expected)
            if best is None or error < best[0]:
                best = (error, label)
    return best


def _halves(values: dict, name: str, halves, emulated, judged) -> list[dict]:
    """A Bidirectional without a tensor of its merged output: its two directions' tensors, each named after the
    layer and its direction (``forward`` / ``backward`` in the name), in either time order; ``judged`` gives
    each its bound from its oracle value and its ``emulated`` one (the rounded weights')."""
    rows = []
    for direction, expected, rounded in zip(("forward", "backward"), halves, emulated):
        expected = np.asarray(expected, np.float64)
        found = _closest(values, expected, lambda t: name in t and direction in t, reversed_too=True)
        bound = judged(expected, rounded)
        rows.append({"direction": direction, "tensor": found and found[1], "error": found and found[0], **bound,
                     "verdict": "no tensor of its own" if not found else ("pass" if found[0] <= bound["allowed"]
                                                                          else "FAIL")})
    return rows


def layer_lines(rows: list[dict], unit_name: str | None = None, about: str = "first input set") -> list[str]:
    """The report's lines for ``artifact_layers``' rows (``bilstm verify --artifact``, ``bilstm export --verify``
    in a reduced precision: ``unit_name`` "ulp" or "int8 step", each error in it beside the weights' own)."""
    def shown(r: dict) -> str:
        if unit_name and "unit" in r:
            return (f"{r['error']:.2e} = {r['error'] / r['unit']:.2f} {unit_name}; the weights alone "
                    f"{r['weight_error']:.2e} = {r['weight_error'] / r['unit']:.2f}; bound {r['allowed']:.2e} "
                    f"{r['verdict']}")
        return f"{r['error']:.2e} (allowed {r['allowed']:.1e}) {r['verdict']}"
    lines = [f"  inside the artifact ({about}; a layer's tensor: named after it, of its shape):"]
    for row in rows:
        if row["tensor"] is not None:
            text = f"{row['tensor']}: {shown(row)}"
        elif any(h["tensor"] for h in row.get("halves", [])):
            text = "; ".join(f"{h['direction']} {h['tensor']}: {shown(h)}" if h["tensor"]
                             else f"{h['direction']}: no tensor of its own" for h in row["halves"])
        else:
            text = "no tensor of its own (fused into another, or renamed)"
        lines.append(f"    {row['layer']}: {text}")
    first = next((row["layer"] for row in rows if row["verdict"] == "FAIL"), None)
    if first:
        lines.append(f"  first layer outside its bound inside the artifact: {first}")
    return lines


STATIC_BATCH_SAYS = "(the batch fixed at export)"  # runtimes._check_shape's words for a batch fixed at export


def _static_batch(outputs) -> str | None:
    """The runtime's line where it refused a set for its batch alone (a static-batch artifact), else None."""
    return next((o for o in outputs if isinstance(o, str) and STATIC_BATCH_SAYS in o), None)


def verify_artifact(model_path, artifact_path, *, fmt: str | None = None, user_inputs=None,
                    mapping: dict | None = None) -> dict:
    """The report of the artifact against the oracle (and Keras) of the model in ``model_path``, on the input
    families (keras_impl/verify/families.py) or on ``user_inputs`` (an array: ``--inputs``)."""
    from keras_impl.backend import backend_info
    from keras_impl.export.runtimes import StaticShapeError
    from keras_impl.export.verify import compare, decision_rules
    from keras_impl.parity.tolerances import bound

    from .describe import describe_model
    from .load import check_model_path, load_model
    model_path = check_model_path(str(model_path))
    artifact_path = Path(artifact_path)
    fmt = artifact_format(artifact_path, fmt)
    model, _, _ = load_model(model_path)
    described = describe_model(model)
    sets, note = _sets(model, described, True, user_inputs), None
    interface, matched = _interface(described, sets, mapping or {}), {}
    try:
        outputs, ran = _run(fmt, artifact_path, sets, interface, matched)
        static = _static_batch(outputs)
    except StaticShapeError as exc:  # no set ran
        static = str(exc)
    if static is not None:  # a static batch: one sequence a call
        sets, note = _sets(model, described, False, user_inputs), f"static input shape " \
                                                                  f"({' '.join(static.split())}): one sequence a call"
        try:
            outputs, ran = _run(fmt, artifact_path, sets, interface, matched)
        except StaticShapeError as again:
            raise VerifyRefusal(f"the artifact's inputs do not take the model's: {' '.join(str(again).split())}") \
                from None
    ran_outputs = next(o for o in outputs if not isinstance(o, str))
    if len(ran_outputs) != len(sets[0]["oracle"]):
        raise VerifyRefusal(f"the artifact gives {len(ran_outputs)} outputs, the model "
                            f"{len(sets[0]['oracle'])}: not the same interface")
    backend = backend_info()["backend"]
    result = compare(sets, outputs, backend=backend, ran_precision=ran, rules=decision_rules(described),
                     left_out=getattr(sets, "left_out", []))
    if note:
        result["notes"].insert(0, note)
    if matched:
        result["notes"].insert(0, f"the artifact's inputs matched the model's {matched['inputs']}, its outputs "
                                  f"{matched['outputs']}")
    report = {"model": str(model_path), "artifact": str(artifact_path), "format": fmt, "backend": backend,
              "runtime": RUNTIME_PACKAGE[fmt], **result, "layers": None}
    if fmt in TENSORS:  # inside the artifact: the first set it ran
        first = next(s for s, o in zip(sets, outputs) if not isinstance(o, str))
        report["layers"] = artifact_layers(fmt, artifact_path, described.graph, first["inputs"],
                                           bound("output", "float32", backend).value, mapping=mapping)
    return report


def format_artifact_report(r: dict) -> str:
    lines = [f"artifact {r['artifact']} ({r['format']}, run in {r['runtime']}, computed in "
             f"{r['ran_precision']}) against the oracle of {r['model']} (Keras on {r['backend']})"]
    lines += [f"  note: {n}" for n in r["notes"]]
    from keras_impl.export.verify import set_line
    lines += [set_line(row) for row in r["sets"]]
    if r.get("families"):
        lines.append(f"  {r['families']}")
    if r["layers"] is not None:
        lines += layer_lines(r["layers"])
    from keras_impl.export.verify import decision_lines
    lines += decision_lines(r.get("decisions", []))
    b = r["bounds"]
    lines.append(f"worst: artifact vs oracle {r['worst_vs_oracle']:.2e} (bound {b['vs_oracle']:g}), artifact vs "
                 f"Keras {r['worst_vs_keras']:.2e} (bound {b['vs_keras']:g}, {b['kind']}): {r['verdict']}")
    return "\n".join(lines)
