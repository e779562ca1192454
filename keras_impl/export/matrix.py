"""`bilstm export --matrix`: every source backend x format x model (an entry of the matrix), exported along
the route `bilstm export` would take, run in the format's real runtime, compared with the oracle and with Keras.

For each model (MODELS: small, random non-zero weights and biases, a different size for every dimension; and
matrix_models.BUILDERS, the tagger and a masked BiGRU classifier with free batch and time axes):
  1. one .keras file, built once (a .keras is backend-neutral: docs/parity.md);
  2. on each Keras backend, one process (this module as a child) exports that file to every format through
     each method the backend has (routes.ON_BACKEND, and the native ONNX writer for onnx and openvino), with the
     worker's job (keras_impl/export/worker.py),
     writing Keras's and the oracle's outputs for the input sets beside each artifact;
  3. each artifact runs in its runtime in a process without Keras (runtimes.run_sets_in_subprocess), float32
     and, where the runtime chooses its own precision (OpenVINO), also its native precision;
  4. each entry (source backend, format, model) takes the first of routes.planned_routes(source, format) whose export
     and run both worked, as `bilstm export` does: a reload onto another backend is that backend's export
     of the same .keras file. Its JSON (route, worst errors, precision, the failures of the routes before it,
     each with its one-line cause and upstream link) is written atomically as soon as the model's runs end.
`resume=True` reuses an export or run whose JSON is complete and was made by the same package versions;
anything else is redone. The tables (export.md, routes.md) are written into `out` and nowhere else: a
user's run writes only its results folder. Rendering this project's own docs/export.md and README.md sections
from a results folder is a developer's step, `make docs-export-matrix` (`python -m keras_impl.export.matrix
render --from OUT`). (An entry was once called a cell; the cell is the recurrent one.)
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np

from keras_impl.backend import BACKENDS
from keras_impl.export.formats import ARTIFACT_NAME, FORMATS, RUNTIME_PACKAGE, ArtifactRunError, RuntimeUnavailable
from keras_impl.export.matrix_models import BUILDERS
from keras_impl.export.time_axis import DEFAULT_STATIC_TIMESTEPS

BASE_SPEC = {"timesteps": 6, "features": 3, "units": 5}
# model name -> ModelSpec options over BASE_SPEC (bidirectional LSTM, concat, unless said).
MODELS = {
    "sum": {"merge_mode": "sum"},
    "mul": {"merge_mode": "mul"},
    "concat": {"merge_mode": "concat"},
    "ave": {"merge_mode": "ave"},
    "go_backwards": {"direction": "backward"},
    "Masking": {"mask_value": 0.0},
    "stacked": {"units": [5, 4]},
    "GRU": {"cell": "gru"},
    "SimpleRNN": {"cell": "simple_rnn"},
}
MODEL_NAMES = tuple(MODELS) + tuple(BUILDERS)  # named by a ModelSpec, then built in Keras (matrix_models.py)
WEIGHT_SEED = 12
INPUT_SEED = 0
EXPORT_TIMEOUT_S = 600     # one export in the child; past it, the export is a failure
BACKEND_TIMEOUT_S = 3600   # one child: every export of one model on one backend
RUN_TIMEOUT_S = 900        # one artifact in its runtime, every input set (torch.export.load of the stacked
                           # model alone took 178 s on 2 busy cores)
RUN_PARALLEL = 3           # runtime processes at once (each mostly waits on its runtime's import)
DEFAULT_OUT = Path("results/export-matrix")
DOC = Path("docs/export.md")
README = Path("README.md")
MATRIX_MARKERS = ("<!-- export-matrix:begin (make docs-export-matrix writes this section) -->",
                  "<!-- export-matrix:end -->")
ROUTES_MARKERS = ("<!-- export-routes:begin (make docs-export-matrix writes this section) -->",
                  "<!-- export-routes:end -->")
VERSIONED = ("keras", "tensorflow", "tensorflow-cpu", "jax", "torch", "onnxruntime", "onnx", "tf2onnx", "openvino",
             "ai-edge-litert", "numpy")


def versions() -> dict:
    """The installed versions a result depends on; a resumed run reuses only what the same versions made."""
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def check_selection(backends, formats, models) -> tuple[tuple, tuple, tuple]:
    """The selection as tuples in the matrix's order; ValueError naming the argument on an unknown name."""
    chosen = []
    for name, given, known in (("backends", backends, BACKENDS), ("formats", formats, FORMATS),
                               ("models", models, MODEL_NAMES)):
        given = known if given is None else tuple(given)
        unknown = [g for g in given if g not in known]
        if unknown or not given:
            raise ValueError(f"{name} must be a non-empty selection of {', '.join(known)}, got {list(given)!r}")
        chosen.append(tuple(k for k in known if k in given))
    return tuple(chosen)


def progress(message: str) -> None:
    print(f"bilstm export --matrix: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the files: one folder per model
def model_dir(out: Path, model: str) -> Path:
    return out / "models" / model


def export_dir(out: Path, model: str, backend: str, fmt: str, method: str, static_timesteps: int | None = None) -> Path:
    return model_dir(out, model) / (f"{backend}-{fmt}-{method}" + (f"-t{static_timesteps}" if static_timesteps else ""))


def entry_path(out: Path, source: str, fmt: str, model: str) -> Path:
    return out / "entries" / f"{source}-{fmt}-{model}.json"


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _reusable(record, expected_key: dict, current_versions: dict, required: tuple) -> bool:
    """A stored result is reused only when it is for the same thing, made by the same versions, and complete."""
    return (isinstance(record, dict) and record.get("key") == expected_key
            and record.get("versions") == current_versions and all(k in record for k in required))


# ---------------------------------------------------------------- step 2: the exports, in a Keras child
def methods(fmt: str, backend: str) -> list[str]:
    """The methods exported on ``backend`` for ``fmt``: its upstream exporters, then the native writer (whose
    route runs on the source backend: routes.planned_routes)."""
    from keras_impl.export.routes import NATIVE_FORMATS, ON_BACKEND
    return list(ON_BACKEND[fmt][backend]) + (["native"] if fmt in NATIVE_FORMATS else [])


def fallback_timesteps(model: str) -> int | None:
    """The length of the automatic static-time routes for ``model`` (time_axis.choose): the models built in Keras
    keep their time axis free (matrix_models.py), the ModelSpec ones fix it at BASE_SPEC's."""
    return DEFAULT_STATIC_TIMESTEPS if model in BUILDERS else None


def exports(model: str, fmt: str, backend: str) -> list[tuple[str, int | None]]:
    """``(method, static_timesteps)`` of every export made on ``backend`` for ``fmt``: ``methods``, then each upstream
    method again with a static time axis where the model's is free (the routes bilstm export falls back to)."""
    from keras_impl.export.routes import ON_BACKEND
    static = fallback_timesteps(model)
    return [(m, None) for m in methods(fmt, backend)] + (
        [(m, static) for m in ON_BACKEND[fmt][backend]] if static is not None else [])


def _key(model: str, backend: str, fmt: str, method: str, static_timesteps: int | None) -> dict:
    """An export's key; a free time axis adds nothing to it (a key from before static-time routes still matches)."""
    key = {"model": model, "backend": backend, "format": fmt, "method": method}
    return key if static_timesteps is None else {**key, "static_timesteps": static_timesteps}


def _export_jobs(out: Path, model: str, backend: str, formats, resume: bool, current_versions: dict) -> list:
    """The worker jobs still to do for one model on one backend (a reusable earlier export is kept)."""
    jobs = []
    for fmt in formats:
        for method, static_timesteps in exports(model, fmt, backend):
            folder = export_dir(out, model, backend, fmt, method, static_timesteps)
            key = _key(model, backend, fmt, method, static_timesteps)
            stored = _read_json(folder / "export.json")
            if resume and _reusable(stored, key, current_versions, ("ok",)) and (
                    not stored["ok"] or ((folder / ARTIFACT_NAME[fmt]).exists()
                                         and (folder / "predictions.npz").is_file())):
                continue
            jobs.append({"key": key, "model": str(model_dir(out, model) / "model.keras"), "format": fmt,
                         "method": method, "artifact": str(folder / ARTIFACT_NAME[fmt]), "dynamic_batch": True,
                         "static_timesteps": static_timesteps,
                         "predictions": str(folder / "predictions.npz"), "seed": INPUT_SEED,
                         "result": str(folder / "worker.json"), "record": str(folder / "export.json")})
    return jobs


def _child_env(backend: str) -> dict:
    root = str(Path(__file__).resolve().parents[2])  # the child imports this same copy of keras_impl
    python_path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=python_path, TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONWARNINGS="ignore")


def _run_child(backend: str, task: dict, task_path: Path) -> str | None:
    """Run this module as a Keras child on `backend`; None when it finished, else why it did not."""
    from keras_impl.files import atomic_write_json
    atomic_write_json(task_path, task)
    try:
        # The child's progress lines (stdout) go straight to this process's stderr; its stderr is kept for a failure.
        done = subprocess.run([sys.executable, "-m", "keras_impl.export.matrix", str(task_path)],
                              env=_child_env(backend), stdout=sys.stderr, stderr=subprocess.PIPE, text=True,
                              timeout=BACKEND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"the {backend} export process ran past {BACKEND_TIMEOUT_S} s"
    if done.returncode != 0:
        tail = " ".join(done.stderr.split())[-300:]
        return f"the {backend} export process stopped (exit {done.returncode}): {tail}"
    return None


def child_main(task_path: str) -> int:
    """In a Keras process (KERAS_BACKEND fixed): build the task's model if asked, then each export job."""
    task = json.loads(Path(task_path).read_text(encoding="utf-8"))
    from keras_impl.quiet import quiet_tensorflow
    quiet_tensorflow()  # before Keras imports TensorFlow: its start-up lines off the log
    import keras

    from keras_impl.export import worker
    from keras_impl.files import atomic_write_json

    backend = keras.backend.backend()
    for build in task.get("build") or []:  # either builds with the project's one random-weights recipe
        model = (BUILDERS[build["builder"]](build["seed"]) if "builder" in build
                 else worker.build_named_model(build["spec"], build["seed"]))
        path = Path(build["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.keras")  # a whole file or none: renamed into place when saved
        model.save(tmp)
        os.replace(tmp, path)
        print(f"  built {build['key']['model']} on {backend}", flush=True)
    for job in task.get("exports", []):
        Path(job["artifact"]).parent.mkdir(parents=True, exist_ok=True)
        job_path = Path(job["result"]).with_name("job.json")
        atomic_write_json(job_path, {k: v for k, v in job.items() if k not in ("key", "record")})
        t0 = time.perf_counter()
        signal.signal(signal.SIGALRM, _timeout)
        signal.alarm(EXPORT_TIMEOUT_S)
        try:
            worker.main([str(job_path)])
            result = _read_json(Path(job["result"])) or {"ok": False, "error": "the worker wrote no result"}
        except Exception as exc:  # an export that broke the worker itself: a failure of this entry, not of the run
            result = {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"}
        finally:
            signal.alarm(0)
        record = {"key": job["key"], "versions": task["versions"], "backend": backend,
                  "seconds": round(time.perf_counter() - t0, 1), **result}
        atomic_write_json(Path(job["record"]), record)
        status = "exported" if result.get("ok") else f"failed: {str(result.get('error') or result.get('refused'))[:160]}"
        print(f"  {job['key']['model']}: {job['format']} on {backend} ({job['method']}) {status}", flush=True)
    return 0


def _timeout(signum, frame):
    raise TimeoutError(f"the export ran past {EXPORT_TIMEOUT_S} s")


# ---------------------------------------------------------------- step 3: each artifact in its runtime
def _run_artifact(out: Path, model: str, backend: str, fmt: str, method: str, static_timesteps: int | None,
                  current_versions: dict) -> dict:
    """The artifact of one export, run in its runtime and compared; stored as run.json in its folder."""
    from keras_impl.export.runtimes import run_sets_in_subprocess
    from keras_impl.export.verify import compare, unpack
    from keras_impl.files import atomic_write_json
    folder = export_dir(out, model, backend, fmt, method, static_timesteps)
    key = _key(model, backend, fmt, method, static_timesteps)
    with np.load(folder / "predictions.npz", allow_pickle=False) as arrays:
        sets = unpack(arrays)
    record = {"key": key, "versions": current_versions}
    precisions = ("float32", "native") if fmt == "openvino" else ("float32",)
    for precision in precisions:
        started = time.perf_counter()
        try:
            outputs, ran = run_sets_in_subprocess(fmt, folder / ARTIFACT_NAME[fmt], [s["inputs"] for s in sets],
                                                  precision=precision, timeout_s=RUN_TIMEOUT_S)
        except (ArtifactRunError, RuntimeUnavailable) as exc:
            record.update(ok=False, error=f"{RUNTIME_PACKAGE[fmt]}: {exc}", error_kind=type(exc).__name__)
            break
        result = compare(sets, outputs, backend=backend, ran_precision=ran)
        record[precision] = {k: result[k] for k in ("worst_vs_oracle", "worst_vs_keras", "worst_keras_vs_oracle",
                                                    "ran_precision", "verdict", "bounds")}
        record[precision]["shapes"] = [r["inputs"] for r in result["sets"]]
        record[precision]["seconds"] = round(time.perf_counter() - started, 1)  # load and every set
    else:
        record["ok"] = True
    atomic_write_json(folder / "run.json", record)
    return record


def _run_artifacts(out: Path, model: str, formats, resume: bool, current: dict) -> int:
    """Every artifact of the model (a route may reload onto any backend), RUN_PARALLEL runtime processes at
    once; returns how many ran (rather than reused)."""
    from concurrent.futures import ThreadPoolExecutor

    exported = [(backend, fmt, method, static) for backend in BACKENDS for fmt in formats
                for method, static in exports(model, fmt, backend)
                if (_read_json(export_dir(out, model, backend, fmt, method, static) / "export.json") or {}).get("ok")]
    key = lambda e: _key(model, *e)  # noqa: E731
    to_run = [e for e in exported if not (resume and _reusable(
        _read_json(export_dir(out, model, *e) / "run.json"), key(e), current, ("ok",)))]
    with ThreadPoolExecutor(max_workers=RUN_PARALLEL) as pool:
        list(pool.map(lambda e: _run_artifact(out, model, *e, current), to_run))
    return len(to_run)


# ---------------------------------------------------------------- step 4: the entries
def compose_entry(out: Path, source: str, fmt: str, model: str, current_versions: dict) -> dict:
    """The entry: the first route (routes.planned_routes order: the native writer last) whose export and run both
    worked, and every failure before it."""
    from keras_impl.export.routes import planned_routes
    entry = {"key": {"source": source, "format": fmt, "model": model}, "versions": current_versions,
            "failures": [], "status": "no route"}
    for route in planned_routes(source, fmt, installed=BACKENDS, fallback_timesteps=fallback_timesteps(model)):
        folder = export_dir(out, model, route.backend, fmt, route.method, route.static_timesteps)
        exported = _read_json(folder / "export.json") or {"ok": False, "error": "not exported"}
        if not exported.get("ok"):
            entry["failures"].append({"route": route.describe(), "route_backend": route.backend, "stage": "export",
                                     "error": exported.get("error") or exported.get("refused"),
                                     "upstream": exported.get("upstream")})
            continue
        ran = _read_json(folder / "run.json") or {"ok": False, "error": "not run"}
        if not ran.get("ok"):
            entry["failures"].append({"route": route.describe(), "route_backend": route.backend, "stage": "run",
                                     "error": ran.get("error"),
                                     "upstream": None})
            continue
        info = exported["export"]
        entry.update(status=ran["float32"]["verdict"], route=route.describe(), route_backend=route.backend,
                    method=route.method, reloaded=route.reload, dynamic_batch=info["dynamic_batch"],
                    static_timesteps=info.get("static_timesteps") if route.static_timesteps else None,
                    static_time_automatic=route.automatic,
                    notes=info["notes"], float32=ran["float32"], native=ran.get("native"),
                    worst_vs_oracle=ran["float32"]["worst_vs_oracle"],
                    worst_vs_keras=ran["float32"]["worst_vs_keras"],
                    ran_precision=ran["float32"]["ran_precision"])
        break
    return entry


def run_matrix(out=DEFAULT_OUT, *, backends=None, formats=None, models=None, resume: bool = False,
               render: bool = True) -> dict:
    """Run (or, with resume, finish) the matrix into `out`; returns {"entries": [...], "counts": {...},
    "written": [the tables written into `out`]}. Nothing outside `out` is written.

    The expensive parts, exports and runs, are reused on resume when their records check out; the entries are
    always composed again from those records (cheap), so an entry never outlives what it was made from.
    """
    backends, formats, models = check_selection(backends, formats, models)
    from keras_impl.files import atomic_write_json
    out = Path(out)
    current = versions()
    entries = []
    t_start = time.perf_counter()
    _build_models(out, models, resume, current)
    for model in models:
        redone = _export_model(out, model, formats, resume, current)
        redone += _run_artifacts(out, model, formats, resume, current)
        for source in backends:
            for fmt in formats:
                entry = compose_entry(out, source, fmt, model, current)
                atomic_write_json(entry_path(out, source, fmt, model), entry)
                entries.append(entry)
                progress(f"[{len(entries)}/{len(models) * len(backends) * len(formats)}] {model} from {source} "
                         f"to {fmt}: {describe_entry(entry)} ({'measured' if redone else 'reused'}, "
                         f"{time.perf_counter() - t_start:.0f} s)")
    written = write_tables(entries, out) if render else []
    return {"entries": entries, "counts": dict(Counter(c["status"] for c in entries)), "written": written}


WEIGHTS_RECIPE = "reference.random_weights"  # in each build's key: a model built with an older recipe is rebuilt


def _build_models(out: Path, models, resume: bool, current: dict) -> None:
    """Each model's .keras file, built in one Keras child (reused on resume when the same spec and versions
    made it); an export made from an older file is dropped."""
    builds = []
    for model in models:
        how = {"builder": model} if model in BUILDERS else {"spec": {**BASE_SPEC, **MODELS[model]}}
        key = {"model": model, **how, "seed": WEIGHT_SEED, "weights": WEIGHTS_RECIPE}
        model_file = model_dir(out, model) / "model.keras"
        if resume and model_file.is_file() and _reusable(_read_json(model_dir(out, model) / "build.json"), key,
                                                         current, ()):
            continue
        for stale in list(model_dir(out, model).glob("*/export.json")) + list(model_dir(out, model).glob("*/run.json")):
            stale.unlink()
        builds.append({"key": key, **how, "seed": WEIGHT_SEED, "path": str(model_file)})
    if not builds:
        return
    progress(f"building {len(builds)} model(s): {', '.join(b['key']['model'] for b in builds)}")
    out.mkdir(parents=True, exist_ok=True)
    failure = _run_child("jax", {"build": builds, "exports": [], "versions": current}, out / ".task-build.json")
    from keras_impl.files import atomic_write_json
    for b in builds:
        if failure or not Path(b["path"]).is_file():
            raise RuntimeError(f"cannot build the {b['key']['model']} model: {failure}")
        atomic_write_json(model_dir(out, b["key"]["model"]) / "build.json", {"key": b["key"], "versions": current})


def _export_model(out: Path, model: str, formats, resume: bool, current: dict) -> None:
    """Export the model's .keras on every backend at once, each backend one Keras child."""
    from concurrent.futures import ThreadPoolExecutor

    from keras_impl.files import atomic_write_json
    tasks = {}
    for backend in BACKENDS:
        jobs = _export_jobs(out, model, backend, formats, resume, current)
        if jobs:
            tasks[backend] = jobs
    if not tasks:
        return 0
    for jobs in tasks.values():
        for job in jobs:  # a run of an artifact about to be replaced is stale
            Path(job["record"]).with_name("run.json").unlink(missing_ok=True)
    progress(f"{model}: " + ", ".join(f"{len(jobs)} export(s) on {b}" for b, jobs in tasks.items()))
    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        failures = dict(zip(tasks, pool.map(
            lambda b: _run_child(b, {"build": None, "exports": tasks[b], "versions": current},
                                 model_dir(out, model) / f".task-{b}.json"), tasks)))
    for backend, failure in failures.items():
        if failure:  # the exports it did not reach are recorded as failures of their entries, not of the run
            for job in tasks[backend]:
                if not Path(job["record"]).is_file():
                    atomic_write_json(Path(job["record"]), {"key": job["key"], "versions": current, "ok": False,
                                                            "error": failure})
    return sum(len(jobs) for jobs in tasks.values())


# ---------------------------------------------------------------- rendering
def _fmt_error(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "inf"
    return "0" if value == 0 else f"{value:.1e}"


def describe_entry(entry: dict) -> str:
    if entry["status"] == "no route":
        last = entry["failures"][-1] if entry["failures"] else {"error": "no route planned"}
        return f"no route ({len(entry['failures'])} tried; last: {str(last['error'])[:120]})"
    native = entry.get("native")
    extra = (f"; native {native['ran_precision']} {_fmt_error(native['worst_vs_oracle'])}"
             if native and native.get("ran_precision") != "float32" else "")
    return (f"{entry['status']} via {entry['route']}: {_fmt_error(entry['worst_vs_oracle'])} vs oracle, "
            f"{_fmt_error(entry['worst_vs_keras'])} vs Keras{extra}")


def short_cause(error: str) -> str:
    """A failure's one-line cause: the exporter's stated cause where it gave one, else the upstream error."""
    error = " ".join(str(error).split())
    found = re.search(r"\(cause: (.*)\)\s*$", error)
    text = found.group(1) if found else error
    return text if len(text) <= 220 else text[:217] + "..."


def _backend_short(backend: str) -> str:
    return {"tensorflow": "tf", "jax": "jax", "torch": "torch"}[backend]


def render_matrix_section(entries: list[dict]) -> str:
    """The markdown between docs/export.md's matrix markers: the table, then the footnoted causes."""
    causes: dict[str, int] = {}
    links: dict[int, str | None] = {}

    def note(failure) -> str:
        cause = f"{failure['stage']}: {short_cause(failure['error'])}"
        if cause not in causes:
            causes[cause] = len(causes) + 1
            links[causes[cause]] = failure.get("upstream")
        return f"{_backend_short(failure['route_backend'])}[{causes[cause]}]"

    by_key = {(c["key"]["source"], c["key"]["format"], c["key"]["model"]): c for c in entries}
    sources = [b for b in BACKENDS if any(k[0] == b for k in by_key)]
    formats = [f for f in FORMATS if any(k[1] == f for k in by_key)]
    models = [m for m in MODEL_NAMES if any(k[2] == m for k in by_key)]
    lines = ["| source | model | " + " | ".join(formats) + " |", "|---|---|" + "---|" * len(formats)]
    for source in sources:
        for model in models:
            row = []  # the table's cells, one a format
            for fmt in formats:
                entry = by_key.get((source, fmt, model))
                if entry is None:
                    row.append("")
                    continue
                failed = " ".join(note(f) for f in entry["failures"])
                if entry["status"] == "no route":
                    row.append(f"✗ {failed}")
                    continue
                text = f"{_fmt_error(entry['worst_vs_oracle'])} / {_fmt_error(entry['worst_vs_keras'])}"
                if entry["reloaded"]:
                    text += f" ↻{_backend_short(entry['route_backend'])}"
                if entry.get("method") == "native":
                    text += " native"
                if not entry["dynamic_batch"]:
                    text += " b1"
                if entry.get("static_timesteps"):
                    text += f" t{entry['static_timesteps']}"
                native = entry.get("native")
                if native and native["ran_precision"] != "float32":
                    text += f"; {native['ran_precision']} {_fmt_error(native['worst_vs_oracle'])}"
                if entry["status"] != "pass":
                    text = f"**{entry['status']}** {text}"
                row.append(f"{failed} {text}".strip())
            lines.append(f"| {source} | {model} | " + " | ".join(row) + " |")
    counts = Counter(c["status"] for c in entries)
    ran = [c for c in entries if c["status"] != "no route"]
    worst = max((c["worst_vs_oracle"] for c in ran), default=0.0)
    worst_keras = max((c["worst_vs_keras"] for c in ran), default=0.0)
    head = [f"{len(entries)} entries: {counts.get('pass', 0)} pass, {counts.get('FAIL', 0)} outside a bound, "
            f"{counts.get('no route', 0)} with no working route. Worst error of an artifact that ran: "
            f"{_fmt_error(worst)} against the oracle, {_fmt_error(worst_keras)} against Keras (float32).", "",
            "Each entry: worst absolute error against the oracle / against Keras over one input set per input "
            "family (keras_impl/verify/families.py; one sequence a call where the batch is static), float32; `↻tf` the .keras "
            "reloaded and exported on that backend, since the source backend's own route failed; `b1` a "
            f"static batch of 1; `t{DEFAULT_STATIC_TIMESTEPS}` a static time axis of {DEFAULT_STATIC_TIMESTEPS} "
            "steps, taken automatically where no route with a free time axis worked (its three input sets then all "
            f"{DEFAULT_STATIC_TIMESTEPS} steps long); `native` bilstm-lab's own ONNX writer (the native route); "
            "`tf[n]` the route through that backend failed first, for cause n below (routes "
            "are tried in keras_impl/export/routes.py's order); ✗ no route works. Against Keras means the Keras "
            "model of the backend that exported.", ""]
    foot = ["", "Causes (the stage that failed, export or run, then the exporter's stated cause or the upstream "
                "error, in one line):", ""]
    for cause, n in causes.items():
        link = f" ({links[n]})" if links[n] else ""
        foot.append(f"{n}. {cause}{link}")
    versions_line = entries[0]["versions"] if entries else {}
    stamp = ", ".join(f"{k} {v}" for k, v in versions_line.items() if v)
    return "\n".join(head + lines + foot + ["", f"Measured with {stamp}."])


def render_routes_section(entries: list[dict]) -> str:
    """The README's table: from each source backend to each format, the route the matrix found."""
    by_pair: dict[tuple, list] = {}
    for c in entries:
        by_pair.setdefault((c["key"]["source"], c["key"]["format"]), []).append(c)
    sources = [b for b in BACKENDS if any(k[0] == b for k in by_pair)]
    formats = [f for f in FORMATS if any(k[1] == f for k in by_pair)]
    lines = ["| from \\ to | " + " | ".join(formats) + " |", "|---|" + "---|" * len(formats)]
    for source in sources:
        row = []  # the table's cells, one a format
        for fmt in formats:
            group = by_pair.get((source, fmt), [])
            taken = Counter(_route_label(c) for c in group)
            common, _ = taken.most_common(1)[0] if taken else ("", 0)
            exceptions = sorted({f"{c['key']['model']}: {_route_label(c)}" for c in group
                                 if _route_label(c) != common})
            row.append(common + (f" ({'; '.join(exceptions)})" if exceptions else ""))
        lines.append(f"| {source} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _route_label(entry: dict) -> str:
    if entry["status"] == "no route":
        return "none works"
    if entry.get("method") == "native":
        return "native writer"
    where = f"reload on {entry['route_backend']}" if entry["reloaded"] else "direct"
    return (where + (", batch 1" if not entry["dynamic_batch"] else "")
            + (f", time {entry['static_timesteps']}" if entry.get("static_timesteps") else ""))


def replace_section(text: str, markers: tuple[str, str], body: str) -> str:
    """`text` with the part between the markers replaced by `body` (the markers appended if absent)."""
    begin, end = markers
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        return before + block + rest.split(end, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def _sections(entries: list[dict]) -> tuple:
    """(file name in a results folder, the project doc it renders into, its markers, the table)."""
    return (("export.md", DOC, MATRIX_MARKERS, render_matrix_section(entries)),
            ("routes.md", README, ROUTES_MARKERS, render_routes_section(entries)))


def write_tables(entries: list[dict], out: Path) -> list[Path]:
    """The matrix and routes tables as `out`/export.md and `out`/routes.md; returns the paths written."""
    from keras_impl.files import atomic_write_text
    written = []
    for name, _, _, body in _sections(entries):
        atomic_write_text(Path(out) / name, body + "\n")
        written.append(Path(out) / name)
    return written


def read_entries(out: Path) -> list[dict]:
    """The entries of a finished (or partial) matrix run, in the order the matrix writes them."""
    files = sorted((Path(out) / "entries").glob("*.json"))
    if not files:
        raise ValueError(f"{out}/entries holds no entry: run `bilstm export --matrix --out {out}` first")
    entries = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    def rank(known, name):  # a name this version does not know goes last, in name order
        return (list(known).index(name), "") if name in known else (len(known), name)
    return sorted(entries, key=lambda e: (rank(MODEL_NAMES, e["key"]["model"]), rank(BACKENDS, e["key"]["source"]),
                                          rank(FORMATS, e["key"]["format"])))


def render_docs(out: Path, root: Path = Path(".")) -> list[Path]:
    """The developer's step (make docs-export-matrix): this project's docs/export.md and README.md sections,
    between their markers, rendered from the entries in the results folder `out`. Refuses a tree whose files
    lack the markers (not this project's source tree) before writing anything. Returns the paths written."""
    from keras_impl.files import atomic_write_text
    entries = read_entries(out)
    root = Path(root)
    updates = []
    for _, doc, markers, body in _sections(entries):
        path = root / doc
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if markers[0] not in text or markers[1] not in text:
            raise ValueError(f"{path} lacks the markers {markers[0]} ... {markers[1]}: not this project's source tree")
        updates.append((path, replace_section(text, markers, body)))
    for path, text in updates:
        atomic_write_text(path, text)
    return [path for path, _ in updates]


def main(argv: list[str]) -> int:
    """`python -m keras_impl.export.matrix render --from OUT [--root DIR]` (the developer's step); any other
    argument list is the path of a child's task (this module runs as the Keras child too)."""
    if not argv or argv[0] != "render":
        return child_main(argv[0])
    import argparse
    parser = argparse.ArgumentParser(prog="python -m keras_impl.export.matrix render",
                                     description="render docs/export.md's and README.md's matrix sections from "
                                                 "a results folder of `bilstm export --matrix`")
    parser.add_argument("--from", dest="out", required=True, type=Path, help="the results folder (its --out)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project's source tree (default: .)")
    args = parser.parse_args(argv[1:])
    try:
        written = render_docs(args.out, args.root)
    except (ValueError, OSError) as exc:
        print(f"render: error: {exc}", file=sys.stderr)
        return 2
    print("rendered " + ", ".join(map(str, written)) + f" from {args.out}/entries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
