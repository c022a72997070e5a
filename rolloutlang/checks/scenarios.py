"""Simulation checks (RL800-RL805): can the simulator replay what the spec says?

The loader already reports an effect naming nothing (RL130).  Here each
effect is read against the kind of gate or metric it names
(:mod:`rolloutlang.scenarios`): an effect that does not fit what it names
(RL800), that no gate can see (RL801), on a gate the simulator does not
model (RL802), that switches on only after the plan has promoted (RL803),
or that moves a rate or a statistic where it cannot go (RL804).  And an SLO
gate whose `baseline`, the stable version's value, already breaks the gate's
threshold (RL805): an unchanged candidate would fail it at every window.
"""

from __future__ import annotations

from collections.abc import Iterable

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.diagnostics import Diagnostic, warning
from rolloutlang.scenarios import late_effects, resolve
from rolloutlang.stats.compare import holds

RULES: dict[str, str] = {
    "RL800": "a scenario effect that does not fit what it names",
    "RL801": "a scenario effect no gate can see",
    "RL802": "a scenario effect on a gate the simulator does not model",
    "RL803": "a scenario effect that switches on after promotion",
    "RL804": "a scenario effect beyond what its quantity can be",
    "RL805": "an SLO baseline that breaks its own gate",
}


@check_pass("scenarios")
def check_scenarios(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    out = [_baseline(g) for g in rollout.gates
           if isinstance(g, ir.SloGate) and g.comparison == "threshold" and g.baseline is not None
           and not holds(g.op, g.baseline, g.threshold)]
    if not rollout.scenarios:
        return out
    _, found = resolve(rollout)
    effects = [e for s in rollout.scenarios for e in s.effects]
    return [*out, *found, *late_effects(effects, ctx.plan.max_duration_s if ctx.plan.phases else None)]


def _baseline(gate: ir.SloGate) -> Diagnostic:
    from rolloutlang.explain import describe_gate

    condition = describe_gate(gate).split(",")[0]
    return warning("RL805", f"gate `{gate.name}`'s baseline breaks its own condition `{condition}`: the stable "
                   "version would fail it, and so would an unchanged candidate", gate.span,
                   help="give the stable version's value today as `baseline`, or the threshold it really meets")
