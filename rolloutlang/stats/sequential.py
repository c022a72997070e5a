"""Group-sequential designs: crossing probabilities, alpha spending, classical bounds.

Conventions (gsDesign/rpact): bounds are on the z-scale; ``drift`` is the
expected z-statistic at information fraction 1, so ``E[Z_k] = drift *
sqrt(t_k)``; under any drift ``Cov(Z_j, Z_k) = sqrt(t_j / t_k)``.  ``alpha``
is the one-sided level when ``one_sided=True``; with ``one_sided=False`` it is
the total two-sided level, the bounds are symmetric ``+-b_k`` and ``alpha/2``
is spent per side.

Crossing probabilities come from the recursive numerical integration of
Armitage, McPherson and Rowe (Jennison & Turnbull 2000, ch. 19), carried
forward look by look.  Two things keep it fast at hundreds of looks: the
transition kernel is evaluated only within 9 standard deviations of each node
(a band, when looks are close together), and a bound is solved by Newton's
method on the log of its crossing probability, whose derivative is the
sub-density at the bound.  Accuracy is about 1e-8 on probabilities (the
reference tables of ``shared/design/statistics-reference.md`` are matched to
their printed digits).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

from rolloutlang.stats.normal import check_alpha, check_power, critical_z, find_root, normal_cdf, normal_quantile
from rolloutlang.stats.vector import FloatArray, ndtr, phi

SpendingName = Literal["obrien-fleming", "pocock"]


@dataclass(frozen=True)
class SpendingFunction:
    """A Lan-DeMets alpha-spending function ``alpha*(t)``.

    Attributes:
        kind: ``obrien-fleming`` (gsDesign sfLDOF), ``pocock`` (sfLDPocock) or
            ``hsd`` (Hwang-Shih-DeCani, sfHSD).
        gamma: the HSD shape: -4 is close to O'Brien-Fleming, 1 to Pocock, 0 spends
            linearly in t.
    """

    kind: Literal["obrien-fleming", "pocock", "hsd"]
    gamma: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("obrien-fleming", "pocock", "hsd"):
            raise ValueError(f"unknown spending function {self.kind!r}")
        if not math.isfinite(self.gamma) or (self.kind != "hsd" and self.gamma != 0.0):
            raise ValueError("only hsd takes a gamma, and it must be finite")

    @property
    def label(self) -> str:
        """How the language writes it: `obrien-fleming`, `pocock`, `hsd(-4)`."""
        return f"hsd({self.gamma:g})" if self.kind == "hsd" else self.kind

    def spent(self, alpha: float, fraction: float) -> float:
        """Cumulative alpha spent by information fraction t, clipped to [0, 1].

        gsDesign conventions with one-sided ``alpha``:
        sfLDOF = 2 - 2 Phi(Phi^-1(1 - alpha/2) / sqrt(t)),
        sfLDPocock = alpha ln(1 + (e - 1) t),
        sfHSD = alpha (1 - exp(-gamma t)) / (1 - exp(-gamma)) (alpha t at gamma 0).
        An overrunning final look (t > 1) spends exactly alpha.
        """
        check_alpha(alpha)
        t = min(max(float(fraction), 0.0), 1.0)
        if t == 0.0:
            return 0.0
        if self.kind == "obrien-fleming":
            return 2.0 * normal_cdf(-normal_quantile(1.0 - alpha / 2.0) / math.sqrt(t))
        if self.kind == "pocock":
            return alpha * math.log1p((math.e - 1.0) * t)
        if abs(self.gamma) < 1e-12:
            return alpha * t
        return alpha * math.expm1(-self.gamma * t) / math.expm1(-self.gamma)


Spending = SpendingName | SpendingFunction


def spending_function(spending: Spending) -> SpendingFunction:
    """The spending function a name or a :class:`SpendingFunction` stands for."""
    if isinstance(spending, SpendingFunction):
        return spending
    return SpendingFunction(spending)


def hsd(gamma: float) -> SpendingFunction:
    """The Hwang-Shih-DeCani spending function with shape ``gamma``."""
    return SpendingFunction("hsd", float(gamma))


def alpha_spent(spending: Spending, alpha: float, fraction: float) -> float:
    """Cumulative alpha spent by information fraction t (see :meth:`SpendingFunction.spent`)."""
    return spending_function(spending).spent(alpha, fraction)


# Below this a look spends nothing: root-finding a bound for it is meaningless.
MIN_SPEND = 1e-13
# Jennison & Turnbull grid parameter r (about 12r evaluation points per look);
# the grid is refined automatically for small information increments.
DEFAULT_GRID = 18
MAX_GRID = 500
_Z_RANGE = 9.0
_MIN_SPACING = 0.02
# The kernel is summed over previous nodes within this many of its SDs.
_KERNEL_CUT = 9.0


@dataclass(frozen=True)
class CrossingProbabilities:
    """Per-look probabilities of first crossing each bound.

    Attributes:
        upper: P(first exit at look k, through the upper bound).
        lower: P(first exit at look k, through the lower bound).
    """

    upper: tuple[float, ...]
    lower: tuple[float, ...]

    @property
    def stop(self) -> tuple[float, ...]:
        """P(stopping at look k) through either bound."""
        return tuple(u + lo for u, lo in zip(self.upper, self.lower, strict=True))

    @property
    def total_upper(self) -> float:
        """P(ever crossing the upper bound)."""
        return math.fsum(self.upper)

    @property
    def total_lower(self) -> float:
        """P(ever crossing the lower bound)."""
        return math.fsum(self.lower)

    @property
    def total(self) -> float:
        """P(stopping at any look)."""
        return self.total_upper + self.total_lower

    def cumulative_upper(self) -> tuple[float, ...]:
        """P(crossed the upper bound by look k), capped at 1 (quadrature can overshoot by ~1e-8)."""
        return tuple(min(x, 1.0) for x in itertools.accumulate(self.upper))

    def cumulative_lower(self) -> tuple[float, ...]:
        """P(crossed the lower bound by look k), capped at 1."""
        return tuple(min(x, 1.0) for x in itertools.accumulate(self.lower))


@dataclass(frozen=True)
class _SubDensity:
    """Weighted sub-density of Z_k on the continuation region.

    ``weighted[i] = quadrature_weight[i] * f_k(z[i])`` where f_k is the density
    of Z_k on paths that have not stopped at looks 1..k; carrying it forward
    makes each look O(m^2) (O(m) for close looks) instead of recomputing from look 1.
    """

    fraction: float
    z: FloatArray
    weighted: FloatArray


def equal_fractions(n_looks: int) -> tuple[float, ...]:
    """Information fractions k/K of K equally spaced looks."""
    if n_looks < 1:
        raise ValueError("n_looks must be >= 1")
    return tuple(k / n_looks for k in range(1, n_looks + 1))


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    ts = tuple(float(t) for t in fractions)
    if not ts:
        raise ValueError("need at least one look")
    if ts[0] <= 0.0 or any(b <= a for a, b in itertools.pairwise(ts)):
        raise ValueError("information fractions must be positive and strictly increasing")
    if not all(math.isfinite(t) for t in ts):
        raise ValueError("information fractions must be finite")
    return ts


@cache
def _base_offsets(r: int) -> FloatArray:
    """The J&T grid's 6r-1 offsets from the mean: uniform within +-3, log-spaced beyond, kept within +-9."""
    i = np.arange(1, 6 * r, dtype=np.float64)
    x = np.where(
        i < r,
        -3.0 - 4.0 * np.log(r / i),
        np.where(i <= 5 * r, -3.0 + 3.0 * (i - r) / (2.0 * r), 3.0 + 4.0 * np.log(r / (6 * r - i))),
    )
    out: FloatArray = np.concatenate(([-_Z_RANGE], x[np.abs(x) < _Z_RANGE], [_Z_RANGE]))
    out.setflags(write=False)
    return out


def _grid(mean: float, lower: float, upper: float, r: int, max_spacing: float) -> tuple[FloatArray, FloatArray]:
    """Quadrature points and Simpson weights on (lower, upper).

    Jennison & Turnbull (2000, ch. 19) grid centred on the mean of Z_k, clipped
    to the continuation region, then Simpson's rule with midpoints.  Nodes stay
    within +-9 SD (the sub-density is below the N(mean, 1) density, so the rest
    holds < 1e-18) and gaps wider than ``max_spacing`` are subdivided.
    """
    x = mean + _base_offsets(r)
    if lower >= upper or lower >= x[-1] or upper <= x[0]:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    inner = x[(x > lower) & (x < upper)]
    head = [lower] if lower > x[0] else []
    tail = [upper] if upper < x[-1] else []
    nodes = np.concatenate((head, inner, tail)) if head or tail else inner
    if nodes.size < 2:
        nodes = np.array([max(lower, x[0]), min(upper, x[-1])])
    widths = np.diff(nodes)
    counts = np.maximum(np.ceil(widths / max_spacing), 1.0).astype(np.int64)
    if np.any(counts > 1):
        first = np.repeat(np.cumsum(counts) - counts, counts)
        steps = np.repeat(widths / counts, counts)
        offsets = np.arange(int(counts.sum())) - first
        nodes = np.append(np.repeat(nodes[:-1], counts) + offsets * steps, nodes[-1])
        widths = np.diff(nodes)
    points = np.empty(2 * nodes.size - 1, dtype=np.float64)
    points[0::2] = nodes
    points[1::2] = 0.5 * (nodes[:-1] + nodes[1:])
    weights = np.zeros_like(points)
    weights[0:-1:2] += widths / 6.0
    weights[2::2] += widths / 6.0
    weights[1::2] = 4.0 * widths / 6.0
    return points, weights


def _centres(prev: _SubDensity, fraction: float, drift: float) -> tuple[FloatArray, float]:
    """Where each previous node sends S_k = Z_k sqrt(t_k), and the SD of the increment."""
    inc = fraction - prev.fraction
    # S_k - S_{k-1} ~ N(drift * inc, inc).
    return prev.z * math.sqrt(prev.fraction) + drift * inc, math.sqrt(inc)


def _cross_look(
    prev: _SubDensity | None, fraction: float, drift: float, lower: float, upper: float
) -> tuple[float, float]:
    """P(no earlier stop, Z_k >= upper) and P(no earlier stop, Z_k <= lower)."""
    if prev is None:
        mean = drift * math.sqrt(fraction)
        p_up = normal_cdf(mean - upper) if upper < math.inf else 0.0
        p_low = normal_cdf(lower - mean) if lower > -math.inf else 0.0
        return p_up, p_low
    if prev.z.size == 0:
        return 0.0, 0.0
    centre, sd = _centres(prev, fraction, drift)
    rt = math.sqrt(fraction)
    p_up = p_low = 0.0
    if upper < math.inf:
        p_up = float(prev.weighted @ ndtr((centre - upper * rt) / sd))
    if lower > -math.inf:
        p_low = float(prev.weighted @ ndtr((lower * rt - centre) / sd))
    return p_up, p_low


def _density_at(prev: _SubDensity | None, fraction: float, drift: float, z: float) -> float:
    """Density of Z_k at ``z`` on paths that did not stop before look k."""
    if prev is None:
        return float(phi(z - drift * math.sqrt(fraction)))
    if prev.z.size == 0:
        return 0.0
    centre, sd = _centres(prev, fraction, drift)
    rt = math.sqrt(fraction)
    return float(prev.weighted @ phi((z * rt - centre) / sd)) * rt / sd


def _max_spacing(fraction: float, next_fraction: float) -> float:
    """Widest node gap allowed at look k, given the next look.

    The next look integrates over Z_k a normal kernel of SD
    w = sqrt(dt / t_k); gaps must stay below about w/1.5 or hourly looks (tiny
    dt) make the recursion inaccurate and even unstable. Floored to bound cost.
    """
    width = math.sqrt((next_fraction - fraction) / fraction)
    return max(width / 1.5, _MIN_SPACING)


def _advance(
    prev: _SubDensity | None,
    fraction: float,
    next_fraction: float,
    drift: float,
    lower: float,
    upper: float,
    grid: int,
) -> _SubDensity:
    """Sub-density of Z_k on (lower, upper), from the one at look k-1."""
    mean = drift * math.sqrt(fraction)
    z, w = _grid(mean, lower, upper, grid, _max_spacing(fraction, next_fraction))
    if z.size == 0 or (prev is not None and prev.z.size == 0):
        empty = np.empty(0, dtype=np.float64)
        return _SubDensity(fraction, empty, empty)
    if prev is None:
        dens = phi(z - mean)
    else:
        centre, sd = _centres(prev, fraction, drift)
        rt = math.sqrt(fraction)
        x = z * rt
        lo = np.searchsorted(centre, x - _KERNEL_CUT * sd, side="left")
        hi = np.searchsorted(centre, x + _KERNEL_CUT * sd, side="right")
        counts = hi - lo
        nnz = int(counts.sum())
        if nnz > 0.25 * z.size * centre.size:
            kernel = phi((x[:, None] - centre[None, :]) / sd)
            dens = (kernel @ prev.weighted) * (rt / sd)
        else:  # close looks: each node sees a narrow band of the previous ones
            rows = np.repeat(np.arange(z.size), counts)
            cols = np.arange(nnz) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
            values = phi((x[rows] - centre[cols]) / sd) * prev.weighted[cols]
            dens = np.bincount(rows, weights=values, minlength=z.size).astype(np.float64) * (rt / sd)
        # A sub-density never exceeds the unconditional N(mean, 1) density;
        # clamping is a no-op when accurate and stops error growth when not.
        dens = np.minimum(dens, phi(z - mean))
    return _SubDensity(fraction, z, w * dens)


def _check_grid(grid: int) -> None:
    if not 1 <= grid <= MAX_GRID:
        raise ValueError(f"grid must be in [1, {MAX_GRID}], got {grid}")


def _bounds_arrays(
    upper: Sequence[float], lower: Sequence[float] | None, k: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    ups = tuple(float(b) for b in upper)
    if len(ups) != k:
        raise ValueError("need one upper bound per look")
    if lower is None:
        lows = (-math.inf,) * k
    else:
        lows = tuple(float(b) for b in lower)
        if len(lows) != k:
            raise ValueError("need one lower bound per look")
    if any(math.isnan(b) for b in ups + lows):
        raise ValueError("bounds must not be NaN")
    return ups, lows


def crossing_probabilities(
    upper: Sequence[float],
    fractions: Sequence[float],
    drift: float = 0.0,
    lower: Sequence[float] | None = None,
    *,
    grid: int = DEFAULT_GRID,
) -> CrossingProbabilities:
    """First-crossing probabilities of z-bounds at looks with fractions t_k.

    Bounds may be infinite (a look that cannot stop on that side); ``lower=None``
    means no lower bound.  Paths continue while ``lower_k < Z_k < upper_k``.
    ``grid`` is the J&T grid parameter r (18 gives ~1e-8 accuracy); the grid
    is refined automatically for small increments.
    """
    ts = check_fractions(fractions)
    _check_grid(grid)
    ups, lows = _bounds_arrays(upper, lower, len(ts))
    p_up: list[float] = []
    p_low: list[float] = []
    state: _SubDensity | None = None
    for k, t in enumerate(ts):
        u, lo = _cross_look(state, t, drift, lows[k], ups[k])
        p_up.append(u)
        p_low.append(lo)
        if k + 1 < len(ts):
            state = _advance(state, t, ts[k + 1], drift, lows[k], ups[k], grid)
    return CrossingProbabilities(tuple(p_up), tuple(p_low))


def _solve_bound(
    state: _SubDensity | None, fraction: float, drift: float, target: float, side: Literal["upper", "lower"],
    start: float = math.nan,
) -> float:
    """The bound whose first-crossing probability at this look is ``target``, on one side.

    Newton's method on log P(bound) - log target (nearly linear in the bound in
    the tails), with the sub-density at the bound as the derivative.  It starts
    from ``start`` (the previous look's bound: close looks have close bounds)
    when nothing beyond it is more likely than the target, else from the
    unconditional quantile, where P(no earlier stop, beyond b) <= P(beyond b)
    = target, and keeps the bracket it has seen; it stops when the crossing
    probability matches the target to 1e-10 relative.  Returns +-inf when the
    integration error at this look exceeds the target (the look spends nothing).
    """
    sign = 1.0 if side == "upper" else -1.0
    mean = drift * math.sqrt(fraction)
    if state is not None and state.z.size == 0:
        return sign * math.inf  # no path is left to cross

    def crossing(b: float) -> float:
        u, lo = _cross_look(state, fraction, drift, -math.inf if side == "upper" else b,
                            b if side == "upper" else math.inf)
        return u if side == "upper" else lo

    p = math.inf
    if math.isfinite(start):
        b = start
        p = crossing(b)
    if p > target:
        b = mean + sign * normal_quantile(1.0 - target)
        p = crossing(b)
    while p > target:
        if abs(b - mean) > 4 * _Z_RANGE:
            return sign * math.inf
        b += sign
        p = crossing(b)
    far, near = b, math.nan  # P(far) <= target < P(near)
    log_target = math.log(target)
    for _ in range(100):
        if p > 0.0 and abs(p / target - 1.0) <= 1e-10:
            return b
        g = _density_at(state, fraction, drift, b) if p > 0.0 else 0.0
        if g > 0.0:
            candidate = b + sign * (math.log(p) - log_target) * p / g
        else:  # no mass beyond b to measure: step inwards
            candidate = b - sign * 0.5
        if not math.isnan(near) and not min(near, far) < candidate < max(near, far):
            candidate = 0.5 * (near + far)
        if abs(candidate - b) <= 1e-12 * (1.0 + abs(b)):
            return candidate
        b = candidate
        p = crossing(b)
        if p > target:
            near = b
        else:
            far = b
    return b


def spending_bounds(
    fractions: Sequence[float],
    alpha: float,
    spending: Spending,
    one_sided: bool = True,
    *,
    grid: int = DEFAULT_GRID,
    last_spends_all: bool = False,
) -> tuple[float, ...]:
    """Upper z-bounds spending ``alpha`` with a Lan-DeMets function.

    Each b_k solves P(no earlier crossing, Z_k >= b_k) = alpha*(t_k) - spent so
    far, at the *observed* fractions (which is what lets spending handle ramps
    and delayed labels).  A look that would spend < 1e-13 gets b_k = +inf.  With
    ``one_sided=False``, ``alpha`` is two-sided, ``alpha/2`` is spent per side
    and the lower bounds are ``-b_k``.  With ``last_spends_all`` the last look
    spends what is left of alpha even if its fraction is below 1 (the gate's
    last look fell short of the planned information).
    """
    ts = check_fractions(fractions)
    check_alpha(alpha)
    _check_grid(grid)
    fn = spending_function(spending)
    side_alpha = alpha if one_sided else alpha / 2.0
    bounds: list[float] = []
    spent = 0.0
    state: _SubDensity | None = None
    for k, t in enumerate(ts):
        final = last_spends_all and k == len(ts) - 1
        increment = (side_alpha if final else fn.spent(side_alpha, t)) - spent
        if increment < MIN_SPEND:
            b = math.inf
        else:
            b = _solve_bound(state, t, 0.0, increment, "upper", bounds[-1] if bounds else math.nan)
            spent += increment
        bounds.append(b)
        if k + 1 < len(ts):
            low = -math.inf if one_sided else -b
            state = _advance(state, t, ts[k + 1], 0.0, low, b, grid)
    return tuple(bounds)


def beta_spending_lower(
    upper: Sequence[float],
    fractions: Sequence[float],
    drift: float,
    beta: float,
    spending: Spending,
    *,
    grid: int = DEFAULT_GRID,
    last_decides: bool = True,
) -> tuple[float, ...]:
    """Lower z-bounds spending ``beta`` under ``drift``, given the upper bounds; the last look decides.

    The second boundary of a two-boundary design (gsDesign's lower bound,
    test.type 4): a_k solves P_drift(no earlier exit, Z_k <= a_k) = beta*(t_k)
    minus what earlier looks spent, with the upper bounds in place.  A bound is
    never above the upper one at the same look, and at the last look it equals
    it, so the last look always decides (unless ``last_decides`` is false: the
    looks so far are not all the gate's looks).  The upper bounds are computed
    without these (non-binding), so their type-I error holds even if a lower
    crossing is ignored.
    """
    ts = check_fractions(fractions)
    check_alpha(beta)
    _check_grid(grid)
    ups, _ = _bounds_arrays(upper, None, len(ts))
    fn = spending_function(spending)
    lows: list[float] = []
    spent = 0.0
    state: _SubDensity | None = None
    for k, t in enumerate(ts):
        if (last_decides and k == len(ts) - 1) or (state is not None and state.z.size == 0):
            a = ups[k]  # the last look decides; or every path has already stopped
        else:
            increment = fn.spent(beta, t) - spent
            a = -math.inf if increment < MIN_SPEND else _solve_bound(state, t, drift, increment, "lower",
                                                                     lows[-1] if lows else math.nan)
            a = min(a, ups[k])
            spent += _cross_look(state, t, drift, a, math.inf)[1] if a > -math.inf else 0.0
        lows.append(a)
        if k + 1 < len(ts):
            state = _advance(state, t, ts[k + 1], drift, a, ups[k], grid)
    return tuple(lows)


def _shape(design: SpendingName, ts: tuple[float, ...]) -> tuple[float, ...]:
    if design == "pocock":
        return (1.0,) * len(ts)
    if design == "obrien-fleming":
        return tuple(math.sqrt(ts[-1] / t) for t in ts)
    raise ValueError(f"unknown classical design {design!r}")


ClassicalDesign = SpendingName


def classical_constant(
    n_looks: int,
    alpha: float,
    design: ClassicalDesign,
    one_sided: bool = True,
    *,
    fractions: Sequence[float] | None = None,
    grid: int = DEFAULT_GRID,
) -> float:
    """Pocock C_P or O'Brien-Fleming C_B giving total size ``alpha``.

    Pocock uses b_k = C_P; OBF uses b_k = C_B sqrt(t_K / t_k) (= C_B sqrt(K/k)
    for equal looks). ``alpha`` as in :func:`spending_bounds`.
    """
    check_alpha(alpha)
    ts = equal_fractions(n_looks) if fractions is None else check_fractions(fractions)
    if len(ts) != n_looks:
        raise ValueError("fractions must have n_looks entries")
    shape = _shape(design, ts)

    def size(c: float) -> float:
        ups = [c * s for s in shape]
        lows = None if one_sided else [-u for u in ups]
        return crossing_probabilities(ups, ts, 0.0, lows, grid=grid).total - alpha

    z_fixed = critical_z(alpha, not one_sided)
    return find_root(size, z_fixed - 1e-9, z_fixed + 5.0, xtol=1e-11)


def classical_bounds(
    n_looks: int,
    alpha: float,
    design: ClassicalDesign,
    one_sided: bool = True,
    *,
    fractions: Sequence[float] | None = None,
    grid: int = DEFAULT_GRID,
) -> tuple[float, ...]:
    """Upper z-bounds of the classical Pocock or O'Brien-Fleming design."""
    ts = equal_fractions(n_looks) if fractions is None else check_fractions(fractions)
    c = classical_constant(n_looks, alpha, design, one_sided, fractions=ts, grid=grid)
    return tuple(c * s for s in _shape(design, ts))


def _design_crossings(
    bounds: Sequence[float],
    fractions: Sequence[float],
    drift: float,
    one_sided: bool,
    grid: int,
) -> CrossingProbabilities:
    lows = None if one_sided else [-b for b in bounds]
    return crossing_probabilities(bounds, fractions, drift, lows, grid=grid)


def sequential_power(
    bounds: Sequence[float],
    fractions: Sequence[float],
    drift: float,
    one_sided: bool = True,
    *,
    grid: int = DEFAULT_GRID,
) -> float:
    """P(rejecting H0 at some look) when E[Z at t=1] = ``drift``.

    One-sided designs reject through the upper bound only; symmetric two-sided
    designs (lower bound -b_k) count both sides, like fixed two-sided power.
    """
    cp = _design_crossings(bounds, fractions, drift, one_sided, grid)
    # Quadrature error can overshoot 1 by ~1e-8 at huge drifts; a power is <= 1.
    return min(cp.total_upper if one_sided else cp.total, 1.0)


def expected_sample_fraction(
    bounds: Sequence[float],
    fractions: Sequence[float],
    drift: float,
    one_sided: bool = True,
    *,
    grid: int = DEFAULT_GRID,
) -> float:
    """E[information at stopping] in units of t (the last look always stops).

    Multiply by :func:`inflation_factor` to express it relative to the
    fixed-horizon sample size.
    """
    ts = check_fractions(fractions)
    stop = _design_crossings(bounds, ts, drift, one_sided, grid).stop
    early = math.fsum(t * p for t, p in zip(ts[:-1], stop[:-1], strict=True))
    return early + ts[-1] * (1.0 - math.fsum(stop[:-1]))


def design_drift(
    bounds: Sequence[float],
    fractions: Sequence[float],
    power: float,
    one_sided: bool = True,
    *,
    grid: int = DEFAULT_GRID,
) -> float:
    """Drift (E[Z] at t=1) at which the design reaches ``power``.

    Raises ValueError when the power is not reachable (e.g. all bounds
    infinite) or is below the design's size.
    """
    check_power(power)

    def gap(theta: float) -> float:
        return sequential_power(bounds, fractions, theta, one_sided, grid=grid) - power

    if gap(0.0) >= 0.0:
        raise ValueError("target power is not above the design's type-I error")
    hi = 4.0
    while gap(hi) < 0.0:
        hi *= 2.0
        if hi > 1e4:
            raise ValueError("target power not reachable with these bounds")
    return find_root(gap, 0.0, hi, xtol=1e-11)


def inflation_factor(
    bounds: Sequence[float],
    fractions: Sequence[float],
    alpha: float,
    power: float = 0.8,
    one_sided: bool = True,
    *,
    grid: int = DEFAULT_GRID,
) -> float:
    """R = n_max / n_fixed for the same alpha and power.

    Information is proportional to n, so R = (theta_seq / theta_fix)^2 with
    theta_fix = z_{1-alpha'} + z_{power} (alpha' = alpha one-sided, alpha/2
    two-sided). ``fractions`` should end at 1 (the maximum information).
    """
    theta_fix = critical_z(alpha, not one_sided) + normal_quantile(power)
    theta = design_drift(bounds, fractions, power, one_sided, grid=grid)
    return (theta / theta_fix) ** 2
