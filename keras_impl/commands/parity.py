"""``bilstm parity``: check the installed Keras backend against the NumPy oracle, as a table.

    bilstm parity                          # KERAS_BACKEND (default tensorflow), float32, 81 checks
    bilstm parity --backend jax --quick    # 16 checks, seconds
    bilstm parity --dtype both             # float32, then float64 (set_floatx; JAX's x64 mode on): 162 checks
    bilstm parity --cell gru               # the same checks with keras.layers.GRU (81; simple_rnn: 80)
    bilstm parity --cell all               # lstm, gru and simple_rnn: 242 checks

One row per configuration: the worst error between Keras and the oracle over
every output and state (layers, models), gradient (gradients) or loss and
weight update (trajectory), its bound (``keras_impl/parity/tolerances.py``,
absolute or relative as the column says) and a verdict, pass or FAIL. Under the
table: the semantic difference between backends that the oracle models (what
an LSTM outputs at masked steps before a row's first valid one, with the Keras
source lines), the cause of any looser float64 bound, and configurations not
compared on this device (a predicted Keras GPU divergence). Exits 1 if any
value exceeds its bound, 2 if the backend cannot be used.
The checks themselves live in ``keras_impl/parity/checks.py``.
"""
from __future__ import annotations

import sys
import time

from keras_impl.backend import BackendError, select_backend
from keras_impl.options import add_backend_option


def add_arguments(parser):
    add_backend_option(parser)
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32",
                        help="Keras floatx to check (default float32; float64 is held to 1e-10 on TensorFlow, "
                             "to measured float32-level bounds on JAX and torch)")
    parser.add_argument("--quick", action="store_true", help="a smaller subset: one check per layer kind and direction")
    parser.add_argument("--cell", choices=("lstm", "gru", "simple_rnn", "all"), default="lstm",
                        help="the recurrent cell to check, with Keras's default options (default lstm; all: the three)")


def run(args) -> int:
    try:
        backend = select_backend(args.backend)
    except BackendError as exc:
        print(f"bilstm parity: error: {exc}", file=sys.stderr)
        return 2
    from keras_impl.parity import checks  # imports no Keras; the sections import it once the backend is set
    checks.disable_tf32(backend)
    from keras_impl.backend import backend_info, print_keras_header
    print_keras_header("parity", dtype=args.dtype if args.dtype != "both" else "float32, then float64")
    info = backend_info()
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    start = time.perf_counter()
    cells = checks.cells_of(args.cell)
    rows = checks.run_checks(dtypes, quick=args.quick, cells=cells)
    print(checks.format_table(rows, checks.notes(rows, info["backend"], info["device"], args.quick, cells)))
    print(f"{checks.summary(rows)} ({time.perf_counter() - start:.1f} s)")
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0


COMMANDS = [("parity", "Check the installed Keras backend against the NumPy oracle and print a table.",
             add_arguments, run)]
