"""Every ```rollout block in docs/language.md is a complete file that loads without errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolloutlang.loader import load_text

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "language.md"
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def _blocks(tag: str) -> list[tuple[int, str]]:
    """(line number, text) of each fenced block with this tag."""
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) == tag:
            out.append((text.count("\n", 0, m.start()) + 1, m.group(2)))
    return out


ROLLOUT_BLOCKS = _blocks("rollout")


def test_the_reference_has_enough_examples() -> None:
    assert len(ROLLOUT_BLOCKS) >= 30


def test_every_fence_is_tagged() -> None:
    """An untagged block would escape the parse test below: tag it `rollout` or `text`."""
    text = DOC.read_text(encoding="utf-8")
    tags = [m.group(1) for m in FENCE.finditer(text)]
    assert tags and all(tag in ("rollout", "text") for tag in tags), tags


@pytest.mark.parametrize(
    ("index", "line", "source"),
    [(i, line, src) for i, (line, src) in enumerate(ROLLOUT_BLOCKS, start=1)],
    ids=[f"block{i}-line{line}" for i, (line, _) in enumerate(ROLLOUT_BLOCKS, start=1)],
)
def test_rollout_block_loads_without_errors(index: int, line: int, source: str) -> None:
    program = load_text(source, f"docs/language.md#{index}", root=ROOT)
    errors = [f"{d.code} {d.span}: {d.message}" for d in program.diagnostics if d.is_error]
    assert errors == [], f"block at docs/language.md line {line}"
    assert program.main is not None
    assert program.main.rollouts or program.main.gate_sets


def test_a_broken_block_would_be_caught() -> None:
    """The loader used above does report a mistake of the kind a doc example could carry."""
    program = load_text("rollout r { shadow 100% for 24 }", "docs/language.md#x", root=ROOT)
    assert [d.code for d in program.diagnostics] == ["RL201"]


def test_every_construct_has_a_section() -> None:
    """Each statement keyword of the grammar is documented with an example."""
    grammar = (ROOT / "grammar" / "rollout.lark").read_text(encoding="utf-8")
    keywords = set(re.findall(r'^[a-z_]+: "([a-z-]+)"', grammar, re.MULTILINE))
    assert {"service", "model", "signature", "canary", "blue-green", "gate", "budget", "log"} <= keywords
    examples = "\n".join(src for _, src in ROLLOUT_BLOCKS)
    missing = [k for k in sorted(keywords) if not re.search(rf"(^|\s){re.escape(k)}\s", examples)]
    assert missing == []


def test_the_percentiles_the_reference_describes_are_the_ones_the_grammar_reads() -> None:
    """The reference says `p99.9` is one name; a block uses it, and it lowers to the 99.9th percentile."""
    doc = DOC.read_text(encoding="utf-8")
    assert "`p99.9`" in doc and "cannot be written" not in doc
    (block,) = [src for _, src in ROLLOUT_BLOCKS if "p99.9 latency" in src]
    (rollout,) = load_text(block, "docs/language.md#p99.9", root=ROOT).rollouts()
    assert [g.percentile for g in rollout.gates if getattr(g, "signal", None) == "latency"] == [99.0, 99.0, 50.0, 99.9]


def test_the_waiver_example_waives_what_it_says() -> None:
    from rolloutlang.checks import run_checks

    (block,) = [src for _, src in ROLLOUT_BLOCKS if "rollout waived" in src]
    program = load_text(block, "docs/language.md#waived", root=ROOT)
    (rl411,) = [d for d in program.waive(run_checks(program)) if d.code == "RL411"]
    assert rl411.suppression is not None
    assert rl411.suppression.justification.startswith("related-items is rolled back together with the embedder")
    unwaived = load_text(block.replace("# waive", "# not a waiver:"), "docs/language.md#waived", root=ROOT)
    (rl411,) = [d for d in unwaived.waive(run_checks(unwaived)) if d.code == "RL411"]
    assert rl411.suppression is None


def test_the_appendix_shows_the_grammars_names() -> None:
    """Every alternative of the grammar's NAME token (lookaheads aside) is in the appendix, `p99.9`'s too."""
    grammar = (ROOT / "grammar" / "rollout.lark").read_text(encoding="utf-8")
    (pattern,) = re.findall(r"^NAME: /(.*)/$", grammar, re.MULTILINE)
    alternatives = [re.sub(r"\(\?!.*?\)$", "", alt) for alt in pattern.split("|")]
    assert len(alternatives) == 2
    appendix = DOC.read_text(encoding="utf-8").split("## Appendix: the grammar", 1)[1]
    (name_line,) = [line for line in appendix.splitlines() if line.startswith("NAME ")]
    for alt in alternatives:
        assert alt in name_line, alt
    assert "phase_ref" in appendix and re.search(r'^!?phase_ref: "from"', grammar, re.MULTILINE)
