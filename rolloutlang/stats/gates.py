"""From a rollout's IR to each gate's statistical rule and its planned looks.

This is the one place that reads a business gate's IR for its statistics:

* :func:`test_spec` turns the gate (and its metric and the rollout's
  false-rollback budgets) into the :class:`~rolloutlang.stats.designs.TestSpec`
  that :func:`~rolloutlang.stats.designs.decide` applies to data;
* :func:`plan_gate` lays out the gate's looks on the plan's fastest schedule,
  the labels each look can count, the information they carry and the gate's
  operating characteristics there.

Definitions (``docs/checks.md`` repeats them for users):

* a gate is *active* in the canary stages with 0 < weight < 100 from its
  `from` stage on, and analyses only requests made while it is active;
* a *look* is the end of each active timed stage, or every `every D` from the
  gate's start (skipping times between its stages) plus the end of its last
  stage; a `fixed horizon` gate without `every` looks once, at the end of its
  last stage;
* at a look at time T the *labelled sample* of an active stage is the
  integral over the stage's hours of the request rate (with its daily shape)
  times the stage's share times the probability that the label has arrived by
  T (:mod:`rolloutlang.stats.traffic`); `analysis matured` counts, in full,
  only requests older than the delay's 95th percentile.  Without a start hour
  (or a peak hour) the rollout is assumed to start at the worst hour of the
  day for the gate: the one that leaves it the fewest labels at its last look;
* the *information* of a look is the sum over stages (strata) of
  ``n_c n_t / ((n_c + n_t) sigma^2 deff)``, with sigma^2 the metric's variance
  at the baseline on the test scale and deff the design effect of splitting by
  user or session (:mod:`rolloutlang.stats.estimates`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rolloutlang import ir
from rolloutlang.stats.delays import LabelDelay
from rolloutlang.stats.designs import GateCharacteristics, TestSpec
from rolloutlang.stats.designs import characterize as characterize_gate
from rolloutlang.stats.estimates import design_effect, stratified_information, unit_variance
from rolloutlang.stats.schedule import StageWindow, gate_windows
from rolloutlang.stats.sequential import SpendingFunction
from rolloutlang.units import human_duration

if TYPE_CHECKING:
    from rolloutlang.plan import Plan

HOUR = 3600.0
DEFAULT_ALPHA = 0.05
# A gate decides at most at this many looks; more (`every 1m` for days) are thinned evenly, for the checks,
# `rollout evaluate` and the targets alike (RL518 says so).  Each look costs its boundary ~1 ms to solve.
MAX_LOOKS = 400


# -- the rule -------------------------------------------------------------------------------------


def to_test_scale(value: float, relative: bool) -> float:
    """A change as the IR stores it (-0.01 = -1% relative) on the test scale (the log ratio)."""
    return math.log1p(value) if relative else value


def family_share(rollout: ir.Rollout, gate: ir.BusinessGate) -> tuple[float, ir.Budget] | None:
    """The gate's alpha from `budget false rollbacks <= X% across ...`, Bonferroni-split, and the budget."""
    for budget in rollout.budgets:
        if budget.kind == "false-rollbacks" and gate.name in budget.gates and budget.max_percent is not None:
            return budget.max_percent / 100.0 / len(budget.gates), budget
    return None


def effective_alpha(rollout: ir.Rollout, gate: ir.BusinessGate) -> float:
    """The gate's own `alpha`, else its share of a false-rollback budget, else 5%."""
    if gate.alpha is not None:
        return gate.alpha
    family = family_share(rollout, gate)
    return family[0] if family is not None else DEFAULT_ALPHA


def test_spec(rollout: ir.Rollout, gate: ir.BusinessGate) -> TestSpec:
    """The gate's test on the scale of its estimate (log ratio for relative gates)."""
    spending = SpendingFunction(gate.spending or "obrien-fleming",
                                gate.spending_gamma if gate.spending == "hsd" and gate.spending_gamma is not None
                                else 0.0)
    return TestSpec(
        hypothesis=gate.hypothesis,
        test=gate.test,
        alpha=effective_alpha(rollout, gate),
        direction=1 if gate.higher_is_better else -1,
        margin=to_test_scale(gate.margin, gate.relative),
        effect=to_test_scale(gate.effect, gate.relative),
        power=gate.power,
        two_sided=gate.sided == "two",
        spending=spending,
        futility=gate.futility,
        tau=None if gate.tau is None else to_test_scale(gate.tau, gate.relative),
    )


# -- the looks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    name: str
    stage: str
    time_s: float


def gate_looks(gate: ir.BusinessGate, windows: Sequence[StageWindow]) -> list[Look]:
    """When the gate is evaluated: the end of each active timed stage, or every `every D`.

    A `fixed horizon` gate without `every` looks once, at the end of its last
    stage.  More than :data:`MAX_LOOKS` looks are thinned evenly: the rule decides at the kept ones.
    """
    timed = [w for w in windows if w.timed and w.weight_percent > 0]
    if not timed:
        return []
    if gate.interval_s is None or gate.interval_s <= 0:
        ends = [Look(w.name, w.name, w.end_s) for w in timed if w.end_s is not None]
        return ends[-1:] if gate.test == "fixed" else ends
    first = windows[0]
    last = timed[-1]
    assert first.start_s is not None and last.end_s is not None
    interval = gate.interval_s
    count = max(math.ceil((last.end_s - first.start_s) / interval * (1.0 - 1e-9)) - 1, 0)
    ks: Sequence[int] = range(1, count + 1)
    if count > MAX_LOOKS - 1:
        ks = sorted({round((i + 1) * count / (MAX_LOOKS - 1)) for i in range(MAX_LOOKS - 1)})
    looks: list[Look] = []
    for k in ks:
        t = first.start_s + k * interval
        stage = next((w for w in timed if w.start_s is not None and w.end_s is not None
                      and w.start_s < t <= w.end_s), None)
        if stage is None or stage.start_s is None:
            continue  # between two of the gate's stages: it is not evaluated there
        looks.append(Look(f"{stage.name} +{human_duration(t - stage.start_s)}", stage.name, t))
    looks.append(Look(last.name, last.name, last.end_s))
    return looks


def looks_count(gate: ir.BusinessGate, windows: Sequence[StageWindow]) -> int:
    """How many times the gate really looks (before any thinning)."""
    timed = [w for w in windows if w.timed and w.weight_percent > 0]
    if not timed or gate.interval_s is None or gate.interval_s <= 0:
        return len(gate_looks(gate, windows))
    first, last = windows[0], timed[-1]
    assert first.start_s is not None and last.end_s is not None
    return max(math.ceil((last.end_s - first.start_s) / gate.interval_s * (1.0 - 1e-9)) - 1, 0) + 1


# -- labels and information -----------------------------------------------------------------------


def delay_model(delay: ir.LabelDelay) -> LabelDelay:
    """The kernel's delay law (in hours) for an IR label delay (in seconds)."""
    if delay.distribution == "fixed" and delay.fixed_s is not None:
        return LabelDelay.fixed(delay.fixed_s / HOUR)
    if delay.distribution == "exponential" and delay.mean_s is not None:
        return LabelDelay.exponential(delay.mean_s / HOUR)
    if delay.distribution == "lognormal" and delay.median_s is not None and delay.p95_s is not None:
        return LabelDelay.lognormal(delay.median_s / HOUR, delay.p95_s / HOUR)
    return LabelDelay.immediate()


def analysis_delay(gate: ir.BusinessGate, metric: ir.LabelMetric) -> LabelDelay:
    """The delay the gate's analysis waits for: the metric's, or its 95th percentile in full (`matured`)."""
    delay = delay_model(metric.delay)
    if gate.analysis == "matured":
        return LabelDelay.fixed(delay.quantile(0.95))
    return delay


def treated_value(gate: ir.BusinessGate, metric: ir.LabelMetric, change: float | None = None) -> float:
    """The metric's value under a change (the gate's sized effect by default)."""
    c = gate.effect if change is None else change
    return metric.baseline * (1.0 + c) if gate.relative else metric.baseline + c


def computable(gate: ir.BusinessGate, metric: ir.LabelMetric) -> bool:
    """Whether the metric's values at the margin and the effect are possible (a rate stays in 0-1)."""
    if metric.kind == "binary":
        return all(0.0 < treated_value(gate, metric, c) < 1.0 for c in (gate.margin, gate.effect))
    if gate.relative and metric.baseline <= 0:
        return False
    return metric.sd is not None and metric.sd > 0


@dataclass(frozen=True)
class Randomization:
    """What is split between the versions, and the variance inflation that follows."""

    unit: str
    requests_per_unit: float
    icc: float
    icc_assumed: bool

    @property
    def design_effect(self) -> float:
        return design_effect(self.requests_per_unit, self.icc)


def randomization(rollout: ir.Rollout, metric: ir.LabelMetric) -> Randomization:
    traffic = rollout.traffic
    if traffic is None or traffic.unit == "request":
        return Randomization("request", 1.0, 0.0, False)
    per = traffic.requests_per_unit or 1.0
    return Randomization(traffic.unit, per, metric.icc or 0.0, metric.icc is None)


@dataclass(frozen=True)
class LookSample:
    """One look of a gate: the labels it can count and the information they carry.

    Attributes:
        look: when and where.
        n_control, n_candidate: labelled requests per arm.
        information: of the stratified estimate, at no change, design effect included.
        pooled_information: of the same labels pooled across stages (for the efficiency).
        strata: (control, candidate) labelled requests of each of the gate's timed stages.
        shares: each of those stages' candidate share (0-1).
    """

    look: Look
    n_control: float
    n_candidate: float
    information: float
    pooled_information: float
    strata: tuple[tuple[float, float], ...] = ()
    shares: tuple[float, ...] = ()

    @property
    def efficiency(self) -> float:
        return self.information / self.pooled_information if self.pooled_information > 0 else 1.0


@dataclass(frozen=True)
class GatePlan:
    """A business gate on its plan: looks, labels, information and what its rule does with them.

    Attributes:
        gate, metric, spec: the gate, its metric and its test.
        samples: every look, in time order.
        kept: indices of the looks that add information (the others cannot decide anything new).
        characteristics: the rule's boundaries and operating characteristics at the kept looks;
            None when no look has information.
        randomization: the unit and design effect.
        start_hour: the start of day used (None when the traffic is flat).
        worst_start: the start was not given: it is the worst one for this gate.
        thinned_from: the real number of looks when they were thinned, else None.
    """

    gate: ir.BusinessGate
    metric: ir.LabelMetric
    spec: TestSpec
    samples: tuple[LookSample, ...]
    kept: tuple[int, ...]
    characteristics: GateCharacteristics | None
    randomization: Randomization
    start_hour: float | None
    worst_start: bool
    thinned_from: int | None = None

    def by_look(self, values: Sequence[float]) -> list[float]:
        """Per-kept-look cumulative values spread over every look (a look adding nothing repeats the last)."""
        out: list[float] = []
        index = dict(zip(self.kept, values, strict=True))
        last = 0.0
        for i in range(len(self.samples)):
            last = index.get(i, last)
            out.append(last)
        return out

    def power_by_look(self) -> list[float]:
        if self.characteristics is None:
            return [0.0] * len(self.samples)
        return self.by_look(self.characteristics.power_by_look())

    def bounds_by_look(self) -> list[tuple[float, float] | None]:
        """(lower, upper) boundaries at each look; None at looks that add nothing."""
        if self.characteristics is None:
            return [None] * len(self.samples)
        b = self.characteristics.bounds
        index = {i: (b.lower[j], b.upper[j]) for j, i in enumerate(self.kept)}
        return [index.get(i) for i in range(len(self.samples))]

    @property
    def power(self) -> float:
        return self.characteristics.power if self.characteristics is not None else 0.0

    def fail_times(self, theta: float | None = None) -> list[tuple[float, float]]:
        """(time, P(first fail there)) at each kept look, under the sized effect (or ``theta``, test scale)."""
        if self.characteristics is None:
            return []
        oc = self.characteristics.at_effect if theta is None else self.characteristics.under(theta)
        return [(self.samples[i].look.time_s, p) for i, p in zip(self.kept, oc.fail, strict=True)]


def plan_gate(rollout: ir.Rollout, gate: ir.BusinessGate, plan: Plan,
              windows: Sequence[StageWindow] | None = None, *, characterize: bool = True) -> GatePlan | None:
    """The gate on its plan; None without traffic, metric, split, timed look, or a possible effect.

    ``windows`` replaces the gate's stages (the power check stretches one to
    say how long it must be); without ``characterize`` the operating
    characteristics are left out (None).
    """
    metric = rollout.label_metric(gate.metric)
    traffic = rollout.traffic
    if traffic is None or metric is None or not computable(gate, metric):
        return None
    active = list(windows) if windows is not None else gate_windows(plan, gate)
    looks = gate_looks(gate, active)
    if not looks:
        return None
    spec = test_spec(rollout, gate)
    timed = [w for w in active if w.timed and w.weight_percent > 0]
    delay = analysis_delay(gate, metric)
    diurnal = traffic.diurnal_amplitude > 0
    from rolloutlang.stats.traffic import labelled_components, phase, worst_phase

    spans = [(w.start_s or 0.0, w.end_s or 0.0) for w in timed]
    comps = labelled_components(spans, [lk.time_s for lk in looks], delay, diurnal=diurnal)
    unit = randomization(rollout, metric)
    variance = unit_variance(metric.kind, metric.baseline, metric.sd, gate.relative)
    shares = [w.weight_percent / 100.0 for w in timed]
    weights = [s * (1.0 - s) for s in shares]
    start_hour: float | None = None
    worst = False
    psi = 0.0
    if diurnal:
        if traffic.start_hour is not None and traffic.peak_hour is not None:
            start_hour = traffic.start_hour
            psi = phase(traffic.start_hour, traffic.peak_hour)
        else:
            worst = True
            psi = worst_phase(comps, weights)
            start_hour = (psi * 24.0 / (2.0 * math.pi) + (traffic.peak_hour or 0.0)) % 24.0
    labelled = comps.labelled(traffic.rate_rps, traffic.diurnal_amplitude, psi)
    samples: list[LookSample] = []
    scale = 1.0 / (variance * unit.design_effect)
    for k, look in enumerate(looks):
        row = labelled[k]
        n_t = float(sum(row[s] * shares[s] for s in range(len(shares))))
        n_c = float(sum(row[s] * (1.0 - shares[s]) for s in range(len(shares))))
        info = float(sum(row[s] * weights[s] for s in range(len(shares)))) * scale
        pooled = n_c * n_t / (n_c + n_t) * scale if n_c > 0 and n_t > 0 else 0.0
        strata = tuple((float(row[s] * (1.0 - shares[s])), float(row[s] * shares[s])) for s in range(len(shares)))
        samples.append(LookSample(look, n_c, n_t, info, pooled, strata, tuple(shares)))
    kept: list[int] = []
    for i, sample in enumerate(samples):
        if sample.information > 0 and (not kept or sample.information > samples[kept[-1]].information * (1 + 1e-9)):
            kept.append(i)
    if kept and kept[-1] != len(samples) - 1:
        kept[-1] = len(samples) - 1  # the last look decides, even if it adds (almost) nothing
    if spec.test == "fixed" and len(kept) > 1:
        kept = kept[-1:]  # a fixed test with several looks (RL512): size its one honest look, the last
    infos = [samples[i].information for i in kept]
    kept_samples = [samples[i] for i in kept]

    def informations_at(theta: float) -> list[float]:
        """The kept looks' informations when the true change is ``theta`` (test scale)."""
        change = math.expm1(theta) if gate.relative else theta
        var_c = unit_variance(metric.kind, metric.baseline, metric.sd, gate.relative)
        var_t = unit_variance(metric.kind, treated_value(gate, metric, change), metric.sd, gate.relative)
        return [float(stratified_information(var_c, var_t, [nc for nc, _ in s.strata], [nt for _, nt in s.strata],
                                             unit.design_effect)) for s in kept_samples]

    characteristics = characterize_gate(spec, infos, informations_at) if kept and characterize else None
    thinned = looks_count(gate, active)
    return GatePlan(gate=gate, metric=metric, spec=spec, samples=tuple(samples), kept=tuple(kept),
                    characteristics=characteristics, randomization=unit, start_hour=start_hour, worst_start=worst,
                    thinned_from=thinned if thinned > len(looks) else None)


def stretched(windows: Sequence[StageWindow], target: StageWindow, stretch: float) -> list[StageWindow]:
    """The windows with ``target`` lasting ``stretch`` times as long and later ones shifted."""
    index = list(windows).index(target)
    base = target.duration_s or 0.0
    extra = base * (stretch - 1.0)
    return [w if i < index else replace(
        w,
        start_s=None if w.start_s is None else w.start_s + (extra if i > index else 0.0),
        end_s=None if w.end_s is None else w.end_s + extra,
    ) for i, w in enumerate(windows)]


def context_gate_plans(rollout: ir.Rollout, plan: Plan) -> dict[str, GatePlan]:
    """Every business gate's plan, by name (gates that cannot be sized are left out)."""
    out: dict[str, GatePlan] = {}
    for gate in rollout.gates:
        if isinstance(gate, ir.BusinessGate):
            gp = plan_gate(rollout, gate, plan)
            if gp is not None:
                out[gate.name] = gp
    return out


# -- the plan as a whole --------------------------------------------------------------------------


def srm_false_alarm(gate: ir.SrmGate, windows: Sequence[StageWindow]) -> float:
    """P(the sample-ratio gate fails at some look) when the split is right.

    The counts restart at each stage; within a stage the gate looks every
    `every D` at the cumulative counts, a repeated two-sided z-test at a
    constant bound whose error grows with the looks (statistics reference 1.5);
    stages are independent.
    """
    from rolloutlang.stats.designs import EXACT_LOOK_LIMIT, GRID, MONTE_CARLO_PATHS
    from rolloutlang.stats.normal import normal_quantile
    from rolloutlang.stats.sequential import crossing_probabilities, equal_fractions

    c = normal_quantile(1.0 - gate.alpha / 2.0)
    survive = 1.0
    for w in windows:
        length = w.duration_s
        if length is None or not 0 < w.weight_percent < 100:
            continue
        k = max(int(length // gate.interval_s + 1e-9), 1)
        fractions = equal_fractions(k)
        if k <= EXACT_LOOK_LIMIT:
            p = crossing_probabilities([c] * k, fractions, 0.0, [-c] * k, grid=GRID).total
        else:
            from rolloutlang.stats.montecarlo import simulate_crossings

            sim = simulate_crossings([-c] * k, [c] * k, fractions, 0.0, MONTE_CARLO_PATHS)
            p = sum(sim.lower) + sum(sim.upper)
        survive *= 1.0 - min(p, 1.0)
    return 1.0 - survive


@dataclass(frozen=True)
class PlanFalseRollbacks:
    """How often the plan rolls back a candidate exactly as good as stable.

    Attributes:
        per_gate: (gate, P(it fails under no change)) for each rollback gate with a statistical rule.
        unmodelled: rollback gates whose false alarms depend on noise the checks do not model
            (SLO and drift thresholds; `rollout simulate` covers them).
    """

    per_gate: tuple[tuple[str, float], ...]
    unmodelled: tuple[str, ...]

    @property
    def independent(self) -> float:
        """1 - prod(1 - p_g): the plan's rate if the gates' data were independent."""
        out = 1.0
        for _, p in self.per_gate:
            out *= 1.0 - p
        return 1.0 - out

    @property
    def bound(self) -> float:
        """sum p_g, capped at 1: a bound that holds however the gates' data are correlated."""
        return min(math.fsum(p for _, p in self.per_gate), 1.0)


def plan_false_rollbacks(rollout: ir.Rollout, plan: Plan, gate_plans: dict[str, GatePlan]) -> PlanFalseRollbacks:
    """The false-rollback rate of each gate a rule rolls back on, under no change."""
    per_gate: list[tuple[str, float]] = []
    unmodelled: list[str] = []
    for name in plan.rollback_gates():
        gate = rollout.gate(name)
        if isinstance(gate, ir.BusinessGate):
            gp = gate_plans.get(name)
            if gp is not None and gp.characteristics is not None:
                per_gate.append((name, gp.characteristics.false_rollback))
        elif isinstance(gate, ir.SrmGate):
            per_gate.append((name, srm_false_alarm(gate, gate_windows(plan, gate))))
        elif gate is not None:
            unmodelled.append(name)
    return PlanFalseRollbacks(tuple(per_gate), tuple(unmodelled))
