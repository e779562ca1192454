"""A model as an ordered list of layers, framework-free, and its forward pass (NumPy, float64).

``LayerGraph(inputs, layers, outputs)`` describes a Sequential or functional
model: each ``Layer`` has a name, a kind (Keras's class name), the names of
the layers it reads (``inbound``; two or more for a merge), its options and
its weights in Keras's ``get_weights()`` order. Layers are listed so that
every layer comes after the layers it reads. ``reference.ModelSpec`` is one
builder of such a description (``spec_graph``); ``keras_impl/verify`` reads
one from a Keras file. Nothing here knows Keras.

Each layer maps ``(x, mask)`` to ``(y, mask')``; a mask is (B, T) booleans,
True where a step is valid, or None.

A layer with several outputs (an RNN's ``return_state``, a Bidirectional's
``merge_mode=None``) returns ``Outputs(((y0, mask0), (y1, mask1), ...))`` in
Keras's order. Its tensors are named by *references*: ``"lstm"`` is a layer's
first (or only) output, ``"lstm:1"``, ``"lstm:2"``... the next ones (``tensor_ref``;
Keras's ``keras_history`` is ``[layer, node_index, tensor_index]``: the node is
the layer itself here, a layer called twice being two layers, e.g. ``dense`` and
``dense@1``). ``inbound`` and ``LayerGraph.outputs`` hold references, and
``graph_forward`` returns one ``(value, mask)`` per reference.

What each kind computes, and which mask it passes on (Keras 3.15.1's rules),
is written in its family's module, registered in ``registry.py``. The one
wrapper is here:

    TimeDistributed(inner)  y[:, t] = inner(x[:, t]) for every t: the inner layer run on (B*T, ...) and
                            reshaped back, its own mask' dropped; without an ``inner`` option, a Dense
                            (``activation`` and its ``(kernel, bias)`` weights)            mask' = mask
                            (Keras 3.15.1 keras/src/layers/rnn/time_distributed.py L54: supports_masking and
                            no compute_mask, so Layer.compute_mask passes the mask on). An inner layer whose
                            call takes a mask (``inner_reads_mask``) gets step t's slice mask[:, t] as its own
                            (L115-125): for a (B, T, T2...) mask (a Masking over a 4-D input) the inner layer's
                            own mask, modelled (every step at once on (B*T, T2...)); for a (B, T) mask a (B,)
                            vector, which Keras's recurrent layers cannot run (IndexError): refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cells import CellWeights
from .registry import FORWARD, KINDS
from .outputs import Outputs, layer_of, tensor_ref
from .rnn import cell_weights


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` is one of ``KINDS``; ``options`` and ``weights`` as its forward reads them.

    Options and weights by kind: the docstring of the kind's family module (``reference/layers/core.py``,
    ``rnn.py``...).
    """
    name: str
    kind: str
    inbound: tuple[str, ...] = ()  # tensor references (``tensor_ref``), one per input
    options: dict = field(default_factory=dict)
    weights: tuple = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def cell_weights(self) -> tuple[CellWeights, ...]:
        """A recurrent layer's ``CellWeights``: one, or a Bidirectional's forward then backward."""
        return cell_weights(self)


@dataclass(frozen=True)
class LayerGraph:
    """Model inputs (names of InputLayer layers), the layers in an order that respects ``inbound``, outputs."""
    inputs: tuple[str, ...]
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...]

    def __post_init__(self):
        seen = set()
        for layer in self.layers:
            missing = [n for n in layer.inbound if layer_of(n) not in seen]
            if missing:
                raise ValueError(f"layer {layer.name!r} reads {missing}, which no earlier layer produces")
            if layer.kind == "InputLayer" and layer.name not in self.inputs:
                raise ValueError(f"InputLayer {layer.name!r} is not among the graph's inputs {self.inputs}")
            seen.add(layer.name)
        for name in tuple(self.inputs) + tuple(self.outputs):
            if layer_of(name) not in seen:
                raise ValueError(f"graph input/output {name!r} is not a layer of the graph")


def _time_distributed(layer: Layer, inputs: list, masks: list, tape):
    inner = layer.options.get("inner")
    if inner is None:  # TimeDistributed(Dense): a Dense on the last axis is the same map
        return FORWARD["Dense"](layer, inputs, masks, tape)
    x, mask = inputs[0], masks[0]
    batch, steps = x.shape[:2]
    inner_mask = None
    if mask is not None and layer.options.get("inner_reads_mask", False):
        if mask.ndim < 3:  # each step's slice is a (B,) vector, no mask of the inner layer's steps
            raise ValueError(f"layer {layer.name!r}: TimeDistributed passes each step's column of its mask to its "
                             f"inner {inner.kind}: a (B,) vector for a (B, T) mask, which the oracle does not model "
                             "(Keras's own recurrent layers cannot run it)")
        inner_mask = mask.reshape(batch * steps, *mask.shape[2:])  # step t's slice mask[:, t], every t at once
    y, _ = layer_forward(inner, [x.reshape(batch * steps, *x.shape[2:])], [inner_mask])
    return y.reshape(batch, steps, *y.shape[1:]), mask


def layer_forward(layer: Layer, inputs: list, masks: list, tape: list | None = None):
    """``(y, mask')`` of one layer on its inbound values and masks (lists, one entry per inbound layer).

    With a ``tape`` (a list), what the layer's backward (``reference/backward.py``) needs is appended.
    """
    if layer.kind == "TimeDistributed":
        return _time_distributed(layer, inputs, masks, tape)
    return FORWARD[layer.kind](layer, inputs, masks, tape)


def graph_forward(graph: LayerGraph, inputs, *, masks=None, tape: dict | None = None) -> dict:
    """Every tensor's ``(value, mask)``, a dict by reference (``tensor_ref``: a layer's name for its first output),
    for ``inputs`` in ``graph.inputs`` order.

    Float inputs are computed in float64; Embedding inputs are integer ids. ``masks``: one (B, T) mask
    or None per input (``model_forward``'s ``mask`` argument). With a ``tape`` (a dict), each layer's
    record for BPTT is kept under its name (``reference.backward.graph_backward`` reads it).
    """
    if not isinstance(graph, LayerGraph):
        raise TypeError(f"graph must be a LayerGraph, got {type(graph).__name__}")
    if not isinstance(inputs, (list, tuple)) or len(inputs) != len(graph.inputs):
        raise ValueError(f"inputs must be a list of {len(graph.inputs)} arrays (one for each of {graph.inputs})")
    values: dict = {}
    for name, x, mask in zip(graph.inputs, inputs, [None] * len(inputs) if masks is None else masks):
        x = np.asarray(x)
        values[name] = (x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float64), mask)
    for layer in graph.layers:
        if layer.kind == "InputLayer":
            continue
        missing = [ref for ref in layer.inbound if ref not in values]
        if missing:
            raise ValueError(f"layer {layer.name!r} reads {missing}, which its layers do not output")
        ins = [values[ref] for ref in layer.inbound]
        records = None if tape is None else tape.setdefault(layer.name, [])
        result = layer_forward(layer, [v for v, _ in ins], [m for _, m in ins], records)
        for index, value in enumerate(result if isinstance(result, Outputs) else (result,)):
            values[tensor_ref(layer.name, index)] = value
    return values
