"""The parser boundary: lark in, syntax.Node/Token/Comment and diagnostics out.

The grammar builds in lark's strict mode (no conflict, no terminal collision),
spans are 1-based and exact, comments are collected with their positions, and
no lark type or token name ever leaves `rolloutlang.syntax`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolloutlang.source import SourceFile, Span
from rolloutlang.syntax import (
    MAX_SYNTAX_ERRORS,
    STATEMENT_KEYWORDS,
    TOP_LEVEL_KEYWORDS,
    Child,
    Comment,
    Node,
    ParseResult,
    Token,
    build_parser_strict,
    grammar_text,
    parse,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.rollout"))
LARK_NAMES = re.compile(r"\$END|__ANON|\b(NAME|NUMLIT|STRING|RBRACE|LBRACE|COLON|COMMA|LPAR|RPAR)\b")


def parsed(text: str, path: str = "t.rollout") -> ParseResult:
    return parse(SourceFile(path, text))


def tokens(result: ParseResult) -> list[Token]:
    assert result.tree is not None, [d.message for d in result.diagnostics]
    return result.tree.tokens()


def find(result: ParseResult, text: str) -> Token:
    (tok,) = [t for t in tokens(result) if t.text == text]
    return tok


def at(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.col, span.end_line, span.end_col)


# -- the grammar -------------------------------------------------------------------------------------


def test_grammar_builds_in_strict_mode() -> None:
    pytest.importorskip("interegular", reason="lark's strict mode needs interegular to find collisions")
    build_parser_strict()


def test_grammar_is_packaged_data() -> None:
    assert "start: _item*" in grammar_text()


def test_every_statement_keyword_is_in_the_grammar() -> None:
    grammar = grammar_text()
    for word in STATEMENT_KEYWORDS + TOP_LEVEL_KEYWORDS:
        assert f'"{word}"' in grammar, word


# -- spans -------------------------------------------------------------------------------------------


SPEC = """\
# header comment
rollout ranker-v2 {
  service ranker   # the k8s service
  canary {
    mpr: 5% for 1h
  }
  gate latency: p99 latency < 250ms
}
"""


def test_spans_are_one_based_and_exact() -> None:
    result = parsed(SPEC)
    assert at(find(result, "ranker-v2").span) == (2, 9, 2, 18)
    assert at(find(result, "ranker").span) == (3, 11, 3, 17)
    assert at(find(result, "mpr").span) == (5, 5, 5, 8)
    assert at(find(result, "5%").span) == (5, 10, 5, 12)
    assert at(find(result, "1h").span) == (5, 17, 5, 19)
    assert at(find(result, "250ms").span) == (7, 31, 7, 36)
    assert find(result, "250ms").type == "NUMLIT"
    assert all(t.span.file == "t.rollout" for t in tokens(result))


def test_node_spans_cover_their_statement() -> None:
    result = parsed(SPEC)
    assert result.tree is not None
    (rollout,) = result.tree.nodes("rollout")
    assert at(rollout.span) == (2, 1, 8, 2)
    canary = rollout.node("canary")
    assert canary is not None and at(canary.span) == (4, 3, 6, 4)
    gate = rollout.node("gate")
    assert gate is not None and at(gate.span) == (7, 3, 7, 36)
    name = gate.toks("NAME")[0]
    assert (name.text, at(name.span)) == ("latency", (7, 8, 7, 15))


def test_span_text_matches_the_source() -> None:
    src = SourceFile("t.rollout", SPEC)
    result = parse(src)
    for tok in tokens(result):
        line = src.line_text(tok.span.line)
        assert line[tok.span.col - 1:tok.span.end_col - 1] == tok.text


def test_columns_count_characters_not_bytes() -> None:
    result = parsed('rollout r {\n  owner "équipe-ml" service ranker\n}\n')
    assert at(find(result, "ranker").span) == (2, 29, 2, 35)  # `é` is one column, though two bytes


def test_crlf_line_endings() -> None:
    result = parsed("rollout r {\r\n  service ranker  # k8s\r\n}\r\n")
    assert at(find(result, "ranker").span) == (2, 11, 2, 17)
    assert [c.text for c in result.comments] == ["# k8s"]


def test_a_byte_order_mark_is_not_part_of_the_text() -> None:
    from rolloutlang.source import decode_source

    text = decode_source("\ufeffrollout r { service ranker }\n".encode())
    assert at(find(parsed(text), "ranker").span) == (1, 21, 1, 27)


# -- comments ----------------------------------------------------------------------------------------


def test_comments_are_collected_in_order_with_spans() -> None:
    result = parsed(SPEC)
    assert result.comments == [
        Comment("# header comment", Span(file="t.rollout", line=1, col=1, end_line=1, end_col=17)),
        Comment("# the k8s service", Span(file="t.rollout", line=3, col=20, end_line=3, end_col=37)),
    ]


def test_a_hash_inside_a_string_is_not_a_comment() -> None:
    result = parsed('rollout r { owner "#recs-oncall"  # the real one\n}\n')
    assert [c.text for c in result.comments] == ["# the real one"]


def test_comments_are_collected_even_when_the_file_has_errors() -> None:
    result = parsed("# keep me\nrollout r { gaet x }\n")
    assert result.tree is None and result.diagnostics
    assert [c.text for c in result.comments] == ["# keep me"]


# -- no lark inside ----------------------------------------------------------------------------------


def _walk(child: Child) -> list[Child]:
    out: list[Child] = [child]
    if isinstance(child, Node):
        for c in child.children:
            out.extend(_walk(c))
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_tree_is_made_of_syntax_nodes_and_tokens_only(path: Path) -> None:
    result = parsed(path.read_text(encoding="utf-8"), path.name)
    assert result.tree is not None
    for item in _walk(result.tree):
        assert type(item) in (Node, Token), type(item)
        if isinstance(item, Token):
            assert type(item.text) is str and type(item.type) is str
        else:
            assert type(item.kind) is str and type(item.children) is tuple
        assert type(item.span) is Span
    assert all(type(c) is Comment for c in result.comments)
    assert not any(type(x).__module__.startswith("lark") for x in _walk(result.tree))


def test_token_types_are_grammar_names_not_anonymous() -> None:
    for path in EXAMPLES:
        for tok in tokens(parsed(path.read_text(encoding="utf-8"))):
            assert not tok.type.startswith("__"), tok


def test_parse_errors_are_diagnostics_not_exceptions() -> None:
    from lark.exceptions import LarkError

    bad = ["rollout", "rollout r {", "}", "{{{{", '"', "\x01", "rollout r { gate : }", "@@@@", "rollout r { 5% }"]
    for text in bad:
        try:
            result = parsed(text)
        except LarkError as exc:  # pragma: no cover - the failure this test is for
            pytest.fail(f"lark error escaped for {text!r}: {exc!r}")
        assert result.tree is None
        assert result.diagnostics and all(d.code.startswith("RL0") for d in result.diagnostics)
        for d in result.diagnostics:
            for message in (d.message, d.label, d.help, *d.notes):
                assert not LARK_NAMES.search(message), message


def test_an_empty_file_has_no_tree_and_one_diagnostic() -> None:
    result = parsed("")
    assert result.tree is None
    assert [(d.code, d.message) for d in result.diagnostics] == [("RL015", "file is empty")]


# -- recovery ----------------------------------------------------------------------------------------


def test_recovery_reports_each_broken_statement_once_at_its_position() -> None:
    text = "rollout r {\n" + "".join(f"  gate g{i} p99 latency < 1s\n" for i in range(5)) + "}\n"
    result = parsed(text)
    assert [(d.code, d.span.line, d.span.col) for d in result.diagnostics if d.span] == [
        ("RL010", line, 11) for line in range(2, 7)
    ]


def test_recovery_stops_after_too_many_errors() -> None:
    text = "rollout r {\n" + "  gate g p99\n" * 100 + "}\n"
    result = parsed(text)
    assert len(result.diagnostics) == MAX_SYNTAX_ERRORS


def test_recovery_on_a_huge_broken_file_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each recovery parses again; a budget keeps a huge broken file from taking minutes.

    The budget is twice the file's size plus a constant; without the constant, a 12 kB file broken
    at the end allows a few parses, not twenty.
    """
    monkeypatch.setattr("rolloutlang.syntax._RECOVERY_BUDGET", 0)
    text = "rollout r {\n" + "  service x\n" * 1_000 + "  gate g p99\n" * 30 + "}\n"
    result = parsed(text)
    assert 1 <= len(result.diagnostics) <= 4
    assert [d.span.line for d in result.diagnostics if d.span] == list(range(1002, 1002 + len(result.diagnostics)))


def test_long_tokens_are_shortened_in_messages() -> None:
    result = parsed("rollout r {\n  " + "x" * 500 + " 3\n}\n")
    (diagnostic,) = result.diagnostics
    assert len(diagnostic.message) < 80 and "..." in diagnostic.message


def test_parser_cache_lives_in_a_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rolloutlang.syntax import _cache_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = _cache_file()
    assert isinstance(path, str) and path.startswith(str(tmp_path / "cache" / "rolloutlang"))
    assert (tmp_path / "cache" / "rolloutlang").stat().st_mode & 0o077 == 0
    # No private folder to be had: build without a cache rather than fall back to a shared one.
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert _cache_file() is False


# -- keywords are whole words ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rollout r {\n  gatekeeper: p99 latency < 250ms\n}\n", "unknown keyword `gatekeeper`"),
        ("rollout r {\n  gatelatency: p99 latency < 250ms\n}\n", "unknown keyword `gatelatency`"),
        ("rollout r {\n  model stablex ranker 1.4.2\n}\n", "unexpected `stablex`"),
        ("rollout r {\n  route header \"x\" = \"y\" to candidates\n}\n", "unexpected `candidates`"),
        ("rollout r {\n  signature { inx a: int64 }\n}\n", "unexpected `inx`"),
        ("rolloutr {\n}\n", "unknown keyword `rolloutr`"),
    ],
)
def test_a_keyword_is_never_read_off_the_front_of_a_longer_word(text: str, message: str) -> None:
    result = parsed(text)
    assert result.tree is None
    assert message in result.diagnostics[0].message


def test_keywords_stay_names_where_no_keyword_is_expected() -> None:
    text = ('rollout canary {\n  gate gate: p99 latency < 1s every 1m\n  gate stable: error rate < 1%\n'
            '  signature { in in: int64, out: int64 out stable: float32 }\n}\n')
    names = [t.text for t in tokens(parsed(text)) if t.type == "NAME"]
    assert names[:3] == ["canary", "gate", "p99"]
    assert "stable" in names and "in" in names and "out" in names


# -- one meaning of a line end ---------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_every_line_end_ends_a_comment_and_counts_as_a_line(end: str) -> None:
    text = f"rollout r {{{end}  service ranker  # note{end}  namespace recs{end}}}{end}"
    result = parsed(text)
    assert at(find(result, "recs").span) == (3, 13, 3, 17)
    assert [c.text for c in result.comments] == ["# note"]


def test_a_lone_carriage_return_inside_a_comment_ends_it() -> None:
    from rolloutlang.loader import load_text

    program = load_text("rollout r {\n  service ranker  # note\r  namespace recs\n}\n", "t.rollout")
    assert program.main is not None
    assert program.main.rollouts[0].namespace == "recs"
    assert program.sources["t.rollout"].line_text(3) == "  namespace recs"


def test_a_string_ends_at_a_lone_carriage_return_too() -> None:
    result = parsed('rollout r {\n  owner "a\rb"\n}\n')
    assert result.diagnostics[0].code == "RL012"


# -- nesting ---------------------------------------------------------------------------------------------


def test_nesting_up_to_the_cap_parses() -> None:
    from rolloutlang.syntax import MAX_NESTING

    call = "f(" * MAX_NESTING + "x" + ")" * MAX_NESTING
    vector = "list<" * (MAX_NESTING - 1) + "int64" + ">" * (MAX_NESTING - 1)
    result = parsed(f"rollout r {{\n  gate d: {call} < 1\n  signature {{ out s: {vector} }}\n}}\n")
    assert result.tree is not None and result.diagnostics == []


@pytest.mark.parametrize("depth", [33, 5_000])
def test_nesting_past_the_cap_is_one_located_error(depth: int) -> None:
    result = parsed("rollout r {\n  gate d: " + "f(" * depth + "x" + ")" * depth + " < 1\n}\n")
    (diagnostic,) = result.diagnostics
    assert (diagnostic.code, at(diagnostic.span)[:2]) == ("RL017", (2, 11 + 2 * 32))


# -- recovery stays linear ---------------------------------------------------------------------------------


def test_the_last_word_before_an_error_is_found_without_a_quadratic_search() -> None:
    from rolloutlang.syntax import _last_word

    assert _last_word('owner "a b"') == '"a b"'
    assert _last_word("gate g: " + "w" * 200_000) == "w" * 200_000
    assert _last_word("x") == "x"
    # A 200 kB word before a syntax error once took minutes: now one diagnostic, at once.
    (diagnostic,) = parsed("rollout x {\n  gate g: " + "w" * 200_000 + " <\n  ?\n}\n").diagnostics
    assert (diagnostic.code, at(diagnostic.span)[:2]) == ("RL010", (3, 3))


def test_braces_on_one_huge_line_are_scanned_once() -> None:
    from rolloutlang.syntax import _scan_braces

    text = "rollout r " + "{" * 100_000 + "}" * 99_999
    braces = _scan_braces(text)
    assert len(braces.open) == 1 and len(braces.closed) == 99_999 and braces.extra_closing == 0


def test_a_bad_byte_is_located_with_the_same_line_ends() -> None:
    from rolloutlang.source import byte_span

    data = b"rollout r {\r  owner \"caf\xe9\"\r\n}\n"
    span = byte_span("x.rollout", data, data.index(b"\xe9"))
    assert (span.line, span.col) == (2, 13)


# -- one scanner first (rolloutlang.lexing) reads what lark's contextual lexer reads -----------------


def _lexer_inputs() -> list[tuple[str, str]]:
    """The examples, the fuzzer's inputs (25 of each class, small; on demand ``ROLLOUT_LEXER_INPUTS=N`` at full
    size from ``ROLLOUT_LEXER_START``), and the cases the module's docstring reasons about."""
    import os

    from tests.fuzzing import CLASSES, make_input

    count = int(os.environ.get("ROLLOUT_LEXER_INPUTS", "0"))
    start = int(os.environ.get("ROLLOUT_LEXER_START", "0"))
    out = [(p.name, p.read_text(encoding="utf-8")) for p in EXAMPLES]
    for index in range(start, start + (count or 25 * len(CLASSES))):
        item = make_input(11, index, scale=1.0 if count else 0.05)
        out.append((f"fuzz-{index}-{item.kind}", item.entry.decode("utf-8", errors="replace")))
    out += [("keyword-as-name", "rollout after { service fail\n gate after: p99 latency < 1s after 5m\n}\n"),
            ("compare-and-angle", "rollout r { gate g: p99 latency < 1s\n signature { input x: list<int64> }\n}\n"),
            ("version-and-number", "rollout r { stable m @ 1.5 \n candidate m @ 1.5.0.1 }\n")]
    return out


def test_one_scanner_first_reads_what_the_contextual_lexer_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same trees, diagnostics and comments, with and without the shared scanner, on every input."""
    from rolloutlang import syntax

    fast, plain = syntax._parser(), syntax._parser(one_scanner=False)
    assert fast is not plain
    for name, text in _lexer_inputs():
        results = []
        for parser in (fast, plain):
            monkeypatch.setattr(syntax, "_parser", lambda strict=False, one_scanner=True, p=parser: p)
            results.append(parse(SourceFile("t.rollout", text)))
        assert results[0] == results[1], name
