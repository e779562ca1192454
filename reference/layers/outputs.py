"""A layer's several outputs and the references that name each one (``reference/layers/graph.py``'s docstring).

Its own module, below ``graph.py`` and the families, so that a family's forward (an RNN's ``return_state``)
can return ``Outputs`` without importing the graph that imports it.
"""
from __future__ import annotations


class Outputs(tuple):
    """The ``(y, mask')`` pairs of a layer with several outputs, in Keras's order (``graph.py``'s docstring)."""


def tensor_ref(name: str, index: int) -> str:
    """The reference to output ``index`` of layer ``name``: ``name`` for the first, ``name:index`` after it."""
    return name if index == 0 else f"{name}:{index}"


def layer_of(ref: str) -> str:
    """The layer a reference (``tensor_ref``) names: ``"lstm:2"`` -> ``"lstm"``."""
    name, _, index = ref.rpartition(":")
    return name if name and index.isdigit() else ref
