"""Whether a difference changes an answer: the decisions of a classifier head, Keras's against the oracle's.

A tensor distance says how far Keras is from the equations; a user shipping a classifier asks whether any
prediction changes. For every model output made by a softmax (a Dense, TimeDistributed(Dense), Activation or
Softmax layer over the last axis, more than one class) the decision is the argmax; for a sigmoid, each unit
thresholded at 0.5. Where the oracle propagates a (B, T) mask to the output, only valid steps count (a
tagger's padding decides nothing). Beside the share that agree: the closest call, the oracle's smallest margin
(top-1 minus top-2 probability; |p - 0.5|), which says how near the boundary the inputs came.
"""
from __future__ import annotations

import numpy as np


def decision_rule(layer) -> str | None:
    """"argmax", "threshold" or None for a layer of ``reference.layers`` (TimeDistributed: its inner layer)."""
    inner = layer.options.get("inner") or layer
    if inner.kind == "Softmax":
        return "argmax" if inner.options.get("axis", -1) == -1 else None
    return {"softmax": "argmax", "sigmoid": "threshold"}.get(inner.options.get("activation"))


def agreement(rule: str, actual, expected, mask=None) -> dict:
    """``{"rule", "agree", "total", "closest_call"}`` of ``actual`` against ``expected`` under ``rule``."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if rule == "argmax":
        mine, theirs = np.argmax(actual, -1), np.argmax(expected, -1)
        top = np.sort(expected, axis=-1)
        margin = top[..., -1] - top[..., -2]
        shown = f"argmax over {expected.shape[-1]} classes"
    else:
        mine, theirs, margin = actual > 0.5, expected > 0.5, np.abs(expected - 0.5)
        shown = "each unit > 0.5"
    valid = np.ones(theirs.shape, bool)
    if mask is not None and np.shape(mask) == theirs.shape[:np.ndim(mask)]:
        valid = np.broadcast_to(np.reshape(mask, np.shape(mask) + (1,) * (theirs.ndim - np.ndim(mask))), theirs.shape)
    total = int(valid.sum())
    return {"rule": shown, "agree": int(((mine == theirs) & valid).sum()), "total": total,
            "closest_call": float(margin[valid].min()) if total else None}


def decisions(graph, oracle: dict, keras_values: dict) -> list[dict]:
    """One entry per model output with a decision rule: ``{"output", "rule", "agree", "total", "closest_call"}``."""
    from reference.layers import layer_of
    layers = {layer.name: layer for layer in graph.layers}
    found = []
    for name in graph.outputs:  # references: "head", or "lstm:1" for a layer's second output
        rule = decision_rule(layers[layer_of(name)]) if layer_of(name) == name else None
        if rule is None or name not in oracle:
            continue
        expected, mask = oracle[name]
        if rule is None or (rule == "argmax" and np.shape(expected)[-1] < 2) or name not in keras_values:
            continue
        if np.shape(keras_values[name]) != np.shape(expected):
            continue  # a shape mismatch is already the layer's FAIL
        found.append({"output": name, **agreement(rule, keras_values[name], expected, mask)})
    return found


def format_decisions(entries: list[dict]) -> list[str]:
    lines = []
    for d in entries:
        closest = "" if d["closest_call"] is None else f"; the oracle's closest call: margin {d['closest_call']:.1e}"
        share = f" ({100 * d['agree'] / d['total']:.1f}%)" if d["total"] else ""
        lines.append(f"decisions of {d['output']} ({d['rule']}): {d['agree']}/{d['total']} agree with the oracle"
                     f"{share}{closest}")
    return lines
