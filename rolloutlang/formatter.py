"""The formatter behind `rollout fmt`: one canonical layout, every comment kept.

It works on the concrete syntax tree, not the IR, so it keeps the user's
literal spellings (`2h` stays `2h`, `4.2%` stays `4.2%`) and cannot change
what a file means.  The layout, chosen so there is nothing to argue about:

* two-space indentation, one statement per line, single spaces between
  words, `, ` after commas, except for the aligned columns below;
* a block opens with `{` on its statement's line and closes with `}` on a
  line of its own; an empty block without comments is written `{}`;
* the short option blocks (`scenario`, `blue-green`, `rolling`) stay on one
  line, `scenario regression { ctr -2%, latency +15ms }`, unless a comment
  sits inside them, in which case they get one option per line;
* `signature` gets one `in`/`out` section per line;
* a run of blank lines between statements becomes one blank line; there is
  none at the start or end of a block, and the file ends with one newline.

Columns are aligned as gofmt aligns them, within a *run*: consecutive
one-line statements (or items) of the same kind at the same indentation.  A
blank line, an own-line comment, or a statement that takes several lines of
the output (a block with its body on lines of its own) ends the run, so a
blank line is how to start a new alignment group.  In a run, the part of
each line after its *head* starts in one column, one space after the
longest head.  The kinds and their heads:

* `service`, `namespace`, `owner`, `traffic` and one-line `metrics` (one
  kind): the keyword;
* `model ROLE NAME ...`: `model ROLE`, so the model names align;
* `gate NAME: ...`: `gate NAME:` (the options inside the condition, such as
  `every 5m`, are not aligned);
* `on A, B fail: ...`: `on A, B fail:`;
* `metric NAME: ...`: `metric NAME:`;
* canary stages: the weight, or `label: weight`; a stage with no
  `for`/`until`/`hold` has nothing to align but its weight still counts;
* pipeline hooks `NAME "command"` (and the pipeline's `image`, in the same run)
  and consumers `NAME expects ...`: the name;
* one-line `scenario NAME { ... }`: `scenario NAME`, so the `{` align;
* the items of `serving` (`image`, `replicas`, ...; one kind), of `log
  requests` (`fields`, `pii`, `retain`; one kind) and a signature's `in` and
  `out`: the keyword.

Trailing comments align in a run of any kind (two `budget` lines make a run
too): they start in one column, two spaces after the longest line of the run
that carries a comment, so a long line without one (a pinned image, a model
with its digest) does not push its neighbours' comments to the right.  A
line alone in its run, or one that opens or closes a block, has two spaces
before its comment.  Alignment is worked out from the statements alone,
never from the spacing they came with, so formatting twice changes nothing.

Comments are placed by where they were: an own-line comment stays on its
own line before the statement that follows it (or before the `}` or the end
of the file it precedes); a comment after code on the same line stays at the
end of the line that code ends; a comment that sat between two tokens of one
statement, which has no exact place once the statement is on one line, moves
to its own line just before that statement.  No comment is ever dropped: the
result is parsed again and compared with the input, token for token and
comment for comment, and character for character (blanks and the layout's
own `,`, `{` and `}` aside), before anything is written; a file that would
change or lose anything is refused (RL018, RL019) and left as it is.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rolloutlang.diagnostics import Diagnostic, error
from rolloutlang.lowering import lower
from rolloutlang.outputs import write_atomic
from rolloutlang.source import SourceError, SourceFile, Span, byte_span, read_source
from rolloutlang.syntax import Child, Comment, Node, ParseResult, Token, parse

INDENT = "  "
TRAILING_GAP = "  "

_BLANK_LINE = re.compile(r"\n[ \t\f\r]*\n")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')

__all__ = ["FormatOutcome", "format_file", "format_parsed", "format_source", "strip_spans"]


@dataclass
class FormatOutcome:
    """What `format_file` did to one file, for the CLI to report.

    ``diagnostics`` is non-empty when the file was left alone because it could
    not be read, parsed or lowered; ``io_error`` says the problem was reading
    or writing the file rather than its contents.
    """

    changed: bool = False
    diff: str = ""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, SourceFile] = field(default_factory=dict)
    io_error: bool = False
    text: str | None = None


class _Unsupported(Exception):
    """A tree node this formatter does not know: a grammar change it has not caught up with."""


# -- rendering one line ------------------------------------------------------


def _tok(node: Node, type_: str, index: int = 0) -> str:
    return node.toks(type_)[index].text


def _sub(node: Node, kind: str) -> Node:
    found = node.node(kind)
    if found is None:
        raise _Unsupported(f"`{node.kind}` without `{kind}`")
    return found


def _atom(child: Child) -> str:
    if isinstance(child, Token):
        return child.text
    if child.kind == "call":
        args = ", ".join(_phrase(p) for p in child.nodes("phrase"))
        return f"{_tok(child, 'NAME')}({args})"
    if child.kind == "phase_ref":
        return " ".join(t.text for t in child.tokens())
    raise _Unsupported(child.kind)


def _phrase(node: Node) -> str:
    return " ".join(_atom(c) for c in node.children)


def _phrases(node: Node) -> str:
    return ", ".join(_phrase(p) for p in node.nodes("phrase"))


def _type_ref(node: Node) -> str:
    children = list(node.children)
    head = children[0]
    if not isinstance(head, Token):
        raise _Unsupported("type_ref")
    args = [a.text if isinstance(a, Token) else _type_ref(a) for a in children[1:]]
    return f"{head.text}<{', '.join(args)}>" if args else head.text


def _pin(node: Node | None) -> str:
    return f" @ {node.tokens()[0].text}" if node is not None else ""


def _model_version(n: Node) -> str:
    source = n.node("model_source")
    text = f"model {_tok(n, 'ROLE')} {_tok(n, 'NAME')} {_sub(n, 'version').tokens()[0].text}{_pin(n.node('pin'))}"
    return text + (f" from {_tok(source, 'STRING')}" if source is not None else "")


def _signature_section(n: Node) -> str:
    fields = []
    for f in n.nodes("signature_field"):
        optional = "?" if f.tok("OPTIONAL") is not None else ""
        personal = " pii" if f.node("field_pii") is not None else ""
        fields.append(f"{_tok(f, 'NAME')}{optional}: {_type_ref(_sub(f, 'type_ref'))}{personal}")
    return f"{_tok(n, 'SIG_DIRECTION')} {', '.join(fields)}"


def _consumer(n: Node) -> str:
    text = f"{_tok(n, 'NAME')} expects {_tok(n, 'NAME', 1)} {_tok(n, 'NUMLIT')}"
    adapter = n.node("consumer_adapter")
    if adapter is not None:
        text += f" adapter {_tok(adapter, 'STRING')}"
    route = n.node("consumer_route")
    if route is not None:
        text += f" via {_match(route)}"
    switch = n.node("consumer_switch")
    if switch is not None:
        text += f" switch at {_tok(switch, 'NAME')}"
    return text


def _match(n: Node) -> str:
    return f"{_tok(n, 'MATCH_KIND')} {_tok(n, 'STRING')} {_tok(n, 'MATCH_OP')} {_tok(n, 'STRING', 1)}"


def _shadow(n: Node) -> str:
    head = f"shadow {_tok(n, 'NUMLIT')}"
    for_ = n.node("shadow_for")
    if for_ is not None:
        return f"{head} for {_tok(for_, 'NUMLIT')}"
    along = _sub(n, "shadow_alongside")
    until = along.tok("NUMLIT")
    return f"{head} alongside canary" + (f" until {until.text}" if until is not None else "")


def _stage_head(n: Node) -> str:
    name = n.tok("NAME")
    return (f"{name.text}: " if name is not None else "") + _tok(n, "NUMLIT")


def _canary_stage(n: Node) -> str:
    text = _stage_head(n)
    for end in n.children:
        if isinstance(end, Node):
            if end.kind == "stage_for":
                text += f" for {_tok(end, 'NUMLIT')}"
            elif end.kind == "stage_until_approved":
                text += " until approved"
            elif end.kind == "stage_hold":
                text += " hold"
            else:
                raise _Unsupported(end.kind)
    return text


def _log_pii(n: Node) -> str:
    fields = []
    for f in n.nodes("pii_field"):
        treatment = f.tok("PII_TREATMENT")
        fields.append(_tok(f, "NAME") + (f" {treatment.text}" if treatment is not None else ""))
    return "pii " + ", ".join(fields)


_HOOK_POINT_WORDS = {
    "hook_before_traffic": "before traffic", "hook_at_start": "at start of", "hook_at_end": "at end of",
    "hook_after_promotion": "after promotion", "hook_on_rollback": "on rollback",
}


def _pipeline_hook(n: Node) -> str:
    text = f"{_tok(n, 'NAME')} {_tok(n, 'STRING')}"
    for part in n.children:
        if not isinstance(part, Node):
            continue
        if part.kind in _HOOK_POINT_WORDS:
            phase = part.tok("NAME")
            text += f" {_HOOK_POINT_WORDS[part.kind]}" + (f" {phase.text}" if phase is not None else "")
        elif part.kind == "hook_timeout":
            text += f", timeout {_tok(part, 'NUMLIT')}"
        else:
            raise _Unsupported(part.kind)
    return text


def _rule_head(n: Node) -> str:
    event = n.tok("RULE_EVENT")
    return f"on {', '.join(t.text for t in n.toks('NAME'))} {event.text if event is not None else 'fail'}:"


# Statements and items that always take one line, by rule name.  Keywords are
# anonymous tokens the tree leaves out, so each renderer writes them back.
_LINE: dict[str, Callable[[Node], str]] = {
    "import_decl": lambda n: f"import {_tok(n, 'STRING')}",
    "service": lambda n: f"service {_tok(n, 'NAME')}",
    "namespace": lambda n: f"namespace {_tok(n, 'NAME')}",
    "owner": lambda n: f"owner {_tok(n, 'STRING')}",
    "model_version": _model_version,
    "signature_section": _signature_section,
    "serving_image": lambda n: f"image {_tok(n, 'STRING')}{_pin(n.node('pin'))}",
    "serving_replicas": lambda n: "replicas " + "".join(t.text for t in n.tokens()),
    "serving_resources": lambda n: "resources "
    + ", ".join(f"{_tok(r, 'NAME')} {_tok(r, 'NUMLIT')}" for r in n.nodes("resource")),
    "serving_warmup": lambda n: f"warmup {_tok(n, 'NUMLIT')}",
    "serving_port": lambda n: f"port {_tok(n, 'NUMLIT')}",
    "consumer": _consumer,
    "traffic_model": lambda n: f"traffic {_phrases(n)}",
    "metric_query": lambda n: f"query {_tok(n, 'NAME')} {_tok(n, 'STRING')}",
    "metrics_evaluator": lambda n: f"evaluator {_tok(n, 'STRING')}{_pin(n.node('pin'))}",
    "label_metric": lambda n: f"metric {_tok(n, 'NAME')}: {_phrases(n)}",
    "shadow": _shadow,
    "canary_stage": _canary_stage,
    "route": lambda n: f"route {_match(n)} to {_tok(n, 'ROLE')}",
    "gate": lambda n: f"gate {_tok(n, 'NAME')}: {_phrases(n)}",
    "rollback_rule": lambda n: f"{_rule_head(n)} {_phrases(n)}",
    "use_gates": lambda n: f"use gates {_tok(n, 'NAME')}",
    "budget": lambda n: f"budget {_phrases(n)}",
    "holdout": lambda n: f"holdout {_tok(n, 'NUMLIT')} on {_tok(n, 'ROLE')} for {_tok(n, 'NUMLIT', 1)}",
    "bake": lambda n: f"bake for {_tok(n, 'NUMLIT')}",
    "scale_down": lambda n: f"scale down after {_tok(n, 'NUMLIT')}",
    "revert": lambda n: "revert" + "".join(f" {t.text}" for t in n.toks("STRING")),
    "pipeline_hook": _pipeline_hook,
    "pipeline_image": lambda n: f"image {_tok(n, 'STRING')}{_pin(n.node('pin'))}",
    "approval": lambda n: f"approve {_tok(n, 'NAME')} by {', '.join(t.text for t in n.toks('STRING'))}",
    "log_fields": lambda n: "fields " + ", ".join(t.text for t in n.toks("NAME")),
    "log_pii": _log_pii,
    "log_retain": lambda n: f"retain {_tok(n, 'NUMLIT')}",
}

# Statements with a `{ ... }` body of statements or items, one per line: the
# text before `{`.
_BLOCK: dict[str, Callable[[Node], str]] = {
    "gate_set": lambda n: f"gates {_tok(n, 'NAME')}",
    "rollout": lambda n: f"rollout {_tok(n, 'NAME')}",
    "signature": lambda n: "signature" + "".join(f" {t.text}" for t in n.toks("ROLE")),
    "serving": lambda n: "serving",
    "consumers": lambda n: "consumers",
    "metrics_source": lambda n: f"metrics {_tok(n, 'NAME')} {_tok(n, 'STRING')}",
    "canary": lambda n: "canary",
    "pipeline": lambda n: "pipeline",
    "request_log": lambda n: f"log requests {_tok(n, 'NUMLIT')}",
}

# Statements whose block is a comma-separated list of options (phrases).
_OPTION_BLOCK: dict[str, Callable[[Node], str]] = {
    "blue_green": lambda n: "blue-green",
    "rolling": lambda n: "rolling",
    "scenario": lambda n: f"scenario {_tok(n, 'NAME')}",
}



def _word(word: str) -> Callable[[Node], str]:
    return lambda n: word


# Statements and items with a column to align (see the module docstring): the
# kind of run they belong to, and their head, the text before the column.  A
# line's text must be its head, or its head, a space and the rest.
_COLUMN: dict[str, tuple[str, Callable[[Node], str]]] = {
    "service": ("header", _word("service")),
    "namespace": ("header", _word("namespace")),
    "owner": ("header", _word("owner")),
    "traffic_model": ("header", _word("traffic")),
    "metrics_source": ("header", _word("metrics")),
    "model_version": ("model_version", lambda n: f"model {_tok(n, 'ROLE')}"),
    "gate": ("gate", lambda n: f"gate {_tok(n, 'NAME')}:"),
    "rollback_rule": ("rollback_rule", _rule_head),
    "label_metric": ("label_metric", lambda n: f"metric {_tok(n, 'NAME')}:"),
    "canary_stage": ("canary_stage", _stage_head),
    "pipeline_hook": ("pipeline_hook", lambda n: _tok(n, "NAME")),
    "pipeline_image": ("pipeline_hook", _word("image")),
    "consumer": ("consumer", lambda n: _tok(n, "NAME")),
    "scenario": ("scenario", lambda n: f"scenario {_tok(n, 'NAME')}"),
    "serving_image": ("serving", _word("image")),
    "serving_replicas": ("serving", _word("replicas")),
    "serving_resources": ("serving", _word("resources")),
    "serving_warmup": ("serving", _word("warmup")),
    "serving_port": ("serving", _word("port")),
    "log_fields": ("log", _word("fields")),
    "log_pii": ("log", _word("pii")),
    "log_retain": ("log", _word("retain")),
    "signature_section": ("signature_section", lambda n: _tok(n, "SIG_DIRECTION")),
}


# -- layout ----------------------------------------------------------------------

RowKind = Literal["line", "open", "close"]


@dataclass
class _Row:
    """One output line of code and the stretch of source [start, end) it stands for."""

    indent: int
    text: str
    start: int
    end: int
    kind: RowKind
    own_line: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, text) before the row
    moved: list[str] = field(default_factory=list)  # comments from inside the row's own tokens
    closing: list[tuple[int, int, str]] = field(default_factory=list)  # comments before a `}` row
    trailing: str | None = None
    run: str = ""  # a one-line row's kind of run: rows align only with rows of the same kind
    head: str | None = None  # the text before the aligned column, for a row that has one


class _Layout:
    """Turns a syntax tree into rows of code, in source order."""

    def __init__(self, src: SourceFile, comment_starts: Sequence[int]) -> None:
        self.src = src
        self.text = src.text
        self.comment_starts = comment_starts
        self.rows: list[_Row] = []

    def offset(self, span: Span, end: bool = False) -> int:
        return self.src.offset(span.end_line, span.end_col) if end else self.src.offset(span.line, span.col)

    def has_comment(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.comment_starts, start)
        return i < len(self.comment_starts) and self.comment_starts[i] < end

    def open_brace(self, node: Node) -> int:
        """Offset of a block's `{`: the first one outside strings and comments."""
        text = self.text
        pos = self.offset(node.span)
        end = self.offset(node.span, end=True)
        while pos < end:
            ch = text[pos]
            if ch == "{":
                return pos
            if ch == "#":
                newline = text.find("\n", pos)
                pos = end if newline < 0 else newline
                continue
            if ch == '"':
                m = _STRING.match(text, pos)
                if m is not None:
                    pos = m.end()
                    continue
            pos += 1
        raise _Unsupported(f"`{node.kind}` without `{{`")

    def close_brace(self, node: Node) -> int:
        end = self.offset(node.span, end=True)
        if end <= 0 or self.text[end - 1] != "}":
            raise _Unsupported(f"`{node.kind}` without `}}`")
        return end - 1

    def line(self, node: Node, indent: int, text: str) -> None:
        row = _Row(indent, text, self.offset(node.span), self.offset(node.span, end=True), "line", run=node.kind)
        column = _COLUMN.get(node.kind)
        if column is not None:
            row.run = column[0]
            head = column[1](node)
            if text == head or text.startswith(head + " "):
                row.head = head
        self.rows.append(row)

    def item(self, node: Node, indent: int) -> None:
        kind = node.kind
        if kind in _LINE:
            self.line(node, indent, _LINE[kind](node))
        elif kind in _OPTION_BLOCK:
            self.option_block(node, indent)
        elif kind == "metrics_source" and not node.nodes("metric_query") and not node.nodes("metrics_evaluator"):
            self.metrics_without_queries(node, indent)
        elif kind in _BLOCK:
            self.block(node, indent, [c for c in node.children if isinstance(c, Node)])
        else:
            raise _Unsupported(kind)

    def block(self, node: Node, indent: int, body: list[Node]) -> None:
        head = _BLOCK[node.kind](node)
        lbrace, rbrace = self.open_brace(node), self.close_brace(node)
        if not body and not self.has_comment(lbrace, rbrace):
            self.line(node, indent, head + " {}")
            return
        self.rows.append(_Row(indent, head + " {", self.offset(node.span), lbrace + 1, "open"))
        for child in body:
            self.item(child, indent + 1)
        self.rows.append(_Row(indent, "}", rbrace, rbrace + 1, "close"))

    def metrics_without_queries(self, node: Node, indent: int) -> None:
        """`metrics NAME STRING`, dropping an empty `{}` unless a comment lives in it."""
        last = node.tokens()[-1]
        node_end = self.offset(node.span, end=True)
        if node_end > self.offset(last.span, end=True):
            lbrace, rbrace = self.open_brace(node), self.close_brace(node)
            if self.has_comment(lbrace, rbrace):
                self.block(node, indent, [])
                return
        self.line(node, indent, _BLOCK["metrics_source"](node))

    def option_block(self, node: Node, indent: int) -> None:
        head = _OPTION_BLOCK[node.kind](node)
        phrases = node.nodes("phrase")
        lbrace, rbrace = self.open_brace(node), self.close_brace(node)
        if not self.has_comment(lbrace, rbrace):
            body = ", ".join(_phrase(p) for p in phrases)
            self.line(node, indent, f"{head} {{ {body} }}" if body else f"{head} {{}}")
            return
        self.rows.append(_Row(indent, head + " {", self.offset(node.span), lbrace + 1, "open"))
        for i, p in enumerate(phrases):
            comma = "," if i < len(phrases) - 1 else ""
            self.line(p, indent + 1, _phrase(p) + comma)
        self.rows.append(_Row(indent, "}", rbrace, rbrace + 1, "close"))


def _place_comments(rows: list[_Row], comments: Sequence[Comment], src: SourceFile) -> list[tuple[int, int, str]]:
    """Attach each comment to a row; return the ones that end the file."""
    starts = [r.start for r in rows]
    at_end: list[tuple[int, int, str]] = []
    for c in comments:
        cs = src.offset(c.span.line, c.span.col)
        ce = src.offset(c.span.end_line, c.span.end_col)
        text = c.text.rstrip()
        i = bisect.bisect_right(starts, cs) - 1
        prev = rows[i] if i >= 0 else None
        if prev is not None and cs < prev.end:
            prev.moved.append(text)
            continue
        if prev is not None and prev.trailing is None and "\n" not in src.text[prev.end:cs]:
            prev.trailing = text
            continue
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        if nxt is None:
            at_end.append((cs, ce, text))
        elif nxt.kind == "close":
            nxt.closing.append((cs, ce, text))
        else:
            nxt.own_line.append((cs, ce, text))
    return at_end


@dataclass
class _Line:
    """One output line before alignment: a blank line, a comment, or a row of code."""

    indent: int
    text: str
    row: _Row | None = None


def _render(rows: list[_Row], at_end: list[tuple[int, int, str]], src: SourceFile) -> str:
    """Write rows and comments out, keeping one blank line where the source had any."""
    lines: list[_Line] = []
    prev_end: int | None = None
    prev_kind: str = "open"

    def emit(indent: int, text: str, start: int, end: int, kind: str, row: _Row | None = None) -> None:
        nonlocal prev_end, prev_kind
        gap_start = prev_end
        if (
            gap_start is not None
            and prev_kind != "open"
            and kind != "close"
            and _BLANK_LINE.search(src.text, gap_start, start)
        ):
            lines.append(_Line(0, ""))
        lines.append(_Line(indent, text, row))
        prev_end, prev_kind = end, kind

    for row in rows:
        for cs, ce, text in row.closing:
            emit(row.indent + 1, text, cs, ce, "comment")
        for cs, ce, text in row.own_line:
            emit(row.indent, text, cs, ce, "comment")
        for text in row.moved:
            # Comments moved out of the statement open its group: a blank line
            # from the source goes before them, none between them and it.
            emit(row.indent, text, row.start, row.start, "comment")
        emit(row.indent, row.text, row.start, row.end, row.kind, row)
    for cs, ce, text in at_end:
        emit(0, text, cs, ce, "comment")
    return "\n".join(_align(lines)) + "\n"


def _align(lines: list[_Line]) -> list[str]:
    """The output text: each run of one-line rows of one kind aligned (see the module docstring)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line, row = lines[i], lines[i].row
        if row is None or row.kind != "line":
            # A blank line, a comment, or a row that opens or closes a block: never aligned.
            text = line.text if row is None or row.trailing is None else line.text + TRAILING_GAP + row.trailing
            out.append(INDENT * line.indent + text if text else "")
            i += 1
            continue
        run = [row]
        i += 1
        while i < len(lines):
            nxt = lines[i].row
            if nxt is None or nxt.kind != "line" or nxt.indent != row.indent or nxt.run != row.run:
                break
            run.append(nxt)
            i += 1
        out.extend(_align_run(run))
    return out


def _align_run(run: list[_Row]) -> list[str]:
    """One run of rows: the column after the heads, then the trailing comments."""
    width = max((len(r.head) for r in run if r.head is not None), default=0)
    code = []
    for r in run:
        if r.head is None or r.text == r.head:
            code.append(r.text)
        else:
            code.append(r.head.ljust(width) + r.text[len(r.head):])
    # Only lines that carry a comment set its column: one long line without a
    # comment (a pinned image, a model with its digest) does not push the
    # comments of its short neighbours far to the right.
    column = max((len(c) for r, c in zip(run, code, strict=True) if r.trailing is not None), default=0)
    column += len(TRAILING_GAP)
    return [INDENT * r.indent + (c.ljust(column) + r.trailing if r.trailing is not None else c)
            for r, c in zip(run, code, strict=True)]


def _shape(node: Node) -> tuple[object, ...]:
    """The tree without positions: what must survive formatting unchanged."""
    return (node.kind, tuple((c.type, c.text) if isinstance(c, Token) else _shape(c) for c in node.children))


def format_parsed(src: SourceFile, result: ParseResult) -> tuple[str | None, list[Diagnostic]]:
    """Format an already parsed file; None (and why) when it cannot be formatted safely."""
    if result.tree is None:
        return None, list(result.diagnostics)
    starts = [src.offset(c.span.line, c.span.col) for c in result.comments]
    layout = _Layout(src, starts)
    try:
        for child in result.tree.children:
            if isinstance(child, Node):
                layout.item(child, 0)
    except (_Unsupported, IndexError) as exc:
        return None, [_internal(src, f"the formatter does not know this construct ({exc})")]
    at_end = _place_comments(layout.rows, result.comments, src)
    text = _render(layout.rows, at_end, src)
    refusal = _check_kept(src, result, text)
    return (None, [refusal]) if refusal is not None else (text, [])


# What the layout may add or drop besides blanks: `, ` between items (and a
# trailing comma), and the braces of an empty `metrics ... {}`.
_LAYOUT_CHARACTERS = frozenset(",{}")


def _check_kept(src: SourceFile, result: ParseResult, text: str) -> Diagnostic | None:
    """The safety net under `fmt`: why ``text`` may not replace the source, or None when it may.

    Three independent checks: the output parses to the same tokens in the
    same tree; it has the same comments, each kept whole, in the same order;
    and every character of the source other than blanks and the layout's own
    punctuation is in the output as many times (a comment or a token that
    went missing fails this one even if the first two were fooled).
    """
    assert result.tree is not None
    again = parse(SourceFile(src.path, text))
    if again.tree is None or _shape(again.tree) != _shape(result.tree):
        where = _first_changed_token(result.tree, again.tree)
        return error("RL018", "`fmt` would change the tokens of this file, so it leaves the file as it is",
                     where or src.span(0, 0), label="this token would change",
                     help="this is a bug in rolloutlang; please report it with the file")
    before = [c.text.rstrip() for c in result.comments]
    after = [c.text.rstrip() for c in again.comments]
    if before != after:
        first = next((i for i, c in enumerate(before) if i >= len(after) or after[i] != c), len(before) - 1)
        return error("RL019", "`fmt` would lose or change a comment, so it leaves the file as it is",
                     result.comments[first].span if result.comments else src.span(0, 0), label="this comment",
                     help="this is a bug in rolloutlang; please report it with the file")
    missing = _missing_character(src.text, text)
    if missing is not None:
        return error("RL019", "`fmt` would lose text of this file, so it leaves the file as it is",
                     src.span(missing, missing + 1), label="this text would be lost",
                     help="this is a bug in rolloutlang; please report it with the file")
    return None


def _missing_character(before: str, after: str) -> int | None:
    """Offset in ``before`` of a character that ``after`` holds fewer times (blanks and layout aside)."""
    from collections import Counter

    def counted(text: str) -> Counter[str]:
        return Counter(c for c in text if not c.isspace() and c not in _LAYOUT_CHARACTERS)

    short = counted(before) - counted(after)
    if not short:
        return None
    return min(before.rfind(c) for c in short)


def _first_changed_token(old: Node, new: Node | None) -> Span | None:
    """Where the first token that formatting would change is, in the source."""
    old_tokens = old.tokens()
    new_tokens = new.tokens() if new is not None else []
    for i, tok in enumerate(old_tokens):
        if i >= len(new_tokens) or (new_tokens[i].type, new_tokens[i].text) != (tok.type, tok.text):
            return tok.span
    return old_tokens[-1].span if old_tokens else None


def strip_spans(value: Any) -> Any:
    """A dumped IR (``dataclasses.asdict``) without positions, to compare what two texts mean.

    Drops every ``span`` and every field named ``*_span`` or ``*_spans``
    (``version_span``, ``gate_spans``, ...), at any depth.
    """
    if isinstance(value, dict):
        return {k: strip_spans(v) for k, v in value.items()
                if not (k == "span" or k.endswith("_span") or k.endswith("_spans"))}
    if isinstance(value, (list, tuple)):
        return [strip_spans(v) for v in value]
    return value


def _internal(src: SourceFile, message: str) -> Diagnostic:
    return error("RL000", f"internal error: {message}", src.span(0, 0),
                 help="the file is left as it is; this is a bug in rolloutlang, please report it with the file")


def format_source(text: str, path: str = "<input>") -> tuple[str | None, list[Diagnostic]]:
    """Format source text; the text is None when it does not parse.

    Only syntax matters here: text that parses but lowers with errors is still
    formatted (`format_file` is the one that refuses to rewrite such a file).
    """
    src = SourceFile(path, text)
    return format_parsed(src, parse(src))


# -- files -------------------------------------------------------------------------


def format_file(path: Path, write: bool = True) -> FormatOutcome:
    """Format one file, writing it back atomically only when its text changes.

    A file that cannot be read, does not parse, or lowers with errors is left
    byte for byte as it is, and the outcome carries the diagnostics.
    """
    name = path.as_posix()
    try:
        text = read_source(path)
    except SourceError as exc:
        return FormatOutcome(diagnostics=[error(exc.code, exc.message, _byte_span(path, name, exc.offset),
                                                help=exc.help)], io_error=True)
    src = SourceFile(name, text)
    outcome = FormatOutcome(sources={name: src})
    result = parse(src)
    if result.tree is None:
        outcome.diagnostics = list(result.diagnostics)
        return outcome
    _, lowering = lower(result.tree, name)
    errors = [d for d in lowering if d.is_error]
    if errors:
        outcome.diagnostics = errors
        return outcome
    formatted, diagnostics = format_parsed(src, result)
    if formatted is None:
        outcome.diagnostics = diagnostics
        return outcome
    outcome.text = formatted
    outcome.changed = formatted != text
    if not outcome.changed:
        return outcome
    outcome.diff = unified_diff(text, formatted, name)
    if write:
        try:
            write_atomic(path, formatted)
        except OSError as exc:
            outcome.diagnostics = [error("RL003", f"cannot write `{name}`: {exc.strerror or exc}",
                                         help="check the file's and its folder's permissions")]
            outcome.io_error = True
    return outcome


def _byte_span(path: Path, name: str, offset: int | None) -> Span | None:
    """Where a byte-level problem (binary, bad UTF-8) is, when it can be told."""
    if offset is None:
        return None
    try:
        return byte_span(name, path.read_bytes(), offset)
    except OSError:
        return None


def unified_diff(old: str, new: str, name: str) -> str:
    """A `git diff`-style unified diff from `a/<name>` to `b/<name>`."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"
    )
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)
