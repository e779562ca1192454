"""What importing a package loads, checked in a fresh interpreter (this one already holds Keras).

The oracle (``reference``) and the layout converter depend on NumPy alone; the
``keras_impl`` package and the ``bilstm`` command line import Keras only when a
command runs, so that ``bilstm --backend jax`` can still set ``KERAS_BACKEND``.
The oracle's own tests (marker ``oracle``) load no framework either: they run
with NumPy, pytest and hypothesis alone (``make test-oracle``).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # fresh interpreters beside every framework: once a make test-keras run

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("keras", "tensorflow", "jax", "jaxlib", "torch")


def modules_loaded_by(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the framework modules it left in ``sys.modules``."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        roots = {{name.split(".")[0] for name in sys.modules}}
        print(json.dumps(sorted(roots & set({FRAMEWORKS!r}))))
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


CASES = {
    "reference_forward_pass": """
        import numpy as np
        import reference
        spec = reference.ModelSpec(timesteps=4, features=3, units=(5, 2), mask_value=0.0)
        x = np.random.default_rng(0).normal(size=(2, 4, 3))
        p = reference.model_forward(spec, reference.random_weights(spec, np.random.default_rng(1)), x)
        assert p.shape == (2, 4, 1)
    """,
    "reference_submodules": """
        import reference.lstm, reference.bidirectional, reference.model, reference.spec, reference._checks
    """,
    "convert": """
        import numpy as np
        import reference
        from keras_impl import convert
        spec = reference.ModelSpec(timesteps=4, features=3, units=5)
        recurrent, _ = convert.spec_recurrent_weights(spec, reference.random_weights(spec, np.random.default_rng(1)))
        convert.torch_to_keras(convert.keras_to_torch(recurrent))
        convert.onnx_to_keras(*convert.keras_to_onnx(recurrent)[0])
    """,
    "keras_impl_package": """
        import keras_impl, keras_impl.backend
        keras_impl.backend.installed_backends()
    """,
    "cli_parser": """
        import keras_impl.cli
        keras_impl.cli.build_parser()
    """,
}


@pytest.mark.parametrize("name", list(CASES))
def test_import_loads_no_framework(name):
    assert modules_loaded_by(CASES[name]) == []


def test_probe_detects_a_framework_import():
    """The probe itself works: a framework module in sys.modules is seen (otherwise the tests above prove nothing).

    A stand-in module, not a real import: importing Keras costs seconds and proves no more about the probe.
    """
    assert modules_loaded_by("import sys, types; sys.modules['torch.nn'] = types.ModuleType('torch.nn')") == ["torch"]


# The oracle's own tests live in one folder, parity_tests/oracle/, which `make test-oracle` runs in an
# environment with NumPy, pytest and hypothesis alone; the folder is their marker (its conftest marks each
# `oracle`). No test elsewhere may claim to be an oracle test: it would not run framework-free.
ORACLE_FOLDER = ROOT / "parity_tests" / "oracle"


def test_the_oracle_tests_are_the_oracle_folder():
    assert sorted(ORACLE_FOLDER.glob("test_*.py")), "no oracle test file"
    elsewhere = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "parity_tests").rglob("test_*.py"))
                 if not path.is_relative_to(ORACLE_FOLDER) and re.search(r"pytest\.mark\.oracle\b", path.read_text())]
    assert elsewhere == [], f"marked oracle outside parity_tests/oracle/ (they would not run framework-free): {elsewhere}"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^ORACLE_TESTS\s*:?=\s*parity_tests/oracle\s*$", makefile, re.MULTILINE), \
        "make test-oracle does not run the oracle folder"


def test_oracle_test_files_load_no_framework():
    """Collecting the oracle's tests (conftests included) imports no framework, even where all are installed.

    Collection is where a module-level import would load one; the framework-free run of `make test-oracle`
    catches an import inside a test body (it fails there).
    """
    loaded = modules_loaded_by(f"""
        import pytest
        code = pytest.main(["-q", "--collect-only", "-p", "no:cacheprovider", {str(ORACLE_FOLDER)!r}])
        assert code == 0, f"collection failed: pytest exit status {{code}}"
    """)
    assert loaded == []
def _oracle_modules():
    import ast
    for path in sorted((ROOT / "reference").rglob("*.py")):
        yield path.relative_to(ROOT / "reference").as_posix(), ast.parse(path.read_text())


def test_the_oracle_defines_each_word_and_each_activation_once():
    """Issue 16: the vocabulary in reference/vocabulary.py alone, one activation table (no other module
    dispatches on an activation's name), one function of each name that means one thing."""
    import ast
    words = {"CELLS", "MERGE_MODES", "DIRECTIONS", "INITIAL_OUTPUTS"}
    defined, dispatching, functions = {}, set(), {}
    for name, tree in _oracle_modules():
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in words:
                        defined.setdefault(target.id, []).append(name)
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in ("sigmoid", "layer_forward", "activate"):
                functions.setdefault(node.name, []).append(name)
        docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        if any(isinstance(n, ast.Constant) and n.value in ("relu", "hard_sigmoid") and id(n) not in docstrings
               for n in ast.walk(tree)):
            dispatching.add(name)
    assert defined == {word: ["vocabulary.py"] for word in words}
    assert dispatching == {"activations.py"}
    assert functions == {"sigmoid": ["activations.py"], "activate": ["activations.py"], "layer_forward": ["layers/graph.py"]}
