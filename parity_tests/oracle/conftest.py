"""The oracle's own tests: this folder is their marker. NumPy, pytest and hypothesis alone, no framework.

`make test-oracle` runs this folder in an environment that holds no framework; the Keras passes leave it
out (they run the rest of ``parity_tests/``). Every test here is marked ``oracle`` so that ``-m oracle``
selects it and the root conftest knows no framework is needed; a file placed here that imports a framework
fails in that environment, and ``parity_tests/project/test_oracle_imports.py`` proves that collecting this
folder loads none even where all are installed.
"""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.oracle)
