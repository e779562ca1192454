"""README.md and docs/ speak to users: no development bookkeeping ("still owed", "issue 9 sketched...",
"this session", "moved from the README"), and no test counts in the README (a count goes stale at the next
test). docs/testing.md, the contributors' page, may count tests."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.backend_independent

DEVELOPMENT_HISTORY = [r"\bstill owed\b", r"\bissues? #?\d+", r"\bsessions?\b", r"\bmoved from the README\b",
                       r"\bso far\b", r"\bused to\b"]
TEST_COUNT = r"\b\d[\d,]* (tests|test cases)\b|\b\d[\d,]* passed\b"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def offending_lines(text: str, patterns: list[str]) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if any(re.search(p, line, re.IGNORECASE) for p in patterns)]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_development_history_in_user_facing_text(page):
    found = offending_lines(page.read_text(encoding="utf-8"), DEVELOPMENT_HISTORY)
    assert not found, f"{page.name} speaks of the project's history, not to its users: {found}"


def test_no_test_counts_in_the_readme():
    found = offending_lines((ROOT / "README.md").read_text(encoding="utf-8"), [TEST_COUNT])
    assert not found, found


def test_the_patterns_catch_what_they_name():
    """The check itself: each phrase it was written for is caught, InferenceSession is not."""
    for line in ("GPU results are still owed", "issue 9 sketched `True`", "measured in this session",
                 "## Measured figures (moved from the README)"):
        assert offending_lines(line, DEVELOPMENT_HISTORY) == [line]
    assert offending_lines("`InferenceSession`, `CPUExecutionProvider`", DEVELOPMENT_HISTORY) == []
    assert offending_lines("1,234 tests pass", [TEST_COUNT])
