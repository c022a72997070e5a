"""docs/targets.md stays true: its YAML excerpts are in the golden files, its diagnostics table lists every code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "targets.md").read_text(encoding="utf-8")
EXCERPT = re.compile(r"```yaml\n# from (tests/golden/\S+)\n(.*?)```", re.S)


@pytest.mark.parametrize(("path", "text"), EXCERPT.findall(DOC), ids=lambda v: str(v)[:40])
def test_yaml_excerpts_are_what_the_compiler_writes(path: str, text: str) -> None:
    assert text in (ROOT / path).read_text(encoding="utf-8")


def test_the_exporter_example_is_python() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert blocks
    for block in blocks:
        ast.parse(block)


def test_every_target_code_is_in_the_table_and_every_row_is_used() -> None:
    table = set(re.findall(r"^\| (RL7\d\d)", DOC, re.M)) | set(re.findall(r"^\| RL7\d\d, (RL7\d\d)", DOC, re.M))
    sources = [*(ROOT / "targets").glob("*.py"), ROOT / "rolloutlang" / "evaluate.py", ROOT / "rolloutlang" / "cli.py"]
    emitted = {c for p in sources for c in re.findall(r"\b(RL7\d\d)\b", p.read_text(encoding="utf-8"))}
    assert sorted(emitted - table) == []
    assert sorted(table - emitted) == []
