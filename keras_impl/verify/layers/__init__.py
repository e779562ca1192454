"""Keras layers -> the oracle's ``reference.layers.Layer``: one module per family, in Keras's layout, each
with ``DESCRIBE``, a dict of Keras class name -> ``describe(layer, name, inbound) -> (Layer, options shown)``
(or a ``VerifyRefusal`` naming the option the oracle does not model).

The kinds described here are exactly the oracle's registry (``reference/layers/registry.py``): a test holds
the two together. A new family is one module here, one in ``reference/layers/``, and one entry in each
``FAMILIES``.
"""
from __future__ import annotations

from reference.layers.registry import merge_tables

from . import (activations, attention, conv_lstm, convolutional, core, merging, normalization, pooling, regularization,
               reshaping, rnn, wrappers)

FAMILIES = (core, rnn, regularization, pooling, reshaping, merging, wrappers, convolutional, conv_lstm,
            normalization, activations, attention)
DESCRIBE = merge_tables({family.__name__: family.DESCRIBE for family in FAMILIES}, "described")
# Call arguments a kind takes besides its inputs, ``mask`` and ``training`` (a family's ``CALL_ARGUMENTS``):
# name -> "input" (a tensor: one more inbound layer), "option" (a constant), or the index of the input whose
# explicit mask it is. ``describe.py`` passes them to the kind's describe function as ``call``.
CALL_ARGUMENTS = {kind: args for family in FAMILIES for kind, args in getattr(family, "CALL_ARGUMENTS", {}).items()}
