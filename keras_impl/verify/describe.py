"""A loaded Keras model -> ``reference.layers.LayerGraph``, refusing by name what the oracle does not implement.

Every layer's class is checked exactly (``type(layer) is keras.layers.LSTM``: a
registered subclass is a different layer, whatever it inherits), then every
option that changes what the layer computes at inference. The recurrent layers
(LSTM, GRU, SimpleRNN, alone or in Bidirectional, whose two copies may even be
different cells) map to the oracle's cells (``reference/cells.py``) with their
``activation``, ``recurrent_activation``, ``reset_after`` and ``use_bias``
(no bias array, the oracle's ``bias=None``). Options that do not change the
output (``dropout`` and ``recurrent_dropout``, ``unroll``, ``use_cudnn``,
initializers, regularizers, constraints) are accepted.

Functional models saved by Keras 3.15 record the masks their layers received as
explicit ``mask=`` arguments computed by small op nodes (``NotEqual`` for
Embedding and Masking, ``Any``, and the ops of Concatenate's ``compute_mask``).
Those ops may only feed masks; ``Graph.mask_sources`` keeps, per layer, the node
whose value Keras passed as its mask, so that ``compare.py`` can check it against
the mask the oracle propagates by Keras's rules (reference/layers.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference.cells import ACTIVATIONS as CELL_ACTIVATIONS
from reference.layers import ACTIVATIONS, RECURRENT_KINDS, Layer, LayerGraph

from .errors import VerifyRefusal
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


def _activation_name(fn) -> str:
    import keras
    name = keras.activations.serialize(fn)
    return name if isinstance(name, str) else repr(name)


def _check_recurrent(layer, name: str) -> dict:
    """The options of an LSTM, GRU or SimpleRNN (exact class) as ``reference.layers`` reads them, or a refusal."""
    import keras
    cls = type(layer).__name__
    if cls not in RECURRENT_KINDS or type(layer) is not getattr(keras.layers, cls):
        raise refuse_layer(name, cls, "a subclass or another class, not keras.layers.LSTM, GRU or SimpleRNN")
    cell = RECURRENT_KINDS[cls]
    options = {"cell": cell, "activation": _activation_name(layer.activation)}
    if cell != "simple_rnn":
        options["recurrent_activation"] = _activation_name(layer.recurrent_activation)
    for key in ("activation", "recurrent_activation"):
        if key in options and options[key] not in CELL_ACTIVATIONS:
            raise refuse_layer(name, cls, f"{key}={options[key]!r}; the oracle's cells implement "
                                          f"{', '.join(CELL_ACTIVATIONS)}")
    if cell == "gru":
        options["reset_after"] = bool(layer.reset_after)
    if layer.stateful:
        raise refuse_layer(name, cls, "stateful=True: states carried between calls are not modelled")
    if layer.return_state:
        raise refuse_layer(name, cls, "return_state=True: only the output sequence is compared")
    return {**options, "go_backwards": bool(layer.go_backwards), "return_sequences": bool(layer.return_sequences),
            "zero_output_for_mask": bool(layer.zero_output_for_mask)}


def _recurrent_weights(layer) -> tuple:
    """``(kernel, recurrent_kernel, bias)`` in float64; bias None for ``use_bias=False``."""
    w = [np.asarray(a, np.float64) for a in layer.get_weights()]
    return tuple(w) if layer.use_bias else (*w, None)


def _cell_options_shown(opt: dict) -> str:
    """The cell options that differ from Keras's defaults, for the table."""
    shown = [f"{k}={opt[k]}" for k, default in (("activation", "tanh"), ("recurrent_activation", "sigmoid"))
             if opt.get(k, default) != default]
    if opt.get("reset_after") is False:
        shown.append("reset_after=False")
    return ", ".join(shown)


def _dense(layer, name: str, kind: str):
    import keras
    if type(layer) is not keras.layers.Dense:
        raise refuse_layer(name, type(layer).__name__, f"{kind} takes keras.layers.Dense exactly")
    act = _activation_name(layer.activation)
    if act not in ACTIVATIONS:
        raise refuse_layer(name, kind, f"activation={act!r}; supported: {', '.join(ACTIVATIONS)}")
    if getattr(layer, "lora_enabled", False):
        raise refuse_layer(name, kind, "LoRA weights")
    w = [np.asarray(a, np.float64) for a in layer.get_weights()]
    if not layer.use_bias:
        w.append(np.zeros(w[0].shape[1]))
    return {"activation": act}, tuple(w)


def describe_layer(layer, name: str, inbound: tuple) -> tuple[Layer, str]:
    """``(oracle Layer, options shown in the table)`` for one Keras layer, or a VerifyRefusal."""
    import keras
    L = keras.layers
    cls = type(layer)
    quantized = getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None)
    if quantized is not None:
        raise refuse_layer(name, cls.__name__, f"quantized ({quantized}): the oracle reads float weights only")
    if cls is L.InputLayer:
        return Layer(name, "InputLayer"), ""
    if cls is L.Masking:
        value = layer.mask_value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
            raise refuse_layer(name, "Masking", f"mask_value={value!r}: a finite number is supported")
        return Layer(name, "Masking", inbound, {"mask_value": float(value)}), f"mask_value={value:g}"
    if cls is L.Embedding:
        if getattr(layer, "lora_enabled", False):
            raise refuse_layer(name, "Embedding", "LoRA weights")
        w = tuple(np.asarray(a, np.float64) for a in layer.get_weights())
        return (Layer(name, "Embedding", inbound, {"mask_zero": bool(layer.mask_zero)}, w),
                f"vocab={layer.input_dim}, mask_zero={bool(layer.mask_zero)}")
    if cls.__name__ in RECURRENT_KINDS and cls is getattr(L, cls.__name__):
        opt = _check_recurrent(layer, name)
        opt.pop("cell")  # the kind says it
        shown = (f"units={layer.units}, go_backwards={opt['go_backwards']:d}"
                 + (", sequences" if opt["return_sequences"] else ", last step"))
        if opt["zero_output_for_mask"]:
            shown += ", zero_output_for_mask"
        if not layer.use_bias:
            shown += ", no bias"
        extra = _cell_options_shown(opt)
        return Layer(name, cls.__name__, inbound, opt, _recurrent_weights(layer)), shown + (f", {extra}" if extra else "")
    if cls is L.Bidirectional:
        if layer.merge_mode is None:
            raise refuse_layer(name, "Bidirectional", "merge_mode=None gives two outputs; use concat, sum, ave or mul")
        if layer.return_state:
            raise refuse_layer(name, "Bidirectional", "return_state=True: only the output sequence is compared")
        fwd = _check_recurrent(layer.forward_layer, f"{name}.forward_layer")
        bwd = _check_recurrent(layer.backward_layer, f"{name}.backward_layer")
        opt = {"merge_mode": layer.merge_mode, "return_sequences": bool(layer.return_sequences),
               "forward": fwd, "backward": bwd}
        w = _recurrent_weights(layer.forward_layer) + _recurrent_weights(layer.backward_layer)
        f_cls, b_cls = type(layer.forward_layer).__name__, type(layer.backward_layer).__name__
        cells = f_cls if f_cls == b_cls else f"{f_cls}+{b_cls}"
        shown = (f"{cells}, merge={layer.merge_mode}, units={layer.forward_layer.units}+{layer.backward_layer.units}, "
                 f"go_backwards={fwd['go_backwards']:d}/{bwd['go_backwards']:d}"
                 + (", sequences" if opt["return_sequences"] else ", last step"))
        if not (layer.forward_layer.use_bias and layer.backward_layer.use_bias):
            shown += ", no bias"
        extras = [_cell_options_shown(fwd), _cell_options_shown(bwd)]
        if any(extras):
            shown += ", " + (extras[0] if extras[0] == extras[1] else f"forward: {extras[0] or 'defaults'}; "
                                                                       f"backward: {extras[1] or 'defaults'}")
        return Layer(name, "Bidirectional", inbound, opt, w), shown
    if cls is L.TimeDistributed:
        opt, w = _dense(layer.layer, f"{name}.layer", "TimeDistributed")
        return Layer(name, "TimeDistributed", inbound, opt, w), f"Dense({layer.layer.units}, {opt['activation']})"
    if cls is L.Dense:
        opt, w = _dense(layer, name, "Dense")
        return Layer(name, "Dense", inbound, opt, w), f"units={layer.units}, {opt['activation']}"
    if cls is L.Activation:
        act = _activation_name(layer.activation)
        if act not in ACTIVATIONS:
            raise refuse_layer(name, "Activation", f"activation={act!r}; supported: {', '.join(ACTIVATIONS)}")
        return Layer(name, "Activation", inbound, {"activation": act}), act
    if cls in (L.Dropout, L.SpatialDropout1D):
        return Layer(name, cls.__name__, inbound), f"rate={layer.rate:g} (identity at inference)"
    if cls in (L.GlobalAveragePooling1D, L.GlobalMaxPooling1D):
        if layer.data_format != "channels_last" or layer.keepdims:
            raise refuse_layer(name, cls.__name__, "data_format='channels_last' and keepdims=False only")
        shown = "masked mean" if cls is L.GlobalAveragePooling1D else "max over every step (ignores the mask)"
        return Layer(name, cls.__name__, inbound), shown
    if cls is L.Flatten:
        if layer.data_format != "channels_last":
            raise refuse_layer(name, "Flatten", "data_format='channels_last' only")
        return Layer(name, "Flatten", inbound), "drops the mask"
    if cls is L.Concatenate:
        if len(inbound) != 2:
            raise refuse_layer(name, "Concatenate", f"of two inputs only, got {len(inbound)}")
        rank = len(layer.output.shape)
        if layer.axis not in (-1, rank - 1):
            raise refuse_layer(name, "Concatenate", f"axis={layer.axis}: the last axis only")
        return Layer(name, "Concatenate", inbound), "last axis"
    raise refuse_layer(name, cls.__name__)


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
        inbound, masks = (), []
        if nodes:
            args, kwargs = nodes[0]["args"], nodes[0].get("kwargs", {})
            flat = args[0] if len(args) == 1 and isinstance(args[0], list) else args
            inbound = tuple(h for h in map(_history, flat) if h is not None)
            if len(inbound) != len(flat):
                raise refuse_layer(name, entry["class_name"], "called with a constant argument")
            for key, value in kwargs.items():
                if key == "mask":
                    values = value if isinstance(value, list) else [value]
                    masks = [_history(v) for v in values]
                elif value is not None and key != "training":
                    raise refuse_layer(name, entry["class_name"], f"called with {key}=...: not modelled")
        data_nodes.update(inbound)
        layer = ops[name]
        described, shown = describe_layer(layer, name, inbound)
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
