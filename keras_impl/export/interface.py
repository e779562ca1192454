"""Which of an artifact's inputs and outputs is which of the Keras model's: by name, by order, or by ``--map``.

A converter renames a model's tensors (tf2onnx: ``head`` -> ``Identity:0``; the LiteRT converter:
``StatefulPartitionedCall:0``; a SavedModel signature: ``output_0``) and may order several of them otherwise
(LiteRT sorts them by name). An artifact made by anyone is matched to the Keras model, inputs and outputs
each in turn:

    1. ``--map keras_name=artifact_name,...`` pairs those it names;
    2. the rest by name, where every one of them has an artifact tensor of its exact name;
    3. else by order, where the rest are as many on both sides and the ranks agree (an unknown rank agrees);
    4. else the interface does not match: one line naming both sides' tensors and asking for ``--map``.

An artifact output no Keras output is matched to is left unread (only with ``--map``: without it, extra
outputs are a mismatch). Runs in the runtime's process (no Keras): ``artifact_interface`` reads the names.
"""
from __future__ import annotations


class InterfaceMismatch(ValueError):
    """The artifact's inputs or outputs cannot be matched to the model's (the message is one line)."""


def parse_map(text: str | None) -> dict:
    """``"head=Identity:0,x=input_1"`` -> ``{"head": "Identity:0", "x": "input_1"}``; ValueError when malformed."""
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        keras_name, sep, artifact_name = part.strip().partition("=")
        if not sep or not keras_name.strip() or not artifact_name.strip():
            raise ValueError(f"--map takes keras_name=artifact_name pairs separated by commas, got {part!r}")
        pairs[keras_name.strip()] = artifact_name.strip()
    return pairs


def match(what: str, model: list, artifact: list, mapping: dict) -> tuple[list[int], str]:
    """``(artifact index of each model tensor, how they were matched)``; ``model`` and ``artifact`` are lists of
    ``(name, rank or None)``; ``what`` is "inputs" or "outputs"; InterfaceMismatch in one line."""
    names = [n for n, _ in artifact]
    if len(artifact) != len(model) and (what == "inputs" or not mapping):  # every input of the artifact must be fed
        raise InterfaceMismatch(f"the artifact has {len(artifact)} {what} ({', '.join(names)}), the model "
                                f"{len(model)} ({', '.join(n for n, _ in model)}): not the same interface"
                                + ("; --map names the outputs to compare" if what == "outputs" else ""))
    chosen: dict[int, int] = {}
    for k, (name, _) in enumerate(model):
        if name in mapping:
            if mapping[name] not in names:
                raise InterfaceMismatch(f"--map {name}={mapping[name]}: the artifact has no {what[:-1]} of that "
                                        f"name; its {what}: {', '.join(names)}")
            chosen[k] = names.index(mapping[name])
    rest = [k for k in range(len(model)) if k not in chosen]
    free = [j for j in range(len(artifact)) if j not in chosen.values()]
    how = "by --map" if chosen else ""
    if rest and all(model[k][0] in [names[j] for j in free] for k in rest):
        chosen.update({k: names.index(model[k][0]) for k in rest})
        how = "by name" + (" and --map" if how else "")
    elif rest:
        ranks_agree = all(model[k][1] is None or artifact[j][1] is None or model[k][1] == artifact[j][1]
                          for k, j in zip(rest, free))
        if len(rest) != len(free) or not ranks_agree:
            raise InterfaceMismatch(
                f"the artifact's {what} ({', '.join(names)}) do not match the model's "
                f"({', '.join(n for n, _ in model)}) by name, rank or order: say which is which with "
                f"--map keras_name=artifact_name,...")
        chosen.update(dict(zip(rest, free)))
        how = "by order" + (" and --map" if how else "")
    return [chosen[k] for k in range(len(model))], how or "by name"


def artifact_interface(fmt: str, runtime, path) -> tuple[list, list]:
    """``([(input name, rank)], [(output name, rank or None)])`` of the artifact, in the order its runtime
    takes and gives them (``runtimes._RUNNERS``' order)."""
    if fmt == "onnx":
        options = runtime.SessionOptions()
        options.log_severity_level = 3
        session = runtime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return ([(i.name, len(i.shape)) for i in session.get_inputs()],
                [(o.name, None if o.shape is None else len(o.shape)) for o in session.get_outputs()])
    if fmt == "openvino":
        model = runtime.Core().read_model(str(path))
        name = lambda port, k, kind: next(iter(sorted(port.get_names())), f"{kind} {k}")  # noqa: E731
        return ([(name(p, k, "input"), p.get_partial_shape().rank.get_length()) for k, p in enumerate(model.inputs)],
                [(name(p, k, "output"), None) for k, p in enumerate(model.outputs)])
    if fmt == "litert":
        interpreter = runtime.Interpreter(model_path=str(path))
        return ([(d["name"], len(d["shape"])) for d in interpreter.get_input_details()],
                [(d["name"], len(d["shape"])) for d in interpreter.get_output_details()])
    if fmt == "tf_saved_model":
        signature = runtime.saved_model.load(str(path)).signatures["serving_default"]
        specs = signature.structured_input_signature[1]
        outputs = signature.structured_outputs
        return ([(n, len(specs[n].shape)) for n in sorted(specs)], [(n, outputs[n].shape.rank) for n in sorted(outputs)])
    return None  # torch.export, jax.export: positional, no names: matched by order
