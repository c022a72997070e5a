"""Budget and policy checks (RL600-RL612): is the plan safe enough, fast enough, and watched?

Budgets (RL600-RL603)
    ``budget exposure`` caps the exposure of a bad candidate that only one
    gate can see, for the gate where that is worst.  For each gate a rule
    rolls back on:

    * an SLO, drift or sample-ratio gate catches a breach as soon as it can
      fail (:meth:`rolloutlang.plan.Plan.earliest_rollback`: on the fastest
      schedule, ``interval x failure limit``, plus the confirmation wait);
    * a business gate catches the harm it is sized for only with the
      probabilities its rule has at each look
      (:meth:`rolloutlang.stats.gates.GatePlan.fail_times`), so the exposure is
      the *expected* candidate traffic: each look's rollback time weighted by
      the chance the gate first fails there, and, when it never does, the
      traffic until promotion.  The harm is the gate's sized effect (a harm
      test), or the change as far beyond the margin as its sized effect is
      within it (a non-inferiority test).

    ``... % of requests before T`` divides the candidate requests served up to
    the rollback (or T, if sooner) by all requests before T; without
    ``before`` the window ends at the rollback (its expected time, for a
    business gate, promotion counting as the end when it never fails).  With
    no gate that rolls back, the candidate is never rolled back.  ``budget
    duration`` caps the time to promotion (a post-promotion holdout does not
    count); a phase that waits for a person or for pods makes it unbounded.

Gate coverage (RL610-RL612)
    Infrastructure gates alone do not guard a model; every SLO gate must be
    able to fail within the stage it guards; and every gate must trigger a
    rule.  (A business gate that no phase evaluates is RL504, in the
    statistics checks.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.checks.references import gate_site
from rolloutlang.checks.structure import keyword_span, phase_noun
from rolloutlang.diagnostics import Diagnostic, error, warning, word_list
from rolloutlang.plan import Phase, Plan, RollbackBound, gate_list
from rolloutlang.source import Span
from rolloutlang.units import duration_text, format_count

RULES: dict[str, str] = {
    "RL600": "exposure over budget",
    "RL601": "exposure budget in requests without a traffic model",
    "RL602": "plan longer than its duration budget",
    "RL603": "duration budget cannot be guaranteed",
    "RL610": "only infrastructure gates",
    "RL611": "SLO gate too slow for its stage",
    "RL612": "gate triggers nothing",
    "RL613": "live traffic with no latency or error-rate gate",
    "RL614": "a hard SLO breach that only pauses or notifies",
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
            out.extend(_exposure_budget(ctx, budget))
        elif budget.kind == "duration":
            out.extend(_duration_budget(plan, budget))
    out.extend(_coverage(ctx, plan))
    return out


# -- budgets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateExposure:
    """What a bad candidate that only one gate can see serves, in a window.

    Attributes:
        gate: the gate ("" when nothing rolls the plan back).
        weighted_s: candidate share integrated over the window (x rate = requests); inf when unbounded.
        window_s: the window: the budget's `before`, else until the (expected) rollback.
        bound: the earliest rollback, for gates that catch a breach as soon as they can fail.
        detect: P(the gate rolls the harm back before promotion), for business gates.
        harm: the harm a business gate is judged on, as written (`-3% relative`).
    """

    gate: str
    weighted_s: float
    window_s: float
    bound: RollbackBound | None = None
    detect: float | None = None
    harm: str = ""

    @property
    def share(self) -> float:
        """Candidate requests as a percentage of all requests in the window."""
        if math.isinf(self.weighted_s):
            return math.inf
        return 100.0 * self.weighted_s / self.window_s if self.window_s > 0 else 0.0


def _earliest(bound: RollbackBound, before_s: float | None) -> GateExposure:
    if before_s is not None:
        return GateExposure(bound.gate, bound.weighted_s(before_s), before_s, bound)
    if bound.rollback_s is None:
        return GateExposure(bound.gate, math.inf, math.inf, bound)
    return GateExposure(bound.gate, bound.weighted_s(), bound.rollback_s, bound)


def _expected(ctx: CheckContext, gate: ir.BusinessGate, before_s: float | None) -> GateExposure | None:
    """The expected exposure of the harm a business gate is judged on, from its detection probabilities."""
    from rolloutlang.checks.statistics import change_text, context_gate_plans

    gp = context_gate_plans(ctx).get(gate.name)
    if gp is None or gp.characteristics is None:
        return None
    plan = ctx.plan
    spec = gp.spec
    theta = spec.effect if spec.hypothesis == "harm" else 2.0 * spec.margin - spec.effect
    harm = gate.effect if gate.hypothesis == "harm" else 2.0 * gate.margin - gate.effect
    wait = min((a.after_s or 0.0) for r in ctx.rollout.rules if gate.name in r.gates and r.event == "fail"
               for a in r.actions if a.kind == "rollback")
    free = plan.without_rollback()
    end = plan.min_duration_s if before_s is None else before_s
    weighted = duration = detect = 0.0
    for time_s, p in gp.fail_times(theta):
        back = time_s + wait
        held = free.weighted_s(time_s) + _share_at(plan, time_s) * wait  # the weight holds while it confirms
        stop = back if before_s is None else min(back, before_s)
        weighted += p * (held if before_s is None or back <= before_s else free.weighted_s(before_s))
        duration += p * stop
        detect += p
    missed = max(1.0 - detect, 0.0)
    weighted += missed * free.weighted_s(end)
    duration += missed * end
    window = before_s if before_s is not None else duration
    return GateExposure(gate.name, weighted, window, detect=min(detect, 1.0),
                        harm=change_text(gate, harm))


def _share_at(plan: Plan, t: float) -> float:
    """The candidate share in force at time ``t`` on the fastest schedule."""
    for ph in plan.pre_promotion:
        if ph.earliest_start_s <= t < ph.earliest_end_s or (ph.open_ended and ph.earliest_start_s <= t):
            return ph.weight_percent / 100.0
    return 1.0


def gate_exposures(ctx: CheckContext, before_s: float | None = None) -> list[GateExposure]:
    """For each rollback gate, what a bad candidate only it can see serves (business gates: in expectation)."""
    plan = ctx.plan
    out: list[GateExposure] = []
    for name in plan.rollback_gates():
        gate = ctx.rollout.gate(name)
        expected = _expected(ctx, gate, before_s) if isinstance(gate, ir.BusinessGate) else None
        if expected is not None:
            out.append(expected)
            continue
        bound = plan.earliest_rollback(name)
        if bound is not None:
            out.append(_earliest(bound, before_s))
    return out or [_earliest(plan.without_rollback(), before_s)]


def _explain_exposure(plan: Plan, worst: GateExposure) -> str:
    if worst.detect is not None:
        return (f"`{worst.gate}` rolls a {worst.harm} change back before promotion with probability "
                f"{worst.detect * 100:.0f}%, at the looks where its rule can first fail")
    bound = worst.bound
    assert bound is not None
    if not bound.gate:
        return "no gate rolls this plan back, so a bad candidate is promoted"
    if bound.rollback_s is None:
        return f"`{bound.gate}` cannot fail before promotion, so a regression only it can see is promoted"
    phase = plan.phase(bound.phase) if bound.phase else None
    where = f" in {phase_noun(phase)} `{phase.name}`" if phase is not None else ""
    return f"a regression only `{bound.gate}` can see is rolled back at {duration_text(bound.rollback_s)} at the " \
           f"earliest{where}"


def _exposure_budget(ctx: CheckContext, budget: ir.Budget) -> Iterator[Diagnostic]:
    plan = ctx.plan
    before = budget.before_s
    window = f" before {duration_text(before)}" if before is not None else ""
    if budget.max_requests is not None and plan.rate_rps is None:
        yield warning(
            "RL601", "an exposure budget in requests needs a traffic model", budget.span,
            help="say how much traffic there is (`traffic 1200 rps`), or cap a share: "
                 f"`budget exposure <= 5% of requests{window}`",
        )
        return
    exposures = gate_exposures(ctx, before)
    if budget.max_percent is not None:
        worst = max(exposures, key=lambda e: e.share)
        share = worst.share
        over = share > budget.max_percent + 1e-9
        amount = "an unbounded share of requests" if math.isinf(share) else f"{_pct(share)} of requests"
        cap = f"{budget.max_percent:g}%"
    elif budget.max_requests is not None and plan.rate_rps is not None:
        worst = max(exposures, key=lambda e: e.weighted_s)
        requests = worst.weighted_s * plan.rate_rps
        over = requests > budget.max_requests
        amount = "unbounded requests" if math.isinf(requests) else f"{format_count(requests)} requests"
        cap = format_count(budget.max_requests)
    else:
        return
    if not over:
        return
    expected = "" if worst.detect is None else " on average"
    yield error(
        "RL600", f"a bad candidate can serve {amount}{window}{expected}, over the budget of {cap}", budget.span,
        notes=(
            _explain_exposure(plan, worst),
            "exposure: candidate requests served to a regression that only one gate can see, for the gate where "
            "that is worst; approvals granted at once",
        ),
        help=_exposure_fix(plan, worst),
    )


def _exposure_fix(plan: Plan, worst: GateExposure) -> str:
    gate = plan.rollout.gate(worst.gate) if worst.gate else None
    if gate is None:
        return "add a gate that rolls back: `on errors fail: rollback now`"
    if isinstance(gate, ir.BusinessGate):
        return (f"give `{gate.name}` earlier looks (`every 1h`) and the power to use them (larger early stages), or "
                "make the stages before it smaller or shorter")
    if worst.bound is not None and worst.bound.rollback_s is None:
        return f"let `{gate.name}` decide before promotion, or start with a smaller first stage"
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
            help="watch the model too: a business gate (`gate ctr: ctr change > -1% relative, fail if shown harmful, "
                 "power 80% at -3%`) or a drift gate (`gate drift: psi(scores) < 0.2`)",
        )

    acting: dict[str, set[str]] = {}
    for rule in rollout.rules:
        for name in rule.gates:
            acting.setdefault(name, set()).update(a.kind for a in rule.actions)

    yield from _users_watched(rollout, plan)
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
        if isinstance(gate, ir.SloGate) and gate.signal in _HARD and gate.comparison == "threshold" \
                and gate.name in acting and "rollback" not in acting[gate.name] and plan.rollback_gates():
            yield from _soft_rule(rollout, gate)


def _speed(plan: Plan, gate: ir.SloGate | ir.DriftGate, site: Span) -> Iterator[Diagnostic]:
    needs = gate.interval_s * gate.failure_limit
    slow = [p for p in plan.phases
            if gate.name in p.gates and not p.open_ended and p.length_s > 0 and needs >= p.length_s
            and (p.weight_percent > 0 or p.shadow_percent > 0)]
    if not slow:
        return
    how = (f"{gate.failure_limit} × {duration_text(gate.interval_s)}" if gate.failure_limit > 1
           else f"one check every {duration_text(gate.interval_s)}")
    if len(slow) == 1:
        but = f"but {phase_noun(slow[0])} `{slow[0].name}` lasts {duration_text(slow[0].length_s)}"
    else:
        where = word_list([f"`{p.name}` ({duration_text(p.length_s)})" for p in slow], last=", ", quote=False)
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


# Signals users feel at once: a breach of their SLO is harm done now.
_HARD = {"latency": "latency", "error_rate": "error-rate"}


def _users_watched(rollout: ir.Rollout, plan: Plan) -> Iterator[Diagnostic]:
    """Every phase that sends the candidate live traffic needs a latency or error-rate gate watching it."""
    hard = {g.name for g in rollout.gates if isinstance(g, ir.SloGate) and g.signal in _HARD}
    for ph in plan.phases:
        if ph.weight_percent <= 0 or hard & set(ph.gates) or not plan.transitions_from(ph.id, "rollback"):
            continue  # a phase nothing can roll back is RL317's (RL329 after promotion)
        strategy = rollout.strategy
        assert strategy is not None
        span = ph.weight_span or (keyword_span(strategy.span, strategy.kind) if not ph.post_promotion
                                  else ph.span.head(len(ph.kind)))
        reason = ("no gate watches latency or errors" if not hard else
                  f"{gate_list(sorted(hard, key=lambda n: [g.name for g in rollout.gates].index(n)))} "
                  f"{'is' if len(hard) == 1 else 'are'} not evaluated there")
        yield warning(
            "RL613", f"{phase_noun(ph)} `{ph.name}` sends {ph.weight_percent:g}% of live traffic to the candidate, "
            f"but {reason}", span, label="users are answered unwatched",
            notes=("drift and business gates see a broken model late or not at all: a candidate that errors or "
                   "times out hurts users first",),
            help="watch what users feel at once: `gate errors: error rate < 0.5% every 1m, fail after 2` and "
                 "`gate latency: p99 latency < 250ms every 1m, fail after 3`, with `on errors, latency fail: "
                 "rollback now`",
        )
        return


def _soft_rule(rollout: ir.Rollout, gate: ir.SloGate) -> Iterator[Diagnostic]:
    """A hard SLO breached, and the rule only pauses or notifies: the candidate keeps hurting users meanwhile."""
    rule = next((r for r in rollout.rules if gate.name in r.gates and r.event == "fail"), None)
    if rule is None:
        return  # only `on ... pass` rules: its failure does nothing, which RL612 and RL316 judge
    action = next((a for a in rule.actions if a.kind == "pause"), rule.actions[0] if rule.actions else None)
    verb = "pauses" if any(a.kind == "pause" for a in rule.actions) else "notifies"
    yield warning(
        "RL614", f"gate `{gate.name}` fails when the candidate breaks its {_HARD[gate.signal]} SLO, but its rule only "
        f"{verb}", action.span if action is not None and rule.origin is None else gate_site(rollout, gate),
        label="the candidate keeps serving while someone looks",
        notes=("a pause holds the candidate at its weight: users keep getting its slow or failed answers until a "
               "person acts",),
        help=f"roll back on a hard SLO: `on {gate.name} fail: rollback now` (keep `notify` so someone hears of it); "
             "pause on what can wait, such as saturation",
    )
