"""``pytest --record-verify-errors FILE``: every layer row of every report ``verify`` builds in the test process,
appended to FILE as one JSON line each, for ``benchmarks/verify_errors.py`` to find the worst error per layer kind
and backend (docs/verify.md, "Measured errors per layer kind").

The wrapper sits on ``keras_impl.verify.api._report``, where every float report is built: ``verify()``,
``bilstm verify`` run in-process and the zoo all reach it. A reduced-precision or quantized model's report
(``precision_report``) holds other figures and is not recorded; nor is a ``bilstm verify`` run in a subprocess.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from reference.layers.outputs import layer_of

WRAPPERS = {"Bidirectional": "forward_layer", "TimeDistributed": "layer"}  # the inner layer of each wrapper


def layer_kind(keras_layer) -> str:
    """The Keras class name, a wrapper's with its inner layer's: ``Bidirectional(LSTM)``."""
    cls = type(keras_layer).__name__
    inner = getattr(keras_layer, WRAPPERS[cls], None) if cls in WRAPPERS else None
    return cls if inner is None else f"{cls}({layer_kind(inner)})"


def current_test() -> str:
    """The running test's node id (pytest's own variable, without its `` (call)`` phase)."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]


def error_records(report, described, test: str) -> list[dict]:
    """One record per layer row of ``report``: the error the bound holds (``max |Keras - oracle| / max(1,
    max |oracle|)``), the bound, the largest ``max |Keras - oracle|`` of the layer's inputs' rows
    (``input_max_abs_error``: 0 for the model's inputs), the row's verdict and the whole report's."""
    records, errors = [], {}
    inbound = {layer.name: layer.inbound for layer in described.graph.layers}
    for row in report.layers:
        name = layer_of(row["layer"])
        keras_layer = described.keras_layers.get(name)
        scale = max(1.0, row["max_abs_output"])
        errors[row["layer"]] = row["max_abs_error"]
        # Keras's layer reads Keras's inputs, the oracle's the oracle's: what differed there comes in too
        carried = [errors.get(ref, 0.0) for ref in inbound.get(name, [])]
        records.append({
            "backend": report.backend, "dtype": report.dtype, "test": test, "file": Path(report.file).name,
            "layer": row["layer"], "kind": row["class"] if keras_layer is None else layer_kind(keras_layer),
            "error": row["max_abs_error"] / scale, "bound": row["allowed"] / scale,
            "input_max_abs_error": max(carried, default=0.0),
            "max_abs_error": row["max_abs_error"], "max_abs_output": row["max_abs_output"],
            "verdict": row["verdict"], "report_verdict": report.verdict})
    return records


def recording(build_report, path):
    """``build_report`` (``api._report``) that also appends its report's records to ``path`` (JSON lines)."""
    from keras_impl.files import json_safe

    def recording_report(model, described, *args, **kwargs):
        report = build_report(model, described, *args, **kwargs)
        lines = [json.dumps(json_safe(r), allow_nan=False) + "\n" for r in error_records(report, described,
                                                                                        current_test())]
        with open(path, "a", encoding="utf-8") as out:  # appended, so that several runs add up in one file
            out.writelines(lines)
        return report
    return recording_report


def start_recording(path) -> None:
    """From now on, in this process, every report ``verify`` builds appends its records to ``path``."""
    from keras_impl.verify import api
    api._report = recording(api._report, path)
