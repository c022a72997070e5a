"""Findings carry a logical IR path that survives reformatting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolloutlang.cli import main
from rolloutlang.irpath import ir_path
from rolloutlang.loader import load_text
from rolloutlang.source import Span

SPEC = """rollout r {
  service s
  model stable m 1.0.0 @ sha256:1111111111111111111111111111111111111111111111111111111111111111
  model candidate m 1.1.0 @ latest
  signature { in a: int64  out b: float32 }
  canary {
    5% for 1h
    2% for 1h
    100%
  }
  gate e: error rate < 1% every 1m
  on e fail: rollback now
}
"""


def test_paths_name_the_deepest_node() -> None:
    program = load_text(SPEC, "spec.rollout")
    assert program.main is not None
    file_ir = program.main
    stage = file_ir.rollouts[0].strategy
    assert stage is not None
    at = Span(file="spec.rollout", line=8, col=5, end_line=8, end_col=7)
    assert ir_path(file_ir, at) == "rollouts[0].strategy.stages[1]"
    pin = Span(file="spec.rollout", line=4, col=29, end_line=4, end_col=35)
    assert ir_path(file_ir, pin) == "rollouts[0].models[1].pin"
    assert ir_path(file_ir, Span(file="other.rollout", line=1, col=1, end_line=1, end_col=2)) == ""


def test_check_json_carries_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(SPEC)
    with pytest.raises(SystemExit):
        main(["check", "--format", "json", "--root", str(tmp_path), str(spec)])
    found = {d["code"]: d.get("path") for d in json.loads(capsys.readouterr().out)["diagnostics"]}
    assert found["RL402"] == "rollouts[0].models[1].pin"
    assert found["RL310"] == "rollouts[0].strategy.stages[1]"
    assert found["RL510"] == "rollouts[0].gates[0]"


def test_sarif_names_the_logical_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(SPEC)
    with pytest.raises(SystemExit):
        main(["check", "--format", "sarif", "--root", str(tmp_path), str(spec)])
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    pin = next(r for r in results if r["ruleId"] == "RL402")
    assert pin["locations"][0]["logicalLocations"] == [
        {"fullyQualifiedName": "rollouts[0].models[1].pin", "kind": "element"}
    ]


def _naive_path(root: object, span: Span) -> str:
    """The definition, one sibling at a time: the deepest node holding the span, first in field order."""
    from dataclasses import fields

    from rolloutlang import ir

    def holds(outer: Span, inner: Span) -> bool:
        return outer.file == inner.file and (outer.line, outer.col) <= (inner.line, inner.col) \
            and (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)

    path, node = "", root
    while True:
        assert isinstance(node, ir.Node)
        step = None
        for f in fields(node):
            name, value = f.name, getattr(node, f.name)
            items = [(name, value)] if isinstance(value, ir.Node) else \
                [(f"{name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, ir.Node)] \
                if isinstance(value, tuple) else []
            step = next(((n, v) for n, v in items if holds(v.span, span)), None)
            if step is not None:
                break
        if step is None:
            return path
        path = f"{path}.{step[0]}" if path and not step[0].startswith("[") else path + step[0]
        node = step[1]


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "examples").glob("*.rollout")),
                         ids=lambda p: p.name)
def test_the_index_finds_what_the_definition_finds(path: Path) -> None:
    """Every span of every node and finding of the examples: the indexed lookup equals the plain one."""
    from dataclasses import fields

    from rolloutlang import ir
    from rolloutlang.checks import run_checks
    from rolloutlang.irpath import IrPaths
    from rolloutlang.loader import load

    program = load(path, path.parent.parent)
    assert program.main is not None
    spans = [d.span for d in run_checks(program) if d.span is not None]
    todo: list[object] = [program.main]
    while todo:
        node = todo.pop()
        if isinstance(node, ir.Node):
            values = [getattr(node, f.name) for f in fields(node)]
            spans.extend(v for v in values if isinstance(v, Span))
            todo.extend(values)
        elif isinstance(node, tuple):
            todo.extend(node)
    paths = IrPaths(program.main)
    assert len(spans) > 50
    for span in spans:
        assert paths.path(span) == _naive_path(program.main, span), span
