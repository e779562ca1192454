"""Help that agrees with itself: every command's options come from one table (``keras_impl/options.py``).

Walks the parser ``bilstm`` builds (no Keras imported) and every subcommand's options: ``--backend`` has one
choice list in one order and one help text, ``--json`` takes a value everywhere (PATH, or - for standard
output), and every option with a default says it in its help.
"""
from __future__ import annotations

import argparse

import pytest

from keras_impl.backend import BACKENDS
from keras_impl.cli import build_parser
from keras_impl.options import BACKEND_HELP, BACKENDS_HELP, JSON_METAVAR

pytestmark = pytest.mark.backend_independent  # the parser imports no Keras: once a make test-keras run


def subcommands(parser: argparse.ArgumentParser, prefix: str = "bilstm") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its full name, ``bilstm bench merge`` included."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix} {name}"] = sub
                found.update(subcommands(sub, f"{prefix} {name}"))
    return found


COMMANDS = subcommands(build_parser())
TOP_LEVEL = [name for name in COMMANDS if name.count(" ") == 1]


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_command_is_walked():
    assert {"bilstm parity", "bilstm info", "bilstm verify", "bilstm export", "bilstm bench", "bilstm bench merge",
            "bilstm demo", "bilstm compare", "bilstm merge-modes", "bilstm reproduce"} <= set(COMMANDS)


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_backend_is_one_option_everywhere(name):
    """Every command takes --backend, with the same choices in the same order and its default worded one way."""
    backend = option(COMMANDS[name], "--backend")
    assert backend is not None, f"{name} has no --backend"
    assert tuple(backend.choices) == BACKENDS, (name, backend.choices)
    # One help text; bench alone times several backends in one call (repeatable, default every installed one).
    assert backend.help == (BACKENDS_HELP if isinstance(backend, argparse._AppendAction) else BACKEND_HELP), name
    assert name == "bilstm bench" or "default: $KERAS_BACKEND, else Keras's own choice" in backend.help


@pytest.mark.parametrize("name", [n for n in COMMANDS if option(COMMANDS[n], "--json") is not None])
def test_json_takes_a_path_or_dash_everywhere(name):
    json_option = option(COMMANDS[name], "--json")
    assert isinstance(json_option, argparse._StoreAction) and json_option.nargs is None, name  # a value, not a flag
    assert json_option.metavar == JSON_METAVAR and "standard output" in json_option.help, name


def test_json_is_found_in_verify_and_export():
    assert {n for n in COMMANDS if option(COMMANDS[n], "--json")} >= {"bilstm verify", "bilstm export"}


def defaults_not_shown() -> list[str]:
    missing = []
    for name, parser in COMMANDS.items():
        for action in parser._actions:
            if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or action.help is None:
                continue
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            default = ",".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else str(action.default)
            if f"default {default}" not in action.help and f"default: {default}" not in action.help:
                missing.append(f"{name} {action.option_strings[-1]} (default {default!r}): {action.help!r}")
    return missing


def test_every_default_is_shown_in_its_help():
    assert defaults_not_shown() == []


@pytest.mark.parametrize("name", [n for n in COMMANDS if option(COMMANDS[n], "--out") is not None])
def test_out_says_its_default(name):
    out = option(COMMANDS[name], "--out")
    assert out.required or "(default " in out.help, (name, out.help)


@pytest.mark.parametrize("name", [n for n in COMMANDS if option(COMMANDS[n], "--mode") is not None])
def test_mode_says_its_default(name):
    assert "(default fast)" in option(COMMANDS[name], "--mode").help
