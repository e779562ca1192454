"""``python -m keras_impl.export.worker JOB.json [--parent-pid PID]``: one Keras process, one backend
(``KERAS_BACKEND``), one job.

``bilstm export`` never imports Keras itself: every step that needs Keras runs here, on the backend
the route names, and leaves its results in files the parent reads.

The job (JSON):
    build       optional: ``{"spec": ModelSpec keyword arguments, "seed": int}`` builds that model with
                random weights and saves it at ``model``; nothing else is done, unless the job has a
                ``format`` too: then the export follows, from the saved file, in this same process
    accuracy    optional: train and export per seed instead (accuracy.train_and_export; nothing else is done)
    model       the model file (.keras / .h5), loaded with Keras's safe mode (keras_impl/verify/load.py:
                a Lambda, a custom class or a layer the oracle lacks is refused by name)
    format, method, artifact, dynamic_batch     the export (exporters.export_model)
    precision, calibration    optional: the artifact's precision (precision.py; default float32) and, for
                int8-static, an .npy of calibration inputs (default: drawn from the model's input description)
    static_timesteps    optional: the time axis fixed at that length in the export, and every input set drawn
                at it
    predictions optional: an .npz to write the input sets (one per input family) and Keras's and the oracle's
                outputs to
    inputs      optional: a .npy array (``--inputs``, checked by the parent) run as the one set instead
    result      the JSON written at the end: {"ok", "export" or "error", "sets" (what was drawn), "families"
                (each set's), "left_out" ([family, why]), "layers" (a reduced precision: each layer inside the
                artifact, per set, keras_impl/verify/artifact.artifact_layers)}

With ``--parent-pid`` (the export passes its pid, and a pipe as stdin) the worker dies with its parent
(keras_impl/lifeline.py): a killed ``bilstm export`` leaves no worker writing an artifact behind.

Exit status: 0 done; 2 the model was refused or the export failed (``result`` says why, in one line).
Every file is written atomically (keras_impl/files.py).
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np


def build_named_model(spec: dict, seed: int):
    """The Keras model a named spec (ModelSpec keyword arguments, JSON) describes, with the project's one recipe
    of random weights (reference.random_weights: non-zero, non-symmetric, biases too) drawn from ``seed``."""
    from keras_impl.models import build_model
    from reference import ModelSpec, random_weights
    spec = dict(spec)
    if isinstance(spec.get("units"), list):
        spec["units"] = tuple(spec["units"])
    model_spec = ModelSpec(**spec)
    model = build_model(model_spec)
    model.set_weights([w.astype(v.dtype) for w, v in zip(random_weights(model_spec, np.random.default_rng(seed)),
                                                           model.get_weights())])
    return model


def _build(job: dict) -> dict:
    # Whole or absent (written beside, then renamed): where the export follows in this process, the parent reads
    # the file's presence as the build's success.
    path = Path(job["model"])
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # Keras saves only to a name ending .keras
    build_named_model(job["build"]["spec"], job["build"]["seed"]).save(partial)
    partial.replace(path)
    return {"ok": True, "built": job["model"]}


def _export(job: dict) -> dict:
    import keras

    from keras_impl.files import atomic_write_bytes
    from keras_impl.verify.describe import describe_model
    from keras_impl.verify.load import load_model

    from .exporters import export_model
    from .verify import add_expected_outputs, decision_rules, input_sets, pack, rounded_outputs

    from . import precision as reduced
    from .formats import ExportError
    model, _, saved_by = load_model(Path(job["model"]))
    described = describe_model(model)  # refuses, by name, what the oracle cannot compute
    precision, fmt = job.get("precision", "float32"), job["format"]
    calibration, calibration_note = None, None
    if precision == "int8-static":
        calibration, calibration_note = reduced.calibration_sets(described, job.get("calibration"),
                                                                  job.get("static_timesteps"))
    if fmt == "litert" and precision in reduced.REDUCED and keras.backend.backend() != "tensorflow":
        raise ExportError(f"LiteRT's {precision} comes from TensorFlow's converter: export from tensorflow",
                          route=f"{job['method']} on {keras.backend.backend()}")
    if job.get("result"):  # what the parent says if this process dies of a signal (a converter's crash)
        Path(job["result"] + ".phase").write_text(
            f"converting to {fmt}" + (f" in {precision} ({reduced.TOOLCHAIN[fmt][precision]})"
                                      if fmt == "litert" and precision in reduced.REDUCED else ""), encoding="utf-8")
    info = export_model(model, fmt, job["artifact"], dynamic_batch=job["dynamic_batch"], method=job["method"],
                        converter_options=reduced.litert_options(precision, calibration) if fmt == "litert" else None,
                        static_timesteps=job.get("static_timesteps"))
    if precision in reduced.REDUCED:
        if job.get("result"):
            Path(job["result"] + ".phase").write_text(
                f"reducing to {precision} with {reduced.TOOLCHAIN[fmt].get(precision)}", encoding="utf-8")
        try:
            info["notes"] += reduced.reduce_artifact(fmt, job["artifact"], precision, calibration)
        except Exception as exc:  # the toolchain's own error, whatever its class: one line
            raise ExportError(f"{reduced.TOOLCHAIN[fmt][precision]} failed: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:300]}", route=info["route"]) from exc
        info["precision"] = {"precision": precision, "toolchain": reduced.TOOLCHAIN[fmt][precision],
                             "calibration": calibration_note}
    result = {"ok": True, "export": info, "saved_by": saved_by}
    if job.get("predictions"):
        from .exporters import STATIC_BATCH
        user = None if not job.get("inputs") else np.load(job["inputs"], allow_pickle=False)
        sets = input_sets(described, dynamic_batch=info["dynamic_batch"], seed=job.get("seed", 0),
                          static_batch=STATIC_BATCH, static_timesteps=info.get("static_timesteps"), user_inputs=user)
        add_expected_outputs(model, described, sets)
        rounded = reduced.rounded_graph(described.graph, precision) if precision in reduced.REDUCED else None
        for s in sets:
            s["rounded"] = [] if rounded is None else rounded_outputs(rounded, s["inputs"])
        buffer = io.BytesIO()
        np.savez(buffer, **pack(sets))
        atomic_write_bytes(Path(job["predictions"]), buffer.getvalue())
        result["sets"] = [s["about"] for s in sets]
        result["families"] = [s["family"] for s in sets]
        result["left_out"] = [list(pair) for pair in sets.left_out]
        result["decision_rules"] = decision_rules(described)
        if rounded is not None:
            result["layers"] = _layers_inside(fmt, job["artifact"], described.graph, sets, precision)
    return result


def _layers_inside(fmt: str, artifact: str, graph, sets: list[dict], precision: str):
    """Each layer's tensor inside the reduced-precision artifact against the oracle, its E_w and bound
    (keras_impl/verify/artifact.artifact_layers), one list of rows per input set (the parent shows the set
    furthest past its bound); None for a format whose runtime exposes no inner tensors, or for a set the runtime
    could not run; ``{"error": line}`` where it could run none."""
    from keras_impl.verify.artifact import TENSORS, artifact_layers

    from .precision import rounds_activations
    if fmt not in TENSORS:
        return None
    found, error = [], None
    for s in sets:
        try:
            found.append(artifact_layers(fmt, Path(artifact), graph, s["inputs"], 0.0, precision=precision,
                                         arithmetic=rounds_activations(fmt, precision)))
        except Exception as exc:  # the runtime's own error, whatever its class: one line, the export goes on
            found.append(None)
            error = error or f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return found if any(rows is not None for rows in found) else {"error": error}


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3) or (len(argv) == 3 and (argv[1] != "--parent-pid" or not argv[2].isdigit())):
        print("usage: python -m keras_impl.export.worker JOB.json [--parent-pid PID]", file=sys.stderr)
        return 2
    if len(argv) == 3:
        from keras_impl.lifeline import die_with_parent
        die_with_parent(int(argv[2]))
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    from keras_impl.quiet import quiet_tensorflow
    quiet_tensorflow()  # TensorFlow's C++ info lines off the parent's stderr, before Keras imports it
    import keras

    from keras_impl.backend import set_tf32
    from keras_impl.files import atomic_write_json
    from keras_impl.verify.load import VerifyRefusal

    from .formats import ExportError
    set_tf32(keras.backend.backend(), False)  # float32 parity on Ampere/Hopper GPUs needs full float32 matmuls
    try:
        if job.get("build") and not job.get("format"):
            result = _build(job)
        elif job.get("accuracy"):
            from .accuracy import train_and_export
            result = {"ok": True, "runs": train_and_export(job["accuracy"], Path(job["accuracy"]["folder"]))}
        else:
            if job.get("build"):  # built here, then loaded back from its file as any other model is
                _build(job)
            result = _export(job)
        code = 0
    except VerifyRefusal as exc:
        result, code = {"ok": False, "refused": str(exc)}, 2
    except ExportError as exc:
        result, code = {"ok": False, "error": str(exc), "route": exc.route, "upstream": exc.upstream}, 2
    result["backend"] = keras.backend.backend()
    atomic_write_json(Path(job["result"]), result)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
