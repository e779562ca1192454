"""The one registry of layers: the oracle's kinds (reference/layers/registry.py) and the Keras layers verify
describes (keras_impl/verify/layers/) are the same set, and every list a user reads comes from it."""
import pytest

pytest.importorskip("keras")


def test_verify_describes_exactly_the_oracles_kinds():
    from keras_impl.verify.layers import DESCRIBE
    from reference.layers import KINDS
    assert set(DESCRIBE) == set(KINDS)


def test_every_described_kind_is_a_keras_layer_class():
    import keras
    from keras_impl.verify.layers import DESCRIBE
    missing = [kind for kind in DESCRIBE if not isinstance(getattr(keras.layers, kind, None), type)]
    assert missing == []


def test_the_refusal_lists_the_registry():
    from keras_impl.verify.load import refuse_layer
    from reference.layers import KINDS
    message = str(refuse_layer("x", "Lambda"))
    assert all(kind in message for kind in KINDS)


def _expanded(kinds: str) -> str:
    """A row's kinds with Keras's families written out: "MaxPooling1D/2D/3D" -> "MaxPooling1D MaxPooling2D ..."."""
    import re
    return re.sub(r"([A-Za-z]+?)(\d)D((?:/\dD)+)",
                  lambda m: " ".join(f"{m.group(1)}{d}D" for d in [m.group(2)] + re.findall(r"\d", m.group(3))),
                  kinds)


def test_the_docs_table_shows_every_kind_with_a_test_that_exists():
    import ast
    import re
    from pathlib import Path
    from keras_impl.verify.layers import DESCRIBE
    from keras_impl.verify.layers.table import rows
    root = Path(__file__).resolve().parents[2]
    shown = " ".join(_expanded(kinds) for _, kinds, *_ in rows())
    assert [kind for kind in DESCRIBE if not re.search(rf"(?<![A-Za-z]){kind}(?![A-Za-z0-9])", shown)] == []
    for *_, test in rows():
        path, name = test.split("::")
        tree = ast.parse((root / path).read_text())
        assert name.split("[")[0] in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, test


def test_docs_verify_holds_the_rendered_table():
    from pathlib import Path
    from keras_impl.verify.layers.table import render
    doc = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text()
    assert render() in doc, "docs/verify.md's layer table is stale: python -m keras_impl.verify.layers.table"
