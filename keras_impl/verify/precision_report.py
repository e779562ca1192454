"""The report of a model in reduced precision or quantized: the layer rows of ``precision.py``, the model outputs'
end-to-end errors, and the decisions Keras takes against the float64 oracle on the float weights.

Called by ``api.verify`` once the model is loaded and described; the float weights come from the ``--float-model``
file (same layer names, kinds and weight shapes, computing in float32) or from what the layers keep themselves.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from reference.layers import graph_forward

from .errors import VerifyRefusal
from .report import VerifyReport


def _float_layers_given(described, float_path: Path) -> dict:
    """``{name: oracle layer on the float model's weights}`` for every layer whose weights differ from those Keras
    computes with; the float model must match layer by layer."""
    from .describe import describe_model
    from .load import load_model
    from .precision import model_precision, policy_summary
    model, _, _ = load_model(float_path)
    other = describe_model(model)
    precisions = model_precision(other)
    if precisions is not None:
        raise VerifyRefusal(f"--float-model {float_path} computes in {policy_summary(precisions)}: give the float32 "
                            "model the quantized one was made from")
    theirs = {layer.name: layer for layer in other.graph.layers}
    found = {}
    for layer in described.graph.layers:
        mine = theirs.get(layer.name)
        same_shapes = mine is not None and mine.kind == layer.kind and len(mine.weights) == len(layer.weights) and all(
            np.shape(a) == np.shape(b) for a, b in zip(mine.weights, layer.weights))
        if not same_shapes:
            raise VerifyRefusal(f"--float-model {float_path} has no layer {layer.name!r} of kind {layer.kind} with "
                                "the same weight shapes: give the float model the quantized one was made from")
        if any(not np.array_equal(a, b) for a, b in zip(mine.weights, layer.weights)):
            found[layer.name] = replace(layer, weights=mine.weights)
    return found


def _float_layers_kept(described) -> dict:
    """Without a float model: a float8 layer's own float kernel; None for an int8 or int4 layer (unknown)."""
    import keras_impl.verify.dequantize as dequantize
    found = {}
    for layer in described.graph.layers:
        keras_layer = described.keras_layers.get(layer.name)
        if keras_layer is None or dequantize.mode(keras_layer) is None:
            continue
        kept = dequantize.float_weights_kept(keras_layer)
        found[layer.name] = None if kept is None else replace(layer, weights=kept)
    return found


def _end_to_end(graph, oracle_b: dict, oracle_a: dict | None, keras_values: dict) -> list[dict]:
    """Per model output: Keras against the oracle on the weights it computes with, and what the weights cost."""
    from .compare import worst_errors
    found = []
    for ref in graph.outputs:
        y_b = oracle_b[ref][0]
        entry = {"output": ref, "max_abs_output": float(np.max(np.abs(np.nan_to_num(y_b)), initial=0.0)),
                 "arithmetic_error": worst_errors(keras_values[ref], y_b)[0]
                 if np.shape(keras_values[ref]) == np.shape(y_b) else None,
                 "weights_error": None if oracle_a is None else worst_errors(oracle_a[ref][0], y_b)[0]}
        found.append(entry)
    return found


def precision_report(model, described, precisions, path: Path, saved_by: str, options: dict, user_inputs,
                     float_path: Path | None) -> VerifyReport:
    from keras_impl.backend import backend_info

    from .compare import keras_outputs
    from .decisions import decisions
    from .inputs import check_user_inputs, draw_inputs
    from .precision import policy_summary, precision_rows
    if precisions is None:
        raise VerifyRefusal(f"--float-model is for a model in reduced precision or quantized; {path} computes in "
                            "float32")
    summary = policy_summary(precisions)
    if options["dtype"] == "float64" or options["repro"] is not None:  # the config said so too (api.py), mostly
        raise VerifyRefusal(f"{path} computes in {summary}: verified in its own precision, without --dtype "
                            "float64 or --repro")
    float_layers = _float_layers_given(described, float_path) if float_path else _float_layers_kept(described)
    if user_inputs is not None:
        inputs, about = check_user_inputs(described, described.keras_layers, user_inputs)
    else:
        inputs, about = draw_inputs(described, described.keras_layers, options["batch"], options["timesteps"],
                                    options["seed"])
    try:
        oracle_b = graph_forward(described.graph, inputs)
    except (ValueError, TypeError) as exc:
        raise VerifyRefusal(f"the oracle cannot run this model as its file describes it: {exc}") from None
    try:
        keras_values, keras_masks = keras_outputs(model, described, inputs)
    except Exception as exc:  # noqa: BLE001  Keras's own refusal of these inputs, kept verbatim
        raise VerifyRefusal(f"Keras cannot run the model on these inputs: {type(exc).__name__}: {exc}") from None
    rows = precision_rows(described, float_layers, keras_values, oracle_b, precisions, keras_masks)
    oracle_a = None
    if all(layer is not None for layer in float_layers.values()):
        graph_a = replace(described.graph, layers=tuple(float_layers.get(x.name, x) for x in described.graph.layers))
        oracle_a = graph_forward(graph_a, inputs) if float_layers else oracle_b
    info = backend_info()
    return VerifyReport(
        file=str(path), saved_by=saved_by, backend=info["backend"], device=info["device"], dtype=summary,
        seed=None if user_inputs is not None else options["seed"], versions=info, inputs=about,
        bound={"kind": "per layer, on Keras's own inputs to it, in the units of its arithmetic",
               "value": None, "cause": "keras_impl/parity/tolerances.py; derivations in docs/verify.md, "
                                       "'Reduced precision'"},
        layers=rows, decisions=decisions(described.graph, oracle_a or oracle_b, keras_values),
        precision={"layers": precisions, "float_model": None if float_path is None else str(float_path),
                   "outputs": _end_to_end(described.graph, oracle_b, oracle_a, keras_values)})
