"""The one registry of layer kinds the oracle runs: Keras's class name -> its forward.

Each family module (in Keras's layout: ``core``, ``rnn``, ``pooling``, ...) defines ``FORWARD``, a dict
of ``kind -> forward(layer, inputs, masks, tape=None) -> (y, mask')``: ``inputs`` and ``masks`` hold one
entry per inbound layer; ``tape`` is a list for the kinds that BPTT walks back (``reference/backward.py``),
None otherwise. The supported lists ``bilstm verify`` prints and docs/verify.md shows are read from here.
A new family is one module and one entry in ``FAMILIES``. (Each family's table is imported from its module,
not the module through the package: the package imports this file.)
"""
from __future__ import annotations

from .activations import FORWARD as ACTIVATIONS
from .attention import FORWARD as ATTENTION
from .conv_lstm import FORWARD as CONV_LSTM
from .convolutional import FORWARD as CONVOLUTIONAL
from .core import FORWARD as CORE
from .merging import FORWARD as MERGING
from .normalization import FORWARD as NORMALIZATION
from .pooling import FORWARD as POOLING
from .regularization import FORWARD as REGULARIZATION
from .reshaping import FORWARD as RESHAPING
from .rnn import FORWARD as RNN

FAMILIES = {"core": CORE, "rnn": RNN, "regularization": REGULARIZATION, "pooling": POOLING, "reshaping": RESHAPING,
            "merging": MERGING, "convolutional": CONVOLUTIONAL, "conv_lstm": CONV_LSTM, "normalization": NORMALIZATION,
            "activations": ACTIVATIONS, "attention": ATTENTION}  # family name -> its table
WRAPPERS = ("TimeDistributed",)  # run by graph.layer_forward around the layer they wrap


def merge_tables(tables: dict, what: str = "registered") -> dict:
    """One table of ``{family name: {kind: entry}}``, each kind once (also keras_impl.verify.layers' DESCRIBE)."""
    merged = {}
    for family, table in tables.items():
        for kind, entry in table.items():
            if kind in merged:
                raise RuntimeError(f"layer kind {kind!r} is {what} twice ({family})")
            merged[kind] = entry
    return merged


FORWARD = merge_tables(FAMILIES)
KINDS = tuple(FORWARD) + WRAPPERS


def family_of(kind: str) -> str:
    """The family's name (``core``, ``rnn``...) that implements ``kind``."""
    return next((name for name, table in FAMILIES.items() if kind in table), "wrappers")
