"""``bilstm info``: the backend, device and versions in use."""
from __future__ import annotations

import json
import sys

from keras_impl.backend import BACKENDS, BackendError, select_backend


def add_arguments(parser):
    parser.add_argument("--backend", choices=BACKENDS, help="Keras backend (sets KERAS_BACKEND before Keras is imported)")


def run(args) -> int:
    try:
        select_backend(args.backend)
    except BackendError as exc:
        print(f"bilstm info: error: {exc}", file=sys.stderr)
        return 2
    from keras_impl.backend import backend_info
    print(json.dumps(backend_info(), indent=2))
    return 0


COMMANDS = [("info", "Show the Keras backend, device and versions in use.", add_arguments, run)]
