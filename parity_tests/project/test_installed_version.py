"""The one versions helper, ``keras_impl.backend.installed_version``: what it reads, and that it loads no framework.

The benchmarks' stand-in and the raw-framework baselines record versions with it; a stand-in
sweep must run without importing any framework, so neither the helper's module nor theirs may.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_impl.backend import installed_version

pytestmark = pytest.mark.backend_independent  # reads package metadata only

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("keras", "tensorflow", "jax", "jaxlib", "torch")


def test_installed_version_reads_the_metadata_and_none_when_absent():
    assert installed_version("numpy") == np.__version__
    assert installed_version("no-such-distribution-bilstm-lab") is None


def test_the_product_defines_the_versions_helper_once():
    """No module keeps its own copy (three ``_version`` functions were once the same function)."""
    copies = []
    for path in sorted(p for package in ("reference", "keras_impl", "benchmarks") for p in (ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(call, ast.Attribute) and call.attr == "version"
                    and isinstance(call.value, ast.Attribute) and call.value.attr == "metadata"
                    for call in ast.walk(node)):
                copies.append(f"{path.relative_to(ROOT)}::{node.name}")
    assert copies == ["keras_impl/backend.py::installed_version"]


SCRIPT = r"""
import json, sys
from benchmarks import baselines, stand_in
from benchmarks.cases import Case
case = Case("keras", "jax", "cpu", "%s", 2, 3, 4)
print(json.dumps({"stand_in": stand_in.context(case), "baselines": baselines.context("torch"),
                  "imported": [m for m in %r if m in sys.modules]}))
"""


def test_benchmark_contexts_record_versions_without_importing_a_framework():
    from benchmarks.cases import PATHS
    proc = subprocess.run([sys.executable, "-c", SCRIPT % (PATHS[0], FRAMEWORKS)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["imported"] == [], f"recording versions imported {report['imported']}"
    assert report["stand_in"]["keras"] == installed_version("keras") and report["stand_in"]["stand_in"] is True
    assert report["stand_in"]["jax"] == installed_version("jax")
    assert report["baselines"]["torch"] == installed_version("torch") and report["baselines"]["keras"] is None
    assert report["stand_in"]["numpy"] == report["baselines"]["numpy"] == np.__version__
