"""Keras layers -> the oracle's ``reference.layers.Layer``: one module per family, in Keras's layout, each
with ``DESCRIBE``, a dict of Keras class name -> ``describe(layer, name, inbound) -> (Layer, options shown)``
(or a ``VerifyRefusal`` naming the option the oracle does not model).

The kinds described here are exactly the oracle's registry (``reference/layers/registry.py``): a test holds
the two together. A new family is one module here, one in ``reference/layers/``, and one entry in each
``FAMILIES``.
"""
from __future__ import annotations

from . import activations, conv_lstm, convolutional, core, merging, normalization, pooling, regularization, reshaping, rnn, wrappers

FAMILIES = (core, rnn, regularization, pooling, reshaping, merging, wrappers, convolutional, conv_lstm,
            normalization, activations)


def _collect() -> dict:
    table = {}
    for family in FAMILIES:
        for kind, describe in family.DESCRIBE.items():
            if kind in table:
                raise RuntimeError(f"layer kind {kind!r} is described twice ({family.__name__})")
            table[kind] = describe
    return table


DESCRIBE = _collect()
