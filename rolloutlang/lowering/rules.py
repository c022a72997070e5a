"""Lowering rules: what happens when a gate fails or passes."""

from __future__ import annotations

from typing import Any, cast

from rolloutlang import handles, ir, units
from rolloutlang.diagnostics import error
from rolloutlang.lowering.phrases import LowererBase, Phrase, fail, join_spans, phrases_of, shown, unquote
from rolloutlang.syntax import Node


class RulesLowering(LowererBase):
    """Rules and their actions."""

    def rollback_rule(self, node: Node, origin: str | None) -> ir.RollbackRule:
        names = node.toks("NAME")
        event_tok = node.tok("RULE_EVENT")
        event = event_tok.text if event_tok is not None else "fail"
        actions = []
        for p in phrases_of(node):
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
                raise fail("RL291", f"notify channel {shown(channel)} is not a channel name", tok.span,
                            label="the pipeline sends failure notices here", help=handles.CHANNEL_HELP)
            kw["channel"] = channel
        p.end(f"`{verb.text}`")
        return ir.Action(span=join_spans(start, p.atoms[-1].span), kind=cast(Any, verb.text), **kw)

    # policy
