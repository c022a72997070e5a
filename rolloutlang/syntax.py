"""The parser boundary: source text in, a concrete syntax tree and diagnostics out.

No lark type leaves this module.  The tree is converted into :class:`Node` and
:class:`Token` values that carry spans, so the lowering pass and the formatter
never depend on the parsing library, and lark's errors become located,
plain-language diagnostics here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Union

from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, one_of
from rolloutlang.source import SourceFile, Span

MAX_SYNTAX_ERRORS = 20

# Statement keywords, the words that may start a line; used for recovery and hints.
STATEMENT_KEYWORDS = (
    "service", "namespace", "owner", "model", "signature", "serving", "consumers",
    "traffic", "metrics", "metric", "shadow", "canary", "blue-green", "rolling", "route",
    "gate", "on", "use", "budget", "scenario", "holdout", "pipeline", "approve", "log",
)
TOP_LEVEL_KEYWORDS = ("import", "gates", "rollout")


@dataclass(frozen=True)
class Token:
    """A leaf of the syntax tree: terminal type, its text, and where it is."""

    type: str
    text: str
    span: Span


@dataclass(frozen=True)
class Node:
    """An inner node of the syntax tree, named after its grammar rule."""

    kind: str
    children: tuple[Child, ...]
    span: Span

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        for child in self.children:
            if isinstance(child, Token):
                out.append(child)
            else:
                out.extend(child.tokens())
        return out

    def nodes(self, kind: str) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and c.kind == kind]

    def node(self, kind: str) -> Node | None:
        found = self.nodes(kind)
        return found[0] if found else None

    def toks(self, type_: str) -> list[Token]:
        return [c for c in self.children if isinstance(c, Token) and c.type == type_]

    def tok(self, type_: str) -> Token | None:
        found = self.toks(type_)
        return found[0] if found else None


Child = Union[Node, Token]


@dataclass(frozen=True)
class Comment:
    text: str
    span: Span


@dataclass
class ParseResult:
    tree: Node | None
    comments: list[Comment] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


# -- the parser ---------------------------------------------------------------


def grammar_text() -> str:
    return resources.files("rolloutlang.grammar").joinpath("rollout.lark").read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def _parser(strict: bool = False):  # type: ignore[no-untyped-def]
    from lark import Lark

    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=strict,
    )


def build_parser_strict() -> None:
    """Build the grammar in lark's strict mode: any conflict or collision raises."""
    _parser(strict=True)


# Plain words for terminals, never lark's token names.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMLIT": "a number",
    "STRING": 'a quoted string like `"text"`',
    "VERSION": "a version like `1.4.2`",
    "DIGEST": "a digest like `sha256:<64 hex digits>`",
    "ROLE": "`stable` or `candidate`",
    "SIG_DIRECTION": "`in` or `out`",
    "MATCH_KIND": "`header` or `cookie`",
    "MATCH_OP": "`=`, `~` or `^=`",
    "PII_TREATMENT": "`hashed` or `dropped`",
    "COMPARE": "a comparison like `<`",
    "OPTIONAL": "`?`",
    "RANGE": "`..`",
    "$END": "the end of the file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    literal = _terminal_literal(name)
    return f"`{literal}`" if literal is not None else name.lower()


def _terminal_literal(name: str) -> str | None:
    parser = _parser()
    try:
        term = parser.get_terminal(name)
    except KeyError:
        return None
    pattern = term.pattern
    if type(pattern).__name__ == "PatternStr":
        return str(pattern.value)
    return None


def _describe_token(type_: str, text: str) -> str:
    if type_ == "$END":
        return "end of file"
    if type_ == "STRING":
        return f"string {text}"
    if type_ == "NUMLIT":
        return f"number `{text}`"
    return f"`{text}`"


def _keyword_choices(expected: set[str]) -> list[str]:
    words = []
    for name in expected:
        lit = _terminal_literal(name)
        if lit is not None and re.fullmatch(r"[a-z][a-z-]*", lit):
            words.append(lit)
    return sorted(words)


def _expected_phrase(expected: set[str]) -> str:
    keywords = _keyword_choices(expected)
    statement_kw = [k for k in keywords if k in STATEMENT_KEYWORDS or k in TOP_LEVEL_KEYWORDS]
    if len(statement_kw) >= 4:
        others = [_describe_terminal(t) for t in sorted(expected) if _terminal_literal(t) not in statement_kw]
        head = "a statement such as " + one_of(_preferred(statement_kw))
        return head + (" or " + ", ".join(others) if others else "")
    described = sorted({_describe_terminal(t) for t in expected})
    if len(described) == 1:
        return described[0]
    return ", ".join(described[:-1]) + " or " + described[-1]


def _preferred(keywords: list[str]) -> list[str]:
    order = ["rollout", "gates", "import", "model", "canary", "gate", "on", "service"]
    picked = [k for k in order if k in keywords]
    return picked[:5] if picked else keywords[:5]


def _diagnose(exc: Exception, src: SourceFile, text: str) -> tuple[Diagnostic, int]:
    """Turn a lark error into a diagnostic; also return the error's offset."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        offset = exc.pos_in_stream
        ch = text[offset]
        if ch == '"':
            end = text.find("\n", offset)
            end = len(text) if end < 0 else end
            return (
                error(
                    "RL012",
                    "unterminated string",
                    src.span(offset, end),
                    label="this string is never closed",
                    help='close it with `"` on the same line; write `\\"` for a quote inside a string',
                ),
                offset,
            )
        shown = ch if ch.isprintable() else repr(ch)
        allowed = set(exc.allowed or ())
        return (
            error(
                "RL011",
                f"unexpected character `{shown}`",
                src.span(offset, offset + 1),
                label="not part of the language here",
                help=("expected " + _expected_phrase(allowed)) if allowed else "remove it",
            ),
            offset,
        )
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = set(exc.expected or ())
        if tok.type == "$END":
            offset = len(text.rstrip())
            span = src.span(max(offset - 1, 0), max(offset, 1)) if offset else src.span(0, 0)
            if "RBRACE" in expected:
                return (
                    error(
                        "RL013",
                        "unexpected end of file: a `{` block is not closed",
                        span,
                        help="add the missing `}`",
                    ),
                    len(text),
                )
            return (
                error("RL013", "unexpected end of file", span, help="expected " + _expected_phrase(expected)),
                len(text),
            )
        offset = tok.start_pos if tok.start_pos is not None else 0
        span = src.span(offset, offset + len(str(tok)))
        keywords = _keyword_choices(expected)
        if tok.type == "NAME" and len([k for k in keywords if k in STATEMENT_KEYWORDS or k in TOP_LEVEL_KEYWORDS]) >= 3:
            hint = did_you_mean(str(tok), keywords)
            return (
                error(
                    "RL014",
                    f"unknown keyword `{tok}`",
                    span,
                    label="not a statement",
                    help=hint or "expected " + _expected_phrase(expected),
                ),
                offset,
            )
        return (
            error(
                "RL010",
                f"unexpected {_describe_token(tok.type, str(tok))}",
                span,
                label="expected " + _expected_phrase(expected),
                help=_syntax_hint(tok.type, str(tok), expected, src.line_text(span.line)),
            ),
            offset,
        )
    if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports $END as UnexpectedToken
        return error("RL013", "unexpected end of file", src.span(len(text), len(text))), len(text)
    raise exc


def _syntax_hint(tok_type: str, text: str, expected: set[str], line: str = "") -> str:
    first = _FIRST_WORD.match(line)
    if expected == {"COLON"} and not (first and first.group(1) in STATEMENT_KEYWORDS):
        return "a stage is a weight and how long it lasts (`5% for 6h`); a name before it needs `:` (`mpr: 50% for 7d`)"
    if "NUMLIT" in expected and tok_type == "NAME":
        return "a number goes here, with its unit where one is needed (`30m`, `5%`, `250ms`)"
    if tok_type == "NUMLIT" and "VERSION" in expected:
        return "versions are semver: `MAJOR.MINOR.PATCH`, e.g. `1.4.2`"
    if "COLON" in expected:
        return "a `:` goes here, as in `gate latency: p99 latency < 250ms`"
    if tok_type == "RBRACE":
        return "this `}` closes a block that was never opened, or something is missing before it"
    return ""


# -- recovery -----------------------------------------------------------------

_FIRST_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*)")
_STRINGS_AND_COMMENTS = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*')


def _braces(line: str) -> int:
    code = _STRINGS_AND_COMMENTS.sub("", line)
    return code.count("{") - code.count("}")


def _recovery_region(src_text: str, offset: int) -> tuple[int, int] | None:
    """The statement around an error, to blank out before parsing again.

    Blanking keeps every later position where it was, so the next error is
    reported at its true line and column.
    """
    lines = src_text.split("\n")
    starts = [0]
    for ln in lines[:-1]:
        starts.append(starts[-1] + len(ln) + 1)
    err_line = max(0, min(len(lines) - 1, src_text.count("\n", 0, offset)))
    start_line = err_line
    at_statement = False
    for i in range(err_line, -1, -1):
        m = _FIRST_WORD.match(lines[i])
        word = m.group(1) if m else ""
        if word in TOP_LEVEL_KEYWORDS and i != err_line:
            break
        if word in STATEMENT_KEYWORDS or word in TOP_LEVEL_KEYWORDS:
            start_line = i
            at_statement = True
            break
    depth = 0
    end_line = start_line
    for i in range(start_line, len(lines)):
        if i > start_line and depth <= 0:
            m = _FIRST_WORD.match(lines[i])
            word = m.group(1) if m else ""
            stripped = lines[i].strip()
            if word in STATEMENT_KEYWORDS or word in TOP_LEVEL_KEYWORDS or stripped.startswith("}"):
                break
        depth += _braces(lines[i])
        end_line = i
        if depth < 0:
            return None
    start = starts[start_line]
    if not at_statement:
        start = min(offset, starts[err_line] + len(lines[err_line]))
    end = starts[end_line] + len(lines[end_line])
    if end <= start:
        return None
    return start, end


def _blank(text: str, start: int, end: int) -> str:
    middle = "".join("\n" if c == "\n" else " " for c in text[start:end])
    return text[:start] + middle + text[end:]


# -- conversion ---------------------------------------------------------------


def _convert(tree, src: SourceFile) -> Node:  # type: ignore[no-untyped-def]
    from lark import Token as LarkToken

    def span_of_token(t: LarkToken) -> Span:
        start = t.start_pos or 0
        return src.span(start, t.end_pos if t.end_pos is not None else start + len(t))

    def walk(t) -> Node:  # type: ignore[no-untyped-def]
        children: list[Child] = []
        for c in t.children:
            if isinstance(c, LarkToken):
                children.append(Token(c.type, str(c), span_of_token(c)))
            else:
                children.append(walk(c))
        meta = t.meta
        if getattr(meta, "empty", True):
            span = children[0].span if children else src.span(0, 0)
        else:
            span = src.span(meta.start_pos, meta.end_pos)
        return Node(str(t.data), tuple(children), span)

    return walk(tree)


def parse(src: SourceFile) -> ParseResult:
    """Parse a source file; never raises for bad input."""
    from lark.exceptions import UnexpectedInput

    parser = _parser()
    comments: list[Comment] = []
    for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"|(#[^\n]*)', src.text):
        if m.group(1) is not None:
            comments.append(Comment(m.group(1), src.span(m.start(1), m.end(1))))

    diagnostics: list[Diagnostic] = []
    text = src.text
    seen_offsets: set[int] = set()
    tree = None
    while len(diagnostics) < MAX_SYNTAX_ERRORS:
        try:
            tree = parser.parse(text)
            break
        except UnexpectedInput as exc:
            diagnostic, offset = _diagnose(exc, src, text)
            if offset in seen_offsets:
                break
            seen_offsets.add(offset)
            diagnostics.append(diagnostic)
            region = _recovery_region(text, offset)
            if region is None:
                break
            text = _blank(text, *region)
    if diagnostics:
        return ParseResult(None, comments, diagnostics)
    assert tree is not None
    node = _convert(tree, src)
    if not node.children:
        diagnostics.append(
            error(
                "RL015",
                "file has no rollout" if src.text.strip() else "file is empty",
                src.span(0, 0),
                help="start with `rollout NAME { ... }`, or `gates NAME { ... }` for shared gates",
            )
        )
        return ParseResult(None, comments, diagnostics)
    return ParseResult(node, comments, diagnostics)
