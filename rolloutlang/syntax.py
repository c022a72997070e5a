"""The parser boundary: source text in, a concrete syntax tree and diagnostics out.

No lark type leaves this module.  The tree is converted into :class:`Node` and
:class:`Token` values that carry spans, so the lowering pass and the formatter
never depend on the parsing library, and lark's errors become located,
plain-language diagnostics here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, one_of
from rolloutlang.source import SourceFile, Span

MAX_SYNTAX_ERRORS = 20

# Statement keywords, the words that may start a line; used for recovery and hints.
STATEMENT_KEYWORDS = (
    "service", "namespace", "owner", "model", "signature", "serving", "consumers",
    "traffic", "metrics", "metric", "shadow", "canary", "blue-green", "rolling", "route",
    "gate", "on", "use", "budget", "scenario", "holdout", "bake", "scale", "revert", "pipeline", "approve", "log",
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


Child = Node | Token


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
    # The file beside the package that holds it (the repository's grammar/,
    # installed as rolloutlang.grammar).  importlib.resources would also read
    # it from a zip, but its imports cost `rollout check` 8 ms of its start.
    from rolloutlang import grammar

    return (Path(grammar.__file__).parent / "rollout.lark").read_text(encoding="utf-8")


class _WholeWords:
    """Keeps NAME in every state of lark's contextual lexer, so keywords are whole words.

    A state that expects only keywords (the start of a statement) would
    otherwise read `gatekeeper` as the keyword `gate` and the name `keeper`.
    With NAME there, lark reads the longest word and turns it into a keyword
    only when the whole word is one; a stray name then meets the parser,
    which reports it with a did-you-mean.  The token stream is passed through.
    """

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Any]) -> Iterator[Any]:
        return stream


@lru_cache(maxsize=4)
def _parser(strict: bool = False, one_scanner: bool = True):  # type: ignore[no-untyped-def]
    from lark import Lark

    from rolloutlang.lexing import read_with_one_scanner

    parser = Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=strict,
        postlex=_WholeWords(),
        # Building the LALR tables takes ~1 s (lark checks terminal collisions
        # with interegular when it is installed), so the built parser is cached
        # in the user's own cache folder (lark's default, the shared temp
        # folder, would load a pickle another user could have planted).
        cache=False if strict else _cache_file(),
    )
    if one_scanner:
        read_with_one_scanner(parser)
    return parser


def _cache_file() -> str | bool:
    """Where the built parser is cached, or False when there is no private folder for it."""
    import hashlib
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "rolloutlang"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
            return False
    except OSError:
        return False
    digest = hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()[:16]
    return str(folder / f"grammar-{digest}.lark-cache")


@lru_cache(maxsize=1)
def _comment_scan() -> re.Pattern[str]:
    """Strings and comments, with the lexer's own patterns: a comment is exactly what the lexer skips as one.

    Scanning left to right, a `#` outside a string starts a comment and a `"`
    starts a string, as for the lexer of a file that parses (no other token
    holds either character), so `fmt` compares the comments the parser saw.
    """
    parser = _parser()
    string = parser.get_terminal("STRING").pattern.to_regexp()
    comment = parser.get_terminal("COMMENT").pattern.to_regexp()
    return re.compile(f"{string}|({comment})")


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
    "ROLE": "`stable`|`candidate`",
    "SIG_DIRECTION": "`in`|`out`",
    "MATCH_KIND": "`header`|`cookie`",
    "MATCH_OP": "`=`|`~`|`^=`",
    "PII_TREATMENT": "`hashed`|`dropped`",
    "RULE_EVENT": "`fail`|`pass`",
    "COMPARE": "a comparison like `<`",
    "OPTIONAL": "`?`",
    "RANGE": "`..`",
    "$END": "the end of the file",
}

# Longest token text quoted in a message; longer ones are cut with `...`.
_MAX_SHOWN = 40
# Recovery parses the file again after each error; stop before the characters
# parsed in total would pass this plus twice the file's size, so a huge broken
# file stays fast (lark reads a few hundred kB per second here).
_RECOVERY_BUDGET = 200_000


def _shown(text: str) -> str:
    if len(text) <= _MAX_SHOWN:
        return text
    if text.startswith('"') and text.endswith('"'):
        return text[: _MAX_SHOWN - 4] + '..."'
    return text[: _MAX_SHOWN - 3] + "..."


def _describe_terminal(name: str) -> str | None:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    literal = _terminal_literal(name)
    return f"`{literal}`" if literal is not None else None


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
        return f"string {_shown(text)}"
    if type_ == "NUMLIT":
        return f"number `{_shown(text)}`"
    return f"`{_shown(text)}`"


def _keyword_choices(expected: set[str]) -> list[str]:
    words = []
    for name in expected:
        lit = _terminal_literal(name)
        if lit is not None and re.fullmatch(r"[a-z][a-z-]*", lit):
            words.append(lit)
    return sorted(words)


def _is_statement_word(word: str) -> bool:
    return word in STATEMENT_KEYWORDS or word in TOP_LEVEL_KEYWORDS


def _join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _expected_phrase(expected: set[str]) -> str:
    keywords = _keyword_choices(expected)
    statement_kw = [k for k in keywords if _is_statement_word(k)]
    described: list[str] = []
    for t in sorted(expected):
        if len(statement_kw) >= 4 and _terminal_literal(t) in statement_kw:
            continue
        d = _describe_terminal(t)
        for choice in (d or "").split("|"):
            if choice and choice not in described:
                described.append(choice)
    # `}` reads best last: "expected `from` or `}`".
    described.sort(key=lambda d: (d == "`}`", d))
    if len(statement_kw) >= 4:
        head = "a statement such as " + one_of(_preferred(statement_kw))
        if not described:
            return head
        return ", ".join(described) + ", or " + head
    return _join_or(described) or "something else"


def _preferred(keywords: list[str]) -> list[str]:
    order = ["rollout", "gates", "import", "model", "canary", "gate", "on", "metric", "service"]
    picked = [k for k in order if k in keywords]
    return picked[:5] if picked else keywords[:5]


# -- where the braces are --------------------------------------------------------

# Strings, comments, braces, line ends and the other runs of code, for `_scan_braces`.
_BRACE_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[{}]|\n|[^\s{}"#]+')


@dataclass(frozen=True)
class _Block:
    """A `{ ... }` block found by scanning the text (strings and comments skipped)."""

    open: int
    indent: int
    head: str
    depth: int
    close: int | None = None

    @property
    def keyword(self) -> str:
        m = _FIRST_WORD.match(self.head)
        return m.group(1) if m else ""


@dataclass
class _Braces:
    open: list[_Block]
    closed: list[_Block]
    # A block that an outer block's `}` closed: the `}` sits at the outer
    # block's indentation, so this block most likely misses its own `}`.
    unclosed_inner: _Block | None
    extra_closing: int  # `}` with no `{` to match


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _indent_at(text: str, line_start: int) -> int:
    end = line_start
    while end < len(text) and text[end] in " \t":
        end += 1
    return len(text[line_start:end].expandtabs(4))


def _block_head(text: str, brace: int) -> str:
    """The words before a `{` (`canary`, `rollout ranker-v2`), for messages."""
    before = text[max(0, brace - 200):brace]
    before = re.sub(r"#[^\n]*", "", before).rstrip()
    head = before.split("\n")[-1].strip() if before else ""
    head = head.split("{")[-1].split("}")[-1].strip()
    return _shown(head)


def _scan_braces(text: str, upto: int | None = None) -> _Braces:
    """The blocks of the text up to ``upto``, in one pass (a huge one-line file stays linear)."""
    end = len(text) if upto is None else upto
    stack: list[_Block] = []
    indents: dict[int, int] = {}  # indentation -> how many open blocks have it
    closed: list[_Block] = []
    unclosed_inner: _Block | None = None
    extra = 0
    line_start = 0
    line_indent = 0
    code_before = False  # has the current line code before the brace?

    def pop() -> _Block:
        block = stack.pop()
        indents[block.indent] -= 1
        return block

    for m in _BRACE_SCAN.finditer(text, 0, end):
        tok = m.group()
        if tok == "\n":
            line_start, code_before = m.end(), False
            continue
        if not code_before:
            line_indent = _indent_at(text, line_start)
        if tok == "{":
            stack.append(_Block(m.start(), line_indent, _block_head(text, m.start()), len(stack)))
            indents[line_indent] = indents.get(line_indent, 0) + 1
        elif tok == "}":
            if not stack:
                extra += 1
            else:
                # A `}` that starts its line closes the block opened at its indentation.
                if not code_before and stack[-1].indent > line_indent and indents.get(line_indent, 0) > 0:
                    while stack[-1].indent > line_indent:
                        inner = pop()
                        unclosed_inner = unclosed_inner or inner
                b = pop()
                closed.append(_Block(b.open, b.indent, b.head, b.depth, m.start()))
        code_before = True
    return _Braces(stack, closed, unclosed_inner, extra)


# -- turning lark's errors into diagnostics ----------------------------------------


@dataclass(frozen=True)
class _Recovery:
    """How to carry on after an error: blank a statement or a range, or put in missing `}`s."""

    start: int
    end: int = -1
    statement: bool = False  # blank the whole statement around `start`
    braces: tuple[int, ...] = ()  # put a `}` at each of these offsets


def _expected_set(exc: Exception) -> set[str]:
    """The terminals that may really come next.

    LALR merges lookaheads of similar states, so lark's `expected` can list
    tokens that would fail a step later; asking the parser is exact.
    """
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    ip = getattr(exc, "interactive_parser", None)
    if ip is not None and expected:
        try:
            accepted = set(ip.accepts())
        except Exception:  # a better message is optional; the error itself is not
            return expected
        if accepted:
            return accepted
    return expected


def _diagnose(exc: Exception, src: SourceFile, text: str) -> tuple[Diagnostic, int, _Recovery | None]:
    """Turn a lark error into a diagnostic, the error's offset, and how to recover."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(exc.pos_in_stream or 0, set(exc.allowed or ()), src, text)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = _expected_set(exc)
        if tok.type == "$END":
            return _unexpected_end(expected, src, text)
        offset = tok.start_pos if tok.start_pos is not None else 0
        return _unexpected_token(str(tok.type), str(tok), offset, expected, src, text)
    if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports $END as UnexpectedToken
        return error("RL013", "unexpected end of file", src.span(len(text), len(text))), len(text), None
    raise exc


_QUOTES = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00ab": '"', "\u00bb": '"'}


def _unexpected_character(
    offset: int, allowed: set[str], src: SourceFile, text: str
) -> tuple[Diagnostic, int, _Recovery | None]:
    ch = text[offset]
    if ch == '"':
        end = text.find("\n", offset)
        end = len(text) if end < 0 else end
        diagnostic = error(
            "RL012",
            "unterminated string",
            src.span(offset, end),
            label="this string is never closed",
            help='close it with `"` on the same line; write `\\"` for a quote inside a string',
        )
        return diagnostic, offset, _Recovery(offset, statement=True)
    shown = ch if ch.isprintable() else repr(ch)[1:-1]
    allowed = {a for a in allowed if not a.startswith("__") and a != "COMMENT"}
    if ch in _QUOTES:
        help_ = 'use straight double quotes: `"text"`'
    elif allowed:
        help_ = "expected " + _expected_phrase(allowed)
    else:
        help_ = "remove it"
    diagnostic = error(
        "RL011",
        f"unexpected character `{shown}`",
        src.span(offset, offset + 1),
        label="not part of the language here",
        help=help_,
    )
    return diagnostic, offset, _Recovery(offset, statement=True)


def _unexpected_end(expected: set[str], src: SourceFile, text: str) -> tuple[Diagnostic, int, _Recovery | None]:
    stripped = len(text.rstrip())
    end_span = src.span(max(stripped - 1, 0), max(stripped, 1)) if stripped else src.span(0, 0)
    if "RBRACE" in expected:
        braces = _scan_braces(text)
        block = braces.unclosed_inner or (braces.open[-1] if braces.open else None)
        if block is not None:
            others = [b for b in braces.open if b is not block]
            help_ = "add the missing `}` at the end of the block"
            if others:
                outer = others[-1]
                help_ += (f"; `{outer.head}` (line {src.position(outer.open)[0]}) is not closed either"
                          if outer.head else "")
            name = f"`{block.head}` block" if block.head else "block"
            return (
                error(
                    "RL016",
                    f"{name} is not closed",
                    src.span(block.open, block.open + 1),
                    label="this `{` has no matching `}`",
                    help=help_,
                ),
                len(text),
                None,
            )
        return (
            error("RL013", "unexpected end of file: a `{` block is not closed", end_span, help="add the missing `}`"),
            len(text),
            None,
        )
    return (
        error("RL013", "unexpected end of file", end_span, label="the file ends here",
              help="expected " + _expected_phrase(expected)),
        len(text),
        None,
    )


def _unexpected_token(
    tok_type: str, tok_text: str, offset: int, expected: set[str], src: SourceFile, text: str
) -> tuple[Diagnostic, int, _Recovery | None]:
    span = src.span(offset, offset + len(tok_text))
    ls = _line_start(text, offset)
    line_end = text.find("\n", offset)
    line = text[ls: len(text) if line_end < 0 else line_end]
    first = _FIRST_WORD.match(line.lstrip(" \t}"))
    first_word = first.group(1) if first else ""
    before = text[ls:offset].strip()
    starts_line = before == "" or before.endswith(("{", "}"))
    keywords = _keyword_choices(expected)
    statement_kw = [k for k in keywords if _is_statement_word(k)]

    # A statement keyword where it cannot go: a `{` left open, a `}` too many,
    # or a statement inside a block that does not hold statements.
    if _is_statement_word(first_word):
        placed = _misplaced_statement(first_word, ls, offset, src, text)
        if placed is not None:
            return placed
        assert first is not None
        w_at = ls + len(line) - len(line.lstrip(" \t}")) + first.start(1)
        before_kw = _previous_token_end(text, w_at) if offset > w_at else None
        if before_kw is not None and text.count("\n", before_kw[0], w_at) > 0 \
                and before_kw[1].endswith((":", ",")):
            # `on ctr fail:` with nothing after it read the next statement as its words.
            return _missing_after(before_kw, {"NAME", "NUMLIT", "STRING", "COMPARE"}, src, text, offset)
    elif first and not starts_line:
        # A misspelt keyword at the start of a line after a statement made of
        # free words (`traffic`, `gate`, ...) reads as more of those words, and
        # the parser only trips later on the line: report the keyword.
        w_at = ls + len(line) - len(line.lstrip(" \t}")) + first.start(1)
        prev = _previous_token_end(text, w_at)
        hint = did_you_mean(first_word, STATEMENT_KEYWORDS)
        if hint and prev is not None and text.count("\n", prev[0], w_at) > 0:
            return (
                error("RL014", f"unknown keyword `{_shown(first_word)}`", src.span(w_at, w_at + len(first_word)),
                      label="not a statement", help=hint),
                offset,
                _Recovery(w_at, statement=True),
            )

    if tok_type == "RBRACE" and "RBRACE" not in expected:
        braces = _scan_braces(text, offset)
        if not braces.open:
            return (
                error("RL010", "unmatched `}`", span, label="no block is open here",
                      help="remove this `}`, or look for a missing `{` before it"),
                offset,
                _Recovery(offset, offset + 1),
            )

    if tok_type not in ("STRING", "NUMLIT") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", tok_text):
        if "NAME" not in expected and keywords and starts_line:
            hint = did_you_mean(tok_text, keywords)
            message = f"unknown keyword `{_shown(tok_text)}`"
            home = _BLOCK_WORDS.get(tok_text)
            if home is not None and tok_text not in keywords:
                message = f"`{tok_text}` is only allowed inside `{home.split()[0]}`"
                hint = f"move it into a `{home} {{ ... }}` block"
            where = "not a statement" if len(statement_kw) >= 3 else "expected " + _expected_phrase(expected)
            return (
                error(
                    "RL014",
                    message,
                    span,
                    label=where,
                    help=hint or "expected " + _expected_phrase(expected),
                ),
                offset,
                _Recovery(offset, statement=True),
            )

    misspelt = _misspelt_continuation(text, offset, src)
    if misspelt is not None:
        return misspelt, offset, _Recovery(offset, statement=True)
    hint = _syntax_hint(tok_type, tok_text, expected, first_word, text, offset)
    if not hint and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", tok_text):
        hint = did_you_mean(tok_text, keywords)  # `at strat of`: `start`
    prev = _previous_token_end(text, offset)
    unfinished = "RBRACE" not in expected and not statement_kw and "$END" not in expected
    if unfinished and prev is not None and text.count("\n", prev[0], offset) > 0:
        # Something is missing at the end of the line before: point there.
        return _missing_after(prev, expected, src, text, offset)
    return (
        error(
            "RL010",
            f"unexpected {_describe_token(tok_type, tok_text)}",
            span,
            label="expected " + _expected_phrase(expected),
            help=hint,
        ),
        offset,
        _Recovery(offset, statement=True),
    )


# The words that continue an item of a block after its name and string: a misspelt one reads as the name of
# the next item, and the parser trips on the word after it (`smoke "make smoke" timout 5m`).
_CONTINUATIONS = {
    "pipeline": ("before", "at", "after", "on", "timeout"),
    "consumers": ("adapter", "via", "switch"),
}
_WORD_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]+$")


def _misspelt_continuation(text: str, offset: int, src: SourceFile) -> Diagnostic | None:
    """`timout 5m` in a hook, `swich at` in a consumer: the word before the token, when it is a near miss of a
    word that continues the item, named as the mistake."""
    braces = _scan_braces(text, offset)
    if not braces.open:
        return None
    words = _CONTINUATIONS.get(braces.open[-1].keyword)
    m = _WORD_BEFORE.search(text, _line_start(text, offset), offset)
    if words is None or m is None or m.group(1) in words:
        return None
    hint = did_you_mean(m.group(1), words)
    if not hint:
        return None
    item = {"pipeline": "hook", "consumers": "consumer"}[braces.open[-1].keyword]
    return error("RL010", f"unexpected `{_shown(m.group(1))}`", src.span(m.start(1), m.end(1)),
                 label=f"read as the next {item}'s name", help=hint)


def _missing_after(
    prev: tuple[int, str], expected: set[str], src: SourceFile, text: str, offset: int
) -> tuple[Diagnostic, int, _Recovery | None]:
    """`expected X after Y`, pointing just past Y, where the statement was cut short."""
    end, word = prev
    statement = _FIRST_WORD.match(text[_line_start(text, end):end].lstrip(" \t}"))
    statement_word = statement.group(1) if statement else ""
    what = _expected_phrase(expected)
    if "NAME" in expected and "COMPARE" in expected and word.endswith((":", ",")):
        what = _PHRASE_STARTS.get(statement_word, what)
    hint = _syntax_hint("", "", expected, statement_word, text, end)
    return (
        error("RL010", f"expected {what} after `{_shown(word)}`", src.span(end, end + 1),
              label="missing here", help=hint),
        offset,
        # Blank the unfinished statement, not the line the parser tripped on.
        _Recovery(max(end - 1, 0), statement=True),
    )


def _previous_token_end(text: str, offset: int) -> tuple[int, str] | None:
    """Where the code before `offset` ends (comments skipped), and its last word."""
    pos = offset
    for _ in range(50):
        ls = _line_start(text, max(pos - 1, 0)) if pos > 0 else 0
        line = text[ls:pos]
        cut = len(line)
        for m in _STRINGS_AND_COMMENTS.finditer(line):
            if m.group().startswith("#"):
                cut = m.start()
                break
        code = line[:cut].rstrip()
        if code:
            return ls + len(code), _last_word(code)
        if ls == 0:
            return None
        pos = ls - 1
    return None



def _last_word(code: str) -> str:
    """The last word of a line of code (a whole string if it ends with one), in linear time."""
    word = code.rsplit(None, 1)[-1]
    if code.endswith('"') and len(code) > 1:
        opening = code.rfind('"', 0, len(code) - 1)
        if opening >= 0 and opening < len(code) - len(word):
            return code[opening:]
    return word


def _unclosed(src: SourceFile, block: _Block, word: str, line_no: int, starts: str,
              notes: tuple[str, ...] = ()) -> Diagnostic:
    """RL016: a `{` left open, reported once at the brace, when `word` shows the block must have ended."""
    open_line = src.position(block.open)[0]
    return error(
        "RL016",
        f"`{block.head}` block is not closed",
        src.span(block.open, block.open + 1),
        label="this `{` has no matching `}`",
        help=f"add `}}` before line {line_no} (`{_shown(src.line_text(line_no).strip())}`)",
        notes=(f"`{word}` at line {line_no} starts {starts}, but the block opened at line {open_line} is still open",
               *notes),
    )

def _misplaced_statement(
    word: str, line_start: int, offset: int, src: SourceFile, text: str
) -> tuple[Diagnostic, int, _Recovery | None] | None:
    """Explain a statement that the parser met where it cannot stand."""
    m = re.compile(r"[\s}]*").match(text, line_start)
    kw_at = m.end() if m else line_start
    braces = _scan_braces(text, line_start)
    kw_span = src.span(kw_at, kw_at + len(word))
    line_no = src.position(kw_at)[0]
    if not braces.open:
        if word in TOP_LEVEL_KEYWORDS:
            return None
        tops = [b for b in braces.closed if b.depth == 0 and b.close is not None]
        if braces.extra_closing == 0 and tops and _scan_braces(text).extra_closing > 0:
            last = tops[-1]
            assert last.close is not None
            return (
                error(
                    "RL010",
                    f"extra `}}` closes `{last.head}` early",
                    src.span(last.close, last.close + 1),
                    label=f"this `}}` closes `{last.head}`",
                    notes=(f"so `{word}` at line {line_no} is outside any rollout",),
                    help="remove this `}`",
                ),
                offset,
                _Recovery(last.close, last.close + 1),
            )
        return (
            error(
                "RL010",
                f"`{word}` is outside any rollout",
                kw_span,
                label="not inside a block",
                help="move it into a `rollout <name> { ... }` block"
                + (" or a `gates <name> { ... }` set" if word in ("gate", "on", "metric") else ""),
            ),
            offset,
            _Recovery(offset, statement=True),
        )
    inner = braces.open[-1]
    if word in TOP_LEVEL_KEYWORDS:
        # `rollout`, `gates` and `import` stand only at the top: every block
        # still open here lacks its `}`.
        others = tuple(f"`{b.head}` (line {src.position(b.open)[0]}) is not closed either"
                       for b in reversed(braces.open[:-1]))
        return (
            _unclosed(src, inner, word, line_no, "a new top-level block", others),
            offset,
            _close_before(text, line_start, kw_at, len(braces.open)),
        )
    if inner.keyword in TOP_LEVEL_KEYWORDS:
        if inner.keyword == "gates" and word not in ("gate", "on", "metric"):
            return (
                error(
                    "RL010",
                    f"`{word}` is not allowed in a gate set",
                    kw_span,
                    label="only in a rollout",
                    help="a `gates` set holds `gate`, `on` and `metric` statements; "
                    "move this one into the rollout that uses the set",
                ),
                offset,
                _Recovery(offset, statement=True),
            )
        return None
    if _indent_at(text, line_start) <= inner.indent:
        return (
            _unclosed(src, inner, word, line_no, "a new statement"),
            offset,
            _close_before(text, line_start, kw_at, 1),
        )
    return (
        error(
            "RL010",
            f"`{word}` is not allowed inside `{inner.keyword or inner.head}`",
            kw_span,
            label=f"inside the `{inner.head}` block",
            help=f"move it after the `}}` that closes `{inner.head}`",
        ),
        offset,
        _Recovery(offset, statement=True),
    )


def _close_before(text: str, line_start: int, kw_at: int, count: int) -> _Recovery | None:
    """Put the missing `}` just before a statement, keeping every offset where it was.

    The braces replace whitespace: the statement's indentation first, then
    the blanks and line breaks before it (never inside a comment).
    """
    spaces = [p for p in range(kw_at - 1, line_start - 1, -1) if text[p] in " \t"]
    breaks: list[int] = []
    p = line_start - 1
    in_comment = False  # does the line `p` is on end in a comment? (worked out once per line)
    while p >= 0 and text[p] in " \t\n" and len(spaces) + len(breaks) < 4 * count:
        if text[p] == "\n":
            in_comment = "#" in text[_line_start(text, p):p]
        if not in_comment:
            (breaks if text[p] == "\n" else spaces).append(p)
        p -= 1
    chosen = (spaces + breaks)[:count]
    if not chosen:
        return None
    return _Recovery(chosen[0], braces=tuple(chosen))


# Words that start a line only inside one kind of block.
_BLOCK_WORDS = {
    "image": "serving", "replicas": "serving", "resources": "serving", "warmup": "serving", "port": "serving",
    "fields": "log requests 1%", "pii": "log requests 1%", "retain": "log requests 1%",
    "query": "metrics prometheus \"URL\"", "evaluator": "metrics prometheus \"URL\"",
}

# What a phrase starts with, by statement, for "expected ... after `:`".
_PHRASE_STARTS = {
    "on": "an action such as `rollback`",
    "gate": "a condition such as `p99 latency < 250ms`",
    "metric": "the metric kind, `binary` or `continuous`",
}

_STATEMENT_EXAMPLES = {
    "gate": "gate latency: p99 latency < 250ms",
    "on": "on latency fail: rollback now",
    "metric": "metric ctr: binary, baseline 4.2%",
    "traffic": "traffic 12000 rps, diurnal 30%",
    "budget": "budget exposure <= 5% of requests",
}


def _syntax_hint(tok_type: str, text: str, expected: set[str], first_word: str, source: str, offset: int) -> str:
    from rolloutlang import units

    if expected == {"COLON"} and not _is_statement_word(first_word):
        if first_word in ("in", "out") or "<" in source[_line_start(source, offset):offset]:
            return "a field is written `name: type`, as in `user_id: int64`"
        return "a stage is a weight and how long it lasts (`5% for 6h`); a name before it needs `:` (`mpr: 50% for 7d`)"
    if "COLON" in expected:
        example = _STATEMENT_EXAMPLES.get(first_word)
        if example is not None:
            return f"a `:` goes here, as in `{example}`"
        return "a `:` goes here"
    if tok_type == "NUMLIT":
        try:
            lit = units.split(text)
        except units.UnitError:
            lit = None
        if lit is not None and lit.unit in units.DURATION_UNITS:
            if "FOR" in expected:
                return f"write `for` before the duration: `for {text}`"
            prev = re.search(r"(\d+(?:\.\d+)?)([a-z]+)[ \t]*$", source[max(0, offset - 20):offset])
            if prev is not None and prev.group(2) in units.DURATION_UNITS:
                total = float(prev.group(1)) * units.DURATION_UNITS[prev.group(2)] + lit.number * units.DURATION_UNITS[
                    lit.unit]
                return f"a duration takes one unit: write `{units.format_duration(total)}`"
    if "NUMLIT" in expected and tok_type == "NAME":
        return "a number goes here, with its unit where one is needed (`30m`, `5%`, `250ms`)"
    if tok_type == "NUMLIT" and "VERSION" in expected:
        return "versions are semver: `MAJOR.MINOR.PATCH`, e.g. `1.4.2`"
    if tok_type == "COMMA" and "COMMA" not in expected:
        return "remove the `,`" + ("; canary stages are separated by spaces or new lines"
                                   if first_word == "canary" or "NUMLIT" in expected else "")
    if tok_type == "RBRACE":
        return "something is missing before this `}`"
    if tok_type == "STRING" and "NAME" in expected and "STRING" not in expected:
        return "a name goes here, without quotes"
    if "NAME" in expected and "COMPARE" in expected and first_word in _STATEMENT_EXAMPLES:
        return f"for example: `{_STATEMENT_EXAMPLES[first_word]}`"
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
    line_offset = offset - starts[err_line]
    if lines[err_line][:line_offset].strip() == "" and _FIRST_WORD.match(lines[err_line]):
        # The error is the first word of its line (an unknown keyword): the
        # statement starts here.
        at_statement = True
    for i in range(err_line, -1, -1):
        if at_statement:
            break
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
    indent = _indent_at(lines[start_line], 0)
    for i in range(start_line, len(lines)):
        if i > start_line and depth <= 0:
            m = _FIRST_WORD.match(lines[i])
            word = m.group(1) if m else ""
            stripped = lines[i].strip()
            if word in STATEMENT_KEYWORDS or word in TOP_LEVEL_KEYWORDS or stripped.startswith("}"):
                break
            # A line that starts no further in than the statement is a new one.
            if word and _indent_at(lines[i], 0) <= indent:
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


# How deep calls (`f(g(x))`) and type arguments (`list<list<T>>`) may nest.
# Real specs nest two or three levels; the cap keeps every recursive pass
# (lowering, the formatter, the IR's JSON) far from Python's recursion limit.
MAX_NESTING = 32
_NESTING = {"call": "calls", "type_ref": "type arguments"}


class _TooDeep(Exception):
    def __init__(self, kind: str, start: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.start = start


def _convert(tree, src: SourceFile) -> Node:  # type: ignore[no-untyped-def]
    """lark's tree as :class:`Node` and :class:`Token` values; raises _TooDeep past MAX_NESTING."""
    from lark import Token as LarkToken

    path = src.path

    def span_of_token(t: LarkToken) -> Span:
        # lark counts lines and columns as SourceFile does (1-based, end exclusive, `\n` only).
        if t.line is None or t.column is None or t.end_line is None or t.end_column is None:
            start = t.start_pos or 0
            return src.span(start, t.end_pos if t.end_pos is not None else start + len(t))
        return Span(path, t.line, t.column, t.end_line, t.end_column)

    def walk(t, depth: int) -> Node:  # type: ignore[no-untyped-def]
        kind = str(t.data)
        if kind in _NESTING:
            depth += 1
            if depth > MAX_NESTING:
                raise _TooDeep(kind, getattr(t.meta, "start_pos", 0) or 0)
        children: list[Child] = []
        for c in t.children:
            if isinstance(c, LarkToken):
                children.append(Token(c.type, str(c), span_of_token(c)))
            else:
                children.append(walk(c, depth))
        meta = t.meta
        if getattr(meta, "empty", True):
            span = children[0].span if children else src.span(0, 0)
        else:
            span = Span(path, meta.line, meta.column, meta.end_line, meta.end_column)
        return Node(kind, tuple(children), span)

    return walk(tree, 0)


def _too_deep(exc: _TooDeep, src: SourceFile) -> Diagnostic:
    what = _NESTING[exc.kind]
    example = "`list<list<float32>>`" if exc.kind == "type_ref" else "`lognormal(median 2h, p95 8h)`"
    return error(
        "RL017", f"{what} nest more than {MAX_NESTING} levels deep", src.span(exc.start, exc.start + 1),
        label=f"level {MAX_NESTING + 1} starts here",
        help=f"a spec nests {what} a few levels at most, as in {example}; look for a missing closing bracket",
    )


def parse(src: SourceFile) -> ParseResult:
    """Parse a source file; never raises for bad input."""
    from lark.exceptions import UnexpectedInput

    parser = _parser()
    comments = [Comment(m.group(1), src.span(m.start(1), m.end(1)))
                for m in _comment_scan().finditer(src.text) if m.group(1) is not None]

    diagnostics: list[Diagnostic] = []
    text = src.text
    seen_offsets: set[int] = set()
    tree = None
    work = 0
    while len(diagnostics) < MAX_SYNTAX_ERRORS:
        try:
            tree = parser.parse(text)
            break
        except UnexpectedInput as exc:
            diagnostic, offset, recovery = _diagnose(exc, src, text)
            if offset in seen_offsets or any(
                (d.code, d.span, d.message) == (diagnostic.code, diagnostic.span, diagnostic.message)
                for d in diagnostics
            ):
                break
            seen_offsets.add(offset)
            diagnostics.append(diagnostic)
            work += offset
            if recovery is None or work + len(text) > _RECOVERY_BUDGET + 2 * len(src.text):
                break
            if recovery.statement:
                region = _recovery_region(text, recovery.start)
                if region is None:
                    break
                text = _blank(text, *region)
            elif recovery.braces:
                chars = list(text)
                for at in recovery.braces:
                    chars[at] = "}"
                text = "".join(chars)
            else:
                text = _blank(text, recovery.start, recovery.end)
    if diagnostics:
        return ParseResult(None, comments, diagnostics)
    assert tree is not None
    try:
        node = _convert(tree, src)
    except _TooDeep as exc:
        return ParseResult(None, comments, [_too_deep(exc, src)])
    if not node.children:
        diagnostics.append(
            error(
                "RL015",
                "file has no rollout" if src.text.strip() else "file is empty",
                src.span(0, 0),
                help="start with `rollout <name> { ... }`, or `gates <name> { ... }` for shared gates",
            )
        )
        return ParseResult(None, comments, diagnostics)
    return ParseResult(node, comments, diagnostics)
