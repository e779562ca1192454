"""The import structure of the product, read from the source with ``ast`` (nothing here imports a framework).

Every import statement counts, those inside functions too (and ``importlib.import_module`` of a
literal name): an import deferred into a function still ties two modules together.

- No import cycles among the product's modules (reference, keras_impl, benchmarks).
- The oracle (reference) imports nothing but NumPy and the standard library.
- No product module imports the test suite (parity_tests).
- Imports point down only: the command line (keras_impl.cli, keras_impl.commands) -> benchmarks /
  keras_impl.experiments / keras_impl.parity / keras_impl.export / keras_impl.verify -> the Keras core (the rest
  of keras_impl) -> reference. A module may import its own layer or a lower one, never a higher one.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("reference", "keras_impl", "benchmarks")
PACKAGES = PRODUCT + ("parity_tests",)


def find_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path) -> dict[str, int]:
    """Every module name ``name`` imports (absolute, relative imports resolved) -> line of its first import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.setdefault(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # "from a import b": b may be a module a.b or a name in a
                out.setdefault(f"{base}.{alias.name}" if base else alias.name, node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.setdefault(node.args[0].value, node.lineno)
    return out


def project_module(target: str, known: dict[str, Path]) -> str | None:
    """The project module an imported name loads (``a.b.name`` -> ``a.b``), or None outside the project."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    known = find_modules(root)
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        edges: dict[str, int] = {}
        for target, line in imported_names(name, path).items():
            module = project_module(target, known)
            if module is not None and module != name:
                edges.setdefault(module, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


CLI, FEATURES, CORE, ORACLE = 3, 2, 1, 0
LAYER_NAMES = {CLI: "command line", FEATURES: "benchmarks/experiments/parity/export/verify", CORE: "Keras core", ORACLE: "oracle"}


def layer(module: str) -> int:
    if module == "keras_impl.cli" or module.startswith("keras_impl.commands"):
        return CLI
    if module.split(".")[0] == "benchmarks" or module.startswith(("keras_impl.experiments", "keras_impl.parity",
                                                                   "keras_impl.export", "keras_impl.verify")):
        return FEATURES
    if module.split(".")[0] == "keras_impl":
        return CORE
    assert module.split(".")[0] == "reference", module
    return ORACLE


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph()


def product(graph: dict) -> dict:
    return {m: {t: line for t, line in edges.items() if t.split(".")[0] in PRODUCT}
            for m, edges in graph.items() if m.split(".")[0] in PRODUCT}


# ---------------------------------------------------------------- the reader itself, on made-up sources


def test_the_reader_sees_function_level_relative_and_dynamic_imports(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "reference").mkdir()
    for package in ("keras_impl", "parity_tests"):
        (tmp_path / package).mkdir()
    (tmp_path / "benchmarks" / "__init__.py").write_text("")
    (tmp_path / "benchmarks" / "a.py").write_text("def f():\n    from benchmarks import b\n")
    (tmp_path / "benchmarks" / "b.py").write_text("from .c import name\n")
    (tmp_path / "benchmarks" / "c.py").write_text("import importlib\nimportlib.import_module('benchmarks.a')\nname = 1\n")
    (tmp_path / "reference" / "__init__.py").write_text("import numpy\n")
    g = import_graph(tmp_path)
    assert g["benchmarks.a"] == {"benchmarks.b": 2}
    assert g["benchmarks.b"] == {"benchmarks.c": 1}
    assert g["benchmarks.c"] == {"benchmarks.a": 2}
    assert cycles(g) == [["benchmarks.a", "benchmarks.b", "benchmarks.c"]]
    assert g["reference"] == {}


# ---------------------------------------------------------------- the product


def test_no_import_cycles_among_product_modules(graph):
    found = cycles(product(graph))
    assert found == [], f"import cycles: {found}"


def test_no_import_cycles_in_the_test_suite_either(graph):
    assert cycles(graph) == []


def test_the_oracle_imports_only_numpy_and_the_standard_library():
    known = find_modules()
    outside = {}
    for name, path in known.items():
        if name.split(".")[0] != "reference":
            continue
        for target, line in imported_names(name, path).items():
            top = target.split(".")[0]
            if top not in ("reference", "numpy", "__future__") and top not in sys.stdlib_module_names:
                outside[f"{name}:{line}"] = target
    assert outside == {}


def test_no_product_module_imports_the_test_suite(graph):
    offenders = {f"{m}:{line}": t for m, edges in graph.items() if m.split(".")[0] in PRODUCT
                 for t, line in edges.items() if t.split(".")[0] == "parity_tests"}
    assert offenders == {}


def test_imports_point_down_only(graph):
    upward = [f"{m} ({LAYER_NAMES[layer(m)]}) imports {t} ({LAYER_NAMES[layer(t)]}) at line {line}"
              for m, edges in product(graph).items() for t, line in edges.items() if layer(t) > layer(m)]
    assert upward == []


def test_every_product_module_has_a_layer(graph):
    layers = {m: layer(m) for m in product(graph)}
    assert {ORACLE, CORE, FEATURES, CLI} <= set(layers.values())
    assert layer("keras_impl.commands.bench") == CLI and layer("benchmarks.train_speed") == FEATURES
    assert layer("keras_impl.files") == CORE and layer("reference.lstm") == ORACLE
