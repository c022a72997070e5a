"""The plan graph: the phases a rollout goes through and the ways out of each.

:func:`build_plan` reads a resolved :class:`ir.Rollout` once and lays its
strategy out as an ordered list of :class:`Phase` values (shadow, canary
stages, blue-green preview, rolling update, then after promotion the bake
and the holdout) plus the :class:`Transition` values between them and the three ends
(``promoted``, ``rolled-back``, ``paused``).  They live in plain lists, which
keep everything byte-stable and answer the plan's own graph questions (can
this phase still roll back?); :attr:`Plan.graph` offers them as a
``networkx.MultiDiGraph``, built (and networkx imported) only when asked for.  The
checks, ``rollout explain``, the target compilers and the simulator read the
plan, never the strategy in the IR.

Time on the plan
    Each phase has an earliest start and end (approvals granted at once, a
    rolling update done at once) and a latest start and end (``None`` once a
    phase waits for a person or for pods: an unbounded end).  The *fastest
    schedule* is the one where every phase takes its written duration and an
    open-ended phase takes none.

Exposure
    Candidate exposure is traffic answered by the candidate: request rate x
    candidate weight x time, on the fastest schedule, at the traffic model's
    mean rate.  Mirrored (shadow) requests are counted apart: the candidate's
    answers to them are discarded, so they expose nobody.  Header routes to
    the candidate are not counted (their share of traffic is unknown).

Earliest possible rollback (:meth:`Plan.earliest_rollback`)
    For a gate that a rule rolls back on: the first moment it can fail, on the
    fastest schedule, plus the rule's confirmation wait.  An SLO or drift gate
    needs ``interval x failure limit`` of failing measurements from the moment
    it becomes active; a business gate looks every ``interval`` if it has one,
    else at the end of each phase it is active in (stage-end looks).  An
    open-ended phase waits while a pending gate decides; during the
    confirmation wait the plan holds its weight.  Statistical power is not
    considered here: this is the earliest the plan *could* react, so the
    exposure before it is a floor on what a bad candidate costs.

Where a gate is evaluated
    From its ``from`` phase (any phase's name: a stage's, ``shadow``,
    ``preview``, ``rolling``, ``bake``, ``holdout``), else from the start, in
    every phase where it can be: a gate that compares the two versions (a
    business, sample-ratio or ``change`` gate, drift ``vs stable``) only
    where both answer the same traffic at once, and not after promotion
    unless its ``from`` says so; a gate on the candidate alone also through
    the bake and the holdout.  A job gate without ``every`` runs once, as its
    phase begins.  After promotion the gates' rules act as before it: a
    rollback from the bake switches back to the stable version, still
    running.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from rolloutlang import ir
from rolloutlang.diagnostics import word_list
from rolloutlang.source import Span
from rolloutlang.units import duration_text, format_percent

if TYPE_CHECKING:
    import networkx as nx

PhaseKind = Literal["shadow", "canary", "preview", "rolling", "bake", "holdout"]
TransitionKind = Literal["promote", "rollback", "pause", "resume"]
Trigger = Literal["schedule", "approval", "rule", "manual"]

PROMOTED = "promoted"
ROLLED_BACK = "rolled-back"
PAUSED = "paused"
ENDS = (PROMOTED, ROLLED_BACK, PAUSED)
END_LABELS = {PROMOTED: "promoted", ROLLED_BACK: "rolled back", PAUSED: "paused"}

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Phase:
    """One period of the plan during which the traffic split stays the same.

    Attributes:
        id: node id in :attr:`Plan.graph`, unique and stable (``shadow``,
            ``stage.NAME``, ``preview``, ``rolling``, ``holdout``).
        kind: what sort of phase this is.
        name: the name to show: the stage name, or the kind.
        index: position in :attr:`Plan.phases`.
        weight_percent: share of live traffic answered by the candidate.
        shadow_percent: share of traffic mirrored to the candidate (answers discarded).
        duration_s: the written duration, ``None`` when the phase has none.
        open_ended: the phase has no latest end: it waits for an approval, holds,
            or lasts as long as a rolling update takes.
        approval: leaving the phase (promoting) needs a person.
        approvers: who may approve, from `approve ... by`.
        hold: the stage says ``hold``.
        earliest_start_s, earliest_end_s: on the fastest schedule.
        latest_start_s, latest_end_s: ``None`` when unbounded.
        gates: names of the gates evaluated during the phase, in declaration order.
        post_promotion: the phase comes after promotion (a holdout).
        exposure_requests: candidate requests during the phase (fastest schedule);
            ``None`` without a traffic model.
        mirrored_requests: requests mirrored to the candidate during the phase.
        cumulative_exposure_requests, cumulative_mirrored_requests: from the start
            of the plan to the end of this phase.
        cumulative_weighted_s: integral of the candidate share (0-1) over time up to
            the end of this phase; exposure in "seconds of all traffic", known
            without a traffic model.
        span: where the phase is written.
        weight_span: where its weight is written (canary stages).
        stage: the canary stage it comes from.
        max_surge, max_unavailable: the rolling update's pace (rolling).
        scale_down_delay_s: how long the old version stays up after the switch (preview).
        stable_warm: after promotion, the stable version still runs, so a rollback switches back at once
            (a bake, except after a rolling update; a holdout).
        consumers: each consumer with its own route (`via`) and the version that answers it in the phase.
    """

    id: str
    kind: PhaseKind
    name: str
    index: int
    weight_percent: float
    shadow_percent: float
    duration_s: float | None
    open_ended: bool
    approval: bool
    approvers: tuple[str, ...]
    hold: bool
    earliest_start_s: float
    earliest_end_s: float
    latest_start_s: float | None
    latest_end_s: float | None
    gates: tuple[str, ...]
    post_promotion: bool
    exposure_requests: float | None
    mirrored_requests: float | None
    cumulative_exposure_requests: float | None
    cumulative_mirrored_requests: float | None
    cumulative_weighted_s: float
    span: Span
    weight_span: Span | None = None
    stage: ir.CanaryStage | None = None
    max_surge: ir.SurgeValue | None = None
    max_unavailable: ir.SurgeValue | None = None
    scale_down_delay_s: float | None = None
    stable_warm: bool = False
    consumers: tuple[tuple[str, ir.Role], ...] = ()

    @property
    def length_s(self) -> float:
        """How long the phase lasts on the fastest schedule."""
        return self.duration_s if self.duration_s is not None else 0.0

    @property
    def share_so_far_percent(self) -> float | None:
        """Candidate share of all requests from the start of the plan to the end of this phase."""
        if self.earliest_end_s <= 0:
            return None
        return 100.0 * self.cumulative_weighted_s / self.earliest_end_s

    @property
    def description(self) -> str:
        """What happens in the phase: `1% for 2h`, `mirror 100% for 24h`, `50% hold`, `until approved`."""
        if self.kind == "shadow":
            text = f"mirror {format_percent(self.shadow_percent)}"
        elif self.kind == "preview":
            text = "preview"
        elif self.kind == "rolling":
            text = "rolling update to 100%"
        else:
            text = format_percent(self.weight_percent)
        if self.duration_s is not None and (self.duration_s > 0 or self.kind not in ("canary", "rolling")):
            text += f" for {duration_text(self.duration_s)}"
        if self.hold:
            text += " hold"
        elif self.approval:
            text += ", then approval" if self.duration_s or self.kind == "rolling" else " until approved"
        elif self.open_ended and self.kind == "canary":
            text += " (no duration)"
        if self.kind != "shadow" and self.shadow_percent > 0:
            text += f", mirror {format_percent(self.shadow_percent)}"
        if self.kind == "bake":
            text += ", stable kept up" if self.stable_warm else ", stable pods replaced"
        return text

    @property
    def label(self) -> str:
        """Name and description on two lines, for graphs."""
        return f"{self.name}\n{self.description}"


@dataclass(frozen=True)
class Transition:
    """A way from one node of the plan to another.

    Attributes:
        source, target: node ids (a phase id or one of :data:`ENDS`).
        kind: ``promote`` (on to the next phase), ``rollback``, ``pause`` or ``resume``.
        trigger: ``schedule`` (after the phase's duration, its gates passing),
            ``approval`` (a person), ``rule`` (a gate failed), ``manual`` (resume).
        gates: for a scheduled promotion, the gates that must pass; for a rule,
            the rule's gates evaluated in the source phase.
        after_s: for a promotion, the phase's duration; for a rollback, the
            confirmation wait (``rollback after 30m``).
        immediate: ``rollback now``.
        approvers: who may approve: an approval promotion, or a rollback (`approve rollback by`).
        notify: channels the rule notifies along the way.
        rule: index of the rule in ``Rollout.rules``.
        event: for a rule, whether it fires on its gates failing or passing (`on ctr pass: promote`).
    """

    source: str
    target: str
    kind: TransitionKind
    trigger: Trigger
    gates: tuple[str, ...] = ()
    after_s: float | None = None
    immediate: bool = False
    approvers: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    rule: int | None = None
    event: Literal["fail", "pass"] = "fail"

    @property
    def key(self) -> str:
        """The edge key in :attr:`Plan.graph`, unique per (source, target)."""
        return self.kind if self.rule is None else f"{self.kind}#{self.rule}"

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}:{self.key}"

    @property
    def label(self) -> str:
        if self.kind == "promote":
            if self.trigger == "rule":
                return "promote: " + ", ".join(self.gates) + (" pass" if self.event == "pass" else "")
            text = "promote"
            if self.after_s:
                text += f" after {duration_text(self.after_s)}"
            if self.trigger == "approval":
                text += (" and " if self.after_s else " on ") + "approval"
            return text
        if self.kind == "resume":
            return "resume"
        text = self.kind
        if self.kind == "rollback" and self.after_s:
            text += f" after {duration_text(self.after_s)}"
        return text + ": " + ", ".join(self.gates)


@dataclass(frozen=True)
class RollbackBound:
    """When a gate can first roll the plan back, and the candidate traffic until then.

    Attributes:
        gate: the gate's name ("" for a plan that nothing rolls back).
        fires_s: the earliest time the gate can fail, ``None`` if it cannot fail
            while the plan runs.
        rollback_s: ``fires_s`` plus the confirmation wait.
        phase: id of the phase it fires in.
        segments: ``(start_s, end_s, candidate share 0-1)`` up to the rollback; when
            the gate never fires they run on past promotion, the last one to infinity.
    """

    gate: str
    fires_s: float | None
    rollback_s: float | None
    phase: str | None
    segments: tuple[tuple[float, float, float], ...]

    def weighted_s(self, until: float | None = None) -> float:
        """Integral of the candidate share up to the rollback (or ``until``, if earlier)."""
        total = 0.0
        for start, end, share in self.segments:
            stop = end if until is None else min(end, until)
            if stop <= start or share == 0:
                continue
            if math.isinf(stop):
                return math.inf
            total += share * (stop - start)
        return total


@dataclass
class Plan:
    """The plan of one rollout.

    Attributes:
        rollout: the resolved IR it was built from (gates, rules, budgets).
        phases: every phase in order; post-promotion phases last.
        transitions: every edge in a stable order (phase by phase).
        rate_rps: the traffic model's mean rate, if there is one.
        start: id of the first node (the first phase, or ``promoted``).
        min_duration_s: time to promotion on the fastest schedule.
        max_duration_s: ``None`` when a phase is open-ended.
        gate_phases: gate name -> ids of the phases it is evaluated in.
        scale_down_after_s: how long the old version keeps running once the plan is promoted (after a
            bake), when the spec says (`scale down after`, or blue-green's option).
    """

    rollout: ir.Rollout
    phases: list[Phase]
    transitions: list[Transition]
    rate_rps: float | None
    start: str
    min_duration_s: float
    max_duration_s: float | None
    gate_phases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scale_down_after_s: float | None = None

    @property
    def name(self) -> str:
        return self.rollout.name

    @property
    def pre_promotion(self) -> list[Phase]:
        return [p for p in self.phases if not p.post_promotion]

    @property
    def ends(self) -> tuple[str, ...]:
        """The end nodes of the plan, in a fixed order: `paused` only when a rule pauses."""
        return tuple(e for e in ENDS if e != PAUSED or any(t.target == PAUSED for t in self.transitions))

    @property
    def nodes(self) -> list[str]:
        """Every node id: the phases in order, then the ends."""
        return [p.id for p in self.phases] + list(self.ends)

    def phase(self, phase_id: str) -> Phase:
        return self._phases_by_id[phase_id]

    @cached_property
    def _phases_by_id(self) -> dict[str, Phase]:
        return {p.id: p for p in self.phases}

    def transitions_from(self, node: str, kind: TransitionKind | None = None) -> list[Transition]:
        return [t for t in self.transitions if t.source == node and (kind is None or t.kind == kind)]

    def can_reach(self, source: str, target: str) -> bool:
        """Whether some path of transitions leads from ``source`` to ``target`` (a node reaches itself)."""
        nodes = set(self.nodes)
        if source not in nodes or target not in nodes:
            return False
        following: dict[str, list[str]] = {}
        for t in self.transitions:
            following.setdefault(t.source, []).append(t.target)
        seen = {source}
        todo = [source]
        while todo:
            node = todo.pop()
            if node == target:
                return True
            for nxt in following.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """The plan as a ``networkx.MultiDiGraph``, built on first use.

        Node attributes ``kind`` (a phase kind or ``end``), ``phase`` (the
        :class:`Phase`) and ``label``; edge key :attr:`Transition.key`, edge
        attributes ``transition``, ``kind`` and ``label``.
        """
        import networkx as nx

        graph = nx.MultiDiGraph(name=self.rollout.name)
        for ph in self.phases:
            graph.add_node(ph.id, kind=ph.kind, phase=ph, label=self.label(ph.id))
        for end in self.ends:
            graph.add_node(end, kind="end", phase=None, label=self.label(end))
        for t in self.transitions:
            graph.add_edge(t.source, t.target, key=t.key, transition=t, kind=t.kind, label=t.label)
        return graph

    def label(self, node: str) -> str:
        """What a graph shows in a node: the phase's name and description, or the end's name, then one line per
        note (:meth:`notes`)."""
        head = END_LABELS[node] if node in END_LABELS else self.phase(node).label
        return "\n".join([head, *self.notes(node)])

    def notes(self, node: str) -> list[str]:
        """What else happens at a node: the hooks run there, the consumers whose own switch moves them there, and
        after promotion how long the old version stays up; on rollback, the hooks run then."""
        hooks = self.rollout.pipeline
        out: list[str] = []

        def run(point: str, what: str, phase: str | None = None) -> None:
            names = [h.name for h in hooks if h.point == point and (phase is None or h.phase == phase)]
            if names:
                out.append(f"{what}: {', '.join(names)}")

        if node == ROLLED_BACK:
            if any(c for c, _ in (self.phases[0].consumers if self.phases else ())):
                out.append("consumers back on stable")
            run("on-rollback", "then runs")
            return out
        if node == PAUSED:
            return out
        served_before: dict[str, str] = {}
        index = len(self.phases) if node == PROMOTED else self.phase(node).index
        if index > 0 and self.phases:
            served_before = dict(self.phases[index - 1].consumers)
        served = dict(self.phases[index].consumers) if index < len(self.phases) else {
            name: "candidate" for name in served_before}
        if node != PROMOTED:
            ph = self.phase(node)
            if index == 0:
                run("before-traffic", "before traffic")
            run("phase-start", "at start", ph.name)
            run("phase-end", "at end", ph.name)
        moved = [name for name, role in served.items() if role == "candidate" and served_before.get(name) != role]
        out.extend(f"{name} switched to candidate" for name in moved)
        if node == PROMOTED:
            if self.scale_down_after_s is not None:
                out.append(f"old version scaled down after {duration_text(self.scale_down_after_s)}")
            if not any(p.post_promotion for p in self.phases):
                run("after-promotion", "then runs")
        elif self.phase(node).post_promotion and not any(p.post_promotion for p in self.phases[:index]):
            run("after-promotion", "after promotion")
        return out

    def rollback_gates(self) -> list[str]:
        """Gates some rule rolls back on, in declaration order."""
        named = {g for r in self.rollout.rules if any(a.kind == "rollback" for a in r.actions) for g in r.gates}
        return [g.name for g in self.rollout.gates if g.name in named]

    def earliest_rollback(self, gate_name: str) -> RollbackBound | None:
        """The earliest rollback one gate can cause; ``None`` if no rule rolls back on it."""
        waits = [a.after_s or 0.0 for r in self.rollout.rules if gate_name in r.gates
                 for a in r.actions if a.kind == "rollback"]
        gate = self.rollout.gate(gate_name)
        if not waits or gate is None:
            return None
        delay: float | None
        if isinstance(gate, ir.BusinessGate | ir.SrmGate):
            delay = gate.interval_s
        elif isinstance(gate, ir.JobGate):
            # a one-shot job can fail as soon as it runs, as its phase begins
            delay = 0.0 if gate.interval_s is None else gate.interval_s * gate.failure_limit
        else:
            delay = gate.interval_s * gate.failure_limit
        return self._walk(gate_name, delay, min(waits))

    def without_rollback(self) -> RollbackBound:
        """The fastest schedule with nothing rolling back: exposure of a promoted candidate."""
        return self._walk(None, None, 0.0)

    def weighted_s(self, t: float) -> float:
        """Integral of the candidate share from 0 to ``t`` on the fastest schedule."""
        return self.without_rollback().weighted_s(t)

    def _walk(self, gate: str | None, delay: float | None, wait: float) -> RollbackBound:
        t = 0.0
        segments: list[tuple[float, float, float]] = []
        fires: float | None = None
        for ph in self.phases:
            share = ph.weight_percent / 100.0
            length = ph.length_s
            if gate is not None and gate in ph.gates:
                if fires is None and delay is not None:
                    fires = t + delay
                elif fires is None and length > 0:
                    fires = t + length  # a stage-end look
                if fires is not None:
                    at = max(fires, t)
                    if at <= t + length or ph.open_ended:
                        segments.append((t, at, share))
                        if wait > 0:
                            segments.append((at, at + wait, share))
                        return RollbackBound(gate, at, at + wait, ph.id, tuple(segments))
            segments.append((t, t + length, share))
            t += length
        segments.append((t, math.inf, 1.0))
        return RollbackBound(gate or "", None, None, None, tuple(segments))


# -- building ------------------------------------------------------------------------------------


@dataclass
class _Draft:
    id: str
    kind: PhaseKind
    name: str
    weight: float
    shadow: float
    duration: float | None
    open_ended: bool
    approval: bool
    approvers: tuple[str, ...]
    hold: bool
    span: Span
    post_promotion: bool = False
    weight_span: Span | None = None
    stage: ir.CanaryStage | None = None
    max_surge: ir.SurgeValue | None = None
    max_unavailable: ir.SurgeValue | None = None
    scale_down_delay_s: float | None = None
    stable_warm: bool = False


# The phases named by their kind, which `from`, approvals, hooks and consumer switches can name like stages.
PHASE_NAMES = ("shadow", "preview", "rolling", "bake", "holdout")
# Names that are not phases but points of the plan: `approve promotion`, `switch at promotion`, `approve rollback`.
POINT_NAMES = ("promotion", "rollback")


def _drafts(rollout: ir.Rollout) -> list[_Draft]:
    approvals: dict[str, tuple[str, ...]] = {}
    for a in rollout.approvals:
        known = approvals.get(a.what, ())
        approvals[a.what] = known + tuple(x for x in a.approvers if x not in known)
    shadow = rollout.shadow
    strategy = rollout.strategy
    out: list[_Draft] = []
    if shadow is not None and shadow.duration_s is not None:
        out.append(_Draft("shadow", "shadow", "shadow", 0.0, shadow.percent, shadow.duration_s, False, False, (),
                          False, shadow.span))
    if isinstance(strategy, ir.Canary):
        for i, st in enumerate(strategy.stages):
            last = i == len(strategy.stages) - 1
            mirror = 0.0
            if shadow is not None and shadow.alongside_canary:
                limit = shadow.until_percent if shadow.until_percent is not None else 100.0
                mirror = shadow.percent if st.weight_percent < limit else 0.0
            approvers = approvals.get(st.name, ())
            approval = st.until_approved or st.hold or bool(approvers)
            duration = st.duration_s
            if duration is None and last and not approval:
                duration = 0.0  # the final step: set the weight and promote
            out.append(_Draft(f"stage.{st.name}", "canary", st.name, st.weight_percent, mirror, duration,
                              approval or duration is None, approval, approvers, st.hold, st.span,
                              weight_span=st.weight_span, stage=st))
    elif isinstance(strategy, ir.BlueGreen):
        manual = strategy.promotion == "manual"
        duration = strategy.preview_s if strategy.preview_s is not None else (None if manual else 0.0)
        out.append(_Draft("preview", "preview", "preview", 0.0, 0.0, duration, manual or duration is None, manual,
                          (), False, strategy.span, scale_down_delay_s=strategy.scale_down_delay_s))
    elif isinstance(strategy, ir.Rolling):
        out.append(_Draft("rolling", "rolling", "rolling", 100.0, 0.0, None, True, False, (), False, strategy.span,
                          max_surge=strategy.max_surge, max_unavailable=strategy.max_unavailable))
    if out and "promotion" in approvals:
        _wait_for(out[-1], approvals["promotion"])
    if rollout.bake is not None and out:
        # The stable version stays up through the bake, unless a rolling update has replaced its pods.
        out.append(_Draft("bake", "bake", "bake", 100.0, 0.0, rollout.bake.duration_s, False, False, (), False,
                          rollout.bake.span, post_promotion=True, stable_warm=not isinstance(strategy, ir.Rolling)))
    if rollout.holdout is not None:
        h = rollout.holdout
        weight = 100.0 - h.percent if h.role == "stable" else h.percent
        out.append(_Draft("holdout", "holdout", "holdout", weight, 0.0, h.duration_s, False, False, (), False,
                          h.span, post_promotion=True, stable_warm=True))
    for d in out:
        if d.kind != "canary" and d.name in approvals:
            _wait_for(d, approvals[d.name])
    return out


def phase_names(rollout: ir.Rollout) -> list[str]:
    """The names of the plan's phases in order, which `from`, approvals, hooks and consumer switches refer to."""
    return [d.name for d in _drafts(rollout)]


def _wait_for(d: _Draft, approvers: tuple[str, ...]) -> None:
    """Leaving the phase needs a person's sign-off (after its duration, if it has one)."""
    d.approval = True
    d.open_ended = True
    d.approvers = d.approvers + tuple(a for a in approvers if a not in d.approvers)


def compares_arms(gate: ir.AnyGate) -> bool:
    """Whether the gate compares the candidate with stable (and so needs both serving at the same time)."""
    return isinstance(gate, ir.BusinessGate | ir.SrmGate) or (
        isinstance(gate, ir.SloGate) and gate.comparison == "change") or (
        isinstance(gate, ir.DriftGate) and gate.reference == "stable")


def follows_promotion(gate: ir.AnyGate) -> bool:
    """Whether a gate without `from` keeps running after promotion: one that judges the candidate alone does."""
    if isinstance(gate, ir.JobGate):
        return gate.interval_s is not None
    return not compares_arms(gate)


def _active(gate: ir.AnyGate, d: _Draft, index: int, from_index: int | None) -> bool:
    """Whether the gate is evaluated in draft ``d`` (at ``index``); ``from_index`` is its `from` phase's."""
    if gate.from_stage is not None and (from_index is None or index < from_index):
        return False
    if isinstance(gate, ir.JobGate) and gate.interval_s is None:
        return index == (from_index or 0)  # one run, as its phase begins
    if d.post_promotion and gate.from_stage not in ("bake", "holdout") and not follows_promotion(gate):
        return False  # a comparison made to decide the promotion is over once it is made
    if isinstance(gate, ir.BusinessGate | ir.SrmGate):
        # a comparison of users' outcomes, or of the split itself, needs both arms answering live traffic
        return 0 < d.weight < 100
    if compares_arms(gate):
        # latency, errors and distributions can be compared on mirrored requests too
        return d.weight < 100 and (d.weight > 0 or d.shadow > 0)
    return True


def consumer_switches(rollout: ir.Rollout, names: list[str]) -> dict[str, int]:
    """For each consumer with its own route (`via`), the index of the phase from which the candidate answers it.

    ``names`` are the plan's phase names in order; a switch at promotion (the default) is the first phase after
    it, or past the end.  A switch at a phase the plan lacks (the loader reports it) counts as promotion.
    """
    promoted = next((i for i, n in enumerate(names) if n in ("bake", "holdout")), len(names))
    out: dict[str, int] = {}
    for c in rollout.consumers:
        if c.route is None:
            continue
        at = c.switch if c.switch is not None else "promotion"
        out[c.name] = names.index(at) if at in names else promoted
    return out


def build_plan(rollout: ir.Rollout) -> Plan:
    """Lay a resolved rollout out as phases and transitions."""
    drafts = _drafts(rollout)
    index_of = {d.name: i for i, d in enumerate(drafts)}
    names = [d.name for d in drafts]
    switches = consumer_switches(rollout, names)
    rate = rollout.traffic.rate_rps if rollout.traffic is not None else None

    phases: list[Phase] = []
    t_early = 0.0
    t_late: float | None = 0.0
    weighted = 0.0
    mirrored = 0.0
    for i, d in enumerate(drafts):
        length = d.duration if d.duration is not None else 0.0
        gates = tuple(g.name for g in rollout.gates
                      if _active(g, d, i, index_of.get(g.from_stage) if g.from_stage else None))
        w_s = d.weight / 100.0 * length
        m_s = d.shadow / 100.0 * length
        weighted += w_s
        mirrored += m_s
        end_late = None if (t_late is None or d.open_ended) else t_late + length
        consumers = tuple((name, _served_by(i, at)) for name, at in switches.items())
        phases.append(Phase(
            id=d.id, kind=d.kind, name=d.name, index=i, weight_percent=d.weight, shadow_percent=d.shadow,
            duration_s=d.duration, open_ended=d.open_ended, approval=d.approval, approvers=d.approvers, hold=d.hold,
            earliest_start_s=t_early, earliest_end_s=t_early + length, latest_start_s=t_late, latest_end_s=end_late,
            gates=gates, post_promotion=d.post_promotion,
            exposure_requests=None if rate is None else rate * w_s,
            mirrored_requests=None if rate is None else rate * m_s,
            cumulative_exposure_requests=None if rate is None else rate * weighted,
            cumulative_mirrored_requests=None if rate is None else rate * mirrored,
            cumulative_weighted_s=weighted, span=d.span, weight_span=d.weight_span, stage=d.stage,
            max_surge=d.max_surge, max_unavailable=d.max_unavailable, scale_down_delay_s=d.scale_down_delay_s,
            stable_warm=d.stable_warm, consumers=consumers,
        ))
        t_early += length
        t_late = end_late
    pre = [p for p in phases if not p.post_promotion]
    promoted_early = pre[-1].earliest_end_s if pre else 0.0
    promoted_late = pre[-1].latest_end_s if pre else 0.0

    transitions = _transitions(rollout, phases)
    gate_phases: dict[str, tuple[str, ...]] = {g.name: () for g in rollout.gates}
    for p in phases:
        for name in dict.fromkeys(p.gates):
            gate_phases[name] += (p.id,)
    return Plan(rollout=rollout, phases=phases, transitions=transitions, rate_rps=rate,
                start=phases[0].id if phases else PROMOTED, min_duration_s=promoted_early,
                max_duration_s=promoted_late, gate_phases=gate_phases, scale_down_after_s=_scale_down(rollout))


def _served_by(index: int, switch: int) -> ir.Role:
    return "candidate" if index >= switch else "stable"


def _scale_down(rollout: ir.Rollout) -> float | None:
    """How long the old version keeps running once the plan is promoted, when the spec says."""
    if rollout.scale_down is not None:
        return rollout.scale_down.after_s
    if isinstance(rollout.strategy, ir.BlueGreen):
        return rollout.strategy.scale_down_delay_s
    return None


def _transitions(rollout: ir.Rollout, phases: list[Phase]) -> list[Transition]:
    pre = [p for p in phases if not p.post_promotion]
    post = [p for p in phases if p.post_promotion]
    chain = [*pre, *post]
    out: list[Transition] = []
    paused_from: list[str] = []
    rollback_approvers = tuple(x for a in rollout.approvals if a.what == "rollback" for x in a.approvers)
    promotion_target = post[0].id if post else PROMOTED
    for i, ph in enumerate(chain):
        target = chain[i + 1].id if i + 1 < len(chain) else PROMOTED
        out.append(Transition(ph.id, target, "promote", "approval" if ph.approval else "schedule", gates=ph.gates,
                              after_s=ph.duration_s if ph.duration_s else None, approvers=ph.approvers))
        evaluated = set(ph.gates)
        for r, rule in enumerate(rollout.rules):
            active = tuple(g for g in rule.gates if g in evaluated)
            if not active:
                continue
            notify = tuple(a.channel for a in rule.actions if a.kind == "notify" and a.channel is not None)
            seen: set[str] = set()
            for action in rule.actions:
                if action.kind in ("notify",) or action.kind in seen:
                    continue
                seen.add(action.kind)
                if action.kind == "rollback":
                    out.append(Transition(ph.id, ROLLED_BACK, "rollback", "rule", gates=active,
                                          after_s=action.after_s, immediate=action.immediate,
                                          approvers=rollback_approvers, notify=notify, rule=r))
                elif action.kind == "pause":
                    out.append(Transition(ph.id, PAUSED, "pause", "rule", gates=active, notify=notify, rule=r))
                    if ph.id not in paused_from:
                        paused_from.append(ph.id)
                elif action.kind == "promote":
                    # after promotion, a decisive pass ends the bake or the holdout early
                    out.append(Transition(ph.id, PROMOTED if ph.post_promotion else promotion_target, "promote",
                                          "rule", gates=active, notify=notify, rule=r, event=rule.event))
    for pid in paused_from:
        out.append(Transition(PAUSED, pid, "resume", "manual"))
    return out


# -- rendering -----------------------------------------------------------------------------------


def render_plan(plan: Plan, fmt: str) -> str:
    """The plan as Graphviz DOT, a mermaid flowchart, or JSON (``fmt``: dot, mermaid, json)."""
    if fmt == "dot":
        return _render_dot(plan)
    if fmt == "mermaid":
        return _render_mermaid(plan)
    if fmt == "json":
        return json.dumps(plan_to_json(plan), indent=2, allow_nan=False) + "\n"
    raise ValueError(f"unknown plan format {fmt!r}: use dot, mermaid or json")


def _drawn_edges(plan: Plan) -> list[tuple[str, str, str, str]]:
    """(source, target, kind, label), one per (source, target, kind): rules that share an arrow share a label."""
    merged: dict[tuple[str, str, str], list[Transition]] = {}
    for t in plan.transitions:
        merged.setdefault((t.source, t.target, t.kind), []).append(t)
    out = []
    for (source, target, kind), ts in merged.items():
        if len(ts) == 1:
            label = ts[0].label
        else:
            parts = [ts[0].label, *(t.label.split(": ", 1)[-1] if t.label.startswith(kind + ":") else t.label
                                    for t in ts[1:])]
            label = "; ".join(parts)
        out.append((source, target, kind, label))
    return out




def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_DOT_EDGE_STYLE = {
    "promote": "",
    "rollback": ", color=firebrick, fontcolor=firebrick",
    "pause": ", color=darkorange, fontcolor=darkorange",
    "resume": ", style=dashed",
}


def _render_dot(plan: Plan) -> str:
    lines = [f"digraph {_dot_quote(plan.name)} {{", "  graph [rankdir=LR];",
             '  node [shape=box, style=rounded, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for node in plan.nodes:
        extra = ""
        if node == PROMOTED:
            extra = ", shape=doublecircle, color=forestgreen"
        elif node == ROLLED_BACK:
            extra = ", shape=doublecircle, color=firebrick"
        elif node == PAUSED:
            extra = ", shape=octagon, color=darkorange"
        lines.append(f"  {_dot_quote(node)} [label={_dot_quote(plan.label(node))}{extra}];")
    for source, target, kind, label in _drawn_edges(plan):
        lines.append(f"  {_dot_quote(source)} -> {_dot_quote(target)} "
                     f"[label={_dot_quote(label)}{_DOT_EDGE_STYLE[kind]}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    escaped = (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
               .replace("|", "#124;"))
    return escaped.replace("\n", "<br/>")


def _mermaid_ids(plan: Plan) -> dict[str, str]:
    ids = {p.id: f"p{p.index}" for p in plan.phases}
    ids.update({PROMOTED: "promoted", ROLLED_BACK: "rolled_back", PAUSED: "paused"})
    return ids


def _render_mermaid(plan: Plan) -> str:
    ids = _mermaid_ids(plan)
    lines = ["flowchart LR"]
    for node in plan.nodes:
        text = _mermaid_text(plan.label(node))
        if node in (PROMOTED, ROLLED_BACK):
            lines.append(f'  {ids[node]}(["{text}"])')
        elif node == PAUSED:
            lines.append(f'  {ids[node]}{{{{"{text}"}}}}')
        else:
            lines.append(f'  {ids[node]}["{text}"]')
    for source, target, kind, label in _drawn_edges(plan):
        arrow = "-.->" if kind in ("resume", "pause") else "-->"
        lines.append(f'  {ids[source]} {arrow}|"{_mermaid_text(label)}"| {ids[target]}')
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> float | None:
    if x is None or math.isinf(x):
        return None
    return x


def phase_to_json(ph: Phase) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ph.id,
        "kind": ph.kind,
        "name": ph.name,
        "label": ph.label,
        "weight_percent": ph.weight_percent,
        "shadow_percent": ph.shadow_percent,
        "duration_s": ph.duration_s,
        "open_ended": ph.open_ended,
        "approval": ph.approval,
        "approvers": list(ph.approvers),
        "hold": ph.hold,
        "earliest_start_s": ph.earliest_start_s,
        "earliest_end_s": ph.earliest_end_s,
        "latest_start_s": ph.latest_start_s,
        "latest_end_s": ph.latest_end_s,
        "gates": list(ph.gates),
        "post_promotion": ph.post_promotion,
        "exposure_requests": ph.exposure_requests,
        "mirrored_requests": ph.mirrored_requests,
        "cumulative_exposure_requests": ph.cumulative_exposure_requests,
        "cumulative_mirrored_requests": ph.cumulative_mirrored_requests,
        "cumulative_weighted_s": ph.cumulative_weighted_s,
        "line": ph.span.line,
    }
    if ph.max_surge is not None and ph.max_unavailable is not None:
        out["max_surge"] = asdict(ph.max_surge)
        out["max_unavailable"] = asdict(ph.max_unavailable)
    if ph.scale_down_delay_s is not None:
        out["scale_down_delay_s"] = ph.scale_down_delay_s
    if ph.kind == "bake":
        out["stable_warm"] = ph.stable_warm
    if ph.consumers:
        out["consumers"] = dict(ph.consumers)
    return out


def transition_to_json(t: Transition) -> dict[str, Any]:
    return {
        "id": t.id,
        "source": t.source,
        "target": t.target,
        "kind": t.kind,
        "trigger": t.trigger,
        "label": t.label,
        "gates": list(t.gates),
        "after_s": t.after_s,
        "immediate": t.immediate,
        "approvers": list(t.approvers),
        "notify": list(t.notify),
        "rule": t.rule,
        "event": t.event,
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """A JSON-ready dict: ``nodes`` (phases, then ends) and ``edges`` (one per transition)."""
    nodes: list[dict[str, Any]] = [phase_to_json(p) for p in plan.phases]
    nodes.extend({"id": e, "kind": "end", "name": e, "label": END_LABELS[e]} for e in plan.ends)
    for node in nodes:
        node["notes"] = plan.notes(node["id"])
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "rollout": plan.name,
        "start": plan.start,
        "traffic_rps": plan.rate_rps,
        "duration": {"min_s": plan.min_duration_s, "max_s": _num(plan.max_duration_s)},
        "nodes": nodes,
        "edges": [transition_to_json(t) for t in plan.transitions],
    }


def render_plans_json(plans: Sequence[Plan]) -> str:
    """Several plans as one JSON list (a file with several rollouts); finite numbers only."""
    return json.dumps([plan_to_json(p) for p in plans], indent=2, allow_nan=False) + "\n"


def gate_list(names: Sequence[str]) -> str:
    """`a`, `b` and `c`: names for messages."""
    return word_list(names, " and ")
