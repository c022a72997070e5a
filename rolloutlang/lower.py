"""Lowering: the concrete syntax tree becomes the typed IR.

This pass owns the meaning of every word: units, option names, gate
conditions, rule actions.  A wrong word gets a located diagnostic with the
accepted spellings and a did-you-mean; lowering goes on past it so one run
reports every mistake.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from rolloutlang import handles, ir, units
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, one_of
from rolloutlang.source import Span
from rolloutlang.syntax import STATEMENT_KEYWORDS, Child, Node, Token

T = TypeVar("T")

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

# Ranges a spec's values must lie in (see units.check_range), chosen so that
# every downstream computation stays finite and fast, and wide enough for any
# real rollout.
MAX_FAILURE_LIMIT = 10_000
MAX_BINS = 1_000
MIN_ALPHA_PERCENT, MAX_ALPHA_PERCENT = 0.0001, 50.0  # z-quantiles stay finite
MIN_POWER_PERCENT, MAX_POWER_PERCENT = 1.0, 99.9999
MIN_RELATIVE_CHANGE = 1e-6  # 0.0001%: smaller changes vanish in floating point next to the baseline
MIN_ABSOLUTE_CHANGE = 1e-9
MIN_BINARY_BASELINE, MAX_BINARY_BASELINE = 1e-6, 1 - 1e-6
MIN_SD = 1e-9  # also the smallest non-zero baseline of a continuous metric
MAX_SIGMA = 10.0
_Z95 = 1.6448536269514722  # the standard normal's 95th percentile
MIN_RATE_RPS, MAX_RATE_RPS = 1 / 3600, 1e9  # one request an hour to a billion a second
MAX_GPUS = 1_024
MAX_VERSION_NUMBER = 2**53 - 1  # what npm's semver and JSON numbers hold exactly

SCALAR_TYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "string", "bytes", "category", "timestamp",
)
CONTAINER_TYPES = ("list", "vector", "tensor")
DRIFT_STATISTICS = ("psi", "kl", "js", "mmd", "adwin")
DELAY_DISTRIBUTIONS = ("immediate", "fixed", "exponential", "lognormal")


class LoweringError(Exception):
    """Raised inside the pass to abandon one construct; turned into a diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _FollowOn(Exception):
    """Abandon a construct whose problem is only a consequence of one already reported."""


def _fail(code: str, message: str, span: Span, help: str = "", label: str = "") -> LoweringError:
    return LoweringError(error(code, message, span, help=help, label=label))


def _shown(text: str, limit: int = 60) -> str:
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
                raise _fail(
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


def _short(text: str) -> str:
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
        return cls(list(node.children), node.span)

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
                raise _fail(
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
                raise _fail("RL204", f"a gate compares with `<`, `<=`, `>` or `>=`, not `{atom.text}`", atom.span,
                            label="not allowed in a gate",
                            help="a gate states the healthy side of a threshold, e.g. `p99 latency < 250ms`")
            return atom
        raise self._expected(atom, "a comparison (`<`, `<=`, `>` or `>=`)")

    def _expected(self, atom: Child | None, what: str, back: int = 1) -> LoweringError:
        if re.fullmatch(r"[a-z][a-z0-9]*", what):  # an option's own name: `alpha`, `sd`, `delta`
            what = f"a value for `{what}`"
        if atom is None:
            return _fail("RL202", f"expected {what}", self.here(), label="missing here")
        shown = atom.text if isinstance(atom, Token) else atom.tokens()[0].text + "(...)"
        return _fail("RL202", f"expected {what}, found `{shown}`", atom.span)

    def end(self, what: str) -> None:
        atom = self.peek()
        if atom is not None:
            shown = atom.text if isinstance(atom, Token) else atom.tokens()[0].text + "(...)"
            raise _fail(
                "RL206",
                f"unexpected `{shown}` after {what}",
                atom.span,
                help="separate options with `,`" if isinstance(atom, Token) and atom.type == "NAME" else "",
            )


def _phrases(node: Node) -> list[Phrase]:
    return [Phrase.of(p) for p in node.nodes("phrase")]


@dataclass(frozen=True)
class OptionSpec:
    """One option in a phrase list: its leading words and how to read the rest."""

    words: tuple[str, ...]
    read: Callable[[Phrase], Any]
    field: str
    example: str


def _read_options(
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


def _dur(what: str, minimum: float = 0.0) -> Callable[[Phrase], float]:
    return lambda p: units.duration(p.number(what).text, what, minimum=minimum)


def _pct(what: str, *, allow_negative: bool = False, low: float | None = None,
         high: float | None = None) -> Callable[[Phrase], float]:
    """A percentage; with ``low``/``high``, within that range of percent."""

    def read(p: Phrase) -> float:
        tok = p.number(what)
        value = units.percent(tok.text, what, allow_negative=allow_negative)
        return units.check_range(value, tok.text, what, low, high, "%") if low is not None or high is not None \
            else value

    return read


def _int(what: str, minimum: int = 0, maximum: float = units.MAX_NUMBER) -> Callable[[Phrase], int]:
    return lambda p: int(units.number(p.number(what).text, what, integer=True, minimum=minimum, maximum=maximum))


def _word(what: str, choices: Sequence[str]) -> Callable[[Phrase], str]:
    return lambda p: p.word(what, choices).text


def _name(what: str) -> Callable[[Phrase], tuple[str, Span]]:
    def read(p: Phrase) -> tuple[str, Span]:
        tok = p.word(what)
        return tok.text, tok.span

    return read


def _const(value: T) -> Callable[[Phrase], T]:
    return lambda p: value


_EVERY = OptionSpec(("every",), _dur("the interval", units.MIN_INTERVAL_S), "interval_s", "every 5m")
_FAIL_AFTER = OptionSpec(("fail", "after"), _int("the failure limit", 1, MAX_FAILURE_LIMIT), "failure_limit",
                         "fail after 3")
_FROM = OptionSpec(("from",), _name("a stage name"), "from_stage", "from mpr")

_MIN_SAMPLES = OptionSpec(("min", "samples"), _int("the minimum sample", 1), "min_samples", "min samples 1000")

SLO_OPTIONS = (
    _EVERY,
    _FAIL_AFTER,
    _FROM,
    _MIN_SAMPLES,
    OptionSpec(("baseline",), lambda p: p.number("the stable version's value"), "baseline", "baseline 180ms"),
    # What the simulator draws from (docs/language.md, section 17): latency's log-scale spread, a
    # saturation or query value's spread from window to window.
    OptionSpec(("sigma",), lambda p: p.number("the latency's log-scale spread"), "sigma", "sigma 0.5"),
    OptionSpec(("sd",), lambda p: p.number("the value's spread from window to window"), "sd", "sd 2%"),
)
# The signals each spread option belongs to, and what it means there.
_SPREAD_SIGNALS = {"sigma": (("latency",), "the log-scale spread of a lognormal latency"),
                   "sd": (("saturation", "query"), "the spread of a saturation or query value from window to window")}
DRIFT_OPTIONS = (
    _EVERY,
    _FAIL_AFTER,
    _FROM,
    OptionSpec(("bins",), _int("the number of bins", 2, MAX_BINS), "bins", "bins 10"),
    _MIN_SAMPLES,
    OptionSpec(("vs",), _word("reference", ("stable", "training")), "reference", "vs stable"),
    OptionSpec(("delta",), lambda p: units.number(p.number("delta").text, "delta", minimum=0, maximum=1, above=True,
                                                  below=True), "delta", "delta 0.002"),
)
SPENDING_FUNCTIONS = ("obrien-fleming", "pocock", "hsd")


def _spending(p: Phrase) -> tuple[str, float | None]:
    """`obrien-fleming`, `pocock` or `hsd(-4)`."""
    atom = p.next()
    if isinstance(atom, Node) and atom.kind == "call":
        fn = atom.toks("NAME")[0]
        args = atom.nodes("phrase")
        if fn.text == "hsd" and len(args) == 1 and len(args[0].children) == 1 \
                and isinstance(args[0].children[0], Token) and args[0].children[0].type == "NUMLIT":
            return "hsd", units.number(args[0].children[0].text, "the hsd gamma")
        raise _fail("RL203", f"unknown spending function `{fn.text}(...)`", atom.span,
                    help="write `obrien-fleming`, `pocock`, or `hsd(-4)` (Hwang-Shih-DeCani with its gamma)")
    if isinstance(atom, Token) and atom.type == "NAME":
        if atom.text in ("obrien-fleming", "pocock"):
            return atom.text, None
        if atom.text == "hsd":
            raise _fail("RL203", "`hsd` needs its gamma", atom.span,
                        help="write `hsd(-4)`: -4 spends like O'Brien-Fleming, 1 like Pocock")
        hint = did_you_mean(atom.text, SPENDING_FUNCTIONS)
        raise _fail("RL203", f"unknown spending function `{atom.text}`", atom.span,
                    help=(hint + " " if hint else "") + "expected `obrien-fleming`, `pocock` or `hsd(-4)`")
    raise p._expected(atom, "a spending function (`obrien-fleming`, `pocock` or `hsd(-4)`)")


def _power(p: Phrase) -> tuple[float, Token | None]:
    """`power 80%`, `power 80% at -3%`: the power and the effect token it is sized at."""
    tok = p.number("power")
    value = units.check_range(units.percent(tok.text, "power"), tok.text, "power", MIN_POWER_PERCENT,
                              MAX_POWER_PERCENT, "%")
    effect = p.number("the change the power is sized for, like `-3%`") if p.accept_word("at") else None
    return value, effect


def _icc(p: Phrase) -> float:
    """The intra-unit correlation, a number from 0 to 1."""
    value = units.number(p.number("icc").text, "icc", minimum=0)
    if value > 1:
        raise units.UnitError("icc is a correlation, from 0 to 1", "a typical value per user is 0.01 to 0.05")
    return value


def _split_unit(p: Phrase) -> tuple[str, ir.HeaderMatchKey | None]:
    """`split by request`, `split by user header "x-user-id"`, `split by session cookie "sid"`."""
    unit = p.word("a unit", ("request", "user", "session")).text
    key = None
    kind = p.accept_word("header", "cookie")
    if kind is not None:
        if unit == "request":
            raise _fail("RL260", "requests are split one by one: a key names a user or a session", kind.span,
                        help='write `split by user header "x-user-id"`, or drop the key')
        key = ir.HeaderMatchKey(kind=cast(Literal["header", "cookie"], kind.text),
                                name=unquote(p.string(f'the {kind.text} name, like "x-user-id"')))
    return unit, key


BUSINESS_OPTIONS = (
    OptionSpec(("fail", "if", "shown", "harmful"), _const("harm"), "harm", "fail if shown harmful"),
    OptionSpec(("pass", "if", "shown", "non-inferior"), _const("non-inferiority"), "non_inferiority",
               "pass if shown non-inferior"),
    OptionSpec(("power",), _power, "power", "power 80% at -3%"),
    OptionSpec(("sequential",), _spending, "sequential", "sequential obrien-fleming"),
    OptionSpec(("alpha",), _pct("alpha", low=MIN_ALPHA_PERCENT, high=MAX_ALPHA_PERCENT), "alpha", "alpha 5%"),
    OptionSpec(("every",), _dur("the interval", units.MIN_INTERVAL_S), "interval_s", "every 6h"),
    OptionSpec(("fixed", "horizon"), _const("fixed"), "test", "fixed horizon"),
    OptionSpec(("fixed",), _const("fixed"), "test", "fixed"),
    OptionSpec(("msprt",), _const("msprt"), "test", "msprt"),
    OptionSpec(("bayesian",), _const("bayesian"), "test", "bayesian"),
    OptionSpec(("futility",), _const(True), "futility", "futility"),
    OptionSpec(("one-sided",), _const("one"), "sided", "one-sided"),
    OptionSpec(("two-sided",), _const("two"), "sided", "two-sided"),
    OptionSpec(("analysis",), _word("analysis", ("arrived", "matured")), "analysis", "analysis arrived"),
    OptionSpec(("tau",), lambda p: p.number("tau"), "tau", "tau 2%"),
    OptionSpec(("min", "effect"), lambda p: p.number("the effect"), "min_effect", "min effect -2%"),
    _FROM,
)
SRM_OPTIONS = (
    OptionSpec(("alpha",), _pct("alpha", low=MIN_ALPHA_PERCENT, high=MAX_ALPHA_PERCENT), "alpha", "alpha 0.1%"),
    _EVERY,
    _FROM,
    _MIN_SAMPLES,
)


def _check_change(value: float, text: str, what: str, relative: bool) -> float:
    """A business gate's change (margin, effect, tau): no change, or one big enough to differ from the
    baseline in floating point, and finite."""
    smallest = MIN_RELATIVE_CHANGE if relative else MIN_ABSOLUTE_CHANGE
    if value != 0 and abs(value) < smallest:
        shown = "0.0001% (relative)" if relative else "1e-09 (absolute)"
        raise units.UnitError(f"{what} must be 0 or at least {shown} either way, got `{text}`",
                              "a smaller change cannot be told apart from the baseline", code="RL222")
    return units.check_range(value, text, what, -units.MAX_NUMBER, units.MAX_NUMBER)


# -- the pass ----------------------------------------------------------------------------


# The keyword a statement starts with, where it is not the rule's name.
_STATEMENT_WORD = {"traffic_model": "traffic", "metrics_source": "metrics", "request_log": "log",
                   "blue_green": "blue-green", "model_version": "model", "rollback_rule": "on", "use_gates": "use",
                   "label_metric": "metric", "approval": "approve"}


def _keyword_span(span: Span, word: str) -> Span:
    """The first word of a statement: what "given twice" and the like point at."""
    return Span(file=span.file, line=span.line, col=span.col, end_line=span.line, end_col=span.col + len(word))


# The token naming what a statement defines, by grammar rule.
_NAME_TOKEN = {
    "rollout": "NAME", "gate_set": "NAME", "gate": "NAME", "label_metric": "NAME", "scenario": "NAME",
    "canary_stage": "NAME", "model_version": "ROLE", "signature": "ROLE", "signature_field": "NAME",
    "consumer": "NAME", "pipeline_hook": "NAME", "metric_query": "NAME", "pii_field": "NAME",
}


class Lowerer:
    """Lowers one file's syntax tree; collects diagnostics instead of stopping."""

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
        except _FollowOn:
            pass
        return None

    def unit(self, token: Token, convert: Callable[[str], T]) -> T:
        try:
            return convert(token.text)
        except units.UnitError as exc:
            raise _fail(exc.code, exc.message, token.span, help=exc.help) from None

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

    def lower_file(self, tree: Node) -> ir.File:
        self._index_names(tree)
        imports: list[ir.Import] = []
        gate_sets: list[ir.GateSet] = []
        rollouts: list[ir.Rollout] = []
        for child in tree.children:
            if not isinstance(child, Node):
                continue
            if child.kind == "import_decl":
                tok = child.toks("STRING")[0]
                imports.append(ir.Import(span=child.span, path=unquote(tok)))
            elif child.kind == "gate_set":
                gs = self.guard(lambda c=child: self.gate_set(c))  # type: ignore[misc]
                if gs is not None:
                    gate_sets.append(gs)
            elif child.kind == "rollout":
                ro = self.guard(lambda c=child: self.rollout(c))  # type: ignore[misc]
                if ro is not None:
                    rollouts.append(ro)
        self.duplicate("gate set", ((g.name, g.span) for g in gate_sets))
        self.duplicate("rollout", ((r.name, r.span) for r in rollouts))
        return ir.File(span=tree.span, path=self.path, imports=tuple(imports), gate_sets=tuple(gate_sets),
                       rollouts=tuple(rollouts))

    def gate_set(self, node: Node) -> ir.GateSet:
        name = node.toks("NAME")[0].text
        gates: list[Any] = []
        rules: list[Any] = []
        metrics: list[Any] = []
        for child in node.children:
            if isinstance(child, Node):
                self._body_item(child, gates, rules, metrics, origin=name)
        self.duplicate("gate", ((g.name, g.span) for g in gates))
        self.duplicate("metric", ((m.name, m.span) for m in metrics))
        return ir.GateSet(span=node.span, name=name, gates=tuple(gates), rules=tuple(rules),
                          label_metrics=tuple(metrics))

    def _body_item(self, child: Node, gates: list[Any], rules: list[Any], metrics: list[Any],
                   origin: str | None = None) -> bool:
        if child.kind == "gate":
            g = self.guard(lambda: self.gate(child, origin))
            if g is not None:
                gates.append(g)
        elif child.kind == "rollback_rule":
            r = self.guard(lambda: self.rollback_rule(child, origin))
            if r is not None:
                rules.append(r)
        elif child.kind == "label_metric":
            m = self.guard(lambda: self.label_metric(child, origin))
            if m is not None:
                metrics.append(m)
        else:
            return False
        return True

    # rollout

    def rollout(self, node: Node) -> ir.Rollout:
        name_tok = node.toks("NAME")[0]
        fields: dict[str, Any] = {"name": name_tok.text, "name_span": name_tok.span}
        lists: dict[str, list[Any]] = {k: [] for k in (
            "models", "signatures", "consumers", "label_metrics", "routes", "gates", "rules", "uses",
            "budgets", "scenarios", "pipeline", "approvals")}
        singles_seen: dict[str, Span] = {}

        def single(key: str, span: Span, value: Any, label: str) -> None:
            if value is None:
                return
            if key in singles_seen:
                self.diagnostics.append(
                    error("RL102", f"`{label}` is given twice", span,
                          notes=(f"first given at {singles_seen[key]}",),
                          help=f"a rollout has one `{label}`; remove one")
                )
                return
            singles_seen[key] = span
            fields[key] = value

        for child in node.children:
            if not isinstance(child, Node):
                continue
            k = child.kind
            kspan = _keyword_span(child.span, _STATEMENT_WORD.get(k, k))
            if self._body_item(child, lists["gates"], lists["rules"], lists["label_metrics"]):
                continue
            if k in ("service", "namespace"):
                single(k, kspan, child.toks("NAME")[0].text, k)
            elif k == "owner":
                single(k, kspan, self.guard(lambda c=child: unquote(c.toks("STRING")[0])), k)  # type: ignore[misc]
            elif k == "model_version":
                _append(lists["models"], self.guard(lambda c=child: self.model_version(c)))  # type: ignore[misc]
            elif k == "signature":
                _append(lists["signatures"], self.guard(lambda c=child: self.signature(c)))  # type: ignore[misc]
            elif k == "serving":
                single(k, kspan, self.guard(lambda c=child: self.serving(c)), k)  # type: ignore[misc]
            elif k == "consumers":
                for c in child.nodes("consumer"):
                    _append(lists["consumers"], self.guard(lambda c=c: self.consumer(c)))  # type: ignore[misc]
            elif k == "traffic_model":
                single("traffic", kspan, self.guard(lambda c=child: self.traffic(c)), "traffic")  # type: ignore[misc]
            elif k == "metrics_source":
                single("metrics_source", kspan, self.guard(lambda c=child: self.metrics_source(c)),  # type: ignore[misc]
                       "metrics")
            elif k == "shadow":
                single(k, kspan, self.guard(lambda c=child: self.shadow(c)), k)  # type: ignore[misc]
            elif k in ("canary", "blue_green", "rolling"):
                strategy = self.guard(lambda c=child: self.strategy(c))  # type: ignore[misc]
                if strategy is not None and "strategy" in singles_seen:
                    self.diagnostics.append(
                        error("RL301", "a rollout has one strategy: canary, blue-green or rolling", kspan,
                              notes=(f"a strategy is already given at {singles_seen['strategy']}",),
                              help="keep one of them; a shadow phase combines with any strategy: "
                                   "`shadow 100% for 24h`")
                    )
                else:
                    single("strategy", kspan, strategy, "strategy")
            elif k == "route":
                _append(lists["routes"], self.guard(lambda c=child: self.route(c)))  # type: ignore[misc]
            elif k == "use_gates":
                lists["uses"].append(ir.UseGates(span=child.span, name=child.toks("NAME")[0].text))
            elif k == "budget":
                _append(lists["budgets"], self.guard(lambda c=child: self.budget(c)))  # type: ignore[misc]
            elif k == "scenario":
                _append(lists["scenarios"], self.guard(lambda c=child: self.scenario(c)))  # type: ignore[misc]
            elif k == "holdout":
                single(k, kspan, self.guard(lambda c=child: self.holdout(c)), k)  # type: ignore[misc]
            elif k == "pipeline":
                for item in child.children:
                    if not isinstance(item, Node):
                        continue
                    if item.kind == "pipeline_image":
                        single("pipeline_image", _keyword_span(item.span, "image"),
                               self.guard(lambda i=item: self.pipeline_image(i)), "image")  # type: ignore[misc]
                    else:
                        _append(lists["pipeline"], self.guard(lambda h=item: ir.PipelineHook(  # type: ignore[misc]
                            span=h.span, name=h.toks("NAME")[0].text, command=unquote(h.toks("STRING")[0]))))
            elif k == "approval":
                _append(lists["approvals"], self.guard(lambda c=child: self.approval(c)))  # type: ignore[misc]
            elif k == "request_log":
                single("request_log", kspan, self.guard(lambda c=child: self.request_log(c)), "log")  # type: ignore[misc]
        for key, items in lists.items():
            fields[key] = tuple(items)

        self.duplicate("gate", ((g.name, g.span) for g in fields["gates"]))
        self.duplicate("metric", ((m.name, m.span) for m in fields["label_metrics"]))
        self.duplicate("scenario", ((s.name, s.span) for s in fields["scenarios"]))
        self.duplicate("pipeline hook", ((h.name, h.span) for h in fields["pipeline"]))
        self.duplicate("consumer", ((c.name, c.span) for c in fields["consumers"]))
        self.duplicate("model role", ((m.role, m.span) for m in fields["models"]),
                       message=lambda role: f"the `{role}` model is given twice",
                       help="a rollout has one `stable` and one `candidate` model")
        self.duplicate("signature for", ((s.applies_to, s.span) for s in fields["signatures"]),
                       message=lambda role: "the signature is given twice" if role == "both"
                       else f"the `{role}` signature is given twice",
                       help="give one `signature { ... }` for both models, or one per role: "
                            "`signature stable { ... }` and `signature candidate { ... }`")
        return ir.Rollout(span=node.span, **fields)

    # models

    def model_version(self, node: Node) -> ir.ModelVersion:
        role = cast(ir.Role, node.toks("ROLE")[0].text)
        name = node.toks("NAME")[0].text
        vnode = node.node("version")
        assert vnode is not None
        vtok = vnode.tokens()[0]
        m = _SEMVER.match(vtok.text)
        semver = None
        if m:
            for part in m.group(1, 2, 3):
                # Compared by length first: a number of thousands of digits is never converted.
                if len(part) > 16 or int(part) > MAX_VERSION_NUMBER:
                    raise _fail("RL222", f"a version number must be at most {MAX_VERSION_NUMBER}, got `{_short(part)}`",
                                vtok.span, help="what npm's semver and JSON numbers hold exactly")
            semver = ir.SemVer(major=int(m.group(1)), minor=int(m.group(2)), patch=int(m.group(3)),
                               prerelease=m.group(4) or "", build=m.group(5) or "")
        pin_node = node.node("pin")
        source = node.node("model_source")
        return ir.ModelVersion(
            span=node.span,
            role=role,
            name=name,
            version=vtok.text,
            semver=semver,
            version_span=vtok.span,
            pin=self.pin(pin_node) if pin_node else None,
            registry_uri=unquote(source.toks("STRING")[0]) if source else None,
        )

    def pipeline_image(self, node: Node) -> ir.PipelineImage:
        tok = node.toks("STRING")[0]
        image, embedded = handles.split_digest(unquote(tok))
        if not handles.is_image_reference(image):
            raise _fail("RL292", f"pipeline image {_shown(image)} is not an image reference", tok.span,
                        label="the generated CI jobs run in this image",
                        help='write `image "registry.example.com/ml/rollout-ci" @ sha256:<digest>`; a pipeline hook '
                             "cannot be called `image`")
        pin_node = node.node("pin")
        pin = self.pin(pin_node) if pin_node else None
        if pin is None and embedded is not None:
            pin = ir.ArtifactPin(span=tok.span, digest=embedded)
        return ir.PipelineImage(span=node.span, image=image, pin=pin)

    def approval(self, node: Node) -> ir.Approval:
        approvers = []
        for tok in node.toks("STRING"):
            who = unquote(tok)
            if not handles.is_handle(who):
                raise _fail("RL290", f"approver {_shown(who)} is not a user or team handle", tok.span,
                            label="becomes a required reviewer in the generated CI", help=handles.HANDLE_HELP)
            approvers.append(who)
        return ir.Approval(span=node.span, what=node.toks("NAME")[0].text, approvers=tuple(approvers))

    def pin(self, node: Node) -> ir.ArtifactPin:
        tok = node.tokens()[0]
        if tok.type == "DIGEST":
            return ir.ArtifactPin(span=tok.span, digest=tok.text)
        return ir.ArtifactPin(span=tok.span, tag=tok.text)

    def signature(self, node: Node) -> ir.Signature:
        role_tok = node.tok("ROLE")
        inputs: list[ir.SignatureField] = []
        outputs: list[ir.SignatureField] = []
        for section in node.nodes("signature_section"):
            direction = section.toks("SIG_DIRECTION")[0].text
            target = inputs if direction == "in" else outputs
            for field_node in section.nodes("signature_field"):
                field_ = self.guard(lambda f=field_node: self.signature_field(f))  # type: ignore[misc]
                if field_ is not None:
                    target.append(field_)
        self.duplicate("input", ((f.name, f.span) for f in inputs))
        self.duplicate("output", ((f.name, f.span) for f in outputs))
        for f in outputs:
            if f.optional:
                self.diagnostics.append(error("RL209", f"output `{f.name}` cannot be optional", f.span,
                                              help="only inputs may be optional (`name?: type`)"))
        applies = cast(Literal["both", "stable", "candidate"], role_tok.text if role_tok else "both")
        return ir.Signature(span=node.span, applies_to=applies, inputs=tuple(inputs), outputs=tuple(outputs))

    def signature_field(self, node: Node) -> ir.SignatureField:
        type_node = node.node("type_ref")
        assert type_node is not None
        return ir.SignatureField(
            span=node.span,
            name=node.toks("NAME")[0].text,
            optional=node.tok("OPTIONAL") is not None,
            type=self.type_ref(type_node),
        )

    def type_ref(self, node: Node) -> ir.TypeRef:
        name_tok = node.toks("NAME")[0]
        base = name_tok.text
        args = [c for c in node.children if c is not name_tok]
        if base in SCALAR_TYPES:
            if args:
                raise _fail("RL210", f"`{base}` takes no type arguments", node.span, help=f"write `{base}`")
            return ir.TypeRef(span=node.span, base=base)
        if base not in CONTAINER_TYPES:
            hint = did_you_mean(base, SCALAR_TYPES + CONTAINER_TYPES)
            raise _fail("RL210", f"unknown type `{base}`", name_tok.span,
                        help=hint or f"types are {one_of(list(SCALAR_TYPES + CONTAINER_TYPES))}")
        if not args or not isinstance(args[0], Node):
            raise _fail("RL210", f"`{base}` needs an element type", node.span,
                        help=f"write `{base}<float32" + (", 256>`" if base != "list" else ">`"))
        element = self.type_ref(args[0])
        dims: list[int] = []
        for a in args[1:]:
            if not isinstance(a, Token) or a.type != "NUMLIT":
                raise _fail("RL210", "a dimension must be a whole number", a.span)
            dims.append(int(self.unit(a, lambda t: units.number(t, "a dimension", integer=True, minimum=1,
                                                                maximum=units.MAX_INT32))))
        if base == "list" and dims:
            raise _fail("RL210", "`list` has no fixed size", args[1].span,
                        help=f"use `vector<{element.render()}, {dims[0]}>` for a fixed-size output")
        if base == "vector" and not dims:
            raise _fail("RL210", "`vector` needs its dimension", node.span, label="no dimension",
                        help=f"write `vector<{element.render()}, 256>` with the real size, or "
                             f"`list<{element.render()}>` if the size varies")
        if base == "vector" and len(dims) != 1:
            raise _fail("RL210", "`vector` has exactly one dimension", args[2].span,
                        help="use `tensor<T, D1, D2, ...>` for more than one dimension")
        if base == "tensor" and not dims:
            raise _fail("RL210", "`tensor` needs its dimensions", node.span,
                        help=f"write them after the element type, as in `tensor<{element.render()}, 3, 224, 224>`")
        return ir.TypeRef(span=node.span, base=base, element=element, dims=tuple(dims))

    def serving(self, node: Node) -> ir.Serving:
        out: dict[str, Any] = {}
        for item in node.children:
            if not isinstance(item, Node):
                continue
            if item.kind == "serving_image":
                out["image"] = unquote(item.toks("STRING")[0])
                out["image_span"] = item.span
                pin = item.node("pin")
                if pin:
                    out["image_pin"] = self.pin(pin)
            elif item.kind == "serving_replicas":
                nums = item.toks("NUMLIT")
                lo = int(self.unit(nums[0], lambda t: units.number(t, "replicas", integer=True, minimum=0,
                                                                   maximum=units.MAX_INT32)))
                hi = int(self.unit(nums[-1], lambda t: units.number(t, "replicas", integer=True, minimum=0,
                                                                    maximum=units.MAX_INT32)))
                if hi < lo:
                    raise _fail("RL211", f"replica range {lo}..{hi} is empty", item.span,
                                help=f"write the smaller bound first: `{hi}..{lo}`")
                out["replicas_min"], out["replicas_max"] = lo, hi
            elif item.kind == "serving_resources":
                out["resources"] = self.resources(item)
            elif item.kind == "serving_warmup":
                out["warmup_s"] = self.unit(item.toks("NUMLIT")[0], lambda t: units.duration(t, "warm-up"))
            elif item.kind == "serving_port":
                tok = item.toks("NUMLIT")[0]
                port = self.unit(tok, lambda t: units.number(t, "a port", integer=True, minimum=1))
                if port > 65535:
                    raise _fail("RL280", f"port {int(port)} is out of range", tok.span, label="not a TCP port",
                                help="a port is a whole number from 1 to 65535, e.g. `port 8080`")
                out["port"], out["port_span"] = int(port), item.span
        return ir.Serving(span=node.span, **out)

    def resources(self, node: Node) -> ir.Resources:
        out: dict[str, Any] = {}
        for r in node.nodes("resource"):
            name = r.toks("NAME")[0]
            value = r.toks("NUMLIT")[0]
            if name.text == "cpu":
                out["cpu"] = self.unit(value, units.cpu)
            elif name.text == "memory":
                out["memory_bytes"] = self.unit(value, units.memory)
            elif name.text == "gpu":
                out["gpu"] = int(self.unit(value, lambda t: units.number(t, "gpu", integer=True, minimum=0,
                                                                         maximum=MAX_GPUS)))
            else:
                hint = did_you_mean(name.text, ("cpu", "memory", "gpu"))
                raise _fail("RL203", f"unknown resource `{name.text}`", name.span,
                            help=hint or "resources are `cpu`, `memory` and `gpu`")
        return ir.Resources(span=node.span, **out)

    def header_match(self, node: Node, span: Span) -> ir.HeaderMatch:
        kind = node.toks("MATCH_KIND")[0].text
        strings = node.toks("STRING")
        op = node.toks("MATCH_OP")[0].text
        match = {"=": "exact", "~": "regex", "^=": "prefix"}[op]
        name = unquote(strings[0])
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
            raise _fail("RL212", f"`{name}` is not a valid {kind} name", strings[0].span,
                        help=f"a {kind} name is one token, e.g. \"x-ml-preview\"; put the value after `=`")
        value = unquote(strings[1])
        if match == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise _fail("RL212", f"invalid regular expression: {exc.msg}", strings[1].span,
                            label=f"at position {exc.pos}" if exc.pos is not None else "",
                            help="`~` matches a regular expression; use `=` to match the value exactly") from None
        return ir.HeaderMatch(span=span, kind=cast(Literal["header", "cookie"], kind),
                              match=cast(Literal["exact", "regex", "prefix"], match), name=name, value=value)

    def consumer(self, node: Node) -> ir.Consumer:
        names = node.toks("NAME")
        dim = int(self.unit(node.toks("NUMLIT")[0],
                            lambda t: units.number(t, "the expected dimension", integer=True, minimum=1,
                                                   maximum=units.MAX_INT32)))
        adapter = node.node("consumer_adapter")
        route = node.node("consumer_route")
        return ir.Consumer(
            span=node.span,
            name=names[0].text,
            output=names[1].text,
            expects_dim=dim,
            adapter=unquote(adapter.toks("STRING")[0]) if adapter else None,
            route=self.header_match(route, route.span) if route else None,
        )

    def route(self, node: Node) -> ir.Route:
        return ir.Route(span=node.span, match=self.header_match(node, node.span),
                        target=cast(ir.Role, node.toks("ROLE")[0].text))

    # traffic and metrics

    def traffic(self, node: Node) -> ir.TrafficModel:
        phrases = _phrases(node)
        first = phrases[0]
        tok = first.number("a request rate like `12000 rps`")
        lit = self.unit(tok, units.split)
        unit = lit.unit
        if not unit:
            unit_tok = first.accept_word("rps", "rpm", "rph")
            if unit_tok is None:
                raise _fail("RL201", "missing unit: a request rate needs `rps`, `rpm` or `rph`", tok.span,
                            help=f"write `traffic {lit.text} rps`")
            unit = unit_tok.text
        per = {"rps": 1.0, "rpm": 60.0, "rph": 3600.0}
        unit_rate = unit
        if unit not in per:
            raise _fail("RL201", f"`{unit}` is not a request-rate unit", tok.span, help="use `rps`, `rpm` or `rph`")
        if lit.number <= 0:
            raise _fail("RL201", "the request rate must be positive", tok.span)
        if not MIN_RATE_RPS <= lit.number / per[unit] <= MAX_RATE_RPS:
            raise _fail("RL222", f"the request rate must be between 1 rph and 1e+09 rps, got `{_short(tok.text)}`",
                        tok.span)
        rest = [Phrase(first.atoms[first.pos:], first.span), *phrases[1:]]
        per_unit = self._requests_per_unit(rest)
        opts = _read_options(
            rest,
            (
                OptionSpec(("diurnal",), _pct("the diurnal amplitude"), "diurnal", "diurnal 30%"),
                OptionSpec(("peak",), _dur("the peak hour"), "peak", "peak 14h"),
                OptionSpec(("start",), _dur("the start hour"), "start", "start 9h"),
                OptionSpec(("split", "by"), _split_unit, "split", 'split by user header "x-user-id"'),
            ),
            "traffic",
            self.diagnostics,
        )
        hours: dict[str, float | None] = {}
        for which in ("peak", "start"):
            value = opts.get(which, (None, None))[0]
            if value is not None and value > 86400:
                self.diagnostics.append(error("RL201", f"the {which} hour is a time of day, within 24h",
                                              opts[which][1]))
            hours[which] = None if value is None else value / 3600.0
        split: tuple[Literal["request", "user", "session"], ir.HeaderMatchKey | None] = \
            opts.get("split", (("request", None), None))[0]
        unit, key = split
        if per_unit is not None:
            count, word, span = per_unit
            if unit == "request":
                self.diagnostics.append(error(
                    "RL260", f"`requests per {word}` needs the traffic split by {word}", span,
                    help=f'split whole {word}s: `split by {word} header "x-{word}-id"`'))
            elif word != unit:
                self.diagnostics.append(error("RL260", f"the traffic is split by {unit}, not by {word}", span,
                                              help=f"write `{count:g} requests per {unit}`"))
        elif unit != "request":
            self.diagnostics.append(error(
                "RL260", f"splitting by {unit} needs how many requests a {unit} makes", opts["split"][1],
                help=f"add `20 requests per {unit}` (the mean over the rollout): power depends on it"))
        return ir.TrafficModel(
            span=node.span,
            rate_rps=lit.number / per[unit_rate],
            diurnal_amplitude=opts.get("diurnal", (0.0, None))[0] / 100.0,
            peak_hour=hours["peak"],
            start_hour=hours["start"],
            unit=unit,
            unit_key=key,
            requests_per_unit=per_unit[0] if per_unit is not None else None,
        )

    def _requests_per_unit(self, phrases: list[Phrase]) -> tuple[float, str, Span] | None:
        """Take `20 requests per user` out of the traffic options: (20, `user`, span)."""
        for i, p in enumerate(phrases):
            atom = p.peek()
            if not (isinstance(atom, Token) and atom.type == "NUMLIT" and p.peek_word(1) == "requests"):
                continue
            tok = p.number("a count")
            p.expect_word("requests")
            p.expect_word("per")
            word = p.word("a unit", ("user", "session")).text
            p.end(f"`requests per {word}`")
            count = self.unit(tok, functools.partial(units.number, what=f"requests per {word}"))
            if count < 1:
                raise _fail("RL201", f"a {word} makes at least one request", tok.span)
            del phrases[i]
            return count, word, join_spans(tok.span, p.atoms[-1].span)
        return None

    def metrics_source(self, node: Node) -> ir.MetricsSource:
        kind_tok = node.toks("NAME")[0]
        if kind_tok.text != "prometheus":
            hint = did_you_mean(kind_tok.text, ("prometheus",))
            raise _fail("RL203", f"unknown metrics source `{kind_tok.text}`", kind_tok.span,
                        help=hint or "the supported source is `prometheus`")
        queries = tuple(
            ir.QueryOverride(span=q.span, name=q.toks("NAME")[0].text, query=unquote(q.toks("STRING")[0]))
            for q in node.nodes("metric_query")
        )
        self.duplicate("query", ((q.name, q.span) for q in queries))
        evaluator: dict[str, Any] = {}
        for i, ev in enumerate(node.nodes("metrics_evaluator")):
            if i:
                self.diagnostics.append(error("RL102", "`evaluator` is given twice",
                                              _keyword_span(ev.span, "evaluator"),
                                              help="a metrics source has one evaluator image; remove one"))
                continue
            image_tok = ev.toks("STRING")[0]
            image = unquote(image_tok)
            if not image.strip() or any(c.isspace() for c in image):
                raise _fail("RL281", "the evaluator image is not an image reference", image_tok.span,
                            help='write the repository, and pin it after `@`: '
                                 '`evaluator "registry.example.com/ml/rolloutlang" @ sha256:...`')
            pin = ev.node("pin")
            evaluator = {"evaluator_image": image, "evaluator_pin": self.pin(pin) if pin else None,
                         "evaluator_span": ev.span}
        return ir.MetricsSource(span=node.span, kind="prometheus", address=unquote(node.toks("STRING")[0]),
                                queries=queries, **evaluator)

    def label_metric(self, node: Node, origin: str | None) -> ir.LabelMetric:
        name = node.toks("NAME")[0].text
        phrases = _phrases(node)
        first = phrases[0]
        kind_tok = first.word("metric kind", ("binary", "continuous"))
        kind = kind_tok.text
        rest = [Phrase(first.atoms[first.pos:], first.span), *phrases[1:]]

        def baseline(p: Phrase) -> float:
            tok = p.number("the baseline")
            if kind == "binary":
                value = units.fraction_or_percent(tok.text, "the baseline rate")
                if not 0 < value < 1:
                    raise units.UnitError("a binary metric's baseline is a rate between 0% and 100%",
                                          "write it like `4.2%`")
                if not MIN_BINARY_BASELINE <= value <= MAX_BINARY_BASELINE:
                    raise units.UnitError(f"a binary metric's baseline must be between 0.0001% and 99.9999%, "
                                          f"got `{tok.text}`", code="RL222")
                return value
            value = units.number(tok.text, "the baseline")
            if value != 0 and abs(value) < MIN_SD:
                # A relative change divides by the baseline squared: a tiny one underflows to zero.
                raise units.UnitError(f"a continuous metric's baseline must be 0 or at least {MIN_SD:g} in size, "
                                      f"got `{tok.text}`", code="RL222")
            return value

        reported = len(self.diagnostics)
        opts = _read_options(
            rest,
            (
                OptionSpec(("baseline",), baseline, "baseline", "baseline 4.2%"),
                OptionSpec(("sd",), lambda p: units.number(p.number("sd").text, "sd", minimum=MIN_SD), "sd", "sd 3.5"),
                OptionSpec(("labels",), self.label_delay, "labels", "labels lognormal(median 2h, p95 8h)"),
                OptionSpec(("icc",), _icc, "icc", "icc 0.02"),
            ),
            f"metric `{name}`",
            self.diagnostics,
        )
        if len(self.diagnostics) > reported and ("baseline" not in opts
                                                 or (kind == "continuous" and "sd" not in opts)):
            raise _FollowOn()  # the option that went wrong is already reported
        if "baseline" not in opts:
            raise _fail("RL213", f"metric `{name}` needs a baseline", node.toks("NAME")[0].span,
                        help="add `baseline 4.2%` (binary) or `baseline 1.3, sd 4` (continuous)")
        if kind == "continuous" and "sd" not in opts:
            raise _fail("RL213", f"continuous metric `{name}` needs a standard deviation", node.toks("NAME")[0].span,
                        help="add `sd 3.5`: the power check and the simulator need it")
        delay = opts["labels"][0] if "labels" in opts else ir.LabelDelay(span=node.span, distribution="immediate")
        return ir.LabelMetric(
            span=node.span,
            name=name,
            kind=cast(Literal["binary", "continuous"], kind),
            baseline=opts["baseline"][0],
            sd=opts.get("sd", (None, None))[0],
            icc=opts.get("icc", (None, None))[0],
            delay=delay,
            origin=origin,
        )

    def label_delay(self, p: Phrase) -> ir.LabelDelay:
        atom = p.next()
        if isinstance(atom, Token) and atom.type == "NAME" and atom.text == "immediate":
            return ir.LabelDelay(span=atom.span, distribution="immediate")
        if not isinstance(atom, Node) or atom.kind != "call":
            span = atom.span if atom is not None else p.here()
            raise _fail("RL214", "expected a label delay distribution", span,
                        help="write `immediate`, `fixed(2h)`, `exponential(mean 1h)` or "
                             "`lognormal(median 2h, p95 8h)`")
        fn = atom.toks("NAME")[0]
        if fn.text not in DELAY_DISTRIBUTIONS:
            hint = did_you_mean(fn.text, DELAY_DISTRIBUTIONS)
            raise _fail("RL214", f"unknown delay distribution `{fn.text}`", fn.span,
                        help=hint or f"use {one_of(list(DELAY_DISTRIBUTIONS))}")
        args = [Phrase.of(a) for a in atom.nodes("phrase")]
        if fn.text == "fixed":
            if len(args) != 1:
                raise _fail("RL214", "`fixed` takes one duration, as in `fixed(2h)`", atom.span)
            d = self.unit(args[0].number("a duration"), lambda t: units.duration(t, "the delay"))
            args[0].end("the delay")
            return ir.LabelDelay(span=atom.span, distribution="fixed", fixed_s=d)
        spec = {
            "exponential": (OptionSpec(("mean",), _dur("the mean delay"), "mean", "mean 1h"),),
            "lognormal": (
                OptionSpec(("median",), _dur("the median delay"), "median", "median 2h"),
                OptionSpec(("p95",), _dur("the 95th percentile delay"), "p95", "p95 8h"),
                OptionSpec(("sigma",), lambda q: units.number(q.number("sigma").text, "sigma", minimum=0,
                                                              maximum=MAX_SIGMA, above=True),
                           "sigma", "sigma 1"),
            ),
            "immediate": (),
        }[fn.text]
        reported = len(self.diagnostics)
        opts = _read_options(args, spec, f"`{fn.text}(...)`", self.diagnostics)
        if len(self.diagnostics) > reported:
            raise _FollowOn()  # a missing median or mean would only repeat the error above
        if fn.text == "immediate":
            return ir.LabelDelay(span=atom.span, distribution="immediate")
        if fn.text == "exponential":
            if "mean" not in opts:
                raise _fail("RL214", "`exponential` needs its mean, as in `exponential(mean 1h)`", atom.span)
            if opts["mean"][0] <= 0:
                raise _fail("RL214", "the mean delay must be positive", opts["mean"][1])
            return ir.LabelDelay(span=atom.span, distribution="exponential", mean_s=opts["mean"][0])
        if "median" not in opts or ("p95" not in opts and "sigma" not in opts):
            raise _fail("RL214", "`lognormal` needs a median and a p95 (or sigma)", atom.span,
                        help="write `lognormal(median 2h, p95 8h)`")
        median = opts["median"][0]
        if median <= 0:
            raise _fail("RL214", "the median delay must be positive", opts["median"][1])
        # p95 = median * exp(z95 * sigma): the spread a sigma up to MAX_SIGMA allows.
        widest = math.exp(_Z95 * MAX_SIGMA)
        if "p95" in opts:
            p95 = opts["p95"][0]
            if p95 <= median:
                raise _fail("RL214", "the p95 delay must be longer than the median", opts["p95"][1],
                            help="p95 is the delay that 95% of labels beat; it is above the median")
            if p95 > median * widest:
                raise _fail("RL222", f"the p95 delay can be at most {widest:.3g} times the median (a lognormal "
                            f"sigma of {MAX_SIGMA:g}), got {units.duration_text(p95)} for a median of "
                            f"{units.duration_text(median)}", opts["p95"][1],
                            help="a wider spread makes the delay's mean overflow; check the two durations")
        else:
            p95 = median * math.exp(_Z95 * opts["sigma"][0])
        return ir.LabelDelay(span=atom.span, distribution="lognormal", median_s=median, p95_s=p95)

    # strategy

    def shadow(self, node: Node) -> ir.Shadow:
        pct_tok = node.toks("NUMLIT")[0]
        pct = self.unit(pct_tok, lambda t: units.percent(t, "the shadow share"))
        if pct <= 0:
            raise _fail("RL303", "a shadow of 0% mirrors nothing", pct_tok.span,
                        help="mirror a share in (0%, 100%], or remove the shadow")
        fr = node.node("shadow_for")
        if fr is not None:
            d = self.unit(fr.toks("NUMLIT")[0], lambda t: units.duration(t, "the shadow phase"))
            return ir.Shadow(span=node.span, percent=pct, duration_s=d, mode_span=fr.span)
        al = node.node("shadow_alongside")
        assert al is not None
        until = al.tok("NUMLIT")
        until_pct = self.unit(until, lambda t: units.percent(t, "the canary weight")) if until else None
        return ir.Shadow(span=node.span, percent=pct, alongside_canary=True, until_percent=until_pct,
                         mode_span=al.span, until_span=until.span if until else None)

    def strategy(self, node: Node) -> ir.Canary | ir.BlueGreen | ir.Rolling:
        if node.kind == "canary":
            stages = []
            for i, st in enumerate(node.nodes("canary_stage"), start=1):
                s = self.guard(lambda st=st, i=i: self.canary_stage(st, i))  # type: ignore[misc]
                if s is not None:
                    stages.append(s)
            if not node.nodes("canary_stage"):
                raise _fail("RL302", "a canary needs at least one stage", _keyword_span(node.span, "canary"),
                            help="list weights and durations: `canary { 5% for 1h  100% }`")
            self.duplicate("stage", ((s.name, s.span) for s in stages))
            return ir.Canary(span=node.span, stages=tuple(stages))
        phrases = _phrases(node)
        if node.kind == "blue_green":
            opts = _read_options(
                phrases,
                (
                    OptionSpec(("preview", "for"), _dur("the preview"), "preview", "preview for 2h"),
                    OptionSpec(("promote",), _word("promotion", ("manual", "auto")), "promote", "promote manual"),
                    OptionSpec(("scale", "down", "after"), _dur("the scale-down delay"), "scale_down",
                               "scale down after 30m"),
                ),
                "blue-green",
                self.diagnostics,
            )
            return ir.BlueGreen(
                span=node.span,
                preview_s=opts.get("preview", (None, None))[0],
                promotion=opts.get("promote", ("manual", None))[0],
                preview_span=opts.get("preview", (None, None))[1],
                promotion_span=opts.get("promote", (None, None))[1],
                scale_down_delay_s=opts.get("scale_down", (None, None))[0],
            )

        def surge(p: Phrase) -> ir.SurgeValue:
            tok = p.number("a percentage or a pod count")
            lit = units.split(tok.text)
            if lit.unit == "%":
                return ir.SurgeValue(value=units.percent(tok.text, "the share"), unit="percent")
            return ir.SurgeValue(value=units.number(tok.text, "a pod count", integer=True, minimum=0), unit="pods")

        opts = _read_options(
            phrases,
            (
                OptionSpec(("max", "surge"), surge, "surge", "max surge 25%"),
                OptionSpec(("max", "unavailable"), surge, "unavailable", "max unavailable 0"),
            ),
            "rolling",
            self.diagnostics,
        )
        kw: dict[str, Any] = {}
        if "surge" in opts:
            kw["max_surge"] = opts["surge"][0]
        if "unavailable" in opts:
            kw["max_unavailable"] = opts["unavailable"][0]
        return ir.Rolling(span=node.span, **kw)

    def canary_stage(self, node: Node, index: int) -> ir.CanaryStage:
        name_tok = node.tok("NAME")
        weight_tok = node.toks("NUMLIT")[0]
        unit = units.split(weight_tok.text).unit if units.is_number(weight_tok.text) else ""
        if unit in units.DURATION_UNITS:
            raise _fail("RL201", f"`{weight_tok.text}` is a duration, not a canary weight", weight_tok.span,
                        help=f"a stage is a weight, `for` and a duration: write `for {weight_tok.text}` "
                             "after the weight, as in `25% for 12h`")
        weight = self.unit(weight_tok, lambda t: units.percent(t, "a canary weight"))
        out: dict[str, Any] = {}
        for end in node.children:
            if isinstance(end, Node):
                out["end_span"] = end.span
                if end.kind == "stage_for":
                    out["duration_s"] = self.unit(end.toks("NUMLIT")[0],
                                                  lambda t: units.duration(t, "a stage's duration"))
                elif end.kind == "stage_until_approved":
                    out["until_approved"] = True
                elif end.kind == "stage_hold":
                    out["hold"] = True
        return ir.CanaryStage(span=node.span, name=name_tok.text if name_tok else f"stage-{index}",
                              weight_percent=weight, weight_span=weight_tok.span, **out)

    # gates and rules

    def gate(self, node: Node, origin: str | None) -> ir.AnyGate:
        name = node.toks("NAME")[0].text
        phrases = _phrases(node)
        cond = phrases[0]

        def rest() -> list[Phrase]:
            return [Phrase(cond.atoms[cond.pos:], cond.span), *phrases[1:]]

        first = cond.peek()
        if isinstance(first, Node) and first.kind == "call":
            return self.drift_gate(node, name, cond, rest, origin)
        words: list[Token] = []
        while (w := cond.peek()) is not None and isinstance(w, Token) and w.type == "NAME":
            words.append(w)
            cond.pos += 1
        text = " ".join(w.text for w in words)
        name_tok = node.toks("NAME")[0]
        if words and words[0].span.line > name_tok.span.line and words[0].text in STATEMENT_KEYWORDS:
            # `gate x:` with nothing after it swallowed the next statement.
            words = []
            cond = Phrase([], Span(file=name_tok.span.file, line=name_tok.span.line, col=name_tok.span.end_col,
                                   end_line=name_tok.span.line, end_col=name_tok.span.end_col + 1))
        if not words:
            raise _fail("RL215", f"gate `{name}` needs a condition", cond.here(),
                        help="e.g. `p99 latency < 250ms`, `error rate < 0.5%`, `psi(scores) < 0.2` or "
                             "`ctr change > -1% relative, fail if shown harmful, power 80% at -3%`")
        span = join_spans(words[0].span, words[-1].span)
        change = len(words) >= 2 and words[-1].text == "change"
        signal = _slo_signal(words[:-1] if change else words)
        if signal is not None:
            return self._slo(node, name, signal, cond, rest, origin, change)
        if change and len(words) == 2:
            return self.business_gate(node, name, words[0], cond, rest, origin)
        if words[0].text == "srm":
            cond.pos -= len(words) - 1  # `srm` takes no comparison: the first option may follow it directly
            opts = _read_options(rest(), SRM_OPTIONS, "a sample-ratio gate", self.diagnostics)
            alpha = opts.get("alpha", (0.1, None))[0]
            if not 0 < alpha < 100:
                self.diagnostics.append(error("RL201", "alpha must be between 0% and 100%", opts["alpha"][1]))
            return ir.SrmGate(span=node.span, name=name, alpha=alpha / 100.0,
                              interval_s=opts.get("interval_s", (3600.0, None))[0],
                              min_samples=opts.get("min_samples", (None, None))[0],
                              from_stage=_opt_name(opts, "from_stage"), origin=origin)
        bad, hint = _condition_typo(words)
        if bad is not None:
            span = bad.span
        else:
            known = ["p99 latency", "p95 latency", "p50 latency", "error rate", "saturation", "srm"]
            hint = did_you_mean(text, known)
            if not hint and len(words) == 1 and isinstance(cond.peek(), Token) \
                    and cast(Token, cond.peek()).type == "COMPARE":
                hint = (f"for a metric, write `{words[0].text} change`, as in "
                        f"`{words[0].text} change > -1% relative, fail if shown harmful, power 80% at -3%`")
        raise _fail(
            "RL215",
            f"unknown gate condition `{text}`",
            span,
            help=(hint + "; " if hint else "") + "a gate checks `p99 latency`, `error rate`, `saturation`, "
            "`query <name>` (each also as a `change` against stable), `<metric> change`, `srm`, or a drift "
            "statistic such as `psi(scores)`",
        )

    def _slo(self, node: Node, name: str, signal: tuple[str, float | None, str | None], cond: Phrase,
             rest: Callable[[], list[Phrase]], origin: str | None, change: bool) -> ir.SloGate:
        kind, percentile, query = signal
        op = cond.compare()
        if change:
            threshold, relative = self._slo_change(kind, cond)
        else:
            tok = cond.number(_SLO_THRESHOLD_WHAT[kind])
            threshold, relative = self.unit(tok, lambda t: _slo_value(kind, t, "threshold")), False
        opts = _read_options(rest(), SLO_OPTIONS, "an SLO gate", self.diagnostics)
        baseline = None
        if "baseline" in opts:
            tok = opts["baseline"][0]
            baseline = self.guard(lambda: self.unit(tok, lambda t: _slo_value(kind, t, "baseline")))
        spreads = {key: self.guard(lambda key=key: self._spread(kind, key, opts[key]))  # type: ignore[misc]
                   for key in _SPREAD_SIGNALS if key in opts}
        return ir.SloGate(
            span=node.span, name=name, signal=cast(Any, kind), percentile=percentile, query=query,
            op=cast(ir.Comparison, op.text), threshold=threshold,
            comparison="change" if change else "threshold", relative=relative, baseline=baseline,
            sigma=spreads.get("sigma"), sd=spreads.get("sd"),
            min_samples=opts.get("min_samples", (None, None))[0],
            interval_s=opts.get("interval_s", (60.0, None))[0],
            failure_limit=opts.get("failure_limit", (1, None))[0],
            from_stage=_opt_name(opts, "from_stage"), origin=origin,
        )

    def _spread(self, kind: str, key: str, given: tuple[Token, Span]) -> float:
        """`sigma 0.5` (latency) or `sd 0.02` (saturation, query): a positive spread for the simulator."""
        tok, span = given
        signals, meaning = _SPREAD_SIGNALS[key]
        if kind not in signals:
            fits = " or ".join(signals)
            other = next((k for k, (sigs, _) in _SPREAD_SIGNALS.items() if kind in sigs), None)
            raise _fail("RL293", f"`{key}` is {meaning}: it belongs on a {fits} gate", span,
                        help=f"write `{other}` for this gate" if other else
                        "drop it: the simulator draws this signal's noise from the requests counted")
        # The ranges of a label metric's `sd` and of a lognormal delay's `sigma` (RL222); `sd` is in the
        # signal's unit, as its `baseline` is (`sd 5%` for saturation).
        if key == "sigma":
            return self.unit(tok, lambda t: units.number(t, "sigma", minimum=0, maximum=MAX_SIGMA, above=True))
        value = self.unit(tok, lambda t: _slo_value(kind, t, "sd"))
        if value < MIN_SD:
            raise _fail("RL222", f"sd must be at least {MIN_SD:g}, got `{tok.text}`", tok.span)
        return value

    def _slo_change(self, kind: str, cond: Phrase) -> tuple[float, bool]:
        """The change of a candidate-vs-stable SLO gate: `+10%` (relative), `+15ms`, `+0.1% absolute`, `+0.5`."""
        tok = cond.number("a change like `+10%`")
        lit = self.unit(tok, units.split)
        word = cond.accept_word("relative", "absolute")
        if lit.unit == "%" and (word is None or word.text == "relative"):
            if lit.number <= -100:
                raise _fail("RL259", f"a relative change of `{tok.text}` is at or below -100%", tok.span)
            return self.unit(tok, lambda t: units.check_range(lit.number, t, "a relative change", None,
                                                              units.MAX_NUMBER, "%")) / 100.0, True
        if word is not None and word.text == "relative":
            raise _fail("RL201", f"`{tok.text} relative` is not a relative change", tok.span,
                        help=f"a relative change is a percentage: `{lit.text}%`")
        example = {"latency": "+15ms", "error_rate": "+0.1% absolute", "saturation": "+5% absolute",
                   "query": "+0.5"}[kind]
        try:
            return _slo_value(kind, tok.text, "change"), False
        except units.UnitError as exc:
            raise _fail("RL201", exc.message, tok.span,
                        help=f"write a relative change (`+10%`) or an absolute one (`{example}`)") from None

    def drift_gate(self, node: Node, name: str, cond: Phrase, rest: Callable[[], list[Phrase]],
                   origin: str | None) -> ir.DriftGate:
        call = cast(Node, cond.next())
        fn = call.toks("NAME")[0]
        if fn.text not in DRIFT_STATISTICS:
            hint = did_you_mean(fn.text, DRIFT_STATISTICS)
            raise _fail("RL216", f"unknown drift statistic `{fn.text}`", fn.span,
                        help=hint or f"drift gates use {one_of(list(DRIFT_STATISTICS))}")
        args = call.nodes("phrase")
        if len(args) != 1 or len(args[0].children) != 1 or not isinstance(args[0].children[0], Token) \
                or args[0].children[0].type != "NAME":
            raise _fail("RL216", f"`{fn.text}` takes the name of one input or output, as in `{fn.text}(scores)`",
                        call.span)
        target_tok = args[0].children[0]
        target = target_tok.text
        op: str = "<"
        threshold: float | None = None
        following = cond.peek()
        if fn.text == "adwin" and isinstance(following, Token) and following.type == "COMPARE":
            raise _fail("RL216", "`adwin` takes no threshold: it flags a change when its window splits", following.span,
                        help="write `adwin(scores)`, and set its confidence with `delta 0.002`")
        if fn.text != "adwin":
            op = cond.compare().text
            tok = cond.number("a threshold")
            threshold = self.unit(tok, lambda t: units.number(t, f"a {fn.text} threshold", minimum=0))
        opts = _read_options(rest(), DRIFT_OPTIONS, "a drift gate", self.diagnostics)
        return ir.DriftGate(
            span=node.span, name=name, statistic=cast(Any, fn.text), target=target, target_span=target_tok.span,
            op=cast(ir.Comparison, op), threshold=threshold,
            delta=opts.get("delta", (0.002 if fn.text == "adwin" else None, None))[0],
            interval_s=opts.get("interval_s", (3600.0, None))[0],
            failure_limit=opts.get("failure_limit", (1, None))[0],
            bins=opts.get("bins", (10, None))[0],
            min_samples=opts.get("min_samples", (None, None))[0],
            reference=opts.get("reference", ("stable", None))[0],
            from_stage=_opt_name(opts, "from_stage"), origin=origin,
        )

    def business_gate(self, node: Node, name: str, metric: Token, cond: Phrase,
                      rest: Callable[[], list[Phrase]], origin: str | None) -> ir.BusinessGate:
        op = cond.compare()
        tok = cond.number("the change the plan tolerates, like `-1%`")
        lit = self.unit(tok, units.split)
        word = cond.accept_word("relative", "absolute")
        relative = word.text == "relative" if word is not None else True
        if lit.unit == "" and word is None:
            raise _fail("RL201", "missing unit: write the change as a percentage", tok.span,
                        help=f"write `{lit.text}%` (relative), or `{lit.text} absolute`")
        margin = self._business_change(tok, relative, "the margin")
        condition = join_spans(metric.span, (word or tok).span)
        written = _ChangeStyle(relative, lit.unit == "%")
        direction = 1 if op.text in (">", ">=") else -1
        opts = _read_options(rest(), BUSINESS_OPTIONS, "a business gate", self.diagnostics)
        reported = len(self.diagnostics)
        test = opts.get("test", (None, None))[0]
        spending, gamma = opts.get("sequential", ((None, None), None))[0]
        if test is not None and spending is not None:
            self.diagnostics.append(error("RL218", f"`{test}` and `sequential` are two different tests",
                                          opts["sequential"][1], help="keep one of them"))
        if test is None:
            test = "group-sequential"
            spending = spending or "obrien-fleming"
        test_span = (opts.get("test") or opts.get("sequential") or (None, None))[1]
        for key in ("alpha", "power"):
            if key in opts:
                value = opts[key][0][0] if key == "power" else opts[key][0]
                if not 0 < value < 100:
                    self.diagnostics.append(error("RL201", f"{key} must be between 0% and 100%", opts[key][1]))
        power, effect_tok = opts.get("power", ((80.0, None), None))[0]
        if "min_effect" in opts:
            old = opts["min_effect"][0]
            self.diagnostics.append(error(
                "RL254", "`min effect` is retired: say the effect the power is sized for with `power ... at`",
                opts["min_effect"][1],
                help=f"write `power {power:g}% at {old.text}` (and `fail if shown harmful` or "
                     "`pass if shown non-inferior`)"))
        hypothesis = self._hypothesis(opts, name, condition, margin, direction, written)
        effect = self._effect(hypothesis, effect_tok, margin, direction, written, power, opts, condition)
        tau = None
        if "tau" in opts:
            tau_tok = opts["tau"][0]
            tau = self._business_change(tau_tok, relative, "tau")
            if tau <= 0:
                self.diagnostics.append(error("RL201", "tau is a spread: write a positive change", tau_tok.span,
                                              help="`tau 2%`: the size of the changes the test expects"))
            if test in ("fixed", "group-sequential"):
                self.diagnostics.append(error(
                    "RL253", "`tau` belongs to `msprt` and `bayesian` tests", opts["tau"][1],
                    help="remove it, or choose the test it tunes (`msprt, tau 2%`)"))
        futility = bool(opts.get("futility", (False, None))[0])
        if futility and (test != "group-sequential" or hypothesis != "harm"):
            why = ("a non-inferiority gate already stops both ways" if hypothesis == "non-inferiority"
                   else "futility bounds come from beta spending, which only `sequential` designs have")
            self.diagnostics.append(error("RL253", f"`futility` does not apply here: {why}", opts["futility"][1],
                                          help="remove `futility`"))
        if len(self.diagnostics) > reported:
            raise _FollowOn()
        alpha = opts.get("alpha", (None, None))[0]
        return ir.BusinessGate(
            span=node.span, name=name, metric=metric.text, metric_span=metric.span,
            op=cast(ir.Comparison, op.text), margin=margin, relative=relative, hypothesis=hypothesis,
            effect=effect, power=power / 100.0,
            test=cast(Any, test), spending=cast(Any, spending if test == "group-sequential" else None),
            spending_gamma=gamma if test == "group-sequential" else None, futility=futility,
            alpha=None if alpha is None else alpha / 100.0,
            sided=opts.get("sided", ("one", None))[0],
            analysis=opts.get("analysis", ("arrived", None))[0],
            interval_s=opts.get("interval_s", (None, None))[0],
            interval_span=opts.get("interval_s", (None, None))[1], test_span=test_span,
            tau=tau, from_stage=_opt_name(opts, "from_stage"), origin=origin,
        )

    def _business_change(self, tok: Token, relative: bool, what: str) -> float:
        """A change as a business gate writes it: `-1%` relative, `-0.1%` points or `-0.05` absolute."""
        lit = self.unit(tok, units.split)
        if lit.unit == "%":
            value = self.unit(tok, lambda t: units.percent(t, what, allow_negative=True, max_value=1e9)) / 100.0
            if relative and value <= -1.0:
                raise _fail("RL259", f"{what} `{tok.text}` is a fall of 100% or more", tok.span,
                            help="a relative change is above -100%")
            return self.unit(tok, lambda t: _check_change(value, t, what, relative))
        if lit.unit == "" and not relative:
            return self.unit(tok, lambda t: _check_change(lit.number, t, what, relative))
        if lit.unit == "":
            raise _fail("RL257", f"{what} of a relative gate is written as a percentage", tok.span,
                        help=f"write `{lit.text}%` (a relative change, like the gate's margin)")
        raise _fail("RL201", f"`{tok.text}` is not a change", tok.span,
                    help="write it like the gate's margin: `-1%` (relative) or `-0.05` (absolute)")

    def _hypothesis(self, opts: dict[str, tuple[Any, Span]], name: str, condition: Span, margin: float,
                    direction: int, written: _ChangeStyle) -> ir.Hypothesis:
        harm, ni = "harm" in opts, "non_inferiority" in opts
        if harm and ni:
            raise _fail("RL258", "a gate tests one hypothesis: `fail if shown harmful` or `pass if shown non-inferior`",
                        opts["non_inferiority"][1], help="keep the one whose burden of proof you want")
        if harm:
            return "harm"
        if ni:
            return "non-inferiority"
        worse = written.text(2 * margin if direction * margin < 0 else margin - direction * written.unit_step)
        cond = written.text(margin, kind=True)
        raise LoweringError(error(
            "RL250", f"gate `{name}` does not say which test it runs", condition,
            label="whose burden of proof?",
            notes=(f"`{cond}` can be the margin of a harm test or of a non-inferiority test, or the effect a test "
                   "against no change should detect: three tests with different error rates",),
            help=f"add `fail if shown harmful, power 80% at {worse}` to roll back only on evidence of a change beyond "
                 f"{cond}, or `pass if shown non-inferior` to promote only on evidence that the change is within it",
        ))

    def _effect(self, hypothesis: ir.Hypothesis, effect_tok: Token | None, margin: float, direction: int,
                written: _ChangeStyle, power: float, opts: dict[str, tuple[Any, Span]], condition: Span) -> float:
        """The change the power is sized for, checked against the margin and the hypothesis."""
        where = opts["power"][1] if "power" in opts else condition
        if effect_tok is None:
            if hypothesis == "harm":
                worse = written.text(2 * margin if direction * margin < 0 else margin - direction * written.unit_step)
                raise _fail("RL252", "a harm test needs the change its power is sized for",
                            where, help=f"add `power {power:g}% at {worse}`: the harm it must catch, beyond the margin")
            if direction * (0.0 - margin) <= 0:
                better = written.text(margin + direction * written.unit_step)
                raise _fail("RL251", f"the margin {written.text(margin, kind=True)} asks for an improvement, so an "
                            "unchanged candidate cannot pass", where,
                            help=f"size the power at the improvement you expect: `power {power:g}% at {better}`")
            return 0.0
        effect = self._business_change(effect_tok, written.relative, "the effect")
        gap = direction * (effect - margin)
        if hypothesis == "harm" and gap >= 0:
            raise _fail("RL251", f"a harm test cannot be sized at {effect_tok.text}: the margin "
                        f"{written.text(margin, kind=True)} tolerates it", effect_tok.span,
                        label="inside the margin",
                        help="size the power at a change beyond the margin, the harm the gate must catch")
        if hypothesis == "non-inferiority" and gap <= 0:
            raise _fail("RL251", f"a non-inferiority test cannot be sized at {effect_tok.text}: it is not within "
                        f"the margin {written.text(margin, kind=True)}", effect_tok.span, label="beyond the margin",
                        help="size the power at the change you expect, within the margin (no change: `at 0%`)")
        return effect

    def rollback_rule(self, node: Node, origin: str | None) -> ir.RollbackRule:
        names = node.toks("NAME")
        event_tok = node.tok("RULE_EVENT")
        event = event_tok.text if event_tok is not None else "fail"
        actions = []
        for p in _phrases(node):
            a = self.guard(lambda p=p: self.action(p))  # type: ignore[misc]
            if a is not None:
                actions.append(a)
        kinds = [a.kind for a in actions]
        gates = ", ".join(n.text for n in names)
        if event == "fail" and "promote" in kinds:
            promote = next(a for a in actions if a.kind == "promote")
            self.diagnostics.append(error(
                "RL255", "a rule promotes on a failure", promote.span, label="promotes when the gate fails",
                notes=("a gate fails when the candidate is worse; a clear win is a gate that *passes*",),
                help=f"promote when a gate shows the candidate is good: `on {gates} pass: promote` with a gate "
                     "that can pass (`pass if shown non-inferior`, or `two-sided`)"))
        elif event == "pass":
            for a in actions:
                if a.kind in ("rollback", "pause"):
                    self.diagnostics.append(error(
                        "RL256", f"a rule on a gate passing cannot `{a.kind}`", a.span,
                        help=f"on a pass, `promote` or `notify`; to {a.kind} on a failure write "
                             f"`on {gates} fail: {a.kind}`"))
        elif "rollback" in kinds and "promote" in kinds:
            self.diagnostics.append(error("RL219", "a rule cannot both roll back and promote", node.span))
        return ir.RollbackRule(span=node.span, gates=tuple(n.text for n in names), event=cast(Any, event),
                               gate_spans=tuple(n.span for n in names), actions=tuple(actions), origin=origin)

    def action(self, p: Phrase) -> ir.Action:
        start = p.here()
        verb = p.word("action", ("rollback", "pause", "notify", "promote"))
        kw: dict[str, Any] = {}
        if verb.text == "rollback":
            if p.accept_word("now"):
                kw["immediate"] = True
            elif p.accept_word("after"):
                kw["after_s"] = self.unit(p.number("a confirmation wait like `30m`"),
                                          lambda t: units.duration(t, "the confirmation wait"))
        elif verb.text == "notify":
            tok = p.string('a channel like "#team-oncall"')
            channel = unquote(tok)
            if not handles.is_channel(channel):
                raise _fail("RL291", f"notify channel {_shown(channel)} is not a channel name", tok.span,
                            label="the pipeline sends failure notices here", help=handles.CHANNEL_HELP)
            kw["channel"] = channel
        p.end(f"`{verb.text}`")
        return ir.Action(span=join_spans(start, p.atoms[-1].span), kind=cast(Any, verb.text), **kw)

    # policy

    def budget(self, node: Node) -> ir.Budget:
        (p, *extra) = _phrases(node)
        kind = p.word("budget", ("exposure", "duration", "false")).text
        if kind == "false":
            return self._false_rollbacks(node, p, extra)
        if extra:
            raise _fail("RL206", "a budget is one condition", extra[0].span,
                        help="write one `budget` line per cap")
        op = p.compare()
        if op.text not in ("<", "<="):
            raise _fail("RL220", "a budget is a cap: use `<=`", op.span)
        if kind == "duration":
            d = self.unit(p.number("a duration"), lambda t: units.duration(t, "the duration budget"))
            p.end("the budget")
            return ir.Budget(span=node.span, kind="duration", max_duration_s=d)
        tok = p.number("a share like `5%` or a count")
        lit = self.unit(tok, units.split)
        kw: dict[str, Any] = {}
        if lit.unit == "%":
            kw["max_percent"] = self.unit(tok, lambda t: units.percent(t, "the exposure budget"))
            p.expect_word("of")
            p.expect_word("requests")
        else:
            kw["max_requests"] = self.unit(tok, lambda t: units.number(t, "the exposure budget", minimum=0))
            p.expect_word("requests")
        if p.accept_word("before"):
            kw["before_s"] = self.unit(p.number("a duration"), lambda t: units.duration(t, "the budget window"))
        p.end("the budget")
        return ir.Budget(span=node.span, kind="exposure", **kw)

    def _false_rollbacks(self, node: Node, p: Phrase, extra: list[Phrase]) -> ir.Budget:
        """`budget false rollbacks <= 5% [across g1, g2, ...]`."""
        p.expect_word("rollbacks")
        op = p.compare()
        if op.text not in ("<", "<="):
            raise _fail("RL220", "a budget is a cap: use `<=`", op.span)
        share = self.unit(p.number("a share like `5%`"), lambda t: units.percent(t, "the false-rollback budget"))
        if not 0 < share < 100:
            raise _fail("RL201", "a false-rollback budget is a share between 0% and 100%", p.atoms[p.pos - 1].span)
        names: list[Token] = []
        if p.accept_word("across"):
            names.append(p.word("a gate name"))
            p.end("the gate name")
            for more in extra:
                names.append(more.word("a gate name"))
                more.end("the gate name")
        else:
            p.end("the budget")
            if extra:
                raise _fail("RL206", "a budget is one condition", extra[0].span,
                            help="to share the budget between gates, name them: "
                                 "`budget false rollbacks <= 5% across ctr, revenue`")
        self.duplicate("gate in the budget", ((n.text, n.span) for n in names))
        return ir.Budget(span=node.span, kind="false-rollbacks", max_percent=share,
                         gates=tuple(n.text for n in names), gate_spans=tuple(n.span for n in names))

    def scenario(self, node: Node) -> ir.Scenario:
        name = node.toks("NAME")[0].text
        effects = []
        for p in _phrases(node):
            e = self.guard(lambda p=p: self.effect(p))  # type: ignore[misc]
            if e is not None:
                effects.append(e)
        if not node.nodes("phrase"):
            raise _fail("RL221", f"scenario `{name}` changes nothing", node.toks("NAME")[0].span,
                        help="list effects: `scenario regression { ctr -2%, latency +15ms }`")
        return ir.Scenario(span=node.span, name=name, effects=tuple(effects))

    def effect(self, p: Phrase) -> ir.Effect:
        start = p.here()
        target = p.word("a metric, gate or `labels`")
        if target.text == "labels":
            metric = p.word("a metric name")
            delay = self.label_delay(p)
            p.end("the label delay")
            return ir.Effect(span=join_spans(start, p.atoms[-1].span), target=metric.text, kind="labels",
                             delay=delay)
        tok = p.number("a change like `-2%` or `+15ms`")
        lit = self.unit(tok, units.split)
        kind = "relative" if lit.unit == "%" and target.text not in ("errors", "error-rate") else "absolute"
        word = p.accept_word("relative", "absolute")
        if word is not None:
            kind = word.text
        if lit.unit == "%":
            value, unit = lit.number / 100.0, "fraction"
            if abs(lit.number) > 100 and kind == "absolute":
                raise _fail("RL201", f"`{tok.text}` is over 100%", tok.span)
            self.unit(tok, lambda t: units.check_range(lit.number, t, "a relative change", -units.MAX_NUMBER,
                                                       units.MAX_NUMBER, "%"))
        elif lit.unit in units.DURATION_UNITS:
            value, unit = lit.number * units.DURATION_UNITS[lit.unit], "seconds"
            if not abs(value) <= units.MAX_DURATION_S:
                raise _fail("RL222", f"a change must be at most 520w either way, got `{_short(tok.text)}`", tok.span)
        elif lit.unit == "":
            if target.text == "latency":
                raise _fail("RL201", "missing unit: a latency change needs a duration", tok.span,
                            help=f"write `{tok.text}ms`")
            value, unit = self.unit(tok, lambda t: units.number(t, "a change")), "number"
        else:
            raise _fail("RL201", f"`{tok.text}` is not a change", tok.span,
                        help="write a percentage (`-2%`), a duration (`+15ms`) or a number (`0.3`)")
        after = 0.0
        if p.accept_word("after"):
            after = self.unit(p.number("a time like `30m`"), lambda t: units.duration(t, "the onset"))
        p.end("the effect")
        return ir.Effect(span=join_spans(start, p.atoms[-1].span), target=target.text, kind=cast(Any, kind),
                         value=value, unit=cast(Any, unit), after_s=after)

    def holdout(self, node: Node) -> ir.Holdout:
        nums = node.toks("NUMLIT")
        pct = self.unit(nums[0], lambda t: units.percent(t, "the holdout share"))
        if pct <= 0 or pct >= 100:
            raise _fail("RL201", "a holdout is a share strictly between 0% and 100%", nums[0].span)
        role = node.toks("ROLE")[0]
        return ir.Holdout(span=node.span, percent=pct, role=cast(ir.Role, role.text), role_span=role.span,
                          duration_s=self.unit(nums[1], lambda t: units.duration(t, "the holdout")),
                          duration_span=nums[1].span)

    def request_log(self, node: Node) -> ir.RequestLog:
        pct = self.unit(node.toks("NUMLIT")[0], lambda t: units.percent(t, "the sample rate"))
        fields: list[Token] = []
        pii: list[ir.PiiField] = []
        retain = None
        for item in node.children:
            if not isinstance(item, Node):
                continue
            if item.kind == "log_fields":
                fields.extend(item.toks("NAME"))
            elif item.kind == "log_pii":
                for f in item.nodes("pii_field"):
                    t = f.tok("PII_TREATMENT")
                    pii.append(ir.PiiField(span=f.span, name=f.toks("NAME")[0].text, name_span=f.toks("NAME")[0].span,
                                           treatment=cast(Any, t.text if t else None)))
            elif item.kind == "log_retain":
                retain = self.unit(item.toks("NUMLIT")[0], lambda t: units.duration(t, "the retention"))
        self.duplicate("logged field", ((f.text, f.span) for f in fields))
        self.duplicate("pii field", ((f.name, f.span) for f in pii))
        return ir.RequestLog(span=node.span, sample_percent=pct, fields=tuple(f.text for f in fields),
                             field_spans=tuple(f.span for f in fields), pii=tuple(pii), retain_s=retain)


@dataclass(frozen=True)
class _ChangeStyle:
    """How a business gate writes its changes, to suggest more in the same style."""

    relative: bool
    percent: bool

    @property
    def unit_step(self) -> float:
        return 0.01 if self.relative or self.percent else 0.1

    def text(self, value: float, kind: bool = False) -> str:
        """`-2%`, `-0.2%`, `-0.05`; with ``kind``, absolute changes say so (`-0.2% absolute`)."""
        if self.relative:
            return f"{value * 100:+.4g}%"
        suffix = " absolute" if kind else ""
        if self.percent:
            return f"{value * 100:+.4g}%{suffix}"
        return f"{value:+.4g}{suffix}"


_SLO_THRESHOLD_WHAT = {
    "latency": "a latency threshold like `250ms`",
    "error_rate": "an error-rate threshold like `0.5%`",
    "saturation": "a saturation threshold like `80%`",
    "query": "a threshold",
}


def _slo_signal(words: list[Token]) -> tuple[str, float | None, str | None] | None:
    """(signal, percentile, query) for the words of an SLO condition, or None."""
    text = " ".join(w.text for w in words)
    if len(words) == 2 and re.fullmatch(r"p\d{1,2}(\.\d+)?", words[0].text) and words[1].text == "latency":
        return "latency", float(words[0].text[1:]), None
    if text in ("error rate", "errors"):
        return "error_rate", None, None
    if text == "saturation":
        return "saturation", None, None
    if len(words) == 2 and words[0].text == "query":
        return "query", None, words[1].text
    return None


_SLO_VALUE_WHAT = {
    "threshold": {"latency": "a latency threshold", "error_rate": "an error rate", "saturation": "saturation",
                  "query": "a query threshold"},
    "baseline": {"latency": "the baseline latency", "error_rate": "the baseline error rate",
                 "saturation": "the baseline saturation", "query": "the baseline value"},
    "change": {"latency": "a latency change", "error_rate": "an error-rate change",
               "saturation": "a saturation change", "query": "a query change"},
    "sd": {"saturation": "the saturation's sd", "query": "the value's sd"},
}


def _slo_value(kind: str, text: str, role: str) -> float:
    """An SLO value in the IR's unit: seconds for latency, a fraction for rates, the number for queries.

    ``role`` is `threshold`, `baseline` or `change` (which may be negative).
    """
    what = _SLO_VALUE_WHAT[role][kind]
    negative = role == "change" and text.startswith("-")
    if kind == "latency":
        seconds = units.duration(text[1:] if text[:1] in "+-" and role == "change" else text, what)
        return -seconds if negative else seconds
    if kind in ("error_rate", "saturation"):
        return units.percent(text, what, allow_negative=role == "change") / 100.0
    return units.number(text, what)


def _condition_typo(words: list[Token]) -> tuple[Token | None, str]:
    """In a two-word gate condition with one word right, the other word and a hint."""
    if len(words) != 2:
        return None, ""
    first, second = words
    if re.fullmatch(r"p\d{1,2}(\.\d+)?", first.text):
        return second, did_you_mean(second.text, ["latency"]) or "a percentile is followed by `latency`"
    if second.text == "latency":
        return first, "write a percentile such as `p99`, `p95` or `p50`"
    if first.text == "error":
        return second, "did you mean `rate`?"
    if second.text == "rate":
        return first, did_you_mean(first.text, ["error"]) or "did you mean `error rate`?"
    if did_you_mean(second.text, ["change"]):
        return second, "did you mean `change`?"
    if did_you_mean(first.text, ["query"]):
        return first, "did you mean `query`?"
    return None, ""


def _opt_name(opts: dict[str, tuple[Any, Span]], key: str) -> str | None:
    value = opts.get(key)
    return value[0][0] if value else None


def _append(items: list[T], value: T | None) -> None:
    if value is not None:
        items.append(value)


def lower(tree: Node, path: str) -> tuple[ir.File | None, list[Diagnostic]]:
    """Lower a parsed file; the IR is returned even when some constructs had errors."""
    lowerer = Lowerer(path)
    try:
        result = lowerer.lower_file(tree)
    except LoweringError as exc:
        lowerer.diagnostics.append(exc.diagnostic)
        return None, lowerer.diagnostics
    except _FollowOn:
        return None, lowerer.diagnostics
    return result, lowerer.diagnostics
