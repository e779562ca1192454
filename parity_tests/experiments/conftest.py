"""The experiment commands' smallest runs, each made once a session and read by every test that checks it.

A run trains its models (a Keras import, a build and, on JAX, a compile each): tests that only read what one
run printed and wrote share it instead of training the same models again.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from parity_tests.conftest import BACKEND

# The smallest runs: two seeds (a paired interval needs two), a few updates. No --backend: the backend comes
# from KERAS_BACKEND (or keras.json), as a user's default run; summary.json must still name it.
SMALL = ["--seeds", "2", "--updates", "8", "--heldout", "6"]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path  # the run's --out
    titles: list[str] = field(default_factory=list)  # each loss figure's title, as the command drew it


def run_in_this_process(argv: list[str], out: Path) -> Run:
    """``bilstm ARGV --out OUT`` here, with KERAS_BACKEND set to this pass's backend and the loss figures' titles
    recorded."""
    from keras_impl.cli import main
    from keras_impl.experiments import summary as summary_module
    titles, draw = [], summary_module.loss_figure
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        patch.setenv("KERAS_BACKEND", BACKEND)
        patch.setattr(summary_module, "loss_figure",
                      lambda curves, title, *a, **k: (titles.append(title), draw(curves, title, *a, **k)))
        try:
            code = main([*argv, "--out", str(out)])
        except SystemExit as exc:  # argparse stops this way
            code = exc.code
    return Run(code, stdout.getvalue(), stderr.getvalue(), out, titles)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """``small_run(COMMAND, *EXTRA)``: the run of ``bilstm COMMAND SMALL EXTRA`` (a Run), made on first use."""
    runs: dict[tuple[str, ...], Run] = {}

    def run(command: str, *extra: str) -> Run:
        key = (command, *extra)
        if key not in runs:
            runs[key] = run_in_this_process([command, *SMALL, *extra], tmp_path_factory.mktemp(command) / "out")
        return runs[key]
    return run
