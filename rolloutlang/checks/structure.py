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
from rolloutlang.diagnostics import Diagnostic, error, warning, word_list
from rolloutlang.plan import ROLLED_BACK, Phase, Plan, gate_list
from rolloutlang.source import Span
from rolloutlang.units import duration_text, format_count, human_duration
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
    "RL326": "a ramp step too large for what the stages before it tried",
    "RL327": "blue-green preview whose gates see no traffic",
    "RL328": "approval while the candidate already serves everyone",
    "RL329": "a bake nothing can roll back",
    "RL330": "`scale down after` with a rolling update",
    "RL331": "consumer switch without a route of its own",
    "RL332": "consumer switched to the shadow",
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
    out.extend(_after_promotion(rollout))
    out.extend(_consumer_switches(rollout))
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
        out.extend(_ramp(rollout, ctx.plan))
        out.extend(_waits_at_full(rollout, ctx.plan))
        if isinstance(strategy, ir.BlueGreen):
            out.extend(_blind_preview(rollout, ctx.plan))
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
                 + word_list([_pct(w) for w in weights], last=", ", quote=False),
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
    bake = next((p for p in plan.phases if p.kind == "bake"), None)
    if bake is not None and bake.length_s > 0 and not plan.transitions_from(bake.id, "rollback"):
        assert rollout.bake is not None
        after = [g.name for g in rollout.gates if g.from_stage == "holdout"]
        yield warning(
            "RL329", "nothing can roll the candidate back during the bake: no gate evaluated there rolls back",
            rollout.bake.span.head(len("bake")), label="watches nothing",
            notes=("a gate that compares the two versions has no stable traffic to compare with at 100%; a gate "
                   "on the candidate alone (a threshold, drift `vs training`, a job gate with `every`) keeps "
                   "running",) + ((f"{gate_list(after)} start after the bake",)
                                                                 if after else ()),
            help="keep an SLO gate running through it with a rule that rolls back: `gate errors: error rate < 0.5%` "
                 "and `on errors fail: rollback now`",
        )


# -- after promotion, consumers ----------------------------------------------------------------------


def _after_promotion(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    bake = rollout.bake
    if bake is not None and bake.duration_s == 0:
        yield error("RL312", "a bake of 0s watches nothing after the switch", bake.duration_span,
                    help="bake long enough for the gates to look at the candidate under all traffic: `bake for 2h`")
    scale = rollout.scale_down
    if scale is not None and isinstance(rollout.strategy, ir.Rolling):
        yield warning(
            "RL330", "a rolling update replaces the stable pods as it goes: nothing is left to scale down later",
            scale.span.head(len("scale down after")),
            help="remove `scale down after`; to keep the old version up for a fast switch back, use a canary or "
                 "`blue-green { ... }` with `bake for 2h`",
        )


def _consumer_switches(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    for c in rollout.consumers:
        if c.switch is None:
            continue
        span = c.switch_span or c.span
        if c.route is None:
            yield error(
                "RL331", f"consumer `{c.name}` has no route of its own, so it cannot switch on its own", span,
                label="needs `via`",
                help=f'say how its requests are recognised: `{c.name} expects {c.output} {c.expects_dim} via header '
                     f'"x-caller" = "{c.name}" switch at {c.switch}`; without `via` it follows the traffic split',
            )
        elif c.switch == "shadow":
            yield error(
                "RL332", f"consumer `{c.name}` would switch to the shadow, whose answers are discarded", span,
                help="switch it at a phase whose answers reach callers: a stage, `preview`, `bake` or `promotion`",
            )


# -- the size of each step ------------------------------------------------------------------------------


def _reaction(plan: Plan, gate_name: str, phase: Phase) -> float | None:
    """How soon after a phase starts a rollback gate evaluated there can roll a regression back, or None."""
    gate = plan.rollout.gate(gate_name)
    waits = [a.after_s or 0.0 for r in plan.rollout.rules if gate_name in r.gates and r.event == "fail"
             for a in r.actions if a.kind == "rollback"]
    if gate is None or not waits:
        return None
    if isinstance(gate, ir.JobGate):
        if gate.interval_s is None:
            return None  # it runs once, as the phase begins: it does not watch the phase
        delay = gate.interval_s * gate.failure_limit
    elif isinstance(gate, ir.SloGate | ir.DriftGate):
        delay = gate.interval_s * gate.failure_limit
    elif gate.interval_s is not None:
        delay = gate.interval_s
    else:
        delay = phase.length_s  # a look at the end of the stage
    return delay + min(waits) if delay > 0 else None


def _fastest_reaction(plan: Plan, phase: Phase) -> tuple[float, str] | None:
    found = [(t, g) for g in phase.gates if (t := _reaction(plan, g, phase)) is not None]
    return min(found) if found else None


_NICE_WEIGHTS = (50.0, 25.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5)


def _ramp(rollout: ir.Rollout, plan: Plan) -> Iterator[Diagnostic]:
    """A stage may risk no more than the stages before it have tried out.

    Before its fastest gate can roll a regression back, a stage at weight w
    serves w x that reaction time of all traffic; the stages before it served
    the candidate sum(w_i x d_i) while their gates watched.  A step that risks
    more than that, or a canary that starts at 100%, is too large.  A revert
    goes back to a known version and switches at once by design; after a
    stage that waits for a person, what was tried is not known.
    """
    if rollout.revert is not None:
        return
    stages = [p for p in plan.pre_promotion if p.kind == "canary"]
    tried = 0.0
    for i, ph in enumerate(stages):
        span = ph.weight_span or ph.span
        if i == 0:
            if ph.weight_percent >= 100:
                yield warning(
                    "RL326", "the canary starts at 100%: no stage tries the candidate on a share of traffic first",
                    span, label="everyone at once",
                    help="start small and widen: `canary { 5% for 1h  25% for 2h  100% }`; to switch everything at "
                         "once on purpose, `blue-green { preview for 1h }` previews it first",
                )
            tried += ph.weight_percent / 100.0 * ph.length_s
            continue
        prev = stages[i - 1]
        if prev.open_ended or prev.length_s == 0 or prev.weight_percent == 0:
            # What a stage of no fixed length tried is unknown (a person decides); RL312, RL314 say the rest.
            # Checked for each stage in turn, so the first such stage ends the walk.
            return
        fastest = _fastest_reaction(plan, ph)
        if fastest is not None and ph.weight_percent > prev.weight_percent:
            react, gate = fastest
            risk = ph.weight_percent / 100.0 * react
            if risk > tried * (1 + 1e-9):
                yield _too_large(ph, prev, stages, i, risk, tried, react, gate, plan)
        tried += ph.weight_percent / 100.0 * ph.length_s


def _too_large(ph: Phase, prev: Phase, stages: list[Phase], i: int, risk: float, tried: float, react: float,
               gate: str, plan: Plan) -> Diagnostic:
    """RL326 for ``ph``, ``stages[i]``."""
    def share(seconds: float) -> str:
        requests = f" (about {format_count(seconds * plan.rate_rps)} requests)" if plan.rate_rps else ""
        return f"{human_duration(seconds)} of all traffic{requests}"

    def stage(p: Phase) -> str:
        return f"`{p.name}` {_pct(p.weight_percent)} for {duration_text(p.length_s)}"

    # The first and last few: a canary of thousands of stages would make each note as long as the file.
    earlier = ", ".join(map(stage, stages[:i])) if i <= 6 else \
        f"{', '.join(map(stage, stages[:3]))}, ... {i - 6:,} more ..., {', '.join(map(stage, stages[i - 3:i]))}"
    # A stage in between that the tries so far cover, long enough to cover the step after it.
    middle = next((w for w in _NICE_WEIGHTS if prev.weight_percent < w < ph.weight_percent
                   and w / 100.0 * react <= tried), None)
    fixes = []
    if middle is not None:
        need = _round_up((risk - tried) / (middle / 100.0))
        fixes.append(f"add a stage in between, e.g. `{_pct(middle)} for {duration_text(need)}`")
    if prev.weight_percent > 0:
        longer = _round_up(prev.length_s + (risk - tried) / (prev.weight_percent / 100.0))
        fixes.append(f"make `{prev.name}` last {duration_text(longer)}")
    return warning(
        "RL326", f"stage `{ph.name}` jumps from {_pct(prev.weight_percent)} to {_pct(ph.weight_percent)}: before "
        f"`{gate}` can roll a regression back, it serves {share(risk)}, more than all earlier stages served the "
        f"candidate ({share(tried)})", ph.weight_span or ph.span, label="too large a step",
        notes=(f"earlier stages: {earlier}",
               f"at {_pct(ph.weight_percent)}, `{gate}` needs {duration_text(react)} to roll back; a stage should "
               "risk no more than the stages before it have tried out"),
        help=", or ".join(fixes),
    )


def _round_up(seconds: float) -> float:
    """A stage length to write: whole minutes up to 2h, then whole hours."""
    import math

    if seconds <= 2 * 3600:
        return max(math.ceil(seconds / 60.0 - 1e-9), 1) * 60.0
    return math.ceil(seconds / 3600.0 - 1e-9) * 3600.0


# -- approvals, previews, bakes -----------------------------------------------------------------------


def _waits_at_full(rollout: ir.Rollout, plan: Plan) -> Iterator[Diagnostic]:
    """An approval that waits while the candidate already serves everyone guards nothing but the clock."""
    pre = plan.pre_promotion
    for i, ph in enumerate(pre):
        if not ph.approval or ph.weight_percent < 100:
            continue
        last = i == len(pre) - 1
        approvals = [a for a in rollout.approvals if a.what == ph.name or (last and a.what == "promotion")]
        stage = ph.stage
        if stage is not None and (stage.until_approved or stage.hold):
            span = stage.end_span or stage.span
        elif approvals:
            span = approvals[0].span
        else:
            span = ph.span
        earlier = next((p for p in reversed(pre[:i]) if p.weight_percent > 0), None)
        if ph.kind == "rolling":
            what = "the rolling update waits for an approval once every pod already runs the candidate"
            fix = ("a rolling update serves everyone before anyone can approve: to approve before that, use a canary "
                   "(`canary { 10% until approved  100% }`); to watch it after the switch, `bake for 2h`")
        else:
            what = f"{phase_noun(ph)} `{ph.name}` waits for an approval while the candidate already serves 100%"
            fix = (f"approve before the candidate serves everyone: `approve {earlier.name} by ...`" if earlier
                   else "approve a stage below 100%")
            fix += ", and watch the candidate at 100% with `bake for 2h`"
        yield warning("RL328", what, span, label="guards nothing: the candidate already serves everyone",
                      notes=("an approval is worth what it holds back; here every request is already the "
                             "candidate's",), help=fix)


def _blind_preview(rollout: ir.Rollout, plan: Plan) -> Iterator[Diagnostic]:
    """A blue-green preview that no request reaches: its gates have nothing to measure."""
    preview = next((p for p in plan.phases if p.kind == "preview"), None)
    if preview is None or not preview.gates or (preview.length_s == 0 and not preview.open_ended):
        return
    to_candidate = any(r.target == "candidate" for r in rollout.routes) or any(
        role == "candidate" for _, role in preview.consumers)
    if to_candidate:
        return
    strategy = rollout.strategy
    assert isinstance(strategy, ir.BlueGreen)
    yield warning(
        "RL327", f"no request reaches the candidate during the preview, so {gate_list(list(preview.gates))} "
        "measure nothing there", strategy.preview_span or keyword_span(strategy.span, "preview"),
        label="the preview gets no traffic",
        notes=("a gate with no data is inconclusive: the preview pauses instead of passing",),
        help='send testers to it: `route header "x-ml-preview" = "true" to candidate`, or move a consumer on its own '
             'switch (`via ... switch at preview`)',
    )
