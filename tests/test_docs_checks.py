"""docs/checks.md is tested like the language docs: each bad example must report
its code, each fixed example must not, and every code the checks can emit is
documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolloutlang.checks import run_checks
from rolloutlang.loader import load_text

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "checks.md"
BLOCK = re.compile(r"```rollout (bad|fixed)=(RL\d{3})\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def _codes(text: str, name: str) -> list[str]:
    """The codes a spec reports, as `rollout check` does: findings waived in the spec (`# waive`) left out."""
    program = load_text(text, name, root=ROOT)
    found = list(program.diagnostics)
    if program.main is not None and not program.has_errors:
        found += run_checks(program)
    return [d.code for d in program.waive(found) if d.suppression is None]


@pytest.mark.parametrize(("kind", "code", "text"), _blocks(), ids=lambda v: v if len(str(v)) < 10 else "")
def test_doc_example(kind: str, code: str, text: str) -> None:
    codes = _codes(text, f"docs/checks.md#{code}-{kind}")
    semantic = sorted({c for c in codes if c[2] in "34568"})
    if kind == "bad":
        # Each bad example shows one mistake: its own code and no other check's.
        assert semantic == [code], f"expected only {code}; got {codes}"
    else:
        assert semantic == [], f"the fixed example still reports {semantic}"
        assert not [c for c in codes if c[2] in "012"], codes


def test_every_documented_code_has_both_examples() -> None:
    blocks = _blocks()
    headings = re.findall(r"^### (RL\d{3})\b", DOC.read_text(encoding="utf-8"), flags=re.M)
    assert len(headings) == len(set(headings)), "a code is documented twice"
    for code in headings:
        kinds = {k for k, c, _ in blocks if c == code}
        assert kinds == {"bad", "fixed"}, f"{code} needs a bad and a fixed example"


def test_every_check_code_in_source_is_documented() -> None:
    documented = set(re.findall(r"^### (RL\d{3})\b", DOC.read_text(encoding="utf-8"), flags=re.M))
    emitted: set[str] = set()
    for path in sorted((ROOT / "rolloutlang" / "checks").glob("*.py")):
        emitted |= set(re.findall(r"\"(RL[3-68]\d{2})\"", path.read_text(encoding="utf-8")))
    assert sorted(emitted - documented) == []
