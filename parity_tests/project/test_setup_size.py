"""A set-up the size of the job (Makefile): `make reproduce` installs only its backend's extra into .venv, and
`make venv` / `make test` add the full set to that same environment. Read from `make -n` (what make would run,
nothing run), into a .venv path that does not exist, so each step of a fresh clone's set-up is listed.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.backend_independent,
              pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")]


def planned(target: str, venv: Path, **variables) -> list[str]:
    done = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={venv}",
                           *(f"{k}={v}" for k, v in variables.items())],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def installed_extras(lines: list[str]) -> list[str]:
    """The extras of each `pip install -e ".[...]"` line, in order."""
    return [m.group(1) for line in lines if "pip install" in line
            for m in [re.search(r'-e "?\.\[([^\]]*)\]', line)] if m]


@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_reproduce_installs_its_backend_extra_alone(tmp_path, backend):
    """It once installed every backend and every export runtime (3.1 GB) to run one JAX experiment."""
    lines = planned("reproduce", tmp_path / "venv", BACKEND=backend)
    assert installed_extras(lines) == [backend]
    assert any(f"bilstm reproduce --backend {backend}" in line for line in lines)


def test_the_full_set_up_goes_into_the_same_environment_and_covers_reproduce(tmp_path):
    venv = tmp_path / "venv"
    lines = planned("venv", venv)
    assert installed_extras(lines) == ["all,export,test"]
    assert any(line.startswith(f"python3 -m venv {venv}") for line in lines)
    # the full set holds every backend's extra: a later make reproduce installs nothing more
    touched = " ".join(line for line in lines if line.startswith("touch "))
    assert all(f"{venv}/.installed-{b}" in touched for b in ("tensorflow", "jax", "torch"))


def test_make_test_sets_up_the_full_environment():
    """make test's own prerequisites (a dry run of make test would start its recursive make): venv first."""
    rule = re.search(r"^test:([^\n]*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert rule and "venv" in rule.group(1).split()
