"""A model as an ordered list of layers, framework-free, and its forward pass (NumPy, float64).

``LayerGraph(inputs, layers, outputs)`` describes a Sequential or functional
model: each ``Layer`` has a name, a kind (Keras's class name), the names of
the layers it reads (``inbound``; two for Concatenate), its options and its
weights in Keras's ``get_weights()`` order. Layers are listed so that every
layer comes after the layers it reads. ``reference.ModelSpec`` is one builder
of such a description (``spec_graph``); ``keras_impl/verify`` reads one from a
Keras file. Nothing here knows Keras.

Each layer maps ``(x, mask)`` to ``(y, mask')``; a mask is (B, T) booleans,
True where a step is valid, or None. Keras 3.15.1's rules, layer by layer:

    InputLayer              y = x                                   mask' = None
    Masking(v)              m = any(x != v, features); y = x * m    mask' = m
    Embedding(E, mask_zero) y = E[ids]                              mask' = ids != 0 if mask_zero else None
    LSTM, GRU, SimpleRNN    reference.lstm_forward / gru_forward / simple_rnn_forward (mask honoured)
                                                                    mask' = mask if return_sequences else None
    Bidirectional           two such calls (each copy its own cell), each with zero_output_for_mask =
                            return_sequences (Keras forces it), the second's sequence flipped back,
                            then merged                             mask' = mask if return_sequences else None
    Dense(act), TimeDistributed(Dense(act))
                            y = act(x K + b) on the last axis       mask' = mask
    Activation(act), Dropout, SpatialDropout1D (inference: identity)
                                                                    mask' = mask
    GlobalAveragePooling1D  y = sum_t m_t x_t / sum_t m_t  (mean without a mask; a row with no
                            valid step is 0/0 = NaN, as in Keras)   mask' = None
    GlobalMaxPooling1D      y = max_t x_t over EVERY step: Keras's layer does not take the mask
                            (it drops it with a warning)            mask' = None
    Flatten                 y = reshape(x, (B, -1)); drops the mask mask' = None
    Concatenate(axis=-1)    y = [x_1, x_2] on the last axis         mask' = None if both are None, else
                                                                    m_1 OR m_2 (None counts as all True)

Activations of Dense, TimeDistributed and Activation: linear, sigmoid, softmax (last axis, max
subtracted), tanh, relu. A recurrent layer's ``activation`` and ``recurrent_activation`` are the
cells' (``reference.cells.ACTIVATIONS``: tanh, sigmoid, Keras 3's hard_sigmoid, relu, linear).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bidirectional import MERGE_MODES
from .gru import gru_forward
from .lstm import lstm_forward, sigmoid
from .simple_rnn import simple_rnn_forward

ACTIVATIONS = ("linear", "sigmoid", "softmax", "tanh", "relu")
KINDS = ("InputLayer", "Masking", "Embedding", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "Dense",
         "Activation", "Dropout", "SpatialDropout1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten",
         "Concatenate")
RECURRENT_KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}  # Keras class -> reference cell


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` is one of ``KINDS``; ``options`` and ``weights`` as ``layer_forward`` reads them.

    Options by kind: Masking ``mask_value``; Embedding ``mask_zero``; LSTM, GRU and SimpleRNN
    ``return_sequences``, ``go_backwards``, ``zero_output_for_mask`` and the cell's options
    ``activation``, ``recurrent_activation`` (not SimpleRNN), ``reset_after`` (GRU), Keras's defaults
    when absent; Bidirectional ``merge_mode``, ``return_sequences`` and ``forward`` / ``backward``, each
    a dict with ``go_backwards``, ``cell`` ("lstm" when absent, "gru", "simple_rnn") and that cell's
    options; Dense, TimeDistributed and Activation ``activation``. Weights: Embedding ``(E,)``; LSTM,
    GRU, SimpleRNN ``(kernel, recurrent_kernel, bias)``, bias None for ``use_bias=False``;
    Bidirectional the forward triple then the backward one; Dense and TimeDistributed ``(kernel, bias)``.
    """
    name: str
    kind: str
    inbound: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)
    weights: tuple = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class LayerGraph:
    """Model inputs (names of InputLayer layers), the layers in an order that respects ``inbound``, outputs."""
    inputs: tuple[str, ...]
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...]

    def __post_init__(self):
        seen = set()
        for layer in self.layers:
            missing = [n for n in layer.inbound if n not in seen]
            if missing:
                raise ValueError(f"layer {layer.name!r} reads {missing}, which no earlier layer produces")
            if layer.kind == "InputLayer" and layer.name not in self.inputs:
                raise ValueError(f"InputLayer {layer.name!r} is not among the graph's inputs {self.inputs}")
            seen.add(layer.name)
        for name in tuple(self.inputs) + tuple(self.outputs):
            if name not in seen:
                raise ValueError(f"graph input/output {name!r} is not a layer of the graph")


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """Keras's activation ``name`` (softmax over the last axis)."""
    if name == "linear":
        return z
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")


def _recurrent(x, weights, mask, options, return_sequences, zero_output_for_mask):
    """One recurrent layer: ``options["cell"]`` (default "lstm") with its options, as the oracle's layer call."""
    # Initial states are zeros, so what a backend outputs before a row's first valid step (h0 or 0,
    # reference/lstm.py) is 0 either way.
    cell = options.get("cell", "lstm")
    common = dict(mask=mask, go_backwards=bool(options.get("go_backwards", False)), return_sequences=return_sequences,
                  zero_output_for_mask=zero_output_for_mask, activation=options.get("activation", "tanh"))
    if cell == "simple_rnn":
        return simple_rnn_forward(x, *weights, **common)
    recurrent_activation = options.get("recurrent_activation", "sigmoid")
    if cell == "gru":
        return gru_forward(x, *weights, reset_after=bool(options.get("reset_after", True)),
                           recurrent_activation=recurrent_activation, **common)
    if cell == "lstm":
        return lstm_forward(x, *weights, recurrent_activation=recurrent_activation, **common)
    raise ValueError(f"unknown cell {cell!r}; expected one of lstm, gru, simple_rnn")


def layer_forward(layer: Layer, inputs: list, masks: list):
    """``(y, mask')`` of one layer on its inbound values and masks (lists, one entry per inbound layer)."""
    kind, opt, w = layer.kind, layer.options, layer.weights
    x, mask = inputs[0], masks[0]
    if kind == "Masking":
        m = np.any(x != opt["mask_value"], axis=-1)
        return x * m[..., None], m
    if kind == "Embedding":
        ids = np.asarray(x).astype(np.int64)
        return np.asarray(w[0], dtype=np.float64)[ids], (ids != 0 if opt.get("mask_zero") else None)
    if kind in RECURRENT_KINDS:
        rs = bool(opt["return_sequences"])
        y = _recurrent(x, w, mask, {**opt, "cell": RECURRENT_KINDS[kind]}, rs, bool(opt.get("zero_output_for_mask", False)))
        return y, (mask if rs else None)
    if kind == "Bidirectional":
        rs = bool(opt["return_sequences"])
        y_f = _recurrent(x, w[:3], mask, opt["forward"], rs, rs)  # Keras forces zero_output_for_mask = return_sequences
        y_b = _recurrent(x, w[3:6], mask, opt["backward"], rs, rs)
        if rs:
            y_b = y_b[:, ::-1]  # Keras flips the second layer's sequence, whatever its direction
        return MERGE_MODES[opt["merge_mode"]](y_f, y_b), (mask if rs else None)
    if kind in ("Dense", "TimeDistributed"):
        return activation(opt["activation"], x @ w[0] + w[1]), mask
    if kind == "Activation":
        return activation(opt["activation"], x), mask
    if kind in ("Dropout", "SpatialDropout1D", "InputLayer"):
        return x, (mask if kind != "InputLayer" else None)
    if kind == "GlobalAveragePooling1D":
        if mask is None:
            return x.mean(axis=1), None
        m = mask[..., None].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # a row with no valid step: NaN, as in Keras
            return np.where(m > 0, x, 0.0).sum(axis=1) / m.sum(axis=1), None
    if kind == "GlobalMaxPooling1D":
        return x.max(axis=1), None
    if kind == "Flatten":
        return x.reshape(x.shape[0], -1), None
    if kind == "Concatenate":
        y = np.concatenate(inputs, axis=-1)
        if all(m is None for m in masks):
            return y, None
        full = [np.ones(v.shape[:2], bool) if m is None else m for v, m in zip(inputs, masks)]
        return y, np.logical_or.reduce(full)
    raise ValueError(f"layer {layer.name!r}: unknown kind {kind!r}")


def graph_forward(graph: LayerGraph, inputs) -> dict:
    """Every layer's ``(output, mask)`` (a dict by layer name), for ``inputs`` in ``graph.inputs`` order.

    Float inputs are computed in float64; Embedding inputs are integer ids.
    """
    if not isinstance(graph, LayerGraph):
        raise TypeError(f"graph must be a LayerGraph, got {type(graph).__name__}")
    if not isinstance(inputs, (list, tuple)) or len(inputs) != len(graph.inputs):
        raise ValueError(f"inputs must be a list of {len(graph.inputs)} arrays (one for each of {graph.inputs})")
    values: dict = {}
    for name, x in zip(graph.inputs, inputs):
        x = np.asarray(x)
        values[name] = (x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float64), None)
    for layer in graph.layers:
        if layer.kind == "InputLayer":
            continue
        ins = [values[n] for n in layer.inbound]
        values[layer.name] = layer_forward(layer, [v for v, _ in ins], [m for _, m in ins])
    return values


def spec_graph(spec, weights) -> LayerGraph:
    """The ``LayerGraph`` of a ``reference.ModelSpec`` (weights in ``model.get_weights()`` order), any cell."""
    cell = spec.cell_config
    kind = cell.layer_name()  # LSTM, GRU, SimpleRNN
    options = {"activation": cell.activation}
    if cell.kind != "simple_rnn":
        options["recurrent_activation"] = cell.recurrent_activation
    if cell.kind == "gru":
        options["reset_after"] = cell.reset_after
    n = cell.weight_count  # 2 without a bias

    def triple(k):  # a direction's (kernel, recurrent_kernel, bias), bias None without one
        return tuple(weights[k:k + n]) + ((None,) if n == 2 else ())

    layers = [Layer("x", "InputLayer")]
    prev = "x"
    if spec.mask_value is not None:
        layers.append(Layer("masking", "Masking", (prev,), {"mask_value": spec.mask_value}))
        prev = "masking"
    k = 0
    for i, _ in enumerate(spec.layer_units):
        name = f"recurrent_{i}"
        if spec.bidirectional:
            layers.append(Layer(name, "Bidirectional", (prev,), {
                "merge_mode": spec.merge_mode, "return_sequences": True,
                "forward": {"cell": cell.kind, "go_backwards": False, **options},
                "backward": {"cell": cell.kind, "go_backwards": True, **options}}, triple(k) + triple(k + n)))
            k += 2 * n
        else:
            layers.append(Layer(name, kind, (prev,), {
                "return_sequences": True, "go_backwards": spec.direction == "backward", **options}, triple(k)))
            k += n
        prev = name
    layers.append(Layer("head", "TimeDistributed", (prev,), {"activation": "sigmoid"}, tuple(weights[k:k + 2])))
    return LayerGraph(("x",), tuple(layers), ("head",))
