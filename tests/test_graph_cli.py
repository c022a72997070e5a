"""`rollout graph`: DOT a DOT parser reads, mermaid of a checked shape, JSON with sound references."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pydot
import pytest

from tests.helpers import D1, D2, RANKER_SPEC, run_cli

# pydot's parser uses pyparsing names that newer pyparsing deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
ENTRY_FILES = sorted((ROOT / "examples").glob("*.rollout"))


@pytest.fixture(scope="module")
def ranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ranker")
    (folder / ".rollout-root").write_text("")
    path = folder / "ranker-v2.rollout"
    path.write_text(RANKER_SPEC)
    return path


def graph(path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(["graph", "--format", fmt, str(path)], capsys)
    assert code == 0, err
    return out


# -- DOT ----------------------------------------------------------------------------------------


def test_dot_parses_with_pydot(ranker: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = graph(ranker, "dot", capsys)
    (dot,) = pydot.graph_from_dot_data(text)
    assert dot.get_type() == "digraph"
    assert dot.get_name() == '"ranker-v2"'
    nodes = [n.get_name().strip('"') for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    assert nodes == ["shadow", "stage.stage-1", "stage.stage-2", "stage.stage-3", "stage.stage-4", "stage.stage-5",
                     "promoted", "rolled-back", "paused"]
    edges = [(e.get_source().strip('"'), e.get_destination().strip('"'), e.get_label().strip('"'))
             for e in dot.get_edges()]
    assert ("shadow", "stage.stage-1", "promote after 24h") in edges
    assert ("stage.stage-1", "rolled-back", "rollback: latency, errors; ctr") in edges
    assert ("paused", "stage.stage-3", "resume") in edges
    declared = set(nodes)
    assert all(s in declared and d in declared for s, d, _ in edges)


def test_dot_escapes_quotes_and_backslashes(ranker: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The rollout name is the only free text reaching DOT; names cannot hold quotes, so build one that could
    # break a naive writer (a DOT keyword) and check the parser agrees on it.
    (tmp_path / ".rollout-root").write_text("")
    path = tmp_path / "digraph.rollout"
    path.write_text(RANKER_SPEC.replace("rollout ranker-v2", "rollout digraph"))
    code, out, err = run_cli(["graph", "--format", "dot", str(path)], capsys)
    assert code == 0, err
    (dot,) = pydot.graph_from_dot_data(out)
    assert dot.get_name() == '"digraph"'


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.name)
def test_every_example_graphs_in_every_format(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dot = graph(path, "dot", capsys)
    assert pydot.graph_from_dot_data(dot)
    check_mermaid(graph(path, "mermaid", capsys))
    check_json(json.loads(graph(path, "json", capsys), parse_constant=_no_constant))


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in JSON: the plan's numbers must all be finite")


def test_json_writers_refuse_non_finite_numbers() -> None:
    """Finite by construction (the lowering's ranges); a bug that made one infinite fails loudly, not as bad JSON."""
    from dataclasses import replace

    from rolloutlang.loader import load_text
    from rolloutlang.plan import build_plan, render_plan

    (rollout,) = load_text(RANKER_SPEC, "ranker-v2.rollout").rollouts()
    plan = build_plan(rollout)
    plan.phases[0] = replace(plan.phases[0], exposure_requests=float("inf"))
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        render_plan(plan, "json")


# -- mermaid ------------------------------------------------------------------------------------

ID = r"[A-Za-z][A-Za-z0-9_]*"
TEXT = r'"[^"\n]*"'
NODE = re.compile(rf"^  ({ID})(\[{TEXT}\]|\(\[{TEXT}\]\)|\{{\{{{TEXT}\}}\}})$")
EDGE = re.compile(rf"^  ({ID}) (-->|-\.->)\|({TEXT})\| ({ID})$")
RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click", "linkStyle"}


def check_mermaid(text: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """A small validator: a header, node declarations, then edges between declared nodes."""
    assert text.endswith("\n")
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "flowchart LR"
    nodes: list[str] = []
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        node, edge = NODE.match(line), EDGE.match(line)
        assert node or edge, f"not a node or an edge: {line!r}"
        if node:
            assert not edges, "nodes come before edges"
            assert node.group(1) not in nodes and node.group(1) not in RESERVED
            nodes.append(node.group(1))
        elif edge:
            assert edge.group(1) in nodes and edge.group(4) in nodes, line
            edges.append((edge.group(1), edge.group(4), edge.group(3).strip('"')))
    return nodes, edges


def test_mermaid_structure(ranker: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes, edges = check_mermaid(graph(ranker, "mermaid", capsys))
    assert nodes == ["p0", "p1", "p2", "p3", "p4", "p5", "promoted", "rolled_back", "paused"]
    assert ("p0", "p1", "promote after 24h") in edges
    assert ("p4", "rolled_back", "rollback: latency, errors; ctr") in edges
    assert ("p5", "promoted", "promote") in edges
    text = graph(ranker, "mermaid", capsys)
    assert '  p1["stage-1<br/>1% for 2h"]' in text
    assert "  paused -.->|\"resume\"| p0" in text


def test_mermaid_validator_rejects_broken_lines() -> None:
    with pytest.raises(AssertionError):
        check_mermaid('flowchart LR\n  a["x"]\n  a --> b\n')
    with pytest.raises(AssertionError):
        check_mermaid('flowchart LR\n  a["x"]\n  a -->|"y"| b\n')  # b never declared
    with pytest.raises(AssertionError):
        check_mermaid('flowchart LR\n  end["x"]\n')


def test_mermaid_escapes_quotes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rolloutlang.plan import _mermaid_text

    assert _mermaid_text('a "b" <c> | d\ne') == "a #quot;b#quot; #lt;c#gt; #124; d<br/>e"


# -- JSON ---------------------------------------------------------------------------------------


def check_json(doc: dict[str, object]) -> None:
    assert doc["format_version"] == 1
    nodes = doc["nodes"]
    edges = doc["edges"]
    assert isinstance(nodes, list) and isinstance(edges, list)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids))
    assert doc["start"] in ids
    edge_ids = [e["id"] for e in edges]
    assert len(edge_ids) == len(set(edge_ids))
    for e in edges:
        assert e["source"] in ids and e["target"] in ids
        assert e["kind"] in ("promote", "rollback", "pause", "resume")
    phases = [n for n in nodes if n["kind"] != "end"]
    for p in phases:
        assert set(p["gates"]) <= {g for e in edges for g in e["gates"]} | set(p["gates"])
        assert p["earliest_start_s"] <= p["earliest_end_s"]


def test_json_nodes_and_edges(ranker: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(graph(ranker, "json", capsys))
    check_json(doc)
    assert doc["rollout"] == "ranker-v2"
    assert doc["traffic_rps"] == 12000
    assert doc["duration"] == {"min_s": 56 * 3600, "max_s": 56 * 3600}
    stage1 = next(n for n in doc["nodes"] if n["id"] == "stage.stage-1")
    assert stage1["weight_percent"] == 1
    assert stage1["exposure_requests"] == pytest.approx(864_000)
    assert stage1["gates"] == ["latency", "errors", "drift", "ctr"]
    kinds = [e["kind"] for e in doc["edges"] if e["source"] == "stage.stage-1"]
    assert kinds == ["promote", "rollback", "rollback", "pause"]


def test_unbounded_duration_is_null_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".rollout-root").write_text("")
    path = tmp_path / "bg.rollout"
    path.write_text(f"""
rollout bg {{
  model stable    s 1.0.0 @ {D1}
  model candidate s 1.0.1 @ {D2}
  blue-green {{ preview for 2h, promote manual }}
  gate errors: error rate < 1%
  on errors fail: rollback now
}}
""")
    code, out, err = run_cli(["graph", "--format", "json", str(path)], capsys)
    assert code == 0, err
    doc = json.loads(out)
    check_json(doc)
    assert doc["duration"] == {"min_s": 7200, "max_s": None}
    (preview,) = [n for n in doc["nodes"] if n["kind"] == "preview"]
    assert preview["latest_end_s"] is None
    (promote,) = [e for e in doc["edges"] if e["kind"] == "promote"]
    assert (promote["trigger"], promote["label"]) == ("approval", "promote after 2h and approval")


# -- stability and failure ------------------------------------------------------------------------


_RENDER_ALL = """
import sys
from pathlib import Path
from rolloutlang.loader import load
from rolloutlang.plan import build_plan, render_plan
(rollout,) = load(Path(sys.argv[1])).rollouts()
for fmt in ("dot", "mermaid", "json"):
    sys.stdout.write(render_plan(build_plan(rollout), fmt))
"""


def test_output_is_byte_stable_across_hash_seeds(ranker: Path) -> None:
    outputs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", _RENDER_ALL, str(ranker)],
                              capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith('digraph "ranker-v2" {') and "flowchart LR" in outputs[0]


def test_graph_of_a_broken_file_prints_the_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".rollout-root").write_text("")
    path = tmp_path / "broken.rollout"
    path.write_text(RANKER_SPEC.replace("1%   for 2h", "1%   for 2"))
    code, out, err = run_cli(["graph", "--no-color", str(path)], capsys)
    assert code == 1
    assert out == ""
    assert "RL201" in err
