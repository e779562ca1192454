"""Keras's recurrent layers (keras/src/layers/rnn/): LSTM, GRU, SimpleRNN and Bidirectional, as the oracle's cells.

    LSTM, GRU, SimpleRNN    reference.lstm_forward / gru_forward / simple_rnn_forward (mask honoured: reference/rnn.py)
                                                                    mask' = mask if return_sequences else None
    Bidirectional           reference/bidirectional.py: two such calls (each copy its own cell), zero_output_for_mask =
                            return_sequences (Keras forces it), the second's sequence flipped back,
                            then merged                             mask' = mask if return_sequences else None

Options: LSTM, GRU and SimpleRNN ``return_sequences``, ``go_backwards``, ``zero_output_for_mask`` and the cell's
options ``activation``, ``recurrent_activation`` (not SimpleRNN), ``reset_after`` (GRU), Keras's defaults when
absent; Bidirectional ``merge_mode``, ``return_sequences`` and ``forward`` / ``backward``, each a dict with
``go_backwards``, ``cell`` ("lstm" when absent, "gru", "simple_rnn") and that cell's options. Weights:
``(kernel, recurrent_kernel, bias)``, bias None for ``use_bias=False``; Bidirectional the forward triple then
the backward one. A cell's activations: ``reference.ACTIVATIONS``.
"""
from __future__ import annotations

import numpy as np

from ..bidirectional import MERGE, run_bidirectional
from ..cells import Cell, CellWeights, check_cell_weights
from ..recurrent import layer_call

RECURRENT_KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}  # Keras class -> reference cell


def cell_weights(layer) -> tuple[CellWeights, ...]:
    """A recurrent layer's ``CellWeights``: one, or a Bidirectional's forward then backward."""
    w = layer.weights
    return (CellWeights(*w[:3]),) if layer.kind in RECURRENT_KINDS else (CellWeights(*w[:3]), CellWeights(*w[3:6]))


def make_cell(options: dict, weights) -> Cell:
    """The ``Cell`` of a recurrent layer's (or a Bidirectional copy's) options; use_bias read off its weights."""
    kind = options.get("cell", "lstm")
    extra = {} if kind == "simple_rnn" else {"recurrent_activation": options.get("recurrent_activation", "sigmoid")}
    if kind == "gru":
        extra["reset_after"] = bool(options.get("reset_after", True))
    return Cell(kind, activation=options.get("activation", "tanh"), use_bias=weights[2] is not None, **extra)


def recurrent(layer, inputs, masks, tape=None):
    """One LSTM, GRU or SimpleRNN layer; with a ``tape`` (a list) its ``RNNCache`` is appended, for BPTT."""
    x, mask, opt = inputs[0], masks[0], layer.options
    rs = bool(opt["return_sequences"])
    # Initial states are zeros, so what a backend outputs before a row's first valid step (h0 or 0,
    # reference/rnn.py) is 0 either way.
    result = layer_call(make_cell({**opt, "cell": RECURRENT_KINDS[layer.kind]}, layer.weights), x, layer.weights,
                        mask=mask, go_backwards=bool(opt.get("go_backwards", False)), return_sequences=rs,
                        zero_output_for_mask=bool(opt.get("zero_output_for_mask", False)),
                        keep_cache=tape is not None)
    if tape is not None:
        result, cache = result
        tape.append(cache)
    return result, (mask if rs else None)


def bidirectional(layer, inputs, masks, tape=None):
    """The merged output of a Bidirectional layer: ``reference.bidirectional.run_bidirectional``.

    With a ``tape`` (a list), ``{halves, caches}`` is appended, for BPTT.
    """
    x, mask, opt = inputs[0], masks[0], layer.options
    fwd_w, bwd_w = cell_weights(layer)
    cells = make_cell(opt["forward"], fwd_w), make_cell(opt["backward"], bwd_w)
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
    return MERGE[opt["merge_mode"]](y_f, y_b), (mask if rs else None)


FORWARD = {"LSTM": recurrent, "GRU": recurrent, "SimpleRNN": recurrent, "Bidirectional": bidirectional}
