"""``export(model, fmt, ...) -> ExportReport``: one model out to one format, checked in its runtime.

    >>> from keras_impl.export import export
    >>> report = export("model.keras", "onnx", out="exports/onnx", verify=True)
    >>> print(report)                  # the text `bilstm export` prints
    >>> report.exit_status             # 0 exported (and within bounds), 1 outside a bound, 2 could not export/run
    >>> json.dumps(report.to_json())   # what `bilstm export --json -` prints

Every argument is checked first; a bad one raises ``keras_impl.options.UsageError`` (one line) before
anything is built or written. The calling process never imports Keras: each step runs in a child process,
the export in ``python -m keras_impl.export.worker`` with ``KERAS_BACKEND`` set to the route's backend
(routes.py: the source backend's exporters first, then the .keras reloaded on another backend), then, with
``verify``, the artifact in its own runtime in a process without Keras (runtimes.py), compared with Keras
and with the oracle (verify.py). Each child dies with this process (keras_impl/lifeline.py). The artifact is
written beside ``out`` and moved there only when complete (destination.py).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from keras_impl.backend import BACKENDS, BackendError, check_installed, configured_backend
from keras_impl.lifeline import run_tethered
from keras_impl.options import UsageError

from .destination import REPORT_NAME, Destination, check_out, mark_failed
from .formats import ARTIFACT_NAME, FORMATS, PRECISIONS, RUNTIME_PACKAGE

WORKER_TIMEOUT_S = 1800   # one export (a masked torch.export took 4 minutes on 2 busy cores)
RUNTIME_TIMEOUT_S = 900   # every input set in the runtime (loading that artifact in torch: 1 minute, busy)


class ExportReport(dict):
    """What an export did: a dict (JSON-serialisable with ``to_json``), printed as ``bilstm export`` prints it.

    Keys: format, source_backend, model ({"file"} or {"named": {"spec", "seed"}}), failed_routes, route,
    route_backend, reloaded, dynamic_batch, static_timesteps (the artifact's time length; None: free),
    static_time_automatic (True where no route with a free time axis worked and a static one was taken), notes,
    artifact, verify (the runtime's comparison), exit_status,
    and error (one line) when exit_status is 2.
    """

    @property
    def exit_status(self) -> int:
        return self["exit_status"]

    def to_json(self) -> dict:
        from keras_impl.files import json_safe  # an infinite error (a shape mismatch) as null: strict JSON
        return json_safe(dict(self))

    def __str__(self) -> str:
        return "\n".join(_report_lines(self))


def describe_named(named: dict) -> str:
    spec = named["spec"]
    units = spec["units"] if isinstance(spec["units"], list) else [spec["units"]]
    return (f"{spec['cell']} {spec['direction']}" + (f" {spec['merge_mode']}" if spec["direction"] == "bidirectional"
                                                     else "") + f", units {','.join(map(str, units))}, "
            f"T={spec['timesteps']}, D={spec['features']}"
            + (f", Masking({spec['mask_value']:g})" if spec["mask_value"] is not None else "")
            + f", random weights (seed {named['seed']})")


def _report_lines(report: dict):
    model = report.get("model", {})
    yield (f"bilstm export: {model.get('file') or describe_named(model['named']) if model else '?'} "
           f"from {report['source_backend']} to {report['format']}")
    for failed in report["failed_routes"]:
        yield (f"  route failed: {failed['route']}: {failed['error']}"
               + (f" ({failed['upstream']})" if failed.get("upstream") else ""))
    if "route" not in report:
        return
    yield f"  route: {report['route']}" + (" (the source backend has no working route)" if report["reloaded"] else "")
    yield f"  batch: {'dynamic' if report['dynamic_batch'] else 'static'}"
    if report.get("static_timesteps") is not None:
        yield (f"  time: static at {report['static_timesteps']}"
               + (" (chosen automatically)" if report.get("static_time_automatic") else ""))
    for note in report["notes"]:
        yield f"  note: {note}"
    if report.get("precision"):
        p = report["precision"]
        yield f"  precision: {p['precision']}, by {p['toolchain']}"
        if p.get("calibration"):
            yield f"  calibration: {p['calibration']}"
    if report.get("artifact"):
        yield f"  artifact: {report['artifact']}" + (f" ({report['artifact_bytes']} bytes)"
                                                      if "artifact_bytes" in report else "")
    v = report.get("verify")
    if not v or "sets" not in v:
        return
    yield f"  runtime: {RUNTIME_PACKAGE[report['format']]}, computed in {v['ran_precision']}"
    for note in v["notes"]:
        yield f"  note: {note}"
    from .verify import decision_lines, set_line
    unit_name = v.get("units", {}).get("unit")
    yield from (set_line(r, unit_name) for r in v["sets"])
    if v.get("families"):
        yield f"  {v['families']}"
    if isinstance(v.get("layers"), dict):
        yield f"  inside the artifact: not measured: {v['layers']['error']}"
    elif v.get("layers"):
        from keras_impl.verify.artifact import layer_lines
        row = next(r for r in v["sets"] if r["set"] == v["layers_set"])
        yield from layer_lines(v["layers"], unit_name,
                               about=f"set {row['set']} {row.get('family') or ''}, the furthest from its bound")
    yield from decision_lines(v.get("decisions", []))
    b = v["bounds"]
    if report.get("accuracy"):
        from .accuracy import accuracy_lines
        acc = report["accuracy"]
        yield from ([f"  held-out accuracy: not measured: {acc['error']}"] if "error" in acc
                    else accuracy_lines(acc, report["verify"].get("precision", "float32")))
    if "units" in v:
        u = v["units"]
        yield (f"  in {v['precision']} units: worst {u['worst_vs_oracle']:.2f} {u['unit']}; the weights alone "
               f"{u['weight_error_units']:.2f} {u['unit']} ({u['weight_error']:.2e})")
    yield (f"worst: artifact vs oracle {v['worst_vs_oracle']:.2e} (bound {b['vs_oracle']:g}), artifact vs Keras "
           f"{v['worst_vs_keras']:.2e} (bound {b['vs_keras']:g}, {b['kind']}): {v['verdict']}")


def _named_model(spec, seed: int) -> tuple[dict, str]:
    """A reference.ModelSpec as the worker's job (JSON) and a folder stem."""
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.init}
    if isinstance(fields["units"], tuple):
        fields["units"] = list(fields["units"]) if len(fields["units"]) > 1 else fields["units"][0]
    stem = "-".join([spec.cell, spec.direction] + ([spec.merge_mode] if spec.direction == "bidirectional" else []))
    return {"spec": fields, "seed": seed}, stem


def plan(model, fmt: str, *, out=None, backend: str | None = None, verify: bool = False,
         precision: str = "float32", static_batch: bool = False, overwrite: bool = False, seed: int = 0,
         route: str = "auto", calibration=None, accuracy_seeds: int | None = None,
         static_timesteps: int | None = None, inputs=None) -> dict:
    """Every argument checked, nothing imported or written: the plan ``run_plan`` carries out, or UsageError."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    from .precision import check as check_precision
    refusal = check_precision(fmt, precision)
    if refusal:
        raise UsageError(refusal)
    if calibration is not None:
        if precision != "int8-static":
            raise UsageError(f"--calibration goes with --precision int8-static, not {precision}")
        calibration = Path(calibration)
        if calibration.suffix != ".npy" or not calibration.is_file():
            raise UsageError(f"--calibration must name an .npy file of model inputs, got {str(calibration)!r}")
        calibration = str(calibration.resolve())
    source = backend or configured_backend()
    if source not in BACKENDS:
        raise UsageError(f"unknown backend {source!r} (from KERAS_BACKEND); expected one of {', '.join(BACKENDS)}")
    try:
        check_installed(source)
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    from reference import ModelSpec
    import keras_impl.export.time_axis as time_axis
    if isinstance(model, ModelSpec):
        named, stem = _named_model(model, seed)
        model_file = None
        declared = [model.timesteps]
    else:
        from keras_impl.verify.load import (VerifyRefusal, check_model_path, read_config, refuse_reduced_precision,
                                            scan_config)
        try:
            model_file = check_model_path(str(model))
            config = read_config(model_file)
            scan_config(config)  # a Lambda, a custom class, a layer the oracle lacks: by name
            refuse_reduced_precision(config, "export takes a float32 model (bilstm verify checks this one in its "
                                             "own precision)")
        except (VerifyRefusal, ValueError) as exc:  # a refused layer, a path that is no model file
            raise UsageError(str(exc)) from None
        named, stem = {"file": str(model_file.resolve())}, model_file.stem
        declared = time_axis.declared_time_lengths(config)
    try:
        static_timesteps, fallback_timesteps = time_axis.choose(static_timesteps, declared)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if verify and importlib.util.find_spec(RUNTIME_PACKAGE[fmt]) is None:
        raise UsageError(f"--verify runs {fmt} artifacts in {RUNTIME_PACKAGE[fmt]}, which is not "
                         f"installed: pip install '.[export]'")
    from .routes import NATIVE_FORMATS, ROUTE_CHOICES, planned_routes
    if route not in ROUTE_CHOICES:
        raise UsageError(f"unknown route {route!r}; expected one of {', '.join(ROUTE_CHOICES)}")
    if route == "native" and fmt not in NATIVE_FORMATS:
        raise UsageError(f"--route native writes {' and '.join(NATIVE_FORMATS)}, not {fmt}")
    if inputs is not None:
        if not verify:
            raise UsageError("--inputs is what --verify runs the artifact on: give --verify too")
        from keras_impl.verify.inputs import load_inputs_file
        if not str(inputs).endswith(".npy") or not Path(inputs).is_file():
            raise UsageError(f"--inputs must be an existing .npy file, got {str(inputs)!r}")
        load_inputs_file(inputs)  # readable, finite, (batch, time, ...): checked before any work
        inputs = str(Path(inputs).resolve())
    planned = planned_routes(source, fmt, route, static_timesteps=static_timesteps,
                             fallback_timesteps=fallback_timesteps)
    if route == "native":
        for package in ("onnx",) + (("openvino",) if fmt == "openvino" else ()):
            if importlib.util.find_spec(package) is None:
                raise UsageError(f"--route native needs {package}, which is not installed: pip install '.[export]'")
    if not planned:
        raise UsageError(f"no route to {fmt} from {source}: its backends are not installed")
    accuracy_seeds = _accuracy_seeds(model, accuracy_seeds, verify, precision)
    out = check_out(Path("exports") / f"{stem}-{fmt}" if out is None else out, overwrite=overwrite,
                    model_file=model_file)
    return {"model": named, "source": source, "format": fmt, "out": out, "overwrite": overwrite,
            "routes": planned, "dynamic_batch": not static_batch, "verify": verify, "precision": precision,
            "calibration": calibration, "accuracy_seeds": accuracy_seeds, "inputs": inputs}


DEFAULT_ACCURACY_SEEDS = 3  # seeds trained for held-out accuracy by default (accuracy.py: ~1.5 min a seed, busy)


def _accuracy_seeds(model, seeds, verify: bool, precision: str) -> int:
    """How many seeds to train for the held-out accuracy: by default DEFAULT_ACCURACY_SEEDS for a named model of
    the tutorial's problem exported in a reduced precision with --verify, else none; UsageError where asked for
    and impossible."""
    from reference import ModelSpec

    from .accuracy import applies
    from .precision import REDUCED
    possible = isinstance(model, ModelSpec) and applies(model)
    if seeds is None:
        return DEFAULT_ACCURACY_SEEDS if possible and verify and precision in REDUCED else 0
    if seeds and not (possible and verify):
        raise UsageError("--accuracy-seeds trains a model named by options on the tutorial's problem (T=10, one "
                         "feature, no Masking) and needs --verify")
    return seeds


def export(model, fmt: str, *, out=None, backend: str | None = None, verify: bool = False,
           precision: str = "float32", static_batch: bool = False, overwrite: bool = False, seed: int = 0,
           route: str = "auto", calibration=None, accuracy_seeds: int | None = None,
           static_timesteps: int | None = None, inputs=None,
           progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export ``model`` (a .keras / Keras 2 .h5 path, or a ``reference.ModelSpec`` built with random weights
    drawn from ``seed``) to ``fmt`` in the folder ``out`` (default exports/<model>-<format>).

    backend: the source backend (default $KERAS_BACKEND); verify: run the artifact in its runtime and compare
    with Keras and the oracle; precision: "float32" (every runtime asked to
    compute in float32), "native" (the runtime's own default: OpenVINO's bfloat16 on a CPU with BF16), or a
    reduced precision the format's toolchain makes (precision.py: "float16", "bfloat16", "int8-dynamic",
    "int8-static", the last calibrated on ``calibration``, an .npy of inputs, else on inputs drawn for it);
    accuracy_seeds: seeds trained for the held-out accuracy (accuracy.py; default 3 where it applies);
    static_batch: a batch of 1;
    overwrite: replace ``out`` if an earlier export made it; route: "auto" (every route in order, the native
    ONNX writer last for onnx and openvino), "upstream" (the converters only) or "native" (the writer only);
    static_timesteps: every upstream route exports the time axis fixed at that length (without it, a model with a
    free time axis falls back to a static one, time_axis.py, where no free-time route works, and the report says
    so); inputs: a .npy file the artifact is run on instead of the input families (with ``verify``);
    progress: called with one line per step. An artifact that fails its verification is kept under
    ``formats.FAILED_ARTIFACT_NAME`` (model.FAILED.onnx), never under the good artifact's name.
    Raises UsageError before any work for a bad argument; otherwise returns the report, exit status included.
    """
    return run_plan(plan(model, fmt, out=out, backend=backend, verify=verify, precision=precision,
                         static_batch=static_batch, overwrite=overwrite, seed=seed, route=route,
                         calibration=calibration, accuracy_seeds=accuracy_seeds, static_timesteps=static_timesteps,
                         inputs=inputs),
                    progress=progress)


def run_plan(plan: dict, *, progress: Callable[[str], None] | None = None) -> ExportReport:
    say = progress or (lambda message: None)
    out = plan["out"]
    with Destination(out, overwrite=plan["overwrite"]) as where:
        code, report = _export(plan, where.scratch, where.staging, say)
        report = ExportReport(report, exit_status=code)
        if "route" in report:  # an artifact exists: keep it, with its report, even when a bound failed
            from keras_impl.files import atomic_write_json
            name = ARTIFACT_NAME[plan["format"]]
            if plan["verify"] and code != 0:  # failed its verification: under a name that says so
                name = mark_failed(where.staging, plan["format"])
                report["notes"] = report["notes"] + [f"the artifact failed its verification: kept as {name}, "
                                                     f"not {ARTIFACT_NAME[plan['format']]}"]
            report["artifact"] = str(out / name)
            report["artifact_bytes"] = artifact_bytes(where.staging, name)
            atomic_write_json(where.staging / REPORT_NAME, report.to_json())
            where.move_into_place()
    return report


def artifact_bytes(folder: Path, name: str) -> int:
    """The artifact's size on disk: a file, a folder's files (SavedModel), or OpenVINO's .xml with its .bin."""
    from .formats import COMPANION
    path = folder / name
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    companion = folder / COMPANION[name] if name in COMPANION else None
    return path.stat().st_size + (companion.stat().st_size if companion and companion.is_file() else 0)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:400] if lines else "(no output)"


def spawn_worker(job: dict, backend: str, scratch: Path, name: str) -> dict:
    """Run one worker job on ``backend``: its result dict (``ok`` False with ``error`` when it failed).

    The worker dies with this process (``--parent-pid``, its stdin a pipe only this process holds).
    """
    import keras_impl
    job = {**job, "result": str(scratch / f"{name}.result.json")}
    job_path = scratch / f"{name}.job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "KERAS_BACKEND": backend}
    root = str(Path(keras_impl.__file__).resolve().parent.parent)  # the worker imports this same product
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "keras_impl.export.worker", str(job_path), "--parent-pid", str(os.getpid())]
    try:
        code, _, stderr = run_tethered(command, env=env, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"the {backend} worker ran past {WORKER_TIMEOUT_S} s"}
    result_path = Path(job["result"])
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    phase = Path(job["result"] + ".phase")
    if code is not None and code < 0:  # killed by a signal: a native crash says nothing on stderr
        import signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        while_ = f" while {phase.read_text(encoding='utf-8')}" if phase.is_file() else ""
        return {"ok": False, "error": f"the {backend} worker crashed ({name}){while_}"}
    return {"ok": False, "error": f"the {backend} worker stopped (exit {code}): {_last_line(stderr)}"}


def _clear(folder: Path, keep: Path | None = None) -> None:
    import shutil
    for entry in folder.iterdir():
        if entry != keep:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _export(plan: dict, scratch: Path, staging: Path, say) -> tuple[int, dict]:
    """Build (a named model), export along the first route that works, verify: ``(exit status, report)``."""
    fmt, source = plan["format"], plan["source"]
    report = {"format": fmt, "source_backend": source, "requested_dynamic_batch": plan["dynamic_batch"],
              "failed_routes": [], "verify": None}
    build_in_first_route = None  # a named model the first route's worker builds before it exports
    if "spec" in plan["model"]:
        model_file = scratch / "model.keras"
        say(f"building {describe_named(plan['model'])} on {source}")
        if plan["routes"] and plan["routes"][0].backend == source:  # one Keras start on that backend, not two
            build_in_first_route = plan["model"]
        else:
            built = spawn_worker({"build": plan["model"], "model": str(model_file)}, source, scratch, "build")
            if not built.get("ok"):
                return 2, {**report, "error": f"cannot build the model: {built.get('error') or built.get('refused')}"}
        report["model"] = {"named": plan["model"]}
    else:
        model_file = Path(plan["model"]["file"])
        report["model"] = {"file": str(model_file)}
    artifact = staging / ARTIFACT_NAME[fmt]
    predictions = scratch / "predictions.npz"
    last = len(plan["routes"]) - 1
    # The first artifact that ran and verified outside its bounds, kept aside while later routes are tried: if
    # none of them works, it is the answer (exit 1, kept as the FAILED artifact with its report), not "no route".
    kept, aside = None, scratch / "first-failed-artifact"
    for k, route in enumerate(plan["routes"]):
        say(f"exporting to {fmt}: {route.describe()}")
        t0 = time.perf_counter()
        result = spawn_worker({"model": str(model_file), "format": fmt, "method": route.method,
                               "artifact": str(artifact), "dynamic_batch": plan["dynamic_batch"],
                               "precision": plan.get("precision", "float32"), "calibration": plan.get("calibration"),
                               "static_timesteps": route.static_timesteps,
                               "predictions": str(predictions) if plan["verify"] else None,
                               "inputs": plan.get("inputs"),
                               **({"build": build_in_first_route} if k == 0 and build_in_first_route else {})},
                              route.backend, scratch, f"route{k}")
        if k == 0 and build_in_first_route and not model_file.is_file():  # the build itself failed
            return 2, {**report, "error": f"cannot build the model: {result.get('error') or result.get('refused')}"}
        if result.get("refused"):
            return 2, {**report, "error": result["refused"]}
        if not result.get("ok"):
            say(f"  failed: {result.get('error')}")
            report["failed_routes"].append({"route": route.describe(), "error": result.get("error"),
                                            "upstream": result.get("upstream")})
            _clear(staging, keep=aside)  # never a half artifact from a failed route
            continue
        info = result["export"]
        if info.get("precision"):
            report["precision"] = info["precision"]
        taken = dict(route=route.describe(), route_backend=route.backend, reloaded=route.reload,
                     dynamic_batch=info["dynamic_batch"], static_timesteps=info.get("static_timesteps"),
                     static_time_automatic=route.automatic, notes=list(info["notes"]),
                     saved_by=result.get("saved_by"), export_seconds=round(time.perf_counter() - t0, 1))
        if route.method == "native" and report["failed_routes"]:
            taken["notes"].append("taken because every upstream route failed to export or verify (above)")
        if route.automatic:
            taken["notes"].insert(0, f"static time axis of {route.static_timesteps} chosen automatically: no route "
                                     f"with a free time axis worked (above); --static-timesteps N sets the length")
        if not plan["verify"]:
            return 0, {**report, **taken}
        code, verified = _verify(fmt, artifact, predictions, route.backend, plan["precision"], result, say)
        # A runtime that computed in another precision than asked (OpenVINO's bfloat16 default) fails every
        # route alike.
        from .precision import runtime_precision
        expected = "float32" if plan["precision"] == "native" else runtime_precision(plan["precision"])
        if code == 0 or k == last or verified.get("ran_precision", "float32") != expected:
            report.update(taken, verify=verified)
            if code in (0, 1) and plan.get("accuracy_seeds"):
                report["accuracy"] = _accuracy(plan, route, info["dynamic_batch"], scratch, say)
            return code, ({**report, "error": verified["error"]} if code == 2 else report)
        # Outside its bounds, or the runtime could not run it: the next route is tried, this one reported.
        why = verified.get("error") or (f"verification failed: artifact vs oracle {verified['worst_vs_oracle']:.2e}, "
                                        f"vs Keras {verified['worst_vs_keras']:.2e} (bounds "
                                        f"{verified['bounds']['vs_oracle']:g}, {verified['bounds']['vs_keras']:g})"
                                        + _first_layer_outside(verified))
        say(f"  {why}")
        failed = {"route": route.describe(), "error": why, "upstream": None, "verify": verified}
        report["failed_routes"].append(failed)
        if code == 1 and kept is None:
            aside.mkdir()
            for entry in [e for e in staging.iterdir() if e != aside]:  # staging may be scratch itself
                entry.rename(aside / entry.name)
            kept = (taken, verified, failed)
        _clear(staging, keep=aside)
    if kept is not None:
        taken, verified, failed = kept
        _clear(staging, keep=aside)
        for entry in list(aside.iterdir()):
            entry.rename(staging / entry.name)
        aside.rmdir()
        report["failed_routes"].remove(failed)
        report.update(taken, verify=verified)
        return 1, report
    first = report["failed_routes"][0]
    return 2, {**report, "error": f"no route to {fmt} from {source} works; first: {first['error']}"
                                  + (f" ({first['upstream']})" if first.get("upstream") else "")}


def _accuracy(plan: dict, route, dynamic_batch: bool, scratch: Path, say) -> dict:
    """Held-out accuracy of the exported model against the float32 one, over seeds (accuracy.py)."""
    from .accuracy import compare_heldout
    from .formats import ArtifactRunError, RuntimeUnavailable
    from .precision import runtime_precision
    seeds = list(range(1, plan["accuracy_seeds"] + 1))
    say(f"held-out accuracy: training {len(seeds)} seeds on the tutorial's problem, exporting each in "
        f"{plan['precision']}")
    job = {"spec": plan["model"]["spec"], "seeds": seeds, "format": plan["format"], "method": route.method,
           "dynamic_batch": dynamic_batch, "precision": plan["precision"], "folder": str(scratch / "accuracy")}
    result = spawn_worker({"accuracy": job}, route.backend, scratch, "accuracy")
    if not result.get("ok"):
        return {"error": result.get("error") or result.get("refused")}
    try:
        return compare_heldout(plan["format"], result["runs"], runtime_precision(plan["precision"]),
                               RUNTIME_TIMEOUT_S)
    except (RuntimeUnavailable, ArtifactRunError) as exc:
        return {"error": " ".join(str(exc).split())}


def _first_layer_outside(verified: dict) -> str:
    """``; first layer outside its bound inside the artifact: NAME`` where the layers inside it say so, else ""."""
    layers = verified.get("layers")
    first = next((r["layer"] for r in layers if r["verdict"] == "FAIL"), None) if isinstance(layers, list) else None
    return f"; first layer outside its bound inside the artifact: {first}" if first else ""


def _pick_layers(result: dict, layers) -> None:
    """The layers inside a reduced-precision artifact (the worker's, per set) shown for the set furthest past (or
    closest to) its bound: ``layers`` (its rows) and ``layers_set``; all of them kept in ``layers_by_set``."""
    if isinstance(layers, dict):  # the runtime gave no inner tensors: its line
        result["layers"] = layers
        return
    ran = [r for r in result["sets"] if r.get("bound") and layers and r["set"] < len(layers) and layers[r["set"]]]
    if not ran:
        return
    worst = max(ran, key=lambda r: r["vs_oracle"] / r["bound"])
    result.update(layers=layers[worst["set"]], layers_set=worst["set"], layers_by_set=layers)


def _verify(fmt, artifact: Path, predictions: Path, backend: str, precision: str, drawn: dict,
            say) -> tuple[int, dict]:
    """The artifact on the worker's input sets (``drawn``: its result: what each set is and its family)."""
    import numpy as np

    from .runtimes import run_sets_in_subprocess
    from .formats import ArtifactRunError, RuntimeUnavailable
    from .verify import compare, unpack
    from .precision import runtime_precision
    with np.load(predictions, allow_pickle=False) as arrays:
        sets = unpack(arrays)
    shapes = "; ".join(", ".join(str(tuple(x.shape)) for x in s["inputs"]) for s in sets)
    asked = runtime_precision(precision)
    say(f"running {len(sets)} input sets ({shapes}) in {RUNTIME_PACKAGE[fmt]}, precision {asked}")
    try:  # one runtime process: the runtime imported and the artifact loaded once
        outputs, ran_precision = run_sets_in_subprocess(fmt, artifact, [s["inputs"] for s in sets],
                                                        precision=asked, timeout_s=RUNTIME_TIMEOUT_S)
    except (RuntimeUnavailable, ArtifactRunError) as exc:
        return 2, {"error": f"{RUNTIME_PACKAGE[fmt]} cannot run the artifact: {' '.join(str(exc).split())}"}
    for s, family in zip(sets, drawn.get("families") or []):
        s["family"] = family
    from .precision import rounds_activations
    result = compare(sets, outputs, backend=backend, ran_precision=ran_precision, rules=drawn.get("decision_rules"),
                     left_out=drawn.get("left_out"), precision=precision,
                     arithmetic=rounds_activations(fmt, precision))
    for row in result["sets"]:
        row["drawn"] = drawn["sets"][row["set"]]
    _pick_layers(result, drawn.get("layers"))
    return (0 if result["verdict"] == "pass" else 1), result
