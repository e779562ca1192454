"""Keras's TimeDistributed -> the oracle's wrapper (``reference/layers/graph.py``): of any layer described here.

The inner layer is described as a layer of its own (its family's checks and refusals), named ``td/inner``.
Keras 3.15.1 runs it on each step's slice with ``layer.call`` and, where that call takes a mask, hands it the
step's slice ``mask[:, t]`` of the wrapper's mask (keras/src/layers/rnn/time_distributed.py L115-125): for a
(B, T, T2...) mask the inner layer's own mask, modelled; for a (B, T) mask a (B,) vector, which Keras's own
recurrent layers cannot run: the oracle refuses that one (``inner_reads_mask``).
"""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer


def time_distributed(layer, name, inbound, describe_layer):
    """``describe_layer``: ``describe.describe_layer``, handed in (describe.py reads this registry)."""
    inner_layer = layer.layer
    inner, shown = describe_layer(inner_layer, f"{name}/{inner_layer.name}", ())
    if inner.kind in ("InputLayer", "TimeDistributed") or getattr(inner_layer, "return_state", False) \
            or getattr(inner_layer, "merge_mode", "concat") is None:
        raise refuse_layer(name, "TimeDistributed", f"of a {type(inner_layer).__name__} with one output only "
                                                    "(no InputLayer, TimeDistributed, return_state or merge_mode=None)")
    options = {"inner": inner, "inner_reads_mask": bool(inner_layer._call_has_mask_arg)}
    shown = shown.removeprefix("units=")  # as Keras's constructor reads: Dense(3, softmax)
    return Layer(name, "TimeDistributed", inbound, options), f"{type(inner_layer).__name__}({shown})"


DESCRIBE = {"TimeDistributed": time_distributed}

ROWS = [("TimeDistributed", "of any supported layer with one output, on any rank (the inner layer's own options "
                            "and refusals); mask passed on unchanged; an inner layer whose call takes a mask (an "
                            "LSTM, a GlobalAveragePooling1D) given each step's slice of a (B, T, T2...) mask",
         "an inner layer whose call takes a mask, when a (B, T) mask reaches the wrapper (each step's slice is a "
         "(B,) vector); return_state, merge_mode=None, a nested TimeDistributed",
         "parity_tests/verify/test_time_distributed_masks.py::test_time_distributed_hands_each_step_its_mask")]
