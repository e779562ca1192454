"""The whole model of a ``ModelSpec``: recurrent layers, then a sigmoid head at every step.

    x (B, T, D)
      -> [Masking(mask_value): mask = any(x != mask_value, features); x = x * mask]
      -> recurrent layer 1 .. L, each returning sequences, the mask passed along
      -> p = sigmoid(y W_d + b_d) at every step       (B, T, 1)

Every recurrent layer is ``spec.cell``'s (``reference/cells.py``). A plain layer (forward or ``go_backwards``) hands its outputs on in processing
order, as Keras does; its output mask is the input mask, unflipped (Keras's
``RNN.compute_mask`` returns the mask it was given).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._checks import as_float64, as_mask
from .bidirectional import MERGE_MODES, run_bidirectional
from ._loop import check_input, sigmoid
from .recurrent import run_cell
from .spec import ModelSpec


@dataclass
class ModelCache:
    """What ``model_forward`` keeps for the backward pass, one entry per recurrent layer."""
    x: np.ndarray                   # (B, T, D) the model's input after Masking
    mask: np.ndarray | None         # (B, T) the mask every layer saw
    layer_inputs: list = field(default_factory=list)   # (B, T, D_k) into layer k
    layer_caches: list = field(default_factory=list)   # per layer: (cache,) or (fwd, bwd), from run_cell
    layer_halves: list = field(default_factory=list)   # per Bidirectional layer: (y_f, y_b) before the merge
    head_input: np.ndarray | None = None                # (B, T, F)
    logits: np.ndarray | None = None                    # (B, T, 1)


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
    probs, _ = forward_with_cache(spec, weights, x, mask)
    return probs


def forward_with_cache(spec: ModelSpec, weights, x, mask=None):
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    weights = check_model_weights(spec, weights)
    x = check_input(x)
    B, T, D = x.shape
    if D != spec.features:
        raise ValueError(f"x must have {spec.features} features for {spec.describe()}, got shape {x.shape}")
    if spec.mask_value is not None:
        if mask is not None:
            raise ValueError(f"mask must be None when the spec has a Masking layer (mask_value={spec.mask_value}): "
                             f"it derives the mask from x; got an array of shape {np.shape(mask)}")
        mask = np.any(x != spec.mask_value, axis=-1)  # (B, T)
        x = x * mask[..., None]  # Masking also zeroes the masked inputs
    mask = as_mask(mask, B, T)
    cache = ModelCache(x=x, mask=mask)
    cell, n = spec.cell_config, spec.cell_config.weight_count
    h, k = x, 0
    for units in spec.layer_units:
        cache.layer_inputs.append(h)
        zeros = tuple(np.zeros((B, units)) for _ in cell.state_names)
        if spec.bidirectional:
            fwd_w, bwd_w = _triple(weights[k:k + n]), _triple(weights[k + n:k + 2 * n])
            k += 2 * n
            (y_f, y_b), _, caches = run_bidirectional(h, fwd_w, bwd_w, zeros * 2, mask, return_sequences=True,
                                                      cell=cell)
            cache.layer_halves.append((y_f, y_b))
            h = MERGE_MODES[spec.merge_mode](y_f, y_b)
        else:
            h, _, layer_cache = run_cell(cell, h, _triple(weights[k:k + n]), zeros, mask,
                                         go_backwards=spec.direction == "backward")
            k += n
            caches = (layer_cache,)
            cache.layer_halves.append(None)
        cache.layer_caches.append(caches)
    dense_kernel, dense_bias = weights[k], weights[k + 1]
    cache.head_input = h
    cache.logits = h @ dense_kernel + dense_bias  # (B, T, 1)
    return sigmoid(cache.logits), cache


def _triple(weights) -> tuple:
    """``(kernel, recurrent_kernel, bias)`` from a layer's get_weights(), bias None when it has none."""
    return tuple(weights) if len(weights) == 3 else (*weights, None)
