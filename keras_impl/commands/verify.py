"""``bilstm verify MODEL_FILE``: a user's own model, checked layer by layer against the NumPy oracle.

    bilstm verify model.keras                        # Keras 3 file, KERAS_BACKEND, float32, 4 drawn sequences
    bilstm verify tutorial.h5 --backend jax          # a Keras 2 / tf.keras .h5 file
    bilstm verify model.keras --inputs x.npy --json report.json
    bilstm verify model.keras --json -               # the report as JSON on standard output, no table
    bilstm verify model.keras --plot growth.png      # where a layer fails: its error over the steps, drawn
    bilstm verify model.keras --repro repro/         # and a reproducer of it to attach to a bug report
    bilstm verify model.keras --artifact model.onnx  # an artifact you converted yourself, in its runtime
    bilstm verify int8.keras --float-model f32.keras # a quantized model: its weights' error and its arithmetic's

Reads the file through Keras's own loader (safe mode; layers the oracle does not
implement are refused by name before anything is deserialized), computes the
same model in the oracle (``reference.layers``) from the file's config and
weights, and compares every layer's output. Prints a table; exit status 0 when
every layer is within its bound, 1 when one is not, 2 when the model cannot be
verified (or an argument is wrong). When a layer fails, a diagnosis follows the
table (keras_impl/verify/diagnose.py). See docs/verify.md.
"""
from __future__ import annotations

import sys

from keras_impl.backend import BackendError, select_backend
from keras_impl.memory import keep_freed_memory
from keras_impl.threads import oracle_on_all_cores
from keras_impl.export.formats import FORMATS
from keras_impl.options import (STDOUT, UsageError, add_backend_option, add_json_option, check_new_file, json_target,
                                positive_int, seed)
from keras_impl.verify.api import MAX_BATCH, MAX_TIMESTEPS, check_options


def add_arguments(parser):
    parser.add_argument("model_file", metavar="MODEL_FILE", help="a .keras (Keras 3) or .h5/.hdf5 (Keras 2, tf.keras) file")
    add_backend_option(parser)
    parser.add_argument("--batch", type=positive_int("--batch", MAX_BATCH), help="sequences to draw (default 4)")
    parser.add_argument("--timesteps", type=positive_int("--timesteps", MAX_TIMESTEPS),
                        help="sequence length to draw when the model's input leaves it free (default 8)")
    parser.add_argument("--inputs", metavar="FILE.npy", help="run on this array instead of drawn inputs")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="what Keras computes in (default float32; the oracle is float64)")
    parser.add_argument("--seed", type=seed(), default=0, help="seed of the drawn inputs (default 0)")
    add_json_option(parser, "the full report")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="when a layer fails: draw its error against the time step, each direction (PNG)")
    parser.add_argument("--artifact", metavar="FILE",
                        help="an exported artifact of this model (ONNX, SavedModel folder, .tflite, OpenVINO .xml, "
                             ".pt2, .jax_export), run in its runtime against the oracle; ONNX, OpenVINO and LiteRT layer by layer")
    parser.add_argument("--format", choices=FORMATS, help="the artifact's format, where its name does not say it")
    parser.add_argument("--float-model", metavar="FILE",
                        help="for a quantized model: the float model it was made from, whose weights the oracle "
                             "also runs (the weights' own error); default none: that error is not measured where "
                             "the file holds only quantized weights")
    parser.add_argument("--map", metavar="KERAS=ARTIFACT,...",
                        help="with --artifact: which artifact input or output is which model input or output, where "
                             "name, rank and order do not tell (default: matched by name, then by order)")
    parser.add_argument("--repro", metavar="FOLDER",
                        help="when a layer fails on its own: write a reproducer there (the layer alone as .keras, "
                             "its inputs, the oracle's output, repro.py)")


def _artifact_options(args):
    """``--artifact``'s format, checked with the options it cannot take, before Keras is imported."""
    from keras_impl.verify.artifact import artifact_format
    clash = [flag for flag, given in (("--repro", args.repro), ("--plot", args.plot),
                                      ("--float-model", args.float_model),
                                      ("--batch", args.batch), ("--timesteps", args.timesteps),
                                      ("--dtype float64", args.dtype == "float64")) if given]
    if clash:
        raise UsageError(f"--artifact runs the input families (or --inputs) in float32: leave out {', '.join(clash)}")
    from keras_impl.export.interface import parse_map
    try:
        args.map_pairs = parse_map(args.map)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return artifact_format(args.artifact, args.format)


def _run_artifact(args, path, fmt, json_path, user_inputs=None) -> int:
    from keras_impl.backend import print_keras_header
    from keras_impl.verify import VerifyRefusal
    from keras_impl.verify.artifact import format_artifact_report, verify_artifact
    try:
        report = verify_artifact(path, args.artifact, fmt=fmt, user_inputs=user_inputs, mapping=args.map_pairs)
    except VerifyRefusal as exc:
        print(f"bilstm verify: {exc}", file=sys.stderr)
        return 2
    print_keras_header("verify")
    code = 0 if report["verdict"] == "pass" else 1
    if json_path is not None:
        from keras_impl.files import atomic_write_json
        if json_path == STDOUT:
            import json

            from keras_impl.files import json_safe
            print(json.dumps(json_safe(report), indent=1, allow_nan=False))
            return code
        atomic_write_json(json_path, report)
    print(format_artifact_report(report))
    return code


def run(args) -> int:
    """Parse, check every argument before Keras is imported, call ``keras_impl.verify.verify``, print, save."""
    options = {"batch": args.batch, "timesteps": args.timesteps, "inputs": args.inputs, "dtype": args.dtype,
               "seed": args.seed}
    path, user_inputs = check_options(args.model_file, **options)  # UsageError: one line, exit 2 (keras_impl.cli)
    json_path = json_target(args.json)
    if args.map is not None and args.artifact is None:
        raise UsageError("--map says which artifact tensor is which: it goes with --artifact")
    artifact_fmt = None if args.artifact is None else _artifact_options(args)
    plot_path = None if args.plot is None else check_new_file(args.plot, "--plot")
    if plot_path is not None and plot_path.suffix.lower() != ".png":
        raise UsageError(f"--plot {plot_path}: the figure is a PNG file, name it .png")
    if args.repro is not None:
        from keras_impl.verify.repro import check_repro_folder
        check_repro_folder(args.repro)
    if args.float_model is not None:
        from keras_impl.verify.load import check_model_path
        check_model_path(args.float_model)
    try:
        select_backend(args.backend)  # sets KERAS_BACKEND before Keras is imported
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    keep_freed_memory()  # the oracle's large arrays reuse freed pages (keras_impl/memory.py says why)
    with oracle_on_all_cores():  # the oracle's independent parts on threads (keras_impl/threads.py)
        return _run_checked(args, path, options, json_path, user_inputs, artifact_fmt, plot_path)


def _run_checked(args, path, options, json_path, user_inputs, artifact_fmt, plot_path) -> int:
    if artifact_fmt is not None:
        return _run_artifact(args, path, artifact_fmt, json_path, user_inputs)
    from keras_impl.backend import print_keras_header
    from keras_impl.verify import VerifyRefusal, verify
    try:
        report = verify(path, **{**options, "inputs": user_inputs, "repro": args.repro,
                                 "float_model": args.float_model})
    except VerifyRefusal as exc:  # the model, not the arguments: said as today, "bilstm verify: <why>"
        print(f"bilstm verify: {exc}", file=sys.stderr)
        return 2
    # The header once the model is read (seconds): a model refused while reading costs one line, as every refusal.
    print_keras_header("verify", dtype=report.dtype if report.precision else args.dtype)
    plot_note = None
    if plot_path is not None:
        from keras_impl.verify.diagnose import plot_error_growth
        plot_note = (f"error growth drawn: {plot_path}" if plot_error_growth(report.diagnosis, plot_path) else
                     "--plot: nothing drawn (no recurrent layer fails on its own steps)")
    if json_path == STDOUT:  # the report as JSON instead of the table
        print(report.to_json(), end="")
        if plot_note:
            print(plot_note, file=sys.stderr)
        return 0 if report.passed else 1
    if json_path is not None:  # the file first: a reader that closes standard output early still gets it
        from keras_impl.files import atomic_write_json
        atomic_write_json(json_path, report.as_dict())
    print(report.format())
    if plot_note:
        print(plot_note)
    return 0 if report.passed else 1


COMMANDS = [("verify", "Check a user's Keras model file layer by layer against the NumPy oracle.", add_arguments, run)]
