"""The documentation's commands work: every `bilstm ...` line parses, every `make X` target exists.

Read from README.md and docs/*.md: fenced and indented code blocks, and inline
code spans that are a whole command (synopses with `[`, `|` or `...` are prose,
not commands). `bilstm` lines go through the command's own parser
(`keras_impl.cli.build_parser`, which imports no Keras), so a documented option
that a subcommand does not take fails here. Links and test names the docs cite
must exist too.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from keras_impl.cli import build_parser

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SYNOPSIS_MARKS = ("[", "|", "...", "<")  # an inline span holding one is a synopsis, not a command


def code_lines(text: str) -> list[str]:
    """The lines of fenced and indented code blocks, and the inline code spans, of a Markdown text."""
    lines, fenced, indented, previous_blank = [], False, False, True
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            lines.append(line)
        else:
            indented = line.startswith("    ") and (indented or previous_blank)  # a block starts after a blank line
            if indented:
                lines.append(line)
            else:
                lines.extend(span for span in re.findall(r"`([^`]+)`", line)
                             if not any(mark in span for mark in SYNOPSIS_MARKS))
        previous_blank = not line.strip()
    return lines


def commands(program: str) -> list[tuple[str, list[str]]]:
    """(document, arguments after `program`) for every documented call of `program`.

    A call starts its line, after any `NAME=value` settings and a path (`.venv/bin/bilstm`).
    """
    found = []
    pattern = re.compile(rf"^\s*(?:[A-Z_]+=\S*\s+)*(?:\S*/)?{re.escape(program)}\s+(.*)$")
    for doc in DOCS:
        for line in code_lines(doc.read_text()):
            match = pattern.match(line)
            if match is None or match.group(1).split()[0].endswith(":"):
                continue  # not a call, or the program's own output (`bilstm parity: backend torch, ...`)
            command = re.split(r"\s+#|\s*(?:&&|\|\||;|\|)\s*", match.group(1))[0]  # no comment, no next command
            found.append((doc.name, shlex.split(command)))
    return found


BILSTM = commands("bilstm")
MAKE = commands("make")


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.MULTILINE))


def makefile_variables() -> set[str]:
    return set(re.findall(r"^([A-Z_]+)\s*[?:]?=", (ROOT / "Makefile").read_text(), re.MULTILINE))


def test_the_docs_show_commands():
    """The extraction finds what the README shows (otherwise the tests below prove nothing)."""
    assert ("README.md", ["parity", "--quick", "--backend", "jax"]) in BILSTM
    assert ("README.md", ["test"]) in MAKE and ("README.md", ["reproduce"]) in MAKE


@pytest.mark.parametrize("doc, argv", BILSTM, ids=[f"{d}:{' '.join(a)}" for d, a in BILSTM])
def test_documented_bilstm_command_parses(doc, argv, capsys):
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0 and ("--help" in argv or argv == ["--version"]):
            return  # the help or the versions, printed
        pytest.fail(f"{doc}: `bilstm {' '.join(argv)}` is refused by the parser (status {exc.code}): "
                    f"{capsys.readouterr().err.strip()}")


def test_the_parser_check_can_fail(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--layers", "2"])  # demo has one recurrent layer: no --layers


@pytest.mark.parametrize("doc, argv", MAKE, ids=[f"{d}:{' '.join(a)}" for d, a in MAKE])
def test_documented_make_target_exists(doc, argv):
    targets = [a for a in argv if "=" not in a]
    assert targets, f"{doc}: `make {' '.join(argv)}` names no target"
    assert set(targets) <= makefile_targets(), f"{doc}: no such Makefile target in `make {' '.join(argv)}`"
    variables = {a.split("=", 1)[0] for a in argv if "=" in a}
    assert variables <= makefile_variables(), f"{doc}: the Makefile reads no such variable in `make {' '.join(argv)}`"


def links(doc: Path) -> list[str]:
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text())
            if not re.match(r"[a-z]+:", target) and not target.startswith("#")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_relative_links_point_at_files_in_the_repository(doc):
    for target in links(doc):
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{doc.name} links to {target}, which does not exist"
        assert path.is_relative_to(ROOT), f"{doc.name} links to {target}, outside the repository"


def cited_tests() -> list[tuple[str, str, str]]:
    """(document, test file, test name) for every `parity_tests/<file>.py::<test>` the docs cite (`::name` after one: same file)."""
    cited = []
    for doc in DOCS:
        last_file = None
        for span in re.findall(r"`([^`]+)`", doc.read_text()):
            match = re.fullmatch(r"(parity_tests/(?:\w+/)?test_\w+\.py)?::(test_\w+)", span)
            if match and (match.group(1) or last_file):
                last_file = match.group(1) or last_file
                cited.append((doc.name, last_file, match.group(2)))
    return cited


@pytest.mark.parametrize("doc, path, name", cited_tests(), ids=[f"{d}:{p}::{n}" for d, p, n in cited_tests()])
def test_cited_tests_exist(doc, path, name):
    source = (ROOT / path).read_text()
    assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{doc} cites {path}::{name}, which does not exist"


def documented_parity_counts() -> list[tuple[str, list[str], int]]:
    """(document, arguments, N) for every `bilstm parity ...  # ... N checks` line of a code block."""
    found = []
    for doc in DOCS:
        for line in code_lines(doc.read_text()):
            match = re.match(r"^\s*(?:[A-Z_]+=\S*\s+)*(?:\S*/)?bilstm\s+(parity\b[^#]*)#.*?\b(\d+) checks", line)
            if match:
                found.append((doc.name, shlex.split(match.group(1)), int(match.group(2))))
    return found


@pytest.mark.parametrize("doc, argv, claimed", documented_parity_counts(),
                         ids=[f"{d}:{' '.join(a)}" for d, a, _ in documented_parity_counts()])
def test_documented_parity_check_counts(doc, argv, claimed, backend, monkeypatch):
    """The number of checks a documented `bilstm parity` line announces is the number the command runs."""
    import numpy as np

    from keras_impl.parity import checks, harness, training_checks

    def pair(*args, **kwargs):  # every comparison answers at once: only the rows are counted
        return {"x": np.ones(2)}, {"x": np.ones(2)}
    for module, name in ((harness, "layer_parity"), (harness, "model_parity"),
                         (training_checks, "gradient_parity"), (training_checks, "trajectory_parity")):
        monkeypatch.setattr(module, name, pair)
    args = build_parser().parse_args(argv)
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    rows = checks.run_checks(dtypes, quick=args.quick, cells=checks.cells_of(args.cell))
    assert len(rows) == claimed, f"{doc}: `bilstm {' '.join(argv)}`"


KERAS_SOURCE_CITATION = re.compile(
    r"`((?:activations|backend|dtype_policies|layers|losses|optimizers|trainers)/[\w/]+\.py)`([^`]*)")


def keras_source_citations() -> list[tuple[str, list[int]]]:
    """(path under keras/src/, the line numbers cited after it) in docs/keras-behaviour.md."""
    text = (ROOT / "docs" / "keras-behaviour.md").read_text()
    return [(path, [int(n) for pair in re.findall(r"\bL(\d+)(?:-(\d+))?", after) for n in pair if n])
            for path, after in KERAS_SOURCE_CITATION.findall(text)]


def test_cited_keras_source_lines_exist_in_the_pinned_keras():
    """Each Keras file the behaviour doc cites exists in the installed Keras, and each line number is in it.

    (The lines' content was read by hand against Keras 3.15.1; this keeps paths and numbers from going stale.)
    """
    import importlib.metadata
    import importlib.util
    assert importlib.metadata.version("keras") == "3.15.1", "the doc's line numbers are those of Keras 3.15.1"
    keras_src = Path(importlib.util.find_spec("keras").submodule_search_locations[0]) / "src"  # no import of Keras
    citations = keras_source_citations()
    assert len(citations) > 20 and any(lines for _, lines in citations)
    for path, lines in citations:
        source = keras_src / path
        assert source.is_file(), f"docs/keras-behaviour.md cites keras/src/{path}, which Keras 3.15.1 lacks"
        length = len(source.read_text().splitlines())
        assert all(0 < n <= length for n in lines), f"keras/src/{path} has {length} lines; cited: {lines}"
