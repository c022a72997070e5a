"""Statistics checks (RL501-RL505): can each business gate see what it gates on?

A business gate compares a label metric (CTR, conversion) between the
candidate and the stable model.  Two things limit what it can see:

* labels arrive late, so at the end of a short stage most of that stage's
  labels are still missing (RL501);
* the labelled sample may be too small to detect the declared effect with the
  declared power before the rollout reaches 100% (RL502).

Definitions used here (see ``docs/checks.md``):

* the *schedule* is the plan graph's fastest schedule (``rolloutlang.plan``):
  a `shadow ... for D` phase comes first and yields no labels (its answers are
  discarded);
* a gate is *active* in the plan phases that evaluate it: canary stages with
  0 < weight < 100 from its `from` stage on; it analyses only requests made
  while it is active;
* a *look* is the end of each active stage with a fixed duration, or every
  `every D` from the gate's start (skipping times between its stages) plus
  the end of its last stage; the power warning is about the last look, the
  last chance to stop before 100%;
* at a look at time T the *labelled sample* of an arm is the sum over active
  stages of rate x share x time x the fraction of that stage's labels arrived
  by T (`LabelDelay.arrived_fraction_between`); the candidate's share is the
  stage weight, the control arm is the remaining (100 - w)% on stable.  The
  `matured` analysis counts instead the requests older than the delay's 95th
  percentile, in full.  The rate is the traffic model's mean rate: a diurnal
  shape moves requests within a day but does not change the totals;
* the *power* is the fixed-horizon power of the two-proportion z-test (binary
  metrics; statsmodels' ``power_proportions_2indep``) or of the z-test for a
  difference in means (continuous metrics), stratified by stage (each stage's
  difference weighted by its information, so a baseline that drifts while the
  weights change cannot bias it; one stage is the plain two-sample test), to detect
  the gate's effect (`min effect`, else its threshold; relative to the
  metric's baseline when relative) at its alpha, two-sided unless
  `one-sided`.

The statistics kernel (scipy, numpy) is imported only inside the functions,
and only when the rollout has a business gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.checks.references import gate_site
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.source import Span
from rolloutlang.units import duration_text, format_duration, human_duration
from rolloutlang.units import format_count as _count

if TYPE_CHECKING:
    from rolloutlang import stats
    from rolloutlang.plan import Plan

HOUR = 3600.0
# Below this fraction of its labels at a stage's end, a gate is judging mostly missing data.
LABEL_FRACTION_FLOOR = 0.5
# solve_for_power searches stage lengths up to this multiple of the written one.
MAX_STRETCH = 64.0
# Looks kept for the explain table and the inflation factor; more are thinned evenly.
MAX_LOOKS = 500
MAX_LOOKS_FOR_INFLATION = 20


# -- the schedule -------------------------------------------------------------------------------


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


def gate_windows(plan: Plan, gate: ir.BusinessGate) -> list[StageWindow]:
    """The phases a business gate is evaluated in (the plan keeps those with 0 < weight < 100).

    Times are the plan's fastest schedule.  After a phase with no written
    duration (`until approved`, `hold`) the gate's later phases have no known
    start: how long the data accrue there depends on a person.
    """
    out: list[StageWindow] = []
    known = True
    for phase in plan.pre_promotion:
        if gate.name not in phase.gates:
            if out and phase.duration_s is None:
                known = False  # a wait between two of the gate's stages
            continue
        start = phase.earliest_start_s if known else None
        end = start + phase.duration_s if start is not None and phase.duration_s is not None else None
        known = end is not None
        out.append(StageWindow(phase.name, phase.weight_percent, start, end, phase.span, phase.duration_s))
    return out


# -- labels and samples ----------------------------------------------------------------------------


def delay_model(delay: ir.LabelDelay) -> stats.LabelDelay:
    """The kernel's delay law (in hours) for an IR label delay (in seconds)."""
    from rolloutlang import stats

    if delay.distribution == "fixed" and delay.fixed_s is not None:
        return stats.LabelDelay.fixed(delay.fixed_s / HOUR)
    if delay.distribution == "exponential" and delay.mean_s is not None:
        return stats.LabelDelay.exponential(delay.mean_s / HOUR)
    if delay.distribution == "lognormal" and delay.median_s is not None and delay.p95_s is not None:
        return stats.LabelDelay.lognormal(delay.median_s / HOUR, delay.p95_s / HOUR)
    return stats.LabelDelay.immediate()


def describe_delay(delay: ir.LabelDelay) -> str:
    if delay.distribution == "fixed" and delay.fixed_s is not None:
        return f"fixed({format_duration(delay.fixed_s)})"
    if delay.distribution == "exponential" and delay.mean_s is not None:
        return f"exponential(mean {format_duration(delay.mean_s)})"
    if delay.distribution == "lognormal" and delay.median_s is not None and delay.p95_s is not None:
        return f"lognormal(median {duration_text(delay.median_s)}, p95 {duration_text(delay.p95_s)})"
    return "immediate"


def _lengths(old_s: float, new_s: float) -> tuple[str, str]:
    """Two stage lengths in one unit, to compare at a glance: (`24h`, `47h`)."""
    unit, size = ("h", HOUR) if new_s >= 2 * HOUR else ("m", 60.0)
    return f"{old_s / size:.3g}{unit}", f"{new_s / size:.3g}{unit}"


@dataclass(frozen=True)
class LabelledSample:
    """Labels available at a look, per arm, and how much of them a stratified analysis can use.

    Stages with different weights are strata: pooling them is biased when the
    baseline drifts over time (Simpson's paradox, statistics reference 2.3),
    so the gate's estimate combines per-stage differences with inverse-variance
    weights.  ``efficiency`` is that estimate's information over the pooled
    one (1 for a single stage, below 1 when the weights differ).
    """

    n_control: float
    n_candidate: float
    efficiency: float = 1.0


def _information(n_control: float, n_candidate: float) -> float:
    if n_control <= 0 or n_candidate <= 0:
        return 0.0
    return n_control * n_candidate / (n_control + n_candidate)


def labelled_samples(windows: Sequence[StageWindow], at_s: float, rate_rps: float, delay: stats.LabelDelay,
                     analysis: str = "arrived") -> LabelledSample:
    """Labels available at time ``at_s`` from requests made in ``windows``, one stratum per window."""
    maturity_h = delay.quantile(0.95) if analysis == "matured" else 0.0
    at_h = at_s / HOUR
    strata: list[tuple[float, float]] = []
    for w in windows:
        if w.start_s is None or w.start_s >= at_s:
            continue
        a = w.start_s / HOUR
        b = min(w.end_s if w.end_s is not None else at_s, at_s) / HOUR
        if analysis == "matured":
            labelled_h = max(min(b, at_h - maturity_h) - a, 0.0)
        else:
            labelled_h = (b - a) * delay.arrived_fraction_between(a, b, at_h)
        requests = rate_rps * HOUR * labelled_h
        share = w.weight_percent / 100.0
        strata.append((requests * (1.0 - share), requests * share))
    n_control = sum(c for c, _ in strata)
    n_candidate = sum(t for _, t in strata)
    pooled = _information(n_control, n_candidate)
    stratified = sum(_information(c, t) for c, t in strata)
    return LabelledSample(n_control, n_candidate, stratified / pooled if pooled > 0 else 1.0)


def treated_value(gate: ir.BusinessGate, metric: ir.LabelMetric) -> float:
    """The metric's value under the effect the gate must detect."""
    return metric.baseline * (1.0 + gate.effect) if gate.relative else metric.baseline + gate.effect


def describe_effect(gate: ir.BusinessGate) -> str:
    if gate.relative:
        return f"{gate.effect * 100:+.4g}% relative"
    return f"{gate.effect:+.4g} absolute"


def power_computable(gate: ir.BusinessGate, metric: ir.LabelMetric) -> bool:
    if metric.kind == "binary":
        return 0.0 < treated_value(gate, metric) < 1.0
    return metric.sd is not None and metric.sd > 0


def gate_power(gate: ir.BusinessGate, metric: ir.LabelMetric, sample: LabelledSample) -> float:
    """Fixed-horizon power of the gate's stratified test on these labels (0 without data in both arms).

    The stratified estimate has the information of a pooled sample scaled by
    ``sample.efficiency``; for one stage this is exactly the two-sample test.
    """
    from rolloutlang import stats

    n_control = sample.n_control * sample.efficiency
    n_candidate = sample.n_candidate * sample.efficiency
    if n_control <= 0 or n_candidate <= 0:
        return 0.0
    two_sided = gate.sided == "two"
    if metric.kind == "binary":
        return stats.two_proportion_power(metric.baseline, treated_value(gate, metric), n_control, n_candidate,
                                          gate.alpha, two_sided)
    assert metric.sd is not None
    delta = treated_value(gate, metric) - metric.baseline
    return stats.mean_difference_power(metric.sd, delta, n_control, n_candidate, gate.alpha, two_sided)


# -- looks and the power table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    name: str
    stage: str
    time_s: float


def gate_looks(gate: ir.BusinessGate, windows: Sequence[StageWindow]) -> list[Look]:
    """When the gate is evaluated: the end of each active timed stage, or every `every D`."""
    timed = [w for w in windows if w.timed and w.weight_percent > 0]
    if not timed:
        return []
    if gate.interval_s is None or gate.interval_s <= 0:
        return [Look(w.name, w.name, w.end_s) for w in timed if w.end_s is not None]
    first = windows[0]
    last = timed[-1]
    assert first.start_s is not None and last.end_s is not None
    interval = gate.interval_s
    count = max(math.ceil((last.end_s - first.start_s) / interval * (1.0 - 1e-9)) - 1, 0)
    ks: Sequence[int] = range(1, count + 1)
    if count > MAX_LOOKS - 1:  # a very short interval: keep the table readable, the looks evenly spread
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


@dataclass(frozen=True)
class PowerRow:
    """One look of one business gate, for `rollout explain`.

    ``information_fraction`` is the look's information over the final look's;
    ``efficiency`` the stratified analysis's share of the pooled information;
    ``power`` is the fixed-horizon power with the labels available at the look;
    ``sequential_power`` (group-sequential gates) the probability that the
    gate's actual design, with its alpha-spending bounds at these information
    fractions, has rolled back by this look under the effect.
    """

    gate: str
    look: str
    stage: str
    time_s: float
    n_control_labelled: float
    n_candidate_labelled: float
    information_fraction: float
    power: float
    efficiency: float = 1.0
    sequential_power: float | None = None


def gate_power_rows(rollout: ir.Rollout, gate: ir.BusinessGate, active: Sequence[StageWindow]) -> list[PowerRow]:
    """The power table of one gate over the phases it is active in; empty when it can't be computed."""
    metric = rollout.label_metric(gate.metric)
    if rollout.traffic is None or metric is None or not power_computable(gate, metric):
        return []
    looks = gate_looks(gate, active)
    if not looks:
        return []
    delay = delay_model(metric.delay)
    samples = [labelled_samples(active, look.time_s, rollout.traffic.rate_rps, delay, gate.analysis)
               for look in looks]
    def information(sample: LabelledSample) -> float:
        return _information(sample.n_control, sample.n_candidate) * sample.efficiency

    final_info = information(samples[-1])
    rows = []
    for look, sample in zip(looks, samples, strict=True):
        rows.append(PowerRow(
            gate=gate.name, look=look.name, stage=look.stage, time_s=look.time_s,
            n_control_labelled=sample.n_control, n_candidate_labelled=sample.n_candidate,
            information_fraction=information(sample) / final_info if final_info > 0 else 0.0,
            power=gate_power(gate, metric, sample), efficiency=sample.efficiency,
        ))
    sequential = sequential_detection(gate, rows)
    if sequential is not None:
        rows = [replace(r, sequential_power=p) for r, p in zip(rows, sequential, strict=True)]
    return rows


def sequential_detection(gate: ir.BusinessGate, rows: Sequence[PowerRow]) -> list[float] | None:
    """Cumulative probability that the gate's group-sequential test has fired by each look.

    The bounds are spent at the looks' information fractions (Lan-DeMets, as
    the gate declares); the drift is the effect's expected z at the last look,
    read off its fixed-horizon power.  Looks that add no information cannot
    stop and inherit the previous figure.  None for other tests, or for more
    looks than the recursion handles quickly.
    """
    from rolloutlang import stats

    if gate.test != "group-sequential" or gate.spending is None or not rows:
        return None
    keep: list[int] = []
    for i, r in enumerate(rows):
        t = r.information_fraction
        if t > 0 and (not keep or t > rows[keep[-1]].information_fraction + 1e-9):
            keep.append(i)
    if not keep or keep[-1] != len(rows) - 1 or len(keep) > MAX_LOOKS_FOR_INFLATION:
        return None
    fractions = [min(rows[i].information_fraction, 1.0) for i in keep]
    one_sided = gate.sided == "one"
    final = min(max(rows[-1].power, 1e-12), 1.0 - 1e-12)
    drift = stats.normal_quantile(1.0 - (gate.alpha if one_sided else gate.alpha / 2)) + stats.normal_quantile(final)
    try:
        bounds = stats.spending_bounds(fractions, gate.alpha, gate.spending, one_sided)
        crossings = stats.crossing_probabilities(bounds, fractions, drift)
    except ValueError:
        return None
    out: list[float] = []
    total = 0.0
    by_row = dict(zip(keep, crossings.upper, strict=True))
    for i in range(len(rows)):
        total += by_row.get(i, 0.0)
        out.append(min(total, 1.0))
    return out


def context_power_table(ctx: CheckContext) -> list[PowerRow]:
    """The rollout's power table, computed once per check context."""
    return ctx.cached("power_table", lambda: power_table(ctx.rollout, ctx.plan))


def power_table(rollout: ir.Rollout, plan: Plan | None = None) -> list[PowerRow]:
    """Power of every business gate at every look, in gate order then time order.

    Empty without a traffic model.  ``plan`` is the rollout's plan graph,
    built here when not given.
    """
    gates = [g for g in rollout.gates if isinstance(g, ir.BusinessGate)]
    if not gates or rollout.traffic is None:
        return []
    if plan is None:
        from rolloutlang.plan import build_plan

        plan = build_plan(rollout)
    rows: list[PowerRow] = []
    for gate in gates:
        rows.extend(gate_power_rows(rollout, gate, gate_windows(plan, gate)))
    return rows


def inflation_for(gate: ir.BusinessGate, rows: Sequence[PowerRow]) -> float | None:
    """R = n_max / n_fixed of the gate's group-sequential design at the looks' information fractions."""
    from rolloutlang import stats

    if gate.test != "group-sequential" or gate.spending is None:
        return None
    fractions: list[float] = []
    for r in rows:
        t = r.information_fraction
        if t > 0 and (not fractions or t > fractions[-1] + 1e-12):
            fractions.append(t)
    if len(fractions) < 2 or abs(fractions[-1] - 1.0) > 1e-9:
        return None
    if len(fractions) > MAX_LOOKS_FOR_INFLATION:
        # A few looks more or less change R in the second decimal; the full set can cost seconds.
        step = len(fractions) / MAX_LOOKS_FOR_INFLATION
        fractions = [fractions[round((i + 1) * step) - 1] for i in range(MAX_LOOKS_FOR_INFLATION)]
    one_sided = gate.sided == "one"
    try:
        bounds = stats.spending_bounds(fractions, gate.alpha, gate.spending, one_sided)
        return stats.inflation_factor(bounds, fractions, gate.alpha, gate.power, one_sided)
    except ValueError:
        return None


# -- the pass ----------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    """A share for people: `41%`, with more digits only where rounding would say 0% or 100%."""
    text = f"{x * 100:.0f}"
    if 0 < x < 1 and text in ("0", "100"):
        text = f"{x * 100:.2g}" if x < 0.5 else f"{math.floor(x * 1000) / 10:.1f}"
    return text + "%"


def _rounded_up(seconds: float) -> float:
    """A stage length to write: whole hours from 2h, else whole minutes.

    The solver's answer lies within a relative 1e-6 above the exact length, so
    that much is forgiven before rounding up.
    """
    seconds *= 1.0 - 1e-5
    if seconds >= 2 * HOUR:
        return math.ceil(seconds / HOUR) * HOUR
    return math.ceil(seconds / 60.0) * 60.0


@check_pass("statistics")
def check_statistics(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    gates = [g for g in rollout.gates if isinstance(g, ir.BusinessGate)]
    if not gates:
        return []
    out: list[Diagnostic] = []
    if rollout.traffic is None:
        out.append(warning(
            "RL503", f"no traffic model: the power of gate `{gates[0].name}` can't be computed",
            gate_site(rollout, gates[0]),
            help="give the request rate: `traffic 12000 rps, diurnal 30%`",
        ))
    plan: Plan = ctx.plan
    for gate in gates:
        metric = rollout.label_metric(gate.metric)
        if metric is None:
            continue  # RL112 says so
        active = gate_windows(plan, gate)
        if not active:
            if rollout.strategy is not None:  # RL319 asks for a strategy first
                out.append(_no_split(rollout, gate))
            continue
        if metric.kind == "binary" and not power_computable(gate, metric):
            moved = treated_value(gate, metric)
            out.append(error(
                "RL505", f"gate `{gate.name}` asks to detect a {describe_effect(gate)} change of `{metric.name}`, "
                f"from {metric.baseline * 100:.4g}% to {moved * 100:.4g}%, outside 0%-100%", gate.span,
                help="write the smallest change that matters as a rate change, e.g. `> -1% relative` or "
                     "`> -0.2% absolute`",
            ))
            continue
        out.extend(_label_delay(gate, metric, active))
        if rollout.traffic is not None:
            rows = [r for r in context_power_table(ctx) if r.gate == gate.name]
            out.extend(_power(rollout, gate, metric, active, rows))
    return out


def _no_split(rollout: ir.Rollout, gate: ir.BusinessGate) -> Diagnostic:
    kind = rollout.strategy.kind if rollout.strategy is not None else None
    why = {
        "blue-green": "a blue-green rollout never splits traffic",
        "rolling": "a rolling update has no stage with a fixed traffic split",
    }.get(kind or "", "no canary stage below 100% evaluates it")
    return warning(
        "RL504", f"{why}: business gate `{gate.name}` has no stable arm to compare with, so its power "
        "can't be computed", gate.span,
        help="business gates compare the models on split traffic: use a canary with stages below 100% "
             "(`canary { 5% for 6h  50% for 12h  100% }`), or gate this rollout on SLOs",
    )


def _label_delay(gate: ir.BusinessGate, metric: ir.LabelMetric,
                 active: Sequence[StageWindow]) -> Iterator[Diagnostic]:
    if metric.delay.distribution == "immediate":
        return
    from rolloutlang import stats

    delay = delay_model(metric.delay)
    matured = gate.analysis == "matured"
    maturity_s = delay.quantile(0.95) * HOUR if matured else 0.0

    def available(length_s: float) -> float:
        """Share of a stage's labels the gate can use at the stage's end."""
        if matured:
            return max(1.0 - maturity_s / length_s, 0.0)
        return delay.arrived_fraction(length_s / HOUR)

    for w in active:
        duration = w.written_s
        if duration is None or duration <= 0:
            continue
        fraction = available(duration)
        if fraction >= LABEL_FRACTION_FLOOR:
            continue

        def share(stretch: float, length: float = duration) -> float:
            return available(length * stretch)

        stretch = stats.solve_for_power(share, LABEL_FRACTION_FLOOR, 1.0, 1e6)
        fixes = [f"make `{w.name}` last at least {duration_text(_rounded_up(duration * stretch))}"] if stretch else []
        later = next((x.name for x in active[active.index(w) + 1:]
                      if x.written_s and available(x.written_s) >= LABEL_FRACTION_FLOOR), None)
        if later is not None:
            fixes.append(f"start the gate where its labels can arrive (`gate {gate.name}: ..., from {later}`)")
        notes = [f"`{metric.name}` labels arrive {describe_delay(metric.delay)} after the request"]
        if matured:
            notes.append(f"`analysis matured` uses only requests older than the delay's 95th percentile "
                         f"({human_duration(maturity_s)})")
        what = "matured" if matured else "arrived"
        yield warning(
            "RL501", f"gate `{gate.name}` is judged at the end of stage `{w.name}` ({duration_text(duration)}) when "
            f"only {_pct(fraction)} of that stage's `{metric.name}` labels have {what}", w.span,
            label=f"{_pct(fraction)} of labels by its end", notes=tuple(notes), help=", or ".join(fixes),
        )


def _power(rollout: ir.Rollout, gate: ir.BusinessGate, metric: ir.LabelMetric,
           active: Sequence[StageWindow], rows: Sequence[PowerRow]) -> Iterator[Diagnostic]:
    from rolloutlang import stats

    if not active or not all(w.timed for w in active):
        return  # an `until approved` or `hold` stage can run as long as it takes
    if not rows:
        return
    final = rows[-1]
    achieved = final.sequential_power if final.sequential_power is not None else final.power
    if achieved >= gate.power:
        return
    inflation = inflation_for(gate, rows) if final.sequential_power is not None else None
    assert rollout.traffic is not None
    rate = rollout.traffic.rate_rps
    delay = delay_model(metric.delay)
    timed = [w for w in active if w.timed and w.weight_percent > 0]
    target = max(reversed(timed), key=lambda w: w.weight_percent)
    index = list(active).index(target)
    base = target.duration_s
    assert base is not None

    def power_with(stretch: float) -> float:
        extra = base * (stretch - 1.0)
        ws = [w if i < index else replace(
            w,
            start_s=None if w.start_s is None else w.start_s + (extra if i > index else 0.0),
            end_s=None if w.end_s is None else w.end_s + extra,
        ) for i, w in enumerate(active)]
        end = ws[active.index(timed[-1])].end_s
        assert end is not None
        sample = labelled_samples(ws, end, rate, delay, gate.analysis)
        if inflation is not None:  # a sequential design needs R times the fixed-horizon information
            sample = replace(sample, efficiency=sample.efficiency / inflation)
        return gate_power(gate, metric, sample)

    larger = f"`min effect {gate.effect * 200:+g}%`" if gate.relative else f"`min effect {gate.effect * 2:+g}`"
    only_larger = f"if only a larger change matters, say so ({larger})"
    stretch = stats.solve_for_power(power_with, gate.power, 1.0, MAX_STRETCH)
    if stretch is None:
        fix = f"even {MAX_STRETCH:g}× longer stages fall short: ramp to higher weights, or, {only_larger}"
    else:
        was, new = _lengths(base, _rounded_up(base * stretch))
        fix = f"make `{target.name}` ({target.weight_percent:g}%) last {new} instead of {was}, or, {only_larger}"
    test = ("two-proportion z-test" if metric.kind == "binary" else "z-test for a difference in means")
    sides = "two-sided" if gate.sided == "two" else "one-sided"
    notes = [
        f"fixed-horizon power of a {sides} {test} at alpha {gate.alpha * 100:g}%, with "
        f"{_count(final.n_control_labelled)} control and {_count(final.n_candidate_labelled)} candidate labels "
        f"by {human_duration(final.time_s)} into the rollout (`{metric.name}` {_value(metric, metric.baseline)} -> "
        f"{_value(metric, treated_value(gate, metric))})",
    ]
    if final.sequential_power is not None:
        sequential = (f"the gate's group-sequential ({gate.spending}) test over {len(rows)} looks detects it by "
                      f"then with probability {_pct(final.sequential_power)}")
        if _pct(final.sequential_power) != _pct(final.power):
            sequential += f"; a fixed-horizon test on the same labels would have {_pct(final.power)}"
        notes.insert(0, sequential)
        if inflation is not None and inflation >= 1.005:  # below that the note says nothing
            notes.append(f"the sequential design needs ~{inflation:.2f}× the labels of a fixed-horizon test")
    elif gate.test in ("msprt", "bayesian"):
        notes.append(f"an always-valid {gate.test} test needs more labels than this for the same power")
    yield warning(
        "RL502", f"gate `{gate.name}` has {_pct(achieved)} power to detect a {describe_effect(gate)} change in "
        f"`{metric.name}` by the end of `{final.stage}`, below the declared {_pct(gate.power)}", gate.span,
        notes=tuple(notes), help=fix,
    )


def _value(metric: ir.LabelMetric, value: float) -> str:
    return f"{value * 100:.4g}%" if metric.kind == "binary" else f"{value:.4g}"
