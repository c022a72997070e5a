"""Lowering gates: SLO, drift, sample-ratio and business gates, and the option tables they read."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from rolloutlang import ir, units
from rolloutlang.diagnostics import did_you_mean, error, one_of
from rolloutlang.lowering.phrases import (
    FollowOn,
    LowererBase,
    LoweringError,
    OptionSpec,
    Phrase,
    choice_of,
    constant,
    duration_of,
    fail,
    integer_of,
    join_spans,
    name_of,
    option_name,
    percent_of,
    phrases_of,
    read_options,
    shown,
    unquote,
)
from rolloutlang.lowering.traffic import MAX_SIGMA, MIN_SD
from rolloutlang.source import Span
from rolloutlang.syntax import STATEMENT_KEYWORDS, Node, Token

# Ranges a spec's values must lie in (see units.check_range), chosen so that
# every downstream computation stays finite and fast, and wide enough for any
# real rollout.
MAX_FAILURE_LIMIT = 10_000
MAX_BINS = 1_000
MIN_ALPHA_PERCENT, MAX_ALPHA_PERCENT = 0.0001, 50.0  # z-quantiles stay finite
MIN_POWER_PERCENT, MAX_POWER_PERCENT = 1.0, 99.9999
MIN_RELATIVE_CHANGE = 1e-6  # 0.0001%: smaller changes vanish in floating point next to the baseline
MIN_ABSOLUTE_CHANGE = 1e-9
DRIFT_STATISTICS = ("psi", "kl", "js", "mmd", "adwin")

_EVERY = OptionSpec(("every",), duration_of("the interval", units.MIN_INTERVAL_S), "interval_s", "every 5m")
_FAIL_AFTER = OptionSpec(("fail", "after"), integer_of("the failure limit", 1, MAX_FAILURE_LIMIT), "failure_limit",
                         "fail after 3")
_FROM = OptionSpec(("from",), name_of("a stage name"), "from_stage", "from mpr")

_MIN_SAMPLES = OptionSpec(("min", "samples"), integer_of("the minimum sample", 1), "min_samples", "min samples 1000")

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
    OptionSpec(("bins",), integer_of("the number of bins", 2, MAX_BINS), "bins", "bins 10"),
    _MIN_SAMPLES,
    OptionSpec(("vs",), choice_of("reference", ("stable", "training")), "reference", "vs stable"),
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
        raise fail("RL203", f"unknown spending function `{fn.text}(...)`", atom.span,
                    help="write `obrien-fleming`, `pocock`, or `hsd(-4)` (Hwang-Shih-DeCani with its gamma)")
    if isinstance(atom, Token) and atom.type == "NAME":
        if atom.text in ("obrien-fleming", "pocock"):
            return atom.text, None
        if atom.text == "hsd":
            raise fail("RL203", "`hsd` needs its gamma", atom.span,
                        help="write `hsd(-4)`: -4 spends like O'Brien-Fleming, 1 like Pocock")
        hint = did_you_mean(atom.text, SPENDING_FUNCTIONS)
        raise fail("RL203", f"unknown spending function `{atom.text}`", atom.span,
                    help=(hint + " " if hint else "") + "expected `obrien-fleming`, `pocock` or `hsd(-4)`")
    raise p._expected(atom, "a spending function (`obrien-fleming`, `pocock` or `hsd(-4)`)")


def _power(p: Phrase) -> tuple[float, Token | None]:
    """`power 80%`, `power 80% at -3%`: the power and the effect token it is sized at."""
    tok = p.number("power")
    value = units.check_range(units.percent(tok.text, "power"), tok.text, "power", MIN_POWER_PERCENT,
                              MAX_POWER_PERCENT, "%")
    effect = p.number("the change the power is sized for, like `-3%`") if p.accept_word("at") else None
    return value, effect



BUSINESS_OPTIONS = (
    OptionSpec(("fail", "if", "shown", "harmful"), constant("harm"), "harm", "fail if shown harmful"),
    OptionSpec(("pass", "if", "shown", "non-inferior"), constant("non-inferiority"), "non_inferiority",
               "pass if shown non-inferior"),
    OptionSpec(("power",), _power, "power", "power 80% at -3%"),
    OptionSpec(("sequential",), _spending, "sequential", "sequential obrien-fleming"),
    OptionSpec(("alpha",), percent_of("alpha", low=MIN_ALPHA_PERCENT, high=MAX_ALPHA_PERCENT), "alpha", "alpha 5%"),
    OptionSpec(("every",), duration_of("the interval", units.MIN_INTERVAL_S), "interval_s", "every 6h"),
    OptionSpec(("fixed", "horizon"), constant("fixed"), "test", "fixed horizon"),
    OptionSpec(("fixed",), constant("fixed"), "test", "fixed"),
    OptionSpec(("msprt",), constant("msprt"), "test", "msprt"),
    OptionSpec(("bayesian",), constant("bayesian"), "test", "bayesian"),
    OptionSpec(("futility",), constant(True), "futility", "futility"),
    OptionSpec(("one-sided",), constant("one"), "sided", "one-sided"),
    OptionSpec(("two-sided",), constant("two"), "sided", "two-sided"),
    OptionSpec(("analysis",), choice_of("analysis", ("arrived", "matured")), "analysis", "analysis arrived"),
    OptionSpec(("tau",), lambda p: p.number("tau"), "tau", "tau 2%"),
    OptionSpec(("min", "effect"), lambda p: p.number("the effect"), "min_effect", "min effect -2%"),
    _FROM,
)
SRM_OPTIONS = (
    OptionSpec(("alpha",), percent_of("alpha", low=MIN_ALPHA_PERCENT, high=MAX_ALPHA_PERCENT), "alpha", "alpha 0.1%"),
    _EVERY,
    _FROM,
    _MIN_SAMPLES,
)
# A hook or a job gate runs for at most a day: longer is a batch job, not a step of a rollout.
MAX_TIMEOUT_S = 86400.0
TIMEOUT = OptionSpec(("timeout",), duration_of("the timeout", 1.0, MAX_TIMEOUT_S), "timeout_s", "timeout 20m")
JOB_OPTIONS = (TIMEOUT, _EVERY, _FAIL_AFTER, _FROM)
JOB_VERBS = ("run", "call")
# A field of a JSON document: names and list indices joined by dots, `metrics.http_req_failed.rate`, `runs.0.ok`.
_JSON_FIELD = re.compile(r"[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*")


def _check_change(value: float, text: str, what: str, relative: bool) -> float:
    """A business gate's change (margin, effect, tau): no change, or one big enough to differ from the
    baseline in floating point, and finite."""
    smallest = MIN_RELATIVE_CHANGE if relative else MIN_ABSOLUTE_CHANGE
    if value != 0 and abs(value) < smallest:
        shown = "0.0001% (relative)" if relative else "1e-09 (absolute)"
        raise units.UnitError(f"{what} must be 0 or at least {shown} either way, got `{text}`",
                              "a smaller change cannot be told apart from the baseline", code="RL222")
    return units.check_range(value, text, what, -units.MAX_NUMBER, units.MAX_NUMBER)


class GatesLowering(LowererBase):
    """Gates of every kind."""

    def gate(self, node: Node, origin: str | None) -> ir.AnyGate:
        name = node.toks("NAME")[0].text
        phrases = phrases_of(node)
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
            raise fail("RL215", f"gate `{name}` needs a condition", cond.here(),
                        help="e.g. `p99 latency < 250ms`, `error rate < 0.5%`, `psi(scores) < 0.2` or "
                             "`ctr change > -1% relative, fail if shown harmful, power 80% at -3%`")
        span = join_spans(words[0].span, words[-1].span)
        change = len(words) >= 2 and words[-1].text == "change"
        signal = _slo_signal(words[:-1] if change else words)
        if signal is not None:
            return self._slo(node, name, signal, cond, rest, origin, change)
        if change and len(words) == 2:
            return self.business_gate(node, name, words[0], cond, rest, origin)
        following = cond.peek()
        if len(words) == 1 and words[0].text in JOB_VERBS and isinstance(following, Token) \
                and following.type == "STRING":
            return self.job_gate(node, name, words[0], cond, rest, origin)
        if words[0].text == "srm":
            cond.pos -= len(words) - 1  # `srm` takes no comparison: the first option may follow it directly
            opts = read_options(rest(), SRM_OPTIONS, "a sample-ratio gate", self.diagnostics)
            alpha = opts.get("alpha", (0.1, None))[0]
            if not 0 < alpha < 100:
                self.diagnostics.append(error("RL201", "alpha must be between 0% and 100%", opts["alpha"][1]))
            return ir.SrmGate(span=node.span, name=name, alpha=alpha / 100.0,
                              interval_s=opts.get("interval_s", (3600.0, None))[0],
                              min_samples=opts.get("min_samples", (None, None))[0],
                              from_stage=option_name(opts, "from_stage"), origin=origin)
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
        raise fail(
            "RL215",
            f"unknown gate condition `{text}`",
            span,
            help=(hint + "; " if hint else "") + "a gate checks `p99 latency`, `error rate`, `saturation`, "
            "`query <name>` (each also as a `change` against stable), `<metric> change`, `srm`, a drift "
            "statistic such as `psi(scores)`, or your own check: `run \"command\"` or `call \"URL\"`",
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
        opts = read_options(rest(), SLO_OPTIONS, "an SLO gate", self.diagnostics)
        baseline = None
        if "baseline" in opts:
            tok = opts["baseline"][0]
            baseline = self.guard(lambda: self.unit(tok, lambda t: _slo_value(kind, t, "baseline")))
        spreads = {key: self.guard(lambda key=key: self._spread(kind, key, opts[key]))  # type: ignore[misc]
                   for key in _SPREAD_SIGNALS if key in opts}
        return ir.SloGate(
            span=node.span, name=name, signal=cast(Any, kind), percentile=percentile, query=query,
            op=cast(ir.Comparison, op.text), op_span=op.span, threshold=threshold,
            comparison="change" if change else "threshold", relative=relative, baseline=baseline,
            sigma=spreads.get("sigma"), sd=spreads.get("sd"),
            min_samples=opts.get("min_samples", (None, None))[0],
            interval_s=opts.get("interval_s", (60.0, None))[0],
            failure_limit=opts.get("failure_limit", (1, None))[0],
            from_stage=option_name(opts, "from_stage"), origin=origin,
        )

    def _spread(self, kind: str, key: str, given: tuple[Token, Span]) -> float:
        """`sigma 0.5` (latency) or `sd 0.02` (saturation, query): a positive spread for the simulator."""
        tok, span = given
        signals, meaning = _SPREAD_SIGNALS[key]
        if kind not in signals:
            fits = " or ".join(signals)
            other = next((k for k, (sigs, _) in _SPREAD_SIGNALS.items() if kind in sigs), None)
            raise fail("RL293", f"`{key}` is {meaning}: it belongs on a {fits} gate", span,
                       help=f"write `{other}` for this gate" if other else
                       "drop it: the simulator draws this signal's noise from the requests counted")
        # The ranges of a label metric's `sd` and of a lognormal delay's `sigma` (RL222); `sd` is in the
        # signal's unit, as its `baseline` is (`sd 5%` for saturation).
        if key == "sigma":
            return self.unit(tok, lambda t: units.number(t, "sigma", minimum=0, maximum=MAX_SIGMA, above=True))
        value = self.unit(tok, lambda t: _slo_value(kind, t, "sd"))
        if value < MIN_SD:
            raise fail("RL222", f"sd must be at least {MIN_SD:g}, got `{tok.text}`", tok.span)
        return value

    def _slo_change(self, kind: str, cond: Phrase) -> tuple[float, bool]:
        """The change of a candidate-vs-stable SLO gate: `+10%` (relative), `+15ms`, `+0.1% absolute`, `+0.5`."""
        tok = cond.number("a change like `+10%`")
        lit = self.unit(tok, units.split)
        word = cond.accept_word("relative", "absolute")
        if lit.unit == "%" and (word is None or word.text == "relative"):
            if lit.number <= -100:
                raise fail("RL259", f"a relative change of `{tok.text}` is at or below -100%", tok.span)
            return self.unit(tok, lambda t: units.check_range(lit.number, t, "a relative change", None,
                                                              units.MAX_NUMBER, "%")) / 100.0, True
        if word is not None and word.text == "relative":
            raise fail("RL201", f"`{tok.text} relative` is not a relative change", tok.span,
                        help=f"a relative change is a percentage: `{lit.text}%`")
        example = {"latency": "+15ms", "error_rate": "+0.1% absolute", "saturation": "+5% absolute",
                   "query": "+0.5"}[kind]
        try:
            return _slo_value(kind, tok.text, "change"), False
        except units.UnitError as exc:
            raise fail("RL201", exc.message, tok.span,
                        help=f"write a relative change (`+10%`) or an absolute one (`{example}`)") from None

    def drift_gate(self, node: Node, name: str, cond: Phrase, rest: Callable[[], list[Phrase]],
                   origin: str | None) -> ir.DriftGate:
        call = cast(Node, cond.next())
        fn = call.toks("NAME")[0]
        if fn.text not in DRIFT_STATISTICS:
            hint = did_you_mean(fn.text, DRIFT_STATISTICS)
            raise fail("RL216", f"unknown drift statistic `{fn.text}`", fn.span,
                        help=hint or f"drift gates use {one_of(list(DRIFT_STATISTICS))}")
        args = call.nodes("phrase")
        if len(args) != 1 or len(args[0].children) != 1 or not isinstance(args[0].children[0], Token) \
                or args[0].children[0].type != "NAME":
            raise fail("RL216", f"`{fn.text}` takes the name of one input or output, as in `{fn.text}(scores)`",
                        call.span)
        target_tok = args[0].children[0]
        target = target_tok.text
        op: str = "<"
        op_span: Span | None = None
        threshold: float | None = None
        following = cond.peek()
        if fn.text == "adwin" and isinstance(following, Token) and following.type == "COMPARE":
            raise fail("RL216", "`adwin` takes no threshold: it flags a change when its window splits", following.span,
                        help="write `adwin(scores)`, and set its confidence with `delta 0.002`")
        if fn.text != "adwin":
            op_tok = cond.compare()
            op, op_span = op_tok.text, op_tok.span
            tok = cond.number("a threshold")
            threshold = self.unit(tok, lambda t: units.number(t, f"a {fn.text} threshold", minimum=0))
        opts = read_options(rest(), DRIFT_OPTIONS, "a drift gate", self.diagnostics)
        return ir.DriftGate(
            span=node.span, name=name, statistic=cast(Any, fn.text), target=target, target_span=target_tok.span,
            op=cast(ir.Comparison, op), op_span=op_span, threshold=threshold,
            delta=opts.get("delta", (0.002 if fn.text == "adwin" else None, None))[0],
            interval_s=opts.get("interval_s", (3600.0, None))[0],
            failure_limit=opts.get("failure_limit", (1, None))[0],
            bins=opts.get("bins", (10, None))[0],
            min_samples=opts.get("min_samples", (None, None))[0],
            reference=opts.get("reference", ("stable", None))[0],
            reference_span=opts.get("reference", (None, None))[1],
            from_stage=option_name(opts, "from_stage"), origin=origin,
        )

    def job_gate(self, node: Node, name: str, verb: Token, cond: Phrase, rest: Callable[[], list[Phrase]],
                 origin: str | None) -> ir.JobGate:
        """`run "command"` or `call "URL"`, optionally `json "field" < NUMBER`: the team's own check."""
        target_tok = cond.string("a command" if verb.text == "run" else "a URL")
        target = unquote(target_tok)
        if verb.text == "call":
            if not re.fullmatch(r"https?://[^\s/]+\S*", target):
                raise fail("RL261", f"{shown(target)} is not an http or https URL", target_tok.span,
                           label="`call` sends a GET request here",
                           help='write the whole URL: `call "https://loadtest.example.com/result"`; to run a program, '
                                'use `run "command"`')
        elif not target.strip():
            raise fail("RL261", "the command is empty", target_tok.span,
                       help='write the command `sh -c` runs: `run "python -m parity --sample 1000"`')
        field = op = None
        threshold = None
        if cond.accept_word("json"):
            field_tok = cond.string('a field of the JSON output, like "metrics.p99_ms"')
            field = unquote(field_tok)
            if not _JSON_FIELD.fullmatch(field):
                raise fail("RL262", f"{shown(field)} is not a JSON field", field_tok.span,
                           help='name the field by its keys joined with dots: `json "metrics.http_req_failed.rate"`, '
                                '`json "runs.0.p99_ms"`')
            op = cond.compare().text
            number = cond.number("the number the field is compared with")
            threshold = self.unit(number, _json_number)
        reported = len(self.diagnostics)
        opts = read_options(rest(), JOB_OPTIONS, "a job gate", self.diagnostics)
        if "failure_limit" in opts and "interval_s" not in opts:
            self.diagnostics.append(error(
                "RL263", "`fail after` needs `every`: without it a job gate runs once", opts["failure_limit"][1],
                help="run it again and again with `every 30m, fail after 2`, or drop `fail after`"))
        if len(self.diagnostics) > reported:
            raise FollowOn()
        return ir.JobGate(
            span=node.span, name=name, command=target if verb.text == "run" else None,
            url=target if verb.text == "call" else None, target_span=target_tok.span, field=field,
            op=cast(Any, op), threshold=threshold,
            timeout_s=opts.get("timeout_s", (ir.DEFAULT_TIMEOUT_S, None))[0],
            interval_s=opts.get("interval_s", (None, None))[0],
            failure_limit=opts.get("failure_limit", (1, None))[0],
            from_stage=option_name(opts, "from_stage"), origin=origin,
        )

    def business_gate(self, node: Node, name: str, metric: Token, cond: Phrase,
                      rest: Callable[[], list[Phrase]], origin: str | None) -> ir.BusinessGate:
        op = cond.compare()
        tok = cond.number("the change the plan tolerates, like `-1%`")
        lit = self.unit(tok, units.split)
        word = cond.accept_word("relative", "absolute")
        relative = word.text == "relative" if word is not None else True
        if lit.unit == "" and word is None:
            raise fail("RL201", "missing unit: write the change as a percentage", tok.span,
                        help=f"write `{lit.text}%` (relative), or `{lit.text} absolute`")
        margin = self._business_change(tok, relative, "the margin")
        condition = join_spans(metric.span, (word or tok).span)
        written = _ChangeStyle(relative, lit.unit == "%")
        direction = 1 if op.text in (">", ">=") else -1
        opts = read_options(rest(), BUSINESS_OPTIONS, "a business gate", self.diagnostics)
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
            raise FollowOn()
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
            tau=tau, from_stage=option_name(opts, "from_stage"), origin=origin,
        )

    def _business_change(self, tok: Token, relative: bool, what: str) -> float:
        """A change as a business gate writes it: `-1%` relative, `-0.1%` points or `-0.05` absolute."""
        lit = self.unit(tok, units.split)
        if lit.unit == "%":
            value = self.unit(tok, lambda t: units.percent(t, what, allow_negative=True, max_value=1e9)) / 100.0
            if relative and value <= -1.0:
                raise fail("RL259", f"{what} `{tok.text}` is a fall of 100% or more", tok.span,
                            help="a relative change is above -100%")
            return self.unit(tok, lambda t: _check_change(value, t, what, relative))
        if lit.unit == "" and not relative:
            return self.unit(tok, lambda t: _check_change(lit.number, t, what, relative))
        if lit.unit == "":
            raise fail("RL257", f"{what} of a relative gate is written as a percentage", tok.span,
                        help=f"write `{lit.text}%` (a relative change, like the gate's margin)")
        raise fail("RL201", f"`{tok.text}` is not a change", tok.span,
                    help="write it like the gate's margin: `-1%` (relative) or `-0.05` (absolute)")

    def _hypothesis(self, opts: dict[str, tuple[Any, Span]], name: str, condition: Span, margin: float,
                    direction: int, written: _ChangeStyle) -> ir.Hypothesis:
        harm, ni = "harm" in opts, "non_inferiority" in opts
        if harm and ni:
            raise fail("RL258", "a gate tests one hypothesis: `fail if shown harmful` or `pass if shown non-inferior`",
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
                raise fail("RL252", "a harm test needs the change its power is sized for",
                            where, help=f"add `power {power:g}% at {worse}`: the harm it must catch, beyond the margin")
            if direction * (0.0 - margin) <= 0:
                better = written.text(margin + direction * written.unit_step)
                raise fail("RL251", f"the margin {written.text(margin, kind=True)} asks for an improvement, so an "
                            "unchanged candidate cannot pass", where,
                            help=f"size the power at the improvement you expect: `power {power:g}% at {better}`")
            return 0.0
        effect = self._business_change(effect_tok, written.relative, "the effect")
        gap = direction * (effect - margin)
        if hypothesis == "harm" and gap >= 0:
            raise fail("RL251", f"a harm test cannot be sized at {effect_tok.text}: the margin "
                        f"{written.text(margin, kind=True)} tolerates it", effect_tok.span,
                        label="inside the margin",
                        help="size the power at a change beyond the margin, the harm the gate must catch")
        if hypothesis == "non-inferiority" and gap <= 0:
            raise fail("RL251", f"a non-inferiority test cannot be sized at {effect_tok.text}: it is not within "
                        f"the margin {written.text(margin, kind=True)}", effect_tok.span, label="beyond the margin",
                        help="size the power at the change you expect, within the margin (no change: `at 0%`)")
        return effect


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


def _json_number(text: str) -> float:
    """The number a job gate's JSON field is compared with: plain, or a percentage read as a fraction (`1%`)."""
    lit = units.split(text)
    if lit.unit == "%":
        return units.percent(text, "the number", allow_negative=True, max_value=units.MAX_NUMBER) / 100.0
    return units.number(text, "the number")
