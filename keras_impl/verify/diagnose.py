"""Where and why the first failing layer differs: a local fault or an inherited error, which direction, the
first time step and rows, and which known wrong convention Keras's output matches.

For the first layer outside its bound, the oracle's layer is run again on **Keras's own inputs** to it (the
outputs Keras gave its inbound layers, and the masks the oracle propagates, which Keras's equal):

- within the bound there: the layer is right, the error is **inherited** from upstream (small errors that
  grew); outside it: a **local fault** of this layer.
- a recurrent layer's output is compared step by step, in processing order, each direction on its own (a
  Bidirectional's two copies are called in Keras on the same inputs, as Keras's layer calls them): the
  direction that differs, the first processing step where the error exceeds the bound (with its time index
  in the input), the rows that exceed it there, and the growth of the error over the steps.
- for the first direction outside the bound, the oracle recomputes its first failing step from Keras's own
  states before it (``step_diagnosis.py``): which state (h or c) and which gate diverge first.
- every applicable entry of ``hypotheses.HYPOTHESES`` is tried; those within the bound are named.
"""
from __future__ import annotations

import numpy as np

from reference.layers import Outputs, layer_forward, layer_of
from reference.layers.rnn import RECURRENT_KINDS

from .hypotheses import matching
from .step_diagnosis import diagnose_step, format_step


def first_output(result) -> np.ndarray:
    """A layer forward's (first) output: ``(y, mask)``, or the first pair of ``Outputs``."""
    return result[0][0] if isinstance(result, Outputs) else result[0]


def output_of(result, ref: str) -> np.ndarray:
    """The output a reference (``lstm``, ``lstm:2``) names, from a layer forward's result."""
    index = int(ref.rpartition(":")[2]) if layer_of(ref) != ref else 0
    return result[index][0] if isinstance(result, Outputs) else result[0]


def _max_abs(a, b) -> float:
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(np.where(np.isnan(diff), 0.0, diff).max(initial=0.0))


def _keras_halves(keras_layer, x: np.ndarray, mask):
    """Keras's own forward and backward copies of a Bidirectional on ``x``, each in the input's time order."""
    import keras
    dtype = keras_layer.forward_layer.compute_dtype
    xt = keras.ops.convert_to_tensor(x.astype(dtype))
    mt = None if mask is None else keras.ops.convert_to_tensor(np.asarray(mask, bool))
    y_f = keras.ops.convert_to_numpy(keras_layer.forward_layer(xt, mask=mt, training=False))
    y_b = keras.ops.convert_to_numpy(keras_layer.backward_layer(xt, mask=mt, training=False))
    if keras_layer.return_sequences:
        y_b = y_b[:, ::-1]
    return y_f, y_b


def _steps(actual, expected, allowed: float, backwards: bool, time_ordered: bool) -> dict:
    """Per processing step: the worst error; the first step outside ``allowed``, its input time and rows.

    ``backwards``: the copy reads from the last step; ``time_ordered``: its output is in the input's time order
    (a Bidirectional's halves), else in processing order (a ``go_backwards`` layer's own output).
    """
    err = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    err = np.where(np.isnan(err), 0.0, err).reshape(err.shape[0], err.shape[1], -1).max(axis=2)  # (B, T)
    steps = err.shape[1]
    order = np.arange(steps)[::-1] if backwards else np.arange(steps)  # input time of each processing step
    by_step = err[:, order] if time_ordered else err
    over = np.nonzero(by_step.max(axis=0) > allowed)[0]
    first = None if over.size == 0 else int(over[0])
    return {"error_by_step": [float(v) for v in by_step.max(axis=0)],
            "first_step": first, "first_time": None if first is None else int(order[first]),
            "rows": [] if first is None else [int(r) for r in np.nonzero(by_step[:, first] > allowed)[0]]}


def _directions(layer, keras_layer, inputs, masks, allowed: float) -> list[dict]:
    """One entry per direction of a recurrent layer with a sequence output: its error and step localisation."""
    if not layer.options.get("return_sequences"):
        return []
    if layer.kind in RECURRENT_KINDS:
        backwards = bool(layer.options.get("go_backwards"))
        y = first_output(layer_forward(layer, inputs, masks))
        return [] if y.ndim != 3 else [("backward" if backwards else "forward", None, y, backwards, False)]
    tape: list = []
    layer_forward(layer, inputs, masks, tape)
    if not tape or "halves" not in tape[0]:  # a forward that keeps no record: no directions to tell apart
        return []
    return [(d, k, half, bool(layer.options[d].get("go_backwards", d == "backward")), True)
            for k, (d, half) in enumerate(zip(("forward", "backward"), tape[0]["halves"]))]


def diagnose(described, rows: list[dict], values: dict) -> dict | None:
    """The diagnosis of the first layer outside its bound, or None when every layer passes."""
    failing = next((row for row in rows if row["verdict"] != "pass"), None)
    if failing is None:
        return None
    ref, allowed = failing["layer"], failing["allowed"]  # a reference: "lstm", or "lstm:2" for a later output
    name = layer_of(ref)
    layer = next(lay for lay in described.graph.layers if lay.name == name)
    oracle, keras_values = values["oracle"], values["keras"]
    actual = np.asarray(keras_values[ref], np.float64)
    inputs = [np.asarray(keras_values[n], np.float64) if n in keras_values else oracle[n][0] for n in layer.inbound]
    masks = [oracle[n][1] for n in layer.inbound]
    result = {"layer": ref, "class": failing["class"], "allowed": allowed}
    if failing.get("note"):  # not a difference of values (a mask, a shape, an output the oracle lacks)
        result["local"] = {"error": None, "fault": f"{failing['note']}: a difference of structure, not of values"}
        return result
    try:
        local = output_of(layer_forward(layer, inputs, masks), ref)
    except (ValueError, TypeError) as exc:
        result["local"] = {"error": None, "fault": f"the oracle cannot run the layer on Keras's inputs: {exc}"}
        return result
    local_error = _max_abs(actual, local) if np.shape(actual) == np.shape(local) else float("inf")
    result["local"] = {"error": local_error, "fault": "local" if local_error > allowed else "inherited"}
    if local_error <= allowed:
        return result
    if ref != name:  # a later output (a returned state): its value is compared, its steps and conventions not
        return result
    directions = []
    entries = _directions(layer, described.keras_layers[name], inputs, masks, allowed)
    halves = _keras_halves(described.keras_layers[name], inputs[0], masks[0]) \
        if layer.kind == "Bidirectional" and entries else None
    for direction, k, expected, backwards, time_ordered in entries:
        got = actual if k is None else halves[k]
        if np.shape(got) != np.shape(expected):
            continue
        directions.append({"direction": direction, "error": _max_abs(got, expected),
                           **_steps(got, expected, allowed, backwards, time_ordered)})
    result["directions"] = directions
    failing_direction = next((x for x in directions if x["first_step"] is not None), None)
    if failing_direction is not None and "conv_lstm" in layer.options.get("forward", {}):
        result["step"] = {"direction": failing_direction["direction"], "finding": "not recomputed",
                          "why": "a ConvLSTM's step (its states are maps) is not recomputed; LSTM, GRU and "
                                 "SimpleRNN cells are"}
    elif failing_direction is not None:
        # The step's recomputation adds to a diagnosis already made: a copy Keras cannot clone with its states
        # returned (a quantized or custom layer) says why on its line rather than end the report.
        try:
            result["step"] = {"direction": failing_direction["direction"],
                              **diagnose_step(layer, described.keras_layers[name], inputs, masks, failing_direction,
                                              allowed)}
        except Exception as exc:  # noqa: BLE001
            result["step"] = {"direction": failing_direction["direction"], "finding": "not recomputed",
                              "why": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
    result["hypotheses"] = matching(layer, inputs, masks, actual, allowed)
    return result


def format_diagnosis(d: dict | None) -> list[str]:
    """The diagnosis section of the printed report."""
    if not d:
        return []
    lines = [f"diagnosis of {d['layer']} ({d['class']}), the first layer outside its bound:"]
    local = d["local"]
    if local["error"] is None:
        return lines + [f"  {local['fault']}"]
    if local["fault"] == "inherited":
        return lines + [f"  inherited: fed Keras's own inputs, the oracle's layer is within its bound "
                        f"({local['error']:.2e} <= {d['allowed']:.1e}); the error comes from upstream"]
    lines.append(f"  local fault: fed Keras's own inputs, the oracle's layer still differs by {local['error']:.2e} "
                 f"(allowed {d['allowed']:.1e})")
    for direction in d.get("directions", []):
        if direction["first_step"] is None:
            lines.append(f"  {direction['direction']} direction: within the bound ({direction['error']:.2e})")
            continue
        series = direction["error_by_step"]
        lines.append(f"  {direction['direction']} direction: first outside the bound at processing step "
                     f"{direction['first_step']} (input time t={direction['first_time']}), rows "
                     f"{direction['rows']}; the error grows from {series[direction['first_step']]:.2e} there to "
                     f"{max(series):.2e}")
    step = d.get("step")
    if step and step["finding"] == "not recomputed":
        lines.append(f"  {step['direction']} direction: its step not recomputed from Keras's states ({step['why']})")
    elif step:
        lines += format_step(step, step["direction"])
    tried = d.get("hypotheses", [])
    matches = [h for h in tried if h["matches"]]
    if matches:
        lines += [f"  Keras's output matches: {h['hypothesis']} (error {h['error']:.2e})" for h in matches]
    lines.append(f"  {len(tried)} known wrong conventions tried, {len(matches)} match"
                 + ("" if matches else " (see docs/verify.md, 'Diagnosis')"))
    return lines


def plot_error_growth(d: dict, path) -> bool:
    """The error of each direction against the processing step, with the bound, as a PNG; False when the
    failing layer has no steps to draw."""
    directions = [x for x in (d or {}).get("directions", []) if x["error_by_step"]]
    if not directions:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_impl.files import atomic_savefig
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for x in directions:
        ax.semilogy([max(v, 1e-18) for v in x["error_by_step"]], marker="o", ms=3, label=f"{x['direction']} direction")
    ax.axhline(d["allowed"], color="black", linestyle="--", linewidth=1, label="bound")
    ax.set_xlabel("processing step")
    ax.set_ylabel("max |Keras - oracle| at the step")
    ax.set_title(f"{d['layer']} ({d['class']}): the error over time, on Keras's own inputs")
    ax.legend()
    atomic_savefig(fig, path)
    plt.close(fig)
    return True
