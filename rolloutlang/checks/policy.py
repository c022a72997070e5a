"""Budget and policy checks (RL600-RL612): is the plan safe enough, fast enough, and watched?

Budgets (RL600-RL603)
    ``budget exposure`` caps the *worst-case exposure*: for each gate a rule
    rolls back on, the candidate traffic served before that gate can first
    roll back (:meth:`rolloutlang.plan.Plan.earliest_rollback`: on the fastest
    schedule, ``interval x failure limit`` for SLO and drift gates, the first
    look for business gates, plus the confirmation wait), and the worst of
    those over the gates: a regression that only the slowest gate can see.
    ``... % of requests before T`` divides the candidate requests served up to
    the rollback (or T, if sooner) by all requests before T; without
    ``before`` the window ends at the rollback.  With no gate that rolls back,
    the candidate is never rolled back.  ``budget duration`` caps the time to
    promotion (a post-promotion holdout does not count); a phase that waits
    for a person or for pods makes it unbounded.

Gate coverage (RL610-RL612)
    Infrastructure gates alone do not guard a model; every SLO gate must be
    able to fail within the stage it guards; and every gate must trigger a
    rule.  (A business gate that no phase evaluates is RL504, in the
    statistics checks.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.checks.references import gate_site
from rolloutlang.checks.structure import keyword_span, phase_noun
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.plan import Phase, Plan, RollbackBound, gate_list
from rolloutlang.source import Span
from rolloutlang.units import duration_text, format_count

RULES: dict[str, str] = {
    "RL600": "worst-case exposure over budget",
    "RL601": "exposure budget in requests without a traffic model",
    "RL602": "plan longer than its duration budget",
    "RL603": "duration budget cannot be guaranteed",
    "RL610": "only infrastructure gates",
    "RL611": "SLO gate too slow for its stage",
    "RL612": "gate triggers nothing",
}


def _pct(x: float) -> str:
    return f"{x:.3g}%"


@check_pass("policy")
def check_policy(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    out: list[Diagnostic] = []
    if rollout.strategy is None:
        return out  # RL319: nothing to measure
    plan = ctx.plan
    for budget in rollout.budgets:
        if budget.kind == "exposure":
            out.extend(_exposure_budget(plan, budget))
        else:
            out.extend(_duration_budget(plan, budget))
    out.extend(_coverage(ctx, plan))
    return out


# -- budgets -------------------------------------------------------------------------------------


def _bounds(plan: Plan) -> list[RollbackBound]:
    bounds = [b for g in plan.rollback_gates() if (b := plan.earliest_rollback(g)) is not None]
    return bounds or [plan.without_rollback()]


def exposure_share(bound: RollbackBound, before_s: float | None) -> float:
    """Candidate requests as a percentage of all requests, up to the rollback (or ``before_s``)."""
    if before_s is not None:
        return 100.0 * bound.weighted_s(before_s) / before_s if before_s > 0 else 0.0
    if bound.rollback_s is None:
        return math.inf
    return 100.0 * bound.weighted_s() / bound.rollback_s if bound.rollback_s > 0 else 0.0


def worst_case_share(plan: Plan, before_s: float | None = None) -> tuple[float, RollbackBound]:
    """The worst-case exposure as a percentage of requests, and the gate bound that sets it."""
    return max(((exposure_share(b, before_s), b) for b in _bounds(plan)), key=lambda x: x[0])


def worst_case_weighted_s(plan: Plan, before_s: float | None = None) -> tuple[float, RollbackBound]:
    """The worst-case exposure in seconds of all traffic (x rate = requests), and the bound that sets it."""
    return max(((b.weighted_s(before_s), b) for b in _bounds(plan)), key=lambda x: x[0])


def _explain_bound(plan: Plan, bound: RollbackBound) -> str:
    if not bound.gate:
        return "no gate rolls this plan back, so a bad candidate is promoted"
    if bound.rollback_s is None:
        return f"`{bound.gate}` cannot fail before promotion, so a regression only it can see is promoted"
    phase = plan.phase(bound.phase) if bound.phase else None
    where = f" in {phase_noun(phase)} `{phase.name}`" if phase is not None else ""
    return f"a regression only `{bound.gate}` can see is rolled back at {duration_text(bound.rollback_s)} at the " \
           f"earliest{where}"


def _exposure_budget(plan: Plan, budget: ir.Budget) -> Iterator[Diagnostic]:
    before = budget.before_s
    window = f" before {duration_text(before)}" if before is not None else ""
    if budget.max_requests is not None and plan.rate_rps is None:
        yield warning(
            "RL601", "an exposure budget in requests needs a traffic model", budget.span,
            help="say how much traffic there is (`traffic 1200 rps`), or cap a share: "
                 f"`budget exposure <= 5% of requests{window}`",
        )
        return
    if budget.max_percent is not None:
        share, bound = worst_case_share(plan, before)
        over = share > budget.max_percent + 1e-9
        amount = "an unbounded share of requests" if math.isinf(share) else f"{_pct(share)} of requests"
        cap = f"{budget.max_percent:g}%"
    elif budget.max_requests is not None and plan.rate_rps is not None:
        weighted, bound = worst_case_weighted_s(plan, before)
        requests = weighted * plan.rate_rps
        over = requests > budget.max_requests
        amount = "unbounded requests" if math.isinf(requests) else f"{format_count(requests)} requests"
        cap = format_count(budget.max_requests)
    else:
        return
    if not over:
        return
    fix = _exposure_fix(plan, bound)
    yield error(
        "RL600", f"a bad candidate can serve {amount}{window}, over the budget of {cap}", budget.span,
        notes=(
            _explain_bound(plan, bound),
            "worst-case exposure: candidate requests before the slowest rollback gate can first roll back, "
            "approvals granted at once",
        ),
        help=fix,
    )


def _exposure_fix(plan: Plan, bound: RollbackBound) -> str:
    gate = plan.rollout.gate(bound.gate) if bound.gate else None
    if gate is None:
        return "add a gate that rolls back: `on errors fail: rollback now`"
    if bound.rollback_s is None:
        return f"let `{gate.name}` decide before promotion, or start with a smaller first stage"
    if isinstance(gate, ir.BusinessGate):
        return f"give `{gate.name}` earlier looks (`every 1h`), or make the stages before it smaller or shorter"
    return (f"let `{gate.name}` fail sooner (a shorter `every`, fewer failures), or start with a smaller "
            "first stage")


def _waiting(phase: Phase) -> str:
    if phase.hold:
        return f"stage `{phase.name}` holds until someone promotes"
    if phase.approval:
        who = f" by {', '.join(phase.approvers)}" if phase.approvers else ""
        return f"{phase_noun(phase)} `{phase.name}` waits for approval{who}"
    if phase.kind == "rolling":
        return "a rolling update lasts as long as its pods take to become ready"
    return f"{phase_noun(phase)} `{phase.name}` has no duration"


def _waiting_fix(phase: Phase) -> str:
    tail = ", or raise the budget to leave time for people"
    if phase.kind == "canary" and not phase.duration_s:
        return f"give `{phase.name}` a duration instead (`{phase.weight_percent:g}% for 1d`)" + tail
    if phase.kind == "preview" and phase.approval and not phase.approvers:
        return "promote automatically after the preview (`preview for 2h, promote auto`)" + tail
    return "keep the budget as a target: the plan meets it only if approvals come in time" + tail


def _duration_budget(plan: Plan, budget: ir.Budget) -> Iterator[Diagnostic]:
    cap = budget.max_duration_s
    assert cap is not None
    least = plan.min_duration_s
    if least > cap:
        longest = max(plan.pre_promotion, key=lambda p: p.length_s, default=None)
        notes = (f"the longest phase is `{longest.name}` ({duration_text(longest.length_s)})",) \
            if longest is not None and longest.length_s > 0 else ()
        yield error(
            "RL602", f"the plan takes at least {duration_text(least)} to promote, over the duration budget of "
            f"{duration_text(cap)}", budget.span, notes=notes,
            help="shorten the stages, or raise the budget if the time is needed for the gates to decide",
        )
        return
    if plan.max_duration_s is None:
        waiting = [p for p in plan.pre_promotion if p.open_ended]
        yield warning(
            "RL603", f"the duration budget of {duration_text(cap)} cannot be guaranteed: "
            f"{_waiting(waiting[0])}", budget.span,
            notes=(f"the rest of the plan takes {duration_text(least)}, leaving {duration_text(cap - least)} "
                   "for waiting",),
            help=_waiting_fix(waiting[0]),
        )


# -- gate coverage -------------------------------------------------------------------------------


def _coverage(ctx: CheckContext, plan: Plan) -> Iterator[Diagnostic]:
    rollout = ctx.rollout
    gates = rollout.gates
    if not gates:
        return  # RL318
    if not any(isinstance(g, ir.BusinessGate | ir.DriftGate) for g in gates):
        full = next((p for p in plan.pre_promotion if p.weight_percent >= 100), None)
        strategy = rollout.strategy
        assert strategy is not None
        span = (full.weight_span if full is not None and full.weight_span is not None
                else keyword_span(strategy.span, strategy.kind))
        names = gate_list([g.name for g in gates])
        yield warning(
            "RL610", f"only infrastructure gates ({names}) guard the way to 100%: infrastructure health is "
            "necessary, not sufficient", span,
            help="watch the model too: a business gate (`gate ctr: ctr change > -1% relative`) or a drift gate "
                 "(`gate drift: psi(scores) < 0.2`)",
        )

    acting: dict[str, set[str]] = {}
    for rule in rollout.rules:
        for name in rule.gates:
            acting.setdefault(name, set()).update(a.kind for a in rule.actions)

    for gate in gates:
        site = gate_site(rollout, gate)
        if gate.name not in acting:
            yield warning(
                "RL612", f"gate `{gate.name}` triggers nothing", site,
                help=f"say what its failure does: `on {gate.name} fail: rollback now` (or `pause`, or "
                     "`notify \"#channel\"`), or remove the gate",
            )
        if isinstance(gate, ir.SloGate | ir.DriftGate) and acting.get(gate.name, set()) & {"rollback", "pause"}:
            yield from _speed(plan, gate, site)


def _speed(plan: Plan, gate: ir.SloGate | ir.DriftGate, site: Span) -> Iterator[Diagnostic]:
    needs = gate.interval_s * gate.failure_limit
    slow = [p for p in plan.pre_promotion
            if gate.name in p.gates and not p.open_ended and p.length_s > 0 and needs >= p.length_s
            and (p.weight_percent > 0 or p.shadow_percent > 0)]
    if not slow:
        return
    how = (f"{gate.failure_limit} × {duration_text(gate.interval_s)}" if gate.failure_limit > 1
           else f"one check every {duration_text(gate.interval_s)}")
    if len(slow) == 1:
        but = f"but {phase_noun(slow[0])} `{slow[0].name}` lasts {duration_text(slow[0].length_s)}"
    else:
        where = ", ".join(f"`{p.name}` ({duration_text(p.length_s)})" for p in slow)
        but = f"but {phase_noun(slow[0])}s {where} are no longer"
    yield warning(
        "RL611", f"gate `{gate.name}` needs {duration_text(needs)} of failing checks ({how}) to fire, {but}", site,
        label="too slow for the stage",
        notes=(f"a bad candidate moves on to the next stage before `{gate.name}` can roll it back",),
        help=f"check more often (`every {duration_text(_nicer_interval(min(p.length_s for p in slow), gate))}`)"
             ", fail after fewer checks, or lengthen the stage",
    )


_NICE_INTERVALS = (3600.0, 1800.0, 900.0, 600.0, 300.0, 120.0, 60.0, 30.0, 10.0)


def _nicer_interval(stage_s: float, gate: ir.SloGate | ir.DriftGate) -> float:
    """The longest round interval at which the gate can fail within half the stage."""
    for interval in _NICE_INTERVALS:
        if interval * gate.failure_limit <= stage_s / 2:
            return interval
    return _NICE_INTERVALS[-1]
