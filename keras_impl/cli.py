"""The ``bilstm`` command line: one subcommand per module in ``keras_impl/commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported before Keras, so that ``--backend``
can set ``KERAS_BACKEND`` before Keras is imported; a module imports Keras only
inside ``run``.

Standard output closed early (``bilstm verify m.keras --json r.json | head -1``): the command has written its
files before printing, and ends quietly with exit status 141 (128 + SIGPIPE, what a shell reports for a tool
that SIGPIPE ended), no traceback: the Python documentation's recipe (signal module, "Note on SIGPIPE").
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

COMMAND_MODULES = ("parity", "experiments", "bench", "info", "verify", "export")
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE


class VersionAction(argparse.Action):
    """``bilstm --version``: one line, unwrapped (argparse's own version action wraps it to the terminal), read
    from the package metadata when asked (no framework is imported)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from keras_impl.backend import version_line
        print(version_line())
        parser.exit()


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage, then the error; here a bad command line costs one line, exit status 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bilstm", description="Bidirectional LSTM lab: oracle, parity, experiments, benchmarks. "
                           "Every command first prints one line on standard error: the backend (and how it was "
                           "chosen), device, dtype and versions.")
    parser.add_argument("--version", action=VersionAction,
                        help="print the versions of bilstm-lab, Keras and every installed backend, and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"keras_impl.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"keras_impl.commands.{module_name}":
                continue  # a command not written yet
            raise
        for name, help_text, add_arguments, run in module.COMMANDS:
            p = sub.add_parser(name, help=help_text, description=help_text)
            add_arguments(p)
            p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from keras_impl.threads import set_blas_thread_timeout
    set_blas_thread_timeout()  # before NumPy loads OpenBLAS, which reads it then (keras_impl/threads.py says why)
    from keras_impl.quiet import quiet_tensorflow
    quiet_tensorflow()  # TensorFlow's start-up lines and retracing notes off a command's output (errors still show)
    parser = build_parser()
    args = parser.parse_args(argv)
    from keras_impl.options import UsageError
    from keras_impl import interrupt
    try:
        with interrupt.guard():  # a Ctrl-C swallowed by a garbage-collection callback is raised again
            code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        # Whatever is still buffered would raise again at exit: stdout now points at devnull.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return CLOSED_PIPE_EXIT
    except UsageError as exc:  # every command's refusals: one line, exit status 2
        print(f"bilstm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # The machine, not the arguments: a disk that fills up or a folder made read-only during a run.
        # Every result file is written atomically, so what was finished is intact; --resume continues.
        if exc.errno not in WRITE_ERRORS:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"bilstm {args.command}: error: cannot write{where}: {exc.strerror}; finished results are kept "
              "(--resume continues)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
