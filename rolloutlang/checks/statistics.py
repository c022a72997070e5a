"""Statistics checks (RL501-RL506, RL512-RL518): does each statistical gate mean what it says, and can it see?

A business gate compares a label metric between the candidate and the stable
model with the test its line states (:mod:`rolloutlang.stats.designs`); its
looks, labels and information on the plan come from
:mod:`rolloutlang.stats.gates`, whose docstring defines them.  What can go
wrong:

* labels arrive late, so at the end of a short stage most of its labels are
  missing (RL501);
* the gate's own rule, at its looks and with its labels, reaches its decision
  at the sized effect less often than the declared power (RL502);
* a look before any label can count (`analysis matured` early in a stage)
  has no data: it is inconclusive and pauses the plan (RL506);
* a fixed-horizon test repeated at several looks is peeking (RL512);
* the plan's false-rollback rate is over its budget (RL513), or a budget
  shares an alpha between gates it cannot (RL514);
* users or sessions are split but the metric's intra-unit correlation is not
  given (RL515);
* a rule acts on a gate passing that can never pass (RL516);
* an SLO gate's `min samples` is more than a window can hold, so it never
  has data and pauses the plan (RL517);
* a gate asks for more looks than a gate takes, so it decides at evenly
  spread ones (RL518).

The statistics kernel (numpy) is imported only inside the functions, and only
when the rollout has a statistical gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.checks.references import gate_site
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, warning, word_list
from rolloutlang.plan import compares_arms
from rolloutlang.units import duration_text, format_duration, human_duration
from rolloutlang.units import format_count as _count

if TYPE_CHECKING:
    from rolloutlang.plan import Plan
    from rolloutlang.stats.gates import GatePlan
    from rolloutlang.stats.schedule import StageWindow

RULES: dict[str, str] = {
    "RL501": "labels arrive after the stage ends",
    "RL502": "business gate underpowered",
    "RL503": "no traffic model",
    "RL504": "comparing gate without a traffic split",
    "RL505": "effect outside the metric's range",
    "RL506": "a look without labels pauses the plan",
    "RL512": "a fixed-horizon test that peeks",
    "RL513": "false rollbacks over budget",
    "RL514": "alpha shared wrongly",
    "RL515": "users split, but how alike their requests are is unknown",
    "RL516": "a rule on a gate that never passes decisively",
    "RL517": "`min samples` out of reach",
    "RL518": "more looks than a gate takes",
    "RL519": "a gate whose comparison points the wrong way",
    "RL520": "drift `vs stable` between shapes that differ",
    "RL521": "a query no gate reads",
}

HOUR = 3600.0
# Below this fraction of its labels at a stage's end, a gate is judging mostly missing data.
LABEL_FRACTION_FLOOR = 0.5
# The power check searches stage lengths up to this multiple of the written one.
MAX_STRETCH = 64.0


def context_gate_plans(ctx: CheckContext) -> dict[str, GatePlan]:
    """Every business gate on its plan, computed once per check context (explain reuses it)."""
    def build() -> dict[str, GatePlan]:
        if not any(isinstance(g, ir.BusinessGate) for g in ctx.rollout.gates) or ctx.rollout.traffic is None:
            return {}
        from rolloutlang.stats.gates import context_gate_plans as plans

        return plans(ctx.rollout, ctx.plan)

    return ctx.cached("gate_plans", build)


def describe_delay(delay: ir.LabelDelay) -> str:
    if delay.distribution == "fixed" and delay.fixed_s is not None:
        return f"fixed({format_duration(delay.fixed_s)})"
    if delay.distribution == "exponential" and delay.mean_s is not None:
        return f"exponential(mean {format_duration(delay.mean_s)})"
    if delay.distribution == "lognormal" and delay.median_s is not None and delay.p95_s is not None:
        return f"lognormal(median {duration_text(delay.median_s)}, p95 {duration_text(delay.p95_s)})"
    return "immediate"


def change_text(gate: ir.BusinessGate, value: float) -> str:
    """A change as the gate writes it: `-1% relative`, `-0.1% absolute`, `-0.05 absolute`."""
    sign = "+" if value != 0 else ""
    if gate.relative:
        return f"{value * 100:{sign}.4g}% relative"
    return f"{value:{sign}.4g} absolute"


def metric_value(metric: ir.LabelMetric, value: float) -> str:
    return f"{value * 100:.4g}%" if metric.kind == "binary" else f"{value:.4g}"


def pct(x: float) -> str:
    """A probability for people: `41%`, `4.9%`, `0.41%`, `99.6%`, `<0.01%`, `>99.99%`.

    Two significant digits below 10% (false-alarm rates live there), whole
    percents in the middle, and never a rounded 0% or 100% that is not exact.
    """
    if x <= 0.0 or x >= 1.0:
        return "0%" if x <= 0.0 else "100%"
    if x < 1e-4:
        return "<0.01%"
    if x > 1 - 1e-4:
        return ">99.99%"
    if x < 0.1:
        return f"{x * 100:.2g}%"
    if x >= 0.995:
        return f"{math.floor(x * 1000) / 10:.1f}%"
    return f"{x * 100:.0f}%"


def _lengths(old_s: float, new_s: float) -> tuple[str, str]:
    """Two stage lengths in one unit, to compare at a glance: (`24h`, `47h`)."""
    unit, size = ("h", HOUR) if new_s >= 2 * HOUR else ("m", 60.0)
    return f"{old_s / size:.3g}{unit}", f"{new_s / size:.3g}{unit}"


def _rounded_up(seconds: float) -> float:
    """A stage length to write: whole hours from 2h, else whole minutes.

    The solver's answer lies within a small relative tolerance above the exact
    length, so that much is forgiven before rounding up.
    """
    seconds *= 1.0 - 2e-4
    if seconds >= 2 * HOUR:
        return math.ceil(seconds / HOUR) * HOUR
    return math.ceil(seconds / 60.0) * 60.0


def _writable(index: int) -> float:
    """The index-th stage length one would write: whole minutes up to 2h, then whole hours."""
    return index * 60.0 if index <= 120 else (index - 118) * HOUR


def _writable_index(seconds: float) -> int:
    """The index of the shortest writable length that is at least ``seconds``."""
    if seconds <= 2 * HOUR:
        return max(math.ceil(seconds / 60.0 - 1e-9), 1)
    return math.ceil(seconds / HOUR - 1e-9) + 118


def shortest_writable(reaches: Callable[[float], bool], base_s: float, guess_s: float,
                      limit_s: float) -> float | None:
    """The shortest writable stage length above ``base_s`` at which ``reaches`` holds, up to ``limit_s``.

    ``reaches`` is false at ``base_s`` and assumed monotone.  Each call may
    recompute a gate's boundaries at hundreds of looks, so the search gallops
    from a guess and bisects on the lengths one would write (a handful of
    calls) instead of solving for a stretch to 1e-4 and rounding it.
    """
    lo = _writable_index(base_s)
    if _writable(lo) > base_s * (1.0 - 1e-9):
        lo -= 1  # lo: known not to reach (at or below the written length)
    top = max(_writable_index(limit_s), lo + 1)
    seen: dict[int, bool] = {}

    def ok(index: int) -> bool:
        if index not in seen:
            seen[index] = reaches(_writable(index))
        return seen[index]

    start = min(max(_writable_index(guess_s), lo + 1), top)
    step = 1
    if ok(start):
        hi = start
        while hi - step > lo and ok(hi - step):
            hi -= step
            step *= 2
        lo = max(lo, hi - step)
    else:
        lo = start
        while True:
            if lo == top:
                return None
            probe = min(lo + step, top)
            if ok(probe):
                hi = probe
                break
            lo, step = probe, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return _writable(hi)


@check_pass("statistics")
def check_statistics(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    out: list[Diagnostic] = []
    gates = [g for g in rollout.gates if isinstance(g, ir.BusinessGate)]
    if gates and rollout.traffic is None:
        out.append(warning(
            "RL503", f"no traffic model: the power of gate `{gates[0].name}` can't be computed",
            gate_site(rollout, gates[0]),
            help="give the request rate: `traffic 12000 rps, diurnal 30%`",
        ))
    out.extend(_direction(rollout))
    out.extend(_shapes(rollout))
    out.extend(_unused_queries(rollout))
    if rollout.strategy is None:
        return out  # RL319 asks for a strategy first
    plan: Plan = ctx.plan
    from rolloutlang.stats.schedule import gate_windows

    for any_gate in rollout.gates:
        if compares_arms(any_gate) and not gate_windows(plan, any_gate):
            out.append(_no_split(rollout, any_gate))
    out.extend(_min_samples(rollout, plan))
    out.extend(_pass_rules(rollout))
    if not gates:
        return out
    out.extend(_budgets(rollout))
    plans = context_gate_plans(ctx)
    for gate in gates:
        metric = rollout.label_metric(gate.metric)
        if metric is None:
            continue  # RL112 says so
        active = gate_windows(plan, gate)
        if not active:
            continue
        if metric.kind == "binary":
            from rolloutlang.stats.gates import treated_value

            moved = [(c, treated_value(gate, metric, c)) for c in (gate.margin, gate.effect)]
            outside = next(((c, v) for c, v in moved if not 0.0 < v < 1.0), None)
            if outside is not None:
                out.append(error(
                    "RL505", f"gate `{gate.name}` reckons with a {change_text(gate, outside[0])} change of "
                    f"`{metric.name}`, from {metric.baseline * 100:.4g}% to {outside[1] * 100:.4g}%, outside 0%-100%",
                    gate.span,
                    help="write changes a rate can make, e.g. `> -1% relative` or `> -0.2% absolute`",
                ))
                continue
        out.extend(_label_delay(gate, metric, active))
        out.extend(_unit(rollout, gate, metric))
        gp = plans.get(gate.name)
        if gp is None:
            continue
        out.extend(_empty_looks(gate, gp))
        out.extend(_peeking(gate, gp))
        out.extend(_thinned(gate, gp, active))
        if gate.test != "fixed" or len(gp.samples) == 1:
            out.extend(_power(rollout, plan, gate, metric, active, gp))
    out.extend(_false_rollbacks(ctx, plans))
    return out


def _no_split(rollout: ir.Rollout, gate: ir.AnyGate) -> Diagnostic:
    kind = rollout.strategy.kind if rollout.strategy is not None else None
    why = {
        "blue-green": "a blue-green rollout never splits traffic",
        "rolling": "a rolling update has no stage with a fixed traffic split",
    }.get(kind or "", "no canary stage below 100% evaluates it")
    what = {"business": "business gate", "srm": "sample-ratio gate", "drift": "drift gate"}.get(gate.kind, "gate")
    if isinstance(gate, ir.DriftGate):
        return warning(
            "RL504", f"{why}: drift gate `{gate.name}` compares `{gate.target}` with stable's live traffic, but no "
            "phase runs both versions at the same time", gate.reference_span or gate.target_span or gate.span,
            label="`vs stable`" if gate.reference_span is not None else "`vs stable`, the default",
            notes=("a distribution compared with another hour's, or another population's, drifts on its own",),
            help="compare with the training data (`vs training`), or mirror traffic to the candidate first "
                 "(`shadow 100% for 24h`), where both versions answer the same requests",
        )
    return warning(
        "RL504", f"{why}: {what} `{gate.name}` has no stable arm to compare with", gate_site(rollout, gate),
        help="comparing gates need both versions serving: use a canary with stages below 100% "
             "(`canary { 5% for 6h  50% for 12h  100% }`), or gate this rollout on thresholds",
    )


# Signals whose healthy side is low: a gate on them passes while the value is below its threshold.
_LOW_IS_HEALTHY = {"latency": "latency", "error_rate": "errors", "saturation": "saturation"}


def _direction(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    """A gate whose comparison points the wrong way passes while the signal is bad."""
    for gate in rollout.gates:
        if isinstance(gate, ir.SloGate) and gate.signal in _LOW_IS_HEALTHY and gate.op in (">", ">="):
            signal = _LOW_IS_HEALTHY[gate.signal]
            flipped = "<" if gate.op == ">" else "<="
            what = "a change gate" if gate.comparison == "change" else "the gate"
            verb = "are" if signal == "errors" else "is"
            yield error(
                "RL519", f"gate `{gate.name}` passes while {signal} {verb} high: `{gate.op}` points the wrong way "
                f"for {signal}", gate.op_span or gate.span, label=f"the healthy side of {signal} is low",
                notes=(f"{what} states the healthy side of its threshold, and fails when the value leaves it",),
                help=f"write `{flipped}`: the gate passes while the value stays below the threshold",
            )
        elif isinstance(gate, ir.DriftGate) and gate.threshold is not None and gate.op in (">", ">="):
            flipped = "<" if gate.op == ">" else "<="
            yield error(
                "RL519", f"gate `{gate.name}` passes while `{gate.target}` drifts: `{gate.op}` points the wrong way "
                f"for {gate.statistic}", gate.op_span or gate.span, label="a drift statistic is healthy when small",
                notes=(f"{gate.statistic} grows with the distance between the two distributions; the gate states "
                       "the healthy side",),
                help=f"write `{gate.statistic}({gate.target}) {flipped} {gate.threshold:g}`",
            )


def _shapes(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    """A drift gate `vs stable` on a field whose type differs between the versions compares apples and pears."""
    sig_s, sig_c = rollout.signature_for("stable"), rollout.signature_for("candidate")
    if sig_s is None or sig_c is None:
        return
    fields_s = {f.name: f for f in (*sig_s.inputs, *sig_s.outputs)}
    fields_c = {f.name: f for f in (*sig_c.inputs, *sig_c.outputs)}
    for gate in rollout.gates:
        if not isinstance(gate, ir.DriftGate) or gate.reference != "stable":
            continue
        old, new = fields_s.get(gate.target), fields_c.get(gate.target)
        if old is None or new is None or old.type.render() == new.type.render():
            continue
        yield error(
            "RL520", f"drift gate `{gate.name}` compares `{gate.target}` across versions whose shapes differ: "
            f"stable's is {old.type.render()}, the candidate's {new.type.render()}",
            gate.target_span or gate.span, label="not the same quantity",
            help="compare with the candidate's own training data (`vs training`), or watch a field both versions "
                 "share",
        )


def _unused_queries(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    from rolloutlang.queries import read_names

    source = rollout.metrics_source
    if source is None:
        return
    read = read_names(rollout)
    for q in source.queries:
        if q.name in read:
            continue
        hint = did_you_mean(q.name, read)
        yield warning(
            "RL521", f"query `{q.name}` is not read by any gate", q.span.head(len("query")).to(q.span),
            label="unused",
            help=(hint + " (a query replaces the built-in of the same name); " if hint else "")
            + f"gate on it (`gate {q.name}: query {q.name} < 0.5`) or remove it",
        )


# -- labels -----------------------------------------------------------------------------------------


def _label_delay(gate: ir.BusinessGate, metric: ir.LabelMetric,
                 active: Sequence[StageWindow]) -> Iterator[Diagnostic]:
    if metric.delay.distribution == "immediate":
        return
    from rolloutlang.stats.gates import delay_model
    from rolloutlang.stats.normal import solve_for_power

    delay = delay_model(metric.delay)
    matured = gate.analysis == "matured"
    maturity_s = (_first_label_wait(gate, metric) or 0.0) if matured else 0.0

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

        stretch = solve_for_power(share, LABEL_FRACTION_FLOOR, 1.0, 1e6)
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
            f"only {pct(fraction)} of that stage's `{metric.name}` labels have {what}", w.span,
            label=f"{pct(fraction)} of labels by its end", notes=tuple(notes), help=", or ".join(fixes),
        )


def _empty_looks(gate: ir.BusinessGate, gp: GatePlan) -> Iterator[Diagnostic]:
    """Looks with no labelled request in an arm: no data is inconclusive, and the plan pauses there."""
    empty = [s for s in gp.samples if s.n_control <= 0 or s.n_candidate <= 0]
    if not empty:
        return
    first = empty[0].look
    what = "matured" if gate.analysis == "matured" else "arrived"
    where = "its only look" if len(gp.samples) == 1 else f"{len(empty)} of its {len(gp.samples)} looks"
    wait_s = _first_label_wait(gate, gp.metric)
    every = f"`every {duration_text(_rounded_up(wait_s * 1.001))}`" if wait_s else "`every`"
    fixes = ["start the gate later (`from STAGE`)", f"look less often ({every} or longer)"]
    if gate.analysis == "matured":
        fixes.append("count the labels that have arrived (`analysis arrived`)")
    yield warning(
        "RL506", f"gate `{gate.name}` sees no {what} `{gp.metric.name}` labels in an arm at {where} (the first "
        f"at `{first.name}`, {human_duration(first.time_s)} into the rollout)", gate.span,
        label="no data at a look",
        notes=("a look without data is inconclusive: it neither passes nor fails, and the plan pauses there "
               "until someone resumes it",),
        help=", or ".join(fixes),
    )


def _first_label_wait(gate: ir.BusinessGate, metric: ir.LabelMetric) -> float | None:
    """Seconds from a request until the gate can count its label, when the analysis waits a fixed time."""
    from rolloutlang.stats.gates import analysis_delay

    delay = analysis_delay(gate, metric)
    return delay.scale_hours * HOUR if delay.kind == "fixed" else None


def _unit(rollout: ir.Rollout, gate: ir.BusinessGate, metric: ir.LabelMetric) -> Iterator[Diagnostic]:
    traffic = rollout.traffic
    if traffic is None or traffic.unit == "request" or metric.icc is not None:
        return
    per = traffic.requests_per_unit or 1.0
    yield warning(
        "RL515", f"the traffic is split by {traffic.unit}, but metric `{metric.name}` does not say how alike a "
        f"{traffic.unit}'s requests are", metric.span,
        notes=(f"with {per:g} requests per {traffic.unit} each unit of intra-{traffic.unit} correlation costs "
               f"information: icc 0.02 means a design effect of {1 + 0.02 * (per - 1):.2f}; gate `{gate.name}` "
               "is sized as if it were 0",),
        help=f"add the metric's intra-{traffic.unit} correlation, e.g. `icc 0.02` (estimate it from past data)",
    )


# -- the rule and its power ------------------------------------------------------------------------


def _peeking(gate: ir.BusinessGate, gp: GatePlan) -> Iterator[Diagnostic]:
    if gate.test != "fixed" or len(gp.samples) <= 1:
        return
    from rolloutlang.stats.normal import normal_quantile
    from rolloutlang.stats.sequential import crossing_probabilities

    infos = [s.information for s in gp.samples if s.information > 0]
    infos = [x for i, x in enumerate(infos) if i == 0 or x > infos[i - 1]]
    looks = gp.thinned_from or len(gp.samples)
    c = normal_quantile(1.0 - gp.spec.side_alpha)
    fractions = [x / infos[-1] for x in infos]
    if len(fractions) > 400:  # the naive rate only grows with more looks: a lower bound is enough here
        fractions = fractions[:: math.ceil(len(fractions) / 400)]
        fractions[-1] = 1.0
    naive = crossing_probabilities([math.inf] * len(fractions), fractions, 0.0, [-c] * len(fractions)).total_lower
    where = gate.interval_span or gate.span
    interval = f"`every {duration_text(gate.interval_s)}`" if gate.interval_s else "its looks"
    last = gp.samples[-1].look.stage
    yield error(
        "RL512", f"gate `{gate.name}` repeats a fixed-horizon test at {looks} looks: that is peeking", where,
        label=f"{looks} looks", notes=(
            f"a fixed-horizon test looks once; repeated at these looks it fails a candidate exactly at the margin "
            f"{pct(naive)} of the time instead of {gp.spec.side_alpha * 100:.3g}%",),
        help=f"to look often, use a sequential test (`sequential obrien-fleming`, or `msprt` to look at any time); "
             f"to keep the fixed test, drop {interval} so it looks once, at the end of `{last}`",
    )


def _thinned(gate: ir.BusinessGate, gp: GatePlan, active: Sequence[StageWindow]) -> Iterator[Diagnostic]:
    """More looks than a gate takes: it decides at evenly spread ones, everywhere (check, evaluate, the targets)."""
    if gp.thinned_from is None or gate.test == "fixed" or gate.interval_s is None:
        return  # a fixed test that looks this often is peeking (RL512)
    from rolloutlang.stats.gates import MAX_LOOKS

    timed = [w for w in active if w.timed and w.weight_percent > 0]
    first, last = active[0].start_s, timed[-1].end_s
    assert first is not None and last is not None
    span = last - first
    every = math.ceil(span / MAX_LOOKS / 60.0) * 60.0
    yield warning(
        "RL518", f"gate `{gate.name}` asks for {gp.thinned_from:,} looks; it decides at {len(gp.samples)} evenly "
        f"spread ones, about every {human_duration(span / len(gp.samples))}", gate.interval_span or gate.span,
        label=f"{gp.thinned_from:,} looks over {human_duration(span)}",
        notes=(f"a gate looks at most {MAX_LOOKS} times (its boundaries are solved look by look); a decision can "
               f"come up to {human_duration(span / len(gp.samples))} later than written, and `rollout evaluate` and "
               "the compiled analyses run at the kept looks too",),
        help=f"write the interval it really looks at: `every {duration_text(every)}`",
    )


def _test_words(gate: ir.BusinessGate, gp: GatePlan) -> str:
    kind = {"fixed": "fixed-horizon", "group-sequential": f"group-sequential ({gp.spec.spending.label})",
            "msprt": "mSPRT", "bayesian": "Bayesian"}[gate.test]
    what = "harm" if gate.hypothesis == "harm" else "non-inferiority"
    sides = "two-sided" if gate.sided == "two" else "one-sided"
    looks = len(gp.kept)
    return f"{sides} {kind} {what} test at alpha {gp.spec.alpha * 100:.3g}% over {looks} look{'s' * (looks != 1)}"


def power_sentence(gate: ir.BusinessGate, metric: ir.LabelMetric) -> str:
    """What the power is the probability of, for this gate."""
    if gate.hypothesis == "harm":
        return f"to catch a {change_text(gate, gate.effect)} change in `{metric.name}`"
    if gate.effect == 0:
        return f"to pass an unchanged `{metric.name}` (margin {change_text(gate, gate.margin)})"
    return (f"to pass a {change_text(gate, gate.effect)} change in `{metric.name}` "
            f"(margin {change_text(gate, gate.margin)})")


def _power(rollout: ir.Rollout, plan: Plan, gate: ir.BusinessGate, metric: ir.LabelMetric,
           active: Sequence[StageWindow], gp: GatePlan) -> Iterator[Diagnostic]:
    if not all(w.timed for w in active) or gp.characteristics is None:
        return  # an `until approved` or `hold` stage can run as long as it takes
    achieved = gp.power
    if achieved >= gate.power:
        return
    from rolloutlang.stats.gates import plan_gate, stretched
    from rolloutlang.stats.normal import normal_cdf, normal_quantile

    timed = [w for w in active if w.timed and w.weight_percent > 0]
    target = max(reversed(timed), key=lambda w: w.weight_percent)
    base = target.duration_s
    assert base is not None
    final = gp.samples[-1]
    drift = abs(gp.spec.standardized(gp.spec.effect)) * math.sqrt(final.information)

    def reaches(length_s: float) -> bool:
        longer = plan_gate(rollout, gate, plan, windows=stretched(active, target, length_s / base))
        return longer is not None and longer.power >= gate.power

    # First guess: the information a fixed-horizon test would need for the same shortfall.
    guess = 2.0 * base
    if drift > 0 and 0.0 < achieved:
        needed = drift - normal_quantile(achieved) + normal_quantile(gate.power)
        guess = base * (needed / drift) ** 2
    only_larger = ("if only a larger change matters, size the power there (`power "
                   f"{gate.power * 100:g}% at {_larger(gate)}`)") if gate.hypothesis == "harm" else \
        "or widen the margin if a larger loss is tolerable"
    length = shortest_writable(reaches, base, guess, base * MAX_STRETCH)
    if length is None:
        fix = f"even {MAX_STRETCH:g}× longer stages fall short: ramp to higher weights, or, {only_larger}"
    else:
        was, new = _lengths(base, length)
        fix = f"make `{target.name}` ({target.weight_percent:g}%) last {new} instead of {was}, or, {only_larger}"
    from rolloutlang.stats.gates import treated_value

    notes = [
        f"the gate's {_test_words(gate, gp)}, with {_count(final.n_control)} control and "
        f"{_count(final.n_candidate)} candidate labels by {human_duration(final.look.time_s)} into the rollout "
        f"(`{metric.name}` {metric_value(metric, metric.baseline)} -> "
        f"{metric_value(metric, treated_value(gate, metric))})",
    ]
    fixed = normal_cdf(drift - normal_quantile(1.0 - gp.spec.side_alpha))
    if gate.test != "fixed" and abs(fixed - achieved) >= 0.01:
        notes.append(f"a single fixed-horizon test on the same labels would have {pct(fixed)}: looking "
                     f"{len(gp.kept)} times costs power")
    if gp.randomization.design_effect > 1.0:
        r = gp.randomization
        notes.append(f"splitting by {r.unit} ({r.requests_per_unit:g} requests each, icc {r.icc:g}) makes each "
                     f"label worth 1/{r.design_effect:.2f} of an independent one")
    yield warning(
        "RL502", f"gate `{gate.name}` has {pct(achieved)} power {power_sentence(gate, metric)} by the end of "
        f"`{final.look.stage}`, below the declared {pct(gate.power)}", gate.span,
        notes=tuple(notes), help=fix,
    )


def _larger(gate: ir.BusinessGate) -> str:
    """An effect twice as far beyond the margin, written like the gate."""
    value = gate.margin + 2.0 * (gate.effect - gate.margin)
    return f"{value * 100:+g}%" if gate.relative else f"{value:+g}"


# -- rules, budgets, the plan as a whole -----------------------------------------------------------


def _pass_rules(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    for rule in rollout.rules:
        if rule.event != "pass":
            continue
        for name, span in zip(rule.gates, rule.gate_spans, strict=True):
            gate = rollout.gate(name)
            if gate is None:
                continue
            if isinstance(gate, ir.BusinessGate):
                if gate.hypothesis == "non-inferiority" or gate.sided == "two" or gate.futility:
                    continue
                why = (f"a one-sided harm test only fails; it never shows that `{gate.metric}` is fine")
                fix = (f"to promote on evidence, test it the other way: `{gate.name}: ... pass if shown non-inferior`, "
                       "or add `two-sided` or `futility` so it can also decide for the candidate")
            else:
                why = f"a {gate.kind} gate passes at every healthy measurement, which says nothing about the candidate"
                fix = "promote on a business gate that tests non-inferiority (`pass if shown non-inferior`)"
            yield error("RL516", f"gate `{name}` can never pass decisively, so this rule never promotes", span,
                        notes=(why,), help=fix)


def _budgets(rollout: ir.Rollout) -> Iterator[Diagnostic]:
    for budget in rollout.budgets:
        if budget.kind != "false-rollbacks":
            continue
        for name, span in zip(budget.gates, budget.gate_spans, strict=True):
            gate = rollout.gate(name)
            if not isinstance(gate, ir.BusinessGate):
                what = "no gate" if gate is None else f"a {gate.kind} gate"
                yield error("RL514", f"`{name}` is {what}: only business gates share an alpha", span,
                            help="name the business gates whose alphas the budget splits")
            elif gate.hypothesis != "harm":
                yield error("RL514", f"gate `{name}` is a non-inferiority test: its false rollbacks come from its "
                            "power, not its alpha", span,
                            notes=("a non-inferiority gate rolls back an unchanged candidate with probability about "
                                   "1 - power; the budget checks that, but cannot set it",),
                            help=f"remove `{name}` from the list; raise its `power` to roll back less often")
            elif gate.alpha is not None:
                yield error("RL514", f"gate `{name}` gives its own alpha, but the budget also sets it", span,
                            help=f"drop `alpha` from gate `{name}`, or take it out of the budget's list")


def _false_rollbacks(ctx: CheckContext, plans: dict[str, GatePlan]) -> Iterator[Diagnostic]:
    budgets = [b for b in ctx.rollout.budgets if b.kind == "false-rollbacks" and b.max_percent is not None]
    if not budgets:
        return
    from rolloutlang.stats.gates import plan_false_rollbacks

    frr = ctx.cached("false_rollbacks", lambda: plan_false_rollbacks(ctx.rollout, ctx.plan, plans))
    for budget in budgets:
        assert budget.max_percent is not None
        cap = budget.max_percent / 100.0
        names = set(budget.gates)
        rates = [(g, p) for g, p in frr.per_gate if not names or g in names]
        survive = 1.0
        for _, p in rates:
            survive *= 1.0 - p
        rate = 1.0 - survive
        if rate <= cap + 1e-9:
            continue
        worst = max(rates, key=lambda x: x[1])
        notes = [word_list([f"`{g}` {pct(p)}" for g, p in rates], last=", ", quote=False)
                 + " under no change, combined as if independent"]
        if frr.unmodelled and not names:
            notes.append("SLO and drift gates are not counted: `rollout simulate` includes them")
        yield error(
            "RL513", f"the plan rolls back a candidate as good as stable {pct(rate)} of the time, over the budget "
            f"of {pct(cap)}", budget.span, notes=tuple(notes),
            help=f"`{worst[0]}` contributes most: lower its alpha or widen its margin (a harm test), or raise its "
                 "power (a non-inferiority test)",
        )


def _min_samples(rollout: ir.Rollout, plan: Plan) -> Iterator[Diagnostic]:
    traffic = rollout.traffic
    if traffic is None:
        return
    trough = traffic.rate_rps * (1.0 - traffic.diurnal_amplitude)
    for gate in rollout.gates:
        if not isinstance(gate, ir.SloGate) or gate.min_samples is None:
            continue
        starved = []
        for phase in plan.pre_promotion:
            if gate.name not in phase.gates:
                continue
            share = phase.weight_percent / 100.0
            if gate.comparison == "change":
                share = min(share or phase.shadow_percent / 100.0, 1.0 - share)
            elif share == 0:
                share = phase.shadow_percent / 100.0
            if share <= 0:
                continue
            most = trough * share * gate.interval_s
            if most < gate.min_samples:
                starved.append((phase, most))
        if not starved:
            continue
        phase, most = starved[0]
        where = word_list([p.name for p, _ in starved], last=", ")
        arm = "the smaller arm" if gate.comparison == "change" else "the candidate"
        yield warning(
            "RL517", f"gate `{gate.name}` needs {gate.min_samples:,} requests a window, but {arm} gets about "
            f"{_count(most)} every {duration_text(gate.interval_s)} in {where} at the daily low",
            gate_site(rollout, gate),
            notes=("a window below `min samples` is no data: the gate is inconclusive and the plan pauses there",),
            help=f"measure over longer windows (`every {duration_text(_enough(gate, most))}`) or lower `min samples`",
        )


def _enough(gate: ir.SloGate, per_window: float) -> float:
    """A round interval long enough for `min samples` at the rate of ``per_window`` per current interval."""
    needed = gate.interval_s * (gate.min_samples or 0) / max(per_window, 1e-9)
    for interval in (300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0):
        if interval >= needed:
            return interval
    return math.ceil(needed / 86400.0) * 86400.0
