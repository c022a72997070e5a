"""What a scenario's effects change, for the simulator and the checks (RL800-RL804).

A scenario effect names a label metric, a gate, or one of `latency`,
`errors` (`error-rate`) and `drift`, and says how what it names changes
(docs/language.md, section 21).  :func:`resolve` reads each effect against
the kind of gate or metric it names and turns it into a :class:`Change` of
one simulated quantity, or into a finding when it cannot mean anything:

=========================  ==================================================================================
quantity                   what an effect changes
=========================  ==================================================================================
``metric``                 a label metric's mean: ``-2%`` relative, ``-0.1% absolute`` (binary: points), a
                           plain number in the metric's units (continuous); named by the metric (every gate
                           on it) or by one business gate (that gate's view only)
``latency``                every request's latency: ``+15ms`` added, ``+10%`` scaled; `latency` (every
                           latency gate) or one latency gate
``errors``                 the error rate: ``5%`` adds five points, ``+50% relative`` scales; `errors` (every
                           error-rate gate) or one
``value``                  a saturation or query gate's value: a plain number is the new value, ``+10%``
                           scales it, ``+5% absolute`` adds points
``drift``                  a PSI, KL, JS or MMD gate's statistic in the population: a plain number is its value;
                           `drift` (every such gate) or one
``split``                  a sample-ratio gate's split: the candidate really gets its weight ``-10%`` (scaled)
                           or ``+1% absolute`` (points): a broken assignment, which every comparison sees
``labels``                 the metric's label delay, in both arms
=========================  ==================================================================================

Nothing here imports numpy: `rollout check` reads it for every spec with a
scenario.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.source import Span

QuantityKind = Literal["metric", "latency", "errors", "value", "drift", "split", "labels"]
Mode = Literal["relative", "absolute", "set", "delay"]

KEYWORDS = {"latency": "latency", "errors": "errors", "error-rate": "errors", "drift": "drift"}
# The statistics the simulator replays: PSI, KL and JS from binned draws, MMD at its population value;
# `adwin` (a test on the stream of single requests) is not modelled (RL802).
SIMULATED_DRIFT = ("psi", "kl", "js", "mmd")
JS_MAX = math.log(2.0)


@dataclass(frozen=True)
class Change:
    """One effect, read against what it names.

    Attributes:
        kind: the quantity it changes (see the module docstring).
        metric: the label metric (``metric``, ``labels``).
        gates: the gates that see it; empty for a metric-wide change (every gate on the metric).
        mode: ``relative`` (x (1 + value)), ``absolute`` (+ value), ``set`` (= value) or ``delay`` (labels).
        value: the number, in the IR's unit (a fraction, seconds, the statistic).
        after_s: when it switches on, from the start of the rollout.
        delay: the new label delay (``labels``).
        effect: the effect as written.
    """

    kind: QuantityKind
    mode: Mode
    value: float
    after_s: float
    effect: ir.Effect | None = None
    metric: str | None = None
    gates: tuple[str, ...] = ()
    delay: ir.LabelDelay | None = None

    def apply(self, x: float) -> float:
        """The quantity after this change, from its value ``x`` before."""
        if self.mode == "relative":
            return x * (1.0 + self.value)
        if self.mode == "absolute":
            return x + self.value
        if self.mode == "set":
            return self.value
        return x

    def sees(self, gate: str) -> bool:
        """Whether this change reaches ``gate`` (a metric-wide change reaches every gate on the metric)."""
        return not self.gates or gate in self.gates


@dataclass(frozen=True)
class ResolvedScenario:
    name: str
    changes: tuple[Change, ...]
    span: Span | None = None


def target_span(effect: ir.Effect) -> Span:
    """The span of the effect's first word (its target, or `labels`)."""
    s = effect.span
    word = "labels" if effect.kind == "labels" else effect.target
    return Span(file=s.file, line=s.line, col=s.col, end_line=s.line, end_col=s.col + len(word))


def names_known(rollout: ir.Rollout, effect: ir.Effect) -> bool:
    """Whether the effect's target is a metric, a gate or a keyword (the loader's RL130 otherwise)."""
    metrics = {m.name for m in rollout.label_metrics}
    if effect.kind == "labels":
        return effect.target in metrics
    return effect.target in metrics or rollout.gate(effect.target) is not None or effect.target in KEYWORDS


def _latency_gates(rollout: ir.Rollout) -> list[ir.SloGate]:
    return [g for g in rollout.gates if isinstance(g, ir.SloGate) and g.signal == "latency"]


def _error_gates(rollout: ir.Rollout) -> list[ir.SloGate]:
    return [g for g in rollout.gates if isinstance(g, ir.SloGate) and g.signal == "error_rate"]


def _drift_gates(rollout: ir.Rollout) -> list[ir.DriftGate]:
    return [g for g in rollout.gates if isinstance(g, ir.DriftGate)]


def _mode(effect: ir.Effect) -> Mode:
    return "relative" if effect.kind == "relative" else "absolute"


def _misfit(effect: ir.Effect, what: str, help: str) -> Diagnostic:
    return error("RL800", f"this change does not fit `{effect.target}`, {what}", effect.span, help=help)


def resolve_effect(rollout: ir.Rollout, effect: ir.Effect) -> tuple[Change | None, list[Diagnostic]]:
    """The :class:`Change` an effect makes, or None with the findings that say why it makes none."""
    base = {"after_s": effect.after_s, "effect": effect}
    if effect.kind == "labels":
        metric = rollout.label_metric(effect.target)
        if metric is None:
            return None, []  # RL130, from the loader
        return Change("labels", "delay", 0.0, metric=metric.name, delay=effect.delay, **base), []  # type: ignore
    metric = rollout.label_metric(effect.target)
    if metric is not None:
        return _metric_change(rollout, effect, metric, ())
    keyword = KEYWORDS.get(effect.target)
    gate = rollout.gate(effect.target)
    if keyword == "latency" and _latency_gates(rollout):
        return _latency_change(effect, ())
    if keyword == "errors" and _error_gates(rollout):
        return _error_change(effect, ())
    if keyword == "drift" and _drift_gates(rollout):
        return _drift_change(effect, _drift_gates(rollout), ())
    if gate is not None:
        return _gate_change(rollout, effect, gate)
    if keyword is not None:
        kind = {"latency": "latency", "errors": "error-rate", "drift": "drift"}[keyword]
        return None, [warning("RL801", f"`{effect.target}` changes, but the plan has no {kind} gate to see it",
                              target_span(effect), help=f"add a {kind} gate, or drop the effect")]
    return None, []  # RL130, from the loader


def _gate_change(rollout: ir.Rollout, effect: ir.Effect,
                 gate: ir.AnyGate) -> tuple[Change | None, list[Diagnostic]]:
    if isinstance(gate, ir.BusinessGate):
        metric = rollout.label_metric(gate.metric)
        if metric is None:
            return None, []  # RL112, from the loader
        return _metric_change(rollout, effect, metric, (gate.name,))
    if isinstance(gate, ir.DriftGate):
        return _drift_change(effect, [gate], (gate.name,))
    if isinstance(gate, ir.SrmGate):
        return _split_change(rollout, effect, gate)
    if isinstance(gate, ir.JobGate):
        return None, [warning("RL802", f"the simulator does not model job gates: this effect on `{gate.name}` is "
                                       "ignored", target_span(effect),
                              help="a job gate runs the team's own command or URL; change a metric or an SLO "
                                   "gate instead")]
    if gate.signal == "latency":
        return _latency_change(effect, (gate.name,))
    if gate.signal == "error_rate":
        return _error_change(effect, (gate.name,))
    if effect.unit == "seconds":
        return None, [_misfit(effect, f"a {gate.signal} gate", "write its new value (`0.95`), a relative change "
                                                                "(`+10%`) or points (`+5% absolute`)")]
    mode: Mode = "set" if effect.unit == "number" else _mode(effect)
    return Change("value", mode, effect.value, effect.after_s, effect, gates=(gate.name,)), []


def _metric_change(rollout: ir.Rollout, effect: ir.Effect, metric: ir.LabelMetric,
                   gates: tuple[str, ...]) -> tuple[Change | None, list[Diagnostic]]:
    if effect.unit == "seconds":
        return None, [_misfit(effect, f"a {metric.kind} label metric",
                              "write a relative change (`-2%`) or an absolute one (`-0.1% absolute`)")]
    if metric.kind == "continuous" and effect.unit == "fraction" and effect.kind == "absolute":
        return None, [_misfit(effect, "a continuous metric: it has no percentage points",
                              "write a relative change (`-3%`) or a change in its units (`-0.05 absolute`)")]
    change = Change("metric", _mode(effect), effect.value, effect.after_s, effect, metric=metric.name, gates=gates)
    found: list[Diagnostic] = []
    watching = [g for g in rollout.gates if isinstance(g, ir.BusinessGate) and g.metric == metric.name]
    if not watching:
        found.append(warning("RL801", f"metric `{metric.name}` changes, but no business gate compares it",
                             target_span(effect), help=f"gate on it: `gate {metric.name}: {metric.name} change > "
                                                       "-1% relative, fail if shown harmful, power 80% at -3%`"))
    if metric.kind == "binary":
        moved = change.apply(metric.baseline)
        if not 0.0 < moved < 1.0:
            found.append(error("RL804", f"`{metric.name}` moves from {metric.baseline * 100:.4g}% to "
                                        f"{moved * 100:.4g}%, outside 0%-100%", effect.span,
                               help="write a change a rate can make, e.g. `-2%` or `-0.1% absolute`"))
            return None, found
    return change, found


def _latency_change(effect: ir.Effect, gates: tuple[str, ...]) -> tuple[Change | None, list[Diagnostic]]:
    if effect.unit == "seconds":
        return Change("latency", "absolute", effect.value, effect.after_s, effect, gates=gates), []
    if effect.unit == "fraction" and effect.kind == "relative":
        return Change("latency", "relative", effect.value, effect.after_s, effect, gates=gates), []
    return None, [_misfit(effect, "a latency", "write a duration (`+15ms`) or a relative change (`+10%`)")]


def _error_change(effect: ir.Effect, gates: tuple[str, ...]) -> tuple[Change | None, list[Diagnostic]]:
    if effect.unit != "fraction":
        return None, [_misfit(effect, "an error rate", "write points (`2%`, `+0.5% absolute`) or a relative "
                                                        "change (`+50% relative`)")]
    return Change("errors", _mode(effect), effect.value, effect.after_s, effect, gates=gates), []


def _drift_change(effect: ir.Effect, gates: list[ir.DriftGate],
                  names: tuple[str, ...]) -> tuple[Change | None, list[Diagnostic]]:
    simulated = [g for g in gates if g.statistic in SIMULATED_DRIFT]
    if not simulated:
        stats = " and ".join(sorted({f"`{g.statistic}`" for g in gates}))
        return None, [warning("RL802", f"the simulator does not model {stats} drift gates: this effect is "
                                       "ignored", target_span(effect),
                              help="the simulator replays `psi`, `kl`, `js` and `mmd` drift gates")]
    if effect.unit != "number":
        return None, [_misfit(effect, "a drift statistic", "write the statistic's value in the population, "
                                                            "e.g. `0.3`")]
    if effect.value < 0:
        return None, [error("RL804", f"a drift statistic is never negative, not {effect.value:g}", effect.span)]
    too_far = [g.name for g in simulated if g.statistic == "js" and effect.value >= JS_MAX]
    if too_far:
        return None, [error("RL804", f"JS divergence stays below ln 2 = {JS_MAX:.4f}: `{too_far[0]}` cannot reach "
                                     f"{effect.value:g}", effect.span, help="write a value below 0.69")]
    return Change("drift", "set", effect.value, effect.after_s, effect,
                  gates=names if names else tuple(g.name for g in simulated)), []


def _split_change(rollout: ir.Rollout, effect: ir.Effect, gate: ir.SrmGate) -> tuple[Change | None, list[Diagnostic]]:
    if effect.unit != "fraction":
        return None, [_misfit(effect, "a sample-ratio gate", "say how the candidate's share is off: `-10%` "
                                                              "(relative) or `+1% absolute` (points)")]
    change = Change("split", _mode(effect), effect.value, effect.after_s, effect, gates=(gate.name,))
    strategy = rollout.strategy
    weights = [s.weight_percent / 100.0 for s in strategy.stages] if isinstance(strategy, ir.Canary) else []
    broken = [w for w in weights if 0.0 < w < 1.0 and not 0.0 < change.apply(w) < 1.0]
    if broken:
        return None, [error("RL804", f"a {broken[0] * 100:g}% stage would send the candidate "
                                     f"{change.apply(broken[0]) * 100:.4g}% of requests, outside 0%-100%",
                            effect.span)]
    return change, []


def harmful(rollout: ir.Rollout, change: Change) -> bool:
    """Whether the change makes the candidate worse on the side the gates that see it call worse."""
    if change.kind == "labels":
        return False
    if change.kind in ("drift", "split"):
        return change.value != 0.0
    if change.kind == "metric":
        gates = [g for g in rollout.gates if isinstance(g, ir.BusinessGate) and g.metric == change.metric
                 and change.sees(g.name)]
        metric = rollout.label_metric(change.metric or "")
        if metric is None:
            return False
        moved = change.apply(metric.baseline) - metric.baseline
        return any((moved < 0) == g.higher_is_better and moved != 0 for g in gates)
    worse_up = [g.op in ("<", "<=") for g in rollout.gates if isinstance(g, ir.SloGate) and change.sees(g.name)
                and _signal_kind(g) == change.kind]
    if change.kind == "value":
        from rolloutlang.stats.slo import slo_baseline

        gate = rollout.gate(change.gates[0])
        assert isinstance(gate, ir.SloGate)
        start, _ = slo_baseline(gate)
        moved = change.apply(start) - start
    else:
        moved = change.apply(1.0) - 1.0 if change.mode == "relative" else change.value
    return any((moved > 0) == up and moved != 0 for up in worse_up)


def _signal_kind(gate: ir.SloGate) -> QuantityKind:
    return {"latency": "latency", "error_rate": "errors"}.get(gate.signal, "value")  # type: ignore[return-value]


def at_mde(rollout: ir.Rollout) -> tuple[Change, ...]:
    """Each business gate at the change its power is sized for, in its own view of its metric."""
    return tuple(Change("metric", "relative" if g.relative else "absolute", g.effect, 0.0, metric=g.metric,
                        gates=(g.name,))
                 for g in rollout.gates if isinstance(g, ir.BusinessGate) and rollout.label_metric(g.metric))


def resolve(rollout: ir.Rollout) -> tuple[list[ResolvedScenario], list[Diagnostic]]:
    """Every scenario of the rollout as changes, and the findings about effects that change nothing."""
    out: list[ResolvedScenario] = []
    found: list[Diagnostic] = []
    for scenario in rollout.scenarios:
        changes: list[Change] = []
        for effect in scenario.effects:
            change, diagnostics = resolve_effect(rollout, effect)
            found.extend(diagnostics)
            if change is not None:
                changes.append(change)
        out.append(ResolvedScenario(scenario.name, tuple(changes), scenario.span))
    return out, found


def late_effects(effects: Iterable[ir.Effect], plan_end_s: float | None) -> list[Diagnostic]:
    """RL803: effects that switch on only after the plan has promoted, however it goes."""
    if plan_end_s is None:
        return []
    return [warning("RL803", f"`{e.target}` switches on after {_hours(e.after_s)}, when the plan has promoted "
                             f"(by {_hours(plan_end_s)}): no gate sees it", e.span,
                    help="switch it on earlier, or drop it") for e in effects if e.after_s >= plan_end_s]


def _hours(seconds: float) -> str:
    from rolloutlang.units import duration_text

    return duration_text(seconds)
