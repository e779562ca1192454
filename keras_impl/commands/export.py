"""``bilstm export [MODEL] --format F``: a Keras recurrent model out to another runtime, checked there.

    bilstm export model.keras --format onnx --verify            # KERAS_BACKEND's route, else a reload
    bilstm export --format litert --merge-mode sum --units 4 --verify    # a named model, random weights
    bilstm export model.keras --format openvino --verify --precision native   # the runtime's own default
    bilstm export model.keras --format onnx --json -            # the report as JSON on standard output
    bilstm export tagger.keras --format onnx --route native --verify    # bilstm-lab's own ONNX writer

This module only parses the command line, calls ``keras_impl.export.export`` (keras_impl/export/pipeline.py:
the routes, the worker processes, the runtime check) and prints its report. This process never imports Keras.
Exit status: 0 exported (and, with --verify, within bounds); 1 outside a bound; 2 cannot export or run,
or a bad argument (one line on stderr). See docs/export.md.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys

from keras_impl.export.formats import FORMATS, PRECISIONS
from keras_impl.export.routes import ROUTE_CHOICES
from keras_impl.export.time_axis import DEFAULT_STATIC_TIMESTEPS
from keras_impl.options import (STDOUT, UsageError, add_backend_option, add_json_option, add_out_option, finite_float,
                                json_target, positive_int, seed)
from reference import CELLS, DIRECTIONS, MODEL_MERGE_MODES

MAX_UNITS = 4096
MAX_TIMESTEPS = 100_000
SPEC_OPTIONS = ("cell", "merge_mode", "direction", "units", "timesteps", "features", "mask_value")


def _seeds(text: str) -> int:
    """--accuracy-seeds: 0 (off) to 100."""
    if not text.strip().isdigit() or int(text) > 100:
        raise argparse.ArgumentTypeError(f"--accuracy-seeds must be an integer from 0 to 100, got {text!r}")
    return int(text)


def _units(text: str) -> tuple[int, ...]:
    """--units 20 or 20,8 (stacked layers)."""
    parse = positive_int("--units", MAX_UNITS)
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"--units must be integers separated by commas, got {text!r}")
    return tuple(parse(p) for p in parts)


def add_arguments(parser):
    parser.add_argument("model_file", nargs="?", metavar="MODEL",
                        help="a .keras (or Keras 2 .h5) file; leave out to export a model named by the options below")
    parser.add_argument("--format", choices=FORMATS, help="what to export to (required, except with --matrix)")
    add_backend_option(parser)
    add_out_option(parser, "exports/<model>-<format>; with --matrix, results/export-matrix; with --matrix "
                   "--precision all, results/export-precision")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if an earlier export made it (its export.json, nothing else in it)")
    parser.add_argument("--verify", action="store_true",
                        help="run the artifact in its runtime and compare with Keras and the oracle")
    parser.add_argument("--inputs", metavar="FILE.npy", help="with --verify: run the artifact on this array "
                        "instead of the input families (default: the families)")
    parser.add_argument("--precision", choices=PRECISIONS + ("all",),
                        help="float32: the artifact is float32 and the runtime asked to compute in float32; native: "
                        "the runtime's own default (OpenVINO's bfloat16 on a CPU with BF16); float16, bfloat16, "
                        "int8-dynamic, int8-static: the artifact converted by its format's toolchain, where it has "
                        "one, and verified against bounds derived from that precision; all: with --matrix, the "
                        "precision matrix (default float32)")
    parser.add_argument("--calibration", metavar="FILE.npy",
                        help="with --precision int8-static: model inputs (an .npy) to calibrate the activations' "
                        "ranges on (default: 32 sequences drawn from the model's input description)")
    parser.add_argument("--accuracy-seeds", type=_seeds, metavar="N",
                        help="with --verify, for a model named by options on the tutorial's problem (T=10, one "
                        "feature): train N seeds as the experiments do, export each and report its held-out "
                        "accuracy beside the float32 model's, with a 95%% interval; 0 turns it off (default 3 "
                        "with a reduced --precision, else 0; each seed a training, an export and a run)")
    parser.add_argument("--static-batch", action="store_true", help="export a batch of 1 instead of a dynamic batch")
    parser.add_argument("--static-timesteps", type=positive_int("--static-timesteps", MAX_TIMESTEPS), metavar="N",
                        help="export a time axis fixed at N steps instead of a free one (default: free; where no "
                             "route with a free time axis works, the model's own length or "
                             f"{DEFAULT_STATIC_TIMESTEPS} is taken automatically and the report says so)")
    parser.add_argument("--route", choices=ROUTE_CHOICES, help="auto (default): the converters' routes in order, then "
                        "for onnx and openvino bilstm-lab's own ONNX writer; upstream: the converters only; native: "
                        "the writer only")
    add_json_option(parser, "the report")
    parser.add_argument("--matrix", action="store_true", help="instead of one export: every backend x format x "
                        "model; entries and tables written to --out only")
    parser.add_argument("--resume", action="store_true",
                        help="with --matrix: re-check and reuse finished exports and runs")
    named = parser.add_argument_group("a model named by options (random weights), instead of MODEL")
    named.add_argument("--cell", choices=CELLS, help="recurrent cell (default lstm)")
    named.add_argument("--direction", choices=DIRECTIONS, help="default bidirectional")
    named.add_argument("--merge-mode", choices=MODEL_MERGE_MODES, help="Bidirectional merge mode (default concat)")
    named.add_argument("--units", type=_units, help="units per layer, comma-separated to stack (default 20)")
    named.add_argument("--timesteps", type=positive_int("--timesteps", MAX_TIMESTEPS), help="default 10")
    named.add_argument("--features", type=positive_int("--features", MAX_UNITS), help="default 1")
    named.add_argument("--mask-value", type=finite_float("--mask-value"), help="put Masking(mask_value) in front")
    named.add_argument("--seed", type=seed("--seed"), help="weights' seed (default 0)")


def check_matrix_arguments(args) -> None:
    """--matrix runs its own models, formats and backends: only --out and --resume go with it."""
    given = [name for name, value in vars(args).items() if not name.startswith("_") and name not in
             ("command", "matrix", "out", "resume", "precision") and value not in (None, False)]
    if given:
        raise UsageError(f"--matrix runs every model, format and backend: leave out "
                         f"{', '.join('MODEL' if g == 'model_file' else '--' + g.replace('_', '-') for g in given)}")
    if args.precision not in (None, "all"):
        raise UsageError("--matrix runs each runtime in float32 and, where it differs, its native precision; "
                         "--precision all runs the precision matrix: leave out --precision or give all")
    if args.out is not None and not args.out.strip():
        raise UsageError("--out must name a folder")


def model_argument(args):
    """MODEL, or the reference.ModelSpec the options name (checked by ModelSpec itself), or UsageError."""
    named = {k: getattr(args, k) for k in SPEC_OPTIONS if getattr(args, k) is not None}
    if args.model_file is not None:
        if named or args.seed is not None:
            given = [*named, *(["seed"] if args.seed is not None else [])]
            raise UsageError(f"MODEL is a file: leave out {', '.join('--' + k.replace('_', '-') for k in given)}")
        return args.model_file
    if named.get("direction", "bidirectional") != "bidirectional" and "merge_mode" in named:
        raise UsageError(f"--merge-mode needs --direction bidirectional, got --direction {named['direction']}")
    from reference import ModelSpec
    units = named.pop("units", (20,))
    try:
        return ModelSpec(**named, units=units if len(units) > 1 else units[0])
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def run_matrix_command(out: str | None, *, resume: bool) -> int:
    """`bilstm export --matrix [--resume] [--out FOLDER]`: the whole matrix; 0 when every entry that has a
    route is within bounds, 1 when one is outside."""
    from pathlib import Path

    from keras_impl.export.matrix import DEFAULT_OUT, run_matrix
    out = Path(out) if out else DEFAULT_OUT
    result = run_matrix(out, resume=resume)
    counts = result["counts"]
    print(f"bilstm export --matrix: {sum(counts.values())} entries: "
          + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
          + f"; tables written to {', '.join(map(str, result['written']))}; entries in {out}/entries")
    return 1 if counts.get("FAIL") else 0


def run_precision_matrix_command(out: str | None, *, resume: bool) -> int:
    """`bilstm export --matrix --precision all`: formats x precisions x models (precision_matrix.py)."""
    from pathlib import Path

    from keras_impl.export.precision_matrix import DEFAULT_OUT, run_precision_matrix
    out = Path(out) if out else DEFAULT_OUT
    result = run_precision_matrix(out, resume=resume, progress=lambda line: print(f"bilstm export: {line}",
                                                                                   file=sys.stderr, flush=True))
    counts = result["counts"]
    print(f"bilstm export --matrix --precision all: {sum(counts.values())} cells: "
          + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
          + f"; written {', '.join(map(str, result['written']))}; entries in {out}/entries")
    return 1 if counts.get("FAIL") else 0


def _device() -> str:
    """The device a worker's framework will find, named without importing one (nvidia-smi): a GPU if present."""
    from benchmarks.environment import gpu_names
    names = gpu_names()
    return f"gpu:{names[0]}" if names else "cpu"


def _precision_header(precision: str) -> str:
    from keras_impl.export.precision import runtime_precision
    if precision in ("float32", "native"):
        return f"{precision} runtime precision"
    return f"{precision} artifact, {runtime_precision(precision)} runtime precision"


def _terminated(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: the worker is killed and the scratch folders removed on the way


def run(args) -> int:
    from keras_impl.backend import header_line, installed_backends, print_header
    if args.matrix:
        check_matrix_arguments(args)
        print_header("export", backends=installed_backends(), device=_device(),
                     dtype="float32 and native runtime precision", chosen_by="--matrix: every installed backend")
        if args.precision == "all":
            return run_precision_matrix_command(args.out, resume=args.resume)
        return run_matrix_command(args.out, resume=args.resume)
    if args.format is None:
        raise UsageError("--format is required (one of " + ", ".join(FORMATS) + "), or --matrix")
    if args.resume:
        raise UsageError("--resume goes with --matrix only")
    if args.precision == "all":
        raise UsageError("--precision all goes with --matrix (the precision matrix); one export takes one precision")
    from keras_impl.backend import backend_origin
    from keras_impl.export.pipeline import plan, run_plan
    chosen_by = "--backend" if args.backend else backend_origin()
    json_path = json_target(args.json)
    checked = plan(model_argument(args), args.format, out=args.out, backend=args.backend, verify=args.verify,
                   precision=args.precision or "float32", static_batch=args.static_batch, overwrite=args.overwrite,
                   seed=args.seed or 0, route=args.route or "auto", calibration=args.calibration,
                   accuracy_seeds=args.accuracy_seeds, static_timesteps=args.static_timesteps, inputs=args.inputs)
    # The header comes with the first progress line: once --out is locked (a second export to the same --out is
    # refused in one line, before it).
    header = [header_line("export", backends=checked["source"], device=_device(),
                          dtype=_precision_header(args.precision or "float32"), chosen_by=chosen_by)]

    def progress(line: str) -> None:
        while header:
            print(header.pop(), file=sys.stderr, flush=True)
        print(f"bilstm export: {line}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _terminated)
    report = run_plan(checked, progress=progress)
    while header:  # an export that said nothing on its way
        print(header.pop(), file=sys.stderr, flush=True)
    # The artifact, its export.json and --json PATH are written before anything is printed: a closed stdout
    # loses no file.
    if json_path not in (None, STDOUT):
        from keras_impl.files import atomic_write_json
        atomic_write_json(json_path, report.to_json())
    print(json.dumps(report.to_json(), indent=1, allow_nan=False) if json_path == STDOUT else report)
    if report.exit_status == 2:
        print(f"bilstm export: {report['error']}", file=sys.stderr)
    return report.exit_status


COMMANDS = [("export", "Export a Keras recurrent model (ONNX, SavedModel, LiteRT, OpenVINO, torch.export, jax.export) "
             "and check it in its runtime against Keras and the oracle.", add_arguments, run)]
