"""The one registry of layer kinds the oracle runs: Keras's class name -> its forward.

Each family module (in Keras's layout: ``core``, ``rnn``, ``pooling``, ...) defines ``FORWARD``, a dict
of ``kind -> forward(layer, inputs, masks, tape=None) -> (y, mask')``: ``inputs`` and ``masks`` hold one
entry per inbound layer; ``tape`` is a list for the kinds that BPTT walks back (``reference/backward.py``),
None otherwise. The supported lists ``bilstm verify`` prints and docs/verify.md shows are read from here.
A new family is one module and one entry in ``FAMILIES``.
"""
from __future__ import annotations

from . import (activations, attention, conv_lstm, convolutional, core, merging, normalization, pooling, regularization,
               reshaping, rnn)

FAMILIES = (core, rnn, regularization, pooling, reshaping, merging, convolutional, conv_lstm, normalization,
            activations, attention)
WRAPPERS = ("TimeDistributed",)  # run by graph.layer_forward around the layer they wrap


def _collect() -> dict:
    table = {}
    for family in FAMILIES:
        for kind, forward in family.FORWARD.items():
            if kind in table:
                raise RuntimeError(f"layer kind {kind!r} is registered twice ({family.__name__})")
            table[kind] = forward
    return table


FORWARD = _collect()
KINDS = tuple(FORWARD) + WRAPPERS


def family_of(kind: str) -> str:
    """The family module's short name (``core``, ``rnn``...) that implements ``kind``."""
    for family in FAMILIES:
        if kind in family.FORWARD:
            return family.__name__.rsplit(".", 1)[-1]
    return "wrappers"
