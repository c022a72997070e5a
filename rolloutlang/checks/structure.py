"""Strategy structure checks (RL310-RL325): does the plan hang together?

Lowering already says when a rollout has two strategies (RL301), an empty
canary (RL302) or a 0% shadow (RL303).  These passes look at the strategy as
a whole and at the plan graph built from it: weights that go up, stages that
end, a last stage that reaches 100%, a shadow that fits its canary, and a way
back from every phase that sends the candidate live traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.checks.references import gate_site
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.plan import ROLLED_BACK, Phase, Plan, gate_list
from rolloutlang.source import Span
from rolloutlang.units import duration_text
from rolloutlang.units import format_percent as _pct

# One line per code, for docs and SARIF rule descriptions.
RULES: dict[str, str] = {
    "RL310": "canary weights must increase",
    "RL311": "canary stage at 0%",
    "RL312": "zero duration",
    "RL313": "last canary stage does not reach 100%",
    "RL314": "canary stage without a duration",
    "RL315": "`hold` on a stage that is not the last",
    "RL316": "nothing can roll the plan back",
    "RL317": "candidate traffic with no way back",
    "RL318": "no gate guards the rollout",
    "RL319": "no strategy",
    "RL320": "automatic blue-green promotion without a preview",
    "RL321": "`shadow ... alongside canary` without a canary",
    "RL322": "shadow `until` mirrors during no stage",
    "RL323": "shadow `until` is not a stage weight",
    "RL324": "holdout on the candidate",
    "RL325": "route with a rolling update",
}


def keyword_span(span: Span, kind: str) -> Span:
    """The keyword a strategy or phase starts with (`canary`, `blue-green`, `shadow`, ...)."""
    return span.head(len("blue-green" if kind == "preview" else kind))


def phase_noun(phase: Phase) -> str:
    return "stage" if phase.kind == "canary" else "phase"


@check_pass("structure")
def check_structure(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    out: list[Diagnostic] = []
    strategy = rollout.strategy
    if strategy is None:
        notes = ("a shadow phase alone never sends the candidate live traffic",) if rollout.shadow else ()
        out.append(error(
            "RL319", f"rollout `{rollout.name}` does not say how traffic moves",
            rollout.span.to(rollout.name_span) if rollout.name_span else rollout.span, notes=notes,
            help="add a strategy: `canary { 5% for 1h  100% }`, `blue-green { preview for 2h, promote manual }` "
                 "or `rolling { max surge 25% }`",
        ))
    if isinstance(strategy, ir.Canary):
        out.extend(_canary(ctx, strategy))
    elif isinstance(strategy, ir.BlueGreen):
        out.extend(_blue_green(ctx, strategy))
    out.extend(_shadow(ctx, rollout.shadow, strategy))
    out.extend(_holdout(ctx, rollout.holdout))
    if isinstance(strategy, ir.Rolling):
        for route in rollout.routes:
            out.append(warning(
                "RL325", f"a rolling update has no traffic router: the route to `{route.target}` is ignored",
                route.span,
                help="route by header with a strategy that splits traffic: `canary { ... }` or "
                     "`blue-green { preview for 2h, promote manual }`",
            ))
    if strategy is not None:
        out.extend(_ways_back(ctx, ctx.plan))
    return out


def _canary(ctx: CheckContext, canary: ir.Canary) -> Iterator[Diagnostic]:
    stages = canary.stages
    for i, st in enumerate(stages):
        last = i == len(stages) - 1
        if st.weight_percent == 0:
            yield error(
                "RL311", f"canary stage `{st.name}` at 0% sends no traffic to the candidate", st.weight_span,
                help="remove the stage; to try the candidate without live traffic, mirror it first: "
                     "`shadow 100% for 1h`",
            )
        if i > 0:
            prev = stages[i - 1]
            if st.weight_percent < prev.weight_percent:
                yield error(
                    "RL310", f"canary weights must increase: {_pct(st.weight_percent)} follows "
                    f"{_pct(prev.weight_percent)}", st.weight_span,
                    label=f"weight drops from {_pct(prev.weight_percent)} to {_pct(st.weight_percent)}",
                    help="order the stages by weight; to step back, roll back instead",
                )
            elif st.weight_percent == prev.weight_percent:
                yield error(
                    "RL310", f"canary weights must increase: stage `{st.name}` repeats {_pct(st.weight_percent)}",
                    st.weight_span, label=f"same weight as `{prev.name}`",
                    help=f"to stay at {_pct(st.weight_percent)} longer, lengthen `{prev.name}` and drop this stage",
                )
        if st.duration_s == 0:
            yield error(
                "RL312", f"stage `{st.name}` lasts 0s: no gate can look at it", st.end_span or st.span,
                help=f"give the gates time (`{_pct(st.weight_percent)} for 30m`), or remove the stage",
            )
        if st.hold and not last:
            yield error(
                "RL315", f"only the last stage can `hold`, but `{st.name}` is followed by "
                f"`{stages[i + 1].name}`", st.end_span or st.span,
                help=f"to wait for a person mid-ramp, write `{_pct(st.weight_percent)} until approved`",
            )
        if st.duration_s is None and not last and not st.until_approved and not st.hold:
            yield error(
                "RL314", f"stage `{st.name}` has no duration", st.span,
                help=f"say how long it lasts (`{_pct(st.weight_percent)} for 1h`), or wait for a person "
                     f"(`{_pct(st.weight_percent)} until approved`); only the last stage may omit it",
            )
    final = stages[-1] if stages else None
    if final is not None and final.weight_percent < 100 and not final.hold:
        yield error(
            "RL313", f"the last canary stage stops at {_pct(final.weight_percent)}: the candidate never takes "
            "all traffic", final.weight_span,
            help=f"add a final `100%` stage, or end with `{_pct(final.weight_percent)} hold` to keep this split "
                 "until someone promotes",
        )


def _blue_green(ctx: CheckContext, bg: ir.BlueGreen) -> Iterator[Diagnostic]:
    if bg.preview_s == 0:
        yield error(
            "RL312", "a blue-green preview of 0s previews nothing", bg.preview_span or bg.span,
            help="preview long enough for the gates to look: `preview for 1h`",
        )
    if bg.promotion == "auto" and not bg.preview_s:
        yield error(
            "RL320", "blue-green with `promote auto` and no preview switches all traffic at once, unchecked",
            bg.promotion_span or bg.span,
            help="preview first so the gates can look (`preview for 1h, promote auto`), or `promote manual`",
        )


def _shadow(ctx: CheckContext, shadow: ir.Shadow | None,
            strategy: ir.Canary | ir.BlueGreen | ir.Rolling | None) -> Iterator[Diagnostic]:
    if shadow is None:
        return
    if shadow.duration_s == 0:
        yield error(
            "RL312", "a shadow phase of 0s mirrors nothing", shadow.mode_span or shadow.span,
            help=f"mirror for long enough to compare: `shadow {_pct(shadow.percent)} for 1h`",
        )
    if not shadow.alongside_canary:
        return
    if not isinstance(strategy, ir.Canary):
        uses = f"this rollout uses {strategy.kind}" if strategy is not None else "this rollout has no strategy"
        yield error(
            "RL321", f"`shadow ... alongside canary` needs a canary, but {uses}",
            shadow.mode_span or shadow.span,
            help=f"mirror before traffic moves instead: `shadow {_pct(shadow.percent)} for 24h`",
        )
        return
    until = shadow.until_percent
    stages = strategy.stages
    if until is None or not stages:
        return
    until_span = shadow.until_span or shadow.span
    first = stages[0]
    if until <= first.weight_percent:
        yield error(
            "RL322", f"`until {_pct(until)}` mirrors during no stage: the first stage already sends "
            f"{_pct(first.weight_percent)}", until_span,
            help="mirror while the small stages run: `until` a later stage's weight"
                 + (f", e.g. `until {_pct(stages[1].weight_percent)}`" if len(stages) > 1 else ""),
        )
        return
    weights = [s.weight_percent for s in stages]
    if until not in weights:
        stop = next((s for s in stages if s.weight_percent >= until), None)
        where = (f"mirroring stops at stage `{stop.name}` ({_pct(stop.weight_percent)})" if stop is not None
                 else "mirroring never stops")
        hint = f"did you mean `until {_pct(stop.weight_percent)}`?" if stop is not None else ""
        yield warning(
            "RL323", f"no canary stage has weight {_pct(until)}: {where}", until_span,
            help=(hint + " " if hint else "") + "`until` names the weight of the stage where mirroring stops: "
                 + ", ".join(_pct(w) for w in weights),
        )


def _holdout(ctx: CheckContext, holdout: ir.Holdout | None) -> Iterator[Diagnostic]:
    if holdout is None:
        return
    if holdout.duration_s == 0:
        yield error(
            "RL312", "a holdout of 0s holds nothing out", holdout.duration_span or holdout.span,
            help=f"hold out long enough to see the long-run effect: `holdout {_pct(holdout.percent)} on stable "
                 "for 14d`",
        )
    if holdout.role == "candidate":
        yield warning(
            "RL324", "a holdout on the candidate holds nothing out: after promotion the candidate serves everyone",
            holdout.role_span or holdout.span,
            help=f"hold out the old model to measure the long-run effect: `holdout {_pct(holdout.percent)} on "
                 f"stable for {duration_text(holdout.duration_s)}`",
        )


def _ways_back(ctx: CheckContext, plan: Plan) -> Iterator[Diagnostic]:
    rollout = ctx.rollout
    strategy = rollout.strategy
    assert strategy is not None
    if not rollout.gates:
        yield warning(
            "RL318", "no gate guards this rollout: it promotes on time alone",
            keyword_span(strategy.span, strategy.kind),
            help="watch the candidate and roll back when it misbehaves: `gate errors: error rate < 0.5% every 1m` "
                 "and `on errors fail: rollback now`",
        )
        return
    pre = plan.pre_promotion
    if not pre:
        return
    if not plan.can_reach(plan.start, ROLLED_BACK):
        rollback_gates = plan.rollback_gates()
        if rollback_gates:
            reason = f"{gate_list(rollback_gates)} would roll back, but no phase evaluates " \
                     f"{'it' if len(rollback_gates) == 1 else 'them'}"
            first_gate = rollout.gate(rollback_gates[0])
            assert first_gate is not None
            span = gate_site(rollout, first_gate)
        else:
            reason = "no rule says `rollback`"
            rule = next((r for r in rollout.rules if r.origin is None), None)
            first = rollout.gates[0]
            span = rule.span if rule is not None else gate_site(rollout, first)
        name = rollout.gates[0].name
        yield error(
            "RL316", f"nothing can roll this plan back: {reason}", span,
            help=f"roll back when a gate fails: `on {name} fail: rollback now`",
        )
        return
    for ph in pre:
        if ph.weight_percent <= 0 or (ph.length_s == 0 and not ph.open_ended):
            continue
        if plan.transitions_from(ph.id, "rollback"):
            continue
        later = [g for g in plan.rollback_gates() if g not in ph.gates]
        notes = []
        for g in later:
            gate = rollout.gate(g)
            if gate is not None and gate.from_stage is not None:
                notes.append(f"`{g}` is evaluated from stage `{gate.from_stage}`")
            elif isinstance(gate, ir.BusinessGate):
                notes.append(f"`{g}` compares the models only while both answer live traffic (below 100%)")
        span = ph.weight_span or keyword_span(ph.span, ph.kind)
        late = next((g for g in later if (x := rollout.gate(g)) is not None and x.from_stage is not None), None)
        if late is not None:
            fix = f"evaluate `{late}` from the start: drop its `from`"
        else:
            fix = ("evaluate an SLO gate that rolls back in every stage, e.g. `gate errors: error rate < 0.5%` "
                   "with `on errors fail: rollback now`")
        yield warning(
            "RL317", f"{phase_noun(ph)} `{ph.name}` sends {_pct(ph.weight_percent)} of traffic to the candidate, "
            "but no gate can roll it back there", span, notes=tuple(notes), help=fix,
        )

