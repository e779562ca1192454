"""Keras's normalization layers -> the oracle's (``reference/layers/normalization.py``), at inference.

BatchNormalization's ``renorm`` and ``synchronized`` change how the statistics are gathered in training only
(keras/src/layers/normalization/batch_normalization.py L334-386: at inference the moving mean and variance are
used whatever they say), so both are accepted; its momentum and the initializers, regularizers and constraints
of every layer here do not change an output either.
"""
from __future__ import annotations

import math

from reference.layers import Layer

from ..load import refuse_layer
from .common import float_weights

TEST = "parity_tests/verify/test_normalization_layers.py"
ROWS = [
    ("BatchNormalization", "moving statistics, any axis, center, scale, epsilon; renorm and synchronized "
     "(training only)", "-", f"{TEST}::test_single_layers_verify"),
    ("LayerNormalization", "axis (a list), epsilon, center, scale, rms_scaling (Keras's deprecated form)", "-",
     f"{TEST}::test_tagger_with_layer_normalization_verifies"),
    ("UnitNormalization", "axis (an int or a list)", "-", f"{TEST}::test_single_layers_verify"),
    ("GroupNormalization", "groups (-1 for one a channel), axis, epsilon, center, scale", "-",
     f"{TEST}::test_single_layers_verify"),
]


def _epsilon(layer, name: str) -> float:
    eps = layer.epsilon
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise refuse_layer(name, type(layer).__name__, f"epsilon={eps!r}: a finite number >= 0 is supported")
    return float(eps)


def _affine_shown(layer) -> str:
    off = [k for k in ("center", "scale") if not getattr(layer, k)]
    return f", no {' or '.join(off)}" if off else ""


def batch_normalization(layer, name, inbound):
    opt = {"axis": int(layer.axis), "epsilon": _epsilon(layer, name), "center": bool(layer.center),
           "scale": bool(layer.scale)}
    shown = f"axis={layer.axis}, epsilon={opt['epsilon']:g}, moving statistics" + _affine_shown(layer)
    if layer.renorm:
        shown += ", renorm (training only)"
    return Layer(name, "BatchNormalization", inbound, opt, tuple(float_weights(layer))), shown


def layer_normalization(layer, name, inbound):
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    opt = {"axis": [int(a) for a in axes], "epsilon": _epsilon(layer, name), "center": bool(layer.center),
           "scale": bool(layer.scale), "rms_scaling": bool(layer.rms_scaling)}
    shown = f"axis={opt['axis']}, epsilon={opt['epsilon']:g}" + _affine_shown(layer)
    if opt["rms_scaling"]:
        shown += ", rms_scaling (x / sqrt(var + eps) * gamma)"
    return Layer(name, "LayerNormalization", inbound, opt, tuple(float_weights(layer))), shown


def unit_normalization(layer, name, inbound):
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return Layer(name, "UnitNormalization", inbound, {"axis": [int(a) for a in axes]}), f"axis={layer.axis}"


def group_normalization(layer, name, inbound):
    opt = {"groups": int(layer.groups), "axis": int(layer.axis), "epsilon": _epsilon(layer, name),
           "center": bool(layer.center), "scale": bool(layer.scale)}
    return (Layer(name, "GroupNormalization", inbound, opt, tuple(float_weights(layer))),
            f"groups={opt['groups']}, axis={opt['axis']}, epsilon={opt['epsilon']:g}" + _affine_shown(layer))


DESCRIBE = {"BatchNormalization": batch_normalization, "LayerNormalization": layer_normalization,
            "UnitNormalization": unit_normalization, "GroupNormalization": group_normalization}
