"""A model in reduced precision (a ``mixed_float16``, ``mixed_bfloat16``, ``float16`` or ``bfloat16`` dtype policy)
or quantized by Keras (``model.quantize("int8" | "int4" | "float8")``), verified layer by layer with two errors.

The oracle runs each layer in float64 **on Keras's own inputs to it** (so that a layer is held to its own
arithmetic, not to what the layers before it already cost), twice:

- (b) on the weights Keras computes with: a quantized layer's dequantized weights (``dequantize.py``), a 16-bit
  model's float32 variables;
- (a) on the float weights: the ``--float-model`` file's layer of the same name, or the float kernel a float8
  layer keeps; where neither exists (an int8 or int4 file alone) the weights' error is not measured.

Per layer output, **the weights' error** is ``|a - b|`` and **the arithmetic's error** ``|Keras - b|``, each in
the units of what causes it, with a bound derived from that arithmetic (``keras_impl/parity/tolerances.py``,
docs/verify.md "Reduced precision") and a verdict:

==================  =====================================================  ===========================================
layer               weights' error, in                                     arithmetic's error, in
==================  =====================================================  ===========================================
float16, bfloat16   (same weights: 0)                                      ulps of the format at max|y|:
                                                                           ``reduced_precision_bound(fan_in x steps)``
int8 / int4 Dense   half steps through the row: ``sum_i |x_i| step_ij/2``  int8 Dense: half input steps through the
                                                                           column ``max|x|/127/2 x sum_i |w_ij|``;
                                                                           int4: float32 (``FLOAT32_ABS``)
int8 / int4 Embed.  half steps of the row                                  float32 (``FLOAT32_ABS``)
float8 Dense        half e4m3 ulps through the row                         half e4m3 ulps of the inputs, through w
float32 layers      (same weights: 0)                                      float32 (``FLOAT32_ABS``)
==================  =====================================================  ===========================================
"""
from __future__ import annotations

import math

import numpy as np

from keras_impl.parity.tolerances import (ACTIVATION_STRETCH, FLOAT32_ABS, QUANTIZED_SLACK_ABS, float8_inputs_bound,
                                          int8_inputs_bound, quantized_weights_bound, reduced_precision_bound)
from reference.layers import layer_forward

import keras_impl.verify.dequantize as dequantize
from .diagnose import output_of
from .errors import VerifyRefusal

REDUCED = ("float16", "bfloat16")
MANTISSA_BITS = {"float16": 10, "bfloat16": 7, "float32": 23}   # bits after the point
MIN_NORMAL_EXPONENT = {"float16": -14, "bfloat16": -126, "float32": -126}
RECURRENT = ("LSTM", "GRU", "SimpleRNN")


def ulp(magnitude: float, dtype: str) -> float:
    """The spacing of ``dtype`` numbers at ``magnitude`` (the unit of a 16-bit layer's error at its output)."""
    exponent = math.floor(math.log2(magnitude)) if magnitude > 0 else MIN_NORMAL_EXPONENT[dtype]
    return 2.0 ** (max(exponent, MIN_NORMAL_EXPONENT[dtype]) - MANTISSA_BITS[dtype])


def layer_precision(layer) -> str:
    """What a layer computes in: ``int8``, ``int4``, ``float8``, ``float16``, ``bfloat16`` or ``float32``."""
    return dequantize.mode(layer) or str(getattr(layer, "compute_dtype", "float32"))


def model_precision(described) -> dict | None:
    """``{layer name: precision}`` of a described model when any layer computes in reduced precision or is
    quantized, else None; a combination the bounds do not cover is refused by name."""
    found = {}
    for name, layer in described.keras_layers.items():
        inner = [layer] + [getattr(layer, k) for k in ("forward_layer", "backward_layer", "layer")
                           if getattr(layer, k, None) is not None]
        precisions = {layer_precision(x) for x in inner}
        mode = dequantize.mode(layer)
        if mode is not None:
            source = getattr(layer.dtype_policy, "compute_dtype", "float32")
            if mode not in dequantize.MODES or type(layer).__name__ not in dequantize.KINDS:
                raise VerifyRefusal(f"layer {name!r} ({type(layer).__name__}) is quantized ({mode}): verified for "
                                    f"{', '.join(dequantize.MODES)} on {', '.join(dequantize.KINDS)} only")
            if source != "float32":
                raise VerifyRefusal(f"layer {name!r} is quantized ({mode}) from {source}: quantized layers are "
                                    "verified when quantized from float32")
            activation = getattr(layer, "activation", None)
            if activation is not None:
                from .layers.common import activation_name
                if activation_name(activation) not in ACTIVATION_STRETCH:
                    raise VerifyRefusal(f"layer {name!r} is quantized ({mode}) with activation "
                                        f"{activation_name(activation)!r}, for which no bound is derived; "
                                        f"supported: {', '.join(ACTIVATION_STRETCH)}")
        found[name] = mode or next((p for p in precisions if p in REDUCED), None) or layer_precision(layer)
    if all(p in ("float32", "float64", "int32", "bool") for p in found.values()):
        return None
    return found


def policy_summary(precisions: dict) -> str:
    """The model's precision in a few words: ``mixed_float16``-style names where one dtype, the modes else."""
    kinds = sorted({p for p in precisions.values() if p not in ("float32", "float64", "int32", "bool")})
    return ", ".join(kinds)


def _float_rows(y: np.ndarray) -> np.ndarray:
    """``(rows, features)``: every leading axis as rows (a Dense acts on the last one)."""
    y = np.asarray(y, np.float64)
    return y.reshape(-1, y.shape[-1]) if y.ndim > 1 else y.reshape(1, -1)


def _terms(keras_layer, kind: str, x: np.ndarray) -> int:
    """How many rounded products and sums feed one output of a 16-bit layer: fan_in x steps."""
    cell_layer = keras_layer.forward_layer if kind == "Bidirectional" else keras_layer
    cell = getattr(cell_layer, "cell", None)
    if kind == "Embedding":
        return 0
    if cell is not None and getattr(cell, "kernel", None) is not None:  # a recurrent layer: over its timesteps
        fan_in = cell.kernel.shape[0] + cell.recurrent_kernel.shape[0]
        return int(fan_in * (x.shape[1] if x.ndim >= 3 else 1))
    kernel = getattr(keras_layer, "kernel", None)
    if kernel is not None:
        return int(kernel.shape[0])
    return int(x.shape[-1]) if x.ndim >= 2 else 1


class _Check:
    """One error against its bound: the absolute figure, the same in units, the bound in units, a verdict."""

    def __init__(self, error, unit, bound: float, slack, unit_name: str, bound_text: str):
        error, unit, slack = (np.asarray(v, np.float64) for v in (error, unit, slack))
        error = np.where(np.isnan(error), np.inf, error)
        self.error = float(error.max(initial=0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(error == 0, 0.0, error / unit)
        self.units = float(np.max(ratio, initial=0.0))
        self.passed = bool(np.all(error <= bound * unit + slack))
        self.unit, self.bound, self.bound_text = unit_name, bound, bound_text

    def as_dict(self) -> dict:
        return {"error": self.error, "in_units": self.units, "unit": self.unit, "bound": self.bound,
                "bound_text": self.bound_text, "verdict": "pass" if self.passed else "FAIL"}


def _same_weights() -> dict:
    return {"error": 0.0, "in_units": 0.0, "unit": "same weights", "bound": 0.0,
            "bound_text": "the weights Keras computes with are the float weights", "verdict": "pass"}


def _not_measured() -> dict:
    return {"error": None, "in_units": None, "unit": "-", "bound": None,
            "bound_text": "the file holds only the quantized weights: give --float-model", "verdict": "-"}


def _float32_check(error, y) -> _Check:
    size = float(np.max(np.abs(np.nan_to_num(y)), initial=0.0))
    return _Check(error, ulp(max(size, 1.0), "float32"), FLOAT32_ABS * max(1.0, size) / ulp(max(size, 1.0), "float32"),
                  0.0, "float32 ulp", "float32 arithmetic: 1e-5 x max(1, max|y|)")


def _activation(layer) -> str:
    from .layers.common import activation_name
    return activation_name(layer.activation) if getattr(layer, "activation", None) is not None else "linear"


def each_weight_check(keras_layer, kind: str, float_matrix: np.ndarray) -> _Check:
    """Every quantized weight against its float weight, ``|w - w_q|``, in half quantisation steps: at most one
    where Keras rounded to the nearest step (``quantized_weights_bound``), wherever the layer's inputs look."""
    weights = dequantize.embedding_weights if kind == "Embedding" else dequantize.dense_weights
    (matrix, *_), step = weights(keras_layer)
    slack = QUANTIZED_SLACK_ABS * max(1.0, float(np.max(np.abs(float_matrix), initial=0.0)))
    return _Check(np.abs(float_matrix - matrix), step / 2, quantized_weights_bound(), slack, "half steps",
                  "1 half step (rounding to the nearest)")


def weights_check(keras_layer, kind: str, x: np.ndarray, y_a, y_b) -> _Check:
    """The quantized weights' error ``|a - b|`` at the output, in half quantisation steps."""
    slack = QUANTIZED_SLACK_ABS * max(1.0, float(np.max(np.abs(y_a), initial=0.0)))
    if kind == "Embedding":
        _, step = dequantize.embedding_weights(keras_layer)
        half = step[np.asarray(x, np.int64)] / 2  # (..., features): each output entry's half step
        return _Check(np.abs(y_a - y_b), half, quantized_weights_bound(), slack, "half steps",
                      "1 half step (rounding to the nearest)")
    _, step = dequantize.dense_weights(keras_layer)  # (D, U)
    rows = _float_rows(x)
    unit = (np.abs(rows) @ (step / 2)).max(axis=1)  # per row: the worst column's sum_i |x_i| step_ij / 2
    error = np.abs(_float_rows(y_a) - _float_rows(y_b)).max(axis=1)
    act = _activation(keras_layer)
    return _Check(error, unit, quantized_weights_bound(act), slack, "half steps through the row",
                  f"{quantized_weights_bound(act):g} (rounding to the nearest, {act} stretches x"
                  f"{ACTIVATION_STRETCH[act]:g})")


def runtime_check(keras_layer, kind: str, precision: str, x: np.ndarray, y_keras, y_b, terms: int) -> _Check:
    """The arithmetic's error ``|Keras - b|``, in the units of the arithmetic Keras ran."""
    error = np.abs(np.asarray(y_keras, np.float64) - y_b)
    size = float(np.max(np.abs(np.nan_to_num(y_b)), initial=0.0))
    if precision in REDUCED:
        bound = reduced_precision_bound(terms)
        return _Check(error, ulp(size, precision), bound, 0.0, f"{precision} ulp",
                      f"1 + sqrt({terms})/4 ulp of {precision} at max|y|")
    quantizer = getattr(keras_layer, "inputs_quantizer", None) if kind == "Dense" else None
    if precision not in ("int8", "int4", "float8") or kind != "Dense" or (precision != "float8" and not quantizer):
        return _float32_check(error, y_b)
    act = _activation(keras_layer)
    (kernel, _), _ = dequantize.dense_weights(keras_layer)
    rows = _float_rows(x)
    slack = QUANTIZED_SLACK_ABS * max(1.0, size)
    row_error = _float_rows(error).max(axis=1)
    if precision == "float8":  # each input rounded to e4m3 with the layer's inputs_scale
        s = float(np.asarray(keras_layer.inputs_scale))
        half_ulp = dequantize.e4m3_ulp(rows / s) * s / 2
        unit = (half_ulp @ np.abs(kernel)).max(axis=1)
        return _Check(row_error, unit, float8_inputs_bound(act), slack, "half e4m3 input ulps",
                      f"{float8_inputs_bound(act):g} (inputs rounded to e4m3, {act} x{ACTIVATION_STRETCH[act]:g})")
    top = float(getattr(quantizer, "value_range", (-127, 127))[1])
    step = (np.abs(rows).max(axis=1) + 1e-7) / top  # Keras: scale = top / (max|x_row| + epsilon)
    unit = step / 2 * np.abs(kernel).sum(axis=0).max()
    return _Check(row_error, unit, int8_inputs_bound(act), slack, "half input steps",
                  f"{int8_inputs_bound(act):g} (inputs rounded to int8 per row, {act} x{ACTIVATION_STRETCH[act]:g})")


def precision_rows(described, float_layers: dict, keras_values: dict, oracle: dict, precisions: dict,
                   keras_masks: dict | None = None) -> list[dict]:
    """One row per layer output: both errors, on Keras's own inputs to the layer, each with its verdict; a mask
    Keras leaves on an output that differs from the oracle's is a FAIL, as in the float32 comparison.

    ``float_layers``: layer name -> the oracle layer on float weights (a), where they differ from the weights
    Keras computes with; ``None`` for a quantized layer whose float weights are unknown.
    """
    from .compare import layer_refs, mask_summary, mask_text, masks_differ
    rows = []
    for layer in described.graph.layers:
        if layer.kind == "InputLayer":
            continue
        keras_layer = described.keras_layers[layer.name]
        inputs = [np.asarray(keras_values[r], np.int64 if np.asarray(keras_values[r]).dtype.kind in "iub"
                             else np.float64) for r in layer.inbound]
        masks = [oracle[r][1] for r in layer.inbound]
        try:
            result_b = layer_forward(layer, inputs, masks)
            result_a = None if float_layers.get(layer.name, layer) is None else \
                layer_forward(float_layers[layer.name], inputs, masks) if layer.name in float_layers else result_b
        except (ValueError, TypeError) as exc:
            raise VerifyRefusal(f"the oracle cannot run layer {layer.name!r} on Keras's inputs: {exc}") from None
        precision = precisions.get(layer.name, "float32")
        x = inputs[0] if inputs else np.zeros(0)
        terms = _terms(keras_layer, layer.kind, x)
        for ref in layer_refs(keras_values, layer.name):
            y_b = output_of(result_b, ref)
            y_keras = np.asarray(keras_values[ref], np.float64)
            note = "" if y_keras.shape == y_b.shape else f"shape {y_keras.shape} != oracle {y_b.shape}"
            keras_mask = (keras_masks or {}).get(ref)
            if not note and keras_mask is not None and masks_differ(keras_mask, oracle[ref][1]):
                note = f"Keras's output mask {mask_summary(keras_mask)} != oracle's {mask_summary(oracle[ref][1])}"
            if note:
                runtime = {"error": None, "in_units": None, "unit": "-", "bound": None, "bound_text": note,
                           "verdict": "FAIL"}
            else:
                runtime = runtime_check(keras_layer, layer.kind, precision, x, y_keras, y_b, terms).as_dict()
            if result_a is None:
                weights = _not_measured()
            elif result_a is result_b:
                weights = _same_weights()
            else:
                y_a = output_of(result_a, ref)
                if precision in ("int8", "int4", "float8"):
                    weights = weights_check(keras_layer, layer.kind, x, y_a, y_b).as_dict()
                    each = each_weight_check(keras_layer, layer.kind, float_layers[layer.name].weights[0])
                    weights["each_weight"] = each.as_dict()
                    if not each.passed:
                        weights["verdict"] = "FAIL"
                else:  # float weights given for a 16-bit model: its variables' rounding, in ulps
                    weights = runtime_check(keras_layer, layer.kind, precision, x, y_a, y_b, terms).as_dict()
            verdict = "FAIL" if "FAIL" in (weights["verdict"], runtime["verdict"]) or note else "pass"
            rows.append({"layer": ref, "class": type(keras_layer).__name__,
                         "options": described.options.get(layer.name, ""),
                         "precision": precision, "mask": mask_text(masks[0] if masks else None, oracle[ref][1]),
                         "max_abs_output": float(np.max(np.abs(np.nan_to_num(y_b)), initial=0.0)),
                         "weights": weights, "runtime": runtime, "verdict": verdict, "note": note})
    return rows


def _cell(check: dict) -> tuple[str, str]:
    if check["error"] is None:
        return "-", check["unit"] if check["verdict"] == "-" else check["bound_text"]
    if check["unit"] == "same weights":
        return "0", "same weights"
    text = f"{check['in_units']:.3g} {check['unit']} (<= {check['bound']:.3g})"
    if "each_weight" in check:  # the quantized weights themselves, wherever the inputs look
        text += f"; each weight {check['each_weight']['in_units']:.3g} (<= {check['each_weight']['bound']:.3g})"
    return f"{check['error']:.2e}", text


def format_precision_table(rows: list[dict]) -> str:
    """The table of a reduced-precision report: both errors per layer, in absolute terms and in units."""
    header = ("layer", "class", "precision", "max|y|", "weights err", "in units (bound)", "arithmetic err",
              "in units (bound)", "verdict")
    body = []
    for r in rows:
        w, a = _cell(r["weights"]), _cell(r["runtime"])
        failed = [k for k, c in (("weights", r["weights"]), ("arithmetic", r["runtime"])) if c["verdict"] == "FAIL"]
        body.append((r["layer"], r["class"], r["precision"], f"{r['max_abs_output']:.2g}", *w, *a,
                     r["verdict"] + (f" ({', '.join(failed)})" if failed else "")))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])
