"""Keras's recurrent layers -> the oracle's cells (``reference/layers/rnn.py``): LSTM, GRU, SimpleRNN, alone or
in Bidirectional (whose two copies may even be different cells).

Every layer's class is checked exactly (``type(layer) is keras.layers.LSTM``: a registered subclass is a
different layer, whatever it inherits), then every option that changes what the layer computes at inference:
``activation``, ``recurrent_activation``, ``reset_after`` and ``use_bias`` (no bias array, the oracle's
``bias=None``). Options that do not change the output (``dropout`` and ``recurrent_dropout``, ``unroll``,
``use_cudnn``, initializers, regularizers, constraints) are accepted.
"""
from __future__ import annotations

from reference.cells import ACTIVATIONS as CELL_ACTIVATIONS
from reference.layers import RECURRENT_KINDS, Layer

from ..load import refuse_layer
from .common import activation_name, float_weights


def recurrent_options(layer, name: str) -> dict:
    """The options of an LSTM, GRU or SimpleRNN (exact class) as ``reference.layers`` reads them, or a refusal."""
    import keras
    cls = type(layer).__name__
    if cls not in RECURRENT_KINDS or type(layer) is not getattr(keras.layers, cls):
        raise refuse_layer(name, cls, "a subclass or another class, not keras.layers.LSTM, GRU or SimpleRNN")
    cell = RECURRENT_KINDS[cls]
    options = {"cell": cell, "activation": activation_name(layer.activation)}
    if cell != "simple_rnn":
        options["recurrent_activation"] = activation_name(layer.recurrent_activation)
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


def recurrent(layer, name, inbound):
    opt = recurrent_options(layer, name)
    opt.pop("cell")  # the kind says it
    shown = (f"units={layer.units}, go_backwards={opt['go_backwards']:d}"
             + (", sequences" if opt["return_sequences"] else ", last step"))
    if opt["zero_output_for_mask"]:
        shown += ", zero_output_for_mask"
    if not layer.use_bias:
        shown += ", no bias"
    extra = cell_options_shown(opt)
    return (Layer(name, type(layer).__name__, inbound, opt, recurrent_weights(layer)),
            shown + (f", {extra}" if extra else ""))


def bidirectional(layer, name, inbound):
    if layer.merge_mode is None:
        raise refuse_layer(name, "Bidirectional", "merge_mode=None gives two outputs; use concat, sum, ave or mul")
    if layer.return_state:
        raise refuse_layer(name, "Bidirectional", "return_state=True: only the output sequence is compared")
    fwd = recurrent_options(layer.forward_layer, f"{name}.forward_layer")
    bwd = recurrent_options(layer.backward_layer, f"{name}.backward_layer")
    opt = {"merge_mode": layer.merge_mode, "return_sequences": bool(layer.return_sequences),
           "forward": fwd, "backward": bwd}
    w = recurrent_weights(layer.forward_layer) + recurrent_weights(layer.backward_layer)
    f_cls, b_cls = type(layer.forward_layer).__name__, type(layer.backward_layer).__name__
    cells = f_cls if f_cls == b_cls else f"{f_cls}+{b_cls}"
    shown = (f"{cells}, merge={layer.merge_mode}, units={layer.forward_layer.units}+{layer.backward_layer.units}, "
             f"go_backwards={fwd['go_backwards']:d}/{bwd['go_backwards']:d}"
             + (", sequences" if opt["return_sequences"] else ", last step"))
    if not (layer.forward_layer.use_bias and layer.backward_layer.use_bias):
        shown += ", no bias"
    extras = [cell_options_shown(fwd), cell_options_shown(bwd)]
    if any(extras):
        shown += ", " + (extras[0] if extras[0] == extras[1] else f"forward: {extras[0] or 'defaults'}; "
                                                                   f"backward: {extras[1] or 'defaults'}")
    return Layer(name, "Bidirectional", inbound, opt, w), shown


DESCRIBE = {"LSTM": recurrent, "GRU": recurrent, "SimpleRNN": recurrent, "Bidirectional": bidirectional}

ROWS = [
    ("LSTM", "`activation` and `recurrent_activation` each one of " + ", ".join(CELL_ACTIVATIONS)
     + " (Keras 3's hard_sigmoid); `go_backwards`, `return_sequences`, `use_bias` (False: no bias, the oracle's "
     "`bias=None`), `zero_output_for_mask`; `dropout`, `recurrent_dropout`, `unroll`, `use_cudnn` change nothing "
     "at inference", "other activations, `hard_sigmoid` in a Keras 2 file, `stateful`, `return_state`, "
     "`time_major=True`", "parity_tests/verify/test_verify.py::test_every_merge_mode_of_every_cell_form_verifies"),
    ("GRU", "the same, and both forms of `reset_after` (True: bias (2, 3U); False: bias (3U,))", "the same",
     "parity_tests/verify/test_verify.py::test_every_merge_mode_of_every_cell_form_verifies"),
    ("SimpleRNN", "the same (`activation` only)", "the same",
     "parity_tests/verify/test_verify.py::test_every_merge_mode_of_every_cell_form_verifies"),
    ("Bidirectional", "of LSTM, GRU or SimpleRNN; merge modes concat, sum, ave, mul; a separate `backward_layer` "
     "(its own weights and options, even another class)", "`merge_mode=None`, `return_state`",
     "parity_tests/verify/test_verify.py::test_every_merge_mode_of_every_cell_form_verifies"),
]
