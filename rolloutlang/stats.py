"""Statistics kernel shared by the power check and the Monte Carlo simulator.

Pure functions over floats and sequences; nothing here knows about the IR.
Formulas and reference numbers: ``shared/design/statistics-reference.md``.

Conventions (why they were chosen is noted at each function):

* Fixed-horizon tests (two proportions, difference in means) follow statsmodels:
  ``two_sided=True`` by default, and two-sided power counts both rejection tails.
  Sample sizes use the usual one-tail closed form (Fleiss), which ignores the
  far tail and so is never smaller than the exact root.
* Group-sequential functions follow gsDesign/rpact: ``alpha`` is the one-sided
  level when ``one_sided=True``; with ``one_sided=False`` it is the total
  two-sided level and the bounds are symmetric, ``+-b_k``, spending ``alpha/2``
  per side. Bounds are on the z-scale; ``drift`` is the expected z-statistic at
  information fraction 1, so ``E[Z_k] = drift * sqrt(t_k)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "ClassicalDesign",
    "CrossingProbabilities",
    "LabelDelay",
    "Spending",
    "alpha_spent",
    "classical_bounds",
    "classical_constant",
    "crossing_probabilities",
    "design_drift",
    "equal_fractions",
    "expected_sample_fraction",
    "inflation_factor",
    "mean_difference_power",
    "mean_difference_sample_size",
    "msprt_z_boundary",
    "normal_cdf",
    "normal_quantile",
    "sequential_power",
    "solve_for_power",
    "spending_bounds",
    "two_proportion_power",
    "two_proportion_sample_size",
    "z_test_power",
]

FloatArray = npt.NDArray[np.float64]
Spending = Literal["obrien-fleming", "pocock"]
ClassicalDesign = Literal["obrien-fleming", "pocock"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Below this a look spends nothing: root-finding a bound for it is meaningless.
_MIN_SPEND = 1e-13
# Jennison & Turnbull grid parameter r (about 12r evaluation points per look);
# the grid is refined automatically for small information increments.
_DEFAULT_GRID = 18
_MAX_GRID = 500
_Z_RANGE = 9.0
_MIN_SPACING = 0.02


# ---------------------------------------------------------------------------
# Normal helpers
# ---------------------------------------------------------------------------


# The checks import this module for every business gate: scipy costs about a
# second to import, so the normal helpers and the root finder are plain Python
# (scipy.stats is imported only by the t-test functions, which nothing in
# `rollout check` calls).
_STANDARD_NORMAL = NormalDist()


def normal_cdf(x: float) -> float:
    """Standard normal CDF, via erfc so both tails stay accurate."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_quantile(p: float) -> float:
    """Standard normal quantile (inverse CDF); +-inf at 1 and 0."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return _STANDARD_NORMAL.inv_cdf(p)


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _root(f: Callable[[float], float], lo: float, hi: float, xtol: float = 1e-12) -> float:
    """A root of ``f`` in [lo, hi], where f changes sign: Illinois regula falsi, bisection as fallback."""
    f_lo, f_hi = f(lo), f(hi)
    if f_lo == 0.0:
        return lo
    if f_hi == 0.0:
        return hi
    if (f_lo > 0.0) == (f_hi > 0.0):
        raise ValueError("f(lo) and f(hi) must have different signs")
    side = 0
    for _ in range(400):
        if hi - lo <= xtol * (1.0 + abs(lo) + abs(hi)) / 2.0:
            break
        x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if not lo < x < hi or side in (-3, 3):  # stalled on one side: bisect
            x = 0.5 * (lo + hi)
            side = 0
        f_x = f(x)
        if f_x == 0.0:
            return x
        if (f_x > 0.0) == (f_lo > 0.0):
            lo, f_lo = x, f_x
            side = side - 1 if side <= 0 else -1
            if side == -2:
                f_hi /= 2.0
        else:
            hi, f_hi = x, f_x
            side = side + 1 if side >= 0 else 1
            if side == 2:
                f_lo /= 2.0
    return 0.5 * (lo + hi)


def _phi(x: FloatArray) -> FloatArray:
    """Standard normal density, vectorised (cheaper than scipy.stats)."""
    out: FloatArray = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return out


def _ndtr(x: FloatArray) -> FloatArray:
    values = np.asarray(-np.asarray(x, dtype=float) / math.sqrt(2.0))
    out: FloatArray = 0.5 * np.asarray(_ERFC(values), dtype=float)
    return out


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _check_power(power: float) -> None:
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")


def _critical_z(alpha: float, two_sided: bool) -> float:
    """Critical value of a z-test: z_{1-alpha/2} or z_{1-alpha}."""
    _check_alpha(alpha)
    return normal_quantile(1.0 - (alpha / 2.0 if two_sided else alpha))


# ---------------------------------------------------------------------------
# Label delays
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelDelay:
    """Distribution of the delay between a request and its label, in hours.

    Gates on delayed labels only see labels that have arrived, so their
    information is the exposure-based information times the arrived fraction
    (reference section 2.4). Build instances with the constructors below.

    Attributes:
        kind: Delay family.
        scale_hours: Fixed delay, exponential mean, or lognormal median
            (0 for ``immediate``).
        sigma: Lognormal log-scale standard deviation (0 otherwise).
    """

    kind: Literal["immediate", "fixed", "exponential", "lognormal"]
    scale_hours: float = 0.0
    sigma: float = 0.0

    def __post_init__(self) -> None:
        """Reject parameters that do not define a proper delay law."""
        if self.kind == "immediate":
            if self.scale_hours != 0.0 or self.sigma != 0.0:
                raise ValueError("an immediate delay has no parameters")
        elif self.kind == "fixed":
            if not (math.isfinite(self.scale_hours) and self.scale_hours >= 0.0):
                raise ValueError("fixed delay must be finite and >= 0")
        elif self.kind == "exponential":
            if not (math.isfinite(self.scale_hours) and self.scale_hours > 0.0):
                raise ValueError("exponential mean must be finite and > 0")
        elif self.kind == "lognormal":
            if not (math.isfinite(self.scale_hours) and self.scale_hours > 0.0):
                raise ValueError("lognormal median must be finite and > 0")
            if not (math.isfinite(self.sigma) and self.sigma > 0.0):
                raise ValueError("lognormal sigma must be finite and > 0")
        else:
            raise ValueError(f"unknown delay kind {self.kind!r}")

    @classmethod
    def immediate(cls) -> LabelDelay:
        """Labels arrive with the request (errors, latency)."""
        return cls("immediate")

    @classmethod
    def fixed(cls, hours: float) -> LabelDelay:
        """Every label arrives exactly ``hours`` after its request."""
        return cls("fixed", float(hours))

    @classmethod
    def exponential(cls, mean_hours: float) -> LabelDelay:
        """Memoryless delay with the given mean."""
        return cls("exponential", float(mean_hours))

    @classmethod
    def lognormal(
        cls,
        median_hours: float,
        p95_hours: float | None = None,
        *,
        sigma: float | None = None,
    ) -> LabelDelay:
        """Long-tailed delay from its median and either its P95 or sigma.

        Users know a median and a P95 more often than a sigma; then
        ``sigma = ln(p95 / median) / z_0.95``.
        """
        if (p95_hours is None) == (sigma is None):
            raise ValueError("give exactly one of p95_hours and sigma")
        if p95_hours is not None:
            if not (median_hours > 0.0 and p95_hours > median_hours):
                raise ValueError("need 0 < median_hours < p95_hours")
            sigma = math.log(p95_hours / median_hours) / normal_quantile(0.95)
        assert sigma is not None
        return cls("lognormal", float(median_hours), float(sigma))

    @property
    def median_hours(self) -> float:
        """Median delay."""
        if self.kind == "exponential":
            return self.scale_hours * math.log(2.0)
        return self.scale_hours

    @property
    def mean_hours(self) -> float:
        """Mean delay."""
        if self.kind == "lognormal":
            return self.scale_hours * math.exp(0.5 * self.sigma**2)
        return self.scale_hours

    def quantile(self, q: float) -> float:
        """Delay by which a fraction ``q`` of labels has arrived."""
        if not 0.0 <= q < 1.0:
            raise ValueError("q must be in [0, 1)")
        if self.kind in ("immediate", "fixed"):
            return self.scale_hours
        if self.kind == "exponential":
            return -self.scale_hours * math.log1p(-q)
        if q == 0.0:
            return 0.0
        return self.scale_hours * math.exp(self.sigma * normal_quantile(q))

    @overload
    def cdf(self, hours: float) -> float: ...
    @overload
    def cdf(self, hours: npt.ArrayLike) -> FloatArray: ...
    def cdf(self, hours: npt.ArrayLike) -> float | FloatArray:
        """P(delay <= hours); scalars in give a float, arrays an array."""
        h = np.asarray(hours, dtype=np.float64)
        out = self._cdf(h)
        return float(out) if out.ndim == 0 else out

    @overload
    def integrated_cdf(self, hours: float) -> float: ...
    @overload
    def integrated_cdf(self, hours: npt.ArrayLike) -> FloatArray: ...
    def integrated_cdf(self, hours: npt.ArrayLike) -> float | FloatArray:
        """G(t) = integral of the CDF over [0, t] = E[(t - D)+], 0 for t <= 0.

        It is the closed form behind every arrived-label fraction under
        constant traffic, so those need no numerical quadrature.
        """
        h = np.asarray(hours, dtype=np.float64)
        out = self._integrated_cdf(h)
        return float(out) if out.ndim == 0 else out

    def arrived_fraction(self, window_hours: float) -> float:
        """Fraction of labels arrived at the end of a constant-traffic window.

        Equals ``(1/t) * integral_0^t F(u) du``: the factor by which arrived-label
        information lags exposure-based information at a look at time ``t``.
        """
        t = float(window_hours)
        if t < 0.0:
            raise ValueError("window_hours must be >= 0")
        if t == 0.0:
            return float(self._cdf(np.asarray(0.0)))
        return float(self._integrated_cdf(np.asarray(t))) / t

    def arrived_fraction_between(self, start: float, end: float, at: float) -> float:
        """Fraction arrived by ``at`` of labels for requests made in [start, end].

        Equals ``(1/(end-start)) * integral_start^end F(at - s) ds``; needed when
        an earlier stage's requests keep receiving labels in later stages.
        """
        a, b, t = float(start), float(end), float(at)
        if b < a:
            raise ValueError("need start <= end")
        if b == a:
            return float(self._cdf(np.asarray(t - a)))
        g = self._integrated_cdf(np.asarray([t - a, t - b]))
        return float(g[0] - g[1]) / (b - a)

    def _cdf(self, h: FloatArray) -> FloatArray:
        if self.kind == "immediate":
            out: FloatArray = (h >= 0.0).astype(np.float64)
        elif self.kind == "fixed":
            out = (h >= self.scale_hours).astype(np.float64)
        elif self.kind == "exponential":
            out = -np.expm1(-np.maximum(h, 0.0) / self.scale_hours)
        else:
            with np.errstate(divide="ignore"):
                log_h = np.log(np.maximum(h, 0.0))
            out = _ndtr((log_h - math.log(self.scale_hours)) / self.sigma)
        return out

    def _integrated_cdf(self, h: FloatArray) -> FloatArray:
        pos = np.maximum(h, 0.0)
        if self.kind == "immediate":
            out: FloatArray = pos
        elif self.kind == "fixed":
            out = np.maximum(pos - self.scale_hours, 0.0)
        elif self.kind == "exponential":
            m = self.scale_hours
            out = pos + m * np.expm1(-pos / m)
        else:
            # E[(t-D)+] = t P(D<=t) - E[D; D<=t] for D ~ LogNormal(mu, s).
            mu, s = math.log(self.scale_hours), self.sigma
            with np.errstate(divide="ignore"):
                log_t = np.log(pos)
            partial_mean = math.exp(mu + 0.5 * s * s) * _ndtr((log_t - mu - s * s) / s)
            out = np.maximum(pos * _ndtr((log_t - mu) / s) - partial_mean, 0.0)
        return out


# ---------------------------------------------------------------------------
# Fixed-horizon z-tests
# ---------------------------------------------------------------------------


def z_test_power(drift: float, alpha: float = 0.05, two_sided: bool = True, sd_ratio: float = 1.0) -> float:
    """Power of a z-test whose statistic has mean ``drift`` under H1.

    ``sd_ratio`` = SD under H0 / SD under H1 of the estimate; it differs from 1
    when the test uses the pooled null variance (proportions). Two-sided power
    counts both tails, as statsmodels does; one-sided power uses the tail in
    the direction of ``drift`` (i.e. the test is assumed to be aimed right).
    """
    z = _critical_z(alpha, two_sided)
    if sd_ratio <= 0.0:
        raise ValueError("sd_ratio must be > 0")
    d = abs(drift) if not two_sided else drift
    power = normal_cdf(d - z * sd_ratio)
    if two_sided:
        power += normal_cdf(-z * sd_ratio - d)
    return power


def _proportion_sds(p_control: float, p_treatment: float, ratio: float, pooled: bool) -> tuple[float, float]:
    """SDs (times sqrt(n_control)) of p_T - p_C under H0 and under H1.

    The pooled null proportion is weighted by sample size, as in statsmodels.
    """
    for p in (p_control, p_treatment):
        if not 0.0 < p < 1.0:
            raise ValueError(f"proportions must be in (0, 1), got {p}")
    if not (ratio > 0.0 and math.isfinite(ratio)):
        raise ValueError("ratio must be finite and > 0")
    var_alt = p_control * (1 - p_control) + p_treatment * (1 - p_treatment) / ratio
    sd_alt = math.sqrt(var_alt)
    if not pooled:
        return sd_alt, sd_alt
    p_bar = (p_control + ratio * p_treatment) / (1.0 + ratio)
    sd_null = math.sqrt(p_bar * (1 - p_bar) * (1.0 + 1.0 / ratio))
    return sd_null, sd_alt


def two_proportion_power(
    p_control: float,
    p_treatment: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    two_sided: bool = True,
    pooled: bool = True,
) -> float:
    """Power of the two-proportion z-test at the given arm sizes.

    With ``pooled=True`` it is statsmodels' ``power_proportions_2indep``: pooled
    (size-weighted) variance under H0, unpooled under H1, both tails counted.
    ``pooled=False`` is the Wald test (unpooled variance under both).
    """
    if n_control <= 0 or n_treatment <= 0:
        raise ValueError("arm sizes must be > 0")
    ratio = n_treatment / n_control
    sd_null, sd_alt = _proportion_sds(p_control, p_treatment, ratio, pooled)
    drift = (p_treatment - p_control) * math.sqrt(n_control) / sd_alt
    return z_test_power(drift, alpha, two_sided, sd_null / sd_alt)


def two_proportion_sample_size(
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    ratio: float = 1.0,
    pooled: bool = True,
) -> float:
    """Control-arm size n (treatment ``ratio * n``) reaching ``power``.

    Closed form ``((z_a sd0 + z_b sd1) / delta)^2`` (Fleiss; statsmodels'
    ``samplesize_proportions_2indep_onetail``). It ignores the far tail, so
    the exact power at the returned n is at least ``power``. Returns ``inf``
    when the proportions are equal.
    """
    _check_power(power)
    z_a = _critical_z(alpha, two_sided)
    sd_null, sd_alt = _proportion_sds(p_control, p_treatment, ratio, pooled)
    delta = p_treatment - p_control
    if delta == 0.0:
        return math.inf
    z_b = normal_quantile(power)
    return (max(z_a * sd_null + z_b * sd_alt, 0.0) / delta) ** 2


def mean_difference_power(
    sd: float,
    delta: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    two_sided: bool = True,
    t_test: bool = False,
) -> float:
    """Power to detect a mean difference ``delta`` with common SD ``sd``.

    The z form matches statsmodels ``NormalIndPower``; ``t_test=True`` uses the
    noncentral t with n_C + n_T - 2 df, matching ``TTestIndPower`` (useful for
    small arms only; at rollout sizes both agree).
    """
    if sd <= 0.0:
        raise ValueError("sd must be > 0")
    if n_control <= 0 or n_treatment <= 0:
        raise ValueError("arm sizes must be > 0")
    drift = delta / (sd * math.sqrt(1.0 / n_control + 1.0 / n_treatment))
    if not t_test:
        return z_test_power(drift, alpha, two_sided)
    _check_alpha(alpha)
    df = n_control + n_treatment - 2.0
    if df <= 0:
        raise ValueError("t-test needs n_control + n_treatment > 2")
    tail = alpha / 2.0 if two_sided else alpha
    from scipy import stats as _sps  # type: ignore[import-untyped,unused-ignore]

    crit = float(_sps.t.isf(tail, df))
    d = drift if two_sided else abs(drift)
    power = _nct_upper(crit, df, d)
    if two_sided:
        power += _nct_upper(crit, df, -d)
    return power


def _nct_upper(crit: float, df: float, nc: float) -> float:
    """P(T >= crit) for noncentral t; normal limit where scipy returns NaN.

    scipy's noncentral t yields NaN deep in the tails at large df and
    noncentrality, exactly where the normal limit is accurate.
    """
    from scipy import stats as _sps  # type: ignore[import-untyped,unused-ignore]

    value = float(_sps.nct.sf(crit, df, nc))
    return value if math.isfinite(value) else normal_cdf(nc - crit)


def mean_difference_sample_size(
    sd: float,
    delta: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    ratio: float = 1.0,
    t_test: bool = False,
) -> float:
    """Control-arm size n (treatment ``ratio * n``) to detect ``delta``.

    The z form is the closed form ``(z_a + z_b)^2 sd^2 (1 + 1/ratio) / delta^2``
    (far tail ignored); the t form is solved numerically against
    :func:`mean_difference_power`. Returns ``inf`` when ``delta == 0``.
    """
    _check_power(power)
    if sd <= 0.0 or ratio <= 0.0:
        raise ValueError("sd and ratio must be > 0")
    z_a = _critical_z(alpha, two_sided)
    if delta == 0.0:
        return math.inf
    n_z = ((z_a + normal_quantile(power)) * sd / delta) ** 2 * (1.0 + 1.0 / ratio)
    if not t_test:
        return n_z

    def gap(n: float) -> float:
        return mean_difference_power(sd, delta, n, ratio * n, alpha, two_sided, True) - power

    lo = 3.0 / (1.0 + ratio)  # one degree of freedom
    if gap(lo) >= 0.0:
        return lo
    hi = max(2.0 * n_z, lo * 2.0)
    while gap(hi) < 0.0:
        hi *= 2.0
    return _root(gap, lo, hi, xtol=1e-10)


# ---------------------------------------------------------------------------
# Group-sequential designs
# ---------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _SubDensity:
    """Weighted sub-density of Z_k on the continuation region.

    ``weighted[i] = quadrature_weight[i] * f_k(z[i])`` where f_k is the density
    of Z_k on paths that have not stopped at looks 1..k; carrying it forward
    makes each look O(m^2) instead of recomputing from look 1.
    """

    fraction: float
    z: FloatArray
    weighted: FloatArray


def equal_fractions(n_looks: int) -> tuple[float, ...]:
    """Information fractions k/K of K equally spaced looks."""
    if n_looks < 1:
        raise ValueError("n_looks must be >= 1")
    return tuple(k / n_looks for k in range(1, n_looks + 1))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    ts = tuple(float(t) for t in fractions)
    if not ts:
        raise ValueError("need at least one look")
    if ts[0] <= 0.0 or any(b <= a for a, b in itertools.pairwise(ts)):
        raise ValueError("information fractions must be positive and strictly increasing")
    if not all(math.isfinite(t) for t in ts):
        raise ValueError("information fractions must be finite")
    return ts


def _grid(mean: float, lower: float, upper: float, r: int, max_spacing: float) -> tuple[FloatArray, FloatArray]:
    """Quadrature points and Simpson weights on (lower, upper).

    Jennison & Turnbull (2000, ch. 19) grid: 6r-1 nodes centred on the mean of
    Z_k, uniform within +-3 SD and log-spaced beyond, clipped to the
    continuation region; then Simpson's rule with midpoints. Two changes keep
    many small looks accurate and stable: nodes are kept within +-9 SD (the
    sub-density is below the N(mean, 1) density, so the rest holds < 1e-18) and
    gaps wider than ``max_spacing`` are subdivided.
    """
    i = np.arange(1, 6 * r, dtype=np.float64)
    x = np.where(
        i < r,
        -3.0 - 4.0 * np.log(r / i),
        np.where(
            i <= 5 * r,
            -3.0 + 3.0 * (i - r) / (2.0 * r),
            3.0 + 4.0 * np.log(r / (6 * r - i)),
        ),
    )
    x = mean + np.concatenate(([-_Z_RANGE], x[np.abs(x) < _Z_RANGE], [_Z_RANGE]))
    if lower >= upper or lower >= x[-1] or upper <= x[0]:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    pieces = [x[(x > lower) & (x < upper)]]
    if lower > x[0]:
        pieces.insert(0, np.array([lower]))
    if upper < x[-1]:
        pieces.append(np.array([upper]))
    nodes = np.unique(np.concatenate(pieces))
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
    inc = fraction - prev.fraction
    sd = math.sqrt(inc)
    # S_k = Z_k sqrt(t_k); S_k - S_{k-1} ~ N(drift * inc, inc).
    centre = prev.z * math.sqrt(prev.fraction) + drift * inc
    rt = math.sqrt(fraction)
    p_up = p_low = 0.0
    if upper < math.inf:
        p_up = float(prev.weighted @ _ndtr((centre - upper * rt) / sd))
    if lower > -math.inf:
        p_low = float(prev.weighted @ _ndtr((lower * rt - centre) / sd))
    return p_up, p_low


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
        dens = _phi(z - mean)
    else:
        inc = fraction - prev.fraction
        sd = math.sqrt(inc)
        centre = prev.z * math.sqrt(prev.fraction) + drift * inc
        kernel = _phi((z[:, None] * math.sqrt(fraction) - centre[None, :]) / sd)
        dens = (kernel @ prev.weighted) * (math.sqrt(fraction) / sd)
        # A sub-density never exceeds the unconditional N(mean, 1) density;
        # clamping is a no-op when accurate and stops error growth when not.
        dens = np.minimum(dens, _phi(z - mean))
    return _SubDensity(fraction, z, w * dens)


def _check_grid(grid: int) -> None:
    if not 1 <= grid <= _MAX_GRID:
        raise ValueError(f"grid must be in [1, {_MAX_GRID}], got {grid}")


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
    grid: int = _DEFAULT_GRID,
) -> CrossingProbabilities:
    """First-crossing probabilities of z-bounds at looks with fractions t_k.

    Armitage-McPherson-Rowe recursive integration (J&T 2000, ch. 19), carried
    forward look by look. Bounds may be infinite (a look that cannot stop on
    that side); ``lower=None`` means no lower bound. The paths continue while
    ``lower_k < Z_k < upper_k``. ``grid`` is the J&T grid parameter r (18 gives
    ~1e-7 accuracy); the grid is refined automatically for small increments,
    which keeps about a thousand equal looks accurate (slowly: ~1 s per 100
    looks at that density); beyond that, thin the looks.
    """
    ts = _check_fractions(fractions)
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


def alpha_spent(spending: Spending, alpha: float, fraction: float) -> float:
    """Cumulative alpha spent by information fraction t (Lan-DeMets).

    gsDesign conventions with one-sided ``alpha``:
    sfLDOF = 2 - 2 Phi(Phi^-1(1 - alpha/2) / sqrt(t)) and
    sfLDPocock = alpha ln(1 + (e - 1) t). t is clipped to [0, 1] so that an
    overrunning final look spends exactly alpha.
    """
    _check_alpha(alpha)
    t = min(max(float(fraction), 0.0), 1.0)
    if t == 0.0:
        return 0.0
    if spending == "obrien-fleming":
        return 2.0 * normal_cdf(-normal_quantile(1.0 - alpha / 2.0) / math.sqrt(t))
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1.0) * t)
    raise ValueError(f"unknown spending function {spending!r}")


def _solve_bound(state: _SubDensity | None, fraction: float, target: float) -> float:
    """Upper bound whose H0 first-crossing probability at this look is ``target``."""

    def excess(b: float) -> float:
        return _cross_look(state, fraction, 0.0, -math.inf, b)[0] - target

    # P(no earlier stop, Z_k >= b) <= P(Z_k >= b), so the root is below z_{1-target}; for targets near
    # _MIN_SPEND the integration error can exceed the target there, so widen the bracket, and spend
    # nothing at this look if even that cannot separate them.
    hi = normal_quantile(1.0 - target) + 1e-6
    while excess(hi) > 0.0:
        if hi > _Z_RANGE * 4:
            return math.inf
        hi += 1.0
    return _root(excess, -10.0, hi, xtol=1e-11)


def spending_bounds(
    fractions: Sequence[float],
    alpha: float,
    spending: Spending,
    one_sided: bool = True,
    *,
    grid: int = _DEFAULT_GRID,
) -> tuple[float, ...]:
    """Upper z-bounds spending ``alpha`` with a Lan-DeMets function.

    Each b_k solves P(no earlier crossing, Z_k >= b_k) = alpha*(t_k) - spent so
    far, at the *observed* fractions (which is what lets spending handle ramps
    and delayed labels). A look that would spend < 1e-13 gets b_k = +inf. With
    ``one_sided=False``, ``alpha`` is two-sided, ``alpha/2`` is spent per side
    and the lower bounds are ``-b_k``.
    """
    ts = _check_fractions(fractions)
    _check_alpha(alpha)
    _check_grid(grid)
    side_alpha = alpha if one_sided else alpha / 2.0
    bounds: list[float] = []
    spent = 0.0
    state: _SubDensity | None = None
    for k, t in enumerate(ts):
        increment = alpha_spent(spending, side_alpha, t) - spent
        if increment < _MIN_SPEND:
            b = math.inf
        else:
            b = _solve_bound(state, t, increment)
            spent += increment
        bounds.append(b)
        if k + 1 < len(ts):
            low = -math.inf if one_sided else -b
            state = _advance(state, t, ts[k + 1], 0.0, low, b, grid)
    return tuple(bounds)


def _shape(design: ClassicalDesign, ts: tuple[float, ...]) -> tuple[float, ...]:
    if design == "pocock":
        return (1.0,) * len(ts)
    if design == "obrien-fleming":
        return tuple(math.sqrt(ts[-1] / t) for t in ts)
    raise ValueError(f"unknown classical design {design!r}")


def classical_constant(
    n_looks: int,
    alpha: float,
    design: ClassicalDesign,
    one_sided: bool = True,
    *,
    fractions: Sequence[float] | None = None,
    grid: int = _DEFAULT_GRID,
) -> float:
    """Pocock C_P or O'Brien-Fleming C_B giving total size ``alpha``.

    Pocock uses b_k = C_P; OBF uses b_k = C_B sqrt(t_K / t_k) (= C_B sqrt(K/k)
    for equal looks). ``alpha`` as in :func:`spending_bounds`.
    """
    _check_alpha(alpha)
    ts = equal_fractions(n_looks) if fractions is None else _check_fractions(fractions)
    if len(ts) != n_looks:
        raise ValueError("fractions must have n_looks entries")
    shape = _shape(design, ts)

    def size(c: float) -> float:
        ups = [c * s for s in shape]
        lows = None if one_sided else [-u for u in ups]
        return crossing_probabilities(ups, ts, 0.0, lows, grid=grid).total - alpha

    z_fixed = _critical_z(alpha, not one_sided)
    return _root(size, z_fixed - 1e-9, z_fixed + 5.0, xtol=1e-11)


def classical_bounds(
    n_looks: int,
    alpha: float,
    design: ClassicalDesign,
    one_sided: bool = True,
    *,
    fractions: Sequence[float] | None = None,
    grid: int = _DEFAULT_GRID,
) -> tuple[float, ...]:
    """Upper z-bounds of the classical Pocock or O'Brien-Fleming design."""
    ts = equal_fractions(n_looks) if fractions is None else _check_fractions(fractions)
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
    grid: int = _DEFAULT_GRID,
) -> float:
    """P(rejecting H0 at some look) when E[Z at t=1] = ``drift``.

    One-sided designs reject through the upper bound only; symmetric two-sided
    designs (lower bound -b_k) count both sides, like fixed two-sided power.
    """
    cp = _design_crossings(bounds, fractions, drift, one_sided, grid)
    # Quadrature error can overshoot 1 by ~1e-7 at huge drifts; a power is <= 1.
    return min(cp.total_upper if one_sided else cp.total, 1.0)


def expected_sample_fraction(
    bounds: Sequence[float],
    fractions: Sequence[float],
    drift: float,
    one_sided: bool = True,
    *,
    grid: int = _DEFAULT_GRID,
) -> float:
    """E[information at stopping] in units of t (the last look always stops).

    Multiply by :func:`inflation_factor` to express it relative to the
    fixed-horizon sample size.
    """
    ts = _check_fractions(fractions)
    stop = _design_crossings(bounds, ts, drift, one_sided, grid).stop
    early = math.fsum(t * p for t, p in zip(ts[:-1], stop[:-1], strict=True))
    return early + ts[-1] * (1.0 - math.fsum(stop[:-1]))


def design_drift(
    bounds: Sequence[float],
    fractions: Sequence[float],
    power: float,
    one_sided: bool = True,
    *,
    grid: int = _DEFAULT_GRID,
) -> float:
    """Drift (E[Z] at t=1) at which the design reaches ``power``.

    Raises ValueError when the power is not reachable (e.g. all bounds
    infinite) or is below the design's size.
    """
    _check_power(power)

    def gap(theta: float) -> float:
        return sequential_power(bounds, fractions, theta, one_sided, grid=grid) - power

    if gap(0.0) >= 0.0:
        raise ValueError("target power is not above the design's type-I error")
    hi = 4.0
    while gap(hi) < 0.0:
        hi *= 2.0
        if hi > 1e4:
            raise ValueError("target power not reachable with these bounds")
    return _root(gap, 0.0, hi, xtol=1e-11)


def inflation_factor(
    bounds: Sequence[float],
    fractions: Sequence[float],
    alpha: float,
    power: float = 0.8,
    one_sided: bool = True,
    *,
    grid: int = _DEFAULT_GRID,
) -> float:
    """R = n_max / n_fixed for the same alpha and power.

    Information is proportional to n, so R = (theta_seq / theta_fix)^2 with
    theta_fix = z_{1-alpha'} + z_{power} (alpha' = alpha one-sided, alpha/2
    two-sided). ``fractions`` should end at 1 (the maximum information).
    """
    theta_fix = _critical_z(alpha, not one_sided) + normal_quantile(power)
    theta = design_drift(bounds, fractions, power, one_sided, grid=grid)
    return (theta / theta_fix) ** 2


# ---------------------------------------------------------------------------
# Always-valid (mSPRT) boundary
# ---------------------------------------------------------------------------


def msprt_z_boundary(information: float, tau2: float, alpha: float = 0.05) -> float:
    """|Z| threshold at which the normal-mixture SPRT rejects.

    sqrt((1 + 1/(I tau^2)) (2 ln(1/alpha) + ln(1 + I tau^2))) (Johari et al.);
    valid under continuous monitoring, so it is the bound for always-on gates.
    """
    _check_alpha(alpha)
    if information <= 0.0 or tau2 <= 0.0:
        raise ValueError("information and tau2 must be > 0")
    x = information * tau2
    return math.sqrt((1.0 + 1.0 / x) * (2.0 * math.log(1.0 / alpha) + math.log1p(x)))


# ---------------------------------------------------------------------------
# Planning helper
# ---------------------------------------------------------------------------


def solve_for_power(
    power_at: Callable[[float], float],
    target: float,
    lo: float = 1.0,
    hi: float = 64.0,
    *,
    rel_tol: float = 1e-6,
) -> float | None:
    """Smallest scale x in [lo, hi] with ``power_at(x) >= target``.

    Used to say "stage X needs to be N h longer". ``power_at`` must be
    non-decreasing; bisection needs no continuity, so step-like Monte Carlo or
    integer-sized power curves work. Returns ``lo`` if it already suffices,
    ``None`` if even ``hi`` does not, else a value within ``rel_tol`` above
    the threshold (at which the target is met).
    """
    if not 0.0 < lo <= hi:
        raise ValueError("need 0 < lo <= hi")
    if power_at(lo) >= target:
        return lo
    if power_at(hi) < target:
        return None
    a, b = lo, hi
    while b - a > rel_tol * b:
        mid = math.sqrt(a * b)
        if not a < mid < b:  # floating-point floor
            break
        if power_at(mid) >= target:
            b = mid
        else:
            a = mid
    return b
