"""The known wrong conventions, one table: when a layer disagrees, which one does Keras's output match?

Converters' issue trackers are full of the same few mistakes: a ``go_backwards`` sequence left reversed, a
mask dropped on the way, the other ``zero_output_for_mask``, weights copied in another framework's gate
order or the other GRU bias form, a Bidirectional's merge read as another, Keras 2's hard_sigmoid where
Keras 3's is meant, the other output before a row's first valid step (h0 on JAX, 0 on TensorFlow and torch:
reference/rnn.py; it can differ only where the initial state is not zero, so the layer's initial states
are read after its sequence input, ``inputs[1:]``, where a caller passes them). Each entry below computes what
the failing layer would give under that mistake (the oracle's layer, changed), on the same inputs as the
layer's Keras output (Keras's own inputs to it, so that an upstream error does not hide the match);
``diagnose.py`` reports every entry whose answer is within the layer's bound of Keras's.

Each entry: ``name`` (what the report says), ``applies(layer, masks)``, ``compute(layer, inputs, masks)``
returning the output under the mistake. Gate orders: Keras LSTM i, f, c, o and ONNX i, o, f, c; Keras GRU
z, r, h and torch r, z, n (ONNX's GRU is z, r, h, as Keras).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from reference.bidirectional import MERGE as MERGE_OF
from reference.layers import Layer, Outputs, layer_forward
from reference.layers.rnn import RECURRENT_KINDS
from reference.vocabulary import MERGE_MODES


@dataclass(frozen=True)
class Hypothesis:
    name: str
    applies: Callable
    compute: Callable


def _cell_of(options: dict, kind: str) -> str:
    return RECURRENT_KINDS.get(kind) or options.get("cell", "lstm")


def _copies(layer: Layer):
    """``(options, (start, stop) of its weights)`` of each recurrent copy of the layer (one, or two)."""
    if layer.kind in RECURRENT_KINDS:
        return [(layer.options, (0, 3), RECURRENT_KINDS[layer.kind])]
    if layer.kind == "Bidirectional" and "conv_lstm" in layer.options["forward"]:
        return []  # ConvLSTM copies: the cell hypotheses read vector cells (the merge and flip ones still apply)
    if layer.kind == "Bidirectional":  # each copy's cells in turn (an RNN copy may hold several), 3 weights each
        cells = [c for d in ("forward", "backward") for c in layer.options[d].get("cells", [layer.options[d]])]
        return [(c, (3 * k, 3 * k + 3), c.get("cell", "lstm")) for k, c in enumerate(cells)]
    return []


def _permute_gates(layer: Layer, cell: str, order) -> Layer:
    """The layer with every copy of ``cell``'s gate blocks taken in ``order`` (kernel, recurrent, bias)."""
    weights = list(layer.weights)
    for _, (start, _), kind in _copies(layer):
        if kind != cell:
            continue
        for k in range(start, start + 3):
            w = weights[k]
            if w is None:
                continue
            blocks = np.split(np.asarray(w), len(order), axis=-1)
            weights[k] = np.concatenate([blocks[i] for i in order], axis=-1)
    return replace(layer, weights=tuple(weights))


def _with_copy_options(layer: Layer, change) -> Layer:
    """The layer with ``change(options)`` applied to each recurrent copy's options."""
    if layer.kind in RECURRENT_KINDS:
        return replace(layer, options=change(dict(layer.options)))
    opt = dict(layer.options)
    for d in ("forward", "backward"):
        opt[d] = change(dict(opt[d]))
        if "cells" in opt[d]:  # an RNN copy: its loop options above, its cells' options here
            opt[d]["cells"] = [change(dict(c)) for c in opt[d]["cells"]]
    return replace(layer, options=opt)


def _other_reset_after(layer: Layer) -> Layer:
    """Each GRU copy in the other ``reset_after`` form, its bias carried over (summed, or split with zeros)."""
    weights = list(layer.weights)
    copies = _copies(layer)
    for opt, (start, _), kind in copies:
        if kind == "gru" and weights[start + 2] is not None:
            bias = np.asarray(weights[start + 2])
            weights[start + 2] = bias.sum(axis=0) if bias.ndim == 2 else np.stack([bias, np.zeros_like(bias)])
    changed = _with_copy_options(replace(layer, weights=tuple(weights)),
                                 lambda o: {**o, "reset_after": not o.get("reset_after", True)}
                                 if _cell_of(o, layer.kind) == "gru" else o)
    return changed


def _has_cell(cell: str):
    return lambda layer, masks: any(kind == cell for *_, kind in _copies(layer))


def _sequences(layer: Layer) -> bool:
    return bool(layer.options.get("return_sequences"))


def _unflipped_backward(layer, inputs, masks):
    """A Bidirectional whose backward half is merged in processing order (never flipped back)."""
    tape = []
    layer_forward(layer, inputs, masks, tape)
    y_f, y_b = tape[0]["halves"]
    return MERGE_OF[layer.options["merge_mode"]](y_f, y_b[:, ::-1])


def _merge_as(mode: str):
    def compute(layer, inputs, masks):
        return _first(layer_forward(replace(layer, options={**layer.options, "merge_mode": mode}), inputs, masks))
    return compute


def _first(result):
    """A layer forward's first output (``(y, mask)`` or ``Outputs``)."""
    return result[0][0] if isinstance(result, Outputs) else result[0]


def _run(change):
    return lambda layer, inputs, masks: _first(layer_forward(change(layer), inputs, masks))


def _keras2_hard_sigmoid(layer: Layer) -> Layer:
    """Each copy whose recurrent_activation is hard_sigmoid computing Keras 2's clip(0.2 a + 0.5, 0, 1) instead of
    Keras 3's clip(a / 6 + 0.5, 0, 1): 0.2 a = (1.2 a) / 6, so its gates' pre-activations are taken x1.2 (the
    gate columns of kernel, recurrent kernel and bias: LSTM i, f, o; GRU z, r; the candidate's untouched)."""
    weights = list(layer.weights)
    for opt, (start, _), kind in _copies(layer):
        if kind == "simple_rnn" or opt.get("recurrent_activation", "sigmoid") != "hard_sigmoid":
            continue
        gates, blocks = ((0, 1, 3), 4) if kind == "lstm" else ((0, 1), 3)
        for k in range(start, start + 3):
            if weights[k] is None:
                continue
            w = np.array(weights[k], dtype=np.float64)
            width = w.shape[-1] // blocks
            for g in gates:
                w[..., g * width:(g + 1) * width] *= 1.2
            weights[k] = w
    return replace(layer, weights=tuple(weights))


def _uses_hard_sigmoid(layer: Layer, masks) -> bool:
    return any(kind != "simple_rnn" and opt.get("recurrent_activation") == "hard_sigmoid"
               for opt, _, kind in _copies(layer))


def _initial_states(layer: Layer, inputs) -> list:
    """A recurrent layer's initial states, where the call passes them (inputs after the sequence), else []."""
    return [np.asarray(s, np.float64) for s in inputs[1:]] if layer.kind in RECURRENT_KINDS else []


def _leading_mask_matters(layer: Layer, masks, inputs=None) -> bool:
    """Whether the two leading-mask conventions can differ: a sequence output, masked steps kept as outputs,
    a mask, and an initial h that is not zero (with zero states both conventions output 0)."""
    opt = layer.options
    return (layer.kind in RECURRENT_KINDS and _sequences(layer) and not opt.get("zero_output_for_mask", False)
            and bool(masks) and masks[0] is not None
            and (inputs is None or any(np.any(s) for s in _initial_states(layer, inputs)[:1])))


def _other_leading_mask(layer, inputs, masks):
    """The layer with the other ``initial_output`` (reference/rnn.py): masked steps before a row's first valid
    one output 0 where the file's convention outputs h0, or h0 where it outputs 0."""
    from reference.layers.rnn import make_cell
    from reference.recurrent import layer_call
    opt = layer.options
    if not _leading_mask_matters(layer, masks, inputs):
        raise ValueError("the conventions agree on this call")
    other = "zeros" if opt.get("initial_output", "h0") == "h0" else "h0"
    cell = make_cell({**opt, "cell": RECURRENT_KINDS[layer.kind]}, layer.weights)
    return layer_call(cell, inputs[0], layer.weights, initial_state=_initial_states(layer, inputs) or None,
                      mask=masks[0], go_backwards=bool(opt.get("go_backwards", False)), return_sequences=True,
                      initial_output=other)


LSTM_ONNX_ORDER = (0, 3, 1, 2)  # Keras's i, f, c, o blocks read as ONNX's i, o, f, c
LSTM_ONNX_ORDER_BACK = (0, 2, 3, 1)  # and the copy the other way
GRU_TORCH_ORDER = (1, 0, 2)  # z, r, h <-> r, z, n

HYPOTHESES = [
    Hypothesis("outputs reversed in time (a go_backwards sequence not flipped back)",
               lambda layer, masks: layer.kind in (*RECURRENT_KINDS, "Bidirectional") and _sequences(layer),
               lambda layer, inputs, masks: _first(layer_forward(layer, inputs, masks))[:, ::-1]),
    Hypothesis("go_backwards read the other way",
               lambda layer, masks: layer.kind in (*RECURRENT_KINDS, "Bidirectional"),
               _run(lambda layer: _with_copy_options(layer, lambda o: {**o, "go_backwards": not o.get("go_backwards", False)}))),
    Hypothesis("the Bidirectional's backward half merged in processing order (not flipped back)",
               lambda layer, masks: layer.kind == "Bidirectional" and _sequences(layer), _unflipped_backward),
    Hypothesis("the mask ignored",
               lambda layer, masks: any(m is not None for m in masks),
               lambda layer, inputs, masks: _first(layer_forward(layer, inputs, [None] * len(masks)))),
    Hypothesis("zero_output_for_mask the other way (masked steps zeroed, or the previous output repeated)",
               lambda layer, masks: layer.kind in RECURRENT_KINDS and _sequences(layer) and masks[0] is not None,
               _run(lambda layer: replace(layer, options={**layer.options, "zero_output_for_mask":
                                                          not layer.options.get("zero_output_for_mask", False)}))),
    *[Hypothesis(f"merge mode {mode} instead of the file's",
                 lambda layer, masks, mode=mode: layer.kind == "Bidirectional" and layer.options["merge_mode"] != mode,
                 _merge_as(mode)) for mode in MERGE_MODES],
    Hypothesis("LSTM gates in ONNX's order (i, o, f, c) instead of Keras's (i, f, c, o)", _has_cell("lstm"),
               _run(lambda layer: _permute_gates(layer, "lstm", LSTM_ONNX_ORDER))),
    Hypothesis("LSTM gates in Keras's order read as ONNX's (the other way round)", _has_cell("lstm"),
               _run(lambda layer: _permute_gates(layer, "lstm", LSTM_ONNX_ORDER_BACK))),
    Hypothesis("GRU gates in torch's order (r, z, n) instead of Keras's (z, r, h)", _has_cell("gru"),
               _run(lambda layer: _permute_gates(layer, "gru", GRU_TORCH_ORDER))),
    Hypothesis("a GRU of the other reset_after form (bias carried over)", _has_cell("gru"), _run(_other_reset_after)),
    Hypothesis("Keras 2's hard_sigmoid (clip(0.2 a + 0.5)) instead of Keras 3's (clip(a / 6 + 0.5))",
               _uses_hard_sigmoid, _run(_keras2_hard_sigmoid)),
    Hypothesis("the other leading-mask convention (masked steps before a row's first valid one output 0, not h0, "
               "or h0, not 0)", _leading_mask_matters, _other_leading_mask),
]


def matching(layer: Layer, inputs: list, masks: list, actual: np.ndarray, allowed: float) -> list[dict]:
    """Every applicable hypothesis with its error against ``actual``; ``matches`` where within ``allowed``."""
    found = []
    for h in HYPOTHESES:
        if not h.applies(layer, masks):
            continue
        try:
            y = h.compute(layer, inputs, masks)
            y = np.asarray(y[0][0] if isinstance(y, Outputs) else y, np.float64)
        except (ValueError, TypeError, IndexError):  # the mistake cannot even run on this layer's shapes
            continue
        if y.shape != np.shape(actual):
            continue
        diff = np.abs(np.asarray(actual, np.float64) - y)
        error = float(np.where(np.isnan(diff), 0.0, diff).max(initial=0.0))
        found.append({"hypothesis": h.name, "error": error, "matches": error <= allowed})
    return found
