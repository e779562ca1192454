"""A loaded Keras model -> ``reference.layers.LayerGraph``, refusing by name what the oracle does not implement.

Every layer's class is checked exactly (``type(layer) is keras.layers.LSTM``: a
registered subclass is a different layer, whatever it inherits), then every
option that changes what the layer computes at inference, by its family's
module in ``layers/`` (one per Keras family, as ``reference/layers/``).

Functional models saved by Keras 3.15 record the masks their layers received as
explicit ``mask=`` arguments computed by small op nodes (``NotEqual`` for
Embedding and Masking, ``Any``, and the ops of Concatenate's ``compute_mask``).
Those ops may only feed masks; ``Graph.mask_sources`` keeps, per layer, the node
whose value Keras passed as its mask, so that ``compare.py`` can check it against
the mask the oracle propagates by Keras's rules (reference/layers/). Call arguments other than
``mask`` and ``training`` are refused, except those a kind declares (``layers.CALL_ARGUMENTS``: attention's
``key``, ``attention_mask``, ``use_causal_mask``...): a tensor among them is one more inbound layer, a mask
passed by keyword is an explicit mask like the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field


from reference.layers import Layer, LayerGraph

from .errors import VerifyRefusal
from .layers import CALL_ARGUMENTS, DESCRIBE
from .load import refuse_layer


@dataclass
class Graph:
    """The oracle's description plus what the comparison needs from the Keras side."""
    graph: LayerGraph
    keras_layers: dict                                 # layer name -> the Keras layer (InputLayers included)
    input_dtypes: dict                                 # input name -> Keras input dtype
    input_shapes: dict                                 # input name -> shape without the batch
    mask_sources: dict = field(default_factory=dict)   # layer name -> [op/layer node names], Keras's explicit masks
    mask_ops: dict = field(default_factory=dict)       # op node name -> the Keras operation
    options: dict = field(default_factory=dict)        # layer name -> "options that matter", for the table


def describe_layer(layer, name: str, inbound: tuple, call: dict | None = None) -> tuple[Layer, str]:
    """``(oracle Layer, options shown in the table)`` for one Keras layer, or a VerifyRefusal.

    The class must be Keras's own, exactly (``type(layer) is keras.layers.X``: a registered subclass is a
    different layer, whatever it inherits); its family's module (``layers/``) checks its options, and the call
    arguments (``call``) of the kinds that take some (``layers.CALL_ARGUMENTS``).
    """
    import keras
    cls = type(layer)
    quantized = getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None)
    if quantized is not None:
        raise refuse_layer(name, cls.__name__, f"quantized ({quantized}): the oracle reads float weights only")
    describe = DESCRIBE.get(cls.__name__)
    if describe is None or cls is not getattr(keras.layers, cls.__name__, None):
        raise refuse_layer(name, cls.__name__)
    if cls.__name__ in CALL_ARGUMENTS:
        return describe(layer, name, inbound, call or {})
    return describe(layer, name, inbound)


def _history(arg) -> str | None:
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return arg["config"]["keras_history"][0]
    return None


def _io_names(spec) -> list[str]:
    if spec and isinstance(spec[0], str):
        return [spec[0]]
    return [s[0] for s in spec]


def _refuse_reduced_precision(model) -> None:
    """A layer computing or storing in 16-bit floats, refused by name (as ``load.scan_config`` refuses it from a
    file's config; here for a model given in memory)."""
    for layer in [model, *model.layers]:
        policy = getattr(layer, "dtype_policy", None)
        if {str(getattr(policy, key, None)) for key in ("compute_dtype", "variable_dtype")} & {"float16", "bfloat16"}:
            raise VerifyRefusal(f"layer {layer.name!r} ({type(layer).__name__}) computes in "
                                f"{getattr(policy, 'name', policy)}: reduced precision is not verified yet "
                                "(the bounds are set for float32 and float64)")


def describe_model(model) -> Graph:
    """The ``Graph`` of a loaded Sequential or functional Keras model."""
    import keras
    _refuse_reduced_precision(model)
    if type(model) is keras.Sequential:
        return _describe_sequential(model)
    if not isinstance(model, keras.Model) or not hasattr(model, "operations") or type(model).__name__ != "Functional":
        raise VerifyRefusal(f"model of class {type(model).__name__} is not a Sequential or functional model")
    return _describe_functional(model)


def _input_info(tensor):
    return str(tensor.dtype), tuple(tensor.shape[1:])


def _describe_sequential(model) -> Graph:
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise VerifyRefusal("the Sequential model has no input shape (it was never built on an Input): "
                            "cannot draw inputs for it")
    layers, keras_layers, options = [Layer("input", "InputLayer")], {}, {}
    prev = "input"
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        described, shown = describe_layer(layer, layer.name, (prev,))
        layers.append(described)
        keras_layers[layer.name], options[layer.name] = layer, shown
        prev = layer.name
    dtype, shape = _input_info(inputs[0])
    return Graph(LayerGraph(("input",), tuple(layers), (prev,)), keras_layers, {"input": dtype}, {"input": shape},
                 options=options)


def _describe_functional(model) -> Graph:
    config = model.get_config()
    ops = {op.name: op for op in model.operations}
    layers, keras_layers, options, mask_sources, mask_ops = [], {}, {}, {}, {}
    data_nodes = set()  # nodes whose values feed some layer's data (not only masks)
    for entry in config["layers"]:
        name = entry.get("name") or entry["config"]["name"]
        module = entry.get("module") or ""
        nodes = entry.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise refuse_layer(name, entry["class_name"], f"called {len(nodes)} times (a shared layer)")
        if module.startswith("keras.src.ops"):
            mask_ops[name] = ops[name]  # checked below: it may only feed masks
            continue
        inbound, masks, call = (), [], {}
        if nodes:
            args, kwargs = nodes[0]["args"], nodes[0].get("kwargs", {})
            flat = args[0] if len(args) == 1 and isinstance(args[0], list) else args
            inbound = tuple(h for h in map(_history, flat) if h is not None)
            if len(inbound) != len(flat):
                raise refuse_layer(name, entry["class_name"], "called with a constant argument")
            accepted = CALL_ARGUMENTS.get(entry["class_name"], {})
            for key, value in kwargs.items():
                role = accepted.get(key)
                if key == "mask":
                    values = value if isinstance(value, list) else [value]
                    masks = [_history(v) for v in values]
                elif value is None or key == "training":
                    continue
                elif role == "option":
                    call[key] = value
                elif role is not None and _history(value) is None:
                    raise refuse_layer(name, entry["class_name"], f"called with a constant {key}")
                elif role == "input":
                    call[key] = _history(value)
                elif isinstance(role, int):  # an input's explicit mask, by keyword
                    masks += [None] * (role + 1 - len(masks))
                    masks[role] = _history(value)
                else:
                    raise refuse_layer(name, entry["class_name"], f"called with {key}=...: not modelled")
            inbound += tuple(call[k] for k, role in accepted.items() if role == "input" and k in call)
        data_nodes.update(inbound)
        layer = ops[name]
        # (the three-argument call where there are no call arguments: tests wrap describe_layer so)
        described, shown = describe_layer(layer, name, inbound, call) if call else describe_layer(layer, name, inbound)
        layers.append(described)
        keras_layers[name], options[name] = layer, shown
        if any(m is not None for m in masks):
            mask_sources[name] = masks
    for name in mask_ops:
        if name in data_nodes:
            op = mask_ops[name]
            raise refuse_layer(name, type(op).__name__, "a Keras op on the data path (ops may only compute masks)")
    inputs, outputs = _io_names(config["input_layers"]), _io_names(config["output_layers"])
    dtypes, shapes = {}, {}
    for name, tensor in zip(inputs, model.inputs):
        dtypes[name], shapes[name] = _input_info(tensor)
    return Graph(LayerGraph(tuple(inputs), tuple(layers), tuple(outputs)),
                 keras_layers, dtypes, shapes, mask_sources, mask_ops, options)
