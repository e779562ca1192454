"""A loaded Keras model -> ``reference.layers.LayerGraph``, refusing by name what the oracle does not implement.

Every layer's class is checked exactly (``type(layer) is keras.layers.LSTM``: a
registered subclass is a different layer, whatever it inherits), then every
option that changes what the layer computes at inference, by its family's
module in ``layers/`` (one per Keras family, as ``reference/layers/``).

The model is walked as the graph Keras runs (a Sequential's too), call by call
(``_Walk``): a layer called twice (shared weights) becomes two oracle layers,
``dense`` and ``dense@1``; a nested Sequential or functional model's layers join
the one list as ``sub/layer`` (``sub@1/layer`` for its second call). A layer with
several outputs (``return_state``, ``merge_mode=None``) has one reference per
output (``lstm``, ``lstm:1``...: ``reference/layers/outputs.py``), and its readers
name the one they read. ``Graph.scope`` keeps the Keras tensor of every
reference, in the graph it belongs to, for ``compare.keras_outputs``.

Functional models saved by Keras 3.15 record the masks their layers received as
explicit ``mask=`` arguments computed by small op nodes (``NotEqual`` for
Embedding and Masking, ``Any``, and the ops of Concatenate's ``compute_mask``).
Those ops may only feed masks; ``Graph.mask_sources`` keeps, per layer, the
reference whose value Keras passed as its mask, so that ``compare.py`` can check it against
the mask the oracle propagates by Keras's rules (reference/layers/). Call arguments other than
``mask`` and ``training`` are refused, except those a kind declares (``layers.CALL_ARGUMENTS``: attention's
``key``, ``attention_mask``, ``use_causal_mask``...): a tensor among them is one more inbound layer, a mask
passed by keyword is an explicit mask like the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from reference.layers import Layer, LayerGraph, layer_of, tensor_ref
from reference.layers.registry import WRAPPERS

from .dequantize import KINDS as QUANTIZED_KINDS
from .dequantize import MODES as QUANTIZED_MODES
from .errors import VerifyRefusal
from .layers import CALL_ARGUMENTS, DESCRIBE
from .load import refuse_layer


@dataclass
class Scope:
    """One Keras graph and the symbolic tensors of it that give Keras's values, by tensor reference: the model's
    own graph, or a nested model's (``calls``), which ``compare.keras_outputs`` runs on the values its call
    received in the enclosing graph (a nested model's layers have no tensors in the enclosing graph)."""
    inputs: list                                # the graph's input KerasTensors
    tensors: dict = field(default_factory=dict)  # reference -> KerasTensor: every layer output, every mask op's
    # (KerasTensors of this graph fed to a nested model, its Scope, the masks fed with them: KerasTensor or None)
    calls: list = field(default_factory=list)


@dataclass
class Graph:
    """The oracle's description plus what the comparison needs from the Keras side."""
    graph: LayerGraph
    keras_layers: dict                                 # layer name -> the Keras layer (InputLayers included)
    input_dtypes: dict                                 # input name -> Keras input dtype
    input_shapes: dict                                 # input name -> shape without the batch
    mask_sources: dict = field(default_factory=dict)   # layer name -> [reference or None], Keras's explicit masks
    options: dict = field(default_factory=dict)        # layer name -> "options that matter", for the table
    scope: Scope | None = None                         # where Keras's value of every reference is read


def describe_layer(layer, name: str, inbound: tuple, call: dict | None = None) -> tuple[Layer, str]:
    """``(oracle Layer, options shown in the table)`` for one Keras layer, or a VerifyRefusal.

    The class must be Keras's own, exactly (``type(layer) is keras.layers.X``: a registered subclass is a
    different layer, whatever it inherits); its family's module (``layers/``) checks its options, and the call
    arguments (``call``) of the kinds that take some (``layers.CALL_ARGUMENTS``).
    """
    import keras
    cls = type(layer)
    quantized = getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None)
    if quantized is not None and (quantized not in QUANTIZED_MODES or cls.__name__ not in QUANTIZED_KINDS):
        raise refuse_layer(name, cls.__name__, f"quantized ({quantized}): verified for {', '.join(QUANTIZED_MODES)} "
                                               f"on {', '.join(QUANTIZED_KINDS)} only")
    describe = DESCRIBE.get(cls.__name__)
    if describe is None or cls is not getattr(keras.layers, cls.__name__, None):
        raise refuse_layer(name, cls.__name__)
    if cls.__name__ in WRAPPERS:  # a wrapper's inner layer is described by this same function
        return describe(layer, name, inbound, describe_layer)
    if cls.__name__ in CALL_ARGUMENTS:
        return describe(layer, name, inbound, call or {})
    return describe(layer, name, inbound)


def describe_model(model) -> Graph:
    """The ``Graph`` of a loaded Sequential or functional Keras model."""
    import keras
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
    return _describe_graph(model._functional, input_names=("input",))  # the graph Keras runs a Sequential as


def _describe_functional(model) -> Graph:
    return _describe_graph(model)


def _describe_graph(functional, input_names=None) -> Graph:
    inputs = list(input_names or [t._keras_history.operation.name for t in functional.inputs])
    walk = _Walk(inputs)
    walk.layers.extend(Layer(name, "InputLayer") for name in inputs)
    scope, outputs = walk.graph(functional, "", inputs)
    for ref in outputs:
        if ref in walk.op_refs:
            raise refuse_layer(layer_of(ref), type(walk.op_refs[ref]).__name__,
                               "a Keras op as a model output (ops may only compute masks)")
    dtypes, shapes = {}, {}
    for name, tensor in zip(inputs, functional.inputs):
        dtypes[name], shapes[name] = _input_info(tensor)
    return Graph(LayerGraph(tuple(inputs), tuple(walk.layers), tuple(outputs)), walk.keras_layers, dtypes, shapes,
                 walk.mask_sources, walk.options, scope)


class _Walk:
    """Flattens a functional graph, nested models and shared layers included, into one list of oracle layers.

    A layer called n times is n oracle layers sharing its weights: ``dense``, ``dense@1``, ... (its calls in the
    graph's order); a nested model's layers are named ``model/layer`` (``model@1/layer`` for its second call),
    its inputs being the tensors its call received. Every tensor is named by a reference (``tensor_ref``).
    """

    def __init__(self, inputs):
        self.layers, self.keras_layers, self.options, self.mask_sources = [], {}, {}, {}
        self.fed_masks = {}  # id(input KerasTensor of the graph being walked) -> the mask its model's call got
        self.op_refs = {}  # reference -> the mask op (keras.src.ops) whose output it is
        self.names = set(inputs)  # every call's name so far: layers, ops, nested models

    def graph(self, functional, prefix: str, input_refs, input_masks=()) -> tuple[Scope, list]:
        """``(Scope, output references)`` of one graph whose inputs are ``input_refs``; its layers appended.

        ``input_masks``: a nested model's call's explicit masks, one reference (or None) per input. Keras 3.15.1
        sets each on its input tensor (keras/src/models/functional.py L177-183; Sequential.call hands its mask
        to it, sequential.py L237-241), and every layer reading that input without a mask of its own gets it
        (keras/src/layers/layer.py L947-959): recorded as that layer's explicit mask, checked like the others.
        """
        from keras.src.ops.function import make_node_key
        produced = {id(t): ref for t, ref in zip(functional.inputs, input_refs)}  # KerasTensor -> reference
        self.fed_masks = {id(t): m for t, m in zip(functional.inputs, input_masks) if m is not None}
        scope = Scope(list(functional.inputs))
        order = {id(op): k for k, op in enumerate(functional.operations)}
        for depth in sorted(functional._nodes_by_depth, reverse=True):  # the order Keras runs them in
            calls = []
            for node in functional._nodes_by_depth[depth]:
                op = node.operation
                own = [n for i, n in enumerate(op._inbound_nodes) if make_node_key(op, i) in functional._nodes]
                calls.append((order[id(op)], next(k for k, n in enumerate(own) if n is node), node))
            for _, call, node in sorted(calls, key=lambda c: c[:2]):  # within a depth: model order, then calls
                if node.is_input:
                    continue
                op = node.operation
                name = prefix + op.name + (f"@{call}" if call else "")
                if name in self.names or ":" in op.name:
                    raise refuse_layer(name, type(op).__name__, "its name is taken by another layer's call or "
                                                                "holds ':', with which verify names outputs")
                self.names.add(name)
                refs = self.node(op, node, name, produced, scope)
                for tensor, ref in zip(node.outputs, refs):
                    produced[id(tensor)] = ref
        return scope, [produced[id(t)] for t in functional.outputs]

    def node(self, op, node, name: str, produced: dict, scope: Scope) -> list:
        """The references of one call's outputs: an oracle layer, a nested model's outputs, or a mask op's."""
        import keras
        from keras.src import tree
        cls = type(op).__name__
        if (type(op).__module__ or "").startswith("keras.src.ops"):  # a mask op: its outputs, to check masks by
            refs = [tensor_ref(name, k) for k in range(len(node.outputs))]
            for ref, tensor in zip(refs, node.outputs):
                self.op_refs[ref], scope.tensors[ref] = op, tensor
            return refs
        args = tree.flatten(node.arguments.args)
        if any(id(a) not in produced for a in args):
            raise refuse_layer(name, cls, "called with a constant argument")
        inbound = tuple(produced[id(a)] for a in args)
        masks, call = [], {}
        accepted = CALL_ARGUMENTS.get(cls, {})  # the call arguments a kind declares (attention's key, ...)
        for key, value in node.arguments.kwargs.items():
            role = accepted.get(key)
            if key == "mask":
                values = value if isinstance(value, (list, tuple)) else [value]
                if any(m is not None and id(m) not in produced for m in values):
                    raise refuse_layer(name, cls, "given a mask from outside the model's graph")
                masks = [None if m is None else produced[id(m)] for m in values]
            elif value is None or key == "training":
                continue
            elif role == "option":
                call[key] = value
            elif role is not None and id(value) not in produced:
                raise refuse_layer(name, cls, f"called with a constant {key}")
            elif role == "input":
                call[key] = produced[id(value)]
            elif isinstance(role, int):  # an input's explicit mask, by keyword
                masks += [None] * (role + 1 - len(masks))
                masks[role] = produced[id(value)]
            else:
                raise refuse_layer(name, cls, f"called with {key}=...: not modelled")
        inbound += tuple(call[k] for k, role in accepted.items() if role == "input" and k in call)
        for ref in inbound:
            if ref in self.op_refs:
                raise refuse_layer(layer_of(ref), type(self.op_refs[ref]).__name__,
                                   "a Keras op on the data path (ops may only compute masks)")
        if not masks and any(id(a) in self.fed_masks for a in args):  # a nested graph's input, its call's mask
            masks = [self.fed_masks.get(id(a)) for a in args]
        if type(op) is keras.Sequential or (isinstance(op, keras.Model) and cls == "Functional"):
            mask_tensors = _explicit_masks(node, len(args))
            fed_masks = self.fed_masks
            child, outputs = self.graph(op._functional if type(op) is keras.Sequential else op, name + "/", inbound,
                                        masks + [None] * (len(args) - len(masks)))
            self.fed_masks = fed_masks
            scope.calls.append((args, child, mask_tensors))
            return outputs
        # (the three-argument call where there are no call arguments: tests wrap describe_layer so)
        described, shown = describe_layer(op, name, inbound, call) if call else describe_layer(op, name, inbound)
        self.layers.append(described)
        self.keras_layers[name], self.options[name] = op, shown
        if any(m is not None for m in masks):
            self.mask_sources[name] = masks
        refs = [tensor_ref(name, k) for k in range(len(node.outputs))]
        scope.tensors.update(zip(refs, node.outputs))
        return refs


def _explicit_masks(node, count: int) -> list:
    """The KerasTensors of the masks a nested model's call was given explicitly, one (or None) per input."""
    value = node.arguments.kwargs.get("mask")
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return values + [None] * (count - len(values))
