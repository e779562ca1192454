"""Which state and which gate of a recurrent direction diverge first: the oracle recomputes the failing step
from **Keras's own states** at the step before, so that a wrong gate shows as that gate.

Keras's states (measured): the Keras copy that runs the direction (the layer, or a Bidirectional's
``forward_layer`` / ``backward_layer``) is cloned from its config with ``return_state=True`` and its weights,
and called on its input with every step after processing step k masked (and'ed with the input's own mask; a
masked step carries the states): its final states are Keras's states after processing step k. All k in one
call, the batch repeated once a k (``keras_states``). The oracle's step k (``reference/lstm.py``, ``gru.py``, ``simple_rnn.py``) is run from Keras's states after
step k-1 (the initial states for k = 0), with the layer's weights; a masked (row, step) carries the states, and
is left out of what follows.

LSTM, with (h, c) Keras's states before the step and (h', c') after it, and the oracle's gates i, f, g, o:

    c_o = f c + i g,   h_o = o act(c_o)                      the oracle's step from Keras's (h, c)
    c' = c_o, h' != h_o         -> state h first; gate o (or the output activation): o_solved = h' / act(c')
    c' != c_o, h' = o act(c')   -> state c first, h follows from it; the fault is in the cell update
    c' != c_o, h' != o act(c')  -> h and c both: not one gate (the states themselves, or more than one part)

For the cell update, each gate is solved with the other two from the oracle (inferred, not measured):

    f_solved = (c' - i g) / c,   i_solved = (c' - f c) / g,   g_solved = (c' - f c) / i

A gate is consistent where its solved value lies in its activation's range (``recurrent_activation`` for i and
f, ``activation`` for g) on every (row, unit) whose c' differs, over the failing step and the steps after it
(each recomputed from Keras's states). Where several are, the change of each one's pre-activation,

    d a = act^-1(gate_solved) - a_oracle,   fitted per unit by least squares as  d a = x_t dW + h dR + db

over every valid (row, step) from the failing one on, is kept where the fit explains all but
``GATE_FIT_RESIDUAL`` of it (keras_impl/parity/tolerances.py): a fault in a gate's weights is exactly such a
change, a wrong gate's solved value is not (measured on the planted faults: 3e-4 at most for the faulty gate,
0.2 to 0.8 for the others). The only consistent gate is named; several are reported as "not separable from c
alone".

GRU (z the update gate, hh the candidate, r inside hh), h' Keras's state after the step:

    h_o = z h + (1 - z) hh
    z_solved = (h' - hh) / (h - hh),   hh_solved = (h' - z h) / (1 - z)   (a fault in r shows as the candidate)

with the same range test, and the linear fit for z only (r enters the candidate's pre-activation as a product).

SimpleRNN: one block, h_o = act(x W + h R + b); the state h is named, no gate.

Equal means within the layer's bound (``allowed``).
"""
from __future__ import annotations

import numpy as np

from keras_impl.parity.tolerances import (GATE_FIT_FLOOR, GATE_FIT_INSIDE, GATE_FIT_RESIDUAL, GATE_RANGE_SLACK,
                                          GATE_SOLVE_TINY)
from reference.cells import split_bias
from reference.layers.rnn import RECURRENT_KINDS, make_cell
from reference.recurrent import STEPS

# The closed range of each activation a gate may take, where it has one (a solved value outside it cannot be
# the gate's); others accept any finite value.
RANGES = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
          "hard_tanh": (-1.0, 1.0), "sparse_sigmoid": (0.0, 1.0), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}
GATE_NAMES = {"i": "input", "f": "forget", "g": "candidate", "o": "output", "z": "update", "hh": "candidate"}


def _copy(layer, keras_layer, direction: str):
    """(Keras copy, cell options, weights, go_backwards) of the direction."""
    if layer.kind in RECURRENT_KINDS:
        options = {**layer.options, "cell": RECURRENT_KINDS[layer.kind]}
        return keras_layer, options, tuple(layer.weights[:3]), bool(options.get("go_backwards", False))
    k = ("forward", "backward").index(direction)
    options = layer.options[direction]
    return (keras_layer.forward_layer if k == 0 else keras_layer.backward_layer, options,
            tuple(layer.weights[3 * k:3 * k + 3]), bool(options.get("go_backwards", direction == "backward")))


def keras_states(keras_copy, x: np.ndarray, mask, initial: list, steps, go_backwards: bool) -> dict:
    """Keras's states after each processing step in ``steps`` (-1: the initial ones), float64, by step.

    One call of a clone of ``keras_copy`` (``return_state=True``, its weights) on the batch repeated once a step:
    the copy for step k has every later step of processing order masked (the input's mask and'ed with it), and a
    masked step carries the states, so its final states are Keras's after step k. One call of one shape: JAX
    traces the loop once, not once a prefix length."""
    import keras
    config = {**keras_copy.get_config(), "return_state": True, "return_sequences": False, "stateful": False}
    clone = type(keras_copy).from_config(config)
    clone.build(x.shape)
    clone.set_weights(keras_copy.get_weights())
    dtype = keras_copy.compute_dtype
    (B, T), wanted = x.shape[:2], [k for k in steps if k >= 0]
    found = {k: [np.asarray(s, np.float64) for s in initial] for k in steps if k < 0}
    if not wanted:
        return found
    processing = np.arange(T)[::-1] if go_backwards else np.arange(T)  # the input time of each processing step
    given = np.ones((B, T), bool) if mask is None else np.asarray(mask, bool)
    masks = []
    for k in wanted:
        up_to_k = np.zeros(T, bool)
        up_to_k[processing[:k + 1]] = True
        masks.append(given & up_to_k[None, :])
    args = {"mask": keras.ops.convert_to_tensor(np.concatenate(masks)), "training": False}
    if any(np.any(s) for s in initial):
        args["initial_state"] = [keras.ops.convert_to_tensor(np.tile(s, (len(wanted), 1)).astype(dtype))
                                 for s in initial]
    out = clone(keras.ops.convert_to_tensor(np.tile(x, (len(wanted), 1, 1)).astype(dtype)), **args)
    states = [np.asarray(keras.ops.convert_to_numpy(s), np.float64) for s in out[1:]]
    found.update({k: [s[j * B:(j + 1) * B] for s in states] for j, k in enumerate(wanted)})
    return found


def _in_range(values, activation: str, defined) -> np.ndarray:
    lo, hi = RANGES.get(activation, (-np.inf, np.inf))
    return defined & np.isfinite(values) & (values >= lo - GATE_RANGE_SLACK) & (values <= hi + GATE_RANGE_SLACK)


def _solve(activations: dict, records: list) -> dict:
    """Per gate: the share of differing entries on which its solved value is in its activation's range."""
    shares = {}
    for gate, activation in activations.items():
        ok, total = 0, 0
        for value, defined, differs in ((r["solved"][gate][0], r["solved"][gate][1], r["differs"]) for r in records):
            total += int(differs.sum())
            ok += int((_in_range(value, activation, defined) & differs).sum())
        shares[gate] = ok / total if total else 0.0
    return shares


INVERSES = {"sigmoid": lambda s: np.log(s / (1 - s)), "tanh": np.arctanh, "hard_sigmoid": lambda s: 6 * (s - 0.5)}


def _fit_residuals(gate, activation, preact, records) -> list[float]:
    """Per unit that changes: the share of the change of the solved gate's pre-activation (its activation's
    inverse, less the oracle's) that no linear function of (x_t, h_{t-1}, 1) explains (a fault in that gate's
    weights is one: dW x_t + dR h_{t-1} + db). Empty where the activation has no inverse or too few samples."""
    if activation not in INVERSES:
        return []
    lo, hi = RANGES[activation]
    rows, deltas, usable = [], [], []
    for r in records:
        value = r["solved"][gate][0]
        inside = (r["solved"][gate][1] & np.isfinite(value)
                  & (value > lo + GATE_FIT_INSIDE) & (value < hi - GATE_FIT_INSIDE))
        inside &= r["valid"][:, None]
        safe = np.where(inside, value, (lo + hi) / 2)
        rows.append(np.concatenate([r["x"], r["prev"][0], np.ones((len(r["x"]), 1))], axis=1))
        deltas.append(INVERSES[activation](safe) - preact(r))
        usable.append(inside)
    A, delta, usable = np.concatenate(rows), np.concatenate(deltas), np.concatenate(usable)
    residuals = []
    for u in range(delta.shape[1]):
        keep = usable[:, u]
        y = delta[keep, u]
        if keep.sum() < A.shape[1] + 2 or np.sqrt(np.mean(y ** 2)) < GATE_FIT_FLOOR:
            continue
        w = np.linalg.lstsq(A[keep], y, rcond=None)[0]
        residuals.append(float(np.linalg.norm(A[keep] @ w - y) / np.linalg.norm(y)))
    return residuals


def _name_gates(shares: dict, what: str, fits: dict | None = None) -> dict:
    consistent = [g for g, s in shares.items() if s >= 0.999]
    if fits and len(consistent) > 1:  # the range cannot tell: keep those whose change is a weights' change
        linear = [g for g in consistent if fits.get(g) and max(fits[g]) <= GATE_FIT_RESIDUAL]
        consistent = linear or consistent
    if len(consistent) == 1:
        return {"gate": consistent[0], "gates": consistent, "verdict": "named"}
    if consistent:
        return {"gate": None, "gates": consistent, "verdict": f"{what} ({' or '.join(consistent)}: not separable from "
                                                              f"{'c' if what == 'cell update' else 'h'} alone)"}
    return {"gate": None, "gates": [], "verdict": f"{what}, no single gate reproduces Keras's state"}


def diagnose_step(layer, keras_layer, inputs: list, masks: list, direction: dict, allowed: float) -> dict | None:
    """The state and gate of ``direction`` (a ``diagnose`` direction entry, failing) that diverge first."""
    t = direction["first_step"]
    keras_copy, options, weights, go_backwards = _copy(layer, keras_layer, direction["direction"])
    if type(keras_copy).__name__ not in RECURRENT_KINDS:  # RNN(cell) or stacked cells: one cell's gates do not tell
        raise ValueError(f"a {type(keras_copy).__name__} copy: recomputed only for LSTM, GRU and SimpleRNN")
    cell = make_cell(options, weights)
    x = np.asarray(inputs[0], np.float64)
    B, T = x.shape[:2]
    kernel, R, bias = (None if w is None else np.asarray(w, np.float64) for w in weights)
    U = R.shape[0]
    initial = ([np.asarray(s, np.float64) for s in inputs[1:1 + len(cell.state_names)]]
               if layer.kind in RECURRENT_KINDS and len(inputs) > 1 else [])
    initial = initial or [np.zeros((B, U)) for _ in cell.state_names]
    mask = masks[0] if masks else None
    states = keras_states(keras_copy, x, mask, initial, range(t - 1, T), go_backwards)
    b_in, b_rec = split_bias(cell, bias)
    records = []
    for k in range(t, T):
        time = T - 1 - k if go_backwards else k
        valid = np.ones(B, bool) if mask is None else np.asarray(mask, bool)[:, time]
        prev, after = states[k - 1], states[k]
        xp = x[:, time] @ kernel + (0 if b_in is None else b_in)
        new, rec = STEPS[cell.kind].step(cell, xp, tuple(prev), R, b_rec)
        rec = {**rec, "valid": valid, "prev": prev, "after": after, "oracle": new, "x": x[:, time]}
        records.append(rec)
    first = records[0]
    v = first["valid"]
    err = {name: float(np.abs(first["after"][j] - first["oracle"][j])[v].max(initial=0.0))
           for j, name in enumerate(cell.state_names)}
    result = {"step": t, "time": T - 1 - t if go_backwards else t, "cell": cell.kind, "errors": err,
              "rows": [int(r) for r in np.nonzero(v)[0]]}
    if all(e <= allowed for e in err.values()):
        return {**result, "state": None, "finding": "agrees"}
    if cell.kind == "simple_rnn":
        return {**result, "state": "h", "finding": "one block"}
    if cell.kind == "lstm":
        return {**result, **_lstm(cell, records, allowed, err)}
    return {**result, **_gru(cell, records, allowed)}


def _differs(rec, j, allowed):
    return (np.abs(rec["after"][j] - rec["oracle"][j]) > allowed) & rec["valid"][:, None]


def _lstm(cell, records, allowed, err) -> dict:
    act, ract = cell.activation, cell.recurrent_activation
    from reference.activations import activate
    if err["c"] <= allowed:
        for r in records:
            h_k, c_k = r["after"]
            act_c = activate(act, c_k)
            defined = np.abs(act_c) > GATE_SOLVE_TINY
            r["solved"] = {"o": (np.where(defined, h_k / np.where(defined, act_c, 1.0), np.nan), defined)}
            r["differs"] = _differs(r, 0, allowed)
        shares = _solve({"o": ract}, records)
        return {"state": "h", "follows": None, "finding": "output", "gates": ["o"], "gate": "o", "shares": shares}
    first = records[0]
    h_k, c_k = first["after"]
    via_c = first["o"] * activate(act, c_k)
    h_gap = float(np.abs(h_k - via_c)[first["valid"]].max(initial=0.0))
    if h_gap > allowed:
        return {"state": "h and c", "follows": h_gap, "finding": "states", "gates": [], "gate": None}
    for r in records:
        h_prev, c_prev = r["prev"]
        c_k = r["after"][1]
        i, f, g = r["i"], r["f"], r["g"]
        solved = {}
        for gate, num, den in (("f", c_k - i * g, c_prev), ("i", c_k - f * c_prev, g), ("g", c_k - f * c_prev, i)):
            defined = np.abs(den) > GATE_SOLVE_TINY
            solved[gate] = (np.where(defined, num / np.where(defined, den, 1.0), np.nan), defined)
        r["solved"], r["differs"] = solved, _differs(r, 1, allowed)
    activations = {"i": ract, "f": ract, "g": act}
    shares = _solve(activations, records)
    U = records[0]["i"].shape[1]
    fits = {gate: _fit_residuals(gate, activations[gate], lambda r, k=k: r["a"][:, k * U:(k + 1) * U], records)
            for k, gate in enumerate(("i", "f", "g"))}
    return {"state": "c", "follows": h_gap, "finding": "cell update", "shares": shares,
            "fit": {g: max(v) if v else None for g, v in fits.items()}, **_name_gates(shares, "cell update", fits)}


def _gru(cell, records, allowed) -> dict:
    for r in records:
        (h_prev,), (h_k,) = r["prev"], r["after"]
        z, hh = r["z"], r["hh"]
        solved = {}
        for gate, num, den in (("z", h_k - hh, h_prev - hh), ("hh", h_k - z * h_prev, 1 - z)):
            defined = np.abs(den) > GATE_SOLVE_TINY
            solved[gate] = (np.where(defined, num / np.where(defined, den, 1.0), np.nan), defined)
        r["solved"], r["differs"] = solved, _differs(r, 0, allowed)
    shares = _solve({"z": cell.recurrent_activation, "hh": cell.activation}, records)
    # the candidate's change is not linear in the inputs where r is at fault: only z is fitted
    fits = {"z": _fit_residuals("z", cell.recurrent_activation, lambda r: r["a_z"], records)}
    return {"state": "h", "follows": None, "finding": "update", "shares": shares,
            "fit": {g: max(v) if v else None for g, v in fits.items()}, **_name_gates(shares, "update", fits)}


def _gate_list(gates) -> str:
    return ", ".join(f"{GATE_NAMES[g]} ({g})" for g in gates)


def format_step(s: dict, direction: str) -> list[str]:
    """The report's lines for ``diagnose_step``'s answer."""
    where = f"processing step {s['step']} (input time t={s['time']})"
    errors = ", ".join(f"{k} {v:.2e}" for k, v in s["errors"].items())
    head = f"  {direction} direction, recomputed from Keras's own states before {where}: {errors}"
    shares = s.get("shares", {})
    share = ", ".join(f"{g} {100 * v:.0f}%" for g, v in shares.items())
    fit = ", ".join(f"{g} {v:.0e}" for g, v in s.get("fit", {}).items() if v is not None)
    measured = (f" (solved from Keras's states, in the activation's range on: {share}"
                + (f"; unexplained by a change of weights: {fit}" if fit else "") + ")") if shares else ""
    finding = s["finding"]
    if finding == "agrees":
        return [head, "    state: none; from Keras's own states the oracle's step agrees: the difference is in the "
                      "loop (the states carried, the mask or the outputs written), not the cell's equations"]
    if finding == "one block":
        return [head, f"    state: h diverges first at step {s['step']}; gate: the one block (SimpleRNN: "
                      "act(x W + h R + b))"]
    if finding == "output":
        return [head, f"    state: h diverges first at step {s['step']} (c agrees); gate: output (o) or the output "
                      f"activation{measured}"]
    if finding == "states":
        return [head, f"    state: h and c both diverge at step {s['step']}; h does not follow from Keras's c "
                      f"through the oracle's o (off by {s['follows']:.2e}): not one gate (the states themselves, "
                      "or more than one part of the step)"]
    state = (f"c diverges first at step {s['step']} (h follows from it)" if s["cell"] == "lstm"
             else f"h diverges first at step {s['step']}")
    if s["gate"] is not None:
        gate = _gate_list([s["gate"]])
    else:
        gate = s["verdict"]
    return [head, f"    state: {state}; gate: {gate}{measured}"]
