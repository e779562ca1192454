"""docs/verify.md's table of layers, generated from the one registry: every family's ``ROWS``.

A row is ``(kinds shown, what is supported, what is refused by name, the test that checks it)``. Each kind of
``DESCRIBE`` is shown in exactly one row; the test is a ``path::name`` that exists (both held by
``parity_tests/verify/test_layer_registry.py``). ``python -m keras_impl.verify.layers.table`` rewrites the
table between its markers in docs/verify.md; the test fails while the file differs from what this renders.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import FAMILIES

BEGIN = "<!-- the layer table: generated from keras_impl/verify/layers (python -m keras_impl.verify.layers.table) -->"
END = "<!-- end of the layer table -->"


def rows() -> list[tuple[str, str, str, str, str]]:
    """``(family, kinds, supported, refused, test)`` for every row of every family, in registry order."""
    return [(family.__name__.rsplit(".", 1)[-1], *row) for family in FAMILIES for row in getattr(family, "ROWS", [])]


def render() -> str:
    lines = [BEGIN, "", "| Layer | Family | Supported | Refused by name | Checked by |", "| --- | --- | --- | --- | --- |"]
    for family, kinds, supported, refused, test in rows():
        lines.append(f"| {kinds} | {family} | {supported} | {refused} | `{test.split('::')[-1]}` "
                     f"({test.split('::')[0].removeprefix('parity_tests/')}) |")
    return "\n".join(lines + ["", END])


def rewrite(doc: Path) -> bool:
    """Put the rendered table between the markers of ``doc``; True when the file changed."""
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: the table's markers are missing")
    head, rest = text.split(BEGIN, 1)
    new = head + render() + rest.split(END, 1)[1]
    if new != text:
        doc.write_text(new)
    return new != text


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/verify.md")
    print(f"{path}: {'rewritten' if rewrite(path) else 'already current'}")
