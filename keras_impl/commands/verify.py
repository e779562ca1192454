"""``bilstm verify MODEL_FILE``: a user's own model, checked layer by layer against the NumPy oracle.

    bilstm verify model.keras                        # Keras 3 file, KERAS_BACKEND, float32, 4 drawn sequences
    bilstm verify tutorial.h5 --backend jax          # a Keras 2 / tf.keras .h5 file
    bilstm verify model.keras --inputs x.npy --json report.json

Reads the file through Keras's own loader (safe mode; layers the oracle does not
implement are refused by name before anything is deserialized), computes the
same model in the oracle (``reference.layers``) from the file's config and
weights, and compares every layer's output. Prints a table; exit status 0 when
every layer is within its bound, 1 when one is not, 2 when the model cannot be
verified (or an argument is wrong). See docs/verify.md.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from keras_impl.backend import BACKENDS, BackendError, select_backend

MAX_BATCH = 4096
MAX_TIMESTEPS = 100_000


def _positive(name: str, limit: int):
    def parse(text: str) -> int:
        import argparse
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{name} must be between 1 and {limit}, got {value}")
        return value
    return parse


def _seed(text: str) -> int:
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer, got {text!r}") from None
    if not 0 <= value < 2 ** 63:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer below 2**63, got {value}")
    return value


def add_arguments(parser):
    parser.add_argument("model_file", metavar="MODEL_FILE", help="a .keras (Keras 3) or .h5/.hdf5 (Keras 2, tf.keras) file")
    parser.add_argument("--backend", choices=BACKENDS, help="Keras backend (sets KERAS_BACKEND before Keras is imported)")
    parser.add_argument("--batch", type=_positive("--batch", MAX_BATCH), help="sequences to draw (default 4)")
    parser.add_argument("--timesteps", type=_positive("--timesteps", MAX_TIMESTEPS),
                        help="sequence length to draw when the model's input leaves it free (default 8)")
    parser.add_argument("--inputs", metavar="FILE.npy", help="run on this array instead of drawn inputs")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="what Keras computes in (default float32; the oracle is float64)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the drawn inputs (default 0)")
    parser.add_argument("--json", metavar="OUT", help="write the full report here (atomically)")


def check_arguments(args):
    """Every argument, before Keras is imported: returns ``(model path, user inputs or None)``."""
    from keras_impl.verify.inputs import load_inputs_file
    from keras_impl.verify.load import check_model_path
    path = check_model_path(args.model_file)
    user_inputs = None
    if args.inputs is not None:
        if args.batch is not None or args.timesteps is not None:
            raise ValueError("--inputs fixes the batch and the timesteps: leave out --batch and --timesteps")
        if not args.inputs.endswith(".npy") or not Path(args.inputs).is_file():
            raise ValueError(f"--inputs must be an existing .npy file, got {args.inputs!r}")
        user_inputs = load_inputs_file(args.inputs)
    if args.json is not None:
        out = Path(args.json)
        if out.is_dir():
            raise ValueError(f"--json {args.json!r} is a folder; give a file name")
        parent = out.parent if str(out.parent) else Path(".")
        if parent.exists() and not os.access(parent, os.W_OK):
            raise ValueError(f"--json {args.json!r}: folder {parent} is not writable")
    return path, user_inputs


def run(args) -> int:
    try:
        path, user_inputs = check_arguments(args)
        backend = select_backend(args.backend)
    except (ValueError, BackendError) as exc:
        print(f"bilstm verify: error: {exc}", file=sys.stderr)
        return 2
    from keras_impl.backend import set_tf32
    set_tf32(backend, False)  # float32 parity on Ampere/Hopper GPUs needs full float32 matmuls
    from keras_impl.verify.load import VerifyRefusal
    try:
        report = verify(path, args, user_inputs)
    except VerifyRefusal as exc:
        print(f"bilstm verify: {exc}", file=sys.stderr)
        return 2
    from keras_impl.verify.compare import format_table
    print(f"bilstm verify: {path} ({report['saved_by']}) on {report['backend']}, device {report['device']}, "
          f"{report['dtype']}, keras {report['versions'].get('keras')}")
    for about in report["inputs"]:
        print(f"  input {about['input']} {tuple(about['shape'])} {about['dtype']}: {about['drawn']}")
    print(format_table(report["layers"]))
    failed = [r["layer"] for r in report["layers"] if r["verdict"] != "pass"]
    print(f"{len(report['layers']) - len(failed)}/{len(report['layers'])} layers within bounds"
          + (f"; FAIL: {', '.join(failed)}" if failed else ""))
    if args.json is not None:
        from keras_impl.files import atomic_write_json
        atomic_write_json(Path(args.json), report)
    return 1 if failed else 0


def verify(path: Path, args, user_inputs=None) -> dict:
    """The report for ``path`` (raises VerifyRefusal when the model cannot be verified)."""
    from keras_impl.verify.compare import as_float64_model
    from keras_impl.verify.describe import describe_model
    from keras_impl.verify.load import load_model
    model, _, saved_by = load_model(path)
    described = describe_model(model)  # refuses, by name, before any float64 rebuild
    if args.dtype == "float64":
        with float64_keras():
            model = as_float64_model(model)
            described = describe_model(model)
            return _report(model, described, path, saved_by, args, user_inputs)
    return _report(model, described, path, saved_by, args, user_inputs)


@contextlib.contextmanager
def float64_keras():
    """Keras's floatx float64 (and JAX's x64 mode) for the duration, as the parity harness does; restored after."""
    import keras
    floatx = keras.config.floatx()
    jax_x64 = None
    if keras.backend.backend() == "jax":
        import jax
        jax_x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        if jax_x64 is not None:
            import jax
            jax.config.update("jax_enable_x64", jax_x64)


def _report(model, described, path, saved_by, args, user_inputs) -> dict:
    from keras_impl.backend import backend_info
    from keras_impl.parity.tolerances import bound
    from keras_impl.verify.compare import compare
    from keras_impl.verify.inputs import check_user_inputs, draw_inputs
    if user_inputs is not None:
        inputs, about = check_user_inputs(described, described.keras_layers, user_inputs)
    else:
        inputs, about = draw_inputs(described, described.keras_layers, args.batch or 4, args.timesteps, args.seed)
    if args.dtype == "float64":
        inputs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs]
    info = backend_info()
    b = bound("verify", args.dtype, info["backend"])
    rows = compare(model, described, inputs, b)
    return {"file": str(path), "saved_by": saved_by, "backend": info["backend"], "device": info["device"],
            "dtype": args.dtype, "seed": None if user_inputs is not None else args.seed, "versions": info,
            "inputs": about, "bound": {"kind": "abs, scaled by max(1, max |oracle output|)", "value": b.value,
                                       "cause": b.cause},
            "layers": rows, "verdict": "pass" if all(r["verdict"] == "pass" for r in rows) else "FAIL"}


COMMANDS = [("verify", "Check a user's Keras model file layer by layer against the NumPy oracle.", add_arguments, run)]
