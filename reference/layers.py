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
    LSTM, GRU, SimpleRNN    reference.lstm_forward / gru_forward / simple_rnn_forward (mask honoured: reference/rnn.py)
                                                                    mask' = mask if return_sequences else None
    Bidirectional           reference/bidirectional.py: two such calls (each copy its own cell), zero_output_for_mask =
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
cells' (``reference.ACTIVATIONS``: tanh, sigmoid, Keras 3's hard_sigmoid, relu, linear); all in
``reference/activations.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import LAYER_ACTIVATIONS as ACTIVATIONS  # noqa: F401  (what a Dense may use: keras_impl.verify reads it here)
from .activations import activate
from .bidirectional import MERGE, run_bidirectional
from .cells import Cell, CellWeights, check_cell_weights
from .recurrent import layer_call

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

    @property
    def cell_weights(self) -> tuple[CellWeights, ...]:
        """A recurrent layer's ``CellWeights``: one, or a Bidirectional's forward then backward."""
        w = self.weights
        return (CellWeights(*w[:3]),) if self.kind in RECURRENT_KINDS else (CellWeights(*w[:3]), CellWeights(*w[3:6]))


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


def _cell(options: dict, weights) -> Cell:
    """The ``Cell`` of a recurrent layer's (or a Bidirectional copy's) options; use_bias read off its weights."""
    kind = options.get("cell", "lstm")
    extra = {} if kind == "simple_rnn" else {"recurrent_activation": options.get("recurrent_activation", "sigmoid")}
    if kind == "gru":
        extra["reset_after"] = bool(options.get("reset_after", True))
    return Cell(kind, activation=options.get("activation", "tanh"), use_bias=weights[2] is not None, **extra)


def _recurrent(x, weights, mask, options, return_sequences, zero_output_for_mask, tape=None):
    """One recurrent layer: ``options["cell"]`` (default "lstm") with its options, as the oracle's layer call.

    With a ``tape`` (a list) its ``RNNCache`` is appended, for BPTT.
    """
    # Initial states are zeros, so what a backend outputs before a row's first valid step (h0 or 0,
    # reference/rnn.py) is 0 either way.
    result = layer_call(_cell(options, weights), x, weights, mask=mask,
                        go_backwards=bool(options.get("go_backwards", False)), return_sequences=return_sequences,
                        zero_output_for_mask=zero_output_for_mask, keep_cache=tape is not None)
    if tape is None:
        return result
    y, cache = result
    tape.append(cache)
    return y


def _bidirectional(layer: Layer, x, mask, tape=None):
    """``(merged output, halves, caches)`` of a Bidirectional layer: ``reference.bidirectional.run_bidirectional``."""
    opt = layer.options
    fwd_w, bwd_w = layer.cell_weights
    cells = _cell(opt["forward"], fwd_w), _cell(opt["backward"], bwd_w)
    fwd_w, bwd_w = (check_cell_weights(c, *w, features=x.shape[-1], prefix=f"{layer.name}.{d}.")
                    for c, w, d in zip(cells, (fwd_w, bwd_w), ("forward", "backward")))
    states = tuple(np.zeros((x.shape[0], w.recurrent_kernel.shape[0])) for c, w in zip(cells, (fwd_w, bwd_w))
                   for _ in c.state_names)
    rs = bool(opt["return_sequences"])  # Keras forces zero_output_for_mask = return_sequences on both copies
    (y_f, y_b), _, caches = run_bidirectional(x, fwd_w, bwd_w, states, mask, rs, keep_cache=tape is not None,
                                              cell=cells[0], backward_cell=cells[1],
                                              go_backwards=tuple(bool(opt[d].get("go_backwards", False))
                                                                 for d in ("forward", "backward")))
    if tape is not None:
        tape.append({"halves": (y_f, y_b), "caches": caches})
    return MERGE[opt["merge_mode"]](y_f, y_b)


def layer_forward(layer: Layer, inputs: list, masks: list, tape: list | None = None):
    """``(y, mask')`` of one layer on its inbound values and masks (lists, one entry per inbound layer).

    With a ``tape`` (a list), what the layer's backward (``reference/backward.py``) needs is appended.
    """
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
        y = _recurrent(x, w, mask, {**opt, "cell": RECURRENT_KINDS[kind]}, rs, bool(opt.get("zero_output_for_mask", False)),
                       tape)
        return y, (mask if rs else None)
    if kind == "Bidirectional":
        return _bidirectional(layer, x, mask, tape), (mask if opt["return_sequences"] else None)
    if kind in ("Dense", "TimeDistributed"):
        a = x @ w[0] + w[1]
        y = activate(opt["activation"], a)
        if tape is not None:
            tape.append({"x": x, "a": a, "y": y})
        return y, mask
    if kind == "Activation":
        return activate(opt["activation"], x), mask
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


def graph_forward(graph: LayerGraph, inputs, *, masks=None, tape: dict | None = None) -> dict:
    """Every layer's ``(output, mask)`` (a dict by layer name), for ``inputs`` in ``graph.inputs`` order.

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
        ins = [values[n] for n in layer.inbound]
        records = None if tape is None else tape.setdefault(layer.name, [])
        values[layer.name] = layer_forward(layer, [v for v, _ in ins], [m for _, m in ins], records)
    return values


def spec_graph(spec, weights) -> LayerGraph:
    """The ``LayerGraph`` of a ``reference.ModelSpec`` (weights in ``model.get_weights()`` order), any cell."""
    cell = spec.cell_config
    options = {"cell": cell.kind, "activation": cell.activation}
    if cell.kind != "simple_rnn":
        options["recurrent_activation"] = cell.recurrent_activation
    if cell.kind == "gru":
        options["reset_after"] = cell.reset_after
    arrays = iter(weights)

    def direction():  # the next layer's (kernel, recurrent_kernel, bias), bias None without one
        return CellWeights.of([next(arrays) for _ in range(cell.weight_count)])

    layers = [Layer("x", "InputLayer")]
    prev = "x"
    if spec.mask_value is not None:
        layers.append(Layer("masking", "Masking", (prev,), {"mask_value": spec.mask_value}))
        prev = "masking"
    for i, _ in enumerate(spec.layer_units):
        name = f"recurrent_{i}"
        if spec.bidirectional:
            layers.append(Layer(name, "Bidirectional", (prev,), {
                "merge_mode": spec.merge_mode, "return_sequences": True,
                "forward": {**options, "go_backwards": False}, "backward": {**options, "go_backwards": True}},
                (*direction(), *direction())))
        else:
            layers.append(Layer(name, cell.layer_name(), (prev,), {
                "return_sequences": True, "go_backwards": spec.direction == "backward", **options}, direction()))
        prev = name
    layers.append(Layer("head", "TimeDistributed", (prev,), {"activation": "sigmoid"}, (next(arrays), next(arrays))))
    return LayerGraph(("x",), tuple(layers), ("head",))
