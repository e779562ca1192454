"""The two checks that need ``bilstm verify`` of Keras 2's functional_concat_masked.h5 in a fresh interpreter,
run in one interpreter, one after the other: a fresh process each cost a Keras import and a load each.

The plain file goes first, so that it still meets Keras's name counter at zero, as a user's process does
(test_verify_keras2: the loader's "concatenate is used 2 times" failure shows only then). The copy whose
Concatenate is renamed concatenate_1000000000000 goes second (test_verify_hostile): its check is that the work
does not grow with the number, and a counter a few steps past zero is as far from 10**12 as one at zero.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import h5py
import pytest

from parity_tests.conftest import bilstm_in_one_fresh_process

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras2"
ROOT = Path(__file__).resolve().parents[2]
HUGE_CONCATENATE = "concatenate_1000000000000"
# Each verify had 240 s (the renamed copy) and 300 s (the plain file) in a process of its own.
FRESH_TIMEOUT_S = 540


@pytest.fixture(scope="session")
def fresh_concat_verifies(tmp_path_factory, backend) -> dict:
    """``{"plain": result, "renamed": result}`` (``bilstm_in_one_fresh_process``'s dicts), or
    ``{"timed_out": True}`` where the interpreter ran past FRESH_TIMEOUT_S."""
    renamed = tmp_path_factory.mktemp("concat_fresh") / "renamed.h5"
    shutil.copyfile(FIXTURES / "functional_concat_masked.h5", renamed)
    with h5py.File(renamed, "r+") as f:
        config = str(f.attrs["model_config"])
        assert '"concatenate"' in config
        f.attrs["model_config"] = config.replace('"concatenate"', f'"{HUGE_CONCATENATE}"')
    argvs = [["verify", FIXTURES / "functional_concat_masked.h5", "--backend", backend],
             ["verify", renamed, "--backend", backend]]
    try:
        plain, renamed_run = bilstm_in_one_fresh_process(argvs, cwd=ROOT, timeout=FRESH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"timed_out": True}
    return {"plain": plain, "renamed": renamed_run}
