"""A business gate's labelled data: what a look can count, in expectation and drawn.

At a look at time T, a stage's requests made at u have their label with
probability F(T - u) (F the label delay's CDF; `analysis matured` counts a
request in full once it is older than the delay's 95th percentile), so each
stage (a stratum) holds, per arm, the integral over its hours of rate x share
x F(T - u): :func:`rolloutlang.stats.traffic.labelled_components`, the same
integral the checks size the gate with, on the run's own schedule.  A stage is
cut where a scenario changes the metric or the split, so each piece has one
candidate mean and one share.

Labels arrive as a thinned Poisson process, so the labels that arrive
between two looks are independent Poisson counts, positives and negatives
apart: each look draws only the increments since the run's previous look.
Continuous metrics: normal values with the metric's `sd` (sums, and sums of
squares through a chi-square).  When users or sessions are split, counts
carry the design effect as extra variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rolloutlang.simulator.model import GateModel, PlanModel, ScenarioModel
from rolloutlang.simulator.timeline import Timeline, cut
from rolloutlang.stats.estimates import unit_variance
from rolloutlang.stats.traffic import labelled_components
from rolloutlang.stats.vector import FloatArray


@dataclass(frozen=True)
class Expected:
    """Expected labelled data per stratum (the gate's stages, in order) at one look.

    ``units``: labelled requests per arm; ``totals``: their positives (binary)
    or the sum of their values (continuous).  Arrays of shape (2, strata):
    row 0 the stable arm (control), row 1 the candidate.
    """

    units: FloatArray
    totals: FloatArray

    def information(self, gate: GateModel, deff: float) -> float:
        """The information this look has in expectation (the variances at each arm's true mean)."""
        from rolloutlang.stats.estimates import stratified_information

        assert gate.metric is not None
        metric = gate.metric
        relative = getattr(gate.gate, "relative", True)
        var = np.full(self.units.shape, np.inf)
        for arm, s in np.ndindex(*self.units.shape):
            n = self.units[arm, s]
            mean = self.totals[arm, s] / n if n > 0 else metric.baseline
            if mean > 0 or not relative:
                var[arm, s] = unit_variance(metric.kind, float(mean), metric.sd, relative)
        return float(stratified_information(var[0], var[1], self.units[0], self.units[1], deff))


def strata_phases(gate: GateModel) -> tuple[int, ...]:
    """The phases a business gate compares the arms in (its strata), in order."""
    return tuple(sorted(gate.phases))


def expected(model: PlanModel, scenario: ScenarioModel, gate: GateModel, timeline: Timeline, at: float) -> Expected:
    """Labelled requests and their positives (or sums) per arm and stratum at a look at ``at``."""
    assert gate.metric is not None
    strata = strata_phases(gate)
    cuts = sorted({*scenario.onsets("metric", gate.name), *scenario.split_onsets()})
    pieces: list[tuple[float, float]] = []
    owner: list[int] = []
    for s, phase in enumerate(strata):
        span = timeline.span(phase, at)
        if span is None:
            continue
        for lo, hi in cut(*span, cuts):
            pieces.append((lo, hi))
            owner.append(s)
    units = np.zeros((2, len(strata)))
    totals = np.zeros((2, len(strata)))
    if not pieces:
        return Expected(units, totals)
    delay = scenario.label_delay(gate)
    comps = labelled_components(pieces, [at], delay, diurnal=model.amplitude > 0)
    labelled = comps.labelled(model.rate_rps, model.amplitude, model.phase)[0]
    base = gate.metric.baseline
    for (lo, _), s, count in zip(pieces, owner, labelled, strict=True):
        w = scenario.weight(model.phases[strata[s]].weight, lo)
        mean = scenario.metric_value(gate, lo)
        units[0, s] += (1.0 - w) * count
        units[1, s] += w * count
        totals[0, s] += (1.0 - w) * count * base
        totals[1, s] += w * count * mean
    return Expected(units, totals)


@dataclass
class Observed:
    """Each run's labelled data so far, per arm and stratum: shape (runs, 2, strata)."""

    units: FloatArray
    totals: FloatArray
    squares: FloatArray | None
    expected_units: FloatArray
    expected_totals: FloatArray

    @classmethod
    def empty(cls, runs: int, strata: int, continuous: bool) -> Observed:
        shape = (runs, 2, strata)
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape) if continuous else None, np.zeros(shape),
                   np.zeros(shape))


def draw(rng: np.random.Generator, gate: GateModel, observed: Observed, runs: np.ndarray,
         new_units: FloatArray, new_totals: FloatArray, deff: float) -> None:
    """Add, for ``runs``, the labels that arrived since their previous look (expected now: ``new_*``)."""
    from rolloutlang.simulator.signals import poisson

    assert gate.metric is not None
    d_units = np.maximum(new_units - observed.expected_units[runs], 0.0)
    d_totals = np.maximum(new_totals - observed.expected_totals[runs], 0.0)
    observed.expected_units[runs] = new_units
    observed.expected_totals[runs] = new_totals
    if gate.metric.kind == "binary":
        if deff <= 1.0:
            positives = poisson(rng, d_totals)
            negatives = poisson(rng, d_units - d_totals)
            n = positives + negatives
        else:
            n = poisson(rng, d_units)
            with np.errstate(invalid="ignore", divide="ignore"):
                p = np.where(d_units > 0, d_totals / np.where(d_units > 0, d_units, 1.0), 0.0)
            sd = np.sqrt(deff * n * p * (1.0 - p))
            positives = np.clip(np.rint(n * p + sd * rng.standard_normal(n.shape)), 0.0, n)
        observed.units[runs] += n
        observed.totals[runs] += positives
        return
    assert observed.squares is not None and gate.metric.sd is not None
    n = poisson(rng, d_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(d_units > 0, d_totals / np.where(d_units > 0, d_units, 1.0), 0.0)
    spread = gate.metric.sd * np.sqrt(deff)
    sums = n * mean + spread * np.sqrt(n) * rng.standard_normal(n.shape)
    around = spread ** 2 * rng.chisquare(np.maximum(n - 1.0, 1.0)) * (n > 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        squares = around + np.where(n > 0, sums * sums / np.where(n > 0, n, 1.0), 0.0)
    observed.units[runs] += n
    observed.totals[runs] += sums
    observed.squares[runs] += squares
