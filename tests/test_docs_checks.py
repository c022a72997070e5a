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


# Where each new check points: the words a reviewer must change, in its bad example.
POINTS_AT = {
    "RL326": "100%", "RL327": "preview for 2h", "RL328": "until approved", "RL329": "bake",
    "RL330": "scale down after", "RL331": "probe", "RL332": "shadow", "RL409": "rolling", "RL410": "1.5.0",
    "RL411": 'related-items expects embedding 384 via header "x-caller" = "related-items" switch at preview',
    "RL519": ">", "RL520": "embedding",
    "RL521": 'query gpu_util "avg(DCGM_FI_DEV_GPU_UTIL{namespace=\\"recs\\"}) / 100"',
    "RL613": "5%", "RL614": "pause", "RL654": "email", "RL655": "country", "RL656": "user_ids",
}


@pytest.mark.parametrize("code", sorted(POINTS_AT))
def test_the_new_checks_point_at_what_to_change_and_say_how(code: str) -> None:
    (text,) = [t for kind, c, t in _blocks() if kind == "bad" and c == code]
    program = load_text(text, f"docs/checks.md#{code}-bad", root=ROOT)
    (d,) = [d for d in run_checks(program) if d.code == code]
    assert d.span is not None and d.span.line == d.span.end_line
    line = text.splitlines()[d.span.line - 1]
    assert line[d.span.col - 1:d.span.end_col - 1] == POINTS_AT[code], line
    assert d.help, "a check says how to fix what it finds"
