"""Scenario checks (RL800-RL804): does each what-if change something the simulator can replay?

The loader already reports an effect naming nothing (RL130).  Here each
effect is read against the kind of gate or metric it names
(:mod:`rolloutlang.scenarios`): an effect that does not fit what it names
(RL800), that no gate can see (RL801), on a gate the simulator does not
model (RL802), that switches on only after the plan has promoted (RL803),
or that moves a rate or a statistic where it cannot go (RL804).
"""

from __future__ import annotations

from collections.abc import Iterable

from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.diagnostics import Diagnostic
from rolloutlang.scenarios import late_effects, resolve

RULES: dict[str, str] = {
    "RL800": "a scenario effect that does not fit what it names",
    "RL801": "a scenario effect no gate can see",
    "RL802": "a scenario effect on a gate the simulator does not model",
    "RL803": "a scenario effect that switches on after promotion",
    "RL804": "a scenario effect beyond what its quantity can be",
}


@check_pass("scenarios")
def check_scenarios(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    if not rollout.scenarios:
        return []
    _, found = resolve(rollout)
    effects = [e for s in rollout.scenarios for e in s.effects]
    return [*found, *late_effects(effects, ctx.plan.max_duration_s if ctx.plan.phases else None)]
