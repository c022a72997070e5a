"""Lowering the shadow and the strategy: canary stages, blue-green, rolling."""

from __future__ import annotations

from typing import Any

from rolloutlang import ir, units
from rolloutlang.lowering.phrases import (
    LowererBase,
    OptionSpec,
    Phrase,
    choice_of,
    duration_of,
    fail,
    keyword_span,
    phrases_of,
    read_options,
)
from rolloutlang.syntax import Node


class StrategyLowering(LowererBase):
    """The shadow and the strategy."""

    def shadow(self, node: Node) -> ir.Shadow:
        pct_tok = node.toks("NUMLIT")[0]
        pct = self.unit(pct_tok, lambda t: units.percent(t, "the shadow share", share=True))
        if pct <= 0:
            raise fail("RL303", "a shadow of 0% mirrors nothing", pct_tok.span,
                        help="mirror a share in (0%, 100%], or remove the shadow")
        fr = node.node("shadow_for")
        if fr is not None:
            d = self.unit(fr.toks("NUMLIT")[0], lambda t: units.duration(t, "the shadow phase"))
            return ir.Shadow(span=node.span, percent=pct, duration_s=d, mode_span=fr.span)
        al = node.node("shadow_alongside")
        assert al is not None
        until = al.tok("NUMLIT")
        until_pct = self.unit(until, lambda t: units.percent(t, "the canary weight", share=True)) if until else None
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
                raise fail("RL302", "a canary needs at least one stage", keyword_span(node.span, "canary"),
                            help="list weights and durations: `canary { 5% for 1h  100% }`")
            self.duplicate("stage", ((s.name, s.span) for s in stages))
            return ir.Canary(span=node.span, stages=tuple(stages))
        phrases = phrases_of(node)
        if node.kind == "blue_green":
            opts = read_options(
                phrases,
                (
                    OptionSpec(("preview", "for"), duration_of("the preview"), "preview", "preview for 2h"),
                    OptionSpec(("promote",), choice_of("promotion", ("manual", "auto")), "promote", "promote manual"),
                    OptionSpec(("scale", "down", "after"), duration_of("the scale-down delay"), "scale_down",
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
                return ir.SurgeValue(value=units.percent(tok.text, "the share", share=True), unit="percent")
            return ir.SurgeValue(value=units.number(tok.text, "a pod count", integer=True, minimum=0), unit="pods")

        opts = read_options(
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
            raise fail("RL201", f"`{weight_tok.text}` is a duration, not a canary weight", weight_tok.span,
                        help=f"a stage is a weight, `for` and a duration: write `for {weight_tok.text}` "
                             "after the weight, as in `25% for 12h`")
        weight = self.unit(weight_tok, lambda t: units.percent(t, "a canary weight", share=True))
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
                              auto_name=name_tok is None, weight_percent=weight, weight_span=weight_tok.span, **out)

    # gates and rules
