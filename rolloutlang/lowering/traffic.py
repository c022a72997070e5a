"""Lowering the traffic model, the metrics source and label metrics."""

from __future__ import annotations

import functools
import math
from typing import Any, Literal, cast

from rolloutlang import ir, units
from rolloutlang.diagnostics import did_you_mean, error, one_of
from rolloutlang.lowering.phrases import (
    FollowOn,
    LowererBase,
    OptionSpec,
    Phrase,
    duration_of,
    fail,
    join_spans,
    keyword_span,
    percent_of,
    phrases_of,
    read_options,
    short,
    unquote,
)
from rolloutlang.source import Span
from rolloutlang.syntax import Node, Token

MIN_BINARY_BASELINE, MAX_BINARY_BASELINE = 1e-6, 1 - 1e-6
MIN_SD = 1e-9  # also the smallest non-zero baseline of a continuous metric
MAX_SIGMA = 10.0
# Below this a lognormal delay's p95 rounds to its median: write `fixed(...)` instead.
MIN_SIGMA = 1e-6
_Z95 = 1.6448536269514722  # the standard normal's 95th percentile
MIN_RATE_RPS, MAX_RATE_RPS = 1 / 3600, 1e9  # one request an hour to a billion a second
DELAY_DISTRIBUTIONS = ("immediate", "fixed", "exponential", "lognormal")


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
            raise fail("RL260", "requests are split one by one: a key names a user or a session", kind.span,
                        help='write `split by user header "x-user-id"`, or drop the key')
        key = ir.HeaderMatchKey(kind=cast(Literal["header", "cookie"], kind.text),
                                name=unquote(p.string(f'the {kind.text} name, like "x-user-id"')))
    return unit, key



class TrafficLowering(LowererBase):
    """The traffic model, where metrics come from, and label metrics."""

    def traffic(self, node: Node) -> ir.TrafficModel:
        phrases = phrases_of(node)
        first = phrases[0]
        tok = first.number("a request rate like `12000 rps`")
        lit = self.unit(tok, units.split)
        unit = lit.unit
        if not unit:
            unit_tok = first.accept_word("rps", "rpm", "rph")
            if unit_tok is None:
                raise fail("RL201", "missing unit: a request rate needs `rps`, `rpm` or `rph`", tok.span,
                            help=f"write `traffic {lit.text} rps`")
            unit = unit_tok.text
        per = {"rps": 1.0, "rpm": 60.0, "rph": 3600.0}
        unit_rate = unit
        if unit not in per:
            raise fail("RL201", f"`{unit}` is not a request-rate unit", tok.span, help="use `rps`, `rpm` or `rph`")
        if lit.number <= 0:
            raise fail("RL201", "the request rate must be positive", tok.span)
        if not MIN_RATE_RPS <= lit.number / per[unit] <= MAX_RATE_RPS:
            raise fail("RL222", f"the request rate must be between 1 rph and 1e+09 rps, got `{short(tok.text)}`",
                        tok.span)
        rest = [Phrase(first.atoms[first.pos:], first.span), *phrases[1:]]
        per_unit = self._requests_per_unit(rest)
        opts = read_options(
            rest,
            (
                OptionSpec(("diurnal",), percent_of("the diurnal amplitude"), "diurnal", "diurnal 30%"),
                OptionSpec(("peak",), duration_of("the peak hour"), "peak", "peak 14h"),
                OptionSpec(("start",), duration_of("the start hour"), "start", "start 9h"),
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
                raise fail("RL201", f"a {word} makes at least one request", tok.span)
            del phrases[i]
            return count, word, join_spans(tok.span, p.atoms[-1].span)
        return None

    def metrics_source(self, node: Node) -> ir.MetricsSource:
        kind_tok = node.toks("NAME")[0]
        if kind_tok.text != "prometheus":
            hint = did_you_mean(kind_tok.text, ("prometheus",))
            raise fail("RL203", f"unknown metrics source `{kind_tok.text}`", kind_tok.span,
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
                                              keyword_span(ev.span, "evaluator"),
                                              help="a metrics source has one evaluator image; remove one"))
                continue
            image_tok = ev.toks("STRING")[0]
            image = unquote(image_tok)
            if not image.strip() or any(c.isspace() for c in image):
                raise fail("RL281", "the evaluator image is not an image reference", image_tok.span,
                            help='write the repository, and pin it after `@`: '
                                 '`evaluator "registry.example.com/ml/rolloutlang" @ sha256:...`')
            pin = ev.node("pin")
            evaluator = {"evaluator_image": image, "evaluator_pin": self.pin(pin) if pin else None,
                         "evaluator_span": ev.span}
        return ir.MetricsSource(span=node.span, kind="prometheus", address=unquote(node.toks("STRING")[0]),
                                queries=queries, **evaluator)

    def label_metric(self, node: Node, origin: str | None) -> ir.LabelMetric:
        name = node.toks("NAME")[0].text
        phrases = phrases_of(node)
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
        opts = read_options(
            rest,
            (
                OptionSpec(("baseline",), baseline, "baseline", "baseline 4.2%"),
                OptionSpec(("sd",), lambda p: units.number(p.number("sd").text, "sd", minimum=MIN_SD), "sd", "sd 3.5"),
                OptionSpec(("labels",), lambda p: label_delay(self, p), "labels",
                           "labels lognormal(median 2h, p95 8h)"),
                OptionSpec(("icc",), _icc, "icc", "icc 0.02"),
            ),
            f"metric `{name}`",
            self.diagnostics,
        )
        if len(self.diagnostics) > reported and ("baseline" not in opts
                                                 or (kind == "continuous" and "sd" not in opts)):
            raise FollowOn()  # the option that went wrong is already reported
        if "baseline" not in opts:
            raise fail("RL213", f"metric `{name}` needs a baseline", node.toks("NAME")[0].span,
                        help="add `baseline 4.2%` (binary) or `baseline 1.3, sd 4` (continuous)")
        if kind == "continuous" and "sd" not in opts:
            raise fail("RL213", f"continuous metric `{name}` needs a standard deviation", node.toks("NAME")[0].span,
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


def label_delay(lowerer: LowererBase, p: Phrase) -> ir.LabelDelay:
    """`immediate`, `fixed(2h)`, `exponential(mean 1h)` or `lognormal(median 2h, p95 8h)`: read by label
    metrics and by scenario effects (`labels ctr ...`)."""
    atom = p.next()
    if isinstance(atom, Token) and atom.type == "NAME" and atom.text == "immediate":
        return ir.LabelDelay(span=atom.span, distribution="immediate")
    if not isinstance(atom, Node) or atom.kind != "call":
        span = atom.span if atom is not None else p.here()
        raise fail("RL214", "expected a label delay distribution", span,
                    help="write `immediate`, `fixed(2h)`, `exponential(mean 1h)` or "
                         "`lognormal(median 2h, p95 8h)`")
    fn = atom.toks("NAME")[0]
    if fn.text not in DELAY_DISTRIBUTIONS:
        hint = did_you_mean(fn.text, DELAY_DISTRIBUTIONS)
        raise fail("RL214", f"unknown delay distribution `{fn.text}`", fn.span,
                    help=hint or f"use {one_of(list(DELAY_DISTRIBUTIONS))}")
    args = [Phrase.of(a) for a in atom.nodes("phrase")]
    if fn.text == "fixed":
        if len(args) != 1:
            raise fail("RL214", "`fixed` takes one duration, as in `fixed(2h)`", atom.span)
        d = lowerer.unit(args[0].number("a duration"), lambda t: units.duration(t, "the delay"))
        args[0].end("the delay")
        return ir.LabelDelay(span=atom.span, distribution="fixed", fixed_s=d)
    spec = {
        "exponential": (OptionSpec(("mean",), duration_of("the mean delay"), "mean", "mean 1h"),),
        "lognormal": (
            OptionSpec(("median",), duration_of("the median delay"), "median", "median 2h"),
            OptionSpec(("p95",), duration_of("the 95th percentile delay"), "p95", "p95 8h"),
            OptionSpec(("sigma",), lambda q: units.number(q.number("sigma").text, "sigma", minimum=MIN_SIGMA,
                                                          maximum=MAX_SIGMA),
                       "sigma", "sigma 1"),
        ),
        "immediate": (),
    }[fn.text]
    reported = len(lowerer.diagnostics)
    opts = read_options(args, spec, f"`{fn.text}(...)`", lowerer.diagnostics)
    if len(lowerer.diagnostics) > reported:
        raise FollowOn()  # a missing median or mean would only repeat the error above
    if fn.text == "immediate":
        return ir.LabelDelay(span=atom.span, distribution="immediate")
    if fn.text == "exponential":
        if "mean" not in opts:
            raise fail("RL214", "`exponential` needs its mean, as in `exponential(mean 1h)`", atom.span)
        if opts["mean"][0] <= 0:
            raise fail("RL214", "the mean delay must be positive", opts["mean"][1])
        return ir.LabelDelay(span=atom.span, distribution="exponential", mean_s=opts["mean"][0])
    if "median" not in opts or ("p95" not in opts and "sigma" not in opts):
        raise fail("RL214", "`lognormal` needs a median and a p95 (or sigma)", atom.span,
                    help="write `lognormal(median 2h, p95 8h)`")
    median = opts["median"][0]
    if median <= 0:
        raise fail("RL214", "the median delay must be positive", opts["median"][1])
    # p95 = median * exp(z95 * sigma): the spread a sigma up to MAX_SIGMA allows.
    widest = math.exp(_Z95 * MAX_SIGMA)
    if "p95" in opts:
        p95 = opts["p95"][0]
        if p95 <= median:
            raise fail("RL214", "the p95 delay must be longer than the median", opts["p95"][1],
                        help="p95 is the delay that 95% of labels beat; it is above the median")
        if p95 > median * widest:
            raise fail("RL222", f"the p95 delay can be at most {widest:.3g} times the median (a lognormal "
                        f"sigma of {MAX_SIGMA:g}), got {units.duration_text(p95)} for a median of "
                        f"{units.duration_text(median)}", opts["p95"][1],
                        help="a wider spread makes the delay's mean overflow; check the two durations")
    else:
        p95 = median * math.exp(_Z95 * opts["sigma"][0])
    return ir.LabelDelay(span=atom.span, distribution="lognormal", median_s=median, p95_s=p95)

# strategy
