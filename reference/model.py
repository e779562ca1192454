"""The whole model of a ``ModelSpec``: recurrent layers, then a sigmoid head at every step.

    x (B, T, D)
      -> [Masking(mask_value): mask = any(x != mask_value, features); x = x * mask]
      -> recurrent layer 1 .. L, each returning sequences, the mask passed along
      -> p = sigmoid(y W_d + b_d) at every step       (B, T, 1)

Every recurrent layer is ``spec.cell``'s (``reference/cells.py``). A plain layer (forward or
``go_backwards``) hands its outputs on in processing order, as Keras does; its output mask is the
input mask, unflipped (Keras's ``RNN.compute_mask`` returns the mask it was given).

The model runs as its list of layers (``reference.layers.spec_graph``, ``graph_forward``): the one
forward path, which ``bilstm verify`` runs on a Keras file's layers too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_float64, as_mask
from .layers import LayerGraph, graph_forward, spec_graph
from .rnn import check_input
from .spec import ModelSpec


@dataclass
class ModelCache:
    """What ``forward_with_cache`` keeps for ``reference.backward.model_backward``."""
    graph: LayerGraph               # the spec's layers, with the weights
    values: dict                    # every layer's (output, mask), by name
    tape: dict                      # every layer's records for BPTT, by name
    mask: np.ndarray | None         # (B, T) the mask every recurrent layer saw


def check_model_weights(spec: ModelSpec, weights) -> list[np.ndarray]:
    shapes = spec.weight_shapes()
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights must be a list of {len(shapes)} arrays in get_weights() order, got {type(weights).__name__}")
    if len(weights) != len(shapes):
        raise ValueError(f"weights must hold {len(shapes)} arrays for {spec.describe()}, got {len(weights)}")
    return [as_float64(f"weights[{k}] ({role})", w, shape=shape)
            for k, (w, (role, shape)) in enumerate(zip(weights, spec.weight_roles()))]


def model_forward(spec: ModelSpec, weights, x, mask=None):
    """Per-step probabilities (B, T, 1) of ``spec``'s model, weights in ``model.get_weights()`` order.

    ``mask`` (B, T) may be given only when the spec has no Masking layer (which
    derives the mask from ``x``).
    """
    return _forward(spec, weights, x, mask, keep_cache=False)[0]


def forward_with_cache(spec: ModelSpec, weights, x, mask=None):
    """``(probabilities (B, T, 1), ModelCache)``: ``model_forward`` keeping what BPTT needs."""
    return _forward(spec, weights, x, mask, keep_cache=True)


def _forward(spec: ModelSpec, weights, x, mask, keep_cache):
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    weights = check_model_weights(spec, weights)
    x = check_input(x)
    B, T, D = x.shape
    if D != spec.features:
        raise ValueError(f"x must have {spec.features} features for {spec.describe()}, got shape {x.shape}")
    if spec.mask_value is not None and mask is not None:
        raise ValueError(f"mask must be None when the spec has a Masking layer (mask_value={spec.mask_value}): "
                         f"it derives the mask from x; got an array of shape {np.shape(mask)}")
    mask = as_mask(mask, B, T)
    graph = spec_graph(spec, weights)
    tape = {} if keep_cache else None
    values = graph_forward(graph, [x], masks=[mask], tape=tape)
    probs, _ = values[graph.outputs[0]]
    if not keep_cache:
        return probs, None
    seen = values[graph.layers[-1].inbound[0]][1]  # the mask the head (and so every recurrent layer) saw
    return probs, ModelCache(graph, values, tape, seen)
