"""What is simulated: the plan's phases, its gates and rules, the traffic, and a scenario's changes over time.

:class:`PlanModel` is built once per rollout from its IR and plan graph;
:class:`ScenarioModel` adds one scenario's changes and answers "what is the
candidate like at time t" for every quantity a gate reads.  Everything here is
plain data and small functions of time; the arrays of runs live in
:mod:`.engine`.

Defaults a spec cannot state (each is said in the output when it was used):

* approvals, `hold` stages and manual promotions wait for a person: an
  exponential delay with mean ``approval_delay_s`` (2h), rounded up to 15
  minutes; a rolling update without an approval takes :data:`ROLLING_S`;
* an SLO gate without `baseline` reads the kernel's default
  (:func:`rolloutlang.stats.slo_baseline`); latency is lognormal with
  log-scale spread `sigma` (default :data:`DEFAULT_SIGMA`); saturation and
  query values do not vary from window to window without `sd`;
* without `start` and `peak` on the traffic line, the rollout starts at the
  worst hour for its first business gate, as the checks assume (else at the
  daily low).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from rolloutlang import ir
from rolloutlang.scenarios import Change, harmful
from rolloutlang.stats.delays import LabelDelay
from rolloutlang.stats.designs import TestSpec

if TYPE_CHECKING:
    from rolloutlang.plan import Plan

HOUR = 3600.0
DEFAULT_APPROVAL_DELAY_S = 2 * HOUR
APPROVAL_GRID_S = 900.0
ROLLING_S = 600.0
DEFAULT_SIGMA = 0.5
GateKind = Literal["slo", "drift", "business", "srm", "job"]


@dataclass(frozen=True)
class PhaseModel:
    """One pre-promotion phase: candidate weight and mirrored share (0-1), how it ends, which gates run."""

    id: str
    name: str
    weight: float
    mirror: float
    duration_s: float
    approval: bool
    gates: frozenset[str]


@dataclass(frozen=True)
class Actions:
    """What the rules do when a gate fails or passes decisively."""

    rollback: bool = False
    rollback_after_s: float = 0.0
    pause: bool = False
    notify: tuple[str, ...] = ()
    promote_on_pass: bool = False
    notify_on_pass: tuple[str, ...] = ()

    @property
    def acts(self) -> bool:
        """Whether the gate's verdict stops the plan (so no data pauses it)."""
        return self.rollback or self.pause


@dataclass(frozen=True)
class Look:
    """A business gate's look: in which phase, how long after the phase began, and whether it is the last."""

    phase: int
    offset_s: float
    planned_s: float
    stage: str
    final: bool


@dataclass(frozen=True)
class GateModel:
    """A gate as the engine judges it.

    Attributes:
        gate: the IR gate.
        index: its position among the rollout's gates (rules resolve in this order).
        kind: ``slo``, ``drift``, ``business``, ``srm`` or ``job``.
        phases: indices of the phases it is evaluated in.
        actions: its rules.
        simulated: False for what the simulator does not model (ADWIN drift gates, job gates).
        looks: business gates: the plan's looks.
        spec: business gates: the test.
        reference: business gates: the planned information at the last look (spending fractions).
        metric: business gates: the label metric.
        analytic_power: business gates: the power the checks compute for the gate alone (exact crossing
            probabilities), to set beside the simulated one.
    """

    gate: ir.AnyGate
    index: int
    kind: GateKind
    phases: frozenset[int]
    actions: Actions
    simulated: bool = True
    looks: tuple[Look, ...] = ()
    spec: TestSpec | None = None
    reference: float | None = None
    metric: ir.LabelMetric | None = None
    analytic_power: float | None = None

    @property
    def name(self) -> str:
        return self.gate.name

    @property
    def interval_s(self) -> float:
        """How often an SLO, drift or sample-ratio gate measures (its window)."""
        interval = self.gate.interval_s
        assert interval is not None
        return interval

    @property
    def failure_limit(self) -> int:
        """`fail after N` (1 for gates without it)."""
        return getattr(self.gate, "failure_limit", 1)

    def active_since(self, phase: int, starts: Sequence[float]) -> float:
        """When the gate became active in the run of phases that ends with ``phase`` (its windows start there)."""
        first = phase
        while first - 1 in self.phases:
            first -= 1
        return starts[first]


@dataclass
class PlanModel:
    """The rollout's plan as the engine runs it; one per rollout, shared by every scenario."""

    rollout: ir.Rollout
    plan: Plan
    phases: tuple[PhaseModel, ...]
    gates: tuple[GateModel, ...]
    rate_rps: float
    amplitude: float
    phase: float
    approval_delay_s: float
    assumptions: list[str] = field(default_factory=list)
    requests_per_unit: float = 1.0
    design_effects: dict[str, float] = field(default_factory=dict)

    @property
    def horizon_s(self) -> float:
        """A time by which every run has ended, short of a person who never approves."""
        waits = sum(1 for p in self.phases if p.approval)
        longest_wait = max((g.actions.rollback_after_s for g in self.gates), default=0.0)
        return sum(p.duration_s for p in self.phases) + waits * (40 * self.approval_delay_s + APPROVAL_GRID_S) \
            + 4 * longest_wait + HOUR

    @property
    def exposure_windows(self) -> list[tuple[str, float | None]]:
        """The windows exposure budgets count in: (key, `before` or None for "until the run ends")."""
        out: dict[str, float | None] = {}
        for budget in self.rollout.budgets:
            if budget.kind == "exposure":
                out["all" if budget.before_s is None else f"{budget.before_s:g}"] = budget.before_s
        return list(out.items())

    @property
    def plot_horizon_s(self) -> float:
        """How far the report's time axes go: the fastest promotion plus typical approval waits."""
        waits = sum(1 for p in self.phases if p.approval)
        return max(sum(p.duration_s for p in self.phases) + waits * 3 * self.approval_delay_s, HOUR)


def _actions(rollout: ir.Rollout, name: str) -> Actions:
    rollback = pause = promote = False
    after = math.inf
    notify: list[str] = []
    notify_pass: list[str] = []
    for rule in rollout.rules:
        if name not in rule.gates:
            continue
        for action in rule.actions:
            if rule.event == "pass":
                if action.kind == "promote":
                    promote = True
                elif action.kind == "notify" and action.channel:
                    notify_pass.append(action.channel)
            elif action.kind == "rollback":
                rollback = True
                after = min(after, 0.0 if action.immediate else (action.after_s or 0.0))
            elif action.kind == "pause":
                pause = True
            elif action.kind == "notify" and action.channel:
                notify.append(action.channel)
    return Actions(rollback, after if rollback else 0.0, pause, tuple(notify), promote, tuple(notify_pass))


def _business_looks(plan: Plan, gate: ir.BusinessGate, phase_index: dict[str, int]) -> tuple[tuple[Look, ...], int]:
    """The gate's looks in the simulated phases, and how many it has after them (in the bake or holdout)."""
    from rolloutlang.stats.gates import gate_looks
    from rolloutlang.stats.schedule import gate_windows

    windows = gate_windows(plan, gate)
    starts = {w.name: w.start_s for w in windows}
    looks = gate_looks(gate, windows)
    kept = [(look, start) for look in looks
            if look.stage in phase_index and (start := starts.get(look.stage)) is not None]
    out = tuple(Look(phase_index[look.stage], look.time_s - start, look.time_s, look.stage, look is looks[-1])
                for look, start in kept)
    return out, len(looks) - len(kept)


def _start_phase(rollout: ir.Rollout, plan: Plan, notes: list[str]) -> float:
    """psi of the traffic's daily shape at the start, and a note on where it came from."""
    from rolloutlang.stats.traffic import phase

    traffic = rollout.traffic
    if traffic is None or traffic.diurnal_amplitude <= 0:
        return 0.0
    if traffic.start_hour is not None and traffic.peak_hour is not None:
        return phase(traffic.start_hour, traffic.peak_hour)
    from rolloutlang.stats.gates import plan_gate

    for gate in rollout.gates:
        if isinstance(gate, ir.BusinessGate):
            gp = plan_gate(rollout, gate, plan, characterize=False)
            if gp is not None and gp.start_hour is not None:
                psi = phase(gp.start_hour, traffic.peak_hour or 0.0)
                notes.append(f"no `start` and `peak` on the traffic line: runs start "
                             f"{_hours_after_peak(psi)} after the daily peak, the worst start for gate "
                             f"`{gate.name}` (as the checks assume)")
                return psi
    notes.append("no `start` and `peak` on the traffic line: runs start at the daily low")
    return math.pi


def _hours_after_peak(psi: float) -> str:
    hours = (psi / (2 * math.pi) * 24.0) % 24.0
    return f"{hours:.1f}h"


def build_plan_model(rollout: ir.Rollout, plan: Plan, *, approval_delay_s: float = DEFAULT_APPROVAL_DELAY_S,
                     start_phase: float | None = None) -> PlanModel:
    """The plan model of a rollout; ``start_phase`` (psi) overrides the start of day."""
    from rolloutlang.stats.gates import plan_gate, randomization, test_spec
    from rolloutlang.stats.slo import slo_baseline

    notes: list[str] = []
    phases: list[PhaseModel] = []
    for ph in plan.pre_promotion:
        duration = ph.duration_s
        if duration is None:
            duration = 0.0 if ph.approval else ROLLING_S
            if not ph.approval:
                notes.append(f"phase `{ph.name}` has no duration: it takes {ROLLING_S / 60:g} minutes")
        phases.append(PhaseModel(ph.id, ph.name, ph.weight_percent / 100.0, ph.shadow_percent / 100.0, duration,
                                 ph.approval, frozenset(ph.gates)))
    if any(p.approval for p in phases):
        notes.append(f"approvals, holds and manual promotions come after an exponential wait with mean "
                     f"{approval_delay_s / HOUR:g}h (rounded up to {APPROVAL_GRID_S / 60:g} minutes)")
    phase_index = {p.name: i for i, p in enumerate(phases)}
    traffic = rollout.traffic
    gates: list[GateModel] = []
    design_effects: dict[str, float] = {}
    for index, gate in enumerate(rollout.gates):
        active = frozenset(i for i, p in enumerate(phases) if gate.name in p.gates)
        actions = _actions(rollout, gate.name)
        if isinstance(gate, ir.BusinessGate):
            metric = rollout.label_metric(gate.metric)
            looks, later = _business_looks(plan, gate, phase_index) if metric is not None else ((), 0)
            if later and looks:
                notes.append(f"gate `{gate.name}`: {later} of its looks come after promotion (bake, holdout), "
                             "which is not simulated")
            planned = plan_gate(rollout, gate, plan) if traffic is not None else None
            reference = planned.samples[-1].information if planned is not None and planned.samples else None
            analytic = planned.power if planned is not None and planned.characteristics is not None else None
            if metric is not None:
                unit = randomization(rollout, metric)
                design_effects[gate.name] = unit.design_effect
                if unit.unit != "request":
                    notes.append(f"gate `{gate.name}`: {unit.unit}s are split: counts carry the design effect "
                                 f"{unit.design_effect:.2f} as extra variation" + (" (icc not given: 0)"
                                                                                 if unit.icc_assumed else ""))
            if not looks:
                notes.append(f"gate `{gate.name}` looks only after promotion (bake, holdout): it is not simulated"
                             if later else
                             f"gate `{gate.name}` has no look with a fixed time on the plan: it is not simulated")
            gates.append(GateModel(gate, index, "business", active, actions, bool(looks), looks,
                                   test_spec(rollout, gate), reference, metric, analytic))
        elif isinstance(gate, ir.SloGate):
            value, assumed = slo_baseline(gate)
            if assumed:
                notes.append(f"gate `{gate.name}` has no `baseline`: stable is simulated at {_slo_text(gate, value)}")
            if gate.signal == "latency" and gate.sigma is None:
                notes.append(f"gate `{gate.name}`: latency is lognormal with sigma {DEFAULT_SIGMA:g} (no `sigma`)")
            if gate.signal in ("saturation", "query") and gate.sd is None:
                notes.append(f"gate `{gate.name}`: its value does not vary from window to window (no `sd`)")
            gates.append(GateModel(gate, index, "slo", active, actions))
        elif isinstance(gate, ir.DriftGate):
            simulated = gate.statistic != "adwin"
            if not simulated:
                notes.append(f"gate `{gate.name}` (adwin) is not simulated: it never fails here")
            gates.append(GateModel(gate, index, "drift", active, actions, simulated))
        elif isinstance(gate, ir.JobGate):
            # the team's own command or URL: nothing to draw its outcome from
            notes.append(f"gate `{gate.name}` (a job gate) is not simulated: it never fails here")
            gates.append(GateModel(gate, index, "job", active, actions, False))
        else:
            gates.append(GateModel(gate, index, "srm", active, actions))
    for i, phase in enumerate(phases):
        blind = [g.name for g in gates if g.kind in ("slo", "drift") and i in g.phases]
        if blind and phase.weight == 0 and phase.mirror == 0:
            notes.append(f"phase `{phase.name}`: the candidate answers no modelled traffic, so "
                         f"{', '.join(f'`{n}`' for n in blind)} cannot judge it there")
    if rollout.routes:
        notes.append("requests routed by header are not simulated")
    if rollout.bake is not None:
        notes.append("the bake after promotion is not simulated")
    if rollout.holdout is not None:
        notes.append("the holdout after promotion is not simulated")
    per_unit = 1.0
    if traffic is not None and traffic.unit != "request":
        per_unit = traffic.requests_per_unit or 1.0
    psi = start_phase if start_phase is not None else _start_phase(rollout, plan, notes)
    return PlanModel(rollout, plan, tuple(phases), tuple(gates), traffic.rate_rps if traffic else 0.0,
                     traffic.diurnal_amplitude if traffic else 0.0, psi, approval_delay_s, notes, per_unit,
                     design_effects)


def _slo_text(gate: ir.SloGate, value: float) -> str:
    if gate.signal == "latency":
        return f"{value * 1000:g}ms"
    if gate.signal in ("error_rate", "saturation"):
        return f"{value * 100:.4g}%"
    return f"{value:g}"


# -- a scenario ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioModel:
    """One scenario's changes, as functions of time for each quantity a gate reads.

    Attributes:
        name: the scenario's name (``null``, ``at-mde``, a spec scenario, or a sweep point ``GATE=VALUE``).
        changes: its changes, in the order written.
        harm_starts_s: when the candidate becomes harmful (None: never).
        sweep: for a sweep point, (target, value as written, value).
    """

    name: str
    changes: tuple[Change, ...]
    harm_starts_s: float | None
    sweep: tuple[str, str, float] | None = None
    description: str = ""
    _split_onsets: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read at every window of every gate: worked out once.
        onsets = tuple(sorted({c.after_s for c in self.changes if c.kind == "split" and c.after_s > 0}))
        object.__setattr__(self, "_split_onsets", onsets)

    def _applied(self, kind: str, gate: str, t: float, start: float, metric: str | None = None) -> float:
        value = start
        for c in self.changes:
            if c.kind == kind and c.after_s <= t and c.sees(gate) and (metric is None or c.metric == metric):
                value = c.apply(value)
        return value

    def onsets(self, kind: str, gate: str) -> list[float]:
        """The times after 0 at which what ``gate`` reads of ``kind`` changes."""
        return sorted({c.after_s for c in self.changes if c.kind == kind and c.sees(gate) and c.after_s > 0})

    def metric_value(self, gate: GateModel, t: float) -> float:
        """The candidate's mean of the gate's metric at time t."""
        assert gate.metric is not None
        return self._applied("metric", gate.name, t, gate.metric.baseline, gate.metric.name)

    def latency(self, gate: str, t: float) -> tuple[float, float]:
        """(scale, shift): the candidate's latency is stable's times scale plus shift."""
        scale, shift = 1.0, 0.0
        for c in self.changes:
            if c.kind == "latency" and c.after_s <= t and c.sees(gate):
                if c.mode == "relative":
                    scale *= 1.0 + c.value
                    shift *= 1.0 + c.value
                else:
                    shift += c.value
        return scale, shift

    def error_rate(self, gate: str, t: float, base: float) -> float:
        return min(max(self._applied("errors", gate, t, base), 0.0), 1.0)

    def value(self, gate: str, t: float, base: float) -> float:
        return self._applied("value", gate, t, base)

    def drift(self, gate: str, t: float) -> float:
        return self._applied("drift", gate, t, 0.0)

    def weight(self, declared: float, t: float) -> float:
        """The candidate's real share of live traffic when its declared weight is ``declared``."""
        if not 0.0 < declared < 1.0:
            return declared
        return min(max(self._applied("split", "", t, declared) if self._splits() else declared, 0.0), 1.0)

    def _splits(self) -> bool:
        return any(c.kind == "split" for c in self.changes)

    def split_onsets(self) -> tuple[float, ...]:
        """The times after 0 at which the candidate's real share changes."""
        return self._split_onsets

    def label_delay(self, gate: GateModel) -> LabelDelay:
        """The delay of the labels the gate's analysis counts (its metric's, or a `labels` effect's)."""
        from rolloutlang.stats.gates import analysis_delay, delay_model

        assert gate.metric is not None and isinstance(gate.gate, ir.BusinessGate)
        declared = analysis_delay(gate.gate, gate.metric)
        if gate.gate.analysis == "matured":
            return declared
        new = next((c.delay for c in reversed(self.changes) if c.kind == "labels" and c.metric == gate.metric.name
                    and c.delay is not None), None)
        return delay_model(new) if new is not None else declared


def _split_sees_all(changes: tuple[Change, ...]) -> tuple[Change, ...]:
    """A broken split is the assignment's, so every gate sees it: drop the gate it was named by."""
    from dataclasses import replace

    return tuple(replace(c, gates=()) if c.kind == "split" else c for c in changes)


def scenario_model(rollout: ir.Rollout, name: str, changes: tuple[Change, ...], *,
                   sweep: tuple[str, str, float] | None = None, description: str = "") -> ScenarioModel:
    """A scenario of the rollout from its changes; the candidate is harmful from the first harmful change on."""
    changes = _split_sees_all(changes)
    onsets = [c.after_s for c in changes if harmful(rollout, c)]
    return ScenarioModel(name, changes, min(onsets) if onsets else None, sweep, description)
