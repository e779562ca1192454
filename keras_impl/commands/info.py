"""``bilstm info``: the backend, device and versions in use."""
from __future__ import annotations

import json
import sys

from keras_impl.backend import BackendError, select_backend
from keras_impl.options import add_backend_option


def add_arguments(parser):
    add_backend_option(parser)


def run(args) -> int:
    try:
        select_backend(args.backend)
    except BackendError as exc:
        print(f"bilstm info: error: {exc}", file=sys.stderr)
        return 2
    from keras_impl.backend import backend_info, print_keras_header
    print_keras_header("info")
    print(json.dumps(backend_info(), indent=2))
    return 0


COMMANDS = [("info", "Show the Keras backend, device and versions in use.", add_arguments, run)]
