"""Lowering the rest of a rollout's policy: budgets, scenarios, holdout, pipeline, approvals, request logging."""

from __future__ import annotations

from typing import Any, cast

from rolloutlang import handles, ir, units
from rolloutlang.lowering.gates import MAX_TIMEOUT_S
from rolloutlang.lowering.phrases import (
    LowererBase,
    Phrase,
    fail,
    join_spans,
    phrases_of,
    short,
    shown,
    unquote,
)
from rolloutlang.lowering.traffic import label_delay
from rolloutlang.syntax import Node, Token


class PolicyLowering(LowererBase):
    """Budgets, scenarios, the holdout, the pipeline image, approvals and request logging."""

    def budget(self, node: Node) -> ir.Budget:
        (p, *extra) = phrases_of(node)
        kind = p.word("budget", ("exposure", "duration", "false")).text
        if kind == "false":
            return self._false_rollbacks(node, p, extra)
        if extra:
            raise fail("RL206", "a budget is one condition", extra[0].span,
                        help="write one `budget` line per cap")
        op = p.compare()
        if op.text not in ("<", "<="):
            raise fail("RL220", "a budget is a cap: use `<=`", op.span)
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
            raise fail("RL220", "a budget is a cap: use `<=`", op.span)
        share = self.unit(p.number("a share like `5%`"), lambda t: units.percent(t, "the false-rollback budget"))
        if not 0 < share < 100:
            raise fail("RL201", "a false-rollback budget is a share between 0% and 100%", p.atoms[p.pos - 1].span)
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
                raise fail("RL206", "a budget is one condition", extra[0].span,
                            help="to share the budget between gates, name them: "
                                 "`budget false rollbacks <= 5% across ctr, revenue`")
        self.duplicate("gate in the budget", ((n.text, n.span) for n in names))
        return ir.Budget(span=node.span, kind="false-rollbacks", max_percent=share,
                         gates=tuple(n.text for n in names), gate_spans=tuple(n.span for n in names))

    def scenario(self, node: Node) -> ir.Scenario:
        name = node.toks("NAME")[0].text
        effects = []
        for p in phrases_of(node):
            e = self.guard(lambda p=p: self.effect(p))  # type: ignore[misc]
            if e is not None:
                effects.append(e)
        if not node.nodes("phrase"):
            raise fail("RL221", f"scenario `{name}` changes nothing", node.toks("NAME")[0].span,
                        help="list effects: `scenario regression { ctr -2%, latency +15ms }`")
        return ir.Scenario(span=node.span, name=name, effects=tuple(effects))

    def effect(self, p: Phrase) -> ir.Effect:
        start = p.here()
        target = p.word("a metric, gate or `labels`")
        if target.text == "labels":
            metric = p.word("a metric name")
            delay = label_delay(self, p)
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
                raise fail("RL201", f"`{tok.text}` is over 100%", tok.span)
            self.unit(tok, lambda t: units.check_range(lit.number, t, "a relative change", -units.MAX_NUMBER,
                                                       units.MAX_NUMBER, "%"))
        elif lit.unit in units.DURATION_UNITS:
            value, unit = lit.number * units.DURATION_UNITS[lit.unit], "seconds"
            if not abs(value) <= units.MAX_DURATION_S:
                raise fail("RL222", f"a change must be at most 520w either way, got `{short(tok.text)}`", tok.span)
        elif lit.unit == "":
            if target.text == "latency":
                raise fail("RL201", "missing unit: a latency change needs a duration", tok.span,
                            help=f"write `{tok.text}ms`")
            value, unit = self.unit(tok, lambda t: units.number(t, "a change")), "number"
        else:
            raise fail("RL201", f"`{tok.text}` is not a change", tok.span,
                        help="write a percentage (`-2%`), a duration (`+15ms`) or a number (`0.3`)")
        after = 0.0
        if p.accept_word("after"):
            after = self.unit(p.number("a time like `30m`"), lambda t: units.duration(t, "the onset"))
        p.end("the effect")
        return ir.Effect(span=join_spans(start, p.atoms[-1].span), target=target.text, kind=cast(Any, kind),
                         value=value, unit=cast(Any, unit), after_s=after)

    def holdout(self, node: Node) -> ir.Holdout:
        nums = node.toks("NUMLIT")
        pct = self.unit(nums[0], lambda t: units.percent(t, "the holdout share", share=True))
        if pct <= 0 or pct >= 100:
            raise fail("RL201", "a holdout is a share strictly between 0% and 100%", nums[0].span)
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


    def pipeline_image(self, node: Node) -> ir.PipelineImage:
        tok = node.toks("STRING")[0]
        image, embedded = handles.split_digest(unquote(tok))
        if not handles.is_image_reference(image):
            raise fail("RL292", f"pipeline image {shown(image)} is not an image reference", tok.span,
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
                raise fail("RL290", f"approver {shown(who)} is not a user or team handle", tok.span,
                            label="becomes a required reviewer in the generated CI", help=handles.HANDLE_HELP)
            approvers.append(who)
        return ir.Approval(span=node.span, what=node.toks("NAME")[0].text, approvers=tuple(approvers))

    def pipeline_hook(self, node: Node) -> ir.PipelineHook:
        """`NAME "command" [POINT] [, timeout D]`: POINT is `before traffic` (the default), `at start of P`,
        `at end of P`, `after promotion` or `on rollback`."""
        out: dict[str, Any] = {}
        for item in node.children:
            if not isinstance(item, Node):
                continue
            if item.kind in _HOOK_POINTS:
                out["point"] = _HOOK_POINTS[item.kind]
                phase = item.tok("NAME")
                if phase is not None:
                    out["phase"], out["phase_span"] = phase.text, phase.span
            elif item.kind == "hook_timeout":
                tok = item.toks("NUMLIT")[0]
                out["timeout_s"] = self.unit(tok, lambda t: units.duration(t, "the timeout", minimum=1.0,
                                                                           maximum=MAX_TIMEOUT_S))
        return ir.PipelineHook(span=node.span, name=node.toks("NAME")[0].text, command=unquote(node.toks("STRING")[0]),
                               **out)

    def bake(self, node: Node) -> ir.Bake:
        tok = node.toks("NUMLIT")[0]
        return ir.Bake(span=node.span, duration_s=self.unit(tok, lambda t: units.duration(t, "the bake")),
                       duration_span=tok.span)

    def scale_down(self, node: Node) -> ir.ScaleDown:
        tok = node.toks("NUMLIT")[0]
        return ir.ScaleDown(span=node.span, after_s=self.unit(tok, lambda t: units.duration(t, "the scale-down delay")),
                            after_span=tok.span)

    def revert(self, node: Node) -> ir.Revert:
        reason = node.tok("STRING")
        return ir.Revert(span=node.span, reason=unquote(reason) if reason is not None else None)


_HOOK_POINTS: dict[str, ir.HookPoint] = {
    "hook_before_traffic": "before-traffic", "hook_at_start": "phase-start", "hook_at_end": "phase-end",
    "hook_after_promotion": "after-promotion", "hook_on_rollback": "on-rollback",
}
