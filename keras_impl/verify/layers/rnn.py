"""Keras's recurrent layers -> the oracle's cells (``reference/layers/rnn.py``): LSTM, GRU, SimpleRNN, alone or
in Bidirectional (whose two copies may even be different cells, of different options), and RNN of an LSTMCell,
GRUCell, SimpleRNNCell or a StackedRNNCells of them, alone or in Bidirectional; ``return_state`` on each, Bidirectional's
``merge_mode=None``.

Every layer's class is checked exactly (``type(layer) is keras.layers.LSTM``: a registered subclass is a
different layer, whatever it inherits), then every option that changes what the layer computes at inference:
``activation``, ``recurrent_activation``, ``reset_after`` and ``use_bias`` (no bias array, the oracle's
``bias=None``). Options that do not change the output (``dropout`` and ``recurrent_dropout``, ``unroll``,
``use_cudnn``, initializers, regularizers, constraints) are accepted.
"""
from __future__ import annotations

from reference.cells import ACTIVATIONS as CELL_ACTIVATIONS
from reference.layers import CELL_KINDS, RECURRENT_KINDS, Layer

from ..load import refuse_layer
from .common import activation_name, float_weights
from .conv_lstm import KINDS as CONV_LSTM_KINDS
from .conv_lstm import conv_lstm as describe_conv_lstm


def cell_options(source, cell: str, name: str, cls: str) -> dict:
    """A cell's options as ``reference.layers`` reads them (``source``: an LSTM/GRU/SimpleRNN layer or a cell)."""
    options = {"cell": cell, "activation": activation_name(source.activation)}
    if cell != "simple_rnn":
        options["recurrent_activation"] = activation_name(source.recurrent_activation)
    for key in ("activation", "recurrent_activation"):
        if key in options and options[key] not in CELL_ACTIVATIONS:
            raise refuse_layer(name, cls, f"{key}={options[key]!r}; the oracle's cells implement "
                                          f"{', '.join(CELL_ACTIVATIONS)}")
    if cell == "gru":
        options["reset_after"] = bool(source.reset_after)
    return options


def loop_options(layer, name: str, cls: str) -> dict:
    """The options of Keras's RNN loop every recurrent layer shares, or a refusal of ``stateful``."""
    if layer.stateful:
        raise refuse_layer(name, cls, "stateful=True: states carried between calls are not modelled")
    return {"go_backwards": bool(layer.go_backwards), "return_sequences": bool(layer.return_sequences),
            "return_state": bool(layer.return_state), "zero_output_for_mask": bool(layer.zero_output_for_mask)}


def recurrent_options(layer, name: str) -> dict:
    """The options of an LSTM, GRU or SimpleRNN (exact class) as ``reference.layers`` reads them, or a refusal."""
    import keras
    cls = type(layer).__name__
    if cls not in RECURRENT_KINDS or type(layer) is not getattr(keras.layers, cls):
        raise refuse_layer(name, cls, "a subclass or another class, not keras.layers.LSTM, GRU or SimpleRNN")
    return {**cell_options(layer, RECURRENT_KINDS[cls], name, cls), **loop_options(layer, name, cls)}


def recurrent_weights(layer) -> tuple:
    """``(kernel, recurrent_kernel, bias)`` in float64; bias None for ``use_bias=False``."""
    w = float_weights(layer)
    return tuple(w) if layer.use_bias else (*w, None)


def cell_options_shown(opt: dict) -> str:
    """The cell options that differ from Keras's defaults, for the table."""
    shown = [f"{k}={opt[k]}" for k, default in (("activation", "tanh"), ("recurrent_activation", "sigmoid"))
             if opt.get(k, default) != default]
    if opt.get("reset_after") is False:
        shown.append("reset_after=False")
    return ", ".join(shown)


def loop_shown(opt: dict) -> str:
    """The loop options for the table."""
    shown = (f"go_backwards={opt['go_backwards']:d}" + (", sequences" if opt["return_sequences"] else ", last step")
             + (", zero_output_for_mask" if opt["zero_output_for_mask"] else ""))
    return shown + (", return_state" if opt["return_state"] else "")


def recurrent(layer, name, inbound):
    opt = recurrent_options(layer, name)
    opt.pop("cell")  # the kind says it
    shown = f"units={layer.units}, {loop_shown(opt)}"
    if not layer.use_bias:
        shown += ", no bias"
    extra = cell_options_shown(opt)
    return (Layer(name, type(layer).__name__, inbound, opt, recurrent_weights(layer)),
            shown + (f", {extra}" if extra else ""))


def rnn_cells(layer, name: str) -> tuple[dict, tuple, str]:
    """An ``RNN`` of one of Keras's cells (``CELL_KINDS``) or of a ``StackedRNNCells`` of them: ``(options,
    weights, cells shown)``, or a refusal naming the cell."""
    import keras
    cell = layer.cell
    stacked = type(cell) is keras.layers.StackedRNNCells
    cells = list(cell.cells) if stacked else [cell]
    options, weights, shown = [], [], []
    for k, c in enumerate(cells):
        cls = type(c).__name__
        where = f"{name}.cell" + (f".cells[{k}]" if stacked else "")
        if cls not in CELL_KINDS or type(c) is not getattr(keras.layers, cls):
            raise refuse_layer(where, cls, f"RNN of Keras's {', '.join(CELL_KINDS)} or a StackedRNNCells of them")
        options.append(cell_options(c, CELL_KINDS[cls], where, cls))
        weights.extend(recurrent_weights(c))
        extra = cell_options_shown(options[-1])
        shown.append(f"{cls}({c.units}{', no bias' if not c.use_bias else ''}{', ' + extra if extra else ''})")
    cells_shown = f"StackedRNNCells({', '.join(shown)})" if stacked else shown[0]
    return {"cells": options, **loop_options(layer, name, "RNN")}, tuple(weights), cells_shown


def rnn(layer, name, inbound):
    """``keras.layers.RNN`` of one of Keras's cells (``CELL_KINDS``) or of a ``StackedRNNCells`` of them."""
    opt, weights, cells_shown = rnn_cells(layer, name)
    return Layer(name, "RNN", inbound, opt, weights), f"{cells_shown}, {loop_shown(opt)}"


def bidirectional_copy(layer, name: str) -> tuple[dict, tuple, str, str]:
    """One copy of a Bidirectional: an LSTM, GRU, SimpleRNN, an RNN of Keras's cells or a ConvLSTM.
    ``(options, weights, class shown, options shown)``."""
    import keras
    if type(layer) is keras.layers.RNN:
        opt, weights, cells_shown = rnn_cells(layer, name)
        return opt, weights, f"RNN({cells_shown})", ""
    if type(layer).__name__ in CONV_LSTM_KINDS:
        described, shown = describe_conv_lstm(layer, name, ())
        return ({**described.options, "conv_lstm": described.kind}, described.weights, described.kind,
                shown.split(", go_backwards=")[0])
    opt = recurrent_options(layer, name)
    return opt, recurrent_weights(layer), type(layer).__name__, cell_options_shown(opt)


def _units(layer) -> str:
    """A copy's units as the table shows them: an RNN's per cell, joined by '/'."""
    cells = getattr(layer.cell, "cells", [layer.cell])
    return "/".join(str(c.units if hasattr(c, "units") else c.filters) for c in cells)  # a ConvLSTM's: filters


def bidirectional(layer, name, inbound):
    fwd, f_w, f_cls, f_extra = bidirectional_copy(layer.forward_layer, f"{name}.forward_layer")
    bwd, b_w, b_cls, b_extra = bidirectional_copy(layer.backward_layer, f"{name}.backward_layer")
    if ("conv_lstm" in fwd) != ("conv_lstm" in bwd):
        raise refuse_layer(name, "Bidirectional", f"a {f_cls} forward copy with a {b_cls} backward copy: a ConvLSTM "
                                                  "pairs with a ConvLSTM only")
    opt = {"merge_mode": layer.merge_mode, "return_sequences": bool(layer.return_sequences),
           "return_state": bool(layer.return_state), "forward": fwd, "backward": bwd}
    cells = f_cls if f_cls == b_cls else f"{f_cls}+{b_cls}"
    shown = (f"{cells}, merge={layer.merge_mode}, "
             f"units={_units(layer.forward_layer)}+{_units(layer.backward_layer)}, "
             f"go_backwards={fwd['go_backwards']:d}/{bwd['go_backwards']:d}"
             + (", sequences" if opt["return_sequences"] else ", last step")
             + (", return_state" if opt["return_state"] else ""))
    if "cells" not in fwd and "cells" not in bwd and not (layer.forward_layer.use_bias
                                                          and layer.backward_layer.use_bias):
        shown += ", no bias"
    if f_extra or b_extra:
        shown += ", " + (f_extra if f_extra == b_extra else f"forward: {f_extra or 'defaults'}; "
                                                            f"backward: {b_extra or 'defaults'}")
    return Layer(name, "Bidirectional", inbound, opt, f_w + b_w), shown


DESCRIBE = {"LSTM": recurrent, "GRU": recurrent, "SimpleRNN": recurrent, "RNN": rnn, "Bidirectional": bidirectional}

ROWS = [
    ("LSTM, GRU, SimpleRNN", "activation and recurrent_activation each one of the oracle's cell activations; "
                             "go_backwards, return_sequences, return_state (a row per state), use_bias, "
                             "zero_output_for_mask, GRU reset_after; dropout, recurrent_dropout, unroll, use_cudnn "
                             "change nothing at inference",
     "other activations, stateful, initial_state at the call, time_major=True (Keras 2)",
     "parity_tests/verify/test_verify.py::test_models_verify_within_bounds"),
    ("RNN(LSTMCell, GRUCell, SimpleRNNCell), RNN(StackedRNNCells)", "the cells' options as above; the RNN's "
                                                                    "go_backwards, return_sequences, return_state "
                                                                    "(every cell's states in turn), "
                                                                    "zero_output_for_mask",
     "any other cell (a custom one, a nested StackedRNNCells), stateful",
     "parity_tests/verify/test_graph_layers.py::test_every_output_of_every_call_verifies"),
    ("Bidirectional(LSTM, GRU, SimpleRNN or RNN(cell))", "merge modes concat, sum, ave, mul and None (two "
                                                         "outputs); return_state; masks; an RNN of an LSTMCell, "
                                                         "GRUCell, SimpleRNNCell or StackedRNNCells of them; a "
                                                         "backward_layer of other units, activations, "
                                                         "go_backwards, even another of these classes",
     "any other wrapped layer; stateful",
     "parity_tests/verify/test_bidirectional_rnn.py::test_every_bidirectional_of_an_rnn_verifies"),
    ("Bidirectional(ConvLSTM1D/2D/3D)", "both copies ConvLSTMs with the options above; merge modes (concat on the "
                                        "last axis, as Keras); return_state (h, c of each copy); a backward_layer "
                                        "of other options",
     "stateful; subclasses",
     "parity_tests/verify/test_convolutional_layers.py::test_bidirectional_conv_lstm_verifies"),
]
