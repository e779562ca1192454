"""Every layer's output, Keras against the oracle, and the report ``bilstm verify`` prints and saves.

Keras's intermediate outputs come from one sub-model, ``keras.Model(model.inputs,
[every layer call's outputs, every explicit mask])``, run once in inference mode
(and, for a nested model, one more of its own graph, run on the values its call
received: ``describe.Scope``); the oracle runs ``reference.layers.graph_forward`` in float64 on the same inputs and
the file's weights (as float64).

The bound is ``keras_impl/parity/tolerances.bound("verify", dtype, backend)``
(float32: 1e-5), applied to ``max |Keras - oracle| / max(1, max |oracle|)``:
absolute for outputs within [-1, 1] (gates, tanh, probabilities), relative to the
layer's largest output above that (a linear head, a sum merge, a user's large
embeddings), where float32 rounding grows with the values.

A layer with several outputs (``return_state``, ``merge_mode=None``) has a row per
output, named by its reference (``lstm``, ``lstm:1``, ...), each within the bound.

Where Keras gave a layer an explicit mask (functional models), that mask must
equal the one the oracle propagates by Keras's rules; a hand-made mask (an op of
the user's passed as ``mask=``) is not modelled, and is refused (exit 2). The mask Keras leaves on each
layer's output must equal the oracle's mask' too (None counting as all True), or the layer FAILs: a mask
dropped or passed on against Keras's rule is caught at the layer that does it.
"""
from __future__ import annotations

import warnings

import numpy as np

from keras_impl.parity.tolerances import verify_layer_bound
from reference.layers import graph_forward, tensor_ref

from .config_file import one_line
from .errors import VerifyRefusal
from .load import MASK_DROPPED_WARNING


def worst_errors(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float, float]:
    """``(max abs error, that over max |expected|, max |expected|)``; NaN on both sides counts as equal."""
    actual = np.asarray(actual, np.float64)
    both_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, np.abs(actual - expected))
    diff = np.where(np.isnan(diff), np.inf, diff)
    size = float(np.max(np.abs(np.where(np.isnan(expected), 0.0, expected)), initial=0.0))
    worst = float(diff.max(initial=0.0))
    return worst, (worst / size if size > 0 else (0.0 if worst == 0 else float("inf"))), size


def keras_outputs(model, described, inputs) -> tuple[dict, dict]:
    """``(values, masks)``: Keras's value of every reference in ``described.scope`` (layer outputs, explicit
    masks) and of every model input, as NumPy arrays; and the mask Keras left on each of those outputs."""
    import keras
    values, masks = dict(zip(described.graph.inputs, inputs)), {}

    def run(scope, feed, feed_masks=None):
        refs = list(scope.tensors)
        # what this graph hands its nested models: their inputs, then the masks given with them
        fed = [t for tensors, *_ in scope.calls for t in tensors]
        fed_masks = [m for *_, call_masks in scope.calls for m in call_masks if m is not None]
        with warnings.catch_warnings():  # a layer dropping a mask (GlobalMaxPooling1D, Flatten): modelled
            warnings.filterwarnings("ignore", message=MASK_DROPPED_WARNING)
            sub = keras.Model(scope.inputs, [scope.tensors[r] for r in refs] + fed + fed_masks)
            # a nested model's masks go in as Keras's own call hands them (Functional.call(mask=...))
            out = sub(list(feed), training=False, **({"mask": feed_masks} if feed_masks else {}))
        out = out if isinstance(out, (list, tuple)) else [out]
        arrays = [keras.ops.convert_to_numpy(o) for o in out]
        values.update(zip(refs, arrays))
        masks.update(zip(refs, map(_keras_mask, out[:len(refs)])))
        rest, given = arrays[len(refs):len(refs) + len(fed)], out[len(refs) + len(fed):]
        for tensors, child, call_masks in scope.calls:
            child_masks = [None if m is None else given.pop(0) for m in call_masks]
            run(child, rest[:len(tensors)], child_masks if any(m is not None for m in child_masks) else None)
            rest = rest[len(tensors):]

    run(described.scope, inputs)
    return values, masks


def _keras_mask(tensor):
    """The mask Keras left on a layer's output (an attribute of the tensor), as NumPy booleans, or None."""
    import keras
    from keras.src.backend import get_keras_mask
    mask = get_keras_mask(tensor)
    return None if mask is None else keras.ops.convert_to_numpy(mask).astype(bool)


def masks_differ(keras_mask, oracle_mask) -> bool:
    """Whether two output masks differ: None and an all-True mask mean the same to every consumer."""
    if keras_mask is None or oracle_mask is None:
        other = oracle_mask if keras_mask is None else keras_mask
        return other is not None and not np.all(other)
    oracle_mask = np.asarray(oracle_mask, bool)
    return keras_mask.shape != oracle_mask.shape or not np.array_equal(keras_mask, oracle_mask)


def mask_summary(mask) -> str:
    return "-" if mask is None else f"{int(np.asarray(mask).sum())}/{np.asarray(mask).size} valid"


def layer_refs(values: dict, name: str) -> list[str]:
    """The references of a layer's outputs present in ``values``: ``name``, ``name:1``, ... (its Keras order)."""
    refs = []
    while tensor_ref(name, len(refs)) in values:
        refs.append(tensor_ref(name, len(refs)))
    return refs


def mask_text(mask_in, mask_out) -> str:
    return f"{mask_summary(mask_in)} -> {mask_summary(mask_out)}"


def compare(model, described, inputs, bound, values: dict | None = None) -> list[dict]:
    """One row per layer output (model order): errors against ``bound`` (a tolerances.Bound) and a verdict.

    ``values``, a dict, receives both sides' outputs: ``oracle`` (ref -> (y, mask)) and ``keras`` (ref -> y).
    """
    import keras
    backend = keras.backend.backend()
    graph = described.graph
    try:
        oracle = graph_forward(graph, inputs)
    except (ValueError, TypeError) as exc:  # shapes the file's config and weights disagree on
        raise VerifyRefusal(f"the oracle cannot run this model as its file describes it: {one_line(exc)}") from None
    try:
        keras_values, keras_masks = keras_outputs(model, described, inputs)
    except Exception as exc:  # noqa: BLE001  Keras's own refusal of these inputs, kept verbatim
        raise VerifyRefusal(f"Keras cannot run the model on these inputs: {type(exc).__name__}: "
                            f"{one_line(exc)}") from None
    if values is not None:
        values.update(oracle=oracle, keras=keras_values)
    rows, mask_failed = [], False  # mask_failed: an earlier layer's output mask differed from Keras's
    for layer in graph.layers:
        if layer.kind == "InputLayer":
            continue
        keras_layer = described.keras_layers[layer.name]
        in_masks = [oracle[ref][1] for ref in layer.inbound]
        explicit_note = _check_explicit_masks(layer.name, described.mask_sources.get(layer.name, []), in_masks,
                                              keras_values, mask_failed)
        layer_bound = verify_layer_bound(bound, layer.kind, layer.options, keras_layer.compute_dtype, backend)
        for ref in layer_refs(keras_values, layer.name):  # every output Keras gives, each its row
            row = _row(ref, type(keras_layer).__name__, described.options.get(layer.name, ""), in_masks,
                       oracle.get(ref), keras_values[ref], layer_bound, layer_bound is not bound)
            # Keras's mask on an output is an attribute of the tensor. A functional model hands its masks on as
            # explicit arguments instead (checked above, where they are used), and there an output may come back
            # without the attribute (seen on JAX after a layer called with mask=): a missing one counts only
            # where no mask is passed explicitly.
            keras_mask = keras_masks.get(ref)
            if (not row["note"] and oracle.get(ref) and masks_differ(keras_mask, oracle[ref][1])
                    and (keras_mask is not None or not described.mask_sources)):
                row["note"] = (f"Keras's output mask {mask_summary(keras_masks.get(ref))} != oracle's "
                               f"{mask_summary(oracle[ref][1])}")
                mask_failed = True
            if explicit_note and not row["note"]:
                row["note"] = explicit_note
            if row["note"]:
                row["verdict"] = "FAIL"
            rows.append(row)
    return rows


def _check_explicit_masks(name, sources, in_masks, keras_values, mask_failed: bool) -> str:
    """Each mask Keras passed to layer ``name`` must be the one the oracle propagated to it: else a hand-made
    mask, refused; or, after an earlier layer's output mask already differed (the oracle's own mistake
    upstream, a FAIL), a note that this layer FAILs with it."""
    for k, source in enumerate(sources):
        if source is None:
            continue
        keras_mask = np.asarray(keras_values[source]).astype(bool)
        mine = in_masks[k] if k < len(in_masks) else None
        if not masks_differ(keras_mask, mine):
            continue
        if mask_failed:
            return f"given a mask (from {source!r}) that differs from the oracle's, after an earlier layer's mask differed"
        raise VerifyRefusal(f"layer {name!r} is given a mask (from {source!r}) that is not the one its "
                            "inputs' layers propagate: a hand-made mask is not modelled")
    return ""


def _row(ref, cls, options, in_masks, oracle_value, actual, bound, named_bound: bool) -> dict:
    """One output's row of the table: its errors against ``bound`` and its verdict (FAIL where the oracle has no
    such output, or a shape differs: a FAIL that says why, not a broadcasting error)."""
    expected, mask_out = oracle_value or (np.zeros(0), None)
    note = "" if oracle_value else "the oracle has no such output"
    if oracle_value and actual.shape != expected.shape:
        abs_err = rel_err = float("inf")
        size = float(np.max(np.abs(np.nan_to_num(expected)), initial=0.0))
        note = f"shape {actual.shape} != oracle {expected.shape}"
    elif oracle_value:
        abs_err, rel_err, size = worst_errors(actual, expected)
    else:
        abs_err, rel_err, size = float("inf"), float("inf"), 0.0
    allowed = bound.value * max(1.0, size)
    verdict = "pass" if abs_err <= allowed and not note else "FAIL"
    return {"layer": ref, "class": cls, "options": options,
            "mask": mask_text(in_masks[0] if in_masks else None, mask_out),
            "max_abs_error": abs_err, "max_rel_error": rel_err, "max_abs_output": size,
            "bound": f"{bound.value:g} x max(1, max|y|)" + (f" ({bound.cause})" if named_bound else ""),
            "allowed": allowed, "verdict": verdict, "note": note}


def format_table(rows: list[dict]) -> str:
    header = ("layer", "class", "options", "mask in -> out", "max abs err", "max rel err", "bound", "verdict")
    body = [(r["layer"], r["class"], r["options"], r["mask"], f"{r['max_abs_error']:.2e}", f"{r['max_rel_error']:.2e}",
             f"{r['allowed']:.1e}", r["verdict"] + (f" ({r['note']})" if r["note"] else "")) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])


def as_float64_model(model):
    """The same model computing in float64: every layer's dtype policy set to float64, the weights copied."""
    def patch(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
                return {**node, "config": {**node["config"], "name": "float64"}}
            return {k: (("float64" if v == "float32" else v) if k == "dtype" and isinstance(v, str) else patch(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [patch(v) for v in node]
        return node

    config = patch(model.get_config())
    with warnings.catch_warnings():  # rebuilding the graph, a layer that drops a mask warns: modelled
        warnings.filterwarnings("ignore", message=MASK_DROPPED_WARNING)
        clone = type(model).from_config(config)
    clone.set_weights(model.get_weights())
    return clone
