"""The lowering pass's shared pieces: located errors, phrases and option tables, the base of every lowerer.

A phrase is a run of atoms the grammar leaves open (gate conditions, options,
rule actions); :class:`Phrase` reads one atom at a time and explains what it
expected, and :func:`read_options` matches a list of phrases against an
option table with a did-you-mean for unknown options.  :class:`LowererBase`
holds what every construct's lowering uses: the diagnostics it collects,
`guard` (a problem becomes a diagnostic and lowering goes on), units, and
"defined twice".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rolloutlang import ir, units
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, one_of
from rolloutlang.source import Span
from rolloutlang.syntax import Child, Node, Token

T = TypeVar("T")

class LoweringError(Exception):
    """Raised inside the pass to abandon one construct; turned into a diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class FollowOn(Exception):
    """Abandon a construct whose problem is only a consequence of one already reported."""


def fail(code: str, message: str, span: Span, help: str = "", label: str = "") -> LoweringError:
    return LoweringError(error(code, message, span, help=help, label=label))


def shown(text: str, limit: int = 60) -> str:
    """A string value for a message: in backticks, escapes visible, cut short when long."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    return f"`{body[:limit]}...`" if len(body) > limit else f"`{body}`"


def unquote(token: Token) -> str:
    """The value of a STRING token, escapes resolved."""
    body = token.text[1:-1]
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt not in escapes:
                # A string is on one line, so the escape's column is exact.
                col = token.span.col + 1 + i
                at = Span(file=token.span.file, line=token.span.line, col=col, end_line=token.span.line,
                          end_col=col + 2)
                raise fail(
                    "RL205",
                    f"unknown escape `\\{nxt}` in string",
                    at if token.span.line == token.span.end_line else token.span,
                    label="not an escape",
                    help='strings know `\\"`, `\\\\`, `\\n`, `\\t` and `\\r`; write `\\\\` for a backslash',
                )
            out.append(escapes[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def short(text: str) -> str:
    """A token for a message, cut when it is absurdly long."""
    return text if len(text) <= 40 else text[:37] + "..."


def join_spans(first: Span, last: Span) -> Span:
    return Span(file=first.file, line=first.line, col=first.col, end_line=last.end_line, end_col=last.end_col)


# -- phrases ------------------------------------------------------------------------


@dataclass
class Phrase:
    """A cursor over a phrase's atoms (words, numbers, strings, operators, calls)."""

    atoms: list[Child]
    span: Span
    pos: int = 0

    @classmethod
    def of(cls, node: Node) -> Phrase:
        """A phrase's atoms; `from shadow` (a `phase_ref`, whose name may be a keyword) reads as two words."""
        atoms: list[Child] = []
        for child in node.children:
            if isinstance(child, Node) and child.kind == "phase_ref":
                atoms.extend(Token("NAME", tok.text, tok.span) for tok in child.tokens())
            else:
                atoms.append(child)
        return cls(atoms, node.span)

    def done(self) -> bool:
        return self.pos >= len(self.atoms)

    def peek(self, offset: int = 0) -> Child | None:
        i = self.pos + offset
        return self.atoms[i] if i < len(self.atoms) else None

    def peek_word(self, offset: int = 0) -> str | None:
        atom = self.peek(offset)
        return atom.text if isinstance(atom, Token) and atom.type == "NAME" else None

    def here(self) -> Span:
        atom = self.peek()
        if atom is not None:
            return atom.span
        last = self.atoms[-1].span if self.atoms else self.span
        return Span(file=last.file, line=last.end_line, col=last.end_col, end_line=last.end_line,
                    end_col=last.end_col + 1)

    def next(self) -> Child | None:
        atom = self.peek()
        if atom is not None:
            self.pos += 1
        return atom

    def word(self, what: str, choices: Sequence[str] = ()) -> Token:
        atom = self.next()
        if isinstance(atom, Token) and atom.type == "NAME":
            if choices and atom.text not in choices:
                hint = did_you_mean(atom.text, choices)
                raise fail(
                    "RL203",
                    f"unknown {what} `{atom.text}`",
                    atom.span,
                    help=(hint + " " if hint else "") + f"expected {one_of(list(choices))}",
                )
            return atom
        raise self._expected(atom, one_of(list(choices)) if choices else what)

    def expect_word(self, word: str) -> Token:
        atom = self.peek()
        if isinstance(atom, Token) and atom.type == "NAME" and atom.text == word:
            self.pos += 1
            return atom
        raise self._expected(atom, f"`{word}`", back=0)

    def accept_word(self, *words: str) -> Token | None:
        atom = self.peek()
        if isinstance(atom, Token) and atom.type == "NAME" and atom.text in words:
            self.pos += 1
            return atom
        return None

    def number(self, what: str) -> Token:
        atom = self.next()
        if isinstance(atom, Token) and atom.type == "NUMLIT":
            return atom
        raise self._expected(atom, what)

    def string(self, what: str) -> Token:
        atom = self.next()
        if isinstance(atom, Token) and atom.type == "STRING":
            return atom
        raise self._expected(atom, what)

    def compare(self) -> Token:
        atom = self.next()
        if isinstance(atom, Token) and atom.type == "COMPARE":
            if atom.text in ("==", "!="):
                raise fail("RL204", f"a gate compares with `<`, `<=`, `>` or `>=`, not `{atom.text}`", atom.span,
                            label="not allowed in a gate",
                            help="a gate states the healthy side of a threshold, e.g. `p99 latency < 250ms`")
            return atom
        raise self._expected(atom, "a comparison (`<`, `<=`, `>` or `>=`)")

    def _expected(self, atom: Child | None, what: str, back: int = 1) -> LoweringError:
        if re.fullmatch(r"[a-z][a-z0-9]*", what):  # an option's own name: `alpha`, `sd`, `delta`
            what = f"a value for `{what}`"
        if atom is None:
            return fail("RL202", f"expected {what}", self.here(), label="missing here")
        shown = atom.text if isinstance(atom, Token) else atom.tokens()[0].text + "(...)"
        return fail("RL202", f"expected {what}, found `{shown}`", atom.span)

    def end(self, what: str) -> None:
        atom = self.peek()
        if atom is not None:
            shown = atom.text if isinstance(atom, Token) else atom.tokens()[0].text + "(...)"
            raise fail(
                "RL206",
                f"unexpected `{shown}` after {what}",
                atom.span,
                help="separate options with `,`" if isinstance(atom, Token) and atom.type == "NAME" else "",
            )


def phrases_of(node: Node) -> list[Phrase]:
    return [Phrase.of(p) for p in node.nodes("phrase")]


@dataclass(frozen=True)
class OptionSpec:
    """One option in a phrase list: its leading words and how to read the rest."""

    words: tuple[str, ...]
    read: Callable[[Phrase], Any]
    field: str
    example: str


def read_options(
    phrases: Iterable[Phrase],
    specs: Sequence[OptionSpec],
    context: str,
    sink: list[Diagnostic],
) -> dict[str, tuple[Any, Span]]:
    """Match each phrase against the option table; unknown options get a did-you-mean."""
    found: dict[str, tuple[Any, Span]] = {}
    names = [" ".join(s.words) for s in specs]
    for phrase in phrases:
        if phrase.done():
            continue
        start = phrase.here()
        spec = _match_spec(phrase, specs)
        if spec is None:
            atom = phrase.peek()
            text = atom.text if isinstance(atom, Token) else "(...)"
            words = []
            for a in phrase.atoms[phrase.pos:]:
                if isinstance(a, Token) and a.type == "NAME":
                    words.append(a.text)
                else:
                    break
            guess = did_you_mean(" ".join(words) or text, names) or did_you_mean(text, names)
            examples = ", ".join(f"`{s.example}`" for s in specs[:6])
            sink.append(
                error(
                    "RL207",
                    f"unknown option `{' '.join(words) or text}` for {context}",
                    start,
                    help=(guess + " " if guess else "") + f"{context} takes: {examples}",
                )
            )
            continue
        try:
            value = spec.read(phrase)
            phrase.end(f"`{' '.join(spec.words)}`")
        except LoweringError as exc:
            sink.append(exc.diagnostic)
            continue
        except units.UnitError as exc:
            sink.append(error(exc.code, exc.message, _value_span(phrase, start), help=exc.help))
            continue
        if spec.field in found:
            sink.append(error("RL208", f"option `{' '.join(spec.words)}` given twice", start))
            continue
        found[spec.field] = (value, join_spans(start, phrase.atoms[-1].span))
    return found


def _value_span(phrase: Phrase, fallback: Span) -> Span:
    prev = phrase.atoms[phrase.pos - 1] if 0 < phrase.pos <= len(phrase.atoms) else None
    return prev.span if prev is not None else fallback


def _match_spec(phrase: Phrase, specs: Sequence[OptionSpec]) -> OptionSpec | None:
    best: OptionSpec | None = None
    for spec in specs:
        if all(phrase.peek_word(i) == w for i, w in enumerate(spec.words)):
            if best is None or len(spec.words) > len(best.words):
                best = spec
    if best is not None:
        phrase.pos += len(best.words)
    return best


def duration_of(what: str, minimum: float = 0.0, maximum: float = units.MAX_DURATION_S) -> Callable[[Phrase], float]:
    return lambda p: units.duration(p.number(what).text, what, minimum=minimum, maximum=maximum)


def percent_of(what: str, *, allow_negative: bool = False, low: float | None = None,
         high: float | None = None) -> Callable[[Phrase], float]:
    """A percentage; with ``low``/``high``, within that range of percent."""

    def read(p: Phrase) -> float:
        tok = p.number(what)
        value = units.percent(tok.text, what, allow_negative=allow_negative)
        return units.check_range(value, tok.text, what, low, high, "%") if low is not None or high is not None \
            else value

    return read


def integer_of(what: str, minimum: int = 0, maximum: float = units.MAX_NUMBER) -> Callable[[Phrase], int]:
    return lambda p: int(units.number(p.number(what).text, what, integer=True, minimum=minimum, maximum=maximum))


def choice_of(what: str, choices: Sequence[str]) -> Callable[[Phrase], str]:
    return lambda p: p.word(what, choices).text


def name_of(what: str) -> Callable[[Phrase], tuple[str, Span]]:
    def read(p: Phrase) -> tuple[str, Span]:
        tok = p.word(what)
        return tok.text, tok.span

    return read


def constant(value: T) -> Callable[[Phrase], T]:
    return lambda p: value


# The keyword a statement starts with, where it is not the rule's name.
STATEMENT_WORD = {"traffic_model": "traffic", "metrics_source": "metrics", "request_log": "log",
                   "blue_green": "blue-green", "model_version": "model", "rollback_rule": "on", "use_gates": "use",
                   "label_metric": "metric", "approval": "approve",
                  "scale_down": "scale"}


def keyword_span(span: Span, word: str) -> Span:
    """The first word of a statement: what "given twice" and the like point at."""
    return Span(file=span.file, line=span.line, col=span.col, end_line=span.line, end_col=span.col + len(word))


# The token naming what a statement defines, by grammar rule.
_NAME_TOKEN = {
    "rollout": "NAME", "gate_set": "NAME", "gate": "NAME", "label_metric": "NAME", "scenario": "NAME",
    "canary_stage": "NAME", "model_version": "ROLE", "signature": "ROLE", "signature_field": "NAME",
    "consumer": "NAME", "pipeline_hook": "NAME", "metric_query": "NAME", "pii_field": "NAME",
}


class LowererBase:
    """What the lowering of every construct shares: the diagnostics, `guard`, units and "defined twice"."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        # Statement span -> span of the name it defines, so that "defined
        # twice" points at the name rather than the whole statement.
        self._name_spans: dict[Span, Span] = {}

    def _index_names(self, tree: Node) -> None:
        stack = [tree]
        while stack:
            node = stack.pop()
            want = _NAME_TOKEN.get(node.kind)
            if want is not None:
                tok = node.tok(want) or (node.tok("NUMLIT") if node.kind == "canary_stage" else None)
                if tok is not None:
                    self._name_spans.setdefault(node.span, tok.span)
            stack.extend(c for c in node.children if isinstance(c, Node))

    # utilities

    def guard(self, fn: Callable[[], T]) -> T | None:
        """Run one construct's lowering; a problem becomes a diagnostic and None."""
        try:
            return fn()
        except LoweringError as exc:
            self.diagnostics.append(exc.diagnostic)
        except FollowOn:
            pass
        return None

    def unit(self, token: Token, convert: Callable[[str], T]) -> T:
        try:
            return convert(token.text)
        except units.UnitError as exc:
            raise fail(exc.code, exc.message, token.span, help=exc.help) from None

    def pin(self, node: Node) -> ir.ArtifactPin:
        tok = node.tokens()[0]
        if tok.type == "DIGEST":
            return ir.ArtifactPin(span=tok.span, digest=tok.text)
        return ir.ArtifactPin(span=tok.span, tag=tok.text)

    def duplicate(self, kind: str, items: Iterable[tuple[str, Span]], message: Callable[[str], str] | None = None,
                  help: str = "") -> None:
        seen: dict[str, Span] = {}
        for name, statement_span in items:
            span = self._name_spans.get(statement_span, statement_span)
            if name in seen:
                first = seen[name]
                self.diagnostics.append(
                    error(
                        "RL101",
                        message(name) if message else f"{kind} `{name}` is defined twice",
                        span,
                        label="second definition",
                        notes=(f"first defined at {first}",),
                        help=help or f"rename one of them; {kind} names must be unique",
                    )
                )
            else:
                seen[name] = span

    # file


def option_name(opts: dict[str, tuple[Any, Span]], key: str) -> str | None:
    value = opts.get(key)
    return value[0][0] if value else None


def append_if(items: list[T], value: T | None) -> None:
    if value is not None:
        items.append(value)

