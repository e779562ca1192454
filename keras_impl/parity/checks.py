"""The checks behind ``bilstm parity``: a list of sections, each returning rows of a table.

A section is a function ``(CheckOptions) -> list[Row]``; ``SECTIONS`` lists them
in the order the table shows them. To add one (gradients, trajectories, ...),
write such a function and append one entry, ``SECTIONS.append(("name", fn))``;
``row(...)`` turns a measured error into a row with its verdict.

Each row is one configuration run through the parity template
(``keras_impl/parity/harness.py``): the same random weights in the oracle and in
Keras, the worst absolute error over every named result. Keras runs compiled
(``jax.jit`` / ``tf.function``; torch eagerly), as a user's model would.
Verdicts: ``pass`` (within tolerance), ``FAIL``, and ``known`` for a mismatch
that ``keras_impl/parity/divergences.py`` predicts on this backend (a Keras
divergence, not a failure of this lab; its reason is printed under the table).

Importing this module does not import Keras: the command sets the backend first.
"""
from __future__ import annotations

from typing import Callable

from keras_impl.parity.cases import LAYER_CASES, MODEL_CASES
from keras_impl.parity.rows import CheckOptions, Row, measure, row, seeded_rng, tolerance  # noqa: F401 (re-exported)
from keras_impl.parity.training_checks import gradient_section, trajectory_section


# ---------------------------------------------------------------- sections

def layer_section(options: CheckOptions) -> list[Row]:
    """keras.layers.LSTM / Bidirectional against the oracle: every layer kind x mask, states in and out."""
    from keras_impl.parity import harness
    from keras_impl.parity.divergences import layer_divergence
    if options.quick:
        cases = [c for c in LAYER_CASES if c.return_sequences and c.return_state and c.initial_state
                 and c.layers == 1 and c.mask == "holes"]
    else:
        cases = [c for c in LAYER_CASES if c.return_sequences and c.return_state and c.initial_state
                 and (c.layers == 1 or c.mask == "holes")]
    rows, tol = [], tolerance(options)
    for case in cases:
        rows.append(measure("layer", case.id, tol, options, layer_divergence(case, options.backend, options.device),
                            lambda: harness.layer_parity(case, seeded_rng(case.id), compiled=True)))
    return rows


def model_section(options: CheckOptions) -> list[Row]:
    """keras_impl.build_model(spec) against reference.model_forward: every direction, with and without padding."""
    from keras_impl.parity import harness
    from keras_impl.parity.divergences import model_divergence
    if options.quick:
        cases = [c for c in MODEL_CASES if c.layers == 1 and c.mask == "right"]
    else:
        cases = [c for c in MODEL_CASES if c.mask in ("none", "right")]
    rows, tol = [], tolerance(options)
    for case in cases:
        rows.append(measure("model", case.id, tol, options, model_divergence(case, options.backend, options.device),
                            lambda: harness.model_parity(case, seeded_rng(case.id), compiled=True)))
    return rows


SECTIONS: list[tuple[str, Callable[[CheckOptions], list[Row]]]] = [
    ("layer", layer_section),
    ("model", model_section),
    ("gradients", gradient_section),    # loss and gradients against each backend's autodiff
    ("trajectory", trajectory_section),  # Adam trajectories against train_on_batch
]


# ---------------------------------------------------------------- running

def disable_tf32(backend: str) -> None:
    """TF32 off (pytest does it in parity_tests/conftest.py): float32 parity on Ampere/Hopper GPUs needs full float32."""
    from keras_impl.backend import set_tf32
    set_tf32(backend, False)


def run_checks(dtypes: tuple[str, ...], quick: bool, sections=None) -> list[Row]:
    import keras

    from keras_impl.parity import harness
    from keras_impl.backend import device_name
    backend, device = keras.backend.backend(), device_name()
    rows = []
    for dtype in dtypes:
        options = CheckOptions(backend=backend, device=device, dtype=dtype, quick=quick)
        with harness.floatx(dtype):
            for _, section in (SECTIONS if sections is None else sections):
                rows.extend(section(options))
    return rows


def format_table(rows: list[Row]) -> str:
    """An aligned table, one line a row, then the reasons of known divergences."""
    header = ("section", "configuration", "dtype", "worst abs error", "tolerance", "verdict")
    cells = [header] + [(r.section, r.configuration, r.dtype, f"{r.worst_abs_error:.2e}", f"{r.tolerance:.0e}", r.verdict)
                        for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    right = {3, 4}  # numbers right-aligned
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for note in sorted({r.note for r in rows if r.note and r.verdict == "known"}):
        lines.append(f"known divergence: {note}")
    for r in rows:
        if r.note and r.verdict == "FAIL":
            lines.append(f"FAIL {r.configuration} {r.dtype}: {r.note}")
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    counts = {v: sum(r.verdict == v for r in rows) for v in ("pass", "known", "FAIL")}
    worst = {}
    for r in rows:
        if r.verdict == "pass":
            worst[r.dtype] = max(worst.get(r.dtype, 0.0), r.worst_abs_error)
    worst_text = ", ".join(f"worst {d} error {e:.2e}" for d, e in sorted(worst.items()))
    status = "PARITY OK" if counts["FAIL"] == 0 else "PARITY FAILED"
    return (f"{status}: {len(rows)} checks, {counts['pass']} pass, {counts['known']} known divergences, "
            f"{counts['FAIL']} FAIL; {worst_text}")
