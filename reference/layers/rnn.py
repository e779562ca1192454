"""Keras's recurrent layers (keras/src/layers/rnn/): LSTM, GRU, SimpleRNN, RNN(cell) and Bidirectional, as the
oracle's cells.

    LSTM, GRU, SimpleRNN    reference.lstm_forward / gru_forward / simple_rnn_forward (mask honoured: reference/rnn.py)
                                                                    mask' = mask if return_sequences else None
    RNN(cell)               the same loop for an LSTMCell, GRUCell or SimpleRNNCell; for StackedRNNCells(c1..cn)
                            each step runs c1, then c2 on c1's new h, ...: since a masked step carries every
                            cell's states, that is c1's layer over the whole sequence (its carried h at every
                            step), then c2's over that, ...; go_backwards reads x and the mask reversed once,
                            return_sequences and zero_output_for_mask apply to the last cell's outputs
                                                                    mask' = mask if return_sequences else None
    Bidirectional           reference/bidirectional.py: two such calls (each copy its own cell), zero_output_for_mask =
                            return_sequences (Keras forces it), the second's sequence flipped back,
                            then merged (merge_mode None: the two halves, two outputs); a copy that is
                            an RNN(cell) or RNN(StackedRNNCells) runs that RNN's loop above, and a copy that
                            is a ConvLSTM1D/2D/3D reference/layers/conv_lstm.py's, the same way (the merge on
                            the last axis: the filters, or the last spatial axis for channels_first)
                            (keras/src/layers/rnn/bidirectional.py L137-143, L220-272)
                                                                    mask' = mask if return_sequences else None
                                                                    (each half's, with merge_mode None)

``return_state=True`` (keras/src/layers/rnn/rnn.py L449-451; bidirectional.py L243-273): the layer's outputs
are ``[output, *final states]``, the states in the cell's order (h, c for an LSTM; every cell's in turn for
StackedRNNCells; the forward copy's then the backward copy's for a Bidirectional, after its one or two
outputs). Their masks: None for every state (rnn.py L257-268, compute_mask; bidirectional.py L503-519, whose
``self.states`` is None unless stateful, so only the outputs get masks: Layer._set_mask_metadata zips the
masks with the flat outputs, keras/src/layers/layer.py).

Options: LSTM, GRU and SimpleRNN ``return_sequences``, ``go_backwards``, ``zero_output_for_mask`` and the cell's
options ``activation``, ``recurrent_activation`` (not SimpleRNN), ``reset_after`` (GRU), Keras's defaults when
absent; Bidirectional ``merge_mode``, ``return_sequences`` and ``forward`` / ``backward``, each a dict with
``go_backwards``, ``cell`` ("lstm" when absent, "gru", "simple_rnn") and that cell's options, or an RNN's
``cells`` (a copy that is an RNN), or a ConvLSTM's options (conv_lstm.py) with ``conv_lstm`` its class name
(both copies); RNN ``cells``, a list of such dicts (one cell, or StackedRNNCells' in order),
with the layer options above. ``return_state``
on each, False when absent. Weights: ``(kernel, recurrent_kernel, bias)``, bias None for ``use_bias=False``;
Bidirectional the forward copy's then the backward copy's; RNN one triple per cell. A cell's activations:
``reference.ACTIVATIONS``.
"""
from __future__ import annotations

import numpy as np

from ..bidirectional import MERGE, run_bidirectional
from ..cells import Cell, CellWeights, check_cell_weights
from ..recurrent import layer_call
from .conv_lstm import run_conv_lstm
from .outputs import Outputs

RECURRENT_KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}  # Keras class -> reference cell
CELL_KINDS = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "simple_rnn"}  # what an RNN layer may wrap


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


def with_states(output, output_mask, states, outputs: int = 1):
    """A layer's result: ``(output, mask')``, or with final ``states`` the ``Outputs`` of Keras's
    ``return_state`` (the first ``outputs`` entries of ``output`` masked, the states not)."""
    if states is None:
        return output, output_mask
    firsts = output if outputs > 1 else (output,)
    return Outputs([(y, output_mask) for y in firsts] + [(s, None) for s in states])


def recurrent(layer, inputs, masks, tape=None):
    """One LSTM, GRU or SimpleRNN layer; with a ``tape`` (a list) its ``RNNCache`` is appended, for BPTT."""
    x, mask, opt = inputs[0], masks[0], layer.options
    rs, return_state = bool(opt["return_sequences"]), bool(opt.get("return_state", False))
    # Initial states are zeros, so what a backend outputs before a row's first valid step (h0 or 0,
    # reference/rnn.py) is 0 either way.
    result = layer_call(make_cell({**opt, "cell": RECURRENT_KINDS[layer.kind]}, layer.weights), x, layer.weights,
                        mask=mask, go_backwards=bool(opt.get("go_backwards", False)), return_sequences=rs,
                        return_state=return_state, zero_output_for_mask=bool(opt.get("zero_output_for_mask", False)),
                        keep_cache=tape is not None)
    if tape is not None:
        result, cache = result
        tape.append(cache)
    output, states = (result[0], result[1:]) if return_state else (result, None)
    return with_states(output, mask if rs else None, states)


def run_cells(cells: list, weights, x, mask, *, go_backwards: bool, return_sequences: bool,
              zero_output_for_mask: bool):
    """Keras's RNN loop over ``cells`` (one cell's options, or StackedRNNCells' in order; ``weights`` a triple per
    cell): each cell's layer over the previous one's carried states (module docstring). Returns ``(the last
    cell's output, every cell's final states in turn)``; the sequence in processing order (reversed for
    ``go_backwards``, as Keras returns it)."""
    if go_backwards:  # every cell reads the reversed sequence: reverse it once
        x, mask = x[:, ::-1], (None if mask is None else mask[:, ::-1])
    states = []
    for k, cell_options in enumerate(cells):
        triple = tuple(weights[3 * k:3 * k + 3])
        last = k == len(cells) - 1
        # A lower cell's output at a masked step is its carried h, which the next cell does not read.
        x, *final = layer_call(make_cell(cell_options, triple), x, triple, mask=mask,
                               return_sequences=return_sequences or not last, return_state=True,
                               zero_output_for_mask=last and zero_output_for_mask)
        states.extend(final)
    return x, states


def direction_cells(options: dict) -> list:
    """A recurrent layer's cells: an RNN's ``cells``, or the one cell of an LSTM, GRU or SimpleRNN."""
    return options["cells"] if "cells" in options else [options]


def rnn(layer, inputs, masks, tape=None):
    """``RNN(cell)`` or ``RNN(StackedRNNCells(cells))``: each cell's layer over the previous one's carried states
    (module docstring); the last cell's output is the layer's."""
    x, mask, opt = inputs[0], masks[0], layer.options
    rs, return_state = bool(opt["return_sequences"]), bool(opt.get("return_state", False))
    y, states = run_cells(opt["cells"], layer.weights, x, mask, go_backwards=bool(opt.get("go_backwards", False)),
                          return_sequences=rs, zero_output_for_mask=bool(opt.get("zero_output_for_mask", False)))
    return with_states(y, mask if rs else None, states if return_state else None)


def _bidirectional_of_cells(layer, x, mask, rs: bool):
    """Both copies of a Bidirectional at least one of whose copies is an RNN(cell): each copy Keras's RNN loop
    (``run_cells``) with zero_output_for_mask = return_sequences, as Keras forces it. ``((y_f, y_b), states)``."""
    opt = layer.options
    n_forward = 3 * len(direction_cells(opt["forward"]))
    halves, states = [], []
    for d, weights in (("forward", layer.weights[:n_forward]), ("backward", layer.weights[n_forward:])):
        y, final = run_cells(direction_cells(opt[d]), weights, x, mask,
                             go_backwards=bool(opt[d].get("go_backwards", d == "backward")),
                             return_sequences=rs, zero_output_for_mask=rs)
        halves.append(y)
        states.extend(final)
    y_f, y_b = halves
    return (y_f, y_b[:, ::-1] if rs else y_b), states  # Keras flips the second copy's sequence back


def _bidirectional_of_conv_lstms(layer, x, mask, rs: bool):
    """Both copies of a Bidirectional of ConvLSTMs (``reference/layers/conv_lstm.py``), each with
    zero_output_for_mask = return_sequences as Keras forces it. ``((y_f, y_b), states)``, the states h, c of
    each copy in turn (Bidirectional.call: ``y[1:] + y_rev[1:]``)."""
    opt = layer.options
    halves, states = [], []
    for d, weights in (("forward", layer.weights[:3]), ("backward", layer.weights[3:])):
        y, h, c = run_conv_lstm(x, mask, weights, {**opt[d], "return_sequences": rs, "zero_output_for_mask": rs})
        halves.append(y)
        states.extend((h, c))
    y_f, y_b = halves
    return (y_f, y_b[:, ::-1] if rs else y_b), states  # Keras flips the second copy's sequence back


def bidirectional(layer, inputs, masks, tape=None):
    """The merged output of a Bidirectional layer: ``reference.bidirectional.run_bidirectional``.

    With a ``tape`` (a list), ``{halves, caches}`` is appended, for BPTT.
    """
    x, mask, opt = inputs[0], masks[0], layer.options
    rs = bool(opt["return_sequences"])  # Keras forces zero_output_for_mask = return_sequences on both copies
    if "conv_lstm" in opt["forward"]:
        (y_f, y_b), final = _bidirectional_of_conv_lstms(layer, x, mask, rs)
        if tape is not None:  # the halves only: no BPTT through it (reference/backward.py says so)
            tape.append({"halves": (y_f, y_b), "caches": None})
        return _merged(opt, y_f, y_b, final, mask if rs else None)
    if "cells" in opt["forward"] or "cells" in opt["backward"]:
        (y_f, y_b), final = _bidirectional_of_cells(layer, x, mask, rs)
        if tape is not None:  # the halves only: no BPTT through it (reference/backward.py says so)
            tape.append({"halves": (y_f, y_b), "caches": None})
        return _merged(opt, y_f, y_b, final, mask if rs else None)
    fwd_w, bwd_w = cell_weights(layer)
    cells = make_cell(opt["forward"], fwd_w), make_cell(opt["backward"], bwd_w)
    fwd_w, bwd_w = (check_cell_weights(c, *w, features=x.shape[-1], prefix=f"{layer.name}.{d}.")
                    for c, w, d in zip(cells, (fwd_w, bwd_w), ("forward", "backward")))
    states = tuple(np.zeros((x.shape[0], w.recurrent_kernel.shape[0])) for c, w in zip(cells, (fwd_w, bwd_w))
                   for _ in c.state_names)
    (y_f, y_b), final, caches = run_bidirectional(x, fwd_w, bwd_w, states, mask, rs, keep_cache=tape is not None,
                                              cell=cells[0], backward_cell=cells[1],
                                              go_backwards=tuple(bool(opt[d].get("go_backwards", False))
                                                                 for d in ("forward", "backward")))
    if tape is not None:
        tape.append({"halves": (y_f, y_b), "caches": caches})
    return _merged(opt, y_f, y_b, final, mask if rs else None)


def _merged(opt: dict, y_f, y_b, final, output_mask):
    """A Bidirectional's result from its two halves and final states (the states only with return_state)."""
    merge_mode = opt["merge_mode"]
    states = final if opt.get("return_state", False) else None
    if merge_mode is None and states is None:
        return Outputs([(y, output_mask) for y in (y_f, y_b)])
    return with_states(MERGE[merge_mode](y_f, y_b), output_mask, states, 2 if merge_mode is None else 1)


FORWARD = {"LSTM": recurrent, "GRU": recurrent, "SimpleRNN": recurrent, "RNN": rnn, "Bidirectional": bidirectional}
