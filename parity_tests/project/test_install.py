"""What a wheel of the project holds: every package of the product, not its test suite.

`make test-wheel` builds the wheel, installs it outside the source tree and runs
`bilstm` from there (minutes). These checks are the fast half: the package list
that pyproject.toml's discovery gives, without building anything. (Before,
pyproject.toml named four packages by hand; keras_impl.commands, .experiments and
.parity were left out, and an installed `bilstm` crashed.)
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import setuptools

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("reference", "keras_impl", "benchmarks")


def discovered_packages() -> set[str]:
    """The packages setuptools puts in the wheel, by pyproject.toml's [tool.setuptools.packages.find]."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find.get("namespaces") is False, "folders without __init__.py would become packages (data, scripts)"
    return set(setuptools.find_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ())))


def code_folders() -> set[str]:
    """Every folder of the product that holds Python code, as a dotted name."""
    return {".".join(path.parent.relative_to(ROOT).parts)
            for top in PRODUCT for path in (ROOT / top).rglob("*.py") if "__pycache__" not in path.parts}


def test_every_code_folder_of_the_product_is_a_package():
    missing = sorted(name for name in code_folders() if not (ROOT / name.replace(".", "/") / "__init__.py").exists())
    assert not missing, f"no __init__.py (the wheel would leave the code out): {missing}"


def test_the_wheel_takes_every_product_package():
    assert {"keras_impl.commands", "keras_impl.experiments", "keras_impl.parity"} <= code_folders()
    assert discovered_packages() == code_folders()


def test_the_wheel_leaves_the_test_suite_out():
    assert not {name for name in discovered_packages() if name.split(".")[0] == "parity_tests"}

