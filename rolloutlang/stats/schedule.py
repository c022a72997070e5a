"""The phases a gate is evaluated in, on the plan clock (no numpy: every check run reads this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rolloutlang import ir
from rolloutlang.source import Span

if TYPE_CHECKING:
    from rolloutlang.plan import Plan


@dataclass(frozen=True)
class StageWindow:
    """One phase a gate is active in, on the plan clock (seconds); None where its time is not fixed."""

    name: str
    weight_percent: float
    start_s: float | None
    end_s: float | None
    span: Span
    written_s: float | None = None

    @property
    def timed(self) -> bool:
        return self.start_s is not None and self.end_s is not None

    @property
    def duration_s(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.start_s


def gate_windows(plan: Plan, gate: ir.AnyGate) -> list[StageWindow]:
    """The phases a gate is evaluated in, on the fastest schedule (after promotion too, for a gate written
    `from bake` or `from holdout`).

    After a phase with no written duration (`until approved`, `hold`) the
    gate's later phases have no known start: how long the data accrue there
    depends on a person.
    """
    out: list[StageWindow] = []
    known = True
    for phase in plan.phases:
        if gate.name not in phase.gates:
            if out and phase.duration_s is None:
                known = False  # a wait between two of the gate's stages
            continue
        start = phase.earliest_start_s if known else None
        end = start + phase.duration_s if start is not None and phase.duration_s is not None else None
        known = end is not None
        out.append(StageWindow(phase.name, phase.weight_percent, start, end, phase.span, phase.duration_s))
    return out
