"""The statistical rule of a business gate: one definition for the checks, the simulator and `rollout evaluate`.

A gate compares the candidate with the stable version on the *test scale*:
the change ``theta`` is the absolute difference of the metric's means (or
rates), or, for a relative gate, the log of their ratio.  Its numbers:

* ``margin`` m: the change the plan tolerates (``ctr change > -1% relative``:
  m = log(0.99));
* ``direction`` s: +1 when the comparison is ``>``/``>=`` (higher is better),
  -1 for ``<``/``<=``;
* ``effect`` e: the change the power is sized for;
* the *hypothesis*, i.e. who carries the burden of proof:
  ``harm`` (fail if shown harmful): H0 s(theta - m) >= 0 against s(theta - m) < 0;
  the gate fails only when the data show the change is beyond the margin on
  the wrong side;
  ``non-inferiority`` (pass if shown non-inferior): H0 s(theta - m) <= 0 against
  s(theta - m) > 0; the gate allows promotion only when the data show the
  change is within the margin, and fails when that can no longer be shown.

At each look the statistic is ``Z = s (theta_hat - m) / SE``: positive means
better than the margin.  Every test kind is a pair of boundaries on Z at the
information reached: at or below ``lower`` the gate fails, at or above
``upper`` it allows promotion (``promote-allowed``), in between it passes (the
plan continues).  For a non-inferiority gate the two meet at the last look, so
the last look always decides; a look without data is ``inconclusive``.

==================  ===========================================  ==================================================
test                harm (fail if shown harmful)                          non-inferiority
==================  ===========================================  ==================================================
fixed               one look: fail if Z <= -z(1-a)               one look: promote if Z >= z(1-a), else fail
group-sequential    lower: alpha spent at the looks' fractions;  upper: alpha spent; lower: beta = 1 - power spent
                    upper: none, or futility (beta spent at e)   at e (non-binding); they meet at the last look
msprt               lower: one-sided mixture SPRT at alpha       upper: one-sided mSPRT at alpha; lower: the
                                                                 mirror (evidence of harm); last look decides
bayesian            lower: P(harm beyond m | data) >= 1 - alpha  upper: P(within m | data) >= 1 - alpha; lower:
                    (prior N(0, tau^2))                          the mirror; last look decides
==================  ===========================================  ==================================================

``two-sided`` runs the test at alpha/2 per side; for a harm test it adds the
mirror boundary (evidence that the change is better than the margin, which
allows promotion).  ``tau`` (mSPRT mixing scale, Bayesian prior SD) is on the
test scale; by default it is ``|e - m|``, which puts the mSPRT boundary near
its lowest where the information is about what a fixed test needs.

Operating characteristics (false rollbacks under no change, type-I error at
the margin, power at the sized effect) are crossing probabilities of these
boundaries, computed exactly by recursive integration
(:mod:`rolloutlang.stats.sequential`) up to :data:`EXACT_LOOK_LIMIT` looks and
by a seeded, cached simulation of the same boundaries beyond.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from rolloutlang.stats.always_valid import bayesian_z_boundary, msprt_one_sided_boundary, msprt_z_boundary
from rolloutlang.stats.normal import check_alpha, check_power, normal_quantile
from rolloutlang.stats.sequential import (
    CrossingProbabilities,
    SpendingFunction,
    beta_spending_lower,
    crossing_probabilities,
    spending_bounds,
)
from rolloutlang.stats.vector import FloatArray

IntArray = npt.NDArray[np.int8]

Hypothesis = Literal["harm", "non-inferiority"]
TestKind = Literal["fixed", "group-sequential", "msprt", "bayesian"]
Outcome = Literal["fail", "pass", "promote-allowed", "inconclusive"]
# The outcomes as small integers, for arrays of runs (the simulator): OUTCOMES[code] is the outcome.
OUTCOMES: tuple[Outcome, ...] = ("fail", "pass", "promote-allowed", "inconclusive")
FAIL, PASS, PROMOTE_ALLOWED, INCONCLUSIVE = range(4)

OBRIEN_FLEMING = SpendingFunction("obrien-fleming")
# Beyond this many looks, operating characteristics are simulated (the recursion costs ~1 ms a look); a gate on
# a plan never has more (stats.gates.MAX_LOOKS), other callers may.
EXACT_LOOK_LIMIT = 400
MONTE_CARLO_PATHS = 20_000
# The J&T grid for gates: r = 8 keeps probabilities within ~1e-5 of the r = 18 reference grid (they are shown to
# three digits) at a third of the cost, which keeps `rollout check` fast.
GRID = 8


@dataclass(frozen=True)
class TestSpec:
    """What a business gate tests, on the scale of its estimate (see the module docstring).

    Attributes:
        hypothesis: ``harm`` or ``non-inferiority``.
        test: ``fixed``, ``group-sequential``, ``msprt`` or ``bayesian``.
        alpha: the error rate at the margin: of failing (harm) or of allowing
            promotion (non-inferiority) when the change is exactly the margin.
        direction: +1 when higher is better, -1 when lower is better.
        margin: the tolerated change, on the test scale.
        effect: the change the power is sized for, on the test scale.
        power: the target power at ``effect`` (also sets beta = 1 - power for beta spending).
        two_sided: alpha/2 per side (and, for harm, a mirror boundary).
        spending: alpha-spending function (group-sequential).
        futility: a harm test also stops early, allowing promotion, when harm at
            ``effect`` has become unlikely (beta spending; group-sequential only).
        tau: mixing SD (msprt) or prior SD (bayesian) on the test scale; None: ``|effect - margin|``.
    """

    hypothesis: Hypothesis
    test: TestKind
    alpha: float
    direction: int
    margin: float
    effect: float
    power: float = 0.8
    two_sided: bool = False
    spending: SpendingFunction = OBRIEN_FLEMING
    futility: bool = False
    tau: float | None = None

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_power(self.power)
        if self.direction not in (1, -1):
            raise ValueError("direction must be +1 or -1")
        if not (math.isfinite(self.margin) and math.isfinite(self.effect)):
            raise ValueError("margin and effect must be finite")
        if self.hypothesis == "harm" and self.standardized(self.effect) >= 0.0:
            raise ValueError("a harm test is sized at an effect worse than its margin")
        if self.hypothesis == "non-inferiority" and self.standardized(self.effect) <= 0.0:
            raise ValueError("a non-inferiority test is sized at an effect better than its margin")
        if self.futility and (self.test != "group-sequential" or self.hypothesis != "harm"):
            raise ValueError("futility bounds belong to group-sequential harm tests")
        if self.tau is not None and not (self.tau > 0.0 and math.isfinite(self.tau)):
            raise ValueError("tau must be finite and > 0")

    def standardized(self, theta: float) -> float:
        """s (theta - m): how far a change is on the good side of the margin, per unit of sqrt(information)."""
        return self.direction * (theta - self.margin)

    @property
    def side_alpha(self) -> float:
        return self.alpha / 2.0 if self.two_sided else self.alpha

    @property
    def mixing_sd(self) -> float:
        """tau, or its default ``|effect - margin|``."""
        return self.tau if self.tau is not None else abs(self.effect - self.margin)

    @property
    def decides_upwards(self) -> bool:
        """Whether the gate can allow promotion (has an upper boundary)."""
        return self.hypothesis == "non-inferiority" or self.two_sided or self.futility


@dataclass(frozen=True)
class Boundaries:
    """Per-look boundaries on Z, and the information behind them.

    Attributes:
        lower: fail at or below (``-inf``: this look cannot fail).
        upper: allow promotion at or above (``inf``: it cannot).
        informations: the information at each look.
        reference: the information that the fractions are relative to (the planned maximum).
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    informations: tuple[float, ...]
    reference: float

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(i / self.reference for i in self.informations)


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Per-look probabilities of the gate's first decision when the true change is ``theta``.

    Attributes:
        theta: the true change, on the test scale.
        fail: P(the gate first decides at look k, and fails).
        promote: P(the gate first decides at look k, and allows promotion).
        method: ``exact`` (recursive integration) or ``simulated``.
        standard_error: Monte Carlo standard error of the totals (0 when exact).
    """

    theta: float
    fail: tuple[float, ...]
    promote: tuple[float, ...]
    method: Literal["exact", "simulated"] = "exact"
    standard_error: float = 0.0

    @property
    def p_fail(self) -> float:
        return min(math.fsum(self.fail), 1.0)

    @property
    def p_promote(self) -> float:
        return min(math.fsum(self.promote), 1.0)

    def cumulative_fail(self) -> tuple[float, ...]:
        return CrossingProbabilities(self.promote, self.fail).cumulative_lower()

    def cumulative_promote(self) -> tuple[float, ...]:
        return CrossingProbabilities(self.promote, self.fail).cumulative_upper()


@dataclass(frozen=True)
class Estimate:
    """The data at one look: the estimated change on the test scale and its variance."""

    difference: float
    variance: float

    @property
    def information(self) -> float:
        if not (math.isfinite(self.variance) and self.variance > 0.0 and math.isfinite(self.difference)):
            return 0.0
        return 1.0 / self.variance


@dataclass(frozen=True)
class Decision:
    """What a gate decides at one look, and why.

    Attributes:
        outcome: ``fail``, ``pass`` (continue), ``promote-allowed`` or ``inconclusive`` (no data: pause).
        statistic: Z = s (estimate - margin) / SE; NaN when inconclusive.
        lower, upper: the boundaries at this look.
        information: the information at this look.
        fraction: information over the planned maximum.
        look: 1-based index of the look.
        reason: one sentence for people.
    """

    outcome: Outcome
    statistic: float
    lower: float
    upper: float
    information: float
    fraction: float
    look: int
    reason: str
    estimate: float = math.nan


def _primary_and_secondary(
    spec: TestSpec, informations: tuple[float, ...], reference: float, final: bool
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The boundaries on the *evidence* scale E (E = Z for non-inferiority, -Z for harm).

    The primary boundary (upper on E) is the claim that needs proof, at alpha;
    the secondary (lower on E) is the other way out, or -inf.
    """
    k = len(informations)
    fractions = tuple(i / reference for i in informations)
    orientation = 1.0 if spec.hypothesis == "non-inferiority" else -1.0
    tau2 = spec.mixing_sd**2
    inf = math.inf
    primary: tuple[float, ...]
    secondary: tuple[float, ...]
    if spec.test == "fixed":
        if k != 1:
            raise ValueError("a fixed-horizon test has exactly one look")
        c = normal_quantile(1.0 - spec.side_alpha)
        primary = (c,)
        secondary = (-c,) if spec.two_sided and spec.hypothesis == "harm" else (-inf,)
    elif spec.test == "group-sequential":
        primary = spending_bounds(fractions, spec.side_alpha, spec.spending, one_sided=True, last_spends_all=final,
                                  grid=GRID)
        if spec.two_sided and spec.hypothesis == "harm":
            secondary = tuple(-b for b in primary)
        elif spec.hypothesis == "non-inferiority" or spec.futility:
            drift = orientation * spec.standardized(spec.effect) * math.sqrt(reference)
            secondary = beta_spending_lower(primary, fractions, drift, 1.0 - spec.power, spec.spending,
                                            last_decides=final, grid=GRID)
        else:
            secondary = (-inf,) * k
    elif spec.test == "msprt":
        if spec.two_sided:
            primary = tuple(msprt_z_boundary(i, tau2, spec.alpha) for i in informations)
            secondary = tuple(-b for b in primary)
        else:
            primary = tuple(msprt_one_sided_boundary(i, tau2, spec.alpha) for i in informations)
            secondary = tuple(-b for b in primary) if spec.hypothesis == "non-inferiority" else (-inf,) * k
    else:  # bayesian: the prior is centred on no change, so the margin shifts the boundaries
        shift = orientation * spec.direction * spec.margin
        primary = tuple(bayesian_z_boundary(i, tau2, spec.side_alpha, shift) for i in informations)
        if spec.two_sided or spec.hypothesis == "non-inferiority":
            secondary = tuple(-bayesian_z_boundary(i, tau2, spec.side_alpha, -shift) for i in informations)
        else:
            secondary = (-inf,) * k
    if spec.hypothesis == "non-inferiority" and final:
        secondary = (*secondary[:-1], primary[-1])  # the last look decides
    secondary = tuple(min(a, b) for a, b in zip(secondary, primary, strict=True))
    return primary, secondary


def boundaries(
    spec: TestSpec,
    informations: Sequence[float],
    reference: float | None = None,
    *,
    final: bool = True,
) -> Boundaries:
    """The gate's boundaries on Z at looks with these informations.

    ``reference`` is the planned information at the gate's last look (by
    default the last of ``informations``); spending uses the fractions
    ``I_k / reference``.  ``final`` says the last of ``informations`` is the
    gate's last look: it spends what is left of alpha and, for
    non-inferiority, decides.
    """
    infos = tuple(float(i) for i in informations)
    if not infos or any(not (i > 0.0 and math.isfinite(i)) for i in infos):
        raise ValueError("informations must be positive and finite")
    if any(b <= a for a, b in itertools.pairwise(infos)):
        raise ValueError("informations must increase from look to look")
    ref = infos[-1] if reference is None else float(reference)
    if not (ref > 0.0 and math.isfinite(ref)):
        raise ValueError("reference information must be positive")
    primary, secondary = _cached_bounds(spec, infos, ref, final)
    if spec.hypothesis == "non-inferiority":
        return Boundaries(lower=secondary, upper=primary, informations=infos, reference=ref)
    return Boundaries(lower=tuple(-b for b in primary), upper=tuple(-a for a in secondary), informations=infos,
                      reference=ref)


@lru_cache(maxsize=256)
def _cached_bounds(
    spec: TestSpec, infos: tuple[float, ...], reference: float, final: bool
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return _primary_and_secondary(spec, infos, reference, final)


def statistic(spec: TestSpec, estimate: Estimate) -> float:
    """Z = s (estimate - margin) / SE: positive means better than the margin."""
    return spec.standardized(estimate.difference) * math.sqrt(estimate.information)


def look_bounds(spec: TestSpec, history: Sequence[float], information: float, reference: float | None = None,
                *, final: bool = False) -> tuple[float, float, float]:
    """(lower, upper, fraction) at a look with ``information`` after looks with the ``history`` informations.

    The boundaries :func:`decide` applies: spending at the looks that added
    information (a fixed test has no earlier looks), relative to ``reference``.
    """
    earlier = [i for i in history if 0.0 < i < information]
    earlier = [i for n, i in enumerate(earlier) if n == 0 or i > earlier[n - 1]]
    if spec.test == "fixed":
        earlier = []
    bounds = boundaries(spec, [*earlier, information], reference, final=final)
    return bounds.lower[-1], bounds.upper[-1], bounds.fractions[-1]


def classify(z: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike, information: npt.ArrayLike) -> IntArray:
    """Outcome codes (:data:`OUTCOMES`): fail at or below ``lower``, promote-allowed at or above ``upper``,
    pass in between, inconclusive without information."""
    z_ = np.asarray(z, dtype=np.float64)
    info = np.asarray(information, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        codes = np.where(z_ <= np.asarray(lower), FAIL, np.where(z_ >= np.asarray(upper), PROMOTE_ALLOWED, PASS))
        codes = np.where(np.isfinite(info) & (info > 0.0) & np.isfinite(z_), codes, INCONCLUSIVE)
    out: IntArray = codes.astype(np.int8)
    return out


def decide(
    spec: TestSpec,
    estimate: Estimate,
    history: Sequence[float] = (),
    reference: float | None = None,
    *,
    final: bool = False,
) -> Decision:
    """The gate's decision at a look, from the data seen there.

    Args:
        spec: the gate's test.
        estimate: the change and its variance at this look (see
            :mod:`rolloutlang.stats.estimates` to get them from counts or sums).
        history: the information at the gate's earlier looks (spending depends on
            when they were; looks that added no information are ignored).
        reference: the planned information at the gate's last look (spending
            fractions, the beta-spending drift); by default this look's.
        final: this is the gate's last look.
    """
    look = len(history) + 1
    info = estimate.information
    if info <= 0.0:
        return Decision("inconclusive", math.nan, -math.inf, math.inf, 0.0, 0.0, look,
                        "no data: the gate cannot judge this look", estimate.difference)
    lower, upper, fraction = look_bounds(spec, history, info, reference, final=final)
    z = statistic(spec, estimate)
    outcome = OUTCOMES[int(classify(z, lower, upper, info))]
    if outcome == "fail":
        reason = f"Z = {z:.3f} is at or below the fail boundary {lower:.3f}"
    elif outcome == "promote-allowed":
        reason = f"Z = {z:.3f} is at or above the promotion boundary {upper:.3f}"
    else:
        reason = f"Z = {z:.3f} is between the boundaries ({lower:.3f}, {upper:.3f}): continue"
    return Decision(outcome, z, lower, upper, info, fraction, look, reason, estimate.difference)


@dataclass(frozen=True)
class Decisions:
    """What a gate decides at one look in many runs (:func:`decide_arrays`).

    Attributes:
        outcome: codes, see :data:`OUTCOMES`.
        statistic: Z per run (NaN without information).
        information: the runs' own information (1 / variance).
        lower, upper, fraction: the boundaries and the information fraction they were set at.
    """

    outcome: IntArray
    statistic: FloatArray
    information: FloatArray
    lower: float
    upper: float
    fraction: float


def decide_arrays(spec: TestSpec, difference: npt.ArrayLike, variance: npt.ArrayLike, history: Sequence[float],
                  information: float, reference: float | None = None, *, final: bool = False) -> Decisions:
    """:func:`decide` for many runs that share a schedule, at one look.

    Each run's statistic uses its own estimate and variance; the boundaries are
    set once, at ``information`` after the ``history`` informations: the
    information the look has in expectation on the runs' schedule, where
    :func:`decide` uses each run's own.  The two differ by the noise of the
    labelled counts (relative ``1 / sqrt(labels)``), which moves a spending
    fraction, and so a boundary, by far less than the Monte Carlo error of
    the rates the simulator estimates.
    """
    d = np.asarray(difference, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        info = np.where(np.isfinite(v) & (v > 0.0) & np.isfinite(d), 1.0 / v, 0.0)
        z = np.where(info > 0.0, spec.standardized(d) * np.sqrt(info), np.nan)  # type: ignore[arg-type]
    if information > 0.0 and math.isfinite(information):
        lower, upper, fraction = look_bounds(spec, history, information, reference, final=final)
    else:
        lower, upper, fraction = -math.inf, math.inf, 0.0
    return Decisions(classify(z, lower, upper, info), z, info, lower, upper, fraction)


def operating_characteristics(spec: TestSpec, bounds: Boundaries, theta: float,
                              informations: Sequence[float] | None = None) -> OperatingCharacteristics:
    """P(first decision at each look is fail / allow promotion) when the true change is ``theta``.

    ``informations`` are the looks' informations when the change is ``theta``
    (the estimate's variance depends on the rates it is made of); by default,
    the ones the boundaries were set at.  Group-sequential and fixed bounds
    stay where the plan set them (spending depends only on fractions, which
    barely move); mSPRT and Bayesian bounds follow the information.  Exact
    (recursive integration) up to :data:`EXACT_LOOK_LIMIT` looks, then a seeded
    simulation of the same boundaries (cached).
    """
    lower, upper = bounds.lower, bounds.upper
    if informations is None:
        infos = bounds.informations
    else:
        infos = tuple(float(i) for i in informations)
        if spec.test in ("msprt", "bayesian"):
            moved = boundaries(spec, infos)
            lower, upper = moved.lower, moved.upper
    drift = spec.standardized(theta) * math.sqrt(infos[-1])
    fractions = tuple(i / infos[-1] for i in infos)
    return _characteristics(lower, upper, fractions, drift, theta)


@lru_cache(maxsize=1024)
def _characteristics(lower: tuple[float, ...], upper: tuple[float, ...], fractions: tuple[float, ...], drift: float,
                     theta: float) -> OperatingCharacteristics:
    if len(fractions) <= EXACT_LOOK_LIMIT:
        cp = crossing_probabilities(upper, fractions, drift, lower, grid=GRID)
        return OperatingCharacteristics(theta, cp.lower, cp.upper)
    from rolloutlang.stats.montecarlo import simulate_crossings

    sim = simulate_crossings(lower, upper, fractions, drift, MONTE_CARLO_PATHS)
    return OperatingCharacteristics(theta, sim.lower, sim.upper, "simulated", sim.standard_error)


@dataclass(frozen=True)
class GateCharacteristics:
    """A planned gate's boundaries and what they do: under no change, at the margin, at the sized effect.

    Each operating characteristic is computed when first asked for: `rollout
    check` needs only the power, `rollout explain` also the false-rollback rate.
    """

    spec: TestSpec
    bounds: Boundaries
    informations_at: Callable[[float], Sequence[float]] | None = None

    def under(self, theta: float) -> OperatingCharacteristics:
        """The operating characteristics when the true change is ``theta`` (test scale)."""
        infos = self.informations_at(theta) if self.informations_at is not None else None
        return operating_characteristics(self.spec, self.bounds, theta, infos)

    @cached_property
    def no_change(self) -> OperatingCharacteristics:
        return self.under(0.0)

    @cached_property
    def at_margin(self) -> OperatingCharacteristics:
        return self.under(self.spec.margin)

    @cached_property
    def at_effect(self) -> OperatingCharacteristics:
        return self.under(self.spec.effect)

    @property
    def power(self) -> float:
        """P(the gate reaches its decision at the sized effect): fail (harm) or promote (non-inferiority)."""
        return self.at_effect.p_fail if self.spec.hypothesis == "harm" else self.at_effect.p_promote

    def power_by_look(self) -> tuple[float, ...]:
        """Cumulative power at each look."""
        if self.spec.hypothesis == "harm":
            return self.at_effect.cumulative_fail()
        return self.at_effect.cumulative_promote()

    @property
    def false_rollback(self) -> float:
        """P(fail) when the candidate is exactly as good as stable."""
        return self.no_change.p_fail

    @property
    def type_one_error(self) -> float:
        """The error the gate's alpha bounds: fail at the margin (harm), promote at the margin (non-inferiority)."""
        return self.at_margin.p_fail if self.spec.hypothesis == "harm" else self.at_margin.p_promote


def characterize(spec: TestSpec, informations: Sequence[float],
                 informations_at: Callable[[float], Sequence[float]] | None = None) -> GateCharacteristics:
    """Boundaries at the planned looks (the last is the gate's last) and, on demand, what they do.

    ``informations_at(theta)`` gives the looks' informations under a true change
    (test scale); without it they are the planned ones whatever the change.
    """
    return GateCharacteristics(spec=spec, bounds=boundaries(spec, informations), informations_at=informations_at)
