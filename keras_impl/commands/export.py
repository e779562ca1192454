"""``bilstm export [MODEL] --format F``: a Keras recurrent model out to another runtime, checked there.

    bilstm export model.keras --format onnx --verify            # KERAS_BACKEND's route, else a reload
    bilstm export --format litert --merge-mode sum --units 4 --verify    # a named model, random weights
    bilstm export model.keras --format openvino --verify --precision float32

This process never imports Keras. It checks every argument, then runs each step in a child process:
the export in ``python -m keras_impl.export.worker`` with ``KERAS_BACKEND`` set to the route's backend
(keras_impl/export/routes.py: the source backend's exporters first, then the .keras reloaded on another
backend), then, with ``--verify``, the artifact in its own runtime in a process without Keras
(keras_impl/export/runtimes.py), compared with Keras and with the oracle (keras_impl/export/verify.py).
The artifact is written in a temporary folder beside ``--out`` and moved there only when complete.
Exit status: 0 exported (and, with --verify, within bounds); 1 outside a bound; 2 cannot export or run,
or a bad argument (one line on stderr). See docs/export.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keras_impl.backend import BACKENDS, BackendError, check_installed, configured_backend
from keras_impl.export.formats import ARTIFACT_NAME, FORMATS, RUNTIME_PACKAGE

CELLS = ("lstm", "gru", "simple_rnn")
DIRECTIONS = ("forward", "backward", "bidirectional")
MERGE_MODES = ("concat", "sum", "ave", "mul")
MAX_UNITS = 4096
MAX_TIMESTEPS = 100_000
WORKER_TIMEOUT_S = 1800   # one export (a masked torch.export took 4 minutes on 2 busy cores)
RUNTIME_TIMEOUT_S = 900   # every input set in the runtime (loading that artifact in torch: 1 minute, busy)
SPEC_OPTIONS = ("cell", "merge_mode", "direction", "units", "timesteps", "features", "mask_value", "seed")


def _int_in(name: str, low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low} and {high}, got {value}")
        return value
    return parse


def _units(text: str) -> tuple[int, ...]:
    """--units 20 or 20,8 (stacked layers)."""
    parse = _int_in("--units", 1, MAX_UNITS)
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"--units must be integers separated by commas, got {text!r}")
    return tuple(parse(p) for p in parts)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mask-value must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"--mask-value must be finite, got {text!r}")
    return value


def add_arguments(parser):
    parser.add_argument("model_file", nargs="?", metavar="MODEL",
                        help="a .keras (or Keras 2 .h5) file; leave out to export a model named by the options below")
    parser.add_argument("--format", choices=FORMATS, help="what to export to (required, except with --matrix)")
    parser.add_argument("--backend", choices=BACKENDS, help="the source backend (default: $KERAS_BACKEND)")
    parser.add_argument("--out", metavar="FOLDER", help="the folder to write (default exports/<model>-<format>)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--verify", action="store_true",
                        help="run the artifact in its runtime and compare with Keras and the oracle")
    parser.add_argument("--precision", choices=("native", "float32"), default="native",
                        help="the runtime's precision: its default (native) or float32 (default native)")
    parser.add_argument("--static-batch", action="store_true", help="export a batch of 1 instead of a dynamic batch")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    parser.add_argument("--matrix", action="store_true", help="instead of one export: every backend x format x "
                        "model, tables written to --out (and to docs/export.md and README.md in this project's source tree)")
    parser.add_argument("--resume", action="store_true", help="with --matrix: re-check and reuse finished cells")
    named = parser.add_argument_group("a model named by options (random weights), instead of MODEL")
    named.add_argument("--cell", choices=CELLS, help="recurrent cell (default lstm)")
    named.add_argument("--direction", choices=DIRECTIONS, help="default bidirectional")
    named.add_argument("--merge-mode", choices=MERGE_MODES, help="Bidirectional merge mode (default concat)")
    named.add_argument("--units", type=_units, help="units per layer, comma-separated to stack (default 20)")
    named.add_argument("--timesteps", type=_int_in("--timesteps", 1, MAX_TIMESTEPS), help="default 10")
    named.add_argument("--features", type=_int_in("--features", 1, MAX_UNITS), help="default 1")
    named.add_argument("--mask-value", type=_finite, help="put Masking(mask_value) in front")
    named.add_argument("--seed", type=_int_in("--seed", 0, 2 ** 31 - 1), help="weights' seed (default 0)")


class Refusal(ValueError):
    """A bad argument or a model that cannot be exported: one line, exit status 2."""


def _check_out(args, stem: str) -> Path:
    if args.out is not None and not args.out.strip():
        raise Refusal("--out must name a folder")
    out = Path(args.out) if args.out is not None else Path("exports") / f"{stem}-{args.format}"
    if out.exists() or out.is_symlink():
        if not args.overwrite:
            raise Refusal(f"--out {out} exists; choose another folder or pass --overwrite")
        if not out.is_dir() or out.is_symlink():
            raise Refusal(f"--out {out} exists and is not a folder; --overwrite replaces folders only")
    probe = out.resolve().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise Refusal(f"--out {out} cannot be written: no write permission in {probe}")
    return out


def check_matrix_arguments(args) -> None:
    """--matrix runs its own models, formats and backends: only --out and --resume go with it."""
    given = [name for name, value in vars(args).items() if not name.startswith("_") and name not in
             ("command", "matrix", "out", "resume", "precision") and value not in (None, False)]
    if given:
        raise Refusal(f"--matrix runs every model, format and backend: leave out "
                      f"{', '.join('MODEL' if g == 'model_file' else '--' + g.replace('_', '-') for g in given)}")
    if args.precision != "native":
        raise Refusal("--matrix runs each runtime in float32 and, where it differs, its native precision: "
                      "leave out --precision")
    if args.out is not None and not args.out.strip():
        raise Refusal("--out must name a folder")


def check_arguments(args) -> dict:
    """Every argument, before anything is imported or written: the plan, or a Refusal / BackendError."""
    if args.format is None:
        raise Refusal("--format is required (one of " + ", ".join(FORMATS) + "), or --matrix")
    if args.resume:
        raise Refusal("--resume goes with --matrix only")
    named = {k: getattr(args, k) for k in SPEC_OPTIONS if getattr(args, k) is not None}
    source = args.backend or configured_backend()
    if source not in BACKENDS:
        raise Refusal(f"unknown backend {source!r} (from KERAS_BACKEND); expected one of {', '.join(BACKENDS)}")
    check_installed(source)
    if args.model_file is not None:
        if named:
            raise Refusal(f"MODEL is a file: leave out {', '.join('--' + k.replace('_', '-') for k in named)}")
        from keras_impl.verify.load import check_model_path, read_config, scan_config
        path = check_model_path(args.model_file)
        scan_config(read_config(path))  # a Lambda, a custom class, a layer the oracle lacks: refused by name
        model, stem = {"file": str(path.resolve())}, path.stem
    else:
        from reference import ModelSpec
        units = named.get("units", (20,))
        spec = {"timesteps": named.get("timesteps", 10), "features": named.get("features", 1),
                "units": units[0] if len(units) == 1 else list(units),
                "direction": named.get("direction", "bidirectional"),
                "merge_mode": named.get("merge_mode", "concat"), "mask_value": named.get("mask_value"),
                "cell": named.get("cell", "lstm")}
        if spec["direction"] != "bidirectional" and "merge_mode" in named:
            raise Refusal(f"--merge-mode needs --direction bidirectional, got --direction {spec['direction']}")
        ModelSpec(**{**spec, "units": units if len(units) > 1 else units[0]})  # its own checks, by name
        model = {"spec": spec, "seed": named.get("seed", 0)}
        stem = "-".join([spec["cell"], spec["direction"]] + ([spec["merge_mode"]] if spec["direction"] ==
                                                              "bidirectional" else []))
    if args.verify and importlib.util.find_spec(RUNTIME_PACKAGE[args.format]) is None:
        raise Refusal(f"--verify runs {args.format} artifacts in {RUNTIME_PACKAGE[args.format]}, which is not "
                      f"installed: pip install '.[export]'")
    from keras_impl.export.routes import routes
    planned = routes(source, args.format)
    if not planned:
        raise Refusal(f"no route to {args.format} from {source}: its backends are not installed")
    return {"model": model, "source": source, "format": args.format, "out": _check_out(args, stem),
            "routes": planned, "dynamic_batch": not args.static_batch}


def describe_spec(named: dict) -> str:
    spec = named["spec"]
    units = spec["units"] if isinstance(spec["units"], list) else [spec["units"]]
    return (f"{spec['cell']} {spec['direction']}" + (f" {spec['merge_mode']}" if spec["direction"] == "bidirectional"
                                                     else "") + f", units {','.join(map(str, units))}, "
            f"T={spec['timesteps']}, D={spec['features']}"
            + (f", Masking({spec['mask_value']:g})" if spec["mask_value"] is not None else "")
            + f", random weights (seed {named['seed']})")


def progress(message: str) -> None:
    print(f"bilstm export: {message}", file=sys.stderr, flush=True)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:400] if lines else "(no output)"


def spawn_worker(job: dict, backend: str, scratch: Path, name: str) -> dict:
    """Run one worker job on ``backend``; its result dict (``ok`` False with ``error`` when it failed)."""
    import keras_impl
    job = {**job, "result": str(scratch / f"{name}.result.json")}
    job_path = scratch / f"{name}.job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "KERAS_BACKEND": backend}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = str(Path(keras_impl.__file__).resolve().parent.parent)  # the worker imports this same product
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run([sys.executable, "-m", "keras_impl.export.worker", str(job_path)], env=env,
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"the {backend} worker ran past {WORKER_TIMEOUT_S} s"}
    result_path = Path(job["result"])
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    return {"ok": False, "error": f"the {backend} worker stopped (exit {proc.returncode}): {_last_line(proc.stderr)}"}


def _clear(folder: Path) -> None:
    for entry in folder.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def export(plan: dict, args, scratch: Path, staging: Path) -> tuple[int, dict]:
    """Build (a named model), export along the first route that works, verify: ``(exit status, report)``."""
    fmt, source = plan["format"], plan["source"]
    report = {"format": fmt, "source_backend": source, "requested_dynamic_batch": plan["dynamic_batch"],
              "failed_routes": [], "verify": None}
    if "spec" in plan["model"]:
        model_file = scratch / "model.keras"
        progress(f"building {describe_spec(plan['model'])} on {source}")
        built = spawn_worker({"build": plan["model"], "model": str(model_file)}, source, scratch, "build")
        if not built.get("ok"):
            return 2, {**report, "error": f"cannot build the model: {built.get('error') or built.get('refused')}"}
        report["model"] = {"named": plan["model"]}
    else:
        model_file = Path(plan["model"]["file"])
        report["model"] = {"file": str(model_file)}
    artifact = staging / ARTIFACT_NAME[fmt]
    predictions = scratch / "predictions.npz"
    for k, route in enumerate(plan["routes"]):
        progress(f"exporting to {fmt}: {route.describe()}")
        t0 = time.perf_counter()
        result = spawn_worker({"model": str(model_file), "format": fmt, "method": route.method,
                               "artifact": str(artifact), "dynamic_batch": plan["dynamic_batch"],
                               "predictions": str(predictions) if args.verify else None},
                              route.backend, scratch, f"route{k}")
        if result.get("refused"):
            return 2, {**report, "error": result["refused"]}
        if result.get("ok"):
            info = result["export"]
            report.update(route=route.describe(), route_backend=route.backend, reloaded=route.reload,
                          dynamic_batch=info["dynamic_batch"], notes=info["notes"], saved_by=result.get("saved_by"),
                          export_seconds=round(time.perf_counter() - t0, 1))
            break
        progress(f"  failed: {result.get('error')}")
        report["failed_routes"].append({"route": route.describe(), "error": result.get("error"),
                                        "upstream": result.get("upstream")})
        _clear(staging)  # never a half artifact from a failed route
    else:
        first = report["failed_routes"][0]
        return 2, {**report, "error": f"no route to {fmt} from {source} works; first: {first['error']}"
                                      + (f" ({first['upstream']})" if first.get("upstream") else "")}
    if args.verify:
        code, report["verify"] = _verify(fmt, artifact, predictions, route.backend, args.precision, result["sets"])
        if code == 2:
            return 2, {**report, "error": report["verify"]["error"]}
        return code, report
    return 0, report


def _verify(fmt, artifact: Path, predictions: Path, backend: str, precision: str, about) -> tuple[int, dict]:
    import numpy as np

    from keras_impl.export import runtimes
    from keras_impl.export.formats import ArtifactRunError, RuntimeUnavailable
    from keras_impl.export.verify import compare, unpack
    with np.load(predictions, allow_pickle=False) as arrays:
        sets = unpack(arrays)
    shapes = "; ".join(", ".join(str(tuple(x.shape)) for x in s["inputs"]) for s in sets)
    progress(f"running {len(sets)} input sets ({shapes}) in {RUNTIME_PACKAGE[fmt]}, precision {precision}")
    try:  # one runtime process: the runtime imported and the artifact loaded once
        outputs, ran_precision = runtimes.run_sets_in_subprocess(fmt, artifact, [s["inputs"] for s in sets],
                                                                 precision=precision, timeout_s=RUNTIME_TIMEOUT_S)
    except (RuntimeUnavailable, ArtifactRunError) as exc:
        return 2, {"error": f"{RUNTIME_PACKAGE[fmt]} cannot run the artifact: {' '.join(str(exc).split())}"}
    result = compare(sets, outputs, backend=backend, ran_precision=ran_precision)
    for row in result["sets"]:
        row["drawn"] = about[row["set"]]
    return (0 if result["verdict"] == "pass" else 1), result


def _move_into_place(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out``; with --overwrite the old ``out`` goes only once the new one is complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes a private folder; the artifact is an ordinary one
    os.rename(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def print_report(report: dict, out: Path | None) -> None:
    model = report.get("model", {})
    print(f"bilstm export: {model.get('file') or describe_spec(model['named']) if model else '?'} "
          f"from {report['source_backend']} to {report['format']}")
    for failed in report["failed_routes"]:
        print(f"  route failed: {failed['route']}: {failed['error']}"
              + (f" ({failed['upstream']})" if failed.get("upstream") else ""))
    if "route" not in report:
        return
    print(f"  route: {report['route']}" + (" (the source backend has no working route)" if report["reloaded"] else ""))
    print(f"  batch: {'dynamic' if report['dynamic_batch'] else 'static'}")
    for note in report["notes"]:
        print(f"  note: {note}")
    if out is not None:
        print(f"  artifact: {out / ARTIFACT_NAME[report['format']]}")
    v = report.get("verify")
    if not v or "sets" not in v:
        return
    print(f"  runtime: {RUNTIME_PACKAGE[report['format']]}, computed in {v['ran_precision']}")
    for note in v["notes"]:
        print(f"  note: {note}")
    for r in v["sets"]:
        print(f"  set {r['set']} inputs {', '.join(str(tuple(s)) for s in r['inputs'])} output {r['output']} "
              f"{tuple(r['shape'])}: vs oracle {r['vs_oracle']:.2e}, vs Keras {r['vs_keras']:.2e} "
              f"(Keras vs oracle {r['keras_vs_oracle']:.2e}) {r['verdict']}"
              + (f" (shape {tuple(r['shape'])}, expected {tuple(r['expected_shape'])})"
                 if r["shape"] != r["expected_shape"] else ""))
    b = v["bounds"]
    print(f"worst: artifact vs oracle {v['worst_vs_oracle']:.2e} (bound {b['vs_oracle']:g}), artifact vs Keras "
          f"{v['worst_vs_keras']:.2e} (bound {b['vs_keras']:g}, {b['kind']}): {v['verdict']}")


def run(args) -> int:
    from keras_impl.verify.load import VerifyRefusal
    if args.matrix:
        try:
            check_matrix_arguments(args)
        except Refusal as exc:
            print(f"bilstm export: error: {exc}", file=sys.stderr)
            return 2
        from keras_impl.export.matrix import run_command
        return run_command(args)
    try:
        plan = check_arguments(args)
    except (ValueError, TypeError, BackendError, VerifyRefusal) as exc:  # a model refused by name included
        print(f"bilstm export: error: {exc}", file=sys.stderr)
        return 2
    out = plan["out"]
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bilstm-export-"))
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        code, report = export(plan, args, scratch, staging)
        report["exit_status"] = code
        if "route" in report:  # an artifact exists: keep it, with its report, even when a bound failed
            from keras_impl.files import atomic_write_json
            report["artifact"] = str(out / ARTIFACT_NAME[plan["format"]])
            atomic_write_json(staging / "export.json", report)
            _move_into_place(staging, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    if args.json:
        from keras_impl.files import json_safe  # an infinite error (a shape mismatch) as null
        print(json.dumps(json_safe(report), indent=1, allow_nan=False))
    else:
        print_report(report, out if "route" in report else None)
    if code == 2:
        print(f"bilstm export: {report['error']}", file=sys.stderr)
    return code


COMMANDS = [("export", "Export a Keras recurrent model (ONNX, SavedModel, LiteRT, OpenVINO, torch.export, jax.export) "
             "and check it in its runtime against Keras and the oracle.", add_arguments, run)]
