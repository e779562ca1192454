"""An exported artifact against Keras and against the NumPy oracle, on inputs of several shapes.

Two halves, in two processes:

``input_sets`` and ``expected_outputs`` run in the worker (a Keras process): one set per input family that
breaks deployments (keras_impl/verify/families.py: batch 1 and > 1, shorter and longer than traced, right
and left padding, a fully masked row, a row of length 1, saturating magnitudes, the vocabulary's ends),
drawn to fit the model by ``keras_impl/verify/inputs.py``, or the user's ``--inputs``; then Keras's and the
oracle's outputs for each set.

``compare`` runs in the parent (no Keras): the artifact's outputs, from its own runtime, against both.
Errors are ``max |artifact - expected|``, allowed ``bound * max(1, max |oracle|)`` as ``bilstm verify``
applies its bound; the bounds are ``keras_impl/parity/tolerances.bound``: "output" (float32) against the
oracle, "artifact" against Keras. A runtime that ran in another precision than float32 (OpenVINO's bfloat16
default on CPUs that have it) is named in the report and still judged against the float32 bounds: its
verdict fails; ``--precision float32`` (the default) asks it for float32, ``--precision native`` takes its default.
"""
from __future__ import annotations

import numpy as np

SEED = 0


def input_sets(described, *, dynamic_batch: bool, seed: int = SEED, static_batch: int = 1,
               static_timesteps: int | None = None, user_inputs=None) -> list[dict]:
    """``[{"inputs": [arrays], "about": [...], "family": name}]``: the sets the artifact runs on (call in a Keras
    process), one per input family that applies (keras_impl/verify/families.py); the list's ``left_out`` names
    the families that do not. ``static_timesteps``: the artifact's time axis is fixed at that length (the
    families of other lengths are left out). ``user_inputs`` (an array, ``--inputs``): that one set instead."""
    from keras_impl.verify.families import USER_INPUTS, InputSets, family_sets
    if user_inputs is None:
        return family_sets(described, dynamic_batch=dynamic_batch, seed=seed, static_batch=static_batch,
                           static_timesteps=static_timesteps)
    from keras_impl.verify.inputs import check_user_inputs
    arrays, about = check_user_inputs(described, described.keras_layers, user_inputs)
    sets = InputSets([{"inputs": arrays, "about": about, "family": USER_INPUTS}])
    if not dynamic_batch and arrays[0].shape[0] != static_batch:  # one call of static_batch rows at a time
        rows = range(0, arrays[0].shape[0] - static_batch + 1, static_batch)
        sets = InputSets([{"inputs": [a[k:k + static_batch] for a in arrays], "family": USER_INPUTS,
                           "about": [{**a, "shape": [static_batch] + a["shape"][1:],
                                      "drawn": f"rows {k}..{k + static_batch - 1} of the user's --inputs"}
                                     for a in about]} for k in rows])
    sets.left_out = []
    return sets


def expected_outputs(model, described, inputs) -> tuple[list, list, list]:
    """``(Keras outputs, oracle outputs, oracle output masks)`` for one set, in the model's output order (call in a
    Keras process); a mask is the (B, T) one the oracle propagates to that output, or an empty array for none."""
    from reference.layers import graph_forward
    out = model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
    from keras import ops  # np.asarray fails on a torch tensor that requires grad (a loaded model's output)
    keras_out = [ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    oracle = graph_forward(described.graph, inputs)
    masks = [np.zeros(0, bool) if oracle[name][1] is None else np.asarray(oracle[name][1], bool)
             for name in described.graph.outputs]
    return keras_out, [oracle[name][0] for name in described.graph.outputs], masks


def rounded_outputs(graph, inputs) -> list:
    """The oracle's outputs on ``graph`` (its weights rounded: precision.rounded_graph), in float64."""
    from reference.layers import graph_forward
    values = graph_forward(graph, inputs)
    return [values[name][0] for name in graph.outputs]


def add_expected_outputs(model, described, sets: list[dict]) -> None:
    """Each set's ``keras``, ``oracle`` and ``masks`` (``expected_outputs``), computed once for all the sets of
    the same input shapes: their rows joined in one batch and split again (rows are independent at inference),
    so ten families cost Keras and the oracle about as many calls as their distinct lengths."""
    groups: dict = {}
    for s in sets:
        groups.setdefault(tuple(tuple(np.shape(x)[1:]) + (str(np.asarray(x).dtype),) for x in s["inputs"]),
                          []).append(s)
    for members in groups.values():
        joined = [np.concatenate([s["inputs"][i] for s in members]) for i in range(len(members[0]["inputs"]))]
        keras_out, oracle_out, masks = expected_outputs(model, described, joined)
        start = 0
        for s in members:
            rows = slice(start, start + len(s["inputs"][0]))
            start = rows.stop
            s["keras"] = [y[rows] for y in keras_out]
            s["oracle"] = [np.asarray(y)[rows] for y in oracle_out]
            s["masks"] = [m[rows] if np.size(m) else m for m in masks]


def decision_rules(described) -> list:
    """Per model output: "argmax", "threshold" or None (keras_impl/verify/decisions.py), for ``compare``."""
    from keras_impl.verify.decisions import decision_rule
    layers = {layer.name: layer for layer in described.graph.layers}
    return [decision_rule(layers[name]) for name in described.graph.outputs]


# .npz key stem -> set key ("rounded": the oracle on the weights rounded as a reduced precision stores them)
PACKED = {"input": "inputs", "keras": "keras", "oracle": "oracle", "mask": "masks", "rounded": "rounded"}


def pack(sets: list[dict]) -> dict:
    """The sets as flat NumPy arrays for an .npz: set{k}_input{i}, set{k}_keras{j}, set{k}_oracle{j}."""
    return {f"set{k}_{stem}{i}": np.asarray(a)
            for k, s in enumerate(sets) for stem, key in PACKED.items() for i, a in enumerate(s[key])}


def unpack(arrays) -> list[dict]:
    """``pack``'s inverse: ``[{"inputs", "keras", "oracle"}]`` in set order."""
    sets: dict[int, dict] = {}
    for name in arrays.keys():
        head, _, tail = name.partition("_")
        stem = tail.rstrip("0123456789")
        by_index = sets.setdefault(int(head[3:]), {key: {} for key in PACKED.values()})[PACKED[stem]]
        by_index[int(tail[len(stem):])] = np.asarray(arrays[name])
    return [{key: [d[i] for i in sorted(d)] for key, d in sets[k].items()} for k in sorted(sets)]


def _errors(actual, expected) -> tuple[float, float]:
    """``(max |actual - expected|, max |expected|)``; a shape mismatch is an infinite error."""
    from keras_impl.verify.compare import worst_errors
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf"), float(np.max(np.abs(expected), initial=0.0))
    worst, _, size = worst_errors(actual, expected)
    return worst, size


def compare(sets: list[dict], artifact_outputs: list, *, backend: str, ran_precision: str,
            rules: list | None = None, left_out: list | None = None, precision: str = "float32",
            arithmetic: bool = False) -> dict:
    """The verdict for one artifact: worst errors against the oracle and Keras over every set and output.

    A set's entry of ``artifact_outputs`` is its outputs, or one line where the runtime refused that set alone
    (an input shape the artifact fixed at export): a FAIL row for each output, the line kept. Each row names
    its set's input family (``family``); ``families`` says which failed, and a note which were ``left_out``.

    With ``rules`` (``decision_rules``), the decisions of each classifier output are counted as well: how many
    of the artifact's agree with the oracle's, on valid steps, over every set (they do not change the verdict).
    With a reduced ``precision`` (precision.REDUCED), each set's ``rounded`` outputs (the oracle on the weights
    rounded as that precision stores them) give the weights' own error E_w, and each output is held to
    tolerances.artifact_precision_bound, its errors also given in the precision's units; ``arithmetic``: the
    runtime rounds activations to that precision too (precision.rounds_activations).
    """
    from keras_impl.parity.tolerances import artifact_precision_bound, artifact_precision_unit, bound
    oracle_bound, keras_bound = bound("output", "float32", backend), bound("artifact", "float32", backend)
    reduced = precision not in ("float32", "native")
    rows = []
    for k, (s, outs) in enumerate(zip(sets, artifact_outputs)):
        if isinstance(outs, str):  # the runtime refused this set alone (a length or batch fixed at export)
            rows += [{"set": k, "output": j, "family": s.get("family"), "shape": None,
                      "expected_shape": list(np.shape(o)), "inputs": [list(np.shape(x)) for x in s["inputs"]],
                      "vs_oracle": float("inf"), "vs_keras": float("inf"), "keras_vs_oracle": _errors(kr, o)[0],
                      "scale": 1.0, "verdict": "FAIL", "error": outs} for j, (kr, o) in enumerate(zip(s["keras"],
                                                                                                   s["oracle"]))]
            continue
        if len(outs) != len(s["oracle"]):
            raise ValueError(f"set {k}: the artifact gave {len(outs)} outputs, the model has {len(s['oracle'])}")
        for j, (got, keras_out, oracle_out) in enumerate(zip(outs, s["keras"], s["oracle"])):
            vs_oracle, size = _errors(got, oracle_out)
            vs_keras, _ = _errors(got, keras_out)
            keras_vs_oracle, _ = _errors(keras_out, oracle_out)
            scale = max(1.0, size)
            row = {"set": k, "output": j, "family": s.get("family"), "shape": list(np.shape(got)),
                   "expected_shape": list(np.shape(oracle_out)), "inputs": [list(np.shape(x)) for x in s["inputs"]],
                   "vs_oracle": vs_oracle, "vs_keras": vs_keras, "keras_vs_oracle": keras_vs_oracle, "scale": scale}
            if reduced:
                weight_error, _ = _errors(s["rounded"][j], oracle_out)
                unit = artifact_precision_unit(precision, size)
                steps = max((x.shape[1] for x in s["inputs"] if np.ndim(x) >= 2), default=1)
                allowed = artifact_precision_bound(precision, weight_error, size, arithmetic=arithmetic,
                                                   steps=steps).value
                ok = vs_oracle <= allowed and vs_keras <= allowed
                row.update(weight_error=weight_error, unit=unit, bound=allowed, vs_oracle_units=vs_oracle / unit,
                           weight_error_units=weight_error / unit)
            else:
                ok = vs_oracle <= oracle_bound.value * scale and vs_keras <= keras_bound.value * scale
            rows.append({**row, "verdict": "pass" if ok else "FAIL"})
    decisions = _decisions([s for s, o in zip(sets, artifact_outputs) if not isinstance(o, str)],
                           [o for o in artifact_outputs if not isinstance(o, str)], rules or [])
    worst = lambda key: max((r[key] for r in rows if key in r), default=0.0)  # noqa: E731
    from keras_impl.verify.families import failed_families_line, left_out_line
    notes = [line for line in [left_out_line(left_out or [])] if line]
    if ran_precision != "float32" and precision in ("float32", "native"):
        notes.append(f"the runtime computed in {ran_precision}, not float32 (its default here); judged against "
                     f"the float32 bounds: --precision float32 (the default) asks it for float32")
    elif precision == "bfloat16" and ran_precision != "bfloat16":
        notes.append(f"asked for bfloat16, the runtime computed in {ran_precision} (a CPU without BF16)")
    result = {"sets": rows, "worst_vs_oracle": worst("vs_oracle"), "worst_vs_keras": worst("vs_keras"),
              "worst_keras_vs_oracle": worst("keras_vs_oracle"), "ran_precision": ran_precision,
              "bounds": {"vs_oracle": oracle_bound.value, "vs_keras": keras_bound.value,
                         "kind": "abs, scaled by max(1, max |oracle output|)"},
              "notes": notes, "decisions": decisions, "precision": precision,
              "families": failed_families_line(rows),
              "verdict": "pass" if rows and all(r["verdict"] == "pass" for r in rows) else "FAIL"}
    if reduced:
        from keras_impl.parity.tolerances import ARTIFACT_PRECISION_FACTOR
        measured = [r for r in rows if "bound" in r]
        tightest = min(measured, key=lambda r: r["bound"] / max(r["vs_oracle"], 1e-300)) if measured else {}
        result["bounds"] = {"vs_oracle": worst("bound"), "vs_keras": worst("bound"),
                            "kind": f"{precision}: {ARTIFACT_PRECISION_FACTOR[precision]:g} x E_w (the weights' own "
                                    f"error" + ((", at least T/2 units" if precision == "int8-static" else
                                                 ", at least half a unit") if arithmetic else "")
                                    + ") + the float32 bound, per output; the largest shown"}
        result["units"] = {"unit": "ulp" if precision in ("float16", "bfloat16") else "int8 step",
                           "worst_vs_oracle": worst("vs_oracle_units"), "weight_error": worst("weight_error"),
                           "weight_error_units": worst("weight_error_units"),
                           "tightest_bound_units": tightest["bound"] / tightest["unit"] if measured else 0.0}
    return result


def _decisions(sets, artifact_outputs, rules) -> list[dict]:
    """Per classifier output, the artifact's decisions against the oracle's summed over the sets."""
    from keras_impl.verify.decisions import agreement
    found = []
    for j, rule in enumerate(rules):
        if rule is None:
            continue
        agree = total = 0
        closest = None
        for s, outs in zip(sets, artifact_outputs):
            got, expected = np.asarray(outs[j]), np.asarray(s["oracle"][j])
            if got.shape != expected.shape or (rule == "argmax" and expected.shape[-1] < 2):
                continue
            masks = s.get("masks") or []
            mask = masks[j] if j < len(masks) and np.size(masks[j]) else None
            one = agreement(rule, got, expected, mask)
            agree, total = agree + one["agree"], total + one["total"]
            if one["closest_call"] is not None:
                closest = one["closest_call"] if closest is None else min(closest, one["closest_call"])
            shown = one["rule"]
        if total:
            found.append({"output": j, "rule": shown, "agree": agree, "total": total, "closest_call": closest})
    return found


def set_line(row: dict, unit_name: str | None = None) -> str:
    """One set's row of the report (``bilstm export --verify`` and ``bilstm verify --artifact`` alike); in a
    reduced precision (``unit_name``: "ulp" or "int8 step"), the errors in its units and the weights' own too."""
    head = (f"  set {row['set']} {row.get('family') or ''}: inputs {', '.join(str(tuple(s)) for s in row['inputs'])}"
            f" output {row['output']}")
    if row.get("error"):
        return f"{head}: the runtime refused it: {row['error']} FAIL"
    units = ""
    if unit_name and "unit" in row:
        units = (f" = {row['vs_oracle_units']:.2f} {unit_name} of {row['unit']:.1e}; the weights alone "
                 f"{row['weight_error']:.2e} = {row['weight_error_units']:.2f} {unit_name}; bound {row['bound']:.2e}")
    return (f"{head} {tuple(row['shape'])}: vs oracle {row['vs_oracle']:.2e}{units}, vs Keras {row['vs_keras']:.2e} "
            f"(Keras vs oracle {row['keras_vs_oracle']:.2e}) {row['verdict']}"
            + (f" (expected shape {tuple(row['expected_shape'])})" if row["shape"] != row["expected_shape"] else ""))


def decision_lines(decisions: list[dict]) -> list[str]:
    """The report's lines for ``compare``'s decisions."""
    return [f"  decisions of output {d['output']} ({d['rule']}): {d['agree']}/{d['total']} agree with the oracle"
            + (f"; the oracle's closest call: margin {d['closest_call']:.1e}" if d["closest_call"] is not None else "")
            for d in decisions]
