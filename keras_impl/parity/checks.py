"""The checks behind ``bilstm parity``: a list of sections, each returning rows of a table.

A section is a function ``(CheckOptions) -> list[Row]``; ``SECTIONS`` lists them
in the order the table shows them. To add one, write such a function and append
one entry, ``SECTIONS.append(("name", fn))``; ``rows.measure(...)`` turns a
comparison into a row with its verdict.

Each row is one configuration run through the parity template
(``keras_impl/parity/harness.py``): the same random weights in the oracle and in
Keras, the worst error over every named result against the bound that
``tolerances.bound`` gives for the section, dtype and backend. Keras runs
compiled (``jax.jit`` / ``tf.function``; torch eagerly), as a user's model would.
Verdicts: ``pass`` (within the bound) or ``FAIL``; nothing is excused.

Rows per dtype: 41 layer + 24 model + 15 gradient + 1 trajectory = 81, and
7 + 6 + 2 + 1 = 16 with ``--quick`` (a test counts them). That is for the LSTM, the
default ``cell``; ``--cell gru`` runs the same layer and model configurations with
``keras.layers.GRU`` (81 rows: 15 gradient cases, ``training_checks.CELL_GRADIENT_CASES``),
``--cell simple_rnn`` with ``SimpleRNN`` (80: 14 gradient cases), ``--cell all`` the three. Configurations that a
GPU path of Keras is predicted to answer differently (``divergences.py``, 2)
are not compared on that device; the table lists them with the reason, and the
pytest suite holds each as a strict xfail.

Importing this module does not import Keras: the command sets the backend first.
"""
from __future__ import annotations

from typing import Callable

from keras_impl.parity.cases import LAYER_CASES, MODEL_CASES, layer_cases, model_cases
from keras_impl.parity.divergences import (LEADING_MASK_SEMANTICS, initial_output, jax_float64_scan_crash,
                                           layer_divergence, model_divergence)
from keras_impl.parity.rows import UPSTREAM_CRASH, VERDICTS, CheckOptions, Row, measure, seeded_rng
from keras_impl.parity.tolerances import bound
from keras_impl.parity.training_checks import gradient_section, trajectory_section
from reference import CELLS


# ---------------------------------------------------------------- sections

def cells_of(choice: str) -> tuple[str, ...]:
    """The cells ``bilstm parity --cell CHOICE`` checks: one, or the three for "all"."""
    return CELLS if choice == "all" else (choice,)


def layer_configurations(quick: bool, cell: str = "lstm") -> list:
    """The layer cases the table runs: every layer kind x mask with sequences, states and initial states."""
    cases = LAYER_CASES if cell == "lstm" else layer_cases(cell)
    if quick:
        return [c for c in cases if c.return_sequences and c.return_state and c.initial_state
                and c.layers == 1 and c.mask == "holes"]
    return [c for c in cases if c.return_sequences and c.return_state and c.initial_state
            and (c.layers == 1 or c.mask == "holes")]


def model_configurations(quick: bool, cell: str = "lstm") -> list:
    """The model cases the table runs: every direction, with and without padding (one layer with --quick)."""
    cases = MODEL_CASES if cell == "lstm" else model_cases(cell)
    if quick:
        return [c for c in cases if c.layers == 1 and c.mask == "right"]
    return [c for c in cases if c.mask in ("none", "right")]


def not_compared(options: CheckOptions) -> list[tuple[str, str]]:
    """``(configuration, reason)`` of each case left out on this device: a predicted Keras GPU divergence."""
    out = [(c.id, layer_divergence(c, options.backend, options.device))
           for c in layer_configurations(options.quick, options.cell)]
    out += [(c.id, model_divergence(c, options.backend, options.device))
            for c in model_configurations(options.quick, options.cell)]
    return [(configuration, reason) for configuration, reason in out if reason]


def crash_reason(options: CheckOptions, masked: bool) -> str | None:
    """Why Keras is known to crash on this row (every section runs Keras under a trace), else None."""
    return jax_float64_scan_crash(options.cell, masked=masked, backend=options.backend, dtype=options.dtype,
                                  traced=True)


def layer_section(options: CheckOptions) -> list[Row]:
    """keras.layers.LSTM / Bidirectional against the oracle: every layer kind x mask, states in and out."""
    from keras_impl.parity import harness
    limit = bound("output", options.dtype, options.backend)
    return [measure("layer", case.id, limit, options,
                    lambda case=case: harness.layer_parity(case, seeded_rng(case.id), compiled=True),
                    predicted_crash=crash_reason(options, masked=case.mask != "none"))
            for case in layer_configurations(options.quick, options.cell)
            if not layer_divergence(case, options.backend, options.device)]


def model_section(options: CheckOptions) -> list[Row]:
    """keras_impl.build_model(spec) against reference.model_forward: every direction, with and without padding."""
    from keras_impl.parity import harness
    limit = bound("output", options.dtype, options.backend)
    return [measure("model", case.id, limit, options,
                    lambda case=case: harness.model_parity(case, seeded_rng(case.id), compiled=True),
                    predicted_crash=crash_reason(options, masked=case.mask != "none"))
            for case in model_configurations(options.quick, options.cell)
            if not model_divergence(case, options.backend, options.device)]


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


def run_checks(dtypes: tuple[str, ...], quick: bool, sections=None, cells: tuple[str, ...] = ("lstm",)) -> list[Row]:
    import keras

    from keras_impl.parity import harness
    from keras_impl.backend import device_name
    backend, device = keras.backend.backend(), device_name()
    rows = []
    for dtype in dtypes:
        for cell in cells:
            options = CheckOptions(backend=backend, device=device, dtype=dtype, quick=quick, cell=cell)
            with harness.floatx(dtype):
                for _, section in (SECTIONS if sections is None else sections):
                    rows.extend(section(options))
    return rows


def notes(rows: list[Row], backend: str, device: str, quick: bool, cells: tuple[str, ...] = ("lstm",)) -> list[str]:
    """The lines under the table: the semantic difference between backends, the causes of looser
    bounds, what was not compared on this device, and why each FAIL failed."""
    lines = []
    if any(r.section == "layer" for r in rows):
        lines.append(f"semantic difference between backends: {LEADING_MASK_SEMANTICS}; "
                     f"this backend ({backend}): initial_output={initial_output(backend)!r}")
    for cause in sorted({r.bound.cause for r in rows if r.bound.cause}):
        lines.append(f"looser float64 bounds on {backend}: {cause}")
    for dtype, cell in sorted({(r.dtype, c) for r in rows for c in cells}):
        for configuration, reason in not_compared(CheckOptions(backend, device, dtype, quick, cell)):
            lines.append(f"not compared on {device} ({dtype}): {configuration}: predicted divergence, a strict xfail "
                         f"in parity_tests: {reason}")
    lines += [f"FAIL {r.configuration} {r.dtype}: {r.note}" for r in rows if r.note and r.verdict == "FAIL"]
    crashed = [r for r in rows if r.verdict == UPSTREAM_CRASH]
    if crashed:
        lines.append(f"upstream crash ({len(crashed)} rows, not compared: Keras does not run them): {crashed[0].note}")
    lines += [f"{r.configuration} {r.dtype}: {r.note}" for r in rows if r.note and r.verdict == "pass"]
    return lines


def format_table(rows: list[Row], note_lines=()) -> str:
    """An aligned table, one line a row, then ``note_lines``."""
    header = ("section", "configuration", "dtype", "worst error", "bound", "verdict")
    cells = [header] + [(r.section, r.configuration, r.dtype, f"{r.worst_error:.2e}", f"{r.bound.value:.0e} {r.bound.kind}",
                         r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    right = {3, 4}  # numbers right-aligned
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + list(note_lines))


def summary(rows: list[Row]) -> str:
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    worst = {}
    for r in rows:
        if r.verdict == UPSTREAM_CRASH:  # not compared: no error to report
            continue
        key = (r.dtype, r.bound.kind)
        worst[key] = max(worst.get(key, 0.0), r.worst_error) if r.worst_error == r.worst_error else float("nan")
    worst_text = ", ".join(f"worst {d} {k} error {e:.2e}" for (d, k), e in sorted(worst.items()))
    status = "PARITY OK" if counts["FAIL"] == 0 else "PARITY FAILED"
    crashed = f", {counts[UPSTREAM_CRASH]} {UPSTREAM_CRASH} (a known Keras bug, see above)" if counts[UPSTREAM_CRASH] else ""
    return f"{status}: {len(rows)} checks, {counts['pass']} pass, {counts['FAIL']} FAIL{crashed}; {worst_text}"
